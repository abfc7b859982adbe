//! Integration tests: every format rule, every input path (bytes, chunks, mmap, stream,
//! gzip), and the real Exchange back-end sample.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::{gzip_members, write};
use w3c::{
    collect_paths, decode_into, decode_utf8_into, scan_bytes, scan_chunks, scan_path, scan_path_pooled, scan_reader,
    Field, Fields, FileStats, MalformedKind, Record, ScanOptions, Visitor, VisitorPool, IIS_DEFAULT_FIELDS,
};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/exchange-backend-edge-cases.log");

/// Records every field (raw), the decoded user agent and the timestamp of each record.
#[derive(Debug, Default)]
struct Collect(Vec<String>);

impl Visitor for Collect {
    fn record(&mut self, r: &Record<'_>) {
        let mut s = String::new();
        for i in 0..r.len() {
            match r.field(i) {
                Some(v) => decode_utf8_into(v, &mut s),
                None => s.push_str("<none>"),
            }
            s.push('|');
        }
        if let Some(ua) = r.get(Field::UserAgent) {
            decode_into(ua, &mut s);
        }
        s.push('|');
        if let Some(t) = r.timestamp() {
            w3c::time::write_rfc3339(t, &mut s);
        }
        self.0.push(s);
    }
}

fn opts() -> ScanOptions {
    ScanOptions { max_reported: usize::MAX, ..ScanOptions::default() }
}

fn collect(data: &[u8], o: &ScanOptions) -> (Vec<String>, FileStats) {
    let mut c = Collect::default();
    let stats = scan_bytes(data, o, &mut c);
    (c.0, stats)
}

fn malformed_lines(s: &FileStats) -> Vec<(MalformedKind, u64)> {
    s.first_malformed.iter().map(|m| (m.kind, m.line)).collect()
}

fn scan_file(path: &Path, o: &ScanOptions) -> (Vec<String>, FileStats) {
    let scan = scan_path(path, o, Collect::default).unwrap();
    let records = scan.visitors.into_iter().flat_map(|c| c.0).collect();
    (records, scan.stats)
}

/// Stats with the fields that legitimately differ between input paths cleared.
fn normalized(mut s: FileStats) -> FileStats {
    s.path = PathBuf::new();
    s.compressed = false;
    s
}

const HEADER: &str = "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: 2022-01-01 00:00:00\n#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\n";

fn line(i: usize) -> String {
    format!(
        "2022-01-01 00:{:02}:{:02} 10.0.0.5 POST /EWS/Exchange.asmx id={i}&a=b+c 443 DOMAIN\\user{} 192.168.{}.{} Microsoft+Office/16.0+(Windows+NT+10.0;+Microsoft+Outlook+16.0.5) - 200 0 0 {}\n",
        i / 60 % 60,
        i % 60,
        i % 7,
        i % 250,
        i % 200,
        i * 3 % 1000
    )
}

#[test]
fn real_sample_backend_edge_cases() {
    let data = std::fs::read(SAMPLE).unwrap();
    let mut users = Vec::new();
    let mut cips = Vec::new();
    let mut first_ts = None;
    let stats = scan_bytes(&data, &opts(), &mut |r: &Record<'_>| {
        users.push(r.get(Field::Username).map(|u| String::from_utf8_lossy(u).into_owned()));
        cips.push(String::from_utf8_lossy(r.get(Field::ClientIp).unwrap()).into_owned());
        first_ts = first_ts.or(r.timestamp());
    });
    // Lines 5-7 carry a doubled space before cs-username: 16 fields for 15 names.
    assert_eq!(
        malformed_lines(&stats),
        [(MalformedKind::FieldCount, 5), (MalformedKind::FieldCount, 6), (MalformedKind::FieldCount, 7)]
    );
    assert!(stats.first_malformed.iter().all(|m| m.detail == "expected 15 fields, found 16"));
    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(stats.directives, 4);
    assert_eq!(stats.lines, newlines - stats.directives);
    assert_eq!(stats.records(), 9);
    assert_eq!(users.len(), 9);
    assert_eq!(stats.bytes, data.len() as u64);
    assert!(cips.iter().any(|c| c == "::1"));
    assert!(cips.iter().all(|c| c == "::1"));
    assert!(users.contains(&Some("RanDomain\\EX04$".to_owned())));
    assert!(users.contains(&Some("RaDomain\\RandomMailbox3242354".to_owned())));
    assert!(users.contains(&None), "anonymous '-' users come through as None");
    assert_eq!(first_ts, w3c::time::parse_rfc3339("2022-01-01T00:18:46Z"));

    // The same through the file reader at every chunk size, and gzipped.
    let (want, _) = collect(&data, &opts());
    let dir = tempfile::tempdir().unwrap();
    let plain = write(dir.path(), "u_ex220101.log", &data);
    let gz = write(dir.path(), "u_ex220101.log.gz", &gzip_members(&[&data]));
    for chunk in [1, 100, 1000, 1 << 20] {
        let o = ScanOptions { chunk_size: chunk, ..opts() };
        for p in [&plain, &gz] {
            let (got, s) = scan_file(p, &o);
            assert_eq!(got, want, "{} chunk {chunk}", p.display());
            assert_eq!(normalized(s), normalized(stats.clone()));
        }
    }
}

#[test]
fn directives_mid_file_and_fields_change_with_forwarded_for() {
    let log = "#Software: IIS\n#Fields: date time c-ip cs-username\n\
        2022-01-01 00:00:01 10.0.0.1 alice\n\
        #Remark: config change\n\
        #Fields: date time c-ip cs-username X-Forwarded-For\n\
        2022-01-01 00:00:02 10.0.0.2 bob 203.0.113.9,10.1.1.1\n\
        2022-01-01 00:00:03 10.0.0.3 carol\n\
        #Start-Date: 2022-01-01 00:00:00\n\
        2022-01-01 00:00:04 10.0.0.4 - -\n";
    let mut seen = Vec::new();
    let stats = scan_bytes(log.as_bytes(), &opts(), &mut |r: &Record<'_>| {
        seen.push((
            r.fields().len(),
            r.get(Field::Username).map(<[u8]>::to_vec),
            r.get(Field::ForwardedFor).map(<[u8]>::to_vec),
            r.get_named("x-forwarded-for").map(<[u8]>::to_vec),
        ));
    });
    assert_eq!(
        seen,
        [
            (4, Some(b"alice".to_vec()), None, None),
            (5, Some(b"bob".to_vec()), Some(b"203.0.113.9,10.1.1.1".to_vec()), Some(b"203.0.113.9,10.1.1.1".to_vec())),
            (5, None, None, None),
        ]
    );
    assert_eq!(stats.directives, 5);
    assert_eq!(stats.lines, 4);
    assert_eq!(malformed_lines(&stats), [(MalformedKind::FieldCount, 7)]);
    assert_eq!(stats.first_malformed[0].detail, "expected 5 fields, found 4");
}

#[test]
fn crlf_and_lf_read_the_same() {
    let lf: String = HEADER.to_owned() + &(0..50).map(line).collect::<String>();
    let crlf = lf.replace('\n', "\r\n");
    let (a, sa) = collect(lf.as_bytes(), &opts());
    let (b, sb) = collect(crlf.as_bytes(), &opts());
    assert_eq!(a.len(), 50);
    assert_eq!(a, b);
    assert!(!b.iter().any(|r| r.contains('\r')));
    assert_eq!((sa.lines, sa.directives), (sb.lines, sb.directives));
    // No line end on the last line.
    let (c, _) = collect(crlf.trim_end().as_bytes(), &opts());
    assert_eq!(a, c);
}

#[test]
fn bom_at_start_and_before_a_mid_file_directive() {
    let mut data = b"\xEF\xBB\xBF".to_vec();
    data.extend_from_slice(HEADER.as_bytes());
    data.extend_from_slice(line(1).as_bytes());
    // A second file appended with its own BOM and header.
    data.extend_from_slice(b"\xEF\xBB\xBF#Software: IIS\r\n\xEF\xBB\xBF#Fields: date time c-ip\r\n");
    data.extend_from_slice(b"2022-01-02 00:00:00 10.9.9.9\r\n");
    let mut ips = Vec::new();
    let stats = scan_bytes(&data, &opts(), &mut |r: &Record<'_>| {
        ips.push(r.get(Field::ClientIp).unwrap().to_vec());
    });
    assert_eq!(stats.malformed_total(), 0, "{:?}", stats.first_malformed);
    assert_eq!(stats.directives, 6);
    assert_eq!(ips, [b"192.168.1.1".to_vec(), b"10.9.9.9".to_vec()]);
}

#[test]
fn dash_is_absent_and_plus_decodes_to_space() {
    let log = b"#Fields: date time cs-username cs(User-Agent) cs-uri-query cs(Referer)\n\
        2022-01-01 00:00:01 - Mozilla/5.0+(iPhone;+CPU) a=1+2 -\n";
    let mut out = None;
    scan_bytes(log, &opts(), &mut |r: &Record<'_>| {
        let mut ua = String::new();
        decode_into(r.get(Field::UserAgent).unwrap(), &mut ua);
        let mut q = String::new();
        decode_utf8_into(r.get(Field::UriQuery).unwrap(), &mut q);
        out = Some((
            r.get(Field::Username).is_none(),
            r.get(Field::Referer).is_none(),
            r.raw(2).map(<[u8]>::to_vec),
            ua,
            q,
        ));
    });
    let (user, referer, raw_user, ua, q) = out.unwrap();
    assert!(user && referer);
    assert_eq!(raw_user.as_deref(), Some(&b"-"[..]));
    assert_eq!(ua, "Mozilla/5.0 (iPhone; CPU)");
    assert_eq!(q, "a=1+2");
}

#[test]
fn field_count_mismatches_and_lines_before_fields() {
    let log = "2022-01-01 00:00:00 1.1.1.1\n\
        \n\
        #Fields: date time c-ip\n\
        2022-01-01 00:00:01 1.1.1.1 extra\n\
        2022-01-01 00:00:02\n\
        2022-01-01 00:00:03 1.1.1.1 \n\
        2022-01-01  00:00:04 1.1.1.1\n\
        2022-01-01 00:00:05 1.1.1.1\n\
        \r\n   \n";
    let (recs, stats) = collect(log.as_bytes(), &opts());
    assert_eq!(recs.len(), 1);
    assert!(recs[0].starts_with("2022-01-01|00:00:05|1.1.1.1|"));
    assert_eq!(
        malformed_lines(&stats),
        [
            (MalformedKind::NoFields, 1),
            (MalformedKind::FieldCount, 4),
            (MalformedKind::FieldCount, 5),
            (MalformedKind::FieldCount, 6),
            (MalformedKind::FieldCount, 7),
        ]
    );
    assert_eq!(stats.lines, 6, "blank lines are not counted");
    assert_eq!(stats.malformed_of(MalformedKind::FieldCount), 4);
    assert_eq!(stats.malformed_of(MalformedKind::NoFields), 1);
    assert_eq!(stats.first_malformed[2].detail, "expected 3 fields, found 2");
}

#[test]
fn default_fields_read_lines_before_any_directive_on_every_path() {
    // A file whose header was cut off, then a directive that takes over.
    let mut log = String::new();
    for i in 0..400 {
        log += &format!(
            "2026-11-24 00:{:02}:{:02} 10.0.0.2 GET /owa/ - 443 CONTOSO\\u{i} 10.1.0.{} Mozilla/5.0 - 200 0 0 {i}\n",
            i / 60,
            i % 60,
            i % 250
        );
    }
    log += "#Fields: date time cs-username\n2026-11-24 01:00:00 late\n";
    let default = ScanOptions { default_fields: Some(Fields::parse(IIS_DEFAULT_FIELDS.as_bytes())), ..opts() };

    let (recs, stats) = collect(log.as_bytes(), &default);
    assert_eq!((recs.len(), stats.malformed_total()), (401, 0));
    assert!(
        recs[7].starts_with("2026-11-24|00:00:07|10.0.0.2|GET|/owa/|<none>|443|CONTOSO\\u7|10.1.0.7|"),
        "{}",
        recs[7]
    );
    assert!(recs[400].starts_with("2026-11-24|01:00:00|late|"), "{}", recs[400]);

    // Chunks, pooled chunks and streams start from the default too.
    let small = ScanOptions { chunk_size: 1000, ..default.clone() };
    let chunked = scan_chunks(log.as_bytes(), &small, Collect::default);
    assert_eq!(chunked.visitors.into_iter().flat_map(|c| c.0).collect::<Vec<_>>(), recs);
    assert_eq!(chunked.stats, stats);
    let pool = VisitorPool::new(Collect::default);
    assert_eq!(w3c::scan_chunks_pooled(log.as_bytes(), &small, &pool), stats);
    let mut pooled = pool.merged(|whole, part| whole.0.extend(part.0)).0;
    pooled.sort();
    let mut sorted = recs.clone();
    sorted.sort();
    assert_eq!(pooled, sorted);
    let mut streamed = Collect::default();
    assert_eq!(scan_reader(log.as_bytes(), &small, &mut streamed).unwrap(), stats);
    assert_eq!(streamed.0, recs);

    // Without a default, the same lines are counted as malformed and reported.
    let (recs, stats) = collect(log.as_bytes(), &opts());
    assert_eq!((recs.len(), stats.malformed_of(MalformedKind::NoFields)), (1, 400));
}

#[test]
fn max_reported_caps_the_kept_list_not_the_counts() {
    let log = "x\ny\nz\n#Fields: a\n1 2\n3 4\n";
    let o = ScanOptions { max_reported: 2, ..ScanOptions::default() };
    let (_, s) = collect(log.as_bytes(), &o);
    assert_eq!(s.malformed_total(), 5);
    assert_eq!(malformed_lines(&s), [(MalformedKind::NoFields, 1), (MalformedKind::NoFields, 2)]);
    assert_eq!(ScanOptions::default().max_reported, 5);
}

fn long_line_log(extra: usize) -> Vec<u8> {
    let mut data = b"#Fields: date time cs-uri-query\r\n2022-01-01 00:00:01 short\r\n".to_vec();
    data.extend_from_slice(b"2022-01-01 00:00:02 ");
    data.resize(data.len() + 64 * 1024 + extra, b'q');
    data.extend_from_slice(b"\r\n#Remark: after\r\n2022-01-01 00:00:03 after\r\n");
    data
}

#[test]
fn over_long_lines_are_skipped_on_every_path() {
    let data = long_line_log(0);
    let (recs, stats) = collect(&data, &opts());
    assert_eq!(recs.len(), 2);
    assert!(recs[1].contains("|after|"));
    assert_eq!(malformed_lines(&stats), [(MalformedKind::TooLong, 3)]);
    assert_eq!((stats.lines, stats.directives), (3, 2));

    // A line of exactly max_line bytes is accepted.
    let mut exact = b"#Fields: q\n".to_vec();
    exact.resize(exact.len() + 64 * 1024, b'q');
    exact.extend_from_slice(b"\r\n");
    assert_eq!(collect(&exact, &opts()).1.malformed_total(), 0);
    let mut over = exact.clone();
    over.insert(20, b'q');
    assert_eq!(malformed_lines(&collect(&over, &opts()).1), [(MalformedKind::TooLong, 2)]);

    // Streamed in small blocks (plain and gzip) and chunked: the same answer.
    let dir = tempfile::tempdir().unwrap();
    for extra in [0, 1, 2, 5000, 300_000] {
        let data = long_line_log(extra);
        let (want, want_stats) = collect(&data, &opts());
        let gz = write(dir.path(), &format!("l{extra}.log.gz"), &gzip_members(&[&data]));
        let plain = write(dir.path(), &format!("l{extra}.log"), &data);
        for chunk in [61, 4096, 1 << 20] {
            for parallel in [true, false] {
                let o = ScanOptions { chunk_size: chunk, parallel, ..opts() };
                for p in [&gz, &plain] {
                    let (got, s) = scan_file(p, &o);
                    assert_eq!(got, want, "{extra} {chunk} {}", p.display());
                    assert_eq!(normalized(s), normalized(want_stats.clone()));
                }
                let mut c = Collect::default();
                let s = scan_reader(&data[..], &o, &mut c).unwrap();
                assert_eq!(c.0, want);
                assert_eq!(s, want_stats);
            }
        }
    }
}

#[test]
fn invalid_utf8_is_not_malformed() {
    let log = b"#Fields: date time cs(User-Agent)\n2022-01-01 00:00:01 Bad\xff\xfe+UA\xc3\n";
    let (recs, stats) = collect(log, &opts());
    assert_eq!(stats.malformed_total(), 0);
    assert_eq!(recs.len(), 1);
    assert!(recs[0].ends_with("Bad\u{fffd}\u{fffd} UA\u{fffd}|2022-01-01T00:00:01Z"), "{}", recs[0]);
}

#[test]
fn gzip_single_and_multi_member() {
    let a: String = HEADER.to_owned() + &(0..300).map(line).collect::<String>();
    let b: String = "#Fields: date time c-ip X-Forwarded-For\n".to_owned()
        + &(0..200)
            .map(|i| format!("2022-01-02 00:00:{:02} 10.0.0.{} 198.51.100.{}\n", i % 60, i % 9, i % 99))
            .collect::<String>();
    let whole = [a.as_bytes(), b.as_bytes()].concat();
    let (want, want_stats) = collect(&whole, &opts());
    assert_eq!(want.len(), 500);
    let dir = tempfile::tempdir().unwrap();
    // Named .log on purpose: detection is by magic bytes.
    let single = write(dir.path(), "single.log", &gzip_members(&[&whole]));
    let multi = write(dir.path(), "multi.gz", &gzip_members(&[a.as_bytes(), b.as_bytes()]));
    for p in [&single, &multi] {
        for parallel in [true, false] {
            let o = ScanOptions { chunk_size: 777, parallel, ..opts() };
            let scan = scan_path(p, &o, Collect::default).unwrap();
            assert_eq!(scan.visitors.len(), 1);
            assert!(scan.stats.compressed);
            assert_eq!(scan.stats.path, *p);
            assert_eq!(scan.visitors[0].0, want);
            assert_eq!(normalized(scan.stats), want_stats);
        }
    }
}

/// What a streaming decoder yields from a damaged stream before it fails.
fn decodable_prefix(gz: &[u8]) -> Vec<u8> {
    let mut d = flate2::read::MultiGzDecoder::new(gz);
    let mut out = Vec::new();
    let mut buf = [0u8; 1];
    loop {
        match d.read(&mut buf) {
            Ok(0) => panic!("the damaged stream decoded cleanly"),
            Ok(_) => out.push(buf[0]),
            Err(_) => return out,
        }
    }
}

#[test]
fn truncated_gzip_keeps_what_came_before() {
    let text: String = HEADER.to_owned() + &(0..2000).map(line).collect::<String>();
    let (all, _) = collect(text.as_bytes(), &opts());
    let gz = gzip_members(&[text.as_bytes(), text.as_bytes()]);
    let dir = tempfile::tempdir().unwrap();
    // Cut inside the first member, inside the second, and just before the trailer ends.
    for cut in [gz.len() / 3, gz.len() * 3 / 4, gz.len() - 3] {
        let prefix = decodable_prefix(&gz[..cut]);
        let complete = prefix.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let (want, want_stats) = collect(&prefix[..complete], &opts());
        let stop_line = prefix[..complete].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        assert!(!want.is_empty() && want.len() <= 2 * all.len());
        let p = write(dir.path(), &format!("cut{cut}.log.gz"), &gz[..cut]);
        for (chunk, parallel) in [(1 << 20, true), (1000, true), (333, false)] {
            let o = ScanOptions { chunk_size: chunk, parallel, ..opts() };
            let scan = scan_path(&p, &o, Collect::default).unwrap();
            let s = &scan.stats;
            assert_eq!(scan.visitors[0].0, want, "cut {cut}");
            assert_eq!(malformed_lines(s), [(MalformedKind::TruncatedGzip, stop_line)]);
            assert_eq!(s.lines, want_stats.lines + 1);
            assert_eq!(s.bytes, prefix.len() as u64);
            assert!(s.first_malformed[0].detail.starts_with("gzip stream ends early"));
        }
    }
}

#[test]
fn collect_paths_walks_folders_and_keeps_named_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = write(d, "W3SVC1/u_ex210101_x.log", b"");
    let gz = write(d, "W3SVC1/old/ex2101.log.gz", b"");
    let upper = write(d, "W3SVC2/EX210102.LOG", b"");
    write(d, "W3SVC1/notes.txt", b"");
    write(d, "W3SVC1/u_ex210101.log.bak", b"");
    let txt = write(d, "elsewhere/named.txt", b"");
    let got = collect_paths(&[d.join("W3SVC2"), d.to_path_buf(), txt.clone(), x.clone()]).unwrap();
    let mut want = vec![x, gz, upper, txt];
    want.sort();
    assert_eq!(got, want);

    let missing = d.join("nope");
    let err = collect_paths(std::slice::from_ref(&missing)).unwrap_err();
    assert_eq!(err.path(), missing);
    assert!(err.to_string().contains("nope"), "{err}");
    let err = scan_path(&missing, &opts(), Collect::default).unwrap_err();
    assert!(err.to_string().contains(&*missing.to_string_lossy()));
}

#[test]
fn empty_files_and_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "empty.log", b"");
    let (recs, s) = scan_file(&p, &opts());
    assert!(recs.is_empty());
    assert_eq!((s.lines, s.bytes, s.directives), (0, 0, 0));
    let one = write(dir.path(), "one.log", b"#");
    assert_eq!(scan_file(&one, &opts()).1.directives, 1);
    let gz = write(dir.path(), "empty.gz", &gzip_members(&[b""]));
    let (recs, s) = scan_file(&gz, &opts());
    assert!(recs.is_empty() && s.compressed && s.malformed_total() == 0);
}

/// A log exercising everything the chunker must carry across a boundary.
fn tricky_log() -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(b"stray line before fields\n");
    d.extend_from_slice(b"\xEF\xBB\xBF");
    d.extend_from_slice(HEADER.as_bytes());
    for i in 0..3000 {
        match i % 97 {
            0 => d.extend_from_slice(b"#Remark: hourly # marker\r\n"),
            13 => d.extend_from_slice(b"\r\n"),
            29 => d.extend_from_slice(b"2022-01-01 00:00:00 too few\n"),
            41 if i % 2 == 0 => {
                d.extend_from_slice(b"#Fields: date time c-ip X-Forwarded-For\n");
            }
            41 => {
                d.extend_from_slice(b"\xEF\xBB\xBF#Fields: ");
                d.extend_from_slice(&HEADER.as_bytes()[HEADER.find("date time s-ip").unwrap()..]);
            }
            53 => {
                d.resize(d.len() + 70_000, b'z');
                d.extend_from_slice(b"\n");
            }
            61 => d.extend_from_slice(b"x #Fields: not a directive\n"),
            _ if d.ends_with(b"X-Forwarded-For\n") || i % 5 == 0 => d.extend_from_slice(
                format!("2022-01-01 01:00:{:02} 10.0.0.{} 203.0.113.{}\n", i % 60, i % 256, i % 199).as_bytes(),
            ),
            _ => d.extend_from_slice(line(i).as_bytes()),
        }
    }
    d
}

#[test]
fn chunking_is_deterministic() {
    let data = tricky_log();
    let (want, want_stats) = collect(&data, &opts());
    assert!(want.len() > 1000);
    assert!(want.iter().any(|r| r.contains("203.0.113.")));
    for k in MalformedKind::ALL[..3].iter() {
        assert!(want_stats.malformed_of(*k) > 0, "{k}");
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = write(dir.path(), "u_ex220101_x.log", &data);
    let gz =
        write(dir.path(), "u_ex220101_x.log.gz", &gzip_members(&[&data[..data.len() / 2], &data[data.len() / 2..]]));
    for chunk in [1, 7, 1024, 4096, 10_000, 65_536, 100_003, 1 << 20, 1 << 30] {
        let o = ScanOptions { chunk_size: chunk, ..opts() };
        let scan = scan_chunks(&data, &o, Collect::default);
        if chunk <= 10_000 {
            assert!(scan.visitors.len() > 10, "chunk {chunk}");
        }
        let got: Vec<String> = scan.visitors.into_iter().flat_map(|c| c.0).collect();
        assert_eq!(got, want, "chunk {chunk}");
        assert_eq!(scan.stats, want_stats, "chunk {chunk}");
        // Byte-sized gzip blocks only make the test slow, not more thorough.
        let files = if chunk < 1024 { vec![&plain] } else { vec![&plain, &gz] };
        for p in files {
            let (got, s) = scan_file(p, &o);
            assert_eq!(got, want, "chunk {chunk} {}", p.display());
            assert_eq!(normalized(s), want_stats, "chunk {chunk}");
        }
    }
    // The default cap keeps the first five, whatever the chunking.
    let o = ScanOptions { chunk_size: 1024, ..ScanOptions::default() };
    let s = scan_chunks(&data, &o, Collect::default).stats;
    assert_eq!(s.first_malformed, want_stats.first_malformed[..5]);
}

/// Pooled visitors see every line once, whatever the chunking and whether a
/// file is split or read in order, and a scan makes no more of them than there
/// are worker threads: none per file or chunk.
#[test]
fn pooled_scan_reuses_visitors() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let data = tricky_log();
    let (mut want, want_stats) = collect(&data, &opts());
    want.sort();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..6).map(|i| write(dir.path(), &format!("u_ex22010{i}_x.log"), &data)).collect();
    let threads = 3;
    let workers = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    // Split into chunks scanned in parallel, or read in order chunk by chunk.
    for (chunk, split_above) in [(1024, 0), (65_536, 0), (1 << 30, 0), (1024, u64::MAX), (65_536, u64::MAX)] {
        let o = ScanOptions { chunk_size: chunk, split_above, ..opts() };
        let made = AtomicUsize::new(0);
        let pool = VisitorPool::new(|| {
            made.fetch_add(1, Ordering::Relaxed);
            Collect::default()
        });
        let stats: Vec<FileStats> = workers.install(|| {
            use rayon::prelude::*;
            files.par_iter().map(|p| scan_path_pooled(p, &o, &pool).unwrap()).collect()
        });
        for (s, p) in stats.iter().zip(&files) {
            assert_eq!(s.path, *p);
            assert_eq!(normalized(s.clone()), want_stats, "chunk {chunk} split above {split_above}");
        }
        let mut got = pool.merged(|a, b| a.0.extend(b.0)).0;
        got.sort();
        let expected: Vec<String> = want.iter().flat_map(|r| std::iter::repeat_n(r.clone(), files.len())).collect();
        assert_eq!(got, expected, "chunk {chunk} split above {split_above}");
        let made = made.load(Ordering::Relaxed);
        assert!((1..=threads).contains(&made), "chunk {chunk}: {made} visitors for {threads} threads");
    }
}

#[test]
fn merge_adds_up() {
    let (_, a) = collect(&tricky_log(), &opts());
    let mut t = FileStats::default();
    t.merge(&a);
    t.merge(&a);
    assert_eq!(t.lines, 2 * a.lines);
    assert_eq!(t.bytes, 2 * a.bytes);
    assert_eq!(t.malformed_total(), 2 * a.malformed_total());
    assert_eq!(t.first_malformed.len(), 2 * a.first_malformed.len());
}

#[test]
fn malformed_kind_names() {
    let names: Vec<_> = MalformedKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names, ["field-count", "no-fields", "too-long", "truncated-gzip", "bad-value"]);
    for (i, k) in MalformedKind::ALL.iter().enumerate() {
        assert_eq!(*k as usize, i);
    }
}

/// The fuzz target's oracle on generated input: every path agrees on every input.
#[test]
fn random_inputs_agree_on_every_path() {
    const PIECES: &[&[u8]] = &[
        b" ",
        b"  ",
        b"\n",
        b"\r\n",
        b"\r",
        b"-",
        b"+",
        b"x",
        b"yy",
        b"#",
        b"#Fields: a b\n",
        b"#Fields: date time\n",
        b"#Fields:\n",
        b"\xEF\xBB\xBF",
        b"\xEF\xBB\xBF#Fields: a\r\n",
        b"2022-01-01 00:00:01",
        b"#Remark: x\n",
        b"\xff",
        b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    ];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..1500 {
        let n = next() % 60;
        let mut data = Vec::new();
        for _ in 0..n {
            data.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        let k = next();
        let opts = ScanOptions {
            chunk_size: 1 + (k % 40) as usize,
            max_line: 8 + (k >> 8) as usize % 40,
            max_reported: (k >> 16) as usize % 4,
            parallel: true,
            split_above: 0,
            default_fields: ((k >> 24) % 2 == 1).then(|| Fields::parse(b"date time")),
        };
        let (want, stats) = collect(&data, &opts);
        assert!(stats.malformed_total() <= stats.lines);
        let chunked = scan_chunks(&data, &opts, Collect::default);
        let got: Vec<String> = chunked.visitors.into_iter().flat_map(|c| c.0).collect();
        let show = String::from_utf8_lossy(&data);
        assert_eq!(got, want, "{opts:?} {show:?}");
        assert_eq!(chunked.stats, stats, "{opts:?} {show:?}");
        for parallel in [true, false] {
            let o = ScanOptions { parallel, ..opts.clone() };
            let mut c = Collect::default();
            let s = scan_reader(&data[..], &o, &mut c).unwrap();
            assert_eq!(c.0, want, "{o:?} {show:?}");
            assert_eq!(s, stats, "{o:?} {show:?}");
        }
    }
}
