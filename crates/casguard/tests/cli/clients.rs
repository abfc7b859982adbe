//! Real clients through the gateway: exchangelib (EWS) and pyactivesync
//! (ActiveSync 16.1) from PyPI, each blocked or allowed exactly as the policy
//! says (tests/clients/run_clients.py). Needs the Python environment that
//! scripts/test makes; elsewhere the test is skipped unless CI=true.

use std::process::Command;

use crate::util::{python_with, skip, workspace};

#[test]
fn exchangelib_and_pyactivesync_are_blocked_or_allowed_as_the_policy_says() {
    let Some(python) = python_with("exchangelib, pyactivesync") else {
        skip("no Python with exchangelib and pyactivesync (tests/requirements.txt)");
        return;
    };
    if Command::new("openssl").arg("version").output().is_err() {
        skip("openssl is needed for the test certificate");
        return;
    }
    let script = workspace().join("tests/clients/run_clients.py");
    let out =
        Command::new(python).arg(script).arg(env!("CARGO_BIN_EXE_casguard")).output().expect("run the client script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client checks failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The script prints one line per check; both clients must have been exercised.
    for client in ["exchangelib", "pyactivesync"] {
        assert!(stdout.contains(client), "{client} was not exercised:\n{stdout}");
    }
}
