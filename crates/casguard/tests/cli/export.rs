//! `casguard export`: Parquet read back by DuckDB (tests/duckdb/check.py) and
//! by the parquet crate, and JSON lines, each compared with `casguard audit`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use casguard_loggen::{GzipMode, Truth};
use serde_json::Value;

use crate::util::{casguard, counts, example, finding_users, json, ok, python_or_skip, refused, workspace};

/// Generated logs in `logs/` of a fresh folder, beside which the export goes.
fn generated(seed: u64) -> (tempfile::TempDir, Truth) {
    crate::util::generated(|o| {
        o.out = o.out.join("logs");
        o.seed = seed;
        o.gzip = GzipMode::Some;
    })
}

/// `casguard export --format parquet` of `logs` into `out`, `rows` rows a
/// row group, with `extra` arguments.
fn export_parquet(logs: &str, out: &Path, rows: &str, extra: &[&str]) {
    let mut args =
        vec!["-q", "export", "--format", "parquet", "--out", out.to_str().unwrap(), "--row-group-rows", rows];
    args.extend_from_slice(extra);
    args.push(logs);
    ok(casguard(&args));
}

#[test]
fn parquet_counts_in_duckdb_match_the_audit() {
    let Some(python) = python_or_skip("duckdb", "no Python with duckdb (tests/requirements.txt)") else {
        return;
    };
    let policy = example("ews-allow-outlook-only.toml");
    let policy = policy.as_str();
    let (dir, truth) = generated(7);
    let logs = dir.path().join("logs");
    let logs = logs.to_str().unwrap();
    let out = dir.path().join("export");
    // Small row groups: several per part file.
    export_parquet(logs, &out, "500", &["--policy", policy]);
    let check =
        Command::new(&python).arg(workspace().join("tests/duckdb/check.py")).arg(&out).output().expect("run check.py");
    assert!(check.status.success(), "check.py: {}", String::from_utf8_lossy(&check.stderr));
    let db: Value = serde_json::from_slice(&check.stdout).expect("check.py prints JSON");

    let report = json(&["audit", "--format", "json", logs]);
    let s = &report["summary"];
    let rows = s["lines"].as_u64().unwrap() - s["malformed"].as_u64().unwrap();
    assert_eq!(db["rows"], rows, "one row per well-formed line");
    let traffic = counts(&db["by_traffic"]);
    assert_eq!(traffic["person"], s["requests"].as_u64().unwrap(), "people");
    assert_eq!(traffic.get("probe").copied().unwrap_or(0), s["probes"].as_u64().unwrap());
    assert_eq!(traffic.get("backend").copied().unwrap_or(0), s["backend_duplicates"].as_u64().unwrap());
    assert_eq!(traffic.get("attack").copied().unwrap_or(0), s["attacks"].as_u64().unwrap());
    assert_eq!(counts(&db["attacks"]), counts(&s["attack_kinds"]), "attacks by kind");
    assert_eq!(traffic.get("machine").copied().unwrap_or(0), s["machine"].as_u64().unwrap());
    assert_eq!(db["probes"], s["probes"]);
    assert_eq!(db["backend"], s["backend_duplicates"]);
    assert_eq!(counts(&db["person_protocols"]), counts(&report["protocols"]), "people's protocols");
    assert_eq!(counts(&db["person_clients"]), counts(&report["clients"]), "people's clients");
    assert_eq!(counts(&db["person_protocols"]), truth.protocols, "and the generator's truth");
    let exploits: u64 = counts(&db["exploits"]).values().sum();
    assert_eq!(exploits, truth.summary.exploit_attempts);

    // Decisions: the same evaluate() as simulate.
    let sim = json(&["simulate", "--policy", policy, "--format", "json", logs]);
    let decisions = counts(&db["person_decisions"]);
    assert_eq!(decisions.get("deny").copied().unwrap_or(0), sim["summary"]["denied_requests"].as_u64().unwrap());
    assert_eq!(decisions.get("allow").copied().unwrap_or(0), sim["summary"]["allowed_requests"].as_u64().unwrap());

    // Partitions by day, each row in its day; and the README's two questions.
    assert_eq!(db["dates"], serde_json::json!(["2026-11-02", "2026-11-03", "2026-11-04"]));
    assert_eq!(db["misfiled"], 0);
    assert_eq!(db["outlook_mobile_users"], serde_json::json!(finding_users(&report, "cloud-credentials")));
    assert_eq!(db["ews_non_outlook_users"], serde_json::json!(finding_users(&report, "ews-non-outlook")));

    // A second export into the same folder would mix data: refused.
    refused(casguard(&["-q", "export", "--format", "parquet", "--out", out.to_str().unwrap(), logs]));
}

#[test]
fn parquet_files_read_back_with_the_parquet_crate() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let (dir, _) = generated(3);
    let logs = dir.path().join("logs");
    let out = dir.path().join("export");
    export_parquet(logs.to_str().unwrap(), &out, "100", &[]);
    let report = json(&["audit", "--format", "json", logs.to_str().unwrap()]);
    let mut rows = 0i64;
    let mut groups = 0;
    let mut days = Vec::new();
    for day in std::fs::read_dir(&out).unwrap() {
        let day = day.unwrap().path();
        let name = day.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("date=2026-11-0"), "{name}");
        days.push(name);
        for part in std::fs::read_dir(&day).unwrap() {
            let part = part.unwrap().path();
            assert!(part.file_name().unwrap().to_string_lossy().starts_with("part-"));
            let reader = SerializedFileReader::new(std::fs::File::open(&part).unwrap()).unwrap();
            let meta = reader.metadata();
            rows += meta.file_metadata().num_rows();
            groups += meta.num_row_groups();
            let names: Vec<&str> = meta.file_metadata().schema_descr().columns().iter().map(|c| c.name()).collect();
            for column in [
                "time",
                "server_ip",
                "site_port",
                "protocol",
                "user",
                "device_id",
                "device_type",
                "client",
                "user_agent",
                "command",
                "status",
                "client_ip",
                "network",
                "is_probe",
                "is_backend",
                "attack_rule",
                "attack_kind",
                "decision",
            ] {
                assert!(names.contains(&column), "column {column} in {names:?}");
            }
        }
    }
    days.sort();
    assert_eq!(days, ["date=2026-11-02", "date=2026-11-03", "date=2026-11-04"]);
    let s = &report["summary"];
    assert_eq!(rows as u64, s["lines"].as_u64().unwrap() - s["malformed"].as_u64().unwrap());
    assert!(groups as i64 > rows / 100 - 20, "rows were flushed in row groups of 100: {groups} groups, {rows} rows");
}

#[test]
fn jsonl_streams_one_ecs_event_per_request_and_no_credentials() {
    let (dir, _) = generated(5);
    let logs = dir.path().join("logs");
    // A log with an Authorization column (a misconfigured custom field).
    let custom = logs.join("CUSTOM/W3SVC1");
    std::fs::create_dir_all(&custom).unwrap();
    std::fs::write(
        custom.join("u_ex261102_auth.log"),
        "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Authorization) sc-status sc-substatus sc-win32-status time-taken\r\n\
         2026-11-02 09:00:00 10.0.1.11 POST /EWS/Exchange.asmx - 443 CONTOSO\\zed 198.51.100.7 ExchangeServicesClient/15 Basic+emVkOmh1bnRlcjI= 200 0 0 12\r\n\
         2026-11-02 09:00:01 10.0.1.11 GET /owa/auth.owa username=zed&password=hunter3 443 - 198.51.100.7 Mozilla/5.0 - 302 0 0 12\r\n",
    )
    .unwrap();
    let out = ok(casguard(&["-q", "export", "--format", "jsonl", logs.to_str().unwrap()]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("emVkOmh1bnRlcjI") && !text.to_ascii_lowercase().contains("authorization"),
        "credential leaked"
    );
    // A password a client put in the query (ASP.NET reads the sign-in's from there too).
    assert!(!text.contains("hunter3") && text.contains("username=zed&password=REDACTED"), "password leaked");
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    let report = json(&["audit", "--format", "json", logs.to_str().unwrap()]);
    let s = &report["summary"];
    assert_eq!(events.len() as u64, s["lines"].as_u64().unwrap() - s["malformed"].as_u64().unwrap());
    let mut protocols: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        assert!(e["@timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(e["url"]["path"].is_string() && e["http"]["response"]["status_code"].is_u64());
        assert!(e["casguard"]["client"].is_string() && e["casguard"]["traffic"].is_string());
        if e["casguard"]["traffic"] == "person" {
            *protocols.entry(e["casguard"]["protocol"].as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    assert_eq!(protocols, counts(&report["protocols"]));
    let zed = events.iter().find(|e| e["user"]["name"] == "zed").expect("zed's event");
    assert_eq!(zed["user_agent"]["original"], "ExchangeServicesClient/15");
    assert_eq!(zed["source"]["ip"], "198.51.100.7");
    assert_eq!(zed["casguard"]["client"], "ews-app");
    assert!(zed["casguard"].get("decision").is_none());

    // With a policy, to a file.
    let file = dir.path().join("events.jsonl");
    ok(casguard(&[
        "-q",
        "export",
        "--format",
        "jsonl",
        "--policy",
        &example("ews-allow-outlook-only.toml"),
        "--out",
        file.to_str().unwrap(),
        logs.to_str().unwrap(),
    ]));
    let with_policy = std::fs::read_to_string(&file).unwrap();
    let zed = with_policy
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["user"]["name"] == "zed")
        .unwrap();
    assert_eq!(zed["casguard"]["decision"], "deny");
    assert_eq!(zed["casguard"]["policy_status"], 403);
}

#[cfg(target_os = "linux")]
#[test]
fn a_write_error_stops_the_export_and_names_its_cause() {
    let logs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/logs");
    let stderr = refused(casguard(&["export", "--quiet", "--format", "jsonl", "--out", "/dev/full", logs]));
    assert!(stderr.contains("cannot write /dev/full: No space left on device"), "{stderr}");
}
