//! casguard checked against logs written apart from it: tests/apart/write.py,
//! a small independent model of Exchange's IIS logs built from public sources
//! only (not from loggen, exchange, audit or w3c), writes an estate and the
//! truth an audit must find; tests/apart/check.py compares `casguard audit`
//! with that truth, allowing only the casguard bugs it lists in KNOWN_BUGS.
//! `--httpproxy also` adds the front end's Exchange HttpProxy logs of the same
//! requests (each IIS line carrying its twin's `cafeReqId`), `--httpproxy
//! only` writes those logs alone. `casguard simulate` is checked too: each
//! policy of tests/apart/policies (written from the README and Microsoft's
//! documentation) over the estate, and changes from one to another
//! (`--baseline`), against what tests/apart/expect.py derives from the
//! writer's own requests, and so are `casguard posture`'s doors and Outlook
//! mobile's sign-ins per user under each policy.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{casguard, example, ok, python_or_skip, text, workspace};

/// Runs check.py on the truth and the audit report `report` (with `extra`
/// arguments) and checks that it found nothing unexplained.
fn check(python: &Path, seed: &str, dir: &Path, report: &[u8], extra: &[&str]) {
    let file = dir.join("audit.json");
    std::fs::write(&file, report).unwrap();
    let out = Command::new(python)
        .arg(workspace().join("tests/apart/check.py"))
        .arg(dir.join("truth.json"))
        .arg(&file)
        .args(extra)
        .output()
        .expect("run check.py");
    assert!(
        out.status.success(),
        "seed {seed} {extra:?}: casguard disagrees with the independent writer:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Writes the estate of `seed` (HttpProxy logs: `httpproxy`, `none`, `also`
/// or `only`) into `dir`; returns its logs folder.
pub(crate) fn write_estate(python: &Path, seed: &str, httpproxy: &str, dir: &Path) -> PathBuf {
    let write = Command::new(python)
        .arg(workspace().join("tests/apart/write.py"))
        .args(["--seed", seed, "--httpproxy", httpproxy, "--out"])
        .arg(dir)
        .output()
        .expect("run write.py");
    assert!(write.status.success(), "write.py: {}", text(&write.stderr));
    dir.join("logs")
}

/// Writes the estate of `seed` into `dir`, audits it whole and its back ends
/// alone (when it has back-end logs), and checks both reports.
fn write_audit_check(python: &Path, seed: &str, httpproxy: &str, dir: &Path) {
    let logs = write_estate(python, seed, httpproxy, dir);
    let audit = ok(casguard(&["audit", "--quiet", "--format", "json", logs.to_str().unwrap()]));
    let label = format!("{seed} --httpproxy {httpproxy}");
    check(python, &label, dir, &audit.stdout, &[]);

    // Basic authentication in use, per protocol and client, with its users
    // (known from HttpProxy lines only); any policy will do.
    let policy = example("ews-allow-outlook-only.toml");
    let posture =
        ok(casguard(&["posture", "--quiet", "--format", "json", "--policy", &policy, logs.to_str().unwrap()]));
    check(python, &label, dir, &posture.stdout, &["--posture"]);
    if httpproxy == "only" {
        // HttpProxy logs are the front end's: there are no back-end logs.
        return;
    }

    // The back ends' W3SVC2 folders alone: their hops are then the requests.
    let mut backends: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path().join("W3SVC2"))
        .filter(|p| p.is_dir())
        .map(|p| p.display().to_string())
        .collect();
    backends.sort();
    assert!(!backends.is_empty(), "the estate has back ends");
    let mut args = vec!["audit", "--quiet", "--format", "json"];
    args.extend(backends.iter().map(String::as_str));
    let audit = ok(casguard(&args));
    check(python, seed, dir, &audit.stdout, &["--backend-only"]);
}

#[test]
fn audit_agrees_with_an_independently_written_estate() {
    let Some(python) = python_or_skip("json, gzip, ipaddress", "no Python 3") else {
        return;
    };
    for seed in ["7", "2026"] {
        let dir = tempfile::tempdir().unwrap();
        write_audit_check(&python, seed, "none", dir.path());
    }
}

#[test]
fn audit_agrees_with_an_independently_written_estate_with_httpproxy_logs() {
    let Some(python) = python_or_skip("json, gzip, ipaddress", "no Python 3") else {
        return;
    };
    for (seed, httpproxy) in [("7", "also"), ("7", "only"), ("2026", "also"), ("2026", "only")] {
        let dir = tempfile::tempdir().unwrap();
        write_audit_check(&python, seed, httpproxy, dir.path());
    }
}

/// The independent writer's policies whose file names `keep` keeps, sorted.
fn apart_policies(keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let policies = workspace().join("tests/apart/policies");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&policies)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && keep(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "tests/apart/policies holds the policies: {files:?}");
    files
}

/// The cut-over for `device = "new"` rules: after some of the estate's
/// ActiveSync devices first synced, before the others.
pub(crate) const CUTOVER: &str = "2026-11-09T06:30:00Z";

/// Changes simulated with `--baseline`: (policy in force, target).
const CHANGES: [(&str, &str); 2] = [("mailbox-protocols", "device-access"), ("network", "iis-deny")];

#[test]
fn simulate_agrees_with_an_independently_written_estate() {
    let Some(python) = python_or_skip("json, gzip, ipaddress, tomllib", "no Python 3.11 or later") else {
        return;
    };
    let policies = workspace().join("tests/apart/policies");
    let files = apart_policies(|_| true);
    // IIS logs for two seeds; with HttpProxy logs beside them or alone, where
    // requests carry their authentication type. The device export and the
    // changes on the first only.
    for (seed, httpproxy) in [("7", "none"), ("2026", "none"), ("7", "also"), ("7", "only")] {
        let dir = tempfile::tempdir().unwrap();
        let logs = write_estate(&python, seed, httpproxy, dir.path());
        let logs = logs.to_str().unwrap();
        let devices = dir.path().join("devices.json");
        let devices = devices.to_str().unwrap();
        for policy in &files {
            let p = policy.to_str().unwrap();
            let name = policy.file_name().unwrap().to_string_lossy();
            // `device = "new"` rules need a cut-over.
            let cutover: &[&str] = if name.starts_with("new-") { &["--known-before", CUTOVER] } else { &[] };
            let mut args = vec!["simulate", "--quiet", "--format", "json", "--policy", p];
            args.extend(cutover);
            args.push(logs);
            let sim = ok(casguard(&args));
            let label = format!("{seed} --httpproxy {httpproxy} {p}");
            let mut extra = vec!["--simulate", p];
            extra.extend(cutover);
            check(&python, &label, dir.path(), &sim.stdout, &extra);
            // Device rules again with the estate's device export, which gives
            // every partnership's model, OS and first sync.
            if (name.starts_with("device-") || name.starts_with("new-")) && (seed, httpproxy) == ("7", "none") {
                args.splice(4..4, ["--devices", devices]);
                let sim = ok(casguard(&args));
                extra.push("--devices");
                check(&python, &format!("{label} --devices"), dir.path(), &sim.stdout, &extra);
            }
        }
        if (seed, httpproxy) != ("7", "none") {
            continue;
        }
        for (baseline, target) in CHANGES {
            let b = policies.join(format!("{baseline}.toml"));
            let t = policies.join(format!("{target}.toml"));
            let (b, t) = (b.to_str().unwrap(), t.to_str().unwrap());
            let sim = ok(casguard(&["simulate", "--quiet", "--format", "json", "--baseline", b, "--policy", t, logs]));
            let label = format!("{seed} --httpproxy {httpproxy} {baseline} -> {target}");
            check(&python, &label, dir.path(), &sim.stdout, &["--simulate", t, "--baseline", b]);
        }
    }
}

#[test]
fn posture_doors_agree_with_an_independently_written_estate() {
    let Some(python) = python_or_skip("json, gzip, ipaddress, tomllib", "no Python 3.11 or later") else {
        return;
    };
    // `device = "new"` rules need a cut-over, which posture does not take.
    let files = apart_policies(|name| !name.starts_with("new-"));
    // Each user's doors and Outlook mobile's sign-ins, per policy, against
    // expect.py's standard clients and the writer's own requests; IIS logs,
    // and HttpProxy logs beside them or alone (authentication types known).
    for httpproxy in ["none", "also", "only"] {
        let dir = tempfile::tempdir().unwrap();
        let logs = write_estate(&python, "7", httpproxy, dir.path());
        let logs = logs.to_str().unwrap();
        for policy in &files {
            let p = policy.to_str().unwrap();
            let posture = ok(casguard(&["posture", "--quiet", "--format", "json", "--policy", p, logs]));
            let label = format!("7 --httpproxy {httpproxy} {p}");
            check(&python, &label, dir.path(), &posture.stdout, &["--posture-doors", p]);
        }
    }
}
