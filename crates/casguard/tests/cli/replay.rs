//! What `simulate` predicts is what `gateway` does: front-end IIS lines are
//! sent again as the requests they log, through a live gateway, and each
//! request's decision in its access log is compared with `casguard export
//! --policy` of the same lines (the per-request form of simulate's decisions).
//! The lines are the generator's (examples/logs), an estate written apart
//! from casguard (tests/apart/write.py) with its Exchange HttpProxy logs,
//! and the real public samples of tests/data/iis; and simulate's per-rule
//! counts are checked to be the sums of export's decisions.
//!
//! A line becomes the request IIS logged: its method, stem and query (less
//! the `CorrelationID` and `cafeReqId` Exchange's front end appends to what
//! it logs), its user agent and user (`+` is IIS's escape for a space), its
//! user as Basic credentials, and its c-ip and X-Forwarded-For as
//! X-Forwarded-For from a trusted proxy, with the internal ranges a log's
//! line trusts as trusted proxies too, so the client address and network are
//! the logged ones. A logged stem is decoded, so a `%` in it is sent as
//! `%25`, except where it starts an escape (`%40`): IIS refuses a path
//! still escaped once decoded (404.11), so an escape on a line it served is
//! the client's own spelling (OWASSRF's
//! `/owa/mastermailbox%40outlook.com/powershell`, served 200).
//!
//! What a replay from one machine cannot give back is left out, by name:
//! the connection's own address and the authentication scheme. IIS IP
//! restrictions judge the connection, always loopback here, and a line
//! whose c-ip and X-Forwarded-For name no public address has its client in
//! c-ip, the connection, which the gateway judges as it judges an internal
//! client a trusted proxy names (README, "Client address"): export reads
//! such a line with c-ip `127.0.0.1`, the request as replayed (a rule on
//! the internal network then judges it as loopback's, on both sides). IIS
//! lines do not log the scheme, and the replay signs in with Basic:
//! authentication policies decide on either side alone. Exchange's HttpProxy
//! logs do log it, and their lines are replayed too, signed in as each says
//! (Basic, an NTLM AUTHENTICATE message naming the user or, not signed in,
//! a NEGOTIATE one, a bearer token naming the user); left out by name are
//! those whose credentials a line does not hold: FBA's cookie, a Kerberos
//! ticket, the user of a failed Basic sign-in.
//!
//! The first run on the estate written apart (seed 7, every policy) found
//! the replay wrong, not casguard: a user logged `CONTOSO\John+Smith` was
//! sent as `John+Smith` (17 MAPI lines under `mapi-http-off` and
//! `mailbox-protocols`), OWASSRF's stem as `%2540` (a double escape the
//! gateway refuses, 3 lines), and internal clients (c-ip `10.1.x.x`, no
//! X-Forwarded-For) as a trusted proxy's, judged by the connection's
//! loopback address (400 MAPI lines under `network`). Seeds 2026 and 3 and
//! the real samples agree as well; so do simulate's counts, with HttpProxy
//! logs beside the IIS logs too, and the HttpProxy lines alone (every policy
//! by hand; a failed Basic sign-in replayed with a made-up user is judged as
//! that user's by the gateway and as nobody's by simulate, which reads no
//! user in the line).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use crate::gateway::{kill, plain_listener, spawn_with_stderr, upstream};
use crate::util::{bin, casguard, inventory_build, ok, python_or_skip, python_with, skip, text, workspace};

/// One W3C line, by field name.
type Line = HashMap<String, String>;

/// A W3C file's text (plain or gzip).
fn read_text(file: &Path) -> String {
    let raw = std::fs::read(file).unwrap();
    if file.extension().is_some_and(|e| e == "gz") {
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut plain).unwrap();
        return String::from_utf8_lossy(&plain).into_owned();
    }
    String::from_utf8_lossy(&raw).into_owned()
}

/// The lines of W3C files (plain or gzip), each with where it was read.
fn read_lines(files: &[PathBuf]) -> Vec<(String, Line)> {
    let mut out = Vec::new();
    for file in files {
        let mut fields: Vec<String> = Vec::new();
        for (n, line) in read_text(file).lines().enumerate() {
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

/// Whether a line's c-ip or X-Forwarded-For names a public address: if not,
/// its client is c-ip, the connection's own address (see the module's doc).
fn names_public(line: &Line) -> bool {
    let forwarded = field(line, "X-Forwarded-For").unwrap_or("").replace('+', " ");
    let public = forwarded
        .split(',')
        .chain([line["c-ip"].as_str()])
        .filter_map(exchange::classify::parse_forwarded)
        .any(|ip| !exchange::networks::is_private_addr(ip));
    public
}

/// The lines of `files` as the replay sends them, a plain file each in
/// `dir`: those `read_lines` reads, with c-ip `127.0.0.1` where the line
/// names no public address, the replay's connection; the headers kept.
fn as_replayed(files: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let mut text = String::new();
        let mut fields: Vec<String> = Vec::new();
        for line in read_text(file).lines() {
            if let Some(names) = line.strip_prefix("#Fields:") {
                fields = names.split_whitespace().map(str::to_string).collect();
            } else if !line.starts_with('#') && !line.is_empty() {
                let mut values: Vec<&str> = line.split(' ').collect();
                if values.len() != fields.len() {
                    continue;
                }
                let parsed: Line = fields.iter().cloned().zip(values.iter().map(|v| v.to_string())).collect();
                if !names_public(&parsed) {
                    let at = fields.iter().position(|f| f == "c-ip").unwrap();
                    values[at] = "127.0.0.1";
                }
                text.push_str(&values.join(" "));
                text.push('\n');
                continue;
            }
            text.push_str(line);
            text.push('\n');
        }
        let copy = dir.join(format!("{i:03}.log"));
        std::fs::write(&copy, text).unwrap();
        out.push(copy);
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

/// The stem as a client writes it in a request target: escaped, but for a
/// `%` that starts an escape (see the module's doc).
fn target_path(stem: &str) -> String {
    let mut out = String::new();
    let bytes = stem.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let escape = b == b'%' && bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        if escape || b.is_ascii_alphanumeric() || b"/:@!$&'()*+,;=-._~".contains(&b) {
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
        let user = user.replace('+', " ");
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

/// Sends every request through a gateway running `policy`; per request, the
/// gateway's verdict from its access log and the status it answered.
fn through_gateway(policy: &Path, requests: &[Vec<u8>], extra: &[&str]) -> Vec<(Verdict, u16)> {
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
    // Each distinct request once (the gateway judges a request alone; export
    // is still compared line by line): the index of each line's request.
    // Each carries its index as its Referer, which the access log records
    // and no decision reads: lines are logged as requests finish, not
    // always in the order they were sent.
    let mut distinct: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut of_line = Vec::new();
    let mut statuses = Vec::new();
    for request in requests {
        let at = match distinct.get(request) {
            Some(&at) => at,
            None => {
                let at = statuses.len();
                let mut marked = request[..request.len() - 2].to_vec();
                marked.extend_from_slice(format!("Referer: {REPLAYED}{at}\r\n\r\n").as_bytes());
                statuses.push(send(addr, &marked));
                distinct.insert(request.clone(), at);
                at
            }
        };
        of_line.push(at);
    }
    kill(&child, "-TERM");
    let mut child = child;
    assert!(child.wait().unwrap().success());

    let files: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    let mut logged: Vec<Option<Verdict>> = vec![None; statuses.len()];
    for (_, l) in read_lines(&files) {
        let at: usize = l["cs(Referer)"].strip_prefix(REPLAYED).and_then(|n| n.parse().ok()).unwrap();
        let rule = match field(&l, "x-casguard-rule") {
            Some(rule) => rule.replace('+', " "),
            None => "default".to_string(),
        };
        assert!(logged[at].replace((l["x-casguard-decision"].clone(), rule)).is_none(), "request {at} logged twice");
    }
    of_line
        .into_iter()
        .map(|at| {
            let verdict =
                logged[at].clone().unwrap_or_else(|| panic!("request {at} is not in the gateway's access log"));
            (verdict, statuses[at])
        })
        .collect()
}

/// The Referer of the replayed requests, before each one's index.
const REPLAYED: &str = "http://replay.invalid/";

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
    let dir = tempfile::tempdir().unwrap();
    let predicted = through_export(policy, &as_replayed(files, dir.path()), extra);
    assert_eq!(predicted.len(), lines.len(), "export wrote one event a line");
    let requests: Vec<Vec<u8>> = lines
        .iter()
        .map(|(_, line)| request_of(line, &sent_query(field(line, "cs-uri-query").unwrap_or(""))))
        .collect();
    let enforced = through_gateway(policy, &requests, extra);
    let mut wrong = Vec::new();
    let mut verdicts = BTreeMap::new();
    for (((at, line), (want, want_status)), (got, got_status)) in lines.iter().zip(predicted).zip(enforced) {
        // What a replay cannot give back (see the module's doc): the
        // connection's address to IP restrictions, the scheme to
        // authentication policies, on either side.
        if [&want, &got].iter().any(|v| v.1.starts_with("ip_restrictions") || v.1.starts_with("auth_policies")) {
            continue;
        }
        *verdicts.entry(want.clone()).or_default() += 1;
        let status_agrees = want.0 == "allow" || want_status == got_status;
        if want != got || !status_agrees {
            wrong.push(format!(
                "{at}: simulate {want:?} {want_status}, gateway {got:?} {got_status}: {} {} {} {} {}",
                line["cs-method"],
                line["cs-uri-stem"],
                field(line, "cs-username").unwrap_or("-"),
                field(line, "cs(User-Agent)").unwrap_or("-"),
                line["c-ip"]
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

/// The policies of examples/policies and, with `apart`, tests/apart/policies.
fn every_policy(apart: bool) -> Vec<PathBuf> {
    let dirs: &[&str] = if apart { &["examples/policies", "tests/apart/policies"] } else { &["examples/policies"] };
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(workspace().join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// The real public IIS samples of tests/data/iis (front-end lines, headers
/// as SOURCES-real.md says; the back-end line without one reads as none),
/// and an inventory of them in `dir` that knows no device.
fn real_lines(dir: &Path) -> (Vec<PathBuf>, PathBuf) {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(workspace().join("tests/data/iis")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let inventory = dir.join("inventory.json");
    inventory_build("2000-01-01T00:00:00Z", &[], &inventory, &workspace().join("tests/data/iis"));
    (files, inventory)
}

#[test]
fn the_real_public_lines_are_decided_alike_too() {
    let dir = tempfile::tempdir().unwrap();
    let (files, inventory) = real_lines(dir.path());
    let mut all = BTreeMap::new();
    for policy in every_policy(false) {
        let (wrong, verdicts) = disagreements(&policy, &files, &["--inventory", inventory.to_str().unwrap()]);
        assert!(wrong.is_empty(), "{}: {}", policy.display(), wrong.join("\n"));
        assert!(verdicts.values().sum::<usize>() >= 20, "{}: {verdicts:?}", policy.display());
        for (verdict, n) in verdicts {
            *all.entry(verdict).or_insert(0) += n;
        }
    }
    // The real lines meet rules of every kind: a user agent filter, device
    // access, URL Rewrite, a refusal before any rule. Not EWS access: the
    // one real EWS line it could deny is a mailbox move's to MRSProxy.svc,
    // which Exchange routes to MRS, past EWS's settings.
    for rule in ["iis_filter", "device_access", "url_rewrite", "autodiscover.json routed"] {
        assert!(all.keys().any(|v| v.0 == "deny" && v.1.starts_with(rule)), "{rule}: {all:?}");
    }
}

/// The front ends' files of the estate tests/apart/write.py writes (seed 7,
/// IIS logs) in `dir`, and an inventory with its device export and the
/// cut-over apart.rs uses, for `device` rules and model and OS rules alike.
fn apart_estate(python: &Path, dir: &Path) -> (PathBuf, Vec<PathBuf>, PathBuf) {
    let logs = crate::apart::write_estate(python, "7", "none", dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path().join("W3SVC1"))
        .filter(|p| p.is_dir())
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .collect();
    files.sort();
    let inventory = dir.join("inventory.json");
    let devices = dir.join("devices.json");
    inventory_build(crate::apart::CUTOVER, &["--devices", devices.to_str().unwrap()], &inventory, &logs);
    (logs, files, inventory)
}

/// Lines casguard's generator did not write: the independent estate of
/// tests/apart, under every example policy and every policy written with it.
#[test]
fn the_gateway_decides_an_estate_written_apart_as_simulate_predicts() {
    let Some(python) = python_or_skip("json, gzip, ipaddress", "no Python 3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, files, inventory) = apart_estate(&python, dir.path());
    let mut all: BTreeMap<String, BTreeMap<Verdict, usize>> = BTreeMap::new();
    for policy in every_policy(true) {
        let (wrong, verdicts) = disagreements(&policy, &files, &["--inventory", inventory.to_str().unwrap()]);
        let name = policy.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(wrong.is_empty(), "{name}: {} of the lines disagree:\n{}", wrong.len(), wrong.join("\n"));
        assert!(verdicts.values().sum::<usize>() >= 1000, "{name}: {verdicts:?}");
        all.insert(name, verdicts);
    }
    let judged =
        |policy: &str, rule: &str| all[policy].iter().filter(|(v, _)| v.1 == rule).map(|(_, n)| *n).sum::<usize>();
    // Rules on the client's network, its device and its mailbox were judged
    // on both sides: outside clients (c-ip), ActiveSync from Microsoft 365
    // (X-Forwarded-For), models from the device export, the organisation's
    // mailbox settings, the new devices. (Internal clients are the replay's
    // loopback on both sides: "MAPI on the LAN" judges none.)
    for (policy, rule) in [
        ("network", "OWA from the LAN"),
        ("network", "no MAPI from elsewhere"),
        ("network", "no ActiveSync from Microsoft 365"),
        ("device-model", "device_access: Block DeviceModel 'iPhone14C2'"),
        ("mapi-http-off", "mailbox_protocols: MapiHttpEnabled=false (organization)"),
        ("new-devices", "no new ActiveSync devices"),
    ] {
        assert!(judged(policy, rule) > 0, "{policy} {rule}: {:?}", all[policy]);
    }
}

/// simulate's per-rule counts against the sums of export's per-request
/// decisions on the same files and options: requests by rule (probes and
/// machine accounts apart, attacks left out, as simulate counts them), and
/// denied; each difference.
fn simulate_counts_disagree(policy: &Path, args: &[&str]) -> Vec<String> {
    let p = policy.to_str().unwrap();
    let mut sim = vec!["simulate", "--quiet", "--format", "json", "--policy", p];
    sim.extend(args);
    let report: Value = serde_json::from_slice(&ok(casguard(&sim)).stdout).unwrap();
    let mut export = vec!["export", "-q", "--format", "jsonl", "--policy", p];
    export.extend(args);
    let mut summed: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    for line in text(&ok(casguard(&export)).stdout).lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let c = &event["casguard"];
        // Back-end hops and HttpProxy lines of requests IIS logged too are
        // the same requests again: simulate counts them once (a back end's
        // hops are its requests when its logs are read alone).
        let key = match c["traffic"].as_str().unwrap() {
            "person" => c["policy_rule"].as_str().unwrap().to_string(),
            "backend" if report["summary"]["backend_only"] == true => c["policy_rule"].as_str().unwrap().to_string(),
            "probe" => "(probes)".to_string(),
            "machine" => "(machines)".to_string(),
            _ => continue,
        };
        let n = summed.entry(key).or_default();
        n[0] += 1;
        n[1] += u64::from(c["decision"] == "deny");
    }
    assert!(!summed.is_empty(), "{p}: export wrote no request");
    let mut counted: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    for rule in report["rules"].as_array().unwrap() {
        let n = [rule["matched_requests"].as_u64().unwrap(), rule["denied_requests"].as_u64().unwrap()];
        if n != [0, 0] {
            counted.insert(rule["name"].as_str().unwrap().to_string(), n);
        }
    }
    for (key, part) in [("(probes)", "probes"), ("(machines)", "machines")] {
        let n = [report[part]["requests"].as_u64().unwrap(), report[part]["denied_requests"].as_u64().unwrap()];
        if n != [0, 0] {
            counted.insert(key.to_string(), n);
        }
    }
    let keys: std::collections::BTreeSet<&String> = summed.keys().chain(counted.keys()).collect();
    keys.into_iter()
        .filter(|k| summed.get(*k) != counted.get(*k))
        .map(|k| format!("{p} {k}: simulate {:?}, export {:?}", counted.get(k), summed.get(k)))
        .collect()
}

#[test]
fn simulate_counts_are_the_sums_of_exports_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let (files, inventory) = real_lines(dir.path());
    let mut wrong = Vec::new();
    let mut args = vec!["--inventory", inventory.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    for policy in every_policy(false) {
        wrong.extend(simulate_counts_disagree(&policy, &args));
    }
    if let Some(python) = python_with("json, gzip, ipaddress") {
        let (logs, _, inventory) = apart_estate(&python, dir.path());
        for policy in every_policy(true) {
            wrong.extend(simulate_counts_disagree(
                &policy,
                &["--inventory", inventory.to_str().unwrap(), logs.to_str().unwrap()],
            ));
        }
    } else {
        skip("no Python 3");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A CSV row of an HttpProxy log (Exchange writes no line break in a value).
fn csv_row(text: &str) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    let row = reader.records().next().and_then(Result::ok);
    row.map(|r| r.iter().map(str::to_string).collect()).unwrap_or_default()
}

/// The lines of Exchange HttpProxy logs (CSV), each with where it was read,
/// and a copy of them all in one file in `dir` (one export reads it faster
/// than hundreds), `ClientIpAddress` as `as_replayed` writes c-ip.
fn read_proxy_lines(files: &[PathBuf], dir: &Path) -> (Vec<(String, Line)>, PathBuf) {
    let mut out = Vec::new();
    let mut copy = String::new();
    for file in files {
        let mut fields: Vec<String> = Vec::new();
        for (n, line) in read_text(file).lines().enumerate() {
            let line = line.trim_start_matches('\u{feff}');
            if line.starts_with('#') || line.is_empty() {
                if let Some(names) = line.strip_prefix("#Fields:") {
                    fields = csv_row(names.trim());
                }
                copy.push_str(line);
                copy.push_str("\r\n");
                continue;
            }
            let mut values = csv_row(line);
            if values.len() != fields.len() {
                continue;
            }
            out.push((format!("{}:{}", file.display(), n + 1), fields.iter().cloned().zip(values.clone()).collect()));
            let at = fields.iter().position(|f| f == "ClientIpAddress").unwrap();
            let client = exchange::classify::parse_forwarded(values[at].split('%').next().unwrap());
            if client.is_none_or(exchange::networks::is_private_addr) {
                values[at] = "127.0.0.1".to_string();
            }
            let mut row = csv::Writer::from_writer(Vec::new());
            row.write_record(&values).unwrap();
            copy.push_str(&String::from_utf8(row.into_inner().unwrap()).unwrap());
        }
    }
    let path = dir.join("HttpProxy_replayed.LOG");
    std::fs::write(&path, copy).unwrap();
    (out, path)
}

/// An NTLM message (MS-NLMP): NEGOTIATE, the first leg, without a user;
/// AUTHENTICATE naming `domain\user` with one.
fn ntlm(user: Option<&str>) -> Vec<u8> {
    let Some(user) = user else {
        let mut m = b"NTLMSSP\0".to_vec();
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&0xa208_8207u32.to_le_bytes());
        m.resize(32, 0);
        return m;
    };
    let (domain, name) = user.rsplit_once('\\').unwrap_or(("", user));
    let mut m = vec![0u8; 72];
    m[..8].copy_from_slice(b"NTLMSSP\0");
    m[8..12].copy_from_slice(&3u32.to_le_bytes());
    for (o, text) in [(28usize, domain), (36, name)] {
        let data: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let (len, off) = (data.len() as u16, m.len() as u32);
        m[o..o + 2].copy_from_slice(&len.to_le_bytes());
        m[o + 2..o + 4].copy_from_slice(&len.to_le_bytes());
        m[o + 4..o + 8].copy_from_slice(&off.to_le_bytes());
        m.extend_from_slice(&data);
    }
    m[60..64].copy_from_slice(&1u32.to_le_bytes());
    m
}

/// The request an HttpProxy line logs, signed in as its
/// `AuthenticationType` says; `None` where the line cannot say the
/// credentials (see the module's doc).
fn proxy_request_of(line: &Line) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut target = target_path(if line["UrlStem"].is_empty() { "/" } else { &line["UrlStem"] });
    let query = line["UrlQuery"].trim_start_matches('?');
    if !query.is_empty() {
        target.push('?');
        target.push_str(query);
    }
    let mut head = format!("{} {target} HTTP/1.1\r\nHost: mail.contoso.com\r\n", line["Method"]);
    if !line["UserAgent"].is_empty() {
        head.push_str(&format!("User-Agent: {}\r\n", line["UserAgent"]));
    }
    let user = line["AuthenticatedUser"].as_str();
    let signed_in = line["IsAuthenticated"].eq_ignore_ascii_case("true") && !user.is_empty();
    let scheme = line["AuthenticationType"].as_str();
    let credentials = match (scheme, signed_in) {
        ("", false) => None,
        ("Basic", true) => Some(format!("Basic {}", STANDARD.encode(format!("{user}:pw")))),
        ("NTLM" | "Negotiate", _) => Some(format!("{scheme} {}", STANDARD.encode(ntlm(signed_in.then_some(user))))),
        ("Bearer" | "OAuth", true) => {
            let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
            Some(format!(
                "Bearer {}.{}.sig",
                part(serde_json::json!({"alg": "none"})),
                part(serde_json::json!({"upn": user}))
            ))
        }
        _ => return None,
    };
    if let Some(credentials) = credentials {
        head.push_str(&format!("Authorization: {credentials}\r\n"));
    }
    let client = line["ClientIpAddress"].split('%').next().unwrap();
    head.push_str(&format!("X-Forwarded-For: {client}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
    Some(head.into_bytes())
}

/// [`disagreements`] for HttpProxy logs: the lines whose credentials can be
/// sent, and what was left out of those that cannot.
fn proxy_disagreements(policy: &Path, files: &[PathBuf], extra: &[&str]) -> (Vec<String>, BTreeMap<Verdict, usize>) {
    let dir = tempfile::tempdir().unwrap();
    let (lines, copy) = read_proxy_lines(files, dir.path());
    let predicted = through_export(policy, &[copy], extra);
    assert_eq!(predicted.len(), lines.len(), "export wrote one event a line");
    let requests: Vec<Option<Vec<u8>>> = lines.iter().map(|(_, l)| proxy_request_of(l)).collect();
    let sent: Vec<Vec<u8>> = requests.iter().flatten().cloned().collect();
    let mut enforced = through_gateway(policy, &sent, extra).into_iter();
    let mut wrong = Vec::new();
    let mut verdicts = BTreeMap::new();
    for (((at, line), (want, want_status)), request) in lines.iter().zip(predicted).zip(&requests) {
        let Some(_) = request else {
            *verdicts.entry(("left out".to_string(), line["AuthenticationType"].clone())).or_default() += 1;
            continue;
        };
        let (got, got_status) = enforced.next().unwrap();
        if [&want, &got].iter().any(|v| v.1.starts_with("ip_restrictions")) {
            continue;
        }
        *verdicts.entry(want.clone()).or_default() += 1;
        if want != got || !(want.0 == "allow" || want_status == got_status) {
            wrong.push(format!(
                "{at}: simulate {want:?} {want_status}, gateway {got:?} {got_status}: {} {} {} {} {}",
                line["Method"],
                line["UrlStem"],
                line["AuthenticationType"],
                line["AuthenticatedUser"],
                line["UserAgent"]
            ));
        }
    }
    (wrong, verdicts)
}

/// HttpProxy logs say how each request signed in: the estate written apart
/// with its front end's HttpProxy logs alone, under the policies whose
/// authentication policies, `auth` rules and mailbox settings read the
/// scheme or the user.
#[test]
fn the_gateway_decides_httpproxy_lines_as_simulate_predicts() {
    let Some(python) = python_or_skip("json, gzip, ipaddress", "no Python 3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = crate::apart::write_estate(&python, "7", "only", dir.path());
    let files = w3c::collect_paths_named(&[logs], |name| name.to_string_lossy().starts_with("HttpProxy_")).unwrap();
    let inventory = dir.path().join("inventory.json");
    let devices = dir.path().join("devices.json");
    inventory_build(
        crate::apart::CUTOVER,
        &["--devices", devices.to_str().unwrap()],
        &inventory,
        &dir.path().join("logs"),
    );
    let mut all: BTreeMap<&str, BTreeMap<Verdict, usize>> = BTreeMap::new();
    for name in ["auth", "mailbox-and-iis-settings", "mailbox-protocols", "ews-access", "device-access"] {
        let policy = ["examples/policies", "tests/apart/policies"]
            .iter()
            .map(|d| workspace().join(d).join(format!("{name}.toml")))
            .find(|p| p.exists())
            .unwrap();
        let (wrong, verdicts) = proxy_disagreements(&policy, &files, &["--inventory", inventory.to_str().unwrap()]);
        assert!(wrong.is_empty(), "{name}: {} of the lines disagree:\n{}", wrong.len(), wrong.join("\n"));
        all.insert(name, verdicts);
    }
    // Authentication policies and an `auth` rule were judged on both sides,
    // and most lines were sent (FBA's cookies, Kerberos tickets and failed
    // Basic sign-ins' users are not in the lines).
    let judged = |policy: &str, rule: &str| {
        all[policy].iter().filter(|(v, _)| v.1.starts_with(rule)).map(|(_, n)| *n).sum::<usize>()
    };
    assert!(judged("auth", "auth_policies") > 0 && judged("auth", "no NTLM from outside") > 0, "{:?}", all["auth"]);
    assert!(judged("mailbox-and-iis-settings", "auth_policies") > 0, "{:?}", all["mailbox-and-iis-settings"]);
    let left_out = all["auth"].iter().filter(|(v, _)| v.0 == "left out").map(|(_, n)| *n).sum::<usize>();
    assert!(left_out * 4 < all["auth"].values().sum::<usize>(), "{:?}", all["auth"]);
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
