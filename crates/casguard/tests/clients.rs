//! Real clients through the gateway: exchangelib (EWS) and pyactivesync
//! (ActiveSync 16.1) from PyPI, each blocked or allowed exactly as the policy
//! says (tests/clients/run_clients.py). Needs the Python environment that
//! .ci/run makes; elsewhere the test is skipped unless CI=true.

use std::path::{Path, PathBuf};
use std::process::Command;

fn clients_python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut candidates: Vec<PathBuf> = std::env::var_os("CASGUARD_PYTHON").map(PathBuf::from).into_iter().collect();
    candidates.push(root.join("target/pyenv/bin/python"));
    candidates.push(root.join("target/pyenv/Scripts/python.exe"));
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import exchangelib, pyactivesync"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

#[test]
fn exchangelib_and_pyactivesync_are_blocked_or_allowed_as_the_policy_says() {
    let Some(python) = clients_python() else {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI needs target/pyenv: see .ci/run");
        eprintln!("skipped: no python with exchangelib and pyactivesync (see .ci/run)");
        return;
    };
    if Command::new("openssl").arg("version").output().is_err() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI needs openssl");
        eprintln!("skipped: openssl is needed for the test certificate");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/run_clients.py");
    let out =
        Command::new(python).arg(script).arg(env!("CARGO_BIN_EXE_casguard")).output().expect("run the client script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client checks failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The script prints one line per check; both clients must have been exercised.
    for client in ["exchangelib", "pyactivesync"] {
        assert!(stdout.contains(client), "{client} was not exercised:\n{stdout}");
    }
}
