//! `--format html` for audit, simulate and posture: one self-contained page whose log
//! text (attacker-chosen user agents, user names, device ids) stays text;
//! then the same page in a real headless Chromium (tests/browser/check.sh).

use std::path::Path;

use serde_json::Value;

use crate::util::{self, casguard, example, generated, json, ok, refused};

const EVIL_UA: &str = "<script>window.__xss=1</script>";
const EVIL_UA2: &str = "\"><img src=x onerror=window.__xss=2>";
const EVIL_USER: &str = "<img src=x onerror=window.__xss=3>";

/// Generated logs plus one hand-written file whose fields try to inject markup.
fn logs_with_injection() -> tempfile::TempDir {
    let (dir, _) = generated(|o| o.seed = 21);
    let evil = dir.path().join("EVIL/W3SVC1");
    std::fs::create_dir_all(&evil).unwrap();
    let lines = [
        "#Software: Microsoft Internet Information Services 10.0",
        "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken",
        "2026-11-02 10:00:00 10.0.1.11 POST /EWS/Exchange.asmx - 443 CONTOSO\\mallory 203.0.113.9 <script>window.__xss=1</script> - 200 0 0 15",
        "2026-11-02 10:00:01 10.0.1.11 POST /EWS/Exchange.asmx - 443 CONTOSO\\mallory 203.0.113.9 \"><img+src=x+onerror=window.__xss=2> - 200 0 0 15",
        "2026-11-02 10:00:02 10.0.1.11 GET /owa/ - 443 <img+src=x+onerror=window.__xss=3>@contoso.com 203.0.113.9 Mozilla/5.0+(iPhone;+CPU+iPhone+OS+17_0)</title></svg><svg+onload=window.__xss=4> - 200 0 0 15",
        "2026-11-02 10:00:03 10.0.1.11 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync&DeviceId=<b>x</b>&DeviceType='onmouseover='window.__xss=5 443 CONTOSO\\mallory 203.0.113.9 Outlook-iOS-Android/1.0 - 200 0 0 15",
    ];
    std::fs::write(evil.join("u_ex261102_evil.log"), lines.join("\r\n") + "\r\n").unwrap();
    dir
}

/// The JSON embedded in the page.
fn embedded_data(html: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"casguard-data\">";
    let start = html.find(open).expect("data block") + open.len();
    let end = start + html[start..].find("</script>").expect("end of data block");
    serde_json::from_str(&html[start..end]).expect("embedded JSON parses")
}

/// Runs `casguard -q ARGS --format html --out PAGE LOGS`; the page written.
fn write_page(args: &[&str], page: &Path, logs: &str) -> String {
    let mut all = vec!["-q"];
    all.extend_from_slice(args);
    all.extend(["--format", "html", "--out", page.to_str().unwrap(), logs]);
    ok(casguard(&all));
    std::fs::read_to_string(page).unwrap()
}

/// `write_page`, checked by `assert_self_contained`: the page and the data it embeds.
fn checked_page(args: &[&str], page: &Path, logs: &str) -> (String, Value) {
    let html = write_page(args, page, logs);
    assert_self_contained(&html);
    let data = embedded_data(&html);
    (html, data)
}

/// `casguard COMMAND --policy POLICY` (an example policy) over
/// `logs_with_injection`: the checked page, the data it embeds, and the JSON
/// report of the same run.
fn policy_page(command: &str, policy: &str) -> (String, Value, Value) {
    let dir = logs_with_injection();
    let page = dir.path().join(format!("{command}.html"));
    let logs = dir.path().to_str().unwrap();
    let policy = example(policy);
    let (html, data) = checked_page(&[command, "--policy", &policy], &page, logs);
    let json = json(&[command, "--policy", &policy, "--format", "json", logs]);
    (html, data, json)
}

/// What must hold for any report page, whatever the logs said.
fn assert_self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"), "CSP missing");
    assert_eq!(html.matches("<script").count(), 2, "exactly the data block and the page script");
    assert_eq!(html.matches("</script>").count(), 2);
    for bad in ["<img", "<iframe", "<link", "@import", "src=\"http", "href=\"http", "url(", "fetch(", "XMLHttpRequest"]
    {
        assert!(!html.contains(bad), "page contains {bad}");
    }
    assert!(!html.contains("innerHTML") && !html.contains("insertAdjacentHTML"), "page script builds markup from text");
}

#[test]
fn audit_html_is_self_contained_and_keeps_log_text_as_text() {
    let dir = logs_with_injection();
    let page = dir.path().join("report.html");
    let logs = dir.path().to_str().unwrap();
    let (html, data) = checked_page(&["audit"], &page, logs);
    assert!(!html.contains(EVIL_UA) && !html.contains("<svg onload"), "raw log markup in the page");

    let report = json(&["audit", "--format", "json", logs]);
    assert_eq!(data["summary"], report["summary"], "the page embeds the same summary");
    assert_eq!(data["users"].as_array().unwrap().len(), report["users"].as_array().unwrap().len());
    // The hostile strings survive, exactly, as data.
    let text = data.to_string();
    for s in [EVIL_UA, EVIL_UA2, EVIL_USER] {
        assert!(text.contains(&serde_json::to_string(s).unwrap()[1..s.len()]), "{s} lost from the data");
    }
    assert!(data["users"].as_array().unwrap().iter().any(|u| u["user"] == EVIL_USER));
    // Findings refer to devices by id; every id exists under its user.
    for f in data["findings"].as_array().unwrap() {
        for id in f["devices"].as_array().into_iter().flatten() {
            let user = data["users"].as_array().unwrap().iter().find(|u| u["user"] == f["user"]).unwrap();
            assert!(user["devices"].as_array().unwrap().iter().any(|d| &d["id"] == id), "{id} of {}", f["user"]);
        }
    }
    // The chart: bars with escaped tooltips, and a legend naming the clients.
    assert!(html.matches("<rect ").count() > 20, "chart has bars");
    assert!(html.contains("Outlook for iOS and Android ("), "legend names clients");
    assert!(html.contains("one bar per hour"));
}

#[test]
fn simulate_html_shows_rules_and_backdoors() {
    let (html, data, json) = policy_page("simulate", "ews-allow-outlook-only.toml");
    assert_eq!(data["summary"], json["summary"]);
    assert_eq!(data["backdoors"], json["backdoors"]);
    assert!(json["summary"]["denied_requests"].as_u64().unwrap() > 0);
    assert!(!json["backdoors"].as_array().unwrap().is_empty(), "this policy leaves backdoors");
    assert!(html.contains("denied \u{b7}"), "impact chart");
    let rows = data["rules"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["users"].as_array().unwrap().iter().any(|u| u == "mallory")));
}

#[test]
fn posture_html_is_the_json_report_as_a_matrix() {
    let (html, data, json) = policy_page("posture", "outlook-mobile-lockdown.toml");
    assert_eq!(data["users"], json["users"]);
    assert_eq!(data["backdoors"], json["backdoors"]);
    assert!(html.contains("id=\"posture-matrix\""));
    // The user name that tries to inject markup is in the data, as text.
    assert!(data["users"].as_array().unwrap().iter().any(|u| u["user"].as_str().unwrap().contains("onerror")));
    assert!(!html.contains(EVIL_USER));
}

#[test]
fn html_needs_an_out_file() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = refused(casguard(&["audit", "--format", "html", dir.path().to_str().unwrap()]));
    assert!(stderr.contains("--out"), "{stderr}");
}

/// The page in headless Chromium: no failures, and table rows drawn; `false`
/// when Chromium is missing outside CI.
fn browser_check(page: &Path, shot: &Path) -> bool {
    let Some(result) = util::browser_check(page, shot) else { return false };
    assert!(result["rows"].as_u64().unwrap() > 0);
    true
}

#[test]
fn reports_work_in_headless_chromium() {
    let dir = logs_with_injection();
    let logs = dir.path().to_str().unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    let audit_page = dir.path().join("report.html");
    write_page(&["audit"], &audit_page, logs);
    if !browser_check(&audit_page, &shots.join("audit.png")) {
        return;
    }
    let policy = example("ews-allow-outlook-only.toml");
    let policy = policy.as_str();
    let sim_page = dir.path().join("simulate.html");
    write_page(&["simulate", "--policy", policy], &sim_page, logs);
    browser_check(&sim_page, &shots.join("simulate.png"));
    let posture_page = dir.path().join("posture.html");
    let lockdown = example("outlook-mobile-lockdown.toml");
    write_page(&["posture", "--policy", &lockdown], &posture_page, logs);
    browser_check(&posture_page, &shots.join("posture.png"));
    let png = std::fs::read(shots.join("audit.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
}
