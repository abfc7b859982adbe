//! `casguard policy import`: exports and IIS configuration in, the policy in
//! force out, usable by every other command.

use crate::util::*;

fn contoso() -> String {
    workspace().join("tests/data/import/contoso").display().to_string()
}

#[test]
fn import_writes_a_policy_that_check_and_simulate_take() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("in-force.toml");
    let out = ok(casguard(&["policy", "import", &contoso(), "-o", out_file.to_str().unwrap()]));
    let err = text(&out.stderr);
    assert!(err.contains("read Get-CASMailbox.csv: Get-CASMailbox (CSV, 8 records)"), "{err}");
    assert!(err.contains("read applicationHost.config: applicationHost.config"), "{err}");
    assert!(
        err.contains(
            "warning: applicationHost.config:76: IP restriction for the domain 'scanner.example' cannot be imported exactly"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let check = text(&ok(casguard(&["policy", "check", out_file.to_str().unwrap()])).stdout);
    assert!(check.contains("mailbox_protocols: ActiveSyncEnabled=false deny 403"), "{check}");
    assert!(
        check.contains("note: rules on the authentication type decide only requests whose type is known"),
        "{check}"
    );
    // --strict: a setting not imported exactly is an exit 1; stdout gets the policy.
    let strict = casguard(&["policy", "import", &contoso(), "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(text(&strict.stdout).contains("[mailbox_protocols]"));
    // simulate takes it.
    let (logs, _) = generated(|o| o.malformed = 0);
    let sim =
        json(&["simulate", "--policy", out_file.to_str().unwrap(), "--format", "json", logs.path().to_str().unwrap()]);
    assert!(sim["denied_requests"].as_u64().unwrap() > 0);
}

#[test]
fn emit_then_import_simulates_the_same() {
    let (logs, truth) = generated(|o| o.malformed = 0);
    for name in ["iis-block-outlook-ua.toml", "outlook-mobile-lockdown.toml"] {
        let source = example(name);
        let dir = tempfile::tempdir().unwrap();
        let emitted = dir.path().join("emitted");
        ok(casguard(&["emit", "--policy", &source, "--target", "iis", "--out", emitted.to_str().unwrap()]));
        let imported = dir.path().join("in-force.toml");
        ok(casguard(&["policy", "import", emitted.to_str().unwrap(), "-o", imported.to_str().unwrap()]));
        let denied = |policy: &str| {
            let v = json(&["simulate", "--policy", policy, "--format", "json", logs.path().to_str().unwrap()]);
            v["denied_requests"].as_u64().unwrap()
        };
        let imported_denies = denied(imported.to_str().unwrap());
        if name == "iis-block-outlook-ua.toml" {
            assert_eq!(imported_denies, denied(&source));
            assert_eq!(imported_denies, truth.policies.iis_block_outlook_ua.denied_requests);
        } else {
            // IIS holds the IP restrictions of the lockdown, not its Exchange settings.
            assert!(imported_denies < denied(&source), "{name}");
        }
    }
}

#[test]
fn import_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Get-CASMailbox.json"), "[{\"SamAccountName\": \"a\",\n \"OWAEnabled\": tru}]")
        .unwrap();
    let err = refused(casguard(&["policy", "import", dir.path().to_str().unwrap()]));
    assert!(err.contains("Get-CASMailbox.json:2:"), "{err}");
}
