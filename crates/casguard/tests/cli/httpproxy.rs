//! Exchange HttpProxy logs as an admin hands them over: alone, beside the
//! IIS logs of the same front ends (each request counted once), and the
//! public real files; through audit, simulate, export, inventory and watch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use casguard_loggen::{GzipMode, HttpProxyMode, Truth};
use serde_json::Value;

use crate::audit::check_against_truth;
use crate::util::{audit_json, casguard, counts, finding_users, generated, json, ok, text, workspace};

fn real_samples() -> PathBuf {
    workspace().join("tests/data/httpproxy/artefacts-help")
}

fn traffic(mode: HttpProxyMode) -> (tempfile::TempDir, Truth) {
    generated(|o| {
        o.seed = 12;
        o.gzip = GzipMode::Some;
        o.httpproxy = mode;
    })
}

fn users(report: &Value) -> BTreeSet<(String, usize)> {
    report["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["user"].as_str().unwrap().to_string(), u["devices"].as_array().unwrap().len()))
        .collect()
}

#[test]
fn iis_alone_httpproxy_alone_and_both_count_the_truth_once() {
    let (iis_dir, iis) = traffic(HttpProxyMode::None);
    let (proxy_dir, proxy) = traffic(HttpProxyMode::Only);
    let (both_dir, both) = traffic(HttpProxyMode::Also);
    let mut reports = Vec::new();
    for (dir, truth) in [(&iis_dir, &iis), (&proxy_dir, &proxy), (&both_dir, &both)] {
        let report = audit_json(dir.path(), &[]);
        check_against_truth(&report, truth);
        reports.push(report);
    }
    // One traffic, three sets of logs: the same people and devices in each
    // but for the accounts a password spray tried (HttpProxy's line of a
    // failed sign-in names nobody), and together every request once
    // (HttpProxy has no line for IIS's own redirect of `GET /`, anonymous).
    let tried: BTreeSet<String> = reports[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "password-spray" || f["kind"] == "brute-force")
        .flat_map(|f| {
            let named = f["users"].as_array().into_iter().flatten().chain(std::iter::once(&f["user"]));
            named.filter_map(|u| u.as_str().map(str::to_string)).collect::<Vec<_>>()
        })
        .collect();
    assert!(!tried.is_empty());
    let people = |r: &Value| users(r).into_iter().filter(|(u, _)| !tried.contains(u)).collect::<BTreeSet<_>>();
    assert_eq!(people(&reports[0]), people(&reports[1]));
    assert_eq!(users(&reports[0]), users(&reports[2]));
    assert!(iis.summary.failed_sign_ins > 0 && both.summary.failed_sign_ins == iis.summary.failed_sign_ins);
    assert_eq!(proxy.summary.failed_sign_ins, 0);
    assert_eq!(both.summary.requests, iis.summary.requests);
    assert!(proxy.summary.requests < iis.summary.requests);
    assert_eq!(both.summary.lines, iis.summary.lines + proxy.summary.lines);
    assert!(both.summary.iis_duplicates > 1000, "{}", both.summary.iis_duplicates);
    for kind in ["cloud-credentials", "ews-non-outlook", "mobile-on-ews"] {
        assert_eq!(finding_users(&reports[1], kind), finding_users(&reports[0], kind), "{kind}");
    }
    // ActiveSync's `Log=` is in the IIS line only (HttpProxy's UrlQuery is
    // the client's): a request counted from HttpProxy keeps its device's
    // model, OS and access state from its IIS twin.
    let device_facts = |r: &Value| -> BTreeSet<String> {
        let users = r["users"].as_array().unwrap().iter();
        let devices = users.flat_map(|u| u["devices"].as_array().unwrap().iter().map(move |d| (&u["user"], d)));
        devices
            .filter(|(_, d)| !d["os"].is_null() || !d["access"].is_null())
            .map(|(u, d)| format!("{u} {} {} {} {}", d["id"], d["model"], d["os"], d["access"]))
            .collect()
    };
    assert!(device_facts(&reports[0]).len() > 5, "{:?}", device_facts(&reports[0]));
    assert_eq!(device_facts(&reports[2]), device_facts(&reports[0]));
    // Each line's format was told by its content; the malformed ones of both named with their line.
    let malformed = reports[2]["malformed"].to_string();
    assert!(malformed.contains("HttpProxy_") && malformed.contains("u_ex"), "{malformed}");
    assert_eq!(counts(&reports[0]["auth_types"]), BTreeMap::from([("unknown".to_string(), iis.summary.requests)]));
    assert!(reports[0]["notes"].to_string().contains("IIS logs do not record it"));
    assert!(reports[2]["notes"].to_string().contains("counted once, from HttpProxy"));
}

#[test]
fn public_httpproxy_lines_read_without_a_malformed_line() {
    let report = json(&["audit", "--format", "json", real_samples().to_str().unwrap()]);
    let s = &report["summary"];
    assert_eq!((s["lines"].as_u64(), s["malformed"].as_u64(), s["files"].as_u64()), (Some(11), Some(0), Some(8)));
    // The Outlook-iOS-Android/1.0 line with Basic authentication: the password sits in Microsoft's cloud.
    assert_eq!(finding_users(&report, "cloud-credentials"), ["username"]);
    // Monitoring apart: AMProbe on EWS, the ActiveMonitor PowerShell session.
    assert_eq!(s["probes"], 3);
    // zgrab fetching the eDiscovery export tool (Ecp, FBA) is a scanner, no person.
    assert_eq!(s["attack_kinds"]["scanner"], 1);
    assert_eq!(
        counts(&report["auth_types"]),
        BTreeMap::from([("basic", 1), ("fba", 1), ("negotiate", 3), ("ntlm", 2)].map(|(k, n)| (k.to_string(), n)))
    );
}

/// An IIS log of the same front end as the public Eas file: the request it
/// logged, a client-forged copy of its cafeReqId, and a request of its own.
fn iis_beside_the_public_eas_file(dir: &Path) {
    let eas = real_samples().join("Eas/HttpProxy_2023011116-1.LOG");
    std::fs::create_dir_all(dir.join("Eas")).unwrap();
    std::fs::copy(&eas, dir.join("Eas/HttpProxy_2023011116-1.LOG")).unwrap();
    let id = "823d6c00-01f1-4067-9002-18ff1cf2e5d9";
    let iis = format!(
        "#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n\
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\r\n\
2023-01-11 16:06:06 10.1.1.1 OPTIONS /Microsoft-Server-ActiveSync/default.eas Cmd=Options&User=domain.test%5Cusername&DeviceId=1234567987987987987987987987987&DeviceType=Outlook&CorrelationID=<empty>;&cafeReqId={id}; 443 DOMAIN\\username 20.10.20.30 Outlook-iOS-Android/1.0 - 403 0 0 19068\r\n\
2023-01-11 16:07:00 10.1.1.1 GET /owa/ x=1&cafeReqId={id}; 443 DOMAIN\\mallory 198.51.100.9 Mozilla/5.0 - 200 0 0 15\r\n\
2023-01-11 16:08:00 10.1.1.1 GET /owa/ &CorrelationID=<empty>;&cafeReqId=0b0e8d55-5b3c-4a36-9a8f-3a8b7e2a1c11; 443 DOMAIN\\bob 198.51.100.7 Mozilla/5.0 - 200 0 0 15\r\n"
    );
    std::fs::create_dir_all(dir.join("W3SVC1")).unwrap();
    std::fs::write(dir.join("W3SVC1/u_ex230111.log"), iis).unwrap();
}

#[test]
fn a_request_in_both_logs_counts_once_and_a_forged_id_counts_too() {
    let dir = tempfile::tempdir().unwrap();
    iis_beside_the_public_eas_file(dir.path());
    let report = audit_json(dir.path(), &[]);
    let s = &report["summary"];
    assert_eq!(s["lines"], 4);
    assert_eq!(s["iis_duplicates"], 1, "the IIS line of the Eas request joins its HttpProxy line");
    assert_eq!(s["requests"], 3, "Eas once (from HttpProxy), mallory's copy of its id, bob");
    let names: Vec<(String, u64)> = report["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["user"].as_str().unwrap().into(), u["requests"].as_u64().unwrap()))
        .collect();
    assert_eq!(names, [("bob".into(), 1), ("mallory".into(), 1), ("username".into(), 1)]);
    // The request kept is the HttpProxy one: it knows the authentication type.
    assert_eq!(counts(&report["auth_types"]), BTreeMap::from([("basic".to_string(), 1), ("unknown".to_string(), 2)]));

    // Read in order (export), the same join.
    let out = ok(casguard(&["export", "--format", "jsonl", dir.path().to_str().unwrap()]));
    let events: Vec<Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let traffic: Vec<&str> = events.iter().map(|e| e["casguard"]["traffic"].as_str().unwrap()).collect();
    assert_eq!(traffic.iter().filter(|t| **t == "duplicate").count(), 1, "{traffic:?}");
    let eas = events.iter().find(|e| e["casguard"]["traffic"] == "person" && e["user"]["name"] == "username").unwrap();
    assert_eq!(eas["casguard"]["auth"], "basic");
    assert_eq!(
        eas["url"]["query"],
        "Cmd=Options&User=domain.test%5Cusername&DeviceId=1234567987987987987987987987987&DeviceType=Outlook"
    );
}

#[test]
fn simulate_an_auth_policy_on_httpproxy_logs_and_say_why_iis_logs_cannot() {
    let (proxy_dir, proxy) = traffic(HttpProxyMode::Only);
    let policy = proxy_dir.path().join("no-basic.toml");
    std::fs::write(&policy, "[[rule]]\nname = \"no basic\"\naction = \"deny\"\nauth = \"basic\"\n").unwrap();
    let sim = |dir: &Path| {
        json(&["simulate", "--format", "json", "--policy", policy.to_str().unwrap(), dir.to_str().unwrap()])
    };
    let report = sim(proxy_dir.path());
    assert_eq!(report["denied_requests"], proxy.auth_types["basic"]);
    let (iis_dir, _) = traffic(HttpProxyMode::None);
    let report = sim(iis_dir.path());
    assert_eq!(report["denied_requests"], 0);
    assert!(report["notes"].to_string().contains("IIS logs do not record it"), "{}", report["notes"]);
}

#[test]
fn inventory_and_watch_read_httpproxy_logs() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("Logging/HttpProxy");
    std::fs::create_dir_all(&folder).unwrap();
    for protocol in ["Eas", "Autodiscover"] {
        let from = real_samples().join(protocol);
        let to = folder.join(protocol);
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(from).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    }
    let inventory = dir.path().join("inventory.json");
    ok(casguard(&[
        "inventory",
        "build",
        "--quiet",
        "--until",
        "2024-01-01",
        "-o",
        inventory.to_str().unwrap(),
        folder.to_str().unwrap(),
    ]));
    let known = std::fs::read_to_string(&inventory).unwrap();
    assert!(known.contains("1234567987987987987987987987987"), "the Outlook device is known: {known}");

    let state = dir.path().join("state.json");
    let watch = |extra: &[&str]| {
        let mut args = vec!["watch", "--once", "--format", "json", "--state", state.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(folder.to_str().unwrap());
        text(&ok(casguard(&args)).stdout)
    };
    let alerts = watch(&["--since", "2023-01-01"]);
    assert!(alerts.contains("\"cloud-credentials\"") && alerts.contains("\"username\""), "{alerts}");
    // A line appended to the HttpProxy file is read on the next poll, and only it.
    let eas = folder.join("Eas/HttpProxy_2023011116-1.LOG");
    let first = std::fs::read_to_string(&eas).unwrap();
    let line =
        first.lines().last().unwrap().replace("DOMAIN\\username", "DOMAIN\\second").replace("823d6c00", "923d6c00");
    std::fs::write(&eas, format!("{first}\r\n{line}\r\n")).unwrap();
    let alerts = watch(&[]);
    assert_eq!(alerts.lines().count(), 1, "{alerts}");
    assert!(alerts.contains("\"second\""), "{alerts}");
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(saved.contains("\"httpproxy\":true"), "{saved}");
}
