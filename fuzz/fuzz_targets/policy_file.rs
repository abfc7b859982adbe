//! Policy files: any text is either compiled or rejected with an error,
//! never a panic; a compiled policy evaluates without panicking.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use exchange::{Catalog, Networks, Request};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static BUILTIN: OnceLock<(Catalog, Networks)> = OnceLock::new();
    let (catalog, networks) = BUILTIN.get_or_init(|| (Catalog::builtin(), Networks::builtin()));
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(policy) = policy::Policy::from_toml(text, Path::new("/nonexistent/fuzz.toml"), catalog, networks) {
        let _ = policy::evaluate(&policy, &Request::default());
    }
});
