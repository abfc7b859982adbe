//! Helpers for the unit tests of this crate.

use std::path::Path;
use std::sync::Arc;

use exchange::Interpreter;
use policy::{Inventory, Policy, ReadyPolicy};

/// `text` compiled as the policy file `name` and made ready with `inventory`;
/// panics with the error when it does not compile or check.
pub(crate) fn ready(
    text: &str,
    name: &str,
    inventory: Option<Inventory>,
    interpreter: &Arc<Interpreter>,
) -> ReadyPolicy {
    let policy = Policy::from_toml(text, Path::new(name), interpreter.catalog(), interpreter.networks())
        .unwrap_or_else(|e| panic!("{e}"));
    ReadyPolicy::new(policy, inventory.map(Arc::new), interpreter.clone()).unwrap_or_else(|e| panic!("{e}"))
}
