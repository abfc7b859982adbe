use super::*;

const FIXTURES: [(&str, &[u8]); 7] = [
    ("ps51-export-csv-unicode.csv", include_bytes!("../../../../tests/data/devices/ps51-export-csv-unicode.csv")),
    (
        "ps51-export-csv-notype-utf8.csv",
        include_bytes!("../../../../tests/data/devices/ps51-export-csv-notype-utf8.csv"),
    ),
    ("ps7-export-csv.csv", include_bytes!("../../../../tests/data/devices/ps7-export-csv.csv")),
    (
        "de-DE-export-csv-useculture.csv",
        include_bytes!("../../../../tests/data/devices/de-DE-export-csv-useculture.csv"),
    ),
    ("ps51-convertto-json.json", include_bytes!("../../../../tests/data/devices/ps51-convertto-json.json")),
    ("ps7-convertto-json.json", include_bytes!("../../../../tests/data/devices/ps7-convertto-json.json")),
    ("ps7-convertto-json-single.json", include_bytes!("../../../../tests/data/devices/ps7-convertto-json-single.json")),
];

fn t(text: &str) -> Option<i64> {
    Some(w3c::time::parse_rfc3339(text).unwrap())
}

/// The partnerships without the line they came from, which differs by format.
fn devices(export: &DeviceExport) -> Vec<Partnership> {
    export.partnerships.iter().map(|p| Partnership { line: 0, ..p.clone() }).collect()
}

fn read_ok(name: &str, bytes: &[u8]) -> DeviceExport {
    let export = read(bytes, name).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(export.bad_rows, 0, "{name}: {:?}", export.first_bad);
    export
}

#[test]
fn every_form_gives_the_same_partnerships() {
    let reference = read_ok(FIXTURES[0].0, FIXTURES[0].1);
    assert_eq!(reference.partnerships.len(), 6);
    assert_eq!((reference.format, reference.encoding), (Format::Csv, Encoding::Utf16Le));
    assert_eq!(reference.slash_order, Some(SlashOrder::MonthFirst));
    let want = devices(&reference);
    for (name, bytes) in &FIXTURES[1..6] {
        let export = read_ok(name, bytes);
        assert_eq!(devices(&export), want, "{name}");
    }
    let single = read_ok(FIXTURES[6].0, FIXTURES[6].1);
    assert_eq!(devices(&single), want[..1], "one object, not an array");

    // UTF-16 big-endian, and the CSV without its #TYPE line, from the UTF-8 file.
    let text = std::str::from_utf8(FIXTURES[2].1).unwrap();
    let mut be = vec![0xFE, 0xFF];
    be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    let export = read_ok("be.csv", &be);
    assert_eq!((export.encoding, devices(&export)), (Encoding::Utf16Be, want.clone()));
    let typed = format!(
        "#TYPE Selected.Microsoft.Exchange.Data.Directory.SystemConfiguration.MobileDeviceStatistics\r\n{text}"
    );
    let export = read_ok("typed.csv", typed.as_bytes());
    assert_eq!(devices(&export), want);
    // Lines count from the top of the file, #TYPE line included.
    assert_eq!(export.partnerships.iter().map(|p| p.line).collect::<Vec<_>>(), [3, 4, 5, 6, 7, 8]);
    assert_eq!(reference.partnerships[5].line, 8);
}

#[test]
fn fields_are_read_as_exchange_writes_them() {
    let export = read_ok(FIXTURES[4].0, FIXTURES[4].1);
    let jane = &export.partnerships[0];
    assert_eq!(jane.user, "jdoe");
    assert_eq!(jane.user_keys, ["jdoe", "jane.doe", "jane doe"]);
    assert_eq!(jane.owner, "Jane Doe");
    assert_eq!(jane.device_id, "4A1E5C7D9B2F40E8A6C3D1B0F9E8D7C6");
    assert_eq!((jane.device_type.as_str(), jane.device_model.as_str()), ("Outlook", "Outlook for iOS and Android"));
    assert_eq!((jane.user_agent.as_str(), jane.client_type.as_str()), ("Outlook-iOS-Android/1.0", "EAS"));
    assert_eq!(jane.device_os, "iOS 17.5.1 21F90");
    assert_eq!(jane.first_sync, t("2025-03-14T09:02:11Z"));
    assert_eq!(jane.last_success_sync, t("2026-11-02T08:15:30Z"));
    assert_eq!((jane.access_state.as_str(), jane.access_state_reason.as_str()), ("Allowed", "Global"));
    let carol = &export.partnerships[3];
    assert_eq!((carol.owner.as_str(), carol.user.as_str()), ("White, Carol", "cwhite"));
    assert_eq!((carol.access_state.as_str(), carol.access_state_reason.as_str()), ("Blocked", "DeviceRule"));
    assert_eq!(carol.last_success_sync, None);
    assert_eq!(carol.last_contact(), t("2026-10-30T18:20:41Z"));
    let dave = &export.partnerships[4];
    assert_eq!(dave.access_state, "DeviceDiscovery");
    let unal = &export.partnerships[5];
    assert_eq!((unal.user.as_str(), unal.owner.as_str()), ("uyilmaz", "Ünal Yılmaz"));
    assert_eq!((unal.access_state.as_str(), unal.access_state_reason.as_str()), ("Quarantined", "Policy"));
    assert_eq!(export.newest_time(), t("2026-11-02T08:15:30Z"));
}

/// A minimal export with `rows` under the columns casguard needs.
fn csv(rows: &[&str]) -> String {
    let mut text = String::from(
        "\"Identity\",\"DeviceId\",\"DeviceType\",\"FirstSyncTime\",\"LastSuccessSync\",\"LastSyncAttemptTime\",\"DeviceAccessState\"\r\n",
    );
    for row in rows {
        text.push_str(row);
        text.push_str("\r\n");
    }
    text
}

#[test]
fn the_user_comes_from_any_form_of_identity() {
    let cases = [
        ("contoso.com/Users/Jane Doe/ExchangeActiveSyncDevices/iPhone§Appl1", "jane doe"),
        ("contoso.com/Staff/Doe\\/Jane/ExchangeActiveSyncDevices/iPhone§Appl1", "doe/jane"),
        ("Jane Doe\\ExchangeActiveSyncDevices\\Outlook§ABC", "jane doe"),
        ("CN=iPhone§Appl1,CN=ExchangeActiveSyncDevices,CN=Doe\\, Jane,CN=Users,DC=contoso,DC=com", "doe, jane"),
        ("CONTOSO/Users/jdoe/exchangeactivesyncdevices/x", "jdoe"),
    ];
    for (identity, want) in cases {
        let text = csv(&[&format!("\"{identity}\",\"Appl1\",\"iPhone\",\"\",\"\",\"\",\"Allowed\"")]);
        let export = read_ok(identity, text.as_bytes());
        assert_eq!(export.partnerships[0].user, want, "{identity}");
    }
    // UserDisplayName when there is no Identity; a JSON Identity object by its distinguished name.
    let text =
        "DeviceId;DeviceType;FirstSyncTime;LastSuccessSync;LastSyncAttemptTime;DeviceAccessState;UserDisplayName\n\
                Appl1;iPhone;;;;Allowed;contoso.com/Users/Jane Doe\n";
    assert_eq!(read_ok("display.csv", text.as_bytes()).partnerships[0].user, "jane doe");
    let json = r#"{"Identity": {"Name": "iPhone§Appl1", "DistinguishedName": "CN=iPhone§Appl1,CN=ExchangeActiveSyncDevices,CN=jdoe,CN=Users,DC=contoso,DC=com"},
                   "DeviceId": "Appl1", "DeviceType": "iPhone", "FirstSyncTime": {"value": "\/Date(1793607330000)\/", "DisplayHint": 2, "DateTime": "Monday, November 2, 2026 8:15:30 AM"},
                   "LastSuccessSync": null, "LastSyncAttemptTime": null, "DeviceAccessState": 3}"#;
    let export = read_ok("snapin.json", json.as_bytes());
    let p = &export.partnerships[0];
    assert_eq!(
        (p.user.as_str(), p.first_sync, p.access_state.as_str()),
        ("jdoe", t("2026-11-02T08:15:30Z"), "Quarantined")
    );
}

#[test]
fn missing_columns_are_named_with_the_file() {
    let text = "\"Identity\",\"DeviceId\",\"DeviceType\",\"LastSuccessSync\",\"DeviceAccessState\"\r\n";
    let err = read(text.as_bytes(), "devices.csv").unwrap_err().to_string();
    assert!(err.starts_with("devices.csv: not the output of Get-MobileDevice | Get-MobileDeviceStatistics"), "{err}");
    assert!(err.contains("missing column(s) FirstSyncTime, LastSyncAttemptTime (found Identity"), "{err}");
    let text = "\"DeviceId\",\"DeviceType\",\"FirstSyncTime\",\"LastSuccessSync\",\"LastSyncAttemptTime\",\"DeviceAccessState\"\r\n";
    let err = read(text.as_bytes(), "d.csv").unwrap_err().to_string();
    assert!(err.contains("missing column(s) Identity (or UserDisplayName)"), "{err}");
    let err = read(br#"[{"DeviceId": "x", "Status": "DeviceOk"}]"#, "d.json").unwrap_err().to_string();
    assert!(err.contains("d.json: ") && err.contains("FirstSyncTime") && err.contains("(found DeviceId)"), "{err}");
    // Extra columns are ignored; an empty file or list holds no partnerships.
    assert_eq!(read(b"", "empty.csv").unwrap().partnerships.len(), 0);
    assert_eq!(read(b"[]", "empty.json").unwrap().partnerships.len(), 0);
}

#[test]
fn bad_rows_are_counted_and_located() {
    let text = csv(&[
        "\"contoso.com/Users/a/ExchangeActiveSyncDevices/x\",\"A1\",\"iPhone\",\"1/2/2026 1:00:00 PM\",\"\",\"\",\"Allowed\"",
        "\"contoso.com/Users/b/ExchangeActiveSyncDevices/x\",\"B1\",\"iPhone\",\"soon\",\"\",\"\",\"Allowed\"",
        "\"contoso.com/Users/c/ExchangeActiveSyncDevices/x\",\"C1\",\"iPhone\"",
        "\"contoso.com/Users/d/ExchangeActiveSyncDevices/x\",\"\",\"iPhone\",\"\",\"\",\"\",\"Allowed\"",
        "\"\",\"E1\",\"iPhone\",\"\",\"\",\"\",\"Allowed\"",
        "\"contoso.com/Users/f/ExchangeActiveSyncDevices/x\",\"F1\",\"iPhone\",\"\",\"\",\"\",\"Allowed\"",
    ]);
    let export = read(text.as_bytes(), "d.csv").unwrap();
    assert_eq!((export.rows, export.bad_rows), (6, 4));
    let users: Vec<&str> = export.partnerships.iter().map(|p| p.user.as_str()).collect();
    assert_eq!(users, ["a", "f"]);
    assert_eq!(export.partnerships[0].first_sync, t("2026-01-02T13:00:00Z"));
    let bad: Vec<(u64, &str)> = export.first_bad.iter().map(|b| (b.line, b.reason.as_str())).collect();
    assert_eq!(
        bad,
        [
            (3, "FirstSyncTime: cannot read \"soon\" as a date"),
            (4, "3 field(s) where the header has 7"),
            (5, "no DeviceId"),
            (6, "no user: Identity, UserDisplayName and the account columns are empty"),
        ]
    );

    let json = "[\n  {\"Identity\": \"contoso.com/Users/a/ExchangeActiveSyncDevices/x\", \"DeviceId\": \"A1\", \"DeviceType\": \"iPhone\",\n   \"FirstSyncTime\": null, \"LastSuccessSync\": null, \"LastSyncAttemptTime\": null, \"DeviceAccessState\": 1},\n  42,\n  {\"Identity\": \"contoso.com/Users/b/ExchangeActiveSyncDevices/x\", \"DeviceType\": \"iPhone\"}\n]";
    let export = read(json.as_bytes(), "d.json").unwrap();
    assert_eq!((export.rows, export.bad_rows, export.partnerships.len()), (3, 2, 1));
    let bad: Vec<(u64, &str)> = export.first_bad.iter().map(|b| (b.line, b.reason.as_str())).collect();
    assert_eq!(bad, [(4, "not an object"), (5, "no DeviceId")]);
    let err = read(b"[{\"DeviceId\": ", "cut.json").unwrap_err().to_string();
    assert!(err.starts_with("cut.json:1: not JSON"), "{err}");
}

#[test]
fn slash_dates_follow_the_file_and_cannot_be_mixed() {
    let row = |date: &str| {
        format!(
            "\"contoso.com/Users/a/ExchangeActiveSyncDevices/x\",\"A1\",\"iPhone\",\"{date}\",\"\",\"\",\"Allowed\""
        )
    };
    let uk = csv(&[&row("02/11/2026 08:15:30"), &row("25/12/2025 10:00:00")]);
    let export = read_ok("uk.csv", uk.as_bytes());
    assert_eq!(export.slash_order, Some(SlashOrder::DayFirst));
    assert_eq!(export.partnerships[0].first_sync, t("2026-11-02T08:15:30Z"));
    let mixed = csv(&[&row("12/25/2025 10:00:00"), &row("25/12/2025 10:00:00")]);
    let err = read(mixed.as_bytes(), "mixed.csv").unwrap_err().to_string();
    assert!(err.starts_with("mixed.csv: dates such as"), "{err}");
}

#[test]
fn windows_powershell_wraps_a_list_as_value_and_count() {
    let json = r#"{"value": [{"Identity": "contoso.com/Users/a/ExchangeActiveSyncDevices/x", "DeviceId": "A1", "DeviceType": "iPhone",
                  "FirstSyncTime": "2026-11-02T08:15:30", "LastSuccessSync": null, "LastSyncAttemptTime": null, "DeviceAccessState": "Allowed"}], "Count": 1}"#;
    let export = read_ok("wrapped.json", json.as_bytes());
    assert_eq!(export.partnerships.len(), 1);
    assert_eq!(export.partnerships[0].first_sync, t("2026-11-02T08:15:30Z"));
}

#[test]
fn exports_are_told_from_logs_and_other_files_by_content() {
    for (name, bytes) in FIXTURES {
        assert!(looks_like_export(&bytes[..bytes.len().min(SNIFF_BYTES)]), "{name}");
    }
    let others: [&[u8]; 5] = [
        b"#Software: Microsoft Internet Information Services 10.0\r\n#Fields: date time cs-uri-stem\r\n",
        b"#Software: Microsoft Exchange Server\r\n#Version: 15.01.2375.007\r\n#Log-type: HttpProxy Logs\r\n#Fields: DateTime,RequestId,DeviceId\r\n",
        br#"{"cutover": "2026-11-01T00:00:00Z", "devices": [{"user": "jdoe", "device": "A1", "first_seen": ""}]}"#,
        br#"[{"SamAccountName": "jdoe", "ActiveSyncEnabled": true, "ActiveSyncAllowedDeviceIDs": ["A1"]}]"#,
        b"\"SamAccountName\",\"DeviceId\",\"LastSuccessSync\"\r\n",
    ];
    for other in others {
        assert!(!looks_like_export(other), "{}", String::from_utf8_lossy(other));
    }
}
