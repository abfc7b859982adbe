//! End-to-end: each shipped example policy, simulated over generated logs,
//! denies exactly what the generator knows it should.

use std::collections::BTreeSet;
use std::path::Path;

use casguard_loggen::Truth;
use serde_json::Value;

use crate::util::{
    casguard, example, generated, inventory_build, refused, simulate, simulate_file, strings, temp_file, workspace,
};

fn logs(seed: u64) -> (tempfile::TempDir, Truth) {
    generated(|o| o.seed = seed)
}

/// `report` (or one rule of it) denies `denied` requests, of `users` (under
/// `key`), as the generator knows.
fn denies(report: &Value, key: &str, denied: u64, users: &[String]) {
    assert_eq!(report["denied_requests"], denied);
    assert_eq!(strings(&report[key]), users);
}

#[test]
fn iis_block_outlook_ua_denies_what_the_generator_knows() {
    let (dir, truth) = logs(21);
    let report = simulate("iis-block-outlook-ua.toml", dir.path(), &[]);
    let expected = &truth.policies.iis_block_outlook_ua;
    assert!(expected.denied_requests > 0);
    denies(&report, "affected_users", expected.denied_requests, &expected.affected_users);
    denies(&report["rules"][0], "users", expected.denied_requests, &expected.affected_users);
    // Blocking ActiveSync leaves the other doors: every affected user who also used Outlook on
    // the desktop shows up as a backdoor with EWS or MAPI still open.
    let backdoors = report["backdoors"].as_array().unwrap();
    assert!(!backdoors.is_empty());
    for b in backdoors {
        assert_eq!(b["denied_on"], serde_json::json!(["activesync"]));
        assert!(!b["still_reaches"].as_array().unwrap().is_empty());
    }
}

#[test]
fn ews_allow_outlook_only_denies_other_ews_clients_and_warns_about_probes() {
    let (dir, truth) = logs(22);
    let report = simulate("ews-allow-outlook-only.toml", dir.path(), &[]);
    let expected = &truth.policies.ews_allow_outlook_only;
    denies(&report, "affected_users", expected.denied_requests, &expected.affected_users);
    // The EWS probes of Managed Availability would be denied too: said apart from people.
    assert!(report["probes"]["denied_requests"].as_u64().unwrap() > 0);
    assert!(report["notes"].to_string().contains("Managed Availability"));
}

#[test]
fn block_outlook_provision_counts_known_devices_it_would_cut_off() {
    let (dir, truth) = logs(23);
    let expected = &truth.policies.block_outlook_provision;
    let report = simulate("block-outlook-provision.toml", dir.path(), &["--known-before", &truth.cutover]);
    denies(&report, "affected_users", expected.denied_requests, &expected.affected_users);
    assert_eq!(report["grandfathering"]["provision_from_known_devices"], expected.provision_from_known_devices);
    assert!(expected.provision_from_known_devices > 0);

    // Without a cut-over the count is unknown, not zero.
    let report = simulate("block-outlook-provision.toml", dir.path(), &[]);
    assert!(report["grandfathering"]["provision_from_known_devices"].is_null());
}

#[test]
fn block_new_outlook_devices_spares_devices_known_at_the_cut_over() {
    let (dir, truth) = logs(24);
    let expected = &truth.policies.block_new_outlook_devices;
    let report = simulate("block-new-outlook-devices.toml", dir.path(), &["--known-before", &truth.cutover]);
    denies(&report, "affected_users", expected.denied_requests, &expected.affected_users);
    assert_eq!(report["grandfathering"]["provision_from_known_devices"], 0);

    // The same through an inventory file built by `casguard inventory build`.
    let inventory = dir.path().join("inventory.json");
    inventory_build(&truth.cutover, &[], &inventory, dir.path());
    let via_file =
        simulate("block-new-outlook-devices.toml", dir.path(), &["--inventory", inventory.to_str().unwrap()]);
    assert_eq!(via_file["denied_requests"], report["denied_requests"]);
    assert_eq!(via_file["affected_users"], report["affected_users"]);
}

#[test]
fn a_device_rule_without_a_cut_over_is_an_error_naming_the_line() {
    let (dir, _) = logs(25);
    let policy = example("block-new-outlook-devices.toml");
    let stderr = refused(casguard(&["simulate", "--policy", &policy, dir.path().to_str().unwrap()]));
    assert!(stderr.contains("block-new-outlook-devices.toml:") && stderr.contains("--known-before"), "{stderr}");
}

#[test]
fn every_example_policy_passes_policy_check() {
    let dir = workspace().join("examples/policies");
    let mut checked = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = casguard(&["policy", "check", path.to_str().unwrap()]);
            assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            checked.insert(path.file_name().unwrap().to_string_lossy().to_string());
        }
    }
    for name in [
        "iis-block-outlook-ua.toml",
        "ews-allow-outlook-only.toml",
        "block-outlook-provision.toml",
        "block-new-outlook-devices.toml",
    ] {
        assert!(checked.contains(name), "{name} missing");
    }
}

#[test]
fn table_output_names_rules_and_backdoors() {
    let (dir, _) = logs(26);
    let policy = example("iis-block-outlook-ua.toml");
    let out = casguard(&["simulate", "--quiet", "--policy", &policy, dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("Rules") && table.contains("Backdoors"));
    assert!(table.contains("still reaches"));
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "over 80 columns: {line:?}");
    }
    // Each heading is underlined to its own width, "Backdoors (N)" included.
    let lines: Vec<&str> = table.lines().collect();
    let underlined: Vec<(&str, &str)> =
        lines.windows(2).filter(|w| w[1].starts_with('─')).map(|w| (w[0], w[1])).collect();
    assert!(underlined.len() >= 2, "{table}");
    for (title, rule) in underlined {
        assert_eq!(title.chars().count(), rule.chars().count(), "{title:?} underlined by {rule:?}");
    }
}

#[test]
fn csv_lists_rules_denied_devices_and_backdoors() {
    let (dir, truth) = logs(27);
    let out = tempfile::tempdir().unwrap();
    let policy = example("iis-block-outlook-ua.toml");
    let status = casguard(&[
        "simulate",
        "--quiet",
        "--format",
        "csv",
        "--out",
        out.path().to_str().unwrap(),
        "--policy",
        &policy,
        dir.path().to_str().unwrap(),
    ]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap();
    let denied: u64 =
        read("denied.csv").lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap()).sum();
    let expected = &truth.policies.iis_block_outlook_ua;
    // Denied requests of named users; anonymous ones are counted in rules.csv only.
    assert!(denied > 0 && denied <= expected.denied_requests);
    let users: BTreeSet<String> =
        read("denied.csv").lines().skip(1).map(|l| l.split(',').nth(1).unwrap().to_string()).collect();
    assert_eq!(users.into_iter().collect::<Vec<_>>(), expected.affected_users);
    assert!(read("rules.csv").contains(",deny,"));
    assert!(read("backdoors.csv").lines().count() > 1);
    // This policy leaves probes and computer accounts alone.
    assert_eq!(read("denied_other.csv"), "kind,rule,denied_requests,examples\n");
}

#[test]
fn csv_lists_the_probes_and_computer_accounts_a_policy_would_deny() {
    let out = tempfile::tempdir().unwrap();
    let logs = workspace().join("examples/logs");
    let policy = example("outlook-mobile-lockdown.toml");
    let args = |format: &'static str| {
        let mut args = vec!["simulate", "--quiet", "--format", format, "--policy", &policy];
        if format == "csv" {
            args.extend(["--out", out.path().to_str().unwrap()]);
        }
        args.push(logs.to_str().unwrap());
        args
    };
    let json: Value = serde_json::from_slice(&casguard(&args("json")).stdout).unwrap();
    assert!(casguard(&args("csv")).status.success());
    let csv = std::fs::read_to_string(out.path().join("denied_other.csv")).unwrap();
    // One row per rule and kind, with the JSON's counts.
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let total = |kind: &str| rows.iter().filter(|r| r[0] == kind).map(|r| r[2].parse::<u64>().unwrap()).sum::<u64>();
    assert_eq!(total("probe"), json["probes"]["denied_requests"].as_u64().unwrap());
    assert_eq!(total("machine"), json["machines"]["denied_requests"].as_u64().unwrap());
    assert!(total("probe") > 0 && total("machine") > 0, "{csv}");
    assert!(rows.iter().filter(|r| r[0] == "machine").all(|r| r[3].split(';').all(|a| a.ends_with('$'))), "{csv}");
}

/// Simulate with a policy given as text, over `logs`.
fn simulate_text(policy: &str, logs: &Path, extra: &[&str]) -> Value {
    let (_dir, path) = temp_file("policy.toml", policy);
    crate::util::simulate_file(path.to_str().unwrap(), logs, extra)
}

#[test]
fn computer_accounts_a_policy_would_deny_are_reported_apart_from_people() {
    const DENY_RPC: &str = "default = \"allow\"\n[[rule]]\nname = \"no rpc\"\naction = \"deny\"\nprotocol = \"rpc\"\n";

    // Generated front-end logs: the generator's computer accounts use RPC and remote PowerShell.
    let (dir, truth) = logs(21);
    let report = simulate_text(DENY_RPC, dir.path(), &[]);
    let machines = &report["machines"];
    assert_eq!(machines["requests"], truth.summary.machine);
    let denied = machines["denied_requests"].as_u64().unwrap();
    assert!(denied > 0 && denied < truth.summary.machine, "{machines}");
    let accounts = strings(&machines["rules"][0]["accounts"]);
    assert!(!accounts.is_empty() && accounts.iter().all(|a| a.ends_with('$')), "{accounts:?}");
    assert!(!strings(&report["affected_users"]).iter().any(|u| u.ends_with('$')));

    // The real back-end sample alone: EX04$'s RPC hop is a computer account's, not a person's.
    let sample = workspace().join("tests/data/exchange-backend-edge-cases.log");
    let report = simulate_text(DENY_RPC, &sample, &[]);
    assert_eq!(report["summary"]["backend_only"], true);
    assert_eq!((&report["summary"]["requests"], &report["summary"]["denied_requests"]), (&4.into(), &1.into()));
    assert_eq!(report["machines"]["denied_requests"], 1);
    assert_eq!(strings(&report["machines"]["rules"][0]["accounts"]), ["ex04$"]);
}

/// A policy blocking one device model or OS.
fn device_rule(characteristic: &str, value: &str) -> String {
    format!(
        "default = 'allow'\n[device_access]\n[[device_access.rule]]\ncharacteristic = '{characteristic}'\n\
         query_string = '{value}'\naccess_level = 'Block'\n"
    )
}

#[test]
fn a_device_os_rule_judges_every_request_of_a_device_whose_hops_logged_it() {
    // Only the back end writes `Log=` (DevOS): the front-end lines, which
    // simulate judges, carry none, yet Exchange judges them all by it.
    let os = "Outlook for iOS and Android 1.0";
    let logs = workspace().join("examples/logs");
    let audit = crate::util::audit_json(&logs, &[]);
    let mut expected = BTreeSet::new();
    let mut activesync = 0;
    for user in audit["users"].as_array().unwrap() {
        for device in user["devices"].as_array().unwrap().iter().filter(|d| d["os"] == os) {
            expected.insert(user["user"].as_str().unwrap().to_string());
            activesync += device["protocols"]["activesync"].as_u64().unwrap_or(0);
        }
    }
    assert!(expected.len() > 2, "{expected:?}");
    let report = simulate_text(&device_rule("DeviceOS", os), &logs, &[]);
    let rule = &report["rules"][0];
    assert_eq!(rule["denied_requests"].as_u64(), Some(activesync));
    assert_eq!(strings(&rule["users"]).into_iter().collect::<BTreeSet<_>>(), expected);
    assert!(report["notes"].to_string().contains("were read from the logs"), "{}", report["notes"]);
}

#[test]
fn a_device_model_rule_says_when_nothing_gives_a_model() {
    // Exchange 2019 front-end lines alone: no `Log=` anywhere.
    let policy = device_rule("DeviceModel", "SM-S911B");
    let logs = workspace().join("tests/data/iis/msqa-430572-eas-front-end-no-log.log");
    let alone = simulate_text(&policy, &logs, &[])["notes"].to_string();
    assert!(alone.contains("reads a device's model or OS"), "{alone}");
    assert!(alone.contains("1 of 1 ActiveSync device(s) have no model"), "{alone}");
}

/// The note that a model rule can miss requests counts the devices whose
/// model nothing gives, though an export gives other devices' models; once
/// the export holds the logged device too, the rule judges it and no note
/// is left.
#[test]
fn a_device_model_rule_notes_the_devices_an_export_leaves_without_a_model() {
    let policy = device_rule("DeviceModel", "SM-S911B");
    let logs = workspace().join("tests/data/iis/msqa-430572-eas-front-end-no-log.log");
    let export = workspace().join("tests/data/devices/ps51-convertto-json.json");
    // The export's six partnerships, none of them seanryan's iPad, the one device in the logs.
    let others = simulate_text(&policy, &logs, &["--devices", export.to_str().unwrap()]);
    let notes = others["notes"].to_string();
    assert!(notes.contains("1 of 1 ActiveSync device(s) have no model"), "{notes}");
    assert_eq!(others["rules"][0]["denied_requests"], 0);

    // The same export with carol's Galaxy's row made the iPad's (its model SM-S911B, for the test's sake).
    let text = std::fs::read_to_string(&export).unwrap();
    let text = text.trim_start_matches('\u{feff}');
    let mut rows: Vec<Value> = serde_json::from_str(text).unwrap();
    let row = rows.iter_mut().find(|r| r["DeviceID"] == "SEC1A2B3C4D5E6F7").expect("carol's row");
    row["DeviceID"] = "N273TC3QE567H90G6LH4LTK89G".into();
    row["SamAccountName"] = "seanryan".into();
    row["PrimarySmtpAddress"] = "seanryan@contoso.com".into();
    row["Identity"] =
        "contoso.com/Users/Sean Ryan/ExchangeActiveSyncDevices/iPad\u{a7}N273TC3QE567H90G6LH4LTK89G".into();
    let dir = tempfile::tempdir().unwrap();
    let held = dir.path().join("devices.json");
    std::fs::write(&held, serde_json::to_string(&rows).unwrap()).unwrap();
    let report = simulate_text(&policy, &logs, &["--devices", held.to_str().unwrap()]);
    let notes = report["notes"].to_string();
    assert!(!notes.contains("can miss"), "{notes}");
    assert_eq!(report["rules"][0]["denied_requests"], 4, "{}", report["rules"]);
}

/// A logged request the gateway would refuse before any rule (here an
/// ActiveSync parameter given twice, which Exchange could read either way)
/// is counted as refused, not as the rule or default that would decide it.
#[test]
fn requests_the_gateway_refuses_are_counted_as_refused() {
    let dir = tempfile::tempdir().unwrap();
    let line = |time: &str, query: &str| {
        format!(
            "2026-11-02 {time} 10.0.1.11 POST /Microsoft-Server-ActiveSync/default.eas {query} 443 CONTOSO\\jdoe \
             203.0.113.5 Apple-iPhone15C3/2104.100 - 200 0 0 100\n"
        )
    };
    let log = format!(
        "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) \
         cs(Referer) sc-status sc-substatus sc-win32-status time-taken\n{}{}",
        line("10:00:00", "Cmd=Sync&User=jdoe&DeviceId=ABC123&DeviceType=iPhone&DeviceType=Outlook"),
        line("10:00:01", "Cmd=Sync&User=jdoe&DeviceId=ABC123&DeviceType=iPhone"),
    );
    std::fs::write(dir.path().join("u_ex261102.log"), log).unwrap();
    let report = simulate("block-outlook-provision.toml", dir.path(), &[]);
    let rules = report["rules"].as_array().unwrap();
    let refused = rules.iter().find(|r| r["name"] == "refused: ambiguous request").expect("a refused row");
    assert_eq!((refused["action"].as_str(), refused["denied_requests"].as_u64()), (Some("deny"), Some(1)));
    assert_eq!(strings(&refused["users"]), ["jdoe"]);
    let default = rules.iter().find(|r| r["name"] == "default").expect("a default row");
    assert_eq!(default["matched_requests"], 1);
}

/// Outlook for Windows opens its Autodiscover sign-in with a request that
/// names no one (a real line, answered `401 1 2148074254`), then signs in.
/// A rule letting its user through by name denies the opening, as the
/// gateway does (it answers it with the challenge, see the gateway's
/// `a_windows_sign_in_opens_...` test), and cuts no one off.
#[test]
fn the_opening_of_a_windows_sign_in_is_denied_and_cuts_no_one_off() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    let rule = "[[rule]]\nname = 'only test'\naction = 'deny'\npath = '/Autodiscover'\n";
    std::fs::write(&policy, format!("{rule}unless = {{ user = 'CUSTOMER\\\\test.onpremise' }}\n")).unwrap();
    let log = workspace().join("tests/data/iis/msqa-1248327-outlook-autodiscover-challenge-then-200.log");
    let report = simulate_file(policy.to_str().unwrap(), &log, &[]);
    assert_eq!(report["rules"][0]["anonymous_requests"], 1, "{report}");
    assert_eq!(report["affected_users"], serde_json::json!([]), "{report}");
}
