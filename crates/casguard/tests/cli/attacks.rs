//! Attacks apart from people, on real public lines (tests/data/iis, with
//! their sources in tests/data/SOURCES-real.md) and on lines shaped like them:
//! web shells, data theft, exploits whatever their answer, scanners, password
//! spraying and brute force; and people's traffic that must stay people's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::util::{audit, casguard, counts, findings, refused, text, workspace};

const FIELDS: &str = "#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n\
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\r\n";

/// The files of tests/data/iis that hold attacks and nothing else.
const ATTACK_SAMPLES: [&str; 3] =
    ["artefacts-help-owa-auth-webshell.log", "helsecert-owa-auth-webshell.log", "winterfell-webshell-exfiltration.log"];

fn sample(name: &str) -> String {
    workspace().join("tests/data/iis").join(name).display().to_string()
}

/// A log of `lines` under IIS's default fields, in a folder of its own.
fn log(lines: &[String]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u_ex261123.log");
    let mut body = String::from(FIELDS);
    for l in lines {
        body.push_str(l);
        body.push_str("\r\n");
    }
    std::fs::write(&path, body).unwrap();
    (dir, path)
}

/// (source, outcome, outcomes) of each finding of `kind`.
fn by_source(report: &Value, kind: &str) -> BTreeMap<String, (String, BTreeMap<String, u64>)> {
    findings(report, kind)
        .into_iter()
        .map(|f| {
            let source = f["source"]["ip"].as_str().unwrap().to_string();
            (source, (f["outcome"].as_str().unwrap().to_string(), counts(&f["outcomes"])))
        })
        .collect()
}

fn outcomes(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// Issue 20: the web shell in the ActiveSync folder reached with Outlook
/// mobile's user agent from Microsoft addresses, and the stolen files.
#[test]
fn winterfell_web_shell_and_stolen_files_are_attacks_not_outlook_users() {
    let report = audit(&[&sample("winterfell-webshell-exfiltration.log")], &[]);
    let s = &report["summary"];
    assert_eq!((s["lines"].as_u64(), s["malformed"].as_u64()), (Some(6), Some(1)));
    assert_eq!(s["requests"], 0, "no person's request");
    assert_eq!(s["users"], 0);
    assert!(findings(&report, "cloud-credentials").is_empty());
    assert!(counts(&report["clients"]).is_empty(), "the catalog names no client of an attack");
    assert_eq!(counts(&s["attack_kinds"]), outcomes(&[("data-theft", 3), ("web-shell", 2)]));
    let shells = by_source(&report, "web-shell");
    assert_eq!(shells["40.96.39.253"], ("blocked".into(), outcomes(&[("blocked", 1)])));
    assert_eq!(shells["40.96.41.69"], ("succeeded".into(), outcomes(&[("succeeded", 1)])));
    for f in findings(&report, "web-shell") {
        assert_eq!(f["severity"], "high");
        assert_eq!(f["source"]["network"], "microsoft365");
        assert_eq!(f["paths"][0], "/Microsoft-Server-ActiveSync/error.aspx");
    }
    let stolen: Vec<&str> = findings(&report, "data-theft")
        .iter()
        .flat_map(|f| f["paths"].as_array().unwrap())
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(stolen.len(), 3);
    for file in ["/1/data.rar", "/1/CEO.pst", "/1/default.zip"] {
        assert!(stolen.contains(&file), "{file} in {stolen:?}");
    }
    assert!(findings(&report, "data-theft").iter().all(|f| f["outcome"] == "succeeded"));
}

/// The real IIS samples of attacks together: attacks only, no person, no
/// person finding. (The folder's other samples are people's: `real.rs`.)
#[test]
fn every_real_iis_attack_sample_is_attacks_and_no_person() {
    let files: Vec<String> = ATTACK_SAMPLES.iter().map(|f| sample(f)).collect();
    let report = audit(&files.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(report["summary"]["requests"], 0);
    let kinds: std::collections::BTreeSet<&str> =
        report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["data-theft", "web-shell"]);
    // The artefacts.help block is an illustration that no IIS writes: malformed, not guessed at.
    let malformed: u64 =
        report["malformed"].as_array().unwrap().iter().map(|f| counts(&f["counts"]).values().sum::<u64>()).sum();
    assert_eq!(malformed, 2, "the illustration, and the winterfell line run into the next");
}

/// HelseCERT's ProxyLogon web shell: answered 200, and later 302.
#[test]
fn helsecert_web_shell_carries_each_answer() {
    let report = audit(&[&sample("helsecert-owa-auth-webshell.log")], &[]);
    let shells = by_source(&report, "web-shell");
    assert_eq!(shells.len(), 2);
    assert_eq!(shells["139.162.202.236"], ("succeeded".into(), outcomes(&[("succeeded", 2)])));
    assert_eq!(shells["67.205.176.9"], ("succeeded".into(), outcomes(&[("failed", 3), ("succeeded", 3)])));
    assert_eq!(report["summary"]["requests"], 0);
}

/// A ProxyShell request answered 302 is an attempt that failed, not a
/// person's Autodiscover request.
#[test]
fn exploit_attempts_whatever_the_answer() {
    let ua = "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36";
    let q = "@fucky0u.edu/autodiscover/autodiscover.xml?=&Email=autodiscover/autodiscover.json%3F@fucky0u.edu";
    let lines: Vec<String> = [(302, "192.0.2.50"), (200, "192.0.2.51"), (401, "192.0.2.52")]
        .iter()
        .map(|(status, ip)| {
            format!("2026-11-23 10:00:00 10.0.0.2 POST /autodiscover/autodiscover.json {q} 443 - {ip} {ua} - {status} 0 0 64")
        })
        .collect();
    let (_dir, path) = log(&lines);
    let report = audit(&[path.to_str().unwrap()], &[]);
    assert_eq!(report["summary"]["requests"], 0);
    assert!(counts(&report["protocols"]).is_empty());
    let attempts = by_source(&report, "exploit-attempt");
    assert_eq!(attempts["192.0.2.50"].0, "failed");
    assert_eq!(attempts["192.0.2.51"].0, "succeeded");
    assert_eq!(attempts["192.0.2.52"].0, "blocked");
    assert!(findings(&report, "exploit-attempt").iter().all(|f| f["rule"] == "proxyshell"));
}

/// The only real Exchange scanner line found (zgrab, artefacts.help) and
/// Nmap's user agent: scanners, not people and not probes.
#[test]
fn scanners_are_apart_from_people_and_probes() {
    let lines = [
        "2026-11-23 10:00:00 10.0.0.2 GET /ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application - 443 - 192.0.2.60 Mozilla/5.0+zgrab/0.x - 200 0 0 5",
        "2026-11-23 10:00:01 10.0.0.2 GET /nmaplowercheck1743972323 - 443 - 192.0.2.61 Mozilla/5.0+(compatible;+Nmap+Scripting+Engine;+https://nmap.org/book/nse.html) - 404 0 2 1",
        "2026-11-23 10:00:02 10.0.0.2 GET /wordpress/wp-login.php - 443 - 192.0.2.62 Mozilla/5.0 - 404 0 2 1",
        "2026-11-23 10:00:03 10.0.0.2 GET /.git/config - 443 - 192.0.2.63 Mozilla/5.0 - 404 0 2 1",
    ];
    let (_dir, path) = log(&lines.map(String::from));
    let report = audit(&[path.to_str().unwrap()], &[]);
    let s = &report["summary"];
    assert_eq!((s["requests"].as_u64(), s["probes"].as_u64()), (Some(0), Some(0)));
    assert_eq!(counts(&s["attack_kinds"]), outcomes(&[("outside-vdirs", 1), ("scanner", 2), ("web-shell", 1)]));
    let scanners = by_source(&report, "scanner");
    assert_eq!(scanners.keys().collect::<Vec<_>>(), ["192.0.2.60", "192.0.2.61"]);
    assert_eq!(findings(&report, "scanner")[0]["severity"], "low");
    assert_eq!(by_source(&report, "outside-vdirs").keys().collect::<Vec<_>>(), ["192.0.2.63"]);
}

/// Zero false positives on real people's traffic: the real back-end sample
/// makes no attack and no sign-in finding. (The generated example logs are
/// checked against their truth, attacks included, in `audit`.)
#[test]
fn people_s_traffic_makes_no_attack_finding() {
    let backend = workspace().join("tests/data/exchange-backend-edge-cases.log");
    let report = audit(&[backend.to_str().unwrap()], &[]);
    let kinds: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert!(kinds.is_empty(), "{kinds:?}");
    assert_eq!(report["summary"]["attacks"], 0);
}

fn failure(second: u32, ip: &str, user: &str) -> String {
    let (m, s) = (second / 60, second % 60);
    format!(
        "2026-11-23 09:{m:02}:{s:02} 10.0.0.2 POST /Microsoft-Server-ActiveSync/default.eas \
         Cmd=Sync&User={user}&DeviceId=D{user}&DeviceType=iPhone 443 {user} {ip} Apple-iPhone15C3/2104.100 - 401 1 1326 3"
    )
}

#[test]
fn password_spray_and_brute_force_with_their_windows_and_sources() {
    let mut lines: Vec<String> = (0..6).map(|i| failure(i * 90, "203.0.113.50", &format!("user{i}"))).collect();
    lines.extend(
        (0..12).map(|i| failure(600 + i * 20, if i % 3 == 0 { "198.51.100.7" } else { "198.51.100.8" }, "bob")),
    );
    // A user who mistypes twice and gets in: nothing.
    lines.push(failure(1000, "192.0.2.70", "carol"));
    lines.push(failure(1010, "192.0.2.70", "carol"));
    let (_dir, path) = log(&lines);
    let path = path.to_str().unwrap();

    let report = audit(&[path], &["--brute-force-failures", "10"]);
    assert_eq!(report["summary"]["failed_sign_ins"], 20);
    let sprays = findings(&report, "password-spray");
    assert_eq!(sprays.len(), 1, "{sprays:?}");
    let spray = sprays[0];
    assert_eq!(spray["source"]["ip"], "203.0.113.50");
    assert_eq!(
        (spray["peak"].as_u64(), spray["window_seconds"].as_u64(), spray["threshold"].as_u64()),
        (Some(6), Some(1200), Some(5))
    );
    assert_eq!(spray["users"].as_array().unwrap().len(), 6);
    assert_eq!(
        (spray["first_seen"].as_str(), spray["last_seen"].as_str()),
        (Some("2026-11-23T09:00:00Z"), Some("2026-11-23T09:07:30Z"))
    );
    let brute = findings(&report, "brute-force");
    assert_eq!(brute.len(), 1);
    assert_eq!((brute[0]["user"].as_str(), brute[0]["requests"].as_u64()), (Some("bob"), Some(12)));
    let sources: Vec<&str> =
        brute[0]["sources"].as_array().unwrap().iter().map(|s| s["ip"].as_str().unwrap()).collect();
    assert_eq!(sources, ["198.51.100.7", "198.51.100.8"]);

    // The defaults (100 failures in 10 minutes) leave bob alone; a narrower window drops the spray.
    let report = audit(&[path], &[]);
    assert!(findings(&report, "brute-force").is_empty());
    let report = audit(&[path], &["--spray-window", "5m"]);
    assert!(findings(&report, "password-spray").is_empty());
    let err = refused(casguard(&["audit", "--spray-users", "1", path]));
    assert!(err.contains("spray threshold"), "{err}");
}

/// Outlook mobile with hybrid modern auth: its Autodiscover request joins
/// its ActiveSync device, the finding is cloud-token, and Exchange's own
/// verdict on the device is shown.
#[test]
fn outlook_mobile_by_how_it_signs_in_is_one_device() {
    let lines = [
        "2026-11-23 08:00:00 10.0.0.2 GET /autodiscover/autodiscover.json Email=alice%40contoso.com&Protocol=ActiveSync&RedirectCount=1 443 alice@contoso.com 52.96.10.1 Outlook-iOS/2.0 - 200 0 0 5",
        "2026-11-23 08:00:01 10.0.0.2 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Provision&User=alice%40contoso.com&DeviceId=ABC123&DeviceType=OutlookService&Log=V161_As:QuarantinedD 443 alice@contoso.com 52.96.10.1 Outlook-iOS/2.0 - 200 0 0 5",
        "2026-11-23 08:00:02 10.0.0.2 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync&User=bob&DeviceId=XYZ789&DeviceType=Outlook 443 bob 52.96.10.2 Outlook-iOS-Android/1.0 - 200 0 0 5",
    ];
    let (_dir, path) = log(&lines.map(String::from));
    let report = audit(&[path.to_str().unwrap()], &[]);
    let alice = report["users"].as_array().unwrap().iter().find(|u| u["user"] == "alice").unwrap();
    let devices = alice["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(
        (devices[0]["id"].as_str(), devices[0]["client"].as_str()),
        (Some("ABC123"), Some("outlook-mobile-hma"))
    );
    assert_eq!(devices[0]["requests"], 2);
    assert_eq!(
        (devices[0]["access"]["state"].as_str(), devices[0]["access"]["reason"].as_str()),
        (Some("quarantined"), Some("DeviceRule"))
    );
    let users = |kind: &str| {
        findings(&report, kind).iter().map(|f| f["user"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(users("cloud-token"), ["alice"]);
    assert_eq!(users("cloud-credentials"), ["bob"]);
    assert_eq!(findings(&report, "cloud-token")[0]["severity"], "low");
    assert_eq!(findings(&report, "cloud-credentials")[0]["severity"], "medium");
    assert_eq!(counts(&report["clients"]), outcomes(&[("outlook-mobile", 2), ("outlook-mobile-hma", 1)]));
}

#[test]
fn stderr_names_a_few_malformed_lines_and_the_json_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    for f in 0..3 {
        let mut body = String::from(FIELDS);
        for i in 0..7 {
            body.push_str(&format!("2026-11-23 10:00:0{i} too few fields {f}\r\n"));
        }
        std::fs::write(dir.path().join(format!("u_ex26112{f}.log")), body).unwrap();
    }
    let out = casguard(&["audit", "--format", "json", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("field-count").count(), 5, "{stderr}");
    let about_lines = stderr.lines().filter(|l| !l.contains("Microsoft 365 ranges")).count();
    assert_eq!(about_lines, 6, "{stderr}");
    assert!(stderr.contains("16 more malformed line(s), 21 in all in 3 file(s)"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept: usize =
        report["malformed"].as_array().unwrap().iter().map(|f| f["first"].as_array().unwrap().len()).sum();
    assert_eq!(kept, 21);
}

/// The evidence of an attack keeps its query, but not a password in it.
#[test]
fn an_attacks_evidence_never_holds_a_password() {
    let line = "2026-11-23 10:00:00 10.0.0.5 GET /owa/auth/x.aspx cmd=whoami&pwd=Hunter3&user=a 443 - 203.0.113.9 \
                Mozilla/5.0 - 200 0 0 15";
    let (_dir, path) = log(&[line.to_string()]);
    let out = casguard(&["audit", "-q", "--format", "json", path.to_str().unwrap()]);
    let report = text(&out.stdout);
    assert!(!report.contains("Hunter3"), "{report}");
    let shells = findings(&serde_json::from_str(&report).unwrap(), "web-shell")
        .iter()
        .map(|f| f.to_string())
        .collect::<String>();
    assert!(shells.contains("cmd=whoami&pwd=REDACTED&user=a"), "{shells}");
}
