//! Alerts: the audit's findings, and a policy's denials, one request at a
//! time, each raised once. [`Alerter`] is the sink `casguard watch` feeds.

use std::collections::BTreeSet;
use std::convert::Infallible;

use exchange::{Client, Interpreter, Request, RequestSink, Traffic};
use policy::{Action, ReadyPolicy};
use serde::{Serialize, Serializer};

use crate::findings::{findings_of, FindingKind};

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertKind {
    /// A request that makes a finding of the audit.
    Finding(FindingKind),
    /// A person's device the policy would deny.
    PolicyDeny,
}

impl AlertKind {
    /// Stable kebab-case name: a finding's key, or `policy-deny`.
    pub fn key(self) -> &'static str {
        match self {
            AlertKind::Finding(kind) => kind.key(),
            AlertKind::PolicyDeny => "policy-deny",
        }
    }
}

impl Serialize for AlertKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.key())
    }
}

/// One alert, as printed.
#[derive(Debug, Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    pub client: String,
    pub protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    pub network: String,
    /// Exploit detection rule, or the policy rule that denies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub file: String,
    pub summary: String,
}

impl Alert {
    /// One line for a terminal. Log text is attacker-chosen: control
    /// characters (terminal escapes) are shown as `\xNN`, never sent as they are.
    pub fn line(&self) -> String {
        let text = format!("{} {} {}", self.time.as_deref().unwrap_or("-"), self.kind.key(), self.summary);
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_control() {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// What alerts are raised on: the interpreter the requests are read with,
/// the policy whose denials alert too, and the time before which lines are
/// ignored.
pub struct AlertRules<'a> {
    pub interpreter: &'a Interpreter,
    pub policy: Option<&'a ReadyPolicy>,
    pub since: Option<i64>,
}

/// The sink of `casguard watch`: raises each alert whose key is not in
/// `seen` yet, and adds the key.
pub struct Alerter<'a> {
    rules: &'a AlertRules<'a>,
    /// The log being read, as shown in alerts.
    file: &'a str,
    seen: &'a mut BTreeSet<String>,
    pub alerts: Vec<Alert>,
}

impl<'a> Alerter<'a> {
    pub fn new(rules: &'a AlertRules<'a>, file: &'a str, seen: &'a mut BTreeSet<String>) -> Self {
        Alerter { rules, file, seen, alerts: Vec::new() }
    }

    fn raise(&mut self, kind: AlertKind, req: &Request, rule: Option<&str>) {
        let client = self.rules.interpreter.catalog().get(req.client);
        let key = alert_key(kind, req, client, rule);
        if !self.seen.contains(&key) {
            self.seen.insert(key);
            self.alerts.push(self.alert(kind, req, client, rule.map(str::to_string)));
        }
    }

    fn alert(&self, kind: AlertKind, req: &Request, client: &Client, rule: Option<String>) -> Alert {
        let network = self.rules.interpreter.networks().name(req.network).to_string();
        let source = req.client_ip.map(|ip| ip.to_string());
        let from = source.as_deref().map(|ip| format!(" from {ip} ({network})")).unwrap_or_default();
        let (user, device, protocol) = (&req.user, req.device_key(), req.protocol.key());
        let summary = match kind {
            AlertKind::Finding(FindingKind::CloudCredentials) => {
                format!("{user}: first {} device {device}{from}", client.name)
            }
            AlertKind::Finding(FindingKind::EwsNonOutlook) => {
                format!("{user}: EWS from {} ({}){from}", client.name, req.user_agent)
            }
            AlertKind::Finding(FindingKind::MobileOnEws) => {
                format!("{user}: mobile client {} on {protocol}, device {device}{from}", client.name)
            }
            AlertKind::PolicyDeny => format!(
                "{user}: {} device {device} on {protocol} would be denied by {}",
                client.name,
                rule.as_deref().unwrap_or("the policy")
            ),
            AlertKind::Finding(FindingKind::CloudToken) => {
                format!("{user}: first {} device {device}{from}", client.name)
            }
            AlertKind::Finding(kind) => format!(
                "{} {protocol}{from}: {} {} ({})",
                rule.as_deref().unwrap_or(kind.key()),
                req.method,
                req.stem,
                req.outcome().key()
            ),
        };
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Alert {
            kind,
            time: (req.time != 0).then(|| w3c::time::format_rfc3339(req.time)),
            user: some(user),
            device: (req.traffic == Traffic::Person).then(|| device.to_string()),
            device_type: some(&req.activesync.device_type),
            client: client.id.clone(),
            protocol,
            user_agent: some(&req.user_agent),
            source_ip: source,
            network,
            rule,
            file: self.file.to_string(),
            summary,
        }
    }
}

/// What makes an alert new: its kind and who or what it is about.
fn alert_key(kind: AlertKind, req: &Request, client: &Client, rule: Option<&str>) -> String {
    let (user, device) = (&req.user, req.device_key());
    match kind {
        AlertKind::Finding(FindingKind::CloudCredentials | FindingKind::CloudToken) => format!("{}|{user}", kind.key()),
        AlertKind::Finding(FindingKind::EwsNonOutlook) => format!("{}|{user}|{}", kind.key(), client.id),
        AlertKind::Finding(FindingKind::MobileOnEws) | AlertKind::PolicyDeny => {
            format!("{}|{user}|{device}", kind.key())
        }
        // An attack: once per rule and source.
        AlertKind::Finding(_) => {
            let ip = req.client_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into());
            format!("{}|{}|{ip}", kind.key(), rule.unwrap_or("unknown"))
        }
    }
}

impl RequestSink for Alerter<'_> {
    type Error = Infallible;

    fn request(&mut self, req: &Request) -> Result<(), Infallible> {
        if self.rules.since.is_some_and(|since| req.time != 0 && req.time < since) {
            return Ok(());
        }
        let catalog = self.rules.interpreter.catalog();
        for kind in findings_of(req, catalog) {
            let rule = req.attack.filter(|_| req.traffic == Traffic::Attack).map(|a| a.rule);
            self.raise(AlertKind::Finding(kind), req, rule);
        }
        // As the findings: only people's requests with a user.
        if let (Some(policy), Traffic::Person, false) = (self.rules.policy, req.traffic, req.user.is_empty()) {
            let decision = policy.evaluate(req);
            if decision.action == Action::Deny {
                self.raise(AlertKind::PolicyDeny, req, Some(policy.decided_by(&decision)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let alert = Alert {
            kind: AlertKind::Finding(FindingKind::EwsNonOutlook),
            time: None,
            user: None,
            device: None,
            device_type: None,
            client: "ews-app".into(),
            protocol: "ews",
            user_agent: None,
            source_ip: None,
            network: "external".into(),
            rule: None,
            file: "x.log".into(),
            summary: "bob: EWS from \u{1b}[31mred".into(),
        };
        let line = alert.line();
        assert!(!line.contains('\u{1b}') && line.contains("\\x1b[31mred"), "{line}");
        assert!(line.starts_with("- ews-non-outlook bob:"), "{line}");
    }
}
