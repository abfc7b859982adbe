//! Input that is not what it claims (issue 21, item 9), as an admin meets
//! it: each test is named after what it stops.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{casguard, example, json, ok, refused, text};

const FIELDS: &str = "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip \
                      cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\r\n";

fn line(date: &str, time: &str, user: &str) -> String {
    format!("{date} {time} 10.0.0.2 GET /owa/ - 443 CONTOSO\\{user} 10.1.1.1 Mozilla/5.0 - 200 0 0 15\r\n")
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_line_that_is_not_a_date_is_malformed_and_never_nulls_first_seen() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("u_ex261102.log");
    let body = FIELDS.to_owned()
        + &line("2026-11-02", "10:00:00", "alice")
        + &line("2026-11-02x", "10:00:01", "bob")
        + &line("2026-02-30", "10:00:02", "carol")
        + &line("2026-11-02", "25:61:61", "dave");
    write(&log, body.as_bytes());
    let report = json(&["audit", "-q", "--format", "json", log.to_str().unwrap()]);
    let s = &report["summary"];
    assert_eq!((s["lines"].as_u64(), s["malformed"].as_u64(), s["requests"].as_u64()), (Some(4), Some(3), Some(1)));
    assert_eq!(s["first_seen"], "2026-11-02T10:00:00Z");
    assert_eq!(report["malformed"][0]["counts"]["bad-value"], 3);

    let err = refused(casguard(&["audit", "-q", "--strict", log.to_str().unwrap()]));
    assert!(err.contains("u_ex261102.log:3: bad-value: date \"2026-11-02x\" is not a date"), "{err}");
    assert!(err.contains("u_ex261102.log:5: bad-value: time \"25:61:61\" is not a time of day"), "{err}");
}

#[test]
fn a_gzip_crc_mismatch_fails_strict_naming_the_file_and_is_counted_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let body = FIELDS.to_owned() + &line("2026-11-02", "10:00:00", "alice") + &line("2026-11-02", "10:00:01", "bob");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(body.as_bytes()).unwrap();
    let mut gz = e.finish().unwrap();
    let crc = gz.len() - 8;
    gz[crc] ^= 0x55;
    let log = dir.path().join("u_ex261102.log.gz");
    write(&log, &gz);

    let err = refused(casguard(&["audit", "-q", "--strict", log.to_str().unwrap()]));
    assert!(err.contains("u_ex261102.log.gz:4: truncated-gzip: gzip data is damaged"), "{err}");
    assert!(err.contains("checksum"), "{err}");

    let report = json(&["audit", "-q", "--format", "json", log.to_str().unwrap()]);
    assert_eq!(report["summary"]["requests"], 2, "what was read is kept");
    assert_eq!(report["summary"]["malformed"], 1);
}

#[cfg(unix)]
#[test]
fn a_symlinked_w3svc_folder_is_read_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let body = FIELDS.to_owned() + &line("2026-11-02", "10:00:00", "alice");
    write(&d.join("elsewhere/W3SVC1/u_ex261102.log"), body.as_bytes());
    write(&d.join("logs/EX01/W3SVC2/u_ex261102.log"), body.replace("alice", "bob").as_bytes());
    std::os::unix::fs::symlink(d.join("elsewhere/W3SVC1"), d.join("logs/EX01/W3SVC1")).unwrap();
    std::os::unix::fs::symlink(d.join("logs"), d.join("logs/EX01/loop")).unwrap();
    let report = json(&["audit", "-q", "--format", "json", d.join("logs").to_str().unwrap()]);
    assert_eq!(report["summary"]["files"], 2);
    assert_eq!(report["summary"]["users"], 2);
}

#[cfg(unix)]
#[test]
fn a_broken_link_among_the_logs_is_refused_as_a_link_naming_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("logs/W3SVC1/u_ex261102.log"),
        (FIELDS.to_owned() + &line("2026-11-02", "10:00:00", "alice")).as_bytes(),
    );
    // A log on a share that is not mounted.
    std::os::unix::fs::symlink(d.join("share/u_ex261103.log"), d.join("logs/W3SVC1/u_ex261103.log")).unwrap();
    let err = refused(casguard(&["audit", "-q", d.join("logs").to_str().unwrap()]));
    let want = format!(
        "{}: a broken link: it points to {}, which does not exist",
        d.join("logs/W3SVC1/u_ex261103.log").display(),
        d.join("share/u_ex261103.log").display()
    );
    assert!(err.contains(&want), "{err}");
}

#[cfg(unix)]
#[test]
fn a_fifo_on_the_command_line_is_refused_by_name_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("u_ex261102.log");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let started = Instant::now();
    let mut child = crate::util::bin()
        .args(["audit", "-q", fifo.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("casguard hung on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = refused(child.wait_with_output().unwrap());
    assert!(err.contains(&format!("{}: not a log file but a FIFO", fifo.display())), "{err}");
}

#[test]
fn a_repeated_fields_name_is_warned_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("u_ex261102.log");
    let body = "#Fields: date time c-ip cs-username cs-uri-stem c-ip\r\n\
                2026-11-02 10:00:00 10.1.1.1 alice /owa/ 10.9.9.9\r\n";
    write(&log, body.as_bytes());
    let out = casguard(&["audit", "-q", "--format", "json", log.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let want = format!(
        "warning: {}:1: duplicate-field: #Fields: 'c-ip' is named twice (columns 3 and 6): column 3 is read",
        log.display()
    );
    assert!(err.contains(&want), "{err}");
}

#[test]
fn exchanges_other_logs_and_other_iis_formats_are_named_and_not_read() {
    // An admin points at Exchange's whole Logging folder: beside HttpProxy's,
    // dozens of logs of other kinds with the same header lines. Read as W3C,
    // every line of theirs was a malformed line.
    let dir = tempfile::tempdir().unwrap();
    let exchange_log = |kind: &str, fields: &str, line: &str| {
        format!(
            "#Software: Microsoft Exchange Server\r\n#Version: 15.01.2507.006\r\n#Log-type: {kind}\r\n\
             #Date: 2023-01-11T16:00:11.478Z\r\n#Fields: {fields}\r\n{line}\r\n"
        )
    };
    let rca = exchange_log(
        "RCA Protocol Logs",
        "date-time,session-id,seq-number,client-name,organization-info,client-software",
        "2023-01-11T16:00:12.478Z,1,0,/o=First Organization/cn=bob,,OUTLOOK.EXE",
    );
    write(&dir.path().join("Logging/RpcClientAccess/RCA_2023011116-1.LOG"), rca.as_bytes());
    let ews = exchange_log(
        "Ews Logs",
        "DateTime,RequestId,AuthenticationType,IsAuthenticated,AuthenticatedUser,UserAgent,SoapAction,HttpStatus",
        "2023-01-11T16:00:12.478Z,abc,Negotiate,True,CONTOSO\\bob,Microsoft Office/16.0 (Windows NT 10.0),FindItem,200",
    );
    write(&dir.path().join("Logging/Ews/Ews_2023011116-1.LOG"), ews.as_bytes());
    // IIS's own formats, as its documentation shows them.
    write(
        &dir.path().join("W3SVC2/nc010408.log"),
        b"172.21.13.45 - REDMOND\\fred [08/Apr/2001:17:39:04 -0800] \"GET /owa/ HTTP/1.0\" 200 3401\r\n",
    );
    write(
        &dir.path().join("W3SVC3/in010320.log"),
        b"192.168.114.201, -, 03/20/01, 7:55:20, W3SVC2, SALES1, 172.21.13.45, 4502, 163, 3223, 200, 0, GET, /owa/, -,\r\n",
    );
    let body = FIELDS.to_owned() + &line("2026-11-02", "10:00:00", "alice");
    write(&dir.path().join("W3SVC1/u_ex261102.log"), body.as_bytes());

    let logs = dir.path().to_str().unwrap();
    let out = casguard(&["audit", "-q", "--format", "json", logs]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &report["summary"];
    assert_eq!((s["lines"].as_u64(), s["malformed"].as_u64(), s["requests"].as_u64()), (Some(1), Some(0), Some(1)));
    let note = report["notes"].as_array().unwrap().iter().filter_map(|n| n.as_str()).find(|n| n.contains("not read"));
    let note = note.expect("a note names the files not read");
    assert!(note.starts_with("4 file(s) were not read"), "{note}");
    for kind in ["#Log-type: RCA Protocol Logs", "#Log-type: Ews Logs", "NCSA", "IIS log file format"] {
        assert!(note.contains(kind), "{kind} in {note}");
    }
    let err = text(&out.stderr);
    assert!(err.contains("not read: Exchange log of another kind (#Log-type: Ews Logs), such as"), "{err}");
    assert!(!err.contains("malformed") && !err.contains("no-fields"), "{err}");
}

#[test]
fn a_log_powershell_wrote_in_utf16_reads_as_its_utf8_original() {
    // `Get-Content u_ex*.log | Where-Object {...} > mine.log` in Windows
    // PowerShell writes UTF-16 LE with a byte-order mark.
    let utf16 = |text: &[u8], big: bool| -> Vec<u8> {
        let text = String::from_utf8_lossy(text);
        let mark: &[u8] = if big { b"\xFE\xFF" } else { b"\xFF\xFE" };
        let units = text.encode_utf16().flat_map(|u| if big { u.to_be_bytes() } else { u.to_le_bytes() });
        mark.iter().copied().chain(units).collect()
    };
    let iis = FIELDS.to_owned()
        + &line("2026-11-02", "10:00:00", "alice")
        + "2026-11-02 10:00:01 10.0.0.2 POST /Microsoft-Server-ActiveSync/default.eas \
           Cmd=Sync&User=M%C3%BCller&DeviceId=ABC&DeviceType=Outlook 443 CONTOSO\\müller 52.96.1.2 \
           Outlook-iOS-Android/1.0 - 200 0 0 15\r\n";
    let proxy = workspace_file("tests/data/httpproxy/artefacts-help/Eas/HttpProxy_2023011116-1.LOG");
    let keys = ["summary", "users", "protocols", "clients", "auth_types", "findings"];
    for (name, text) in [("u_ex261102.log", iis.into_bytes()), ("HttpProxy_2023011116-1.LOG", proxy)] {
        let report = |bytes: &[u8]| {
            let dir = tempfile::tempdir().unwrap();
            write(&dir.path().join(name), bytes);
            let v = json(&["audit", "-q", "--format", "json", dir.path().to_str().unwrap()]);
            keys.map(|k| v[k].clone())
        };
        let original = report(&text);
        assert!(original[0]["requests"].as_u64().unwrap() > 0, "{name}");
        assert_eq!(report(&utf16(&text, false)), original, "{name} in UTF-16 LE");
        assert_eq!(report(&utf16(&text, true)), original, "{name} in UTF-16 BE");
    }
}

fn workspace_file(path: &str) -> Vec<u8> {
    std::fs::read(crate::util::workspace().join(path)).unwrap()
}

#[test]
fn a_log_copied_into_two_folders_is_read_once_and_named() {
    // A share filled twice: the same log under EX01 and under a backup copy,
    // beside a log of the same length that differs late in the file.
    let dir = tempfile::tempdir().unwrap();
    let body = FIELDS.to_owned() + &line("2026-11-02", "10:00:00", "alice") + &line("2026-11-02", "10:00:01", "bob");
    write(&dir.path().join("EX01/W3SVC1/u_ex261102.log"), body.as_bytes());
    write(&dir.path().join("backup/EX01/W3SVC1/u_ex261102.log"), body.as_bytes());
    let other = body.replace("10:00:01 10.0.0.2", "10:00:02 10.0.0.2");
    assert_eq!(other.len(), body.len());
    write(&dir.path().join("EX02/W3SVC1/u_ex261102.log"), other.as_bytes());

    let out = casguard(&["audit", "-q", "--format", "json", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["requests"].as_u64(), Some(4), "the copy's two lines are not counted again");
    let err = text(&out.stderr);
    assert!(err.contains("1 file(s) not read: copy of another file given (the same bytes, read once)"), "{err}");
    // The copy is the later one in path order.
    assert!(err.contains("such as") && err.contains("backup/EX01/W3SVC1/u_ex261102.log"), "{err}");
}

#[test]
fn logs_left_in_an_archive_are_named_not_passed_over() {
    // Older days zipped beside today's log: the audit says what it did not read.
    let dir = tempfile::tempdir().unwrap();
    let body = FIELDS.to_owned() + &line("2026-11-02", "10:00:00", "alice");
    write(&dir.path().join("W3SVC1/u_ex261102.log"), body.as_bytes());
    // A zip's local file header (the magic is what tells it).
    write(&dir.path().join("W3SVC1/october.zip"), b"PK\x03\x04\x14\x00\x00\x00\x08\x00u_ex261001.log");
    let out = casguard(&["audit", "-q", "--format", "json", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("1 file(s) not read: zip archive: extract it to read the logs inside, such as"), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["summary"]["requests"].as_u64(), report["summary"]["malformed"].as_u64()), (Some(1), Some(0)));

    // Archives alone: nothing to read is an error that says where the logs are.
    let zipped = dir.path().join("W3SVC1/october.zip");
    let only = tempfile::tempdir().unwrap();
    write(&only.path().join("october.zip"), &std::fs::read(&zipped).unwrap());
    let err = refused(casguard(&["audit", "-q", only.path().to_str().unwrap()]));
    assert!(
        err.contains("no log files (*.log, *.gz)") && err.contains("1 archive(s) there") && err.contains("october.zip"),
        "{err}"
    );
}

#[test]
fn a_folder_of_other_logs_only_is_an_error_not_an_all_clear() {
    // Exchange's Logging\Ews given for Logging\HttpProxy: the empty report,
    // "Findings (0)" and exit 0 (with --fail-on-findings too), read as all clear.
    let dir = tempfile::tempdir().unwrap();
    let ews = "#Software: Microsoft Exchange Server\r\n#Version: 15.01.2507.006\r\n#Log-type: Ews Logs\r\n\
               #Date: 2023-01-11T16:00:11.478Z\r\n#Fields: DateTime,RequestId,HttpStatus\r\n\
               2023-01-11T16:00:12.478Z,abc,200\r\n";
    write(&dir.path().join("Ews/Ews_2023011116-1.LOG"), ews.as_bytes());
    let logs = dir.path().to_str().unwrap();
    let policy = example("block-outlook-provision.toml");
    for args in [
        vec!["audit", "-q", "--fail-on-findings", logs],
        vec!["simulate", "-q", "--policy", &policy, logs],
        vec!["posture", "-q", "--policy", &policy, logs],
        vec!["export", "-q", logs],
    ] {
        let e = refused(casguard(&args));
        assert!(e.contains("none of the 1 file(s) found is an IIS W3C or HttpProxy log"), "{args:?}: {e}");
        assert!(e.contains("#Log-type: Ews Logs), such as"), "{args:?}: {e}");
    }
    // One log beside it is enough: the other is named and the run goes on.
    let body = FIELDS.to_owned() + &line("2026-11-02", "10:00:00", "alice");
    write(&dir.path().join("W3SVC1/u_ex261102.log"), body.as_bytes());
    ok(casguard(&["audit", "-q", logs]));
}
