//! Input that is not what it claims (issue 21, item 9): a typed column that
//! does not hold its type, a gzip member whose checksum fails, a folder that
//! is a link, a FIFO where a file was expected, a `#Fields` line that names a
//! column twice. Each test is named after what it stops.

mod common;

use common::{gzip, write};
use w3c::{
    collect_paths, scan_bytes, scan_chunks, scan_path, scan_reader, Error, Field, FileStats, MalformedKind, Record,
    ScanOptions, WarningKind,
};

const FIELDS: &str = "#Fields: date time s-ip cs-method cs-uri-stem s-port cs-username c-ip sc-status sc-substatus\n";

fn line(date: &str, time: &str, client: &str, status: &str) -> String {
    format!("{date} {time} 10.0.0.2 GET /owa/ 443 alice {client} {status} 0\n")
}

/// A record's time and client address.
type Seen = (Option<i64>, Option<String>);

/// The time and client address of every record, and the statistics.
fn read(data: &[u8], opts: &ScanOptions) -> (Vec<Seen>, FileStats) {
    let mut seen = Vec::new();
    let stats = scan_bytes(data, opts, &mut |r: &Record<'_>| {
        seen.push((r.timestamp(), r.address(Field::ClientIp).map(|ip| ip.to_string())));
    });
    (seen, stats)
}

fn malformed(stats: &FileStats) -> Vec<(u64, String)> {
    stats.first_malformed.iter().map(|m| (m.line, format!("{}: {}", m.kind, m.detail))).collect()
}

#[test]
fn a_column_that_is_not_its_type_never_feeds_a_request_without_time() {
    let mut log = FIELDS.to_owned();
    log += &line("2026-11-02", "10:00:00", "10.1.1.1", "200"); // 2: good
    log += &line("2026-11-02x", "10:00:01", "10.1.1.1", "200"); // 3
    log += &line("2026-02-30", "10:00:02", "10.1.1.1", "200"); // 4: no such day
    log += &line("2026-11-02", "25:61:61", "10.1.1.1", "200"); // 5: no such time
    log += &line("-", "10:00:03", "10.1.1.1", "200"); // 6: a date column with no date
    log += &line("2026-11-02", "10:00:04", "10.1.1.1", "2x0"); // 7
    log += &line("2026-11-02", "10:00:05", "-", "-"); // 8: good, address and status not logged
    log += &line("2028-02-29", "23:59:59.5", "fe80::1%3", "401"); // 9: good, leap day, a fraction
    let mut bytes = log.into_bytes();
    bytes.extend_from_slice(b"2026-11-0\xc3 10:00:06 10.0.0.2 GET /owa/ 443 bob 10.1.1.1 200 0\n"); // 10
    bytes.extend_from_slice(b"2026-11-02 10:00:07 10.0.0.2 GET /owa/ 443 bob 10.1.\xff.1 200 0\n"); // 11
    bytes.extend_from_slice(b"2026-11-02 10:00:08 10.0.0.2 GET /owa/ 70000 bob 10.1.1.1 200 0\n"); // 12

    let opts = ScanOptions { max_reported: 20, ..ScanOptions::default() };
    let (records, stats) = read(&bytes, &opts);
    assert_eq!(
        records,
        [
            (Some(1_793_613_600), Some("10.1.1.1".to_owned())),
            (Some(1_793_613_605), None),
            (Some(1_835_481_599), Some("fe80::1".to_owned())),
        ]
    );
    assert!(records.iter().all(|(time, _)| time.is_some()), "no record without its time");
    assert_eq!((stats.lines, stats.malformed_of(MalformedKind::BadValue), stats.malformed_total()), (11, 8, 8));
    assert_eq!(
        malformed(&stats),
        [
            (3, "bad-value: date \"2026-11-02x\" is not a date (YYYY-MM-DD)".to_owned()),
            (4, "bad-value: date \"2026-02-30\" is not a date (YYYY-MM-DD)".to_owned()),
            (5, "bad-value: time \"25:61:61\" is not a time of day (HH:MM:SS)".to_owned()),
            (6, "bad-value: date \"-\" is not a date (YYYY-MM-DD)".to_owned()),
            (7, "bad-value: sc-status \"2x0\" is not a number from 0 to 65535".to_owned()),
            (10, "bad-value: date \"2026-11-0\\xc3\" is not a date (YYYY-MM-DD)".to_owned()),
            (11, "bad-value: c-ip \"10.1.\\xff.1\" is not an IP address".to_owned()),
            (12, "bad-value: s-port \"70000\" is not a number from 0 to 65535".to_owned()),
        ]
    );

    // Every way of reading says the same: chunks in parallel, and a stream.
    for chunk in [64, 200, 1 << 20] {
        let scan = scan_chunks(&bytes, &ScanOptions { chunk_size: chunk, ..opts.clone() }, || |_: &Record<'_>| {});
        assert_eq!(scan.stats, stats, "chunk {chunk}");
    }
    let streamed = scan_reader(&bytes[..], &ScanOptions { chunk_size: 100, ..opts.clone() }, &mut |_: &Record<'_>| {});
    assert_eq!(streamed.unwrap(), stats);
}

#[test]
fn a_table_without_date_or_time_claims_no_time_and_is_read() {
    let log =
        b"#Fields: c-ip cs-username\n10.0.0.1 alice\n#Fields: date c-ip\n2026-11-02 10.0.0.1\n2026-13-02 10.0.0.1\n";
    let (records, stats) = read(log, &ScanOptions::default());
    assert_eq!(records, [(None, Some("10.0.0.1".to_owned())), (None, Some("10.0.0.1".to_owned()))]);
    assert_eq!(malformed(&stats), [(5, "bad-value: date \"2026-13-02\" is not a date (YYYY-MM-DD)".to_owned())]);
}

#[test]
fn a_redacted_address_is_read_as_unknown_and_warned_not_dropped() {
    let log = FIELDS.to_owned()
        + &line("2021-03-05", "03:06:27", "xxx", "200")
        + &line("2021-03-05", "03:06:28", "x.x", "302");
    let (records, stats) = read(log.as_bytes(), &ScanOptions::default());
    assert_eq!(records, [(Some(1_614_913_587), None), (Some(1_614_913_588), None)]);
    assert_eq!(stats.malformed_total(), 0);
    assert_eq!(stats.warnings_of(WarningKind::UnreadableAddress), 2);
    let w = &stats.first_warnings[0];
    assert_eq!((w.kind, w.line), (WarningKind::UnreadableAddress, 2));
    assert_eq!(w.detail, "c-ip \"xxx\" is not an IP address: the line is read with its c-ip unknown");
    // Both redacted (Microsoft Q&A 1631357's `ip_address`): the warning names
    // the source, which the report reads, not the server.
    let log = "#Fields: date time s-ip c-ip\n2010-08-12 23:53:39 ip_address ip_address\n";
    let (_, stats) = read(log.as_bytes(), &ScanOptions::default());
    let w = &stats.first_warnings[0];
    assert_eq!(w.detail, "c-ip \"ip_address\" is not an IP address: the line is read with its c-ip unknown");
}

#[test]
fn a_repeated_fields_name_is_warned_with_its_line_and_the_first_column_is_read() {
    let log = "#Software: x\n#Fields: date time c-ip cs-username c-ip\n2026-11-02 10:00:00 10.0.0.1 alice 10.0.0.2\n\
               #Fields: date time X-Forwarded-For cs(x-forwarded-for)\n2026-11-02 10:00:00 1.1.1.1 2.2.2.2\n";
    let mut seen = Vec::new();
    let stats = scan_bytes(log.as_bytes(), &ScanOptions::default(), &mut |r: &Record<'_>| {
        seen.push((r.address(Field::ClientIp), r.get(Field::ForwardedFor).map(<[u8]>::to_vec)));
    });
    assert_eq!(seen, [(Some("10.0.0.1".parse().unwrap()), None), (None, Some(b"1.1.1.1".to_vec()))]);
    assert_eq!(stats.warnings_of(WarningKind::DuplicateField), 2);
    let got: Vec<_> = stats.first_warnings.iter().map(|w| (w.line, w.detail.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "#Fields: 'c-ip' is named twice (columns 3 and 5): column 3 is read"),
            (4, "#Fields: 'X-Forwarded-For' and 'cs(x-forwarded-for)' name the same field (columns 3 and 4): column 3 is read"),
        ]
    );
    // Chunks in parallel warn once per directive, at its own line.
    let scan =
        scan_chunks(log.as_bytes(), &ScanOptions { chunk_size: 16, ..ScanOptions::default() }, || |_: &Record<'_>| {});
    assert_eq!(scan.stats.first_warnings, stats.first_warnings);
}

#[test]
fn a_gzip_member_with_a_wrong_crc_is_reported_not_passed() {
    let text: String = FIELDS.to_owned()
        + &(0..500).map(|i| line("2026-11-02", "10:00:00", &format!("10.0.{}.1", i % 200), "200")).collect::<String>();
    let good = gzip(text.as_bytes());
    let mut bad_crc = good.clone();
    let at = bad_crc.len() - 8; // the trailer: CRC-32, then the length
    bad_crc[at] ^= 0xff;
    let mut first_bad = bad_crc.clone();
    first_bad.extend_from_slice(&good);
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, records) in [("last.log.gz", &bad_crc, 500), ("first-of-two.log.gz", &first_bad, 500)] {
        let path = write(dir.path(), name, bytes);
        for parallel in [true, false] {
            let opts = ScanOptions { parallel, chunk_size: 4096, ..ScanOptions::default() };
            let scan = scan_path(&path, &opts, || |_: &Record<'_>| {}).unwrap();
            let s = &scan.stats;
            assert_eq!(s.records(), records, "{name}: what was read is kept");
            assert_eq!(s.malformed_of(MalformedKind::TruncatedGzip), 1, "{name}");
            let m = &s.first_malformed[0];
            assert_eq!(m.line, 502, "{name}");
            assert!(m.detail.starts_with("gzip data is damaged: ") && m.detail.contains("checksum"), "{}", m.detail);
        }
    }
}

#[cfg(unix)]
#[test]
fn a_symlinked_log_folder_is_walked_like_a_folder_and_loops_end() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let real = write(d, "store/W3SVC1/u_ex261102.log", b"");
    std::fs::create_dir_all(d.join("logs/EX01")).unwrap();
    symlink(d.join("store/W3SVC1"), d.join("logs/EX01/W3SVC1")).unwrap();
    // A link back up would loop; a second link to the same folder would read it twice.
    symlink(d.join("logs"), d.join("logs/EX01/up")).unwrap();
    symlink(d.join("store/W3SVC1"), d.join("logs/again")).unwrap();
    write(d, "logs/EX01/W3SVC2/u_ex261103.log", b"");
    symlink(d.join("logs/EX01/W3SVC2/u_ex261103.log"), d.join("logs/EX01/link.log")).unwrap();
    let got = collect_paths(&[d.join("logs")]).unwrap();
    assert_eq!(
        got,
        [d.join("logs/EX01/W3SVC1/u_ex261102.log"), d.join("logs/EX01/W3SVC2/u_ex261103.log")],
        "each file once, through the first path that reaches it"
    );
    assert_eq!(std::fs::canonicalize(&got[0]).unwrap(), std::fs::canonicalize(real).unwrap());
    // The folder link given on the command line reads the same.
    assert_eq!(collect_paths(&[d.join("logs/EX01/W3SVC1")]).unwrap().len(), 1);
    // A link of a log's name that leads nowhere is an error, not a silent
    // skip, and says it is a link and where it points; given, as found.
    symlink(d.join("gone.log"), d.join("logs/u_ex261104.log")).unwrap();
    for given in [d.join("logs"), d.join("logs/u_ex261104.log")] {
        match collect_paths(&[given]).unwrap_err() {
            Error::BrokenLink { path, target } => {
                assert_eq!((path, target), (d.join("logs/u_ex261104.log"), d.join("gone.log")))
            }
            other => panic!("{other}"),
        }
    }
}

/// Runs `f` on another thread and fails if it has not returned within 20 s:
/// a FIFO without a writer blocks whoever opens it.
#[cfg(unix)]
fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(std::time::Duration::from_secs(20)).expect("hung on a FIFO")
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_by_name_and_never_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("logs/u_ex261102.log");
    std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let refused = |err: Error| match err {
        Error::NotAFile { path, kind } => {
            assert_eq!(kind, "a FIFO");
            path
        }
        other => panic!("{other}"),
    };
    let (f, folder) = (fifo.clone(), dir.path().join("logs"));
    assert_eq!(refused(within_seconds(move || collect_paths(&[f]).unwrap_err())), fifo);
    assert_eq!(refused(within_seconds(move || collect_paths(&[folder]).unwrap_err())), fifo);
    let f = fifo.clone();
    let err = within_seconds(move || scan_path(&f, &ScanOptions::default(), || |_: &Record<'_>| {}).err().unwrap());
    assert!(err.to_string().contains("u_ex261102.log: not a log file but a FIFO"), "{err}");
    let f = fifo.clone();
    let err = within_seconds(move || w3c::scan_file(&f, &ScanOptions::default(), &mut |_: &Record<'_>| {}));
    assert_eq!(refused(err.unwrap_err()), fifo);
    let f = fifo.clone();
    let err = within_seconds(move || {
        w3c::tail::follow(&f, &mut Default::default(), &ScanOptions::default(), &mut |_: &Record<'_>| {})
    });
    assert_eq!(refused(err.unwrap_err()), fifo);
    let f = fifo.clone();
    assert_eq!(refused(within_seconds(move || w3c::utf16::is_utf16_file(&f).unwrap_err())), fifo);
}

#[test]
fn an_http_sys_error_log_is_counted_not_read_as_requests() {
    // HTTPERR's own layout (KB 820729), then a site's log in the same stream.
    let mut log = "#Software: Microsoft HTTP API 2.0\n#Version: 1.0\n#Date: 2026-11-02 10:00:00\n\
                   #Fields: date time c-ip c-port s-ip s-port cs-version cs-method cs-uri streamid sc-status \
                   s-siteid s-reason s-queuename\n"
        .to_owned();
    for i in 0..30 {
        log +=
            &format!("2026-11-02 10:00:{i:02} 203.0.113.9 5{i:04} 10.0.0.2 443 - - - - - - Timer_ConnectionIdle -\n");
    }
    log += "2026-11-02 10:01:00 198.51.100.7 61000 10.0.0.2 443 HTTP/1.1 GET /owa/ - 400 - BadRequest -\n";
    log += FIELDS;
    log += &line("2026-11-02", "10:02:00", "10.1.1.1", "200");
    let (records, stats) = read(log.as_bytes(), &ScanOptions::default());
    assert_eq!(records, [(Some(1_793_613_720), Some("10.1.1.1".to_owned()))], "only the site's line is a request");
    assert_eq!((stats.http_error_lines, stats.lines, stats.malformed_total()), (31, 1, 0));
    for chunk_size in [100, 700] {
        let scan = scan_chunks(log.as_bytes(), &ScanOptions { chunk_size, ..ScanOptions::default() }, || {
            |r: &Record<'_>| assert_eq!(r.get(Field::ClientIp), Some(&b"10.1.1.1"[..]), "an HTTPERR line read")
        });
        assert_eq!((scan.stats.http_error_lines, scan.stats.lines), (31, 1), "chunk size {chunk_size}");
    }
}

/// Write each `(name, bytes)` into `dir`; their paths, in order.
fn write_files(dir: &std::path::Path, files: &[(&str, impl AsRef<[u8]>)]) -> Vec<std::path::PathBuf> {
    let write = |(name, bytes): &(&str, _)| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    files.iter().map(write).collect()
}

#[test]
fn copies_are_the_files_with_an_earlier_ones_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..20_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
    let mut late = big.clone();
    *late.last_mut().unwrap() = b'!';
    let files: [(&str, &[u8]); 7] = [
        ("a.log", &big),
        ("b.log", &late), // same length and first 4 KiB, differs at the end
        ("c.log", &big),
        ("d.log", b""),
        ("e.log", b""),
        ("f.log", &late),
        ("g.log", b"line 0\n"),
    ];
    let paths = write_files(dir.path(), &files);
    assert_eq!(w3c::copies(&paths).unwrap(), [None, None, Some(0), None, None, Some(1), None]);

    // A log kept both plain and compressed: the `.gz` is the copy, wherever it
    // sorts; one that decompresses to other bytes, or is damaged, is none.
    let gzip = |bytes: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, bytes).unwrap();
        e.finish().unwrap()
    };
    let pairs: [(&str, Vec<u8>); 6] = [
        ("A.LOG.GZ", gzip(&big)),
        ("A.LOG", big.clone()),
        ("b.log", big.clone()),
        ("b.log.gz", gzip(&late)),
        ("c.log", late.clone()),
        ("c.log.gz", gzip(&late)[..100].to_vec()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let paths = write_files(dir.path(), &pairs);
    // A.LOG is A.LOG.GZ's original, and b.log has its bytes; b.log.gz
    // inflates to c.log's bytes, under another name.
    assert_eq!(w3c::copies(&paths).unwrap(), [Some(1), None, Some(1), Some(4), None, None]);

    // A log kept plain in one folder and compressed under another name in
    // another is read once; a gzip of the same size and other bytes is no copy.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("archive")).unwrap();
    let other: Vec<u8> = big.iter().map(|b| if *b == b'1' { b'2' } else { *b }).collect();
    let files: [(&str, Vec<u8>); 3] = [
        ("archive/ex-2026-12-01.gz", gzip(&big)),
        ("archive/ex-2026-12-02.gz", gzip(&other)),
        ("u_ex261201.log", big.clone()),
    ];
    let paths = write_files(dir.path(), &files);
    assert_eq!(other.len(), big.len());
    assert_eq!(w3c::copies(&paths).unwrap(), [Some(2), None, None]);
}
