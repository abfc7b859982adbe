//! `casguard emit` and `casguard policy check` as an admin runs them.

use std::path::PathBuf;

use crate::util::{casguard, example, refused, temp_file, text};

#[test]
fn policy_check_prints_numbered_rules() {
    let out = casguard(&["policy", "check", &example("block-outlook-provision.toml")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("  1. block Outlook mobile provisioning deny 403 if protocol is 'activesync'"), "{s}");
    assert!(
        s.contains("command is 'Provision'") && s.contains("client is any of ['outlook-mobile', 'outlook-mobile-hma']"),
        "{s}"
    );
    assert!(s.contains("default: allow"));
}

#[test]
fn policy_check_reports_file_and_line_and_exits_2() {
    let (_dir, f) = temp_file(
        "bad.toml",
        "default = \"allow\"\n[[rule]]\nname = \"x\"\naction = \"deny\"\nclient = \"outlook-mobiel\"\n",
    );
    let e = refused(casguard(&["policy", "check", f.to_str().unwrap()]));
    assert!(e.contains(&format!("{}:5: unknown client id 'outlook-mobiel'", f.display())), "{e}");
}

#[test]
fn emit_iis_prints_xml_and_appcmd() {
    let out = casguard(&["emit", "--policy", &example("iis-block-outlook-ua.toml"), "--target", "iis"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("<filteringRule name=\"Block Outlook mobile UA\""), "{s}");
    assert!(s.contains("<add string=\"Outlook-iOS-Android/1.0\" />"));
    assert!(s.contains("appcmd.exe set config \"Default Web Site/Microsoft-Server-ActiveSync\""));
    // Where it goes: merged into the directory's web.config, never in its place.
    assert!(s.contains("into that directory's web.config (casguard emit's merge option"), "{s}");
    assert!(s.contains("Never replace the file: it holds Exchange's own settings."), "{s}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn emit_warns_per_rule_and_strict_fails() {
    let p = example("block-new-outlook-devices.toml");
    let out = casguard(&["emit", "--policy", &p, "--target", "iis"]);
    assert!(out.status.success());
    let e = text(&out.stderr);
    assert!(e.starts_with("warning: rule 'block new Outlook mobile devices' cannot be expressed for iis: "), "{e}");
    let out = casguard(&["emit", "--policy", &p, "--target", "exchange", "--strict"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot be expressed for exchange"));
}

#[test]
fn emit_writes_files_into_out_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    for target in ["iis", "exchange", "nginx"] {
        let out =
            casguard(&["emit", "--policy", &example("outlook-mobile-lockdown.toml"), "--target", target, "--out", &d]);
        assert!(out.status.success(), "{target}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
    let names: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    for want in ["appcmd.cmd", "applicationHost.xml", "exchange.ps1", "nginx.conf"] {
        assert!(names.iter().any(|p| p.ends_with(want)), "{want} in {names:?}");
    }
    let ps = std::fs::read_to_string(dir.path().join("exchange.ps1")).unwrap();
    assert!(ps.contains("Set-OrganizationConfig -EwsEnabled $true"), "{ps}");
}

#[test]
fn emit_merges_into_a_real_web_config() {
    let sample =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/exchange-config/E19-DefaultWebSite-EAS_web.config");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = casguard(&[
        "emit",
        "--policy",
        &example("iis-block-outlook-ua.toml"),
        "--target",
        "iis",
        "--merge",
        sample,
        "--out",
        &d,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let merged = std::fs::read_to_string(dir.path().join("web.config")).unwrap();
    let original = std::fs::read_to_string(sample).unwrap();
    assert!(merged.len() > original.len());
    assert!(merged.contains("<filteringRule name=\"Block Outlook mobile UA\""));
    assert!(merged.contains("HttpRequestFilteringModule"), "original content kept");
}
