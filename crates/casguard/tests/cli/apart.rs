//! casguard checked against logs written apart from it: tests/apart/write.py,
//! a small independent model of Exchange's IIS logs built from public sources
//! only (not from loggen, exchange, audit or w3c), writes an estate and the
//! truth an audit must find; tests/apart/check.py compares `casguard audit`
//! with that truth, allowing only the casguard bugs it lists in KNOWN_BUGS.
//! `--httpproxy also` adds the front end's Exchange HttpProxy logs of the same
//! requests (each IIS line carrying its twin's `cafeReqId`), `--httpproxy
//! only` writes those logs alone.

use std::path::Path;
use std::process::Command;

use crate::util::{casguard, ok, python_with, skip, text, workspace};

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
/// or `only`) into `dir`, audits it whole and its back ends alone (when it has
/// back-end logs), and checks both reports.
fn write_audit_check(python: &Path, seed: &str, httpproxy: &str, dir: &Path) {
    let write = Command::new(python)
        .arg(workspace().join("tests/apart/write.py"))
        .args(["--seed", seed, "--httpproxy", httpproxy, "--out"])
        .arg(dir)
        .output()
        .expect("run write.py");
    assert!(write.status.success(), "write.py: {}", text(&write.stderr));

    let logs = dir.join("logs");
    let audit = ok(casguard(&["audit", "--quiet", "--format", "json", logs.to_str().unwrap()]));
    let label = format!("{seed} --httpproxy {httpproxy}");
    check(python, &label, dir, &audit.stdout, &[]);

    // Basic authentication in use, per protocol and client, with its users
    // (known from HttpProxy lines only); any policy will do.
    let policy = workspace().join("examples/policies/ews-allow-outlook-only.toml");
    let posture = ok(casguard(&[
        "posture",
        "--quiet",
        "--format",
        "json",
        "--policy",
        policy.to_str().unwrap(),
        logs.to_str().unwrap(),
    ]));
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
    let Some(python) = python_with("json, gzip, ipaddress") else {
        skip("no Python 3");
        return;
    };
    for seed in ["7", "2026"] {
        let dir = tempfile::tempdir().unwrap();
        write_audit_check(&python, seed, "none", dir.path());
    }
}

#[test]
fn audit_agrees_with_an_independently_written_estate_with_httpproxy_logs() {
    let Some(python) = python_with("json, gzip, ipaddress") else {
        skip("no Python 3");
        return;
    };
    for (seed, httpproxy) in [("7", "also"), ("7", "only"), ("2026", "also"), ("2026", "only")] {
        let dir = tempfile::tempdir().unwrap();
        write_audit_check(&python, seed, httpproxy, dir.path());
    }
}
