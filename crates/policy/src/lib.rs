//! casguard policy files: one TOML file of ordered rules and emulation blocks
//! (IIS request filtering, IP restrictions and URL Rewrite, EWS access
//! policy, ActiveSync device access, per-mailbox protocol switches,
//! authentication policies), compiled once into rules of resolved conditions (one
//! compiler module per mechanism under `compile/`, as the emitters under
//! [`emit`]). A [`ReadyPolicy`] adds the interpreter and inventory the rules
//! need, and is what the one pure [`evaluate`] shared by `simulate`, export,
//! watch and the gateway takes. The [`emit`] module turns a policy into IIS,
//! Exchange shell and nginx configuration, and says which rules a target
//! cannot express; [`import`] reads what is in force (cmdlet exports, IIS
//! configuration) back into a policy.
//!
//! ```
//! use std::sync::Arc;
//!
//! use exchange::{Interpreter, Protocol, Request};
//! use policy::{evaluate, Action, Policy, ReadyPolicy};
//!
//! let text = r#"
//! [ews_access]
//! ews_enabled = true
//! application_access_policy = "EnforceAllowList"
//! list = []
//! allow_outlook = true
//! "#;
//! let interpreter = Arc::new(Interpreter::builtin());
//! let policy = Policy::from_toml(text, "p.toml".as_ref(), interpreter.catalog(), interpreter.networks()).unwrap();
//! let policy = ReadyPolicy::new(policy, None, interpreter).unwrap();
//! // Exchange's settings judge a signed-in caller.
//! let mut req = Request { protocol: Protocol::Ews, user: "alice".into(), ..Request::default() };
//! req.user_agent = "Microsoft Office Outlook 16.0".into();
//! assert_eq!(evaluate(&policy, &req).action, Action::Allow);
//! req.user_agent = "Apple Mail".into();
//! let decision = evaluate(&policy, &req);
//! assert_eq!((decision.action, decision.status), (Action::Deny, 403));
//! assert!(policy.policy().explain(&decision, &req).contains("EnforceAllowList"));
//! ```

mod blocks;
mod compile;
pub mod emit;
mod error;
pub mod import;
mod inventory;
mod model;
mod pattern;
mod raw;
mod ready;

use std::path::Path;

use exchange::{Catalog, Networks};

pub use blocks::{
    AccessLevel, AppPolicy, AuthPolicy, AuthProtocol, Characteristic, DenyAction, EwsSettings, MailboxSwitches,
    RewriteAction, RewriteCondition, RewriteRule,
};
pub use error::PolicyError;
pub use exchange::text::ews_pattern_matches;
pub use inventory::{device_key, Inventory, KnownDevice};
pub use model::{
    Action, Cond, Decision, DeviceState, Header, Policy, Redirect, Rule, RuleOrigin, ScanTarget, TextMode, UserSet,
};
pub use pattern::{PatternSyntax, RewriteInput, TextPattern};
pub use ready::{evaluate, may_allow_once_signed_in, ReadyPolicy, Slot};

impl Policy {
    /// Read and compile a policy file (and the group files it names) against
    /// the built-in catalog and networks.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        Policy::load_with(path, &Catalog::builtin(), &Networks::builtin())
    }

    /// Read and compile a policy file against the given catalog and networks
    /// (for example networks extended with `--ranges` files).
    pub fn load_with(path: &Path, catalog: &Catalog, networks: &Networks) -> Result<Policy, PolicyError> {
        // Exports or a folder of them, given where the policy they import to goes.
        const IMPORT: &str = "`casguard policy import FOLDER -o in-force.toml` reads Exchange's exports \
                              and IIS configuration and writes the policy in force";
        let not_policy = |what: &str| PolicyError::Invalid {
            file: path.display().to_string(),
            line: None,
            message: format!("{what}, not a policy file: {IMPORT}"),
        };
        if path.is_dir() {
            return Err(not_policy("a folder"));
        }
        let bytes =
            std::fs::read(path).map_err(|source| PolicyError::Io { file: path.display().to_string(), source })?;
        let Ok(text) = String::from_utf8(bytes) else {
            return Err(not_policy("not UTF-8 text (an export in UTF-16?)"));
        };
        if text.trim_start_matches('\u{feff}').trim_start().starts_with(['<', '{']) {
            return Err(not_policy("XML or JSON"));
        }
        Policy::from_toml(&text, path, catalog, networks)
    }

    /// Compile policy text. `origin` names the file in errors; group files are
    /// read relative to its directory.
    pub fn from_toml(text: &str, origin: &Path, catalog: &Catalog, networks: &Networks) -> Result<Policy, PolicyError> {
        says_something(text, origin)?;
        compile::compile(text, origin, catalog, networks)
    }
}

/// Keys of a policy file that decide requests.
const DECIDING: [&str; 10] = [
    "default",
    "rule",
    "iis_filter",
    "ews_access",
    "device_access",
    "ip_restrictions",
    "request_filtering",
    "url_rewrite",
    "mailbox_protocols",
    "auth_policies",
];

/// Refuse a policy file that decides nothing: an empty file, or one cut off
/// before its first rule, would otherwise be an allow-all policy, silently.
fn says_something(text: &str, origin: &Path) -> Result<(), PolicyError> {
    // A syntax error is reported by the compiler, with its line.
    let Ok(table) = text.parse::<toml::Table>() else { return Ok(()) };
    if DECIDING.iter().any(|k| table.contains_key(*k)) {
        return Ok(());
    }
    Err(PolicyError::Invalid {
        file: origin.display().to_string(),
        line: None,
        message: format!(
            "{}: a policy needs `default`, a [[rule]] or an emulation block ([iis_filter], [ews_access], \
             [device_access], [[ip_restrictions]], [[request_filtering]], [[url_rewrite]], \
             [mailbox_protocols], [auth_policies]); an empty or cut-off file would allow everything",
            if table.is_empty() { "the file is empty" } else { "nothing here decides a request" }
        ),
    })
}
