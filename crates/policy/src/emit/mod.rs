//! Turning a policy into configuration for the real mechanisms. Each emitter
//! returns its text and the rules it cannot express exactly: a rule is never
//! approximated silently.

mod car;
pub mod exchange;
pub mod iis;
pub mod nginx;
mod rewrite;
mod webconfig;

use std::fmt;

use ::exchange::Protocol;

use crate::model::{Action, Cond, Policy, Rule};

pub use webconfig::{merge_web_config, MergeError};

/// A rule a target cannot express exactly, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unexpressible {
    pub rule: String,
    pub reason: String,
}

/// Emission targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Iis,
    Exchange,
    Nginx,
}

impl Target {
    pub fn key(self) -> &'static str {
        match self {
            Target::Iis => "iis",
            Target::Exchange => "exchange",
            Target::Nginx => "nginx",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Output of any emitter: named files and the rules left out.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// (file name, content), e.g. `appcmd.cmd`.
    pub files: Vec<(String, String)>,
    pub unexpressible: Vec<Unexpressible>,
}

impl Output {
    /// All files as one text, each under a comment line naming it.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (name, content) in &self.files {
            let comment = if name.ends_with(".xml") {
                format!("<!-- {} -->\n", xml_comment(name))
            } else if name.ends_with(".cmd") {
                format!("rem {name}\n")
            } else {
                format!("# {name}\n")
            };
            s.push_str(&comment);
            s.push_str(content);
            if !content.ends_with('\n') {
                s.push('\n');
            }
            s.push('\n');
        }
        s
    }
}

/// Emit `policy` for `target` with default settings (IIS site "Default Web Site").
pub fn emit(policy: &Policy, target: Target) -> Output {
    match target {
        Target::Iis => iis::emit(policy, iis::DEFAULT_SITE).into_output(),
        Target::Exchange => exchange::emit(policy),
        Target::Nginx => nginx::emit(policy),
    }
}

/// The virtual directories of each protocol on the front end, as Exchange
/// installs them: every path [`::exchange::protocol::protocol_of`] gives the
/// protocol (Outlook Anywhere also answers at `/RpcWithCert`; the back end's
/// `/PowerShell-Proxy` is no front-end directory).
pub(crate) fn vdirs_of(p: Protocol) -> &'static [&'static str] {
    match p {
        Protocol::ActiveSync => &["/Microsoft-Server-ActiveSync"],
        Protocol::Ews => &["/EWS"],
        Protocol::Owa => &["/owa"],
        Protocol::Ecp => &["/ecp"],
        Protocol::Mapi => &["/mapi"],
        Protocol::Rpc => &["/rpc", "/RpcWithCert"],
        Protocol::Autodiscover => &["/Autodiscover"],
        Protocol::Oab => &["/OAB"],
        Protocol::PowerShell => &["/PowerShell"],
        Protocol::Rest => &["/api"],
        Protocol::Other => &[],
    }
}

/// Common reasons a `[[rule]]` cannot be emitted at all, whatever the target.
pub(crate) fn common_blockers(policy: &Policy, idx: usize, target: &str) -> Option<String> {
    let r = &policy.rules()[idx];
    if let Some(prev) = policy.rules()[..idx].iter().find(|p| p.action == Action::Allow) {
        return Some(format!(
            "the earlier allow rule '{}' takes precedence over it, and {target} has no first-match order across mechanisms",
            prev.name
        ));
    }
    if r.uses(&|c| matches!(c, Cond::Device(_))) {
        return Some("a device known/new condition needs the inventory of devices seen before the cut-over".into());
    }
    None
}

/// What each condition is, for messages.
pub(crate) fn cond_kind(c: &Cond) -> &'static str {
    match c {
        Cond::Protocol(_) => "protocol",
        Cond::Path(_) => "path",
        Cond::Location(_) => "IIS configuration path",
        Cond::Pattern(_) => "URL Rewrite pattern",
        Cond::Any(_) => "any-of condition",
        Cond::OwnDevices { .. } => "personal device list",
        Cond::UserAgent { .. } => "user_agent",
        Cond::UserAgentEws(_) => "EWS user-agent pattern",
        Cond::Client(_) => "client",
        Cond::Command(_) => "command",
        Cond::DeviceType(_) => "device_type",
        Cond::DeviceId(_) => "device_id",
        Cond::NamesDevice => "device id named",
        Cond::MrsProxy => "mailbox move (MRS proxy)",
        Cond::DeviceModel(_) => "device model",
        Cond::DeviceOs(_) => "device OS",
        Cond::User(_) => "user",
        Cond::Network(_) => "network",
        Cond::Cidr { .. } => "cidr",
        Cond::Device(_) => "device",
        Cond::Auth(_) => "authentication type",
        Cond::IisScan { .. } => "IIS filter",
        Cond::Not(_) => "negated condition",
    }
}

pub(crate) fn is_user_rule(r: &Rule) -> bool {
    matches!(r.origin, crate::RuleOrigin::Rule(_))
}

/// `s` as the text of an XML comment, which may hold neither `--` nor a
/// last `-`: each `-` after a `-`, and a last `-`, is written `%2D`, as
/// the path would be in a URL.
pub(crate) fn xml_comment(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut after_dash = false;
    for c in s.chars() {
        if c == '-' && after_dash {
            o.push_str("%2D");
            after_dash = false;
        } else {
            o.push(c);
            after_dash = c == '-';
        }
    }
    if after_dash {
        o.pop();
        o.push_str("%2D");
    }
    o
}

pub(crate) fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_path_has_its_virtual_directory() {
        for p in Protocol::ALL {
            for (prefix, _) in ::exchange::protocol::prefixes_of(p) {
                assert!(vdirs_of(p).iter().any(|v| v.eq_ignore_ascii_case(prefix)), "{prefix} ({p:?})");
            }
            for v in vdirs_of(p) {
                assert_eq!(::exchange::protocol::protocol_of(v), p, "{v}");
            }
        }
    }
}
