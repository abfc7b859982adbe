//! `casguard watch --once` in steps over a folder written as IIS would:
//! appended lines, a partial last line, daily rotation to a file with other
//! `#Fields`; each alert once, and a restart from the state file repeats none.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::util::{casguard, example};

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

const FIELDS: &str = "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) sc-status sc-substatus sc-win32-status time-taken\r\n";

/// Alerts printed by one `watch --once` run, as (kind, user or rule).
fn step(dir: &Path, state: &Path, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["watch", "--once", "--format", "json", "--state", state.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    let out = casguard(&args);
    assert!(out.status.success(), "watch failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("one JSON alert per line");
            let who = v["user"].as_str().or(v["rule"].as_str()).unwrap_or("").to_string();
            (v["kind"].as_str().unwrap().to_string(), who)
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn alerts_once_across_appends_rotation_and_restart() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("W3SVC1");
    std::fs::create_dir_all(&dir).unwrap();
    let state = root.path().join("state.json");
    let day1 = dir.join("u_ex261102.log");

    // Step 1: alice on Outlook mobile, bob on Outlook (nothing), carol's line still being written.
    append(&day1, "#Software: Microsoft Internet Information Services 10.0\r\n");
    append(&day1, FIELDS);
    append(&day1, "2026-11-02 08:00:00 10.0.1.11 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync&DeviceId=AAA1&DeviceType=Outlook 443 CONTOSO\\alice 52.96.1.1 Outlook-iOS-Android/1.0 200 0 0 10\r\n");
    append(&day1, "2026-11-02 08:00:01 10.0.1.11 POST /EWS/Exchange.asmx - 443 CONTOSO\\bob 10.0.5.5 Microsoft+Office/16.0+(Windows+NT+10.0;+Microsoft+Outlook+16.0.1) 200 0 0 10\r\n");
    append(&day1, "2026-11-02 08:00:02 10.0.1.11 GET /owa/ - 443 CONTOSO\\carol 203.0.113.5 Mozilla/5.0+(iPhone;+CPU+iPhone+OS+17_0)");
    assert_eq!(step(&dir, &state, &["--since", "2026-11-01"]), pairs(&[("cloud-credentials", "alice")]));

    // Step 2: carol's line completes; alice again (no repeat); an exploit attempt.
    append(&day1, " 200 0 0 10\r\n");
    append(&day1, "2026-11-02 08:05:00 10.0.1.11 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Ping&DeviceId=AAA1&DeviceType=Outlook 443 CONTOSO\\alice 52.96.1.1 Outlook-iOS-Android/1.0 200 0 0 10\r\n");
    append(
        &day1,
        "2026-11-02 08:06:00 10.0.1.11 GET /ecp/default.flt - 443 - 192.0.2.66 python-requests/2.31 200 0 0 10\r\n",
    );
    append(&day1, "2026-11-02 08:06:01 10.0.1.11 GET /autodiscover/autodiscover.json @evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3f@evil.com 443 - 192.0.2.66 python-requests/2.31 200 0 0 10\r\n");
    let got = step(&dir, &state, &[]);
    assert_eq!(got.first(), Some(&("mobile-on-ews".to_string(), "carol".to_string())), "{got:?}");
    assert!(got.iter().any(|(k, _)| k == "exploit-attempt"), "{got:?}");
    assert!(!got.iter().any(|(k, u)| k == "cloud-credentials" && u == "alice"), "alice repeated: {got:?}");

    // Step 3: nothing new, nothing printed.
    assert_eq!(step(&dir, &state, &[]), vec![]);

    // Step 4: rotation to a new file with other #Fields (c-ip first); bob tries an EWS app.
    let day2 = dir.join("u_ex261103.log");
    append(&day2, "#Fields: c-ip date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username cs(User-Agent) sc-status sc-substatus sc-win32-status time-taken\r\n");
    append(&day2, "198.51.100.9 2026-11-03 00:00:05 10.0.1.11 POST /EWS/Exchange.asmx - 443 CONTOSO\\bob ExchangeServicesClient/15.0 200 0 0 10\r\n");
    append(&day2, "52.96.1.1 2026-11-03 00:00:06 10.0.1.11 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync&DeviceId=AAA2&DeviceType=Outlook 443 CONTOSO\\alice Outlook-iOS-Android/1.0 200 0 0 10\r\n");
    assert_eq!(step(&dir, &state, &[]), pairs(&[("ews-non-outlook", "bob")]));

    // Step 5: a restart with the same state repeats nothing, even with --since.
    assert_eq!(step(&dir, &state, &["--since", "2026-11-01"]), vec![]);

    // Step 6: a policy adds the devices it would deny, once each.
    let policy = example("ews-allow-outlook-only.toml");
    let policy = policy.as_str();
    let fresh = root.path().join("state2.json");
    let got = step(&dir, &fresh, &["--since", "2026-11-01", "--policy", policy]);
    assert_eq!(got.iter().filter(|(k, _)| k == "policy-deny").count(), 1, "{got:?}");
    assert!(got.contains(&("policy-deny".to_string(), "bob".to_string())), "{got:?}");
    assert_eq!(step(&dir, &fresh, &["--policy", policy]), vec![]);

    // The state file is small and names the files with their #Fields.
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["files"].as_object().unwrap().len(), 2);
    assert!(saved["files"]["u_ex261103.log"]["fields"].as_str().unwrap().starts_with("c-ip date"));
    assert!(std::fs::metadata(&state).unwrap().len() < 4096);
}

#[test]
fn a_first_run_without_since_follows_from_the_end() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("u_ex261102.log");
    append(&log, FIELDS);
    append(&log, "2026-11-02 08:00:00 10.0.1.11 POST /Microsoft-Server-ActiveSync Cmd=Sync&DeviceId=D1&DeviceType=Outlook 443 CONTOSO\\old 52.96.1.1 Outlook-iOS-Android/1.0 200 0 0 10\r\n");
    let state = root.path().join("s.json");
    assert_eq!(step(root.path(), &state, &[]), vec![], "history is not replayed without --since");
    append(&log, "2026-11-02 09:00:00 10.0.1.11 POST /Microsoft-Server-ActiveSync Cmd=Sync&DeviceId=D2&DeviceType=Outlook 443 CONTOSO\\new 52.96.1.1 Outlook-iOS-Android/1.0 200 0 0 10\r\n");
    assert_eq!(step(root.path(), &state, &[]), pairs(&[("cloud-credentials", "new")]));
    // Line output escapes control characters from the logs.
    append(&log, "2026-11-02 09:01:00 10.0.1.11 POST /EWS/Exchange.asmx - 443 CONTOSO\\eve 198.51.100.1 Evil\x1b[2J/1.0 200 0 0 10\r\n");
    let out = casguard(&["watch", "--once", "--state", state.to_str().unwrap(), root.path().to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ews-non-outlook") && text.contains("\\x1b[2J") && !text.contains('\x1b'), "{text}");
}

/// One ActiveSync line of `user` on Outlook mobile (a cloud-credentials alert).
fn outlook_mobile(user: &str) -> String {
    format!("2026-11-02 08:00:00 10.0.1.11 POST /Microsoft-Server-ActiveSync Cmd=Sync&DeviceId=D{user}&DeviceType=Outlook 443 CONTOSO\\{user} 52.96.1.1 Outlook-iOS-Android/1.0 200 0 0 10\r\n")
}

#[test]
fn watch_reads_a_log_replaced_by_mv_or_rewritten_between_runs() {
    let root = tempfile::tempdir().unwrap();
    let (log, state) = (root.path().join("u_ex261102.log"), root.path().join("s.json"));
    append(&log, &format!("{FIELDS}{}", outlook_mobile("alice")));
    assert_eq!(step(root.path(), &state, &["--since", "2026-11-01"]), pairs(&[("cloud-credentials", "alice")]));
    // Replaced by `mv` with a longer file: its first lines are new too.
    let new = root.path().join("next.tmp");
    append(&new, &format!("{FIELDS}{}{}", outlook_mobile("bob"), outlook_mobile("carol")));
    std::fs::rename(&new, &log).unwrap();
    assert_eq!(step(root.path(), &state, &[]), pairs(&[("cloud-credentials", "bob"), ("cloud-credentials", "carol")]));
    // The same file truncated and written again, longer than what was read.
    std::fs::write(
        &log,
        format!("{FIELDS}{}{}{}", outlook_mobile("dave"), outlook_mobile("bob"), outlook_mobile("erin")),
    )
    .unwrap();
    assert_eq!(step(root.path(), &state, &[]), pairs(&[("cloud-credentials", "dave"), ("cloud-credentials", "erin")]));
}

#[test]
fn exchanges_other_logs_are_named_once_and_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let (rca, state) = (root.path().join("RCA_2023011116-1.LOG"), root.path().join("s.json"));
    append(&rca, "#Software: Microsoft Exchange Server\r\n#Log-type: RCA Protocol Logs\r\n#Fields: date-time,session-id,client-name\r\n2023-01-11T16:00:12.478Z,1,/o=First Organization/cn=bob\r\n");
    let log = root.path().join("u_ex261102.log");
    append(&log, FIELDS);
    append(&log, &outlook_mobile("ann"));
    // What Windows PowerShell's `>` makes of a log: UTF-16, which watch does not follow.
    let utf16: Vec<u8> =
        b"\xFF\xFE".iter().copied().chain(outlook_mobile("bea").encode_utf16().flat_map(u16::to_le_bytes)).collect();
    std::fs::write(root.path().join("mine.log"), utf16).unwrap();
    let run = || {
        casguard(&[
            "watch",
            "--once",
            "--since",
            "2026-11-01",
            "--state",
            state.to_str().unwrap(),
            root.path().to_str().unwrap(),
        ])
    };
    let first = run();
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains("1 file(s) not read: Exchange log of another kind (#Log-type: RCA Protocol Logs)"), "{err}");
    assert!(err.contains("1 file(s) not read: UTF-16 text"), "{err}");
    assert!(!err.contains("malformed"), "{err}");
    let alerts = String::from_utf8_lossy(&first.stdout);
    assert!(alerts.contains("cloud-credentials") && !alerts.contains("bea"), "{alerts}");
    append(&rca, "2023-01-11T16:00:13.478Z,2,/o=First Organization/cn=carol\r\n");
    let again = run();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success() && !err.contains("not read") && !err.contains("malformed"), "{err}");
}

#[test]
fn a_folder_without_logs_yet_is_said_not_an_error() {
    let root = tempfile::tempdir().unwrap();
    let run = || casguard(&["watch", "--once", root.path().to_str().unwrap()]);
    let out = run();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success() && stderr.contains("holds no log files (*.log) yet"), "{stderr}");
    append(&root.path().join("u_ex261102.log"), &format!("{FIELDS}{}", outlook_mobile("alice")));
    let out = run();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success() && !stderr.contains("no log files"), "{stderr}");
}
