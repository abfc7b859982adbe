//! `casguard ranges update` on saved answers of Microsoft's endpoints web
//! service (never the network), and audit's warning about old ranges.

use crate::util::{casguard, json, ok, text, workspace};

fn data(name: &str) -> String {
    workspace().join("tests/data/ranges").join(name).display().to_string()
}

/// Today as an endpoints version, `YYYYMMDD00`.
fn today_version() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let date = w3c::time::format_rfc3339(now);
    format!("{}{}{}00", &date[..4], &date[5..7], &date[8..10])
}

#[test]
fn update_writes_the_exchange_ranges_with_their_version_and_autodetect() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m365.txt");
    let endpoints = data("m365-endpoints-exchange-2023073100.derived.json");
    let run = ok(casguard(&[
        "ranges",
        "update",
        "--endpoints",
        &endpoints,
        "--endpoints-version",
        &data("m365-version-all-instances.example.json"),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(text(&run.stderr).contains("36 ranges, endpoints version"), "{}", text(&run.stderr));
    let written = std::fs::read_to_string(&out).unwrap();
    let version = written.lines().find_map(|l| l.strip_prefix("# endpoints-version: ")).unwrap();
    assert_eq!(version.len(), 10);
    // IDs 1 and 2 share their addresses: each range once.
    assert_eq!(written.matches("40.96.0.0/13 microsoft365").count(), 1);
    assert!(written.contains("52.125.128.0/20 microsoft365"), "AutoDetect, which the service does not list");

    // A version given as such; the China instance of the all-instances answer.
    let china = ok(casguard(&[
        "ranges",
        "update",
        "--endpoints",
        &endpoints,
        "--endpoints-version",
        &data("m365-version-all-instances.example.json"),
        "--instance",
        "China",
    ]));
    assert!(text(&china.stdout).contains("# endpoints-version: "));
    let bad = casguard(&["ranges", "update", "--endpoints", &endpoints, "--endpoints-version", "next-week"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("next-week"), "{}", text(&bad.stderr));
    let wrong = casguard(&[
        "ranges",
        "update",
        "--endpoints",
        &data("ServiceTags_Public_20251028.json"),
        "--endpoints-version",
        "2026080100",
    ]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong.stderr).contains("ServiceTags_Public_20251028.json"), "{}", text(&wrong.stderr));
}

#[test]
fn audit_warns_when_the_ranges_in_use_are_old_and_a_current_list_quiets_it() {
    let logs = workspace().join("examples/logs/EX01/W3SVC1");
    let logs = logs.to_str().unwrap();
    // The built-in list is endpoints version 2023073100.
    let old = casguard(&["audit", "--format", "json", logs]);
    let stderr = text(&old.stderr);
    assert!(stderr.contains("endpoints version 2023073100") && stderr.contains("days old"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&old.stdout).unwrap();
    assert!(report["notes"].to_string().contains("ranges update"));

    let dir = tempfile::tempdir().unwrap();
    let current = dir.path().join("m365.txt");
    ok(casguard(&[
        "ranges",
        "update",
        "--endpoints",
        &data("m365-endpoints-exchange-2023073100.derived.json"),
        "--endpoints-version",
        &today_version(),
        "--out",
        current.to_str().unwrap(),
    ]));
    let fresh = casguard(&["audit", "--format", "json", "--ranges", current.to_str().unwrap(), logs]);
    assert!(!text(&fresh.stderr).contains("days old"), "{}", text(&fresh.stderr));
    let report = json(&["audit", "--format", "json", "--ranges", current.to_str().unwrap(), logs]);
    assert!(!report["notes"].to_string().contains("ranges update"));
    // Outlook mobile's cloud addresses are still Microsoft's.
    let networks: Vec<String> = report["users"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["devices"].as_array().unwrap().iter())
        .flat_map(|d| d["sources"].as_array().unwrap().iter())
        .map(|s| s["network"].as_str().unwrap().to_string())
        .collect();
    assert!(networks.iter().any(|n| n == "microsoft365"), "{networks:?}");
}
