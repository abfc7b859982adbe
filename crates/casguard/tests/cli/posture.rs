//! `casguard posture` over generated logs, with an in-force policy that blocks
//! Outlook for iOS and Android on ActiveSync (its device type) and leaves
//! EWS, OWA and Outlook on the desktop open. The expected users come from the
//! generator's truth and from `audit`, never from posture's own code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use casguard_loggen::{HttpProxyMode, Truth};
use serde_json::Value;

use crate::util::{casguard, generated, json as run_json, ok, temp_file, workspace};

const IN_FORCE: &str = r#"
default = "allow"

[device_access]
default_access_level = "Allow"

[[device_access.rule]]
characteristic = "DeviceType"
query_string = "Outlook"
access_level = "Block"
"#;

/// Generated logs (IIS and HttpProxy) and the in-force policy beside them.
fn setup(seed: u64) -> (tempfile::TempDir, Truth, tempfile::TempDir) {
    let (dir, truth) = generated(|o| {
        o.seed = seed;
        o.users = 120;
        o.days = 2;
        o.httpproxy = HttpProxyMode::Also;
    });
    (dir, truth, in_force(IN_FORCE))
}

/// A folder holding `in-force.toml`, written with `text`.
fn in_force(text: &str) -> tempfile::TempDir {
    temp_file("in-force.toml", text).0
}

fn posture(logs: &Path, policy: &Path) -> Value {
    let policy = policy.join("in-force.toml");
    run_json(&["posture", "--quiet", "--format", "json", "--policy", policy.to_str().unwrap(), logs.to_str().unwrap()])
}

/// Users with Outlook for iOS and Android signing in with Basic (device type `Outlook`).
fn outlook_mobile_users(truth: &Truth) -> BTreeSet<String> {
    truth
        .users
        .iter()
        .filter(|(_, u)| u.devices.values().any(|d| d.client == "outlook-mobile"))
        .map(|(name, _)| name.clone())
        .collect()
}

fn names<'a>(items: impl Iterator<Item = &'a Value>, key: &str) -> BTreeSet<String> {
    items.map(|v| v[key].as_str().unwrap().to_string()).collect()
}

#[test]
fn names_exactly_the_users_whose_phones_still_reach_mail() {
    for seed in [42, 45] {
        let (logs, truth, policy) = setup(seed);
        let report = posture(logs.path(), policy.path());
        let blocked = outlook_mobile_users(&truth);
        // Phones on the other mail doors (EWS, OWA, MAPI, RPC), by the generator's labels.
        let mobile_web: BTreeSet<String> = truth.findings.mobile_on_ews.iter().cloned().collect();
        let expected: BTreeSet<String> = blocked.intersection(&mobile_web).cloned().collect();
        assert!(!expected.is_empty(), "seed {seed} has no phone backdoor to find");

        let backdoors = report["backdoors"].as_array().unwrap();
        let with_phone = names(
            backdoors.iter().filter(|b| b["evidence"].as_array().unwrap().iter().any(|e| e["mobile"] == true)),
            "user",
        );
        assert_eq!(with_phone, expected, "seed {seed}");

        // Every backdoor is gated by the device rule, and with third-party EWS clients the
        // backdoors are exactly the blocked users on EWS with anything but Outlook.
        let non_outlook: BTreeSet<String> = truth.findings.ews_non_outlook.iter().cloned().collect();
        let all: BTreeSet<String> =
            blocked.intersection(&mobile_web.union(&non_outlook).cloned().collect()).cloned().collect();
        assert_eq!(names(backdoors.iter(), "user"), all, "seed {seed}");
        // Riskiest first; from outside the LAN is high.
        let risks: Vec<u64> = backdoors.iter().map(|b| b["risk"].as_u64().unwrap()).collect();
        assert!(risks.windows(2).all(|w| w[0] >= w[1]), "{risks:?}");
        for b in backdoors {
            let outside = b["evidence"].as_array().unwrap().iter().any(|e| e["network"] != "internal");
            assert_eq!(b["level"] == "high", outside, "{b}");
            assert!(b["gated_by"][0]["rule"].as_str().unwrap().contains("device_access"), "{b}");
            assert_eq!(b["gated_by"][0]["protocol"], "activesync");
        }
        // Each user the device rule gates is a backdoor or said to have only approved clients.
        let gated_only: BTreeSet<String> = report["gated_without_backdoor"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let gated: BTreeSet<String> = names(backdoors.iter(), "user").union(&gated_only).cloned().collect();
        assert_eq!(gated, blocked, "seed {seed}");
    }
}

#[test]
fn outlook_for_windows_on_mapi_from_the_lan_is_not_a_backdoor() {
    let (logs, truth, policy) = setup(43);
    let report = posture(logs.path(), policy.path());
    // Blocked users whose other clients are all Outlook for Windows or Mac or desktop browsers.
    let approved = ["outlook-mobile", "outlook-windows", "outlook-mac", "browser"];
    let desktop_only: BTreeSet<String> = outlook_mobile_users(&truth)
        .into_iter()
        .filter(|u| truth.users[u].devices.values().all(|d| approved.contains(&d.client.as_str())))
        .collect();
    assert!(!desktop_only.is_empty());
    let backdoor_users = names(report["backdoors"].as_array().unwrap().iter(), "user");
    let gated_only: BTreeSet<String> =
        report["gated_without_backdoor"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    for user in &desktop_only {
        assert!(!backdoor_users.contains(user), "{user} has only desktop Outlook and browsers");
        assert!(gated_only.contains(user), "{user} is gated on ActiveSync");
    }
    // No backdoor's evidence is an approved client; Outlook for Windows on MAPI from the LAN is context.
    let mut lan_mapi = 0;
    for b in report["backdoors"].as_array().unwrap() {
        for e in b["evidence"].as_array().unwrap() {
            assert_ne!(e["client"], "outlook-windows", "{b}");
            assert_ne!(e["kind"], "approved");
        }
        for e in b["context"].as_array().unwrap() {
            if e["client"] == "outlook-windows" && e["protocol"] == "mapi" && e["network"] == "internal" {
                lan_mapi += 1;
            }
        }
    }
    assert!(lan_mapi > 0, "some backdoor user also has Outlook for Windows on MAPI from the LAN, as context");
}

#[test]
fn unused_doors_get_the_set_casmailbox_lines() {
    let (logs, _, policy) = setup(41);
    let report = posture(logs.path(), policy.path());
    let audit = run_json(&["audit", "--quiet", "--format", "json", logs.path().to_str().unwrap()]);
    // Protocols each user used, by the audit.
    let used: BTreeMap<String, BTreeSet<String>> = audit["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let protocols = u["protocols"].as_object().unwrap().keys().cloned().collect();
            (u["user"].as_str().unwrap().to_string(), protocols)
        })
        .collect();
    let commands: Vec<&str> =
        report["unused"]["commands"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    let switches = [
        ("activesync", "-ActiveSyncEnabled $false"),
        ("ews", "-EwsEnabled $false"),
        ("owa", "-OWAEnabled $false"),
        ("mapi", "-MapiHttpEnabled $false"),
        ("rpc", "-MAPIBlockOutlookRpcHttp $true"),
    ];
    let mut per_protocol: BTreeMap<&str, u64> = BTreeMap::new();
    let mut checked = 0;
    for user in report["users"].as_array().unwrap() {
        let name = user["user"].as_str().unwrap();
        let Some(protocols) = used.get(name) else { continue };
        let line = commands.iter().find(|c| c.starts_with(&format!("Set-CASMailbox -Identity '{name}' ")));
        for (protocol, switch) in switches {
            let unused = !protocols.contains(protocol);
            let in_line = line.is_some_and(|l| l.contains(switch));
            // Nothing here denies these protocols: every unused one is open and gets its switch.
            assert_eq!(unused, in_line, "{name} {protocol}: {line:?}");
            if unused {
                *per_protocol.entry(protocol).or_default() += 1;
            }
            checked += 1;
        }
    }
    assert!(checked > 100);
    for (protocol, n) in &per_protocol {
        assert_eq!(report["unused"]["per_protocol"][protocol], *n, "{protocol}");
    }
    assert!(per_protocol["mapi"] > 0);
    // MAPI over HTTP alone is never MAPIEnabled: that would cut Outlook on the LAN too.
    assert!(commands.iter().all(|c| !c.contains("-MAPIEnabled")));
}

#[test]
fn basic_authentication_in_use_names_protocols_clients_and_users() {
    let (logs, _, policy) = setup(45);
    let report = posture(logs.path(), policy.path());
    let audit = run_json(&["audit", "--quiet", "--format", "json", logs.path().to_str().unwrap()]);
    let basic: u64 = report["basic_auth"].as_array().unwrap().iter().map(|b| b["requests"].as_u64().unwrap()).sum();
    assert!(basic > 0);
    // The audit counts people's requests per authentication type the same way.
    assert_eq!(Some(basic), audit["auth_types"]["basic"].as_u64());
    for b in report["basic_auth"].as_array().unwrap() {
        assert!(!b["users"].as_array().unwrap().is_empty());
    }
}

#[test]
fn table_fits_80_columns_and_csv_writes_the_script() {
    let (logs, _, policy) = setup(42);
    let policy = policy.path().join("in-force.toml");
    let out =
        ok(casguard(&["posture", "--quiet", "--policy", policy.to_str().unwrap(), logs.path().to_str().unwrap()]));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("Open backdoors") && table.contains("Open and unused"), "{table}");
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "over 80 columns: {line:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    ok(casguard(&[
        "posture",
        "--quiet",
        "--format",
        "csv",
        "--out",
        dir.path().to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        logs.path().to_str().unwrap(),
    ]));
    let script = std::fs::read_to_string(dir.path().join("disable-unused.ps1")).unwrap();
    assert!(script.lines().any(|l| l.starts_with("Set-CASMailbox -Identity ")));
    let doors = std::fs::read_to_string(dir.path().join("doors.csv")).unwrap();
    assert!(doors.starts_with("user,protocol,state,"));
    let backdoors = std::fs::read_to_string(dir.path().join("backdoors.csv")).unwrap();
    assert!(backdoors.lines().count() > 1);
}

/// Remote PowerShell is how the Exchange Management Shell connects, on the
/// server too: the example logs' `administrator` sent no /PowerShell request,
/// and running the script as written must not lock them out of it.
#[test]
fn the_script_never_closes_the_management_shell_as_it_stands() {
    let (dir, policy) = temp_file("allow.toml", "default = \"allow\"\n");
    let logs = workspace().join("examples/logs");
    let (policy, logs) = (policy.to_str().unwrap(), logs.to_str().unwrap());
    let table = String::from_utf8(ok(casguard(&["posture", "--quiet", "--policy", policy, logs])).stdout).unwrap();
    assert!(table.contains("  note: Set-User -RemotePowerShellEnabled $false also closes the Exchange"), "{table}");
    assert!(table.lines().all(|l| l.chars().count() <= 80), "{table}");
    let csv = dir.path().join("csv");
    let csv = csv.to_str().unwrap();
    ok(casguard(&["posture", "--quiet", "--format", "csv", "--out", csv, "--policy", policy, logs]));
    let script = std::fs::read_to_string(Path::new(csv).join("disable-unused.ps1")).unwrap();
    assert!(script.lines().any(|l| l.starts_with("Set-CASMailbox -Identity 'administrator' ")), "{script}");
    assert!(!script.lines().any(|l| l.starts_with("Set-User")), "{script}");
    assert!(script.contains("# WARNING: -RemotePowerShellEnabled $false also closes the Exchange Management Shell"));
    assert!(script.lines().any(|l| l == "# Set-User -Identity 'administrator' -RemotePowerShellEnabled $false"));
}

#[test]
fn imported_settings_name_the_mechanism_and_closed_doors_get_no_line() {
    let (logs, _, _) = setup(44);
    let dir = tempfile::tempdir().unwrap();
    let in_force = dir.path().join("in-force.toml");
    let folder = crate::util::workspace().join("tests/data/import/contoso");
    ok(casguard(&["policy", "import", folder.to_str().unwrap(), "-o", in_force.to_str().unwrap()]));
    let report = run_json(&[
        "posture",
        "--quiet",
        "--format",
        "json",
        "--policy",
        in_force.to_str().unwrap(),
        logs.path().to_str().unwrap(),
    ]);
    // applicationHost.config allows /PowerShell from listed addresses only: no user's LAN or
    // outside client is among them, so the door is closed by the IP restriction for everyone.
    let users = report["users"].as_array().unwrap();
    assert!(users.len() > 100);
    for user in users {
        let ps = user["doors"].as_array().unwrap().iter().find(|d| d["protocol"] == "powershell").unwrap();
        assert!(ps["blocked_by"].as_str().unwrap().starts_with("ip_restrictions /PowerShell"), "{ps}");
        assert_ne!(ps["state"], "open");
    }
    let commands = report["unused"]["commands"].as_array().unwrap();
    assert!(commands.iter().all(|c| !c.as_str().unwrap().contains("RemotePowerShellEnabled")));
    assert!(report["unused"]["per_protocol"].get("powershell").is_none());
}

/// Users with a device of `client` in the generator's truth.
fn users_of(truth: &Truth, client: &str) -> BTreeSet<String> {
    truth.users.iter().filter(|(_, u)| u.devices.values().any(|d| d.client == client)).map(|(n, _)| n.clone()).collect()
}

/// Each user's Outlook for iOS and Android door of one sign-in, by user.
fn mobile_doors<'a>(report: &'a Value, sign_in: &str) -> BTreeMap<String, &'a Value> {
    let mut doors = BTreeMap::new();
    for u in report["users"].as_array().unwrap() {
        let door = u["outlook_mobile"].as_array().unwrap().iter().find(|d| d["sign_in"] == sign_in).unwrap();
        doors.insert(u["user"].as_str().unwrap().to_string(), door);
    }
    doors
}

#[test]
fn outlook_mobile_is_tried_with_basic_and_with_modern_auth_apart() {
    let (logs, truth, policy) = setup(44);
    // The device rule blocks DeviceType Outlook (Basic) for everyone; OutlookService passes.
    let report = posture(logs.path(), policy.path());
    let (basic, hma) = (mobile_doors(&report, "basic"), mobile_doors(&report, "hma"));
    assert!(basic.values().all(|d| d["state"] == "blocked" && d["blocked_by"].as_str().unwrap().contains("Outlook")));
    assert!(hma.values().all(|d| d["state"] == "open" && d["blocked_by"].is_null()));
    let refused: BTreeSet<String> =
        basic.iter().filter(|(_, d)| d["denied"].as_u64().unwrap() > 0).map(|(u, _)| u.clone()).collect();
    assert_eq!(refused, outlook_mobile_users(&truth));
    let synced: BTreeSet<String> =
        hma.iter().filter(|(_, d)| d["reached"].as_u64().unwrap() > 0).map(|(u, _)| u.clone()).collect();
    let hma_users = users_of(&truth, "outlook-mobile-hma");
    assert!(!hma_users.is_empty(), "seed 44 has hybrid modern auth users");
    assert_eq!(synced, hma_users);
    assert_eq!(report["summary"]["outlook_mobile_basic_open"], 0);
    assert_eq!(report["summary"]["outlook_mobile_basic_used"], 0);

    // An authentication policy blocking legacy ActiveSync closes Basic only, by its own name;
    // with the door open, every Basic user synced.
    let auth = in_force(
        "default = \"allow\"\n[auth_policies]\ndefault = \"No legacy EAS\"\n[[auth_policies.policy]]\n\
         name = \"No legacy EAS\"\nblock_legacy = [\"ActiveSync\"]\n",
    );
    let report = posture(logs.path(), auth.path());
    let (basic, hma) = (mobile_doors(&report, "basic"), mobile_doors(&report, "hma"));
    assert!(
        basic.values().all(|d| d["state"] == "blocked" && d["blocked_by"].as_str().unwrap().contains("No legacy EAS")),
        "{basic:?}"
    );
    assert!(hma.values().all(|d| d["state"] == "open"));
    let open = in_force("default = \"allow\"\n");
    let report = posture(logs.path(), open.path());
    let basic = mobile_doors(&report, "basic");
    let synced: BTreeSet<String> =
        basic.iter().filter(|(_, d)| d["reached"].as_u64().unwrap() > 0).map(|(u, _)| u.clone()).collect();
    assert_eq!(synced, outlook_mobile_users(&truth));
    assert_eq!(report["summary"]["outlook_mobile_basic_open"], basic.len());
    assert_eq!(report["summary"]["outlook_mobile_basic_used"], synced.len());
}

/// A rule on devices new since a cut-over is a plan, not a setting Exchange
/// enforces: posture says so and points to simulate, rather than asking for
/// an inventory it has no option for.
#[test]
fn a_cut_over_rule_in_the_policy_in_force_is_refused_with_its_line() {
    let policy = crate::util::example("block-new-outlook-devices.toml");
    let logs = crate::util::workspace().join("examples/logs");
    let stderr = crate::util::refused(casguard(&["posture", "--policy", &policy, logs.to_str().unwrap()]));
    assert!(
        stderr.contains("block-new-outlook-devices.toml:14:") && stderr.contains("simulate this policy instead"),
        "{stderr}"
    );
    assert!(!stderr.contains("--inventory"), "posture takes no inventory: {stderr}");
}
