#![allow(dead_code)]

pub mod shell;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use exchange::{Catalog, Interpreter, Networks, Protocol, Request};
use policy::{Action, Decision, Policy, ReadyPolicy};

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies")
}

/// Every example policy with its file, in file-name order.
pub fn example_policies() -> Vec<(PathBuf, Policy)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let p = Policy::load(&path).unwrap_or_else(|e| panic!("{e}"));
            (path, p)
        })
        .collect()
}

pub fn example(name: &str) -> Policy {
    let p = examples_dir().join(name);
    Policy::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

pub fn compile(text: &str) -> Result<Policy, policy::PolicyError> {
    Policy::from_toml(text, Path::new("test.toml"), &Catalog::builtin(), &Networks::builtin())
}

pub fn policy(text: &str) -> Policy {
    compile(text).unwrap_or_else(|e| panic!("{e}"))
}

/// `p` made ready without an inventory (panics with the error when it does not check).
pub fn ready_policy(p: Policy) -> ReadyPolicy {
    ReadyPolicy::new(p, None, Arc::new(Interpreter::builtin())).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether `p` denies `r`.
pub fn denied(p: &ReadyPolicy, r: &Request) -> bool {
    policy::evaluate(p, r).action == Action::Deny
}

/// The policy an import wrote, compiled (panics with its text when it does not compile).
pub fn in_force(imported: &policy::import::Imported) -> Policy {
    Policy::from_toml(&imported.policy_text, Path::new("in-force.toml"), &Catalog::builtin(), &Networks::builtin())
        .unwrap_or_else(|e| panic!("{e}\n{}", imported.policy_text))
}

/// Imports the settings exported to `dir` for `Default Web Site`, checks that
/// every one was read exactly, and compiles the policy written.
pub fn import_exact(dir: &Path) -> Policy {
    let imported = policy::import::import_folder(dir, "Default Web Site").unwrap_or_else(|e| panic!("{e}"));
    assert!(imported.inexact.is_empty(), "{:?}", imported.inexact);
    in_force(&imported)
}

pub fn client(id: &str) -> exchange::ClientId {
    Catalog::builtin().id_of(id).expect("client in catalog")
}

pub fn req(protocol: Protocol, stem: &str, ua: &str) -> Request {
    Request {
        protocol,
        stem: stem.to_string(),
        user_agent: ua.to_string(),
        method: "POST".into(),
        ..Request::default()
    }
}

/// [`req`] signed in as `user`.
pub fn at(protocol: Protocol, stem: &str, user: &str, ua: &str) -> Request {
    let mut r = req(protocol, stem, ua);
    r.user = user.into();
    r
}

pub fn eas(command: &str, device_id: &str, device_type: &str, ua: &str, user: &str) -> Request {
    let mut r = at(Protocol::ActiveSync, "/Microsoft-Server-ActiveSync/default.eas", user, ua);
    r.activesync.command = command.into();
    r.activesync.device_id = device_id.into();
    r.activesync.device_type = device_type.into();
    r
}

pub fn ews(ua: &str, user: &str) -> Request {
    at(Protocol::Ews, "/EWS/Exchange.asmx", user, ua)
}

/// The rule name that decided, or "default".
pub fn by(p: &Policy, d: &Decision) -> String {
    d.rule.map_or("default".into(), |i| p.rules()[i].name.clone())
}

/// The first two rules of the nginx tests' policies: the LAN is allowed, then
/// Outlook mobile (by case-sensitive prefixes) is denied on EWS; each test
/// appends what it checks.
pub const LAN_OK_THEN_NO_OUTLOOK_MOBILE_ON_EWS: &str = r#"
[ranges]
lan = ["10.0.0.0/8"]
[[rule]]
name = "lan ok"
action = "allow"
network = "lan"
[[rule]]
name = "no outlook mobile on ews"
action = "deny"
protocol = "ews"
user_agent = { prefix = ["Outlook-iOS/", "Outlook-Android/"], case_sensitive = true }
"#;
