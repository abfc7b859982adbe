//! Rules, conditions and decisions put in words: what `policy check` prints
//! and the sentence that explains a decision.

use std::fmt;

use exchange::Request;

use super::{with_client_query, Action, Cond, Decision, DeviceState, Policy, Rule, ScanTarget, TextMode};

/// `what` and then the items: `'a'` alone, or `any of ['a', 'b']`.
fn list(f: &mut fmt::Formatter, what: &str, items: impl IntoIterator<Item = impl fmt::Display>) -> fmt::Result {
    let v: Vec<String> = items.into_iter().map(|i| format!("'{i}'")).collect();
    if v.len() == 1 {
        write!(f, "{what}{}", v[0])
    } else {
        write!(f, "{what}any of [{}]", v.join(", "))
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Cond::Protocol(ps) => list(f, "protocol is ", ps.iter().map(|p| p.key())),
            Cond::Path(ps) => list(
                f,
                "path matches ",
                ps.iter().map(|p| if p.has_wildcard() { p.to_string() } else { format!("{p}*") }),
            ),
            Cond::Location(ps) => list(f, "path is under ", ps),
            Cond::Pattern(p) => write!(f, "{p}"),
            Cond::Any(cs) => {
                let v: Vec<String> = cs.iter().map(|c| c.to_string()).collect();
                write!(f, "({})", v.join(" or "))
            }
            Cond::OwnDevices { list, by_user } => {
                write!(f, "device id is on the user's own {list} ({} names)", by_user.len())
            }
            Cond::UserAgent { case_sensitive, items } => {
                f.write_str("user agent ")?;
                let v: Vec<String> = items
                    .iter()
                    .map(|(m, s)| {
                        let m = match m {
                            TextMode::Contains => "contains",
                            TextMode::Prefix => "starts with",
                            TextMode::Exact => "is",
                        };
                        format!("{m} '{s}'")
                    })
                    .collect();
                f.write_str(&v.join(" or "))?;
                f.write_str(if *case_sensitive { " (case-sensitive)" } else { " (any case)" })
            }
            Cond::UserAgentEws(ps) => {
                if ps.is_empty() {
                    f.write_str("user agent matches an empty EWS list (never)")
                } else {
                    list(f, "user agent matches EWS pattern ", ps)
                }
            }
            Cond::Client(cs) => list(f, "client is ", cs.iter().map(|(_, n)| n)),
            Cond::Command(v) => list(f, "command is ", v),
            Cond::DeviceType(v) => list(f, "device type is ", v),
            Cond::DeviceId(v) => list(f, "device id is ", v),
            Cond::NamesDevice => f.write_str("names a device id"),
            Cond::MrsProxy => f.write_str("is a mailbox move (/EWS/MRSProxy.svc)"),
            Cond::DeviceModel(v) => list(f, "device model is ", v),
            Cond::DeviceOs(v) => list(f, "device OS is ", v),
            // An imported policy names thousands: the first few say enough.
            Cond::User(set) if set.shown.len() > 12 => {
                list(f, "user is ", &set.shown[..10])?;
                write!(f, " and {} more", set.shown.len() - 10)
            }
            Cond::User(set) => list(f, "user is ", &set.shown),
            Cond::Network(ns) => list(f, "network is ", ns.iter().map(|(_, n)| n)),
            Cond::Cidr { nets, name, peer } => {
                f.write_str(if *peer { "connection address in " } else { "client address in " })?;
                match name {
                    Some(n) => write!(f, "range '{n}'"),
                    None => list(f, "", nets),
                }
            }
            Cond::Device(DeviceState::Known) => f.write_str("device is known"),
            Cond::Device(DeviceState::New) => f.write_str("device is new"),
            Cond::Auth(schemes) => list(f, "authentication is ", schemes.iter().map(|a| a.key())),
            Cond::IisScan { targets, strings, applies_to } => {
                let t: Vec<&str> = targets
                    .iter()
                    .map(|t| match t {
                        ScanTarget::Header(h) => h.name(),
                        ScanTarget::Url => "URL",
                        ScanTarget::QueryString => "query string",
                    })
                    .collect();
                list(f, &format!("{} contains ", t.join(" or ")), strings)?;
                if !applies_to.is_empty() {
                    write!(f, " (extensions {})", applies_to.join(", "))?;
                }
                Ok(())
            }
            Cond::Not(c) => write!(f, "not ({c})"),
        }
    }
}

impl Rule {
    fn describe_conditions(&self) -> String {
        let mut s = if self.conditions.is_empty() {
            "always".to_string()
        } else {
            self.conditions.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" and ")
        };
        if !self.unless.is_empty() {
            let g: Vec<String> = self
                .unless
                .iter()
                .map(|g| {
                    let s = g.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" and ");
                    if g.len() > 1 {
                        format!("({s})")
                    } else {
                        s
                    }
                })
                .collect();
            s.push_str(" unless ");
            s.push_str(&g.join(" or "));
        }
        s
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} ", self.name)?;
        match self.action {
            Action::Allow => f.write_str("allow")?,
            Action::Deny if self.substatus != 0 => write!(f, "deny {}.{}", self.status, self.substatus)?,
            Action::Deny => write!(f, "deny {}", self.status)?,
        }
        if self.quarantine {
            f.write_str(" (quarantine)")?;
        }
        write!(f, " if {}", self.describe_conditions())?;
        if self.after_sign_in {
            f.write_str(" (signed-in requests only)")?;
        }
        Ok(())
    }
}

impl Policy {
    /// A sentence on why `decision` was reached for `request`. Allocates; call
    /// only when a decision is shown.
    pub fn explain(&self, decision: &Decision, request: &Request) -> String {
        let Some(i) = decision.rule else {
            return match decision.action {
                Action::Allow => "no rule matched; the default allows".to_string(),
                Action::Deny => format!("no rule matched; the default denies ({})", decision.status),
            };
        };
        let Some(r) = self.rules.get(i) else {
            return format!("rule {} (not in this policy)", i + 1);
        };
        let verb = match (r.action, r.quarantine) {
            (Action::Allow, _) => "allowed".to_string(),
            (Action::Deny, true) => format!("quarantined ({})", decision.status),
            (Action::Deny, false) if decision.status == 0 => "aborted the connection".to_string(),
            (Action::Deny, false) if decision.substatus != 0 => {
                format!("denied ({}.{})", decision.status, decision.substatus)
            }
            (Action::Deny, false) => format!("denied ({})", decision.status),
        };
        let why = r.note.clone().unwrap_or_else(|| r.describe_conditions());
        let seen = observed(r, request);
        if seen.is_empty() {
            format!("rule {} '{}' {verb}: {why}", i + 1, r.name)
        } else {
            format!("rule {} '{}' {verb}: {why} [{seen}]", i + 1, r.name)
        }
    }
}

/// What the request showed for the fields a rule looks at.
fn observed(r: &Rule, req: &Request) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut add = |k: &str, v: &str| {
        let item = format!("{k} '{v}'");
        if !v.is_empty() && !seen.contains(&item) {
            seen.push(item);
        }
    };
    fn walk(c: &Cond, req: &Request, add: &mut dyn FnMut(&str, &str)) {
        match c {
            Cond::Path(_) => add("path", &req.stem),
            Cond::UserAgent { .. } | Cond::UserAgentEws(_) => add("user agent", &req.user_agent),
            Cond::Command(_) => add("command", &req.activesync.command),
            Cond::DeviceType(_) => add("device type", &req.activesync.device_type),
            Cond::DeviceId(_) | Cond::Device(_) | Cond::OwnDevices { .. } => add("device", req.device_key()),
            Cond::DeviceModel(_) => add("device model", &req.activesync.log.device_model),
            Cond::DeviceOs(_) => add("device OS", &req.activesync.log.device_os),
            Cond::User(_) => add("user", &req.user),
            Cond::Auth(_) => add("authentication", req.auth.key()),
            Cond::IisScan { .. } => add("user agent", &req.user_agent),
            Cond::Location(_) => add("path", &req.stem),
            Cond::Pattern(p) => match p.input {
                crate::pattern::RewriteInput::UserAgent => add("user agent", &req.user_agent),
                crate::pattern::RewriteInput::QueryString => with_client_query(req, |q| add("query", q)),
                crate::pattern::RewriteInput::ForwardedFor => add("X-Forwarded-For", req.forwarded_for_header()),
                crate::pattern::RewriteInput::Method => add("method", &req.method),
                _ => add("path", &req.stem),
            },
            Cond::Any(cs) => cs.iter().for_each(|c| walk(c, req, add)),
            Cond::Not(c) => walk(c, req, add),
            _ => {}
        }
    }
    for c in r.conditions.iter().chain(r.unless.iter().flatten()) {
        walk(c, req, &mut add);
    }
    seen.join(", ")
}
