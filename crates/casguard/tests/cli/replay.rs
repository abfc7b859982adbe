//! What `simulate` predicts is what `gateway` does: front-end IIS lines are
//! sent again as the requests they log, through a live gateway, and each
//! request's decision in its access log is compared with `casguard export
//! --policy` of the same lines (the per-request form of simulate's decisions).
//!
//! A line becomes the request IIS logged: its method, stem and query (less
//! the `CorrelationID` and `cafeReqId` Exchange's front end appends to what
//! it logs), its user agent (`+` is IIS's escape for a space), its user as
//! Basic credentials, and its c-ip and X-Forwarded-For as X-Forwarded-For
//! from a trusted proxy, with the internal ranges a log's line trusts as
//! trusted proxies too, so the client address and network are the logged
//! ones. What a replay from one machine cannot give back is left out, by
//! name: the connection's own address (IIS IP restrictions judge c-ip, which
//! is always loopback here) and the authentication scheme (IIS lines do not
//! log it; the replay signs in with Basic).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use crate::gateway::{kill, plain_listener, spawn_with_stderr, upstream};
use crate::util::{bin, inventory_build, ok, text, workspace};

/// One W3C line, by field name.
type Line = HashMap<String, String>;

/// The lines of W3C files (plain or gzip), each with where it was read.
fn read_lines(files: &[PathBuf]) -> Vec<(String, Line)> {
    let mut out = Vec::new();
    for file in files {
        let raw = std::fs::read(file).unwrap();
        let raw = if file.extension().is_some_and(|e| e == "gz") {
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut plain).unwrap();
            plain
        } else {
            raw
        };
        let mut fields: Vec<String> = Vec::new();
        for (n, line) in String::from_utf8_lossy(&raw).lines().enumerate() {
            if let Some(names) = line.strip_prefix("#Fields:") {
                fields = names.split_whitespace().map(str::to_string).collect();
            } else if !line.starts_with('#') && !line.is_empty() {
                let values: Vec<&str> = line.split(' ').collect();
                if values.len() == fields.len() {
                    let at = format!("{}:{}", file.display(), n + 1);
                    out.push((at, fields.iter().cloned().zip(values.into_iter().map(str::to_string)).collect()));
                }
            }
        }
    }
    out
}

fn field<'a>(line: &'a Line, name: &str) -> Option<&'a str> {
    line.get(name).map(String::as_str).filter(|v| *v != "-")
}

/// The query the client sent: the logged one without what Exchange's front
/// end appends to it (`&CorrelationID=<empty>;&cafeReqId=…;`, and Outlook on
/// the web's `&encoding=;`).
fn sent_query(logged: &str) -> String {
    let mut query = logged.to_string();
    for mark in ["&CorrelationID=", "CorrelationID=", "&cafeReqId=", "cafeReqId=", "&encoding=;"] {
        while let Some(at) = query.find(mark) {
            let end = query[at..].find(';').map_or(query.len(), |i| at + i + 1);
            query.replace_range(at..end, "");
        }
    }
    query
}

/// The stem as a client writes it in a request target.
fn target_path(stem: &str) -> String {
    let mut out = String::new();
    for b in stem.bytes() {
        if b.is_ascii_alphanumeric() || b"/:@!$&'()*+,;=-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request a line logs, as raw bytes.
fn request_of(line: &Line, query: &str) -> Vec<u8> {
    let mut target = target_path(field(line, "cs-uri-stem").unwrap_or("/"));
    if !query.is_empty() {
        target.push('?');
        target.push_str(query);
    }
    let mut head = format!("{} {target} HTTP/1.1\r\nHost: mail.contoso.com\r\n", line["cs-method"]);
    if let Some(ua) = field(line, "cs(User-Agent)") {
        head.push_str(&format!("User-Agent: {}\r\n", ua.replace('+', " ")));
    }
    if let Some(user) = field(line, "cs-username") {
        head.push_str(&format!("Authorization: Basic {}\r\n", STANDARD.encode(format!("{user}:pw"))));
    }
    let mut chain: Vec<String> = field(line, "X-Forwarded-For").map(|x| x.replace('+', " ")).into_iter().collect();
    chain.push(line["c-ip"].clone());
    head.push_str(&format!("X-Forwarded-For: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", chain.join(", ")));
    head.into_bytes()
}

/// The hops a log's line trusts: its c-ip and any X-Forwarded-For element
/// at a loopback or internal address (`exchange::networks::is_private_addr`)
/// are proxies, the right-most public address is the client. The gateway
/// trusts only its `--trusted-proxy` hops, so the replay names these.
const LOG_PROXIES: [&str; 9] = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

fn send(addr: SocketAddr, request: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    std::str::from_utf8(out.get(9..12).unwrap_or_default()).ok().and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// A decision as both sides write it: action, and the rule (or refusal) that decided.
type Verdict = (String, String);

/// Sends every line's request through a gateway running `policy`; per line,
/// the gateway's verdict from its access log and the status it answered.
fn through_gateway(policy: &Path, lines: &[(String, Line)], extra: &[&str]) -> Vec<(Verdict, u16)> {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream();
    let (child, rx) = spawn_with_stderr(
        bin()
            .args(["gateway", "--policy"])
            .arg(policy)
            .args(["--listen", "127.0.0.1:0", "--upstream", &format!("http://{up}")])
            .args(LOG_PROXIES.iter().flat_map(|p| ["--trusted-proxy", p]))
            .args(["--health-checks", "none", "--reload-interval", "60", "--drain-timeout", "5", "--access-log"])
            .arg(dir.path())
            .args(extra),
    );
    let addr = plain_listener(&rx);
    let mut sent = Vec::new();
    for (_, line) in lines {
        let query = sent_query(field(line, "cs-uri-query").unwrap_or(""));
        let status = send(addr, &request_of(line, &query));
        sent.push((line["cs-method"].clone(), query, status));
    }
    kill(&child, "-TERM");
    let mut child = child;
    assert!(child.wait().unwrap().success());

    // The access log in the order lines were finished; matched to the sent
    // requests by method and query, first in, first out.
    let files: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    let mut logged: HashMap<(String, String), VecDeque<Verdict>> = HashMap::new();
    for (_, l) in read_lines(&files) {
        let query = field(&l, "cs-uri-query").unwrap_or("").to_string();
        let rule = match field(&l, "x-casguard-rule") {
            Some(rule) => rule.replace('+', " "),
            None => "default".to_string(),
        };
        logged.entry((l["cs-method"].clone(), query)).or_default().push_back((l["x-casguard-decision"].clone(), rule));
    }
    sent.into_iter()
        .map(|(method, query, status)| {
            let verdict = logged.get_mut(&(method.clone(), query.clone())).and_then(VecDeque::pop_front);
            (verdict.unwrap_or_else(|| panic!("{method} ?{query} is not in the gateway's access log")), status)
        })
        .collect()
}

/// `casguard export --policy` of the lines: per line, in order, the verdict
/// and the status it predicts (a file at a time, one thread: in line order).
fn through_export(policy: &Path, files: &[PathBuf], extra: &[&str]) -> Vec<(Verdict, u16)> {
    let export = |file: &PathBuf| {
        let mut export = bin();
        export
            .args(["export", "-q", "--threads", "1", "--format", "jsonl", "--policy"])
            .arg(policy)
            .args(extra)
            .arg(file);
        text(&ok(export.output().unwrap()).stdout)
    };
    files
        .iter()
        .map(export)
        .collect::<Vec<_>>()
        .concat()
        .lines()
        .map(|l| {
            let event: Value = serde_json::from_str(l).unwrap();
            let c = &event["casguard"];
            let verdict = (c["decision"].as_str().unwrap().to_string(), c["policy_rule"].as_str().unwrap().to_string());
            (verdict, c["policy_status"].as_u64().unwrap_or(0) as u16)
        })
        .collect()
}

/// Replays `files` under `policy` (with `extra` options for both sides, an
/// inventory); the lines on which gateway and export disagree, and how many
/// verdicts each rule gave.
fn disagreements(policy: &Path, files: &[PathBuf], extra: &[&str]) -> (Vec<String>, BTreeMap<Verdict, usize>) {
    let lines = read_lines(files);
    let predicted = through_export(policy, files, extra);
    assert_eq!(predicted.len(), lines.len(), "export wrote one event a line");
    let enforced = through_gateway(policy, &lines, extra);
    let mut wrong = Vec::new();
    let mut verdicts = BTreeMap::new();
    for (((at, line), (want, want_status)), (got, got_status)) in lines.iter().zip(predicted).zip(enforced) {
        // What a replay cannot give back (see the module's doc).
        if want.1.starts_with("ip_restrictions") || want.1.starts_with("auth_policies") {
            continue;
        }
        *verdicts.entry(want.clone()).or_default() += 1;
        let status_agrees = want.0 == "allow" || want_status == got_status;
        if want != got || !status_agrees {
            wrong.push(format!(
                "{at}: simulate {want:?} {want_status}, gateway {got:?} {got_status}: {} {} {}",
                line["cs-method"],
                line["cs-uri-stem"],
                field(line, "cs(User-Agent)").unwrap_or("-")
            ));
        }
    }
    (wrong, verdicts)
}

fn front_end_logs() -> Vec<PathBuf> {
    let root = workspace().join("examples/logs");
    let mut files: Vec<PathBuf> = ["EX01", "EX02"]
        .iter()
        .flat_map(|server| std::fs::read_dir(root.join(server).join("W3SVC1")).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn the_gateway_decides_every_example_request_as_simulate_predicts() {
    let files = front_end_logs();
    for name in ["outlook-mobile-lockdown", "block-outlook-provision", "ews-allow-outlook-only", "iis-block-outlook-ua"]
    {
        let policy = workspace().join(format!("examples/policies/{name}.toml"));
        let (wrong, verdicts) = disagreements(&policy, &files, &[]);
        assert!(wrong.is_empty(), "{name}: {} of the lines disagree:\n{}", wrong.len(), wrong.join("\n"));
        // The replay judged something: requests denied and allowed, by rules.
        let denied: usize = verdicts.iter().filter(|(v, _)| v.0 == "deny").map(|(_, n)| n).sum();
        let allowed: usize = verdicts.iter().filter(|(v, _)| v.0 == "allow").map(|(_, n)| n).sum();
        assert!(denied > 0 && allowed > 1000, "{name}: {verdicts:?}");
    }
}

/// Exchange's own settings and request filtering, as the gateway applies
/// them: the organisation's mailbox settings judge a mailbox once IIS
/// signed it in, so the anonymous first legs of the logs' sign-ins reach
/// Exchange through the gateway, and simulate must say so; request
/// filtering reads the client's query, not what Exchange adds to an IIS
/// line (`&CorrelationID=<empty>;`, which a `<` sequence denied in simulate
/// alone).
#[test]
fn exchange_settings_and_request_filtering_decide_alike() {
    let files = front_end_logs();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("settings.toml");
    std::fs::write(
        &policy,
        "[mailbox_protocols]\nmapi_http_enabled = false\n\n[ews_access]\news_enabled = true\n\
         application_access_policy = \"EnforceAllowList\"\nlist = [\"Outlook-iOS/*\", \"Outlook-Android/*\"]\n\n\
         [[request_filtering]]\npath = \"/\"\ndeny_query_string_sequences = [\"<\"]\n",
    )
    .unwrap();
    let (wrong, verdicts) = disagreements(&policy, &files, &[]);
    assert!(wrong.is_empty(), "{} of the lines disagree:\n{}", wrong.len(), wrong.join("\n"));
    let by = |prefix: &str| verdicts.iter().filter(|(v, _)| v.1.starts_with(prefix)).map(|(_, n)| n).sum::<usize>();
    // Signed-in MAPI and EWS requests are judged; no client sent a `<`.
    assert!(by("mailbox_protocols") > 0 && by("ews_access") > 0, "{verdicts:?}");
    assert_eq!(by("request_filtering"), 0, "{verdicts:?}");
    // And the anonymous ones are allowed, on both sides (the lines agree).
    let lines = read_lines(&files);
    let mut anonymous = BTreeMap::new();
    for ((_, l), (verdict, _)) in lines.iter().zip(through_export(&policy, &files, &[])) {
        let stem = l["cs-uri-stem"].to_ascii_lowercase();
        let vdir = ["/mapi/", "/ews/"].into_iter().find(|v| stem.starts_with(v));
        if let (Some(vdir), None) = (vdir, field(l, "cs-username")) {
            *anonymous.entry((vdir, verdict)).or_insert(0) += 1;
        }
    }
    assert!(anonymous.keys().all(|(_, v)| v.0 == "allow"), "{anonymous:?}");
    assert!(anonymous.keys().any(|k| k.0 == "/mapi/") && anonymous.keys().any(|k| k.0 == "/ews/"), "{anonymous:?}");
}

/// The ProxyShell-shaped Autodiscover lines of the examples: the gateway
/// refuses them before any rule, and simulate must say so, not "allow".
#[test]
fn requests_the_gateway_refuses_are_refused_in_simulate_too() {
    let files = front_end_logs();
    let policy = workspace().join("examples/policies/block-outlook-provision.toml");
    let (wrong, verdicts) = disagreements(&policy, &files, &[]);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let refused = verdicts.iter().find(|(v, _)| v.1 == exchange::ROUTED_PAST_ITS_PATH).map(|(_, n)| *n);
    assert!(refused.is_some_and(|n| n >= 3), "{verdicts:?}");
}

#[test]
fn the_real_public_lines_are_decided_alike_too() {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(workspace().join("tests/data/iis")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let policy = workspace().join("examples/policies/outlook-mobile-lockdown.toml");
    let (wrong, verdicts) = disagreements(&policy, &files, &[]);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(verdicts.values().sum::<usize>() >= 20, "{verdicts:?}");
}

/// A `device = "new"` rule decides by the same inventory on both sides:
/// devices first seen after the cut-over are new to the gateway and to export.
#[test]
fn device_rules_decide_alike_with_one_inventory() {
    let files = front_end_logs();
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.json");
    inventory_build("2026-11-03T00:00:00Z", &[], &inventory, &workspace().join("examples/logs"));
    let policy = workspace().join("examples/policies/block-new-outlook-devices.toml");
    let (wrong, verdicts) = disagreements(&policy, &files, &["--inventory", inventory.to_str().unwrap()]);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let denied = verdicts.iter().find(|(v, _)| v.1 == "block new Outlook mobile devices").map(|(_, n)| *n);
    assert!(denied.is_some_and(|n| n > 0), "{verdicts:?}");
}
