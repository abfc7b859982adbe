//! Scans arbitrary bytes through every input path and checks they agree: one
//! sequential pass, line-aligned chunks, pooled visitors (split into parallel
//! chunks, and read in order), and streaming in small blocks.
//!
//! Run with `-detect_leaks=0`: the streaming path decodes on a second thread,
//! and LeakSanitizer reports std's per-thread channel context as a leak.
#![no_main]

mod limits;

use libfuzzer_sys::fuzz_target;
use w3c::{Field, Record, ScanOptions, Visitor};

/// Touches every field, every well-known field and the timestamp, and keeps a digest.
#[derive(Default)]
struct Touch(Vec<u64>);

impl Visitor for Touch {
    fn record(&mut self, r: &Record<'_>) {
        let mut h: u64 = r.line().len() as u64;
        // The fields are the line split at every space, no more, no fewer.
        let mut joined = Vec::with_capacity(r.line().len());
        for i in 0..r.fields().len() {
            let field = r.raw(i).expect("a field for every column");
            assert!(!field.contains(&b' '), "a space inside field {i}");
            if i > 0 {
                joined.push(b' ');
            }
            joined.extend_from_slice(field);
            h = h.wrapping_mul(31).wrapping_add(field.len() as u64);
        }
        assert_eq!(joined, r.line(), "fields rejoined are the line");
        for f in Field::ALL {
            h = h.wrapping_mul(31).wrapping_add(r.get(f).map_or(3, <[u8]>::len) as u64);
        }
        // Fields read as text are the fields' bytes, whenever they are valid
        // UTF-8. (`None`: invalid bytes somewhere between the first and the last.)
        let asked = [Field::Method, Field::UriStem, Field::UriQuery];
        if let Some(texts) = r.texts(asked) {
            for (text, f) in texts.iter().zip(asked) {
                assert_eq!(*text, r.get(f).map(|v| std::str::from_utf8(v).expect("a field of a valid stretch")));
            }
        }
        let mut s = String::new();
        if let Some(ua) = r.get(Field::UserAgent) {
            w3c::decode_into(ua, &mut s);
        }
        if let Some(t) = r.timestamp() {
            w3c::time::write_rfc3339(t, &mut s);
            assert_eq!(w3c::time::parse_rfc3339(&w3c::time::format_rfc3339(t)), Some(t));
        }
        // A table with a date and a time never hands on a line without its time.
        let dated = r.fields().index(Field::Date).is_some() && r.fields().index(Field::Time).is_some();
        assert_eq!(r.timestamp().is_some(), dated);
        for f in [Field::Status, Field::SubStatus, Field::ServerPort] {
            assert_eq!(r.number(f).is_some(), r.get(f).is_some(), "checked numbers parse");
        }
        self.0.push(h.wrapping_add(s.len() as u64));
    }
}

fuzz_target!(|data: &[u8]| {
    let (limits, data) = limits::small_limits(data);
    let opts = ScanOptions {
        parallel: true,
        split_above: 0,
        // Odd lengths also read lines before any `#Fields` with a default table.
        default_fields: (data.len() % 2 == 1).then(|| w3c::Fields::parse(b"date time cs-uri-stem")),
        ..limits
    };
    let mut seq = Touch::default();
    let stats = w3c::scan_bytes(data, &opts, &mut seq);
    assert!(stats.malformed_total() <= stats.lines);

    let chunked = w3c::scan_chunks(data, &opts, Touch::default);
    let records: Vec<u64> = chunked.visitors.into_iter().flat_map(|t| t.0).collect();
    assert_eq!(records, seq.0);
    assert_eq!(chunked.stats, stats);

    // Pooled: which visitor sees which chunk depends on scheduling, so compare
    // the records as a multiset; read in order, one visitor sees them all in turn.
    for split_above in [0, u64::MAX] {
        let pool = w3c::VisitorPool::new(Touch::default);
        let s = w3c::scan_chunks_pooled(data, &ScanOptions { split_above, ..opts.clone() }, &pool);
        assert_eq!(s, stats);
        let mut pooled = pool.merged(|whole, part| whole.0.extend(part.0)).0;
        if split_above == u64::MAX {
            assert_eq!(pooled, seq.0);
        }
        let mut expected = seq.0.clone();
        pooled.sort_unstable();
        expected.sort_unstable();
        assert_eq!(pooled, expected);
    }

    // Plain input streams; gzip magic would switch to the decoder, which is fine too.
    if let Some(order) = w3c::utf16::mark(data) {
        // UTF-16 streams as the UTF-8 it decodes to reads in memory.
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut w3c::utf16::Utf16Reader::new(&data[2..], order), &mut text).unwrap();
        let mut decoded = Touch::default();
        let d = w3c::scan_bytes(&text, &opts, &mut decoded);
        let mut streamed = Touch::default();
        let s = w3c::scan_reader(data, &opts, &mut streamed).expect("in-memory read");
        assert_eq!(streamed.0, decoded.0);
        assert_eq!(s, d);
    } else if !data.starts_with(&[0x1f, 0x8b]) {
        let mut streamed = Touch::default();
        let s = w3c::scan_reader(data, &opts, &mut streamed).expect("in-memory read");
        assert_eq!(streamed.0, seq.0);
        assert_eq!(s, stats);
    }
});
