//! The evasion table (`tests/data/evasions.toml`): every spelling of a
//! request is decided as IIS would route it, both by `policy::evaluate` on
//! the request the gateway builds and by the live gateway in front of a mock
//! Exchange; what IIS would refuse never reaches Exchange.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use common::*;
use exchange::Interpreter;
use hyper::header::{HeaderMap, HeaderValue, HOST, USER_AGENT};
use hyper::{Method, Uri};
use policy::{Action, Policy, ReadyPolicy};

const TABLE: &str = include_str!("data/evasions.toml");
const POLICY: &str = include_str!("data/evasions-policy.toml");

#[derive(serde::Deserialize)]
struct Table {
    case: Vec<Case>,
}

#[derive(serde::Deserialize, Clone)]
struct Case {
    target: String,
    outcome: String,
    status: Option<u16>,
    substatus: Option<u16>,
    why: String,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Deny,
    Allow,
    Refuse(u16, u16),
}

impl Case {
    fn expected(&self) -> Outcome {
        match self.outcome.as_str() {
            "deny" => Outcome::Deny,
            "allow" => Outcome::Allow,
            "refuse" => Outcome::Refuse(self.status.expect("a refusal names its status"), self.substatus.unwrap_or(0)),
            other => panic!("unknown outcome {other:?}"),
        }
    }

    /// The request target; two are too long to write out.
    fn target(&self) -> String {
        match self.target.as_str() {
            "LONG_SEGMENT" => format!("/EWS/{}", "a".repeat(261)),
            "MANY_SEGMENTS" => format!("/EWS{}", "/a".repeat(255)),
            t => t.to_string(),
        }
    }
}

fn cases() -> Vec<Case> {
    let table: Table = toml::from_str(TABLE).expect("the table parses");
    table.case
}

/// What the gateway's decision path makes of a target, without a network.
fn decide(policy: &ReadyPolicy, interpreter: &Interpreter, target: &str) -> Outcome {
    // hyper answers 400 itself to a target it cannot parse.
    let Ok(uri) = target.parse::<Uri>() else { return Outcome::Refuse(400, 0) };
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("mail.contoso.com"));
    headers.insert(USER_AGENT, HeaderValue::from_static("evasion-test"));
    let conn = gateway::model::ConnInfo {
        peer: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
        local: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 443,
        trusted_peer: false,
    };
    let mut m = exchange::Request::default();
    let filled = gateway::model::fill(&mut m, &Method::GET, &uri, &headers, &conn, &[], 0, "");
    interpreter.interpret(&mut m);
    if let Some(r) = filled.refusal {
        let (status, substatus) = r.status();
        return Outcome::Refuse(status, substatus);
    }
    if let Err(r) = gateway::screen::cookie_routing(&m, &headers) {
        return Outcome::Refuse(r.status, r.substatus);
    }
    match policy.evaluate(&m) {
        d if d.refused.is_some() => Outcome::Refuse(d.status, d.substatus),
        d if d.action == Action::Deny => Outcome::Deny,
        _ => Outcome::Allow,
    }
}

#[test]
fn the_table_has_cases_of_every_kind() {
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for kind in ["deny", "allow", "refuse"] {
        assert!(cases.iter().filter(|c| c.outcome == kind).count() >= 5, "few {kind} cases");
    }
    assert!(cases.iter().all(|c| !c.why.is_empty()));
}

#[test]
fn evaluate_decides_every_spelling_as_iis_routes_it() {
    let interpreter = Arc::new(Interpreter::builtin());
    let policy =
        Policy::from_toml(POLICY, "evasions-policy.toml".as_ref(), interpreter.catalog(), interpreter.networks())
            .unwrap();
    let policy = ReadyPolicy::new(policy, None, interpreter.clone()).unwrap();
    let wrong: Vec<String> = cases()
        .iter()
        .filter_map(|c| {
            let got = decide(&policy, &interpreter, &c.target());
            (got != c.expected()).then(|| format!("{}: got {got:?}, want {:?} ({})", c.target, c.expected(), c.why))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The status line of the answer to one raw request on its own connection.
async fn status_of(addr: std::net::SocketAddr, target: &str) -> u16 {
    let head = format!(
        "GET {target} HTTP/1.1\r\nHost: mail.contoso.com\r\nUser-Agent: evasion-test\r\nConnection: close\r\n\r\n"
    );
    let text = send_raw(addr, head.as_bytes()).await;
    text.strip_prefix("HTTP/1.1 ").and_then(|t| t.get(..3)).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_gateway_decides_every_spelling_and_forwards_only_what_is_allowed() {
    within(60, async {
        let (mock, up) = start_mock().await;
        let gw = start_gateway(POLICY, up).await;
        let mut wrong = Vec::new();
        let mut allowed = Vec::new();
        for c in cases() {
            let target = c.target();
            let status = status_of(gw.addr, &target).await;
            let ok = match c.expected() {
                Outcome::Deny => status == 403,
                Outcome::Allow => {
                    allowed.push(target.clone());
                    status == 200
                }
                Outcome::Refuse(want, _) => status == want,
            };
            if !ok {
                wrong.push(format!("{target}: status {status}, want {:?} ({})", c.expected(), c.why));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // Exchange saw exactly the allowed requests, each as the client sent it.
        let seen: Vec<String> = mock.seen().into_iter().map(|s| s.uri).collect();
        assert_eq!(seen, allowed);
        gw.stop().await;
    })
    .await;
}
