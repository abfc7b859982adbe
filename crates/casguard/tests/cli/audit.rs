//! End-to-end: generate logs with a known truth, run `casguard audit` as a
//! user would, and check every count the generator knows.

use std::collections::{BTreeMap, BTreeSet};

use casguard_loggen::{GzipMode, Options, Profile, Truth};
use serde_json::Value;

use crate::util::{
    audit_json, casguard, counts, finding_users, findings, generated, refused, source_networks, workspace,
};

pub(crate) fn check_against_truth(report: &Value, truth: &Truth) {
    let s = &report["summary"];
    let t = &truth.summary;
    assert_eq!(s["lines"], t.lines, "lines");
    assert_eq!(s["malformed"], t.malformed, "malformed");
    assert_eq!(s["requests"], t.requests, "requests");
    assert_eq!(s["backend_duplicates"], t.backend_duplicates, "backend duplicates");
    assert_eq!(s["iis_duplicates"], t.iis_duplicates, "IIS lines also in HttpProxy logs");
    assert_eq!(s["probes"], t.probes, "probes");
    assert_eq!(s["exploit_attempts"], t.exploit_attempts, "exploit attempts");
    assert_eq!(s["attacks"], t.attacks, "attacks");
    assert_eq!(s["failed_sign_ins"], t.failed_sign_ins, "failed sign-ins");
    assert_eq!(s["machine"], t.machine, "machine accounts");
    assert_eq!(s["backend_only"], truth.backend_only, "backend only");
    assert_eq!(counts(&report["protocols"]), truth.protocols, "protocols");
    assert_eq!(counts(&report["clients"]), truth.clients, "clients");
    if !truth.auth_types.is_empty() {
        assert_eq!(counts(&report["auth_types"]), truth.auth_types, "authentication types");
    }

    let users: BTreeMap<&str, &Value> =
        report["users"].as_array().unwrap().iter().map(|u| (u["user"].as_str().unwrap(), u)).collect();
    assert_eq!(users.keys().copied().collect::<Vec<_>>(), truth.users.keys().map(String::as_str).collect::<Vec<_>>());
    for (name, expected) in &truth.users {
        let user = users[name.as_str()];
        assert_eq!(user["requests"], expected.requests, "requests of {name}");
        let devices: BTreeMap<&str, &Value> =
            user["devices"].as_array().unwrap().iter().map(|d| (d["id"].as_str().unwrap(), d)).collect();
        assert_eq!(
            devices.keys().copied().collect::<BTreeSet<_>>(),
            expected.devices.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            "devices of {name}"
        );
        for (id, device) in &expected.devices {
            assert_eq!(devices[id.as_str()]["requests"], device.requests, "requests of {name}/{id}");
            assert_eq!(devices[id.as_str()]["client"], device.client.as_str(), "client of {name}/{id}");
        }
        let aliases: BTreeSet<&str> = user["aliases"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        for alias in &expected.aliases {
            assert!(aliases.contains(alias.as_str()), "alias {alias} of {name} missing from {aliases:?}");
        }
    }

    let f = &truth.findings;
    assert_eq!(finding_users(report, "cloud-credentials"), f.cloud_credentials, "cloud-credentials");
    assert_eq!(finding_users(report, "ews-non-outlook"), f.ews_non_outlook, "ews-non-outlook");
    assert_eq!(finding_users(report, "mobile-on-ews"), f.mobile_on_ews, "mobile-on-ews");
    assert_eq!(finding_users(report, "cloud-token"), f.cloud_token, "cloud-token");
    // Attacks, each with its rule, source, count, outcome and the account a
    // ProxyShell token impersonated: nothing more, nothing less.
    for (kind, expected) in [
        ("exploit-attempt", &f.exploit_attempt),
        ("web-shell", &f.web_shell),
        ("data-theft", &f.data_theft),
        ("scanner", &f.scanner),
        ("outside-vdirs", &f.outside_vdirs),
    ] {
        let found: BTreeSet<(String, String, u64, String, Vec<String>)> = findings(report, kind)
            .into_iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().to_string(),
                    f["source"]["ip"].as_str().unwrap().to_string(),
                    f["requests"].as_u64().unwrap(),
                    f["outcome"].as_str().unwrap().to_string(),
                    serde_json::from_value(f["impersonated"].clone()).unwrap_or_default(),
                )
            })
            .collect();
        let expected: BTreeSet<(String, String, u64, String, Vec<String>)> = expected
            .iter()
            .map(|e| (e.rule.clone(), e.source.clone(), e.count, e.outcome.clone(), e.impersonated.clone()))
            .collect();
        assert_eq!(found, expected, "{kind}");
    }
    let sprays: BTreeSet<(String, u64, u64)> = findings(report, "password-spray")
        .into_iter()
        .map(|f| {
            (
                f["source"]["ip"].as_str().unwrap().to_string(),
                f["peak"].as_u64().unwrap(),
                f["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, u64, u64)> =
        f.password_spray.iter().map(|s| (s.source.clone(), s.users, s.failures)).collect();
    assert_eq!(sprays, expected, "password sprays");
    let brute: BTreeSet<(String, u64, usize)> = findings(report, "brute-force")
        .into_iter()
        .map(|f| {
            let user = f["user"].as_str().unwrap().to_string();
            (user, f["requests"].as_u64().unwrap(), f["sources"].as_array().unwrap().len())
        })
        .collect();
    let expected: BTreeSet<(String, u64, usize)> =
        f.brute_force.iter().map(|b| (b.user.clone(), b.failures, b.sources as usize)).collect();
    assert_eq!(brute, expected, "brute force");
}

/// The audit of logs generated with `options`, checked against their
/// truth; the report and the truth.
fn audit_as_generated(options: impl FnOnce(&mut Options)) -> (Value, Truth) {
    let (dir, truth) = generated(options);
    let report = audit_json(dir.path(), &[]);
    check_against_truth(&report, &truth);
    (report, truth)
}

#[test]
fn mixed_front_and_back_end_plain_and_gzip_match_the_truth() {
    let (_, truth) = audit_as_generated(|o| {
        o.seed = 7;
        o.gzip = GzipMode::Some;
    });
    assert!(truth.summary.backend_duplicates > 0 && truth.summary.malformed > 0);
}

#[test]
fn back_end_logs_alone_are_counted_and_said_so() {
    let (report, truth) = audit_as_generated(|o| {
        o.seed = 3;
        o.only_backend = true;
    });
    assert!(truth.backend_only);
    let notes = report["notes"].to_string();
    assert!(notes.contains("back-end"), "{notes}");
}

#[test]
fn truncated_gzip_is_counted_and_the_run_goes_on() {
    let (report, _) = audit_as_generated(|o| {
        o.seed = 11;
        o.gzip = GzipMode::All;
        o.truncate_gzip = true;
    });
    let malformed = report["malformed"].to_string();
    assert!(malformed.contains("truncated-gzip"), "{malformed}");
}

#[test]
fn a_log_a_crash_left_nul_bytes_in_is_read_past_them_and_said_so() {
    let (dir, truth) = generated(|o| {
        o.seed = 12;
        o.gzip = GzipMode::None;
        o.crash = true;
    });
    for threads in ["1", "2"] {
        let report = audit_json(dir.path(), &["--threads", threads]);
        check_against_truth(&report, &truth);
        let notes = report["notes"].to_string();
        assert!(notes.contains("1 run(s) of NUL bytes, the first at line"), "{notes}");
    }
}

#[test]
fn one_thread_and_two_give_identical_reports() {
    let (dir, _) = generated(|o| {
        o.seed = 5;
        o.target_bytes = Some(12_000_000);
        o.gzip = GzipMode::None;
    });
    let one = audit_json(dir.path(), &["--threads", "1"]);
    let two = audit_json(dir.path(), &["--threads", "2"]);
    assert_eq!(one, two);
}

/// Back-end hops are only counted once a thread has seen people, and the
/// hop detail left out then must not show: the back-end-heavy profile (half
/// the lines hops, long `Log=` tokens, base64 queries) at one thread and two.
#[test]
fn backend_heavy_logs_agree_with_truth_at_one_thread_and_two() {
    let (dir, truth) = generated(|o| {
        o.seed = 6;
        o.users = 60;
        o.target_bytes = Some(8_000_000);
        o.gzip = GzipMode::None;
        o.profile = Profile::BackendHeavy;
    });
    let one = audit_json(dir.path(), &["--threads", "1"]);
    check_against_truth(&one, &truth);
    assert_eq!(one, audit_json(dir.path(), &["--threads", "2"]));
}

#[test]
fn strict_makes_malformed_lines_an_error_naming_file_and_line() {
    let (dir, truth) = generated(|o| o.seed = 2);
    assert!(truth.summary.malformed > 0);
    let stderr = refused(casguard(&["audit", "--strict", dir.path().to_str().unwrap()]));
    assert!(stderr.contains(".log:") && stderr.contains("field-count"), "{stderr}");
}

#[test]
fn fail_on_findings_exits_one_and_table_fits_80_columns() {
    let (dir, truth) = generated(|o| o.seed = 9);
    assert!(!truth.findings.cloud_credentials.is_empty());
    let out = casguard(&["audit", "--fail-on-findings", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8(out.stdout).unwrap();
    for section in ["Summary", "Requests by protocol", "Requests by client", "Findings", "Top users"] {
        assert!(table.contains(section), "table lacks {section}");
    }
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "line over 80 columns: {line:?}");
    }
    for user in &truth.findings.cloud_credentials {
        assert!(table.contains(user.as_str()), "table does not name {user}");
    }
}

#[test]
fn csv_writes_our_files_and_the_export_activesync_log_set() {
    let (dir, truth) = generated(|o| o.seed = 4);
    let out_dir = tempfile::tempdir().unwrap();
    let out = casguard(&[
        "audit",
        "--quiet",
        "--format",
        "csv",
        "--out",
        out_dir.path().to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |name: &str| std::fs::read_to_string(out_dir.path().join(name)).unwrap();
    let users = read("users.csv");
    assert_eq!(users.lines().count(), truth.users.len() + 1);
    assert!(read("export-activesynclog/Users.csv")
        .starts_with("User Name,Device ID,Device Type,Items Sent,Items Received,Hits,"));
    assert!(read("export-activesynclog/UserAgents.csv").starts_with("User Agent,Hits,Unique Devices"));
    assert!(read("export-activesynclog/StatusCodes.csv").starts_with("Status,SubStatus,Hits,Ratio"));
    assert_eq!(read("export-activesynclog/Hourly.csv").lines().count(), 169);
    let findings = read("findings.csv");
    for user in &truth.findings.ews_non_outlook {
        assert!(findings.contains(&format!("ews-non-outlook,low,{user},")), "findings.csv lacks {user}");
    }
    // Hits in Export-ActiveSyncLog's Users.csv add up to the ActiveSync requests of known devices.
    let total = read("export-activesynclog/Users.csv")
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(5)
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert!(total > 0 && total <= truth.protocols["activesync"]);
}

#[test]
fn real_backend_sample_reports_the_doubled_space_lines() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/exchange-backend-edge-cases.log");
    let out = casguard(&["audit", "--format", "json", sample]);
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["lines"], 12);
    assert_eq!(report["summary"]["malformed"], 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [5, 6, 7] {
        assert!(stderr.contains(&format!("exchange-backend-edge-cases.log:{line}: field-count")), "{stderr}");
    }
    // Of the 9 good lines: 4 probes (`*_Probe` agents, TestActiveSyncConnectivity,
    // MSEXCHMON), EX04$'s RPC hop, and 4 people's hops, one of them anonymous.
    // The back end stands for the people here, but a computer account is no person.
    let summary = &report["summary"];
    assert_eq!(summary["backend_only"], true);
    assert_eq!((&summary["probes"], &summary["machine"], &summary["requests"]), (&4.into(), &1.into(), &4.into()));
    let users: Vec<&str> = report["users"].as_array().unwrap().iter().map(|u| u["user"].as_str().unwrap()).collect();
    assert_eq!(users, ["ran.user", "randommailbox3242354"]);
}

#[test]
fn fields_option_reads_a_file_whose_header_was_cut_off() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/exchange-backend-edge-cases.log");
    let text = std::fs::read_to_string(sample).unwrap();
    assert!(text.contains(&format!("#Fields: {}", w3c_default())), "the sample logs IIS's default columns");
    let dir = tempfile::tempdir().unwrap();
    let headless = dir.path().join("u_ex220101.log");
    std::fs::write(
        &headless,
        text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let headless = headless.to_str().unwrap();

    // Without --fields: every line is counted as malformed, and the way out is named.
    let out = casguard(&["audit", "--format", "json", headless]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&report["summary"]["lines"], &report["summary"]["malformed"]), (&12.into(), &12.into()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("12 line(s) came before any #Fields line") && stderr.contains("--fields default"),
        "{stderr}"
    );

    // With IIS's default columns, the same report as the file with its header.
    let with_header = casguard(&["audit", "--format", "json", sample]);
    for fields in ["default", w3c_default()] {
        let out = casguard(&["audit", "--format", "json", "--fields", fields, headless]);
        assert!(out.status.success());
        let mut got: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut want: Value = serde_json::from_slice(&with_header.stdout).unwrap();
        for report in [&mut got, &mut want] {
            report["summary"]["bytes"] = 0.into();
            report["malformed"] = Value::Null;
        }
        assert_eq!(got, want, "--fields {fields}");
    }

    // Names that give casguard nothing to read are refused.
    let stderr = refused(casguard(&["audit", "--fields", "foo bar", headless]));
    assert!(stderr.contains("names none of the columns"), "{stderr}");
}

/// IIS's default columns, as written out in the reference notes.
fn w3c_default() -> &'static str {
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status \
     sc-substatus sc-win32-status time-taken"
}

#[test]
fn missing_path_is_an_error() {
    let stderr = refused(casguard(&["audit", "/nonexistent/casguard-logs"]));
    assert!(stderr.contains("/nonexistent/casguard-logs"), "{stderr}");
    // The cause once, not once from the error and again from its source.
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");
}

#[test]
fn bundled_example_logs_match_their_truth_and_the_generator() {
    let examples = workspace().join("examples/logs");
    let truth: Truth = serde_json::from_str(&std::fs::read_to_string(examples.join("truth.json")).unwrap()).unwrap();
    check_against_truth(&audit_json(&examples, &[]), &truth);
    // The committed set is what the generator makes today with the documented command.
    let (_dir, regenerated) = generated(|o| o.seed = 1);
    assert_eq!(regenerated, truth, "examples/logs is stale: regenerate it (examples/logs/README.md)");
}

#[test]
fn ranges_files_name_networks_behind_the_load_balancer() {
    let (dir, _) = generated(|o| o.seed = 6);
    let ranges = dir.path().join("ranges.txt");
    std::fs::write(&ranges, "# branch offices\n203.0.113.0/24 branch-office\n198.51.100.0/24 hotel-wifi\n").unwrap();
    let azure = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/ranges/ServiceTags_Public_20251028.json");
    let report = audit_json(dir.path(), &["--ranges", ranges.to_str().unwrap(), "--ranges", azure]);
    let networks: BTreeSet<String> = source_networks(&report).collect();
    // Phones behind the load balancer are found by their X-Forwarded-For address;
    // Exchange Online stays `microsoft365`, which no Azure tag covers.
    for expected in ["branch-office", "hotel-wifi", "microsoft365", "internal"] {
        assert!(networks.contains(expected), "{expected} missing from {networks:?}");
    }
}

#[test]
fn a_bad_ranges_file_is_an_error_naming_it() {
    let (dir, _) = generated(|o| o.seed = 6);
    let ranges = dir.path().join("bad-ranges.txt");
    std::fs::write(&ranges, "203.0.113.0/33 nowhere\n").unwrap();
    let stderr = refused(casguard(&["audit", "--ranges", ranges.to_str().unwrap(), dir.path().to_str().unwrap()]));
    assert!(stderr.contains("bad-ranges.txt"), "{stderr}");
}
