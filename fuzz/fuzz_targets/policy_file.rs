//! Policy files: any text is either compiled or rejected with an error,
//! never a panic; a compiled policy evaluates without panicking.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use exchange::{Interpreter, Request};
use policy::{Inventory, Policy, ReadyPolicy};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static BUILTIN: OnceLock<Arc<Interpreter>> = OnceLock::new();
    let interpreter = BUILTIN.get_or_init(|| Arc::new(Interpreter::builtin()));
    let Ok(text) = std::str::from_utf8(data) else { return };
    let origin = Path::new("/nonexistent/fuzz.toml");
    if let Ok(policy) = Policy::from_toml(text, origin, interpreter.catalog(), interpreter.networks()) {
        // An empty inventory, so that `device` rules evaluate too.
        let inventory = Some(Arc::new(Inventory::new("")));
        let ready = ReadyPolicy::new(policy, inventory, interpreter.clone()).expect("an inventory is all it needs");
        let _ = policy::evaluate(&ready, &Request::default());
    }
});
