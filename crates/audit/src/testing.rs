//! Helpers for the unit tests of this crate.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use exchange::{Interpreter, Protocol, Request, Traffic};
use policy::{Inventory, Policy, ReadyPolicy};

use crate::simulate::Simulation;

/// The built-in interpreter, built once for all the tests.
pub(crate) fn interpreter() -> Arc<Interpreter> {
    static BUILTIN: OnceLock<Arc<Interpreter>> = OnceLock::new();
    BUILTIN.get_or_init(|| Arc::new(Interpreter::builtin())).clone()
}

/// `text` compiled as the policy file `name` and made ready with `inventory`
/// and the built-in interpreter; panics with the error when it does not
/// compile or check.
pub(crate) fn ready(text: &str, name: &str, inventory: Option<Inventory>) -> ReadyPolicy {
    let interpreter = interpreter();
    let policy = Policy::from_toml(text, Path::new(name), interpreter.catalog(), interpreter.networks())
        .unwrap_or_else(|e| panic!("{e}"));
    ReadyPolicy::new(policy, inventory.map(Arc::new), interpreter).unwrap_or_else(|e| panic!("{e}"))
}

/// The text of a policy that allows everything but what its one rule,
/// `name`, denies: the requests that `condition` (a line of TOML) matches.
pub(crate) fn deny_rule(name: &str, condition: &str) -> String {
    format!("default = \"allow\"\n[[rule]]\nname = \"{name}\"\naction = \"deny\"\n{condition}\n")
}

/// A successful request of `user` on `protocol` at `stem`.
pub(crate) fn request(traffic: Traffic, user: &str, protocol: Protocol, stem: &str) -> Request {
    Request { traffic, user: user.into(), protocol, stem: stem.into(), status: 200, ..Request::default() }
}

/// A successful ActiveSync Sync of `user`'s `device` at `time`.
pub(crate) fn activesync(traffic: Traffic, user: &str, device: &str, time: i64) -> Request {
    let mut req = request(traffic, user, Protocol::ActiveSync, "/microsoft-server-activesync/default.eas");
    req.time = time;
    req.activesync.command = "Sync".into();
    req.activesync.device_id = device.into();
    req
}

/// `requests` simulated under `policy` in this order.
pub(crate) fn simulated<'a>(requests: impl IntoIterator<Item = &'a Request>, policy: &ReadyPolicy) -> Simulation {
    let mut sim = Simulation::default();
    requests.into_iter().for_each(|r| sim.add(r, policy));
    sim
}
