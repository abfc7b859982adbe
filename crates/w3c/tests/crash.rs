//! What a server that stopped without closing its log leaves in it: the room
//! it had reserved for lines, as NUL bytes, and after them the directives it
//! writes when it starts again. Each test is named after what it stops.

use w3c::{scan_bytes, scan_chunks, scan_reader, Field, FileStats, Record, ScanOptions, Visitor, WarningKind};

const HEADER: &str =
    "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: 2026-11-02 10:00:00\n";
const FIELDS: &str = "#Fields: date time s-ip cs-method cs-uri-stem s-port cs-username c-ip sc-status\n";
/// The layout after the restart: another column order, so that a line read
/// with the wrong `#Fields` would show.
const FIELDS_AFTER: &str = "#Fields: date time cs-username c-ip s-ip cs-method cs-uri-stem s-port sc-status\n";

fn before(user: &str) -> String {
    format!("2026-11-02 10:00:01 10.0.0.2 GET /owa/ 443 {user} 10.1.1.1 200\n")
}

fn after(user: &str) -> String {
    format!("2026-11-02 10:05:00 {user} 10.1.1.2 10.0.0.2 GET /ews/exchange.asmx 443 200\n")
}

/// The user and client address of every record, and the statistics.
fn read(data: &[u8], opts: &ScanOptions) -> (Vec<(String, String)>, FileStats) {
    let mut seen = Vec::new();
    let stats = scan_bytes(data, opts, &mut |r: &Record<'_>| seen.push(user_and_client(r)));
    (seen, stats)
}

/// The user and client address of every record a chunk read.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Visitor for Seen {
    fn record(&mut self, record: &Record<'_>) {
        self.0.push(user_and_client(record));
    }
}

fn user_and_client(r: &Record<'_>) -> (String, String) {
    let text = |f| String::from_utf8_lossy(r.get(f).unwrap_or_default()).into_owned();
    (text(Field::Username), text(Field::ClientIp))
}

/// `parts` joined, each `Err(n)` standing for `n` NUL bytes.
fn log(parts: &[Result<&str, usize>]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for part in parts {
        match part {
            Ok(text) => bytes.extend_from_slice(text.as_bytes()),
            Err(n) => bytes.resize(bytes.len() + n, 0),
        }
    }
    bytes
}

fn warnings(stats: &FileStats) -> Vec<(u64, WarningKind, String)> {
    stats.first_warnings.iter().map(|w| (w.line, w.kind, w.detail.clone())).collect()
}

#[test]
fn nul_bytes_before_the_restart_directives_lose_no_line_and_the_new_fields_are_read() {
    let restart = HEADER.to_owned() + FIELDS_AFTER + &after("bob");
    let bytes = log(&[Ok(HEADER), Ok(FIELDS), Ok(&before("alice")), Err(4096), Ok(&restart)]);
    let (records, stats) = read(&bytes, &ScanOptions::default());
    assert_eq!(records, [("alice".into(), "10.1.1.1".into()), ("bob".into(), "10.1.1.2".into())]);
    assert_eq!((stats.lines, stats.malformed_total()), (2, 0));
    assert_eq!(stats.warnings_of(WarningKind::NulBytes), 1);
    let (line, kind, detail) = &warnings(&stats)[0];
    assert_eq!((*line, *kind), (6, WarningKind::NulBytes), "the line the NUL bytes start");
    assert!(detail.starts_with("4096 NUL bytes: the server stopped"), "{detail}");
}

#[test]
fn a_line_cut_off_by_nul_bytes_is_malformed_and_says_why() {
    let cut = &before("alice")[..30];
    let restart = HEADER.to_owned() + FIELDS + &before("bob");
    let bytes = log(&[Ok(HEADER), Ok(FIELDS), Ok(cut), Err(512), Ok(&restart)]);
    let (records, stats) = read(&bytes, &ScanOptions::default());
    assert_eq!(records, [("bob".into(), "10.1.1.1".into())]);
    assert_eq!((stats.lines, stats.malformed_total()), (2, 1));
    assert_eq!(stats.first_malformed[0].line, 5);
    let (line, kind, detail) = &warnings(&stats)[0];
    assert_eq!((*line, *kind), (5, WarningKind::NulBytes));
    assert!(detail.starts_with("NUL bytes from byte 31: the server stopped while writing this line"), "{detail}");
}

#[test]
fn nul_bytes_that_end_a_file_are_warned_and_are_no_line() {
    let bytes = log(&[Ok(HEADER), Ok(FIELDS), Ok(&before("alice")), Err(65_536)]);
    let (records, stats) = read(&bytes, &ScanOptions::default());
    assert_eq!(records.len(), 1);
    assert_eq!((stats.lines, stats.malformed_total()), (1, 0));
    assert_eq!(warnings(&stats).iter().map(|w| (w.0, w.1)).collect::<Vec<_>>(), [(6, WarningKind::NulBytes)]);
}

#[test]
fn chunks_and_streams_read_a_crashed_log_as_one_pass_does() {
    // NUL bytes straight before `#Fields`: a chunk that starts after them
    // must find that layout in force, as the pass in order does.
    let mut text = log(&[Ok(HEADER), Ok(FIELDS)]);
    for i in 0..40 {
        text.extend_from_slice(before(&format!("u{i}")).as_bytes());
    }
    text.extend(log(&[Err(700), Ok(FIELDS_AFTER)]));
    for i in 0..40 {
        text.extend_from_slice(after(&format!("v{i}")).as_bytes());
    }
    text.extend(log(&[Ok(&before("cut")[..20]), Err(300), Ok(HEADER), Ok(FIELDS), Ok(&before("last"))]));
    let opts = ScanOptions { max_reported: 50, ..ScanOptions::default() };
    let (records, stats) = read(&text, &opts);
    assert_eq!(records.len(), 81);
    assert_eq!(records[40], ("v0".into(), "10.1.1.2".into()));
    assert_eq!((stats.malformed_total(), stats.warnings_of(WarningKind::NulBytes)), (1, 2));

    for chunk_size in [64, 200, 1000] {
        let chunks = scan_chunks(&text, &ScanOptions { chunk_size, ..opts.clone() }, Seen::default);
        assert!(chunks.visitors.len() > 2, "chunk size {chunk_size}: {} chunks", chunks.visitors.len());
        let seen: Vec<_> = chunks.visitors.into_iter().flat_map(|v| v.0).collect();
        assert_eq!(seen, records, "chunk size {chunk_size}");
        assert_eq!(chunks.stats.lines, stats.lines, "chunk size {chunk_size}");
        assert_eq!(chunks.stats.first_malformed, stats.first_malformed, "chunk size {chunk_size}");
        assert_eq!(chunks.stats.first_warnings, stats.first_warnings, "chunk size {chunk_size}");
    }
    let mut streamed = Vec::new();
    let stream = scan_reader(&text[..], &opts, &mut |r: &Record<'_>| streamed.push(user_and_client(r))).unwrap();
    assert_eq!(streamed, records);
    assert_eq!(
        (stream.lines, stream.first_malformed, stream.first_warnings),
        (stats.lines, stats.first_malformed, stats.first_warnings)
    );
}
