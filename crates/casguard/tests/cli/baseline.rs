//! `casguard simulate --baseline IN-FORCE --policy TARGET`: only the change.
//! Expected answers come from the generator's truth and from plain
//! `simulate` runs of each policy alone, never from the comparison itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::util::*;

/// Outlook mobile blocked on ActiveSync by IIS request filtering; EWS open.
const IN_FORCE: &str = "iis-block-outlook-ua.toml";

/// The same, and EWS closed to everything but Outlook for Windows and Mac.
fn target_text() -> String {
    let iis = std::fs::read_to_string(example(IN_FORCE)).unwrap();
    let ews = std::fs::read_to_string(example("ews-allow-outlook-only.toml")).unwrap();
    let ews: String = ews.lines().filter(|l| !l.starts_with("default")).map(|l| format!("{l}\n")).collect();
    format!("{iis}\n{ews}")
}

/// [`target_text`] written as `name` in a fresh folder: the folder, and the file's path.
fn target_file(name: &str) -> (tempfile::TempDir, String) {
    let (dir, path) = temp_file(name, &target_text());
    (dir, path.display().to_string())
}

fn plain(policy: &str, logs: &Path) -> Value {
    json(&["simulate", "--quiet", "--format", "json", "--policy", policy, logs.to_str().unwrap()])
}

/// Runs `casguard simulate --quiet ARGS --baseline BASELINE --policy POLICY LOGS`,
/// which must succeed.
fn simulate_change(args: &[&str], baseline: &str, policy: &str, logs: &str) -> Output {
    let mut all = vec!["simulate", "--quiet"];
    all.extend_from_slice(args);
    all.extend(["--baseline", baseline, "--policy", policy, logs]);
    ok(casguard(&all))
}

/// The JSON change report of `simulate_change`.
fn change(baseline: &str, policy: &str, logs: &Path) -> Value {
    let out = simulate_change(&["--format", "json"], baseline, policy, logs.to_str().unwrap());
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// Users and their denied requests of one rule of a plain simulate report.
fn rule_users(report: &Value, rule: &str) -> BTreeMap<String, u64> {
    let rule = report["rules"].as_array().unwrap().iter().find(|r| r["name"] == rule).expect(rule);
    let mut users = BTreeMap::new();
    for d in rule["devices"].as_array().unwrap() {
        *users.entry(d["user"].as_str().unwrap().to_string()).or_default() += d["requests"].as_u64().unwrap();
    }
    users
}

/// Users and requests of one section of a change report, over all its rules.
fn section_users(report: &Value, section: &str) -> BTreeMap<String, u64> {
    let mut users = BTreeMap::new();
    for rule in report[section].as_array().unwrap() {
        for u in rule["users"].as_array().unwrap() {
            *users.entry(u["user"].as_str().unwrap().to_string()).or_default() += u["requests"].as_u64().unwrap();
        }
    }
    users
}

fn keys(m: &BTreeMap<String, u64>) -> Vec<String> {
    m.keys().cloned().collect()
}

#[test]
fn closing_ews_newly_cuts_off_exactly_the_non_outlook_ews_users() {
    let (logs, truth) = generated(|o| o.seed = 41);
    let baseline = example(IN_FORCE);
    let (_dir, target) = target_file("target.toml");
    let report = change(&baseline, &target, logs.path());

    // Independently: the generator knows whom EWS's allow list cuts off and whom the IIS
    // filter cuts off today; the two policies are also simulated one by one.
    let ews = &truth.policies.ews_allow_outlook_only;
    let iis = &truth.policies.iis_block_outlook_ua;
    assert!(!ews.affected_users.is_empty() && !iis.affected_users.is_empty());
    let alone_target = plain(&target, logs.path());
    let alone_baseline = plain(&baseline, logs.path());
    let ews_rule = rule_users(&alone_target, "ews_access: EnforceAllowList");
    assert_eq!(keys(&ews_rule), ews.affected_users);

    let newly = section_users(&report, "newly_cut_off");
    assert_eq!(keys(&newly), ews.affected_users);
    assert_eq!(strings(&report["newly_cut_off_users"]), ews.affected_users);
    assert_eq!(newly, ews_rule, "per-user requests as the target alone denies them on EWS");
    assert_eq!(report["summary"]["newly_denied_requests"], ews.denied_requests);
    // Every newly denied request is EWS, named by the target's EWS rule.
    for rule in report["newly_cut_off"].as_array().unwrap() {
        assert_eq!(rule["of"], "target");
        assert_eq!(rule["mechanism"], "ews_access");
        for u in rule["users"].as_array().unwrap() {
            assert_eq!(u["clients"].as_object().unwrap().keys().collect::<Vec<_>>(), ["ews"], "{u}");
        }
    }

    // Those the IIS filter blocks today are already cut off, by the rule in force, not new.
    let already = section_users(&report, "already_cut_off");
    assert_eq!(keys(&already), iis.affected_users);
    assert_eq!(already, rule_users(&alone_baseline, "iis_filter: Block Outlook mobile UA"));
    assert_eq!(report["summary"]["already_denied_requests"], iis.denied_requests);
    let rule = &report["already_cut_off"][0];
    assert_eq!((&rule["of"], &rule["mechanism"]), (&"baseline".into(), &"iis_filter".into()));
    assert_eq!(rule["rule"], "iis_filter: Block Outlook mobile UA");
    // A user in both (blocked on ActiveSync today, on EWS after) is new only for EWS.
    for user in ews.affected_users.iter().filter(|u| iis.affected_users.contains(u)) {
        assert_eq!(already[user], rule_users(&alone_baseline, "iis_filter: Block Outlook mobile UA")[user]);
        assert_eq!(newly[user], ews_rule[user]);
    }

    // The change only narrows access.
    assert_eq!(report["summary"]["newly_allowed_requests"], 0);
    assert_eq!(report["summary"]["widens_access"], false);
    assert!(report["newly_allowed"].as_array().unwrap().is_empty());
    let s = &report["summary"];
    let sum = ["unchanged_allowed", "already_denied_requests", "newly_denied_requests", "newly_allowed_requests"]
        .iter()
        .map(|k| s[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(sum, s["requests"].as_u64().unwrap());
    assert_eq!(s["requests"], alone_target["summary"]["requests"]);

    // Backdoors: today's are those of the policy in force alone, after the change those of
    // the target alone; what closes is what was open and no longer is.
    let backdoors = |r: &Value| -> BTreeMap<String, Vec<String>> {
        r["backdoors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["user"].as_str().unwrap().to_string(), strings(&b["still_reaches"])))
            .collect()
    };
    let (today, after) = (backdoors(&alone_baseline), backdoors(&alone_target));
    let changes = report["backdoors"].as_array().unwrap();
    let users: BTreeSet<&String> = today.keys().chain(after.keys()).collect();
    assert_eq!(changes.len(), users.len());
    let mut closed_ews = 0;
    for b in changes {
        let user = b["user"].as_str().unwrap();
        let open_today = today.get(user).cloned().unwrap_or_default();
        let still_open = after.get(user).cloned().unwrap_or_default();
        assert_eq!(strings(&b["open_today"]), open_today, "{user}");
        assert_eq!(strings(&b["still_open"]), still_open, "{user}");
        let closed: Vec<String> = open_today.iter().filter(|p| !still_open.contains(p)).cloned().collect();
        assert_eq!(strings(&b["closed"]), closed, "{user}");
        let status = match (today.contains_key(user), after.contains_key(user)) {
            (true, false) => "closed",
            (true, true) => "still_open",
            _ => "new",
        };
        assert_eq!(b["status"], status, "{user}");
        if closed.contains(&"ews".to_string()) {
            closed_ews += 1;
            assert!(newly.contains_key(user), "{user}: EWS closed for a user the change does not cut off");
        }
    }
    // Closing EWS to other clients closes some user's EWS backdoor in this traffic.
    assert!(closed_ews > 0, "{changes:?}");
}

#[test]
fn the_same_policy_as_baseline_reports_no_change() {
    let (logs, truth) = generated(|o| o.seed = 42);
    let (_dir, target) = target_file("target.toml");
    let report = change(&target, &target, logs.path());
    let s = &report["summary"];
    assert_eq!((&s["newly_denied_requests"], &s["newly_allowed_requests"]), (&0.into(), &0.into()));
    assert!(report["newly_cut_off"].as_array().unwrap().is_empty());
    assert!(report["newly_allowed"].as_array().unwrap().is_empty());
    assert!(strings(&report["newly_cut_off_users"]).is_empty());
    assert_eq!((&s["backdoors_closed"], &s["backdoors_new"]), (&0.into(), &0.into()));
    for b in report["backdoors"].as_array().unwrap() {
        assert_eq!(b["status"], "still_open");
        assert!(b["closed"].as_array().unwrap().is_empty());
    }
    // Everything the policy denies is denied already.
    let mut expected: BTreeSet<String> = truth.policies.iis_block_outlook_ua.affected_users.iter().cloned().collect();
    expected.extend(truth.policies.ews_allow_outlook_only.affected_users.iter().cloned());
    assert_eq!(strings(&report["already_cut_off_users"]), expected.into_iter().collect::<Vec<_>>());
    assert_eq!(
        s["already_denied_requests"],
        truth.policies.iis_block_outlook_ua.denied_requests + truth.policies.ews_allow_outlook_only.denied_requests
    );

    let table = text(&simulate_change(&[], &target, &target, logs.path().to_str().unwrap()).stdout);
    assert!(table.contains("nobody: the change denies nothing that is allowed today"), "{table}");
    assert!(!table.contains("WIDENS"), "{table}");
}

#[test]
fn a_change_that_opens_a_door_says_so_loudly() {
    let (logs, truth) = generated(|o| o.seed = 43);
    let (_dir, in_force) = target_file("in-force.toml");
    let proposed = example(IN_FORCE);
    let report = change(&in_force, &proposed, logs.path());
    let ews = &truth.policies.ews_allow_outlook_only;
    assert_eq!(strings(&report["newly_allowed_users"]), ews.affected_users);
    assert_eq!(report["summary"]["newly_allowed_requests"], ews.denied_requests);
    assert_eq!(report["summary"]["widens_access"], true);
    assert!(strings(&report["newly_cut_off_users"]).is_empty());
    for rule in report["newly_allowed"].as_array().unwrap() {
        assert_eq!(rule["denied_today_by"], "ews_access: EnforceAllowList");
        assert_eq!((&rule["rule"], &rule["mechanism"]), (&"default".into(), &"default".into()));
    }
    assert!(report["notes"].to_string().contains("WIDENS ACCESS"));

    let out = simulate_change(&[], &in_force, &proposed, logs.path().to_str().unwrap());
    let (table, err) = (text(&out.stdout), text(&out.stderr));
    assert!(table.contains("!! THE CHANGE WIDENS ACCESS") && table.contains("NEWLY ALLOWED"), "{table}");
    assert!(err.contains("warning: the change widens access"), "{err}");
}

#[test]
fn table_fits_80_columns_and_csv_adds_up_to_the_json() {
    let (logs, _) = generated(|o| o.seed = 44);
    let (dir, target) = target_file("target.toml");
    let baseline = example(IN_FORCE);
    let logs = logs.path().to_str().unwrap();
    let table = text(&simulate_change(&[], &baseline, &target, logs).stdout);
    for heading in ["Newly cut off", "Already cut off today", "Newly allowed", "Backdoors:"] {
        assert!(table.contains(heading), "{heading} missing: {table}");
    }
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "over 80 columns: {line:?}");
    }

    let report = change(&baseline, &target, Path::new(logs));
    let out = dir.path().join("csv");
    simulate_change(&["--format", "csv", "--out", out.to_str().unwrap()], &baseline, &target, logs);
    let mut csv = csv::Reader::from_path(out.join("change.csv")).unwrap();
    let mut per_change: BTreeMap<String, u64> = BTreeMap::new();
    for row in csv.records() {
        let row = row.unwrap();
        *per_change.entry(row[0].to_string()).or_default() += row[8].parse::<u64>().unwrap();
    }
    let s = &report["summary"];
    assert_eq!(per_change.get("newly_cut_off").copied().unwrap_or(0), s["newly_denied_requests"].as_u64().unwrap());
    assert_eq!(per_change.get("already_cut_off").copied().unwrap_or(0), s["already_denied_requests"].as_u64().unwrap());
    let backdoors = std::fs::read_to_string(out.join("backdoors_change.csv")).unwrap();
    assert_eq!(backdoors.lines().count() - 1, report["backdoors"].as_array().unwrap().len());

    // HTML is not written for a change yet: refused, not silently the plain report.
    let html = casguard(&[
        "simulate",
        "--format",
        "html",
        "--out",
        "x.html",
        "--baseline",
        &baseline,
        "--policy",
        &target,
        logs,
    ]);
    let err = refused(html);
    assert!(err.contains("--baseline"), "{err}");
}

#[test]
fn an_imported_policy_in_force_is_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let in_force = dir.path().join("in-force.toml");
    let contoso = workspace().join("tests/data/import/contoso");
    ok(casguard(&["policy", "import", contoso.to_str().unwrap(), "-o", in_force.to_str().unwrap()]));
    let (logs, _) = generated(|o| o.malformed = 0);
    let in_force = in_force.to_str().unwrap();
    let (_target_dir, target) = target_file("target.toml");
    let report = change(in_force, &target, logs.path());
    let alone = plain(in_force, logs.path());
    assert!(alone["denied_requests"].as_u64().unwrap() > 0, "{alone}");
    // What the imported settings deny today is, request for request, either still denied
    // or newly allowed by a target that does not carry them.
    let s = &report["summary"];
    assert_eq!(
        s["already_denied_requests"].as_u64().unwrap() + s["newly_allowed_requests"].as_u64().unwrap(),
        alone["denied_requests"].as_u64().unwrap()
    );
    let mut today: BTreeSet<String> = strings(&report["already_cut_off_users"]).into_iter().collect();
    today.extend(strings(&report["newly_allowed_users"]));
    assert_eq!(today.into_iter().collect::<Vec<_>>(), strings(&alone["affected_users"]));
    for rule in report["already_cut_off"].as_array().unwrap() {
        assert_eq!(rule["of"], "baseline");
        assert_ne!(rule["mechanism"], "rule", "{rule}");
    }
}
