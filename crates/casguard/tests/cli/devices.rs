//! Mobile-device exports (`--devices`, or found in the input folders):
//! partnerships reported beside the traffic, and FirstSyncTime deciding
//! which devices are known at a cut-over.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::util::{browser_check, casguard, generated, inventory_build, json, ok, refused, simulate, text, workspace};

const FORMS: [&str; 7] = [
    "ps51-export-csv-unicode.csv",
    "ps51-export-csv-notype-utf8.csv",
    "ps7-export-csv.csv",
    "de-DE-export-csv-useculture.csv",
    "ps51-convertto-json.json",
    "ps7-convertto-json.json",
    "ps7-convertto-json-single.json",
];

fn fixture(name: &str) -> PathBuf {
    workspace().join("tests/data/devices").join(name)
}

/// IIS lines for four ActiveSync devices: two with a partnership in the
/// fixtures (Jane's Outlook and Ünal's, the latter under his UPN), Jane's
/// iPhone, and one nobody paired.
const LOG: &str = "#Software: Microsoft Internet Information Services 10.0\r\n\
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\r\n\
2026-11-03 09:00:00 10.0.1.11 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync&User=jdoe&DeviceId=4A1E5C7D9B2F40E8A6C3D1B0F9E8D7C6&DeviceType=Outlook 443 CONTOSO\\jdoe 52.96.1.10 Outlook-iOS-Android/1.0 - 200 0 0 15\r\n\
2026-11-03 09:01:00 10.0.1.11 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Ping&User=jdoe&DeviceId=4a1e5c7d9b2f40e8a6c3d1b0f9e8d7c6&DeviceType=Outlook 443 CONTOSO\\jdoe 52.96.1.10 Outlook-iOS-Android/1.0 - 200 0 0 15\r\n\
2026-11-03 09:05:00 10.0.1.11 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Ping&User=jdoe&DeviceId=ApplF17LTTCGFFG8&DeviceType=iPhone 443 CONTOSO\\jdoe 198.51.100.7 Apple-iPhone15C2/2106.90 - 200 0 0 15\r\n\
2026-11-03 09:06:00 10.0.1.11 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync&User=mallory&DeviceId=androidc99887766&DeviceType=Android 443 CONTOSO\\mallory 203.0.113.9 Android/14-EAS-2.0 - 200 0 0 15\r\n\
2026-11-03 10:00:00 10.0.1.11 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync&User=unal.yilmaz%40contoso.com&DeviceId=0A1B2C3D4E5F60718293A4B5C6D7E8F9&DeviceType=Outlook 443 unal.yilmaz@contoso.com 52.96.1.11 Outlook-iOS-Android/1.0 - 200 0 0 15\r\n";

/// A folder laid out as scripts/Export-CasguardInputs.ps1 writes it: the
/// device statistics, IIS logs per server, and configuration exports that
/// are neither logs nor device exports.
fn collected(export: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let iis = dir.path().join("IIS/EX01/W3SVC1");
    std::fs::create_dir_all(&iis).unwrap();
    std::fs::write(iis.join("u_ex261103.log"), LOG).unwrap();
    std::fs::copy(fixture(export), dir.path().join("MobileDeviceStatistics.json")).unwrap();
    let config = dir.path().join("Config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("CASMailbox.json"), r#"[{"SamAccountName": "jdoe", "ActiveSyncEnabled": true}]"#)
        .unwrap();
    std::fs::write(config.join("ActiveSyncDeviceAccessRule.csv"), "\"Name\",\"Characteristic\",\"QueryString\"\r\n")
        .unwrap();
    dir
}

fn audit(args: &[&str]) -> Value {
    let mut all = vec!["audit", "--quiet", "--format", "json"];
    all.extend_from_slice(args);
    json(&all)
}

/// A partnership of a report by device id.
fn entry<'a>(report: &'a Value, id: &str) -> &'a Value {
    let list = report["partnerships"]["partnerships"].as_array().unwrap();
    list.iter().find(|e| e["device_id"] == id).unwrap_or_else(|| panic!("no partnership {id}"))
}

#[test]
fn audit_reports_outlook_partnerships_without_traffic_and_devices_without_partnership() {
    let dir = collected("ps51-convertto-json.json");
    let folder = dir.path().to_str().unwrap();
    let report = audit(&[folder]);
    assert_eq!(report["summary"]["lines"], 5, "the logs are read as before");
    assert_eq!(report["summary"]["malformed"], 0);
    let p = &report["partnerships"];
    assert_eq!(
        p["summary"],
        json!({"partnerships": 6, "outlook_mobile": 4, "outlook_mobile_without_traffic": 2, "without_traffic": 3,
               "stale": 2, "without_partnership": 1})
    );
    assert_eq!(p["measured_at"], "2026-11-03T10:00:00Z", "the logs end after the export's newest sync");
    assert_eq!(p["files"][0]["file"], dir.path().join("MobileDeviceStatistics.json").display().to_string());

    // Bob's Outlook is older than the logs and idle: reported, with its last sync and state, and stale.
    let bob = entry(&report, "9C0FFEE12B3D4E5F60718293A4B5C6D7");
    assert_eq!((bob["user"].as_str(), bob["outlook_mobile"].as_bool()), (Some("bsmith"), Some(true)));
    assert_eq!(bob["requests"], 0);
    assert_eq!(bob["last_success_sync"], "2026-08-01T06:59:59Z");
    assert_eq!(
        (bob["access_state"].as_str(), bob["access_state_reason"].as_str()),
        (Some("Allowed"), Some("Individual"))
    );
    assert_eq!((bob["idle_days"].as_u64(), bob["stale"].as_bool()), (Some(94), Some(true)));
    // Dave's never synced after discovery a month ago: stale too.
    let dave = entry(&report, "D4E5F60718293A4B5C6D7E8F90A1B2C3");
    assert_eq!((dave["access_state"].as_str(), dave["stale"].as_bool()), (Some("DeviceDiscovery"), Some(true)));
    // Jane's Outlook met its traffic, whatever the case of the device id in the query.
    let jane = entry(&report, "4A1E5C7D9B2F40E8A6C3D1B0F9E8D7C6");
    assert_eq!((jane["requests"].as_u64(), jane["stale"].as_bool()), (Some(2), Some(false)));
    assert_eq!(jane["log_last_seen"], "2026-11-03T09:01:00Z");
    // Ünal signs in with his UPN: his partnership answers to it.
    let unal = entry(&report, "0A1B2C3D4E5F60718293A4B5C6D7E8F9");
    assert_eq!((unal["user"].as_str(), unal["requests"].as_u64()), (Some("uyilmaz"), Some(1)));
    assert!(unal.get("log_user").is_none());
    // Carol's Samsung is not Outlook: listed, not counted among Outlook's.
    assert_eq!(entry(&report, "SEC1A2B3C4D5E6F7")["outlook_mobile"], false);
    assert_eq!(
        p["without_partnership"],
        json!([{"user": "mallory", "device_id": "androidc99887766", "device_type": "Android", "client": "android-mail",
                "client_name": "Gmail and Android mail apps", "requests": 1, "first_seen": "2026-11-03T09:06:00Z",
                "last_seen": "2026-11-03T09:06:00Z"}])
    );

    // --devices names the same file: the same report; --stale-days moves the line.
    let file = dir.path().join("MobileDeviceStatistics.json");
    let named = audit(&["--devices", file.to_str().unwrap(), folder]);
    assert_eq!(named["partnerships"], report["partnerships"]);
    let lenient = audit(&["--stale-days", "60", folder]);
    assert_eq!(lenient["partnerships"]["summary"]["stale"], 1, "only Bob's, idle 94 days");
    assert_eq!(lenient["partnerships"]["stale_days"], 60);
}

#[test]
fn the_partnerships_are_in_every_output_format() {
    let dir = collected("ps7-convertto-json.json");
    let folder = dir.path().to_str().unwrap();
    let table = text(&ok(casguard(&["audit", "--quiet", folder])).stdout);
    assert!(table.contains("Mobile-device partnerships (6 in 1 export(s))"), "{table}");
    assert!(table.contains("Stale: idle more than 30 days") && table.contains("androidc99887766"), "{table}");
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "over 80 columns: {line:?}");
    }
    let bob = table.lines().find(|l| l.contains("9C0FFEE12B3D4E5F60718293A4B5C6D7")).unwrap();
    assert!(bob.contains("bsmith") && bob.contains("2026-08-01") && bob.contains("Allowed"), "{bob}");

    let out = dir.path().join("csv");
    ok(casguard(&["audit", "--quiet", "--format", "csv", "--out", out.to_str().unwrap(), folder]));
    let mut rows = csv::Reader::from_path(out.join("partnerships.csv")).unwrap();
    let headers = rows.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 6);
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let bob = records.iter().find(|r| &r[at("device")] == "9C0FFEE12B3D4E5F60718293A4B5C6D7").unwrap();
    assert_eq!((&bob[at("stale")], &bob[at("requests")], &bob[at("idle_days")]), ("true", "0", "94"));
    let lone = std::fs::read_to_string(out.join("devices-without-partnership.csv")).unwrap();
    assert_eq!(lone.lines().count(), 2, "{lone}");
    assert!(lone.contains("mallory,androidc99887766,Android,android-mail,1,"));

    let page = dir.path().join("report.html");
    ok(casguard(&["audit", "--quiet", "--format", "html", "--out", page.to_str().unwrap(), folder]));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<section id=\"partnerships\">") && html.contains("href=\"#partnerships\""));
    assert!(html.contains("id=\"partnerships-table\"") && html.contains("id=\"unpartnered-table\""));
    let json_report = audit(&[folder]);
    let open = "<script type=\"application/json\" id=\"casguard-data\">";
    let start = html.find(open).unwrap() + open.len();
    let data: Value = serde_json::from_str(&html[start..start + html[start..].find("</script>").unwrap()]).unwrap();
    assert_eq!(data["partnerships"], json_report["partnerships"]);

    // Without an export, no section and no key.
    std::fs::remove_file(dir.path().join("MobileDeviceStatistics.json")).unwrap();
    assert!(audit(&[folder]).get("partnerships").is_none());
}

/// The partnerships of a report, without where each came from.
fn devices_of(report: &Value) -> Vec<Value> {
    let mut list = report["partnerships"]["partnerships"].as_array().unwrap().clone();
    for e in &mut list {
        let e = e.as_object_mut().unwrap();
        e.remove("file");
        e.remove("line");
    }
    list
}

#[test]
fn csv_and_json_exports_in_every_encoding_give_the_same_devices() {
    let dir = collected("ps51-convertto-json.json");
    let folder = dir.path().to_str().unwrap();
    let want = devices_of(&audit(&[folder]));
    let logs = dir.path().join("IIS");
    let logs = logs.to_str().unwrap();
    for form in &FORMS[..6] {
        let report = audit(&["--devices", fixture(form).to_str().unwrap(), logs]);
        assert_eq!(devices_of(&report), want, "{form}");
    }
    // UTF-16 big-endian with its mark, written here from the UTF-8 CSV.
    let text = std::fs::read_to_string(fixture("ps7-export-csv.csv")).unwrap();
    let be = dir.path().join("be.txt");
    let mut bytes = vec![0xFE, 0xFF];
    bytes.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    std::fs::write(&be, bytes).unwrap();
    assert_eq!(devices_of(&audit(&["--devices", be.to_str().unwrap(), logs])), want);
    // A file named among the inputs is told from a log by its content.
    let report = audit(&[fixture(FORMS[0]).to_str().unwrap(), logs]);
    assert_eq!((devices_of(&report), report["summary"]["lines"].as_u64()), (want.clone(), Some(5)));
    // --devices names a file; a folder is said to be one, not "Is a directory (os error 21)".
    let folder = fixture("").display().to_string();
    let e = refused(casguard(&["audit", "-q", "--devices", &folder, logs]));
    assert!(e.contains(&format!("--devices {folder} is a folder: give the export file")), "{e}");
    // ... and, named alone, is not said to hold no log files: it is what it is.
    let alone = fixture(FORMS[0]);
    let e = refused(casguard(&["audit", "-q", alone.to_str().unwrap()]));
    assert!(e.contains(&format!("{} is a device export, and no logs were given", alone.display())), "{e}");
}

#[cfg(unix)]
#[test]
fn an_export_behind_a_link_to_a_folder_is_found_as_logs_there_are() {
    // Logs in a linked folder are read (input.rs), so an export there is found too, and once.
    let dir = collected("ps51-convertto-json.json");
    let want = devices_of(&audit(&[dir.path().to_str().unwrap()]));
    let elsewhere = tempfile::tempdir().unwrap();
    let exports = elsewhere.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    std::fs::rename(dir.path().join("MobileDeviceStatistics.json"), exports.join("devices.json")).unwrap();
    std::os::unix::fs::symlink(&exports, dir.path().join("exports")).unwrap();
    std::os::unix::fs::symlink(&exports, dir.path().join("again")).unwrap();
    let report = audit(&[dir.path().to_str().unwrap()]);
    assert_eq!(devices_of(&report), want);
    assert_eq!(report["partnerships"]["files"].as_array().unwrap().len(), 1, "read once");
}

#[test]
fn bad_rows_are_warned_with_file_and_line_and_fail_strict() {
    let dir = collected("ps51-convertto-json.json");
    let bad = dir.path().join("devices-bad.csv");
    let mut export = std::fs::read_to_string(fixture("ps7-export-csv.csv")).unwrap();
    export.push_str("\"x\",\"x@contoso.com\",\"r\",\"yesterday\"\r\n");
    std::fs::write(&bad, export).unwrap();
    let logs = dir.path().join("IIS");
    let out = ok(casguard(&["audit", "--format", "json", "--devices", bad.to_str().unwrap(), logs.to_str().unwrap()]));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("warning: {}:8: 4 field(s) where the header has 41", bad.display())), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["partnerships"]["files"][0]["bad_rows"], 1);
    assert_eq!(report["partnerships"]["summary"]["partnerships"], 6);
    let stderr = refused(casguard(&["audit", "--strict", "--devices", bad.to_str().unwrap(), logs.to_str().unwrap()]));
    assert!(stderr.contains("error: 1 bad device export row(s) (--strict)"), "no count of 0 lines before it: {stderr}");

    // An export without the columns casguard needs is an error naming the file.
    let thin = dir.path().join("thin.csv");
    std::fs::write(&thin, "\"DeviceId\",\"FirstSyncTime\"\r\n\"A1\",\"\"\r\n").unwrap();
    let stderr = refused(casguard(&["audit", "--devices", thin.to_str().unwrap(), logs.to_str().unwrap()]));
    assert!(stderr.contains("thin.csv: not the output of Get-MobileDevice | Get-MobileDeviceStatistics"), "{stderr}");
    assert!(stderr.contains("DeviceType, LastSuccessSync, LastSyncAttemptTime, DeviceAccessState"), "{stderr}");
}

/// `Get-MobileDeviceStatistics | ConvertTo-Json` in PowerShell 7 for these
/// partnerships: (sam account name or none, owner name, device id, FirstSyncTime).
fn export(partnerships: &[(Option<&str>, &str, &str, &str)]) -> String {
    let objects: Vec<Value> = partnerships
        .iter()
        .map(|(sam, owner, id, first)| {
            json!({"SamAccountName": sam, "FirstSyncTime": first, "LastSyncAttemptTime": first, "LastSuccessSync": first,
                   "DeviceType": "Outlook", "DeviceID": id, "DeviceUserAgent": "Outlook-iOS-Android/1.0",
                   "DeviceModel": "Outlook for iOS and Android", "DeviceOS": "iOS 18.1",
                   "Identity": format!("contoso.com/Users/{owner}/ExchangeActiveSyncDevices/Outlook§{id}"),
                   "DeviceAccessState": "Allowed", "DeviceAccessStateReason": "Global", "ClientType": "EAS"})
        })
        .collect();
    serde_json::to_string_pretty(&objects).unwrap()
}

/// Denied requests per (user, device) of a simulation's first rule.
fn denied(report: &Value) -> BTreeMap<(String, String), u64> {
    report["rules"][0]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            ((d["user"].as_str().unwrap().into(), d["id"].as_str().unwrap().into()), d["requests"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn first_sync_time_decides_which_devices_are_grandfathered() {
    let (dir, truth) = generated(|o| o.seed = 31);
    let cutover = truth.cutover.as_str();
    let before = simulate("block-new-outlook-devices.toml", dir.path(), &["--known-before", cutover]);
    let denied_before = denied(&before);
    assert!(denied_before.len() >= 2, "the generator adds Outlook devices after the cut-over: {denied_before:?}");
    let mut new_devices = denied_before.iter();
    let ((user_a, id_a), n_a) = new_devices.next().unwrap();
    let ((user_b, id_b), _) = new_devices.next().unwrap();

    // The logs first see A after the cut-over, but its partnership synced long before (the
    // logs do not go back that far): A is known. B's partnership is as new as the logs say.
    // A is found by its SamAccountName, B by the owner name in Identity.
    let devices = dir.path().join("devices.json");
    std::fs::write(
        &devices,
        export(&[
            (Some(user_a), "Someone Else", id_a, "2024-05-01T10:00:00Z"),
            (None, user_b, id_b, "2099-01-01T00:00:00Z"),
        ]),
    )
    .unwrap();
    let with = ["--known-before", cutover, "--devices", devices.to_str().unwrap()];
    let after = simulate("block-new-outlook-devices.toml", dir.path(), &with);
    let mut expected = denied_before.clone();
    expected.remove(&(user_a.clone(), id_a.clone()));
    assert_eq!(denied(&after), expected);
    assert_eq!(after["denied_requests"], before["denied_requests"].as_u64().unwrap() - n_a);

    // The same through `inventory build --devices`.
    let inventory = dir.path().join("inventory.json");
    inventory_build(cutover, &["--devices", devices.to_str().unwrap()], &inventory, dir.path());
    let via_file =
        simulate("block-new-outlook-devices.toml", dir.path(), &["--inventory", inventory.to_str().unwrap()]);
    assert_eq!(denied(&via_file), expected);

    // An export alone, with no cut-over: every partnership is known, and only those.
    let every = simulate("block-outlook-provision.toml", dir.path(), &[]);
    let mut expected = denied(&every);
    let alone = simulate("block-new-outlook-devices.toml", dir.path(), &["--devices", devices.to_str().unwrap()]);
    expected.remove(&(user_a.clone(), id_a.clone()));
    expected.remove(&(user_b.clone(), id_b.clone()));
    assert_eq!(denied(&alone), expected);
    assert_eq!(alone["grandfathering"]["cutover"], "2099-01-01T00:00:00Z", "the export's newest time");
}

/// tests/browser/check.sh needs bash.
#[cfg(unix)]
#[test]
fn the_partnership_tables_render_in_headless_chromium() {
    let dir = collected("ps51-convertto-json.json");
    let page = dir.path().join("report.html");
    ok(casguard(&[
        "audit",
        "--quiet",
        "--format",
        "html",
        "--out",
        page.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]));
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser/partnerships.png");
    let Some(result) = browser_check(&page, &shot) else { return };
    assert_eq!(result["tables"]["partnership-list"], 6, "{result}");
    assert_eq!(result["tables"]["unpartnered-list"], 1, "{result}");
}
