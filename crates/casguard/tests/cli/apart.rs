//! casguard checked against logs written apart from it: tests/apart/write.py,
//! a small independent model of Exchange's IIS logs built from public sources
//! only (not from loggen, exchange, audit or w3c), writes an estate and the
//! truth an audit must find; tests/apart/check.py compares `casguard audit`
//! with that truth, allowing only the casguard bugs it lists in KNOWN_BUGS.

use std::path::Path;
use std::process::Command;

use crate::util::{casguard, ok, python_with, skip, text, workspace};

/// Writes the estate of `seed` into `dir`, audits it, and runs check.py.
fn write_audit_check(python: &Path, seed: &str, dir: &Path) {
    let root = workspace();
    let write = Command::new(python)
        .arg(root.join("tests/apart/write.py"))
        .args(["--seed", seed, "--out"])
        .arg(dir)
        .output()
        .expect("run write.py");
    assert!(write.status.success(), "write.py: {}", text(&write.stderr));

    let logs = dir.join("logs");
    let audit = ok(casguard(&["audit", "--quiet", "--format", "json", logs.to_str().unwrap()]));
    let report = dir.join("audit.json");
    std::fs::write(&report, &audit.stdout).unwrap();

    let check = Command::new(python)
        .arg(root.join("tests/apart/check.py"))
        .arg(dir.join("truth.json"))
        .arg(&report)
        .output()
        .expect("run check.py");
    assert!(
        check.status.success(),
        "seed {seed}: casguard disagrees with the independent writer:\n{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
}

#[test]
fn audit_agrees_with_an_independently_written_estate() {
    let Some(python) = python_with("json, gzip, ipaddress") else {
        skip("no Python 3");
        return;
    };
    for seed in ["7", "2026"] {
        let dir = tempfile::tempdir().unwrap();
        write_audit_check(&python, seed, dir.path());
    }
}
