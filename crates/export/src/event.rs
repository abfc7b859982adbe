//! One event per request, for export: the flat row behind the Parquet
//! columns, and its JSON line with Elastic Common Schema (ECS) names.
//!
//! Every request is an event (people, probes, back-end hops, machine
//! accounts and attacks alike). Only fields of the request model
//! are written: custom log fields such as `cs(Authorization)` are never
//! carried, so no credential can leak into a SIEM through an export.

use std::borrow::Cow;
use std::net::IpAddr;

use exchange::{AuthType, Catalog, Networks, Request, Source, Traffic};
use policy::ReadyPolicy;
use serde::Serialize;

/// Stable key of a kind of traffic, as in the `traffic` column.
pub fn traffic_key(traffic: Traffic) -> &'static str {
    match traffic {
        Traffic::Person => "person",
        Traffic::Probe => "probe",
        Traffic::Backend => "backend",
        Traffic::Machine => "machine",
        Traffic::Attack => "attack",
        Traffic::Duplicate => "duplicate",
    }
}

fn some(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// A request as one flat row. Empty values are `None`. Serialized, it is
/// the `casguard` object of the JSON line: the fields ECS has no name for,
/// in this order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event<'a> {
    pub protocol: &'static str,
    /// Client id from the catalog.
    pub client: &'a str,
    pub traffic: &'static str,
    pub network: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<&'a str>,
    /// cs-username as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    /// The authentication scheme (`basic`, `ntlm`, ...); none from IIS logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub substatus: Option<u16>,
    /// c-ip, the connection's peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_for: Option<&'a str>,
    /// The detection rule of an attack, and its kind (`exploit`, `web-shell`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack_rule: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack_kind: Option<&'static str>,
    /// `allow` or `deny` when a policy was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'static str>,
    /// The policy rule that decided (`default` when none matched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_rule: Option<&'a str>,
    /// HTTP status the policy answers with when it denies (0: connection reset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_status: Option<u16>,
    // The rest have ECS names (see `write_json_line`).
    /// Unix seconds, UTC.
    #[serde(skip)]
    pub time: Option<i64>,
    #[serde(skip)]
    pub server_ip: Option<IpAddr>,
    #[serde(skip)]
    pub site_port: Option<u16>,
    #[serde(skip)]
    pub method: Option<&'a str>,
    #[serde(skip)]
    pub uri_stem: Option<&'a str>,
    /// As logged, with any secret's value written `REDACTED` (see
    /// [`exchange::url::redact_secrets`]).
    #[serde(skip)]
    pub uri_query: Option<Cow<'a, str>>,
    /// The identity key (lower-cased account name).
    #[serde(skip)]
    pub user: Option<&'a str>,
    #[serde(skip)]
    pub user_agent: Option<&'a str>,
    #[serde(skip)]
    pub status: Option<u16>,
    /// The client after X-Forwarded-For resolution.
    #[serde(skip)]
    pub client_ip: Option<IpAddr>,
    /// The ECS `event.dataset`: the log the request was read from.
    #[serde(skip)]
    pub dataset: &'static str,
}

/// The ECS `event.dataset` of a request read from `source`.
pub fn dataset(source: Source) -> &'static str {
    match source {
        Source::HttpProxy => "casguard.httpproxy",
        Source::Gateway => "casguard.gateway",
        Source::Iis | Source::Unknown => "casguard.iis",
    }
}

impl<'a> Event<'a> {
    pub fn new(
        req: &'a Request,
        catalog: &'a Catalog,
        networks: &'a Networks,
        policy: Option<&'a ReadyPolicy>,
    ) -> Self {
        let (decision, policy_rule, policy_status) = match policy {
            Some(policy) => {
                let d = policy.evaluate(req);
                let status = (d.action == policy::Action::Deny).then_some(d.status);
                (Some(d.action.key()), Some(policy.decided_by(&d)), status)
            }
            None => (None, None, None),
        };
        Event {
            time: (req.time != 0).then_some(req.time),
            server_ip: req.server_ip,
            site_port: (req.server_port != 0).then_some(req.server_port),
            method: some(&req.method),
            uri_stem: some(&req.stem),
            uri_query: some(&req.query).map(exchange::url::redact_secrets),
            protocol: req.protocol.key(),
            user: some(&req.user),
            username: some(&req.username),
            auth: (req.auth != AuthType::Unknown).then(|| req.auth.key()),
            device_id: some(&req.activesync.device_id),
            device_type: some(&req.activesync.device_type),
            client: &catalog.get(req.client).id,
            user_agent: some(&req.user_agent),
            command: some(&req.activesync.command),
            status: (req.status != 0).then_some(req.status),
            substatus: (req.status != 0).then_some(req.substatus),
            peer_ip: req.peer_ip,
            client_ip: req.client_ip,
            forwarded_for: some(&req.forwarded_for),
            network: networks.name(req.network),
            traffic: traffic_key(req.traffic),
            attack_rule: req.attack.map(|a| a.rule),
            attack_kind: req.attack.map(|a| a.kind.key()),
            decision,
            policy_rule,
            policy_status,
            dataset: dataset(req.source),
        }
    }

    pub fn is_probe(&self) -> bool {
        self.traffic == "probe"
    }

    pub fn is_backend(&self) -> bool {
        self.traffic == "backend"
    }

    /// The UTC day of the request, `YYYY-MM-DD`; `None` when the time is unknown.
    pub fn day(&self) -> Option<String> {
        self.time.map(|t| w3c::time::format_rfc3339(t)[..10].to_string())
    }

    /// Append this event as one JSON line (with its `\n`).
    pub fn write_json_line(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let outcome = match self.status {
            None => "unknown",
            Some(s) if s < 400 => "success",
            Some(_) => "failure",
        };
        let doc = Ecs {
            timestamp: self.time.map(w3c::time::format_rfc3339),
            event: EcsEvent { kind: "event", category: ["web"], kind_type: ["access"], dataset: self.dataset, outcome },
            source: self.client_ip.map(|ip| EcsIp { ip }),
            server: EcsServer { ip: self.server_ip, port: self.site_port },
            url: EcsUrl { path: self.uri_stem, query: self.uri_query.as_deref() },
            http: EcsHttp {
                request: EcsHttpRequest { method: self.method },
                response: EcsHttpResponse { status_code: self.status },
            },
            user_agent: self.user_agent.map(|original| EcsUserAgent { original }),
            user: self.user.map(|name| EcsUser { name }),
            casguard: self,
        };
        serde_json::to_writer(&mut *out, &doc)?;
        out.push(b'\n');
        Ok(())
    }
}

#[derive(Serialize)]
struct Ecs<'e, 'a> {
    #[serde(rename = "@timestamp", skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    event: EcsEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<EcsIp>,
    server: EcsServer,
    url: EcsUrl<'e>,
    http: EcsHttp<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<EcsUserAgent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<EcsUser<'a>>,
    casguard: &'e Event<'a>,
}

#[derive(Serialize)]
struct EcsEvent {
    kind: &'static str,
    category: [&'static str; 1],
    #[serde(rename = "type")]
    kind_type: [&'static str; 1],
    dataset: &'static str,
    outcome: &'static str,
}

#[derive(Serialize)]
struct EcsIp {
    ip: IpAddr,
}

#[derive(Serialize)]
struct EcsServer {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

#[derive(Serialize)]
struct EcsUrl<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<&'a str>,
}

#[derive(Serialize)]
struct EcsHttp<'a> {
    request: EcsHttpRequest<'a>,
    response: EcsHttpResponse,
}

#[derive(Serialize)]
struct EcsHttpRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
}

#[derive(Serialize)]
struct EcsHttpResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
}

#[derive(Serialize)]
struct EcsUserAgent<'a> {
    original: &'a str,
}

#[derive(Serialize)]
struct EcsUser<'a> {
    name: &'a str,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use exchange::Interpreter;
    use policy::Policy;

    use super::*;

    fn request(interpreter: &Interpreter, ua: &str, stem: &str, query: &str, user: &str) -> Request {
        let mut req = Request {
            time: 1_793_577_600, // 2026-11-02T00:00:00Z
            method: "POST".into(),
            stem: stem.into(),
            query: query.into(),
            status: 200,
            server_port: 443,
            peer_ip: Some("40.97.1.2".parse().unwrap()),
            user_agent: ua.into(),
            username: user.into(),
            ..Request::default()
        };
        interpreter.interpret(&mut req);
        req
    }

    #[test]
    fn json_line_uses_ecs_names() {
        let interpreter = Interpreter::builtin();
        let req = request(
            &interpreter,
            "Outlook-iOS-Android/1.0",
            "/Microsoft-Server-ActiveSync",
            "Cmd=Sync&DeviceId=ABC&DeviceType=Outlook",
            "CONTOSO\\Alice",
        );
        let event = Event::new(&req, interpreter.catalog(), interpreter.networks(), None);
        assert_eq!(event.day().as_deref(), Some("2026-11-02"));
        let mut out = Vec::new();
        event.write_json_line(&mut out).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["@timestamp"], "2026-11-02T00:00:00Z");
        assert_eq!(v["user_agent"]["original"], "Outlook-iOS-Android/1.0");
        assert_eq!(v["source"]["ip"], "40.97.1.2");
        assert_eq!(v["url"]["path"], "/Microsoft-Server-ActiveSync");
        assert_eq!(v["http"]["request"]["method"], "POST");
        assert_eq!(v["http"]["response"]["status_code"], 200);
        assert_eq!(v["user"]["name"], "alice");
        assert_eq!(v["casguard"]["client"], "outlook-mobile");
        assert_eq!(v["casguard"]["protocol"], "activesync");
        assert_eq!(v["casguard"]["device_id"], "ABC");
        assert_eq!(v["casguard"]["command"], "Sync");
        assert_eq!(v["casguard"]["traffic"], "person");
        assert!(v["casguard"].get("decision").is_none());
        assert_eq!(v["event"]["dataset"], "casguard.iis");
    }

    #[test]
    fn httpproxy_line_names_its_dataset() {
        let interpreter = Interpreter::builtin();
        let mut req = request(&interpreter, "Outlook-iOS-Android/1.0", "/Microsoft-Server-ActiveSync", "", "alice");
        req.source = Source::HttpProxy;
        let event = Event::new(&req, interpreter.catalog(), interpreter.networks(), None);
        let mut out = Vec::new();
        event.write_json_line(&mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["event"]["dataset"], "casguard.httpproxy");
    }

    #[test]
    fn policy_decision_is_filled() {
        let interpreter = Interpreter::builtin();
        let text = "[ews_access]\news_enabled = true\napplication_access_policy = \"EnforceAllowList\"\nlist = []\n\
                    allow_outlook = true\n";
        let policy = Policy::from_toml(text, "p.toml".as_ref(), interpreter.catalog(), interpreter.networks()).unwrap();
        let policy = ReadyPolicy::new(policy, None, Arc::new(interpreter.clone())).unwrap();
        let req = request(&interpreter, "ExchangeServicesClient/15", "/EWS/Exchange.asmx", "", "bob@contoso.com");
        let event = Event::new(&req, interpreter.catalog(), interpreter.networks(), Some(&policy));
        assert_eq!(event.decision, Some("deny"));
        assert_eq!(event.policy_status, Some(403));
        let ok = request(&interpreter, "Microsoft Office Outlook 16.0", "/EWS/Exchange.asmx", "", "bob@contoso.com");
        let event = Event::new(&ok, interpreter.catalog(), interpreter.networks(), Some(&policy));
        assert_eq!(event.decision, Some("allow"));
        assert_eq!(event.policy_status, None);
    }
}
