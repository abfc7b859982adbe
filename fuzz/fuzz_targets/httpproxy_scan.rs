//! Arbitrary bytes through the HttpProxy reader: one pass over bytes in
//! memory, and the stream read in small blocks, must agree; every record is
//! read into a request by the interpreter, and its fields unquoted, without
//! a panic. The content sniffer must not panic either.
#![no_main]

mod limits;

use exchange::{Interpreter, Request};
use httpproxy::{Field, Record};
use libfuzzer_sys::fuzz_target;
use w3c::ScanOptions;

thread_local! {
    static INTERPRETER: Interpreter = Interpreter::builtin();
}

/// Columns the interpreter reads, so that short lines reach it too.
const HEADER: &[u8] = b"#Fields: DateTime,RequestId,UrlStem,UrlQuery,AuthenticationType,AuthenticatedUser,AnchorMailbox,UserAgent,ClientIpAddress,HttpStatus,Method\n";

/// A digest of what a consumer reads of each record.
fn digest(r: &Record<'_>, out: &mut Vec<u64>) {
    let mut h = r.line().len() as u64;
    for i in 0..r.len() {
        h = h.wrapping_mul(31).wrapping_add(r.field(i).map_or(7, <[u8]>::len) as u64);
    }
    let mut s = String::new();
    for f in Field::ALL {
        r.value_into(f, &mut s);
        if let Some(text) = r.text() {
            let _ = r.get_text(text, f);
        }
    }
    h = h.wrapping_add(s.len() as u64).wrapping_add(r.timestamp().unwrap_or(0) as u64);
    out.push(h);
}

fuzz_target!(|data: &[u8]| {
    let (opts, data) = limits::small_limits(data);
    let _ = httpproxy::is_httpproxy(data);
    let mut whole = Vec::new();
    let stats = httpproxy::scan_bytes(data, &opts, &mut |r: &Record<'_>| digest(r, &mut whole));
    assert!(stats.malformed_total() <= stats.lines);
    assert_eq!(stats.records(), whole.len() as u64);

    // UTF-16 streams decoded (the W3C target checks the decoding).
    if !data.starts_with(&[0x1f, 0x8b]) && w3c::utf16::mark(data).is_none() {
        let mut streamed = Vec::new();
        let s = httpproxy::scan_reader(data, &opts, &mut |r: &Record<'_>| digest(r, &mut streamed))
            .expect("in-memory read");
        assert_eq!(streamed, whole);
        assert_eq!(
            (s.lines, s.directives, s.malformed, &s.first_malformed),
            (stats.lines, stats.directives, stats.malformed, &stats.first_malformed)
        );
    }

    let mut log = HEADER.to_vec();
    log.extend_from_slice(data);
    INTERPRETER.with(|it| {
        let mut req = Request::default();
        httpproxy::scan_bytes(&log, &ScanOptions::default(), &mut |r: &Record<'_>| {
            it.read_proxy_record(r, &mut req);
            assert!(!req.user.bytes().any(|b| b.is_ascii_uppercase()));
        });
    });
});
