//! A visitor that stops (its output failed) stops the scan: no line is read
//! for it after that, whichever way the input is read.

mod common;

use std::io::Write;

use common::gzip;
use w3c::{Record, ScanOptions, Visitor, VisitorPool};

/// Takes `limit` records, then stops.
#[derive(Default)]
struct Limited {
    seen: u64,
    limit: u64,
}

impl Visitor for Limited {
    fn record(&mut self, _: &Record<'_>) {
        assert!(self.seen < self.limit, "a record after the visitor stopped");
        self.seen += 1;
    }

    fn stopped(&self) -> bool {
        self.seen >= self.limit
    }
}

fn log(lines: usize) -> Vec<u8> {
    let mut log = b"#Fields: date time cs-username\r\n".to_vec();
    for i in 0..lines {
        writeln!(log, "2026-11-02 10:00:00 user{i}\r").unwrap();
    }
    log
}

#[test]
fn a_stopped_visitor_stops_every_kind_of_scan() {
    let data = log(50_000);
    for parallel in [false, true] {
        let opts = ScanOptions { parallel, chunk_size: 4096, ..ScanOptions::default() };
        let mut v = Limited { limit: 10, ..Limited::default() };
        let stats = w3c::scan_bytes(&data, &opts, &mut v);
        assert_eq!((v.seen, stats.lines), (10, 10), "scan_bytes, parallel {parallel}");

        for input in [data.clone(), gzip(&data)] {
            let mut v = Limited { limit: 10, ..Limited::default() };
            let stats = w3c::scan_reader(&input[..], &opts, &mut v).unwrap();
            assert_eq!((v.seen, stats.lines), (10, 10), "scan_reader, parallel {parallel}");
        }

        let pool = VisitorPool::new(|| Limited { limit: 10, ..Limited::default() });
        let stats = w3c::scan_chunks_pooled(&data, &ScanOptions { split_above: 0, ..opts.clone() }, &pool);
        assert!(pool.stopped());
        // Parts already started finish their chunk; no further part starts.
        assert!(stats.lines < 5_000, "pooled, parallel {parallel}: {} lines read", stats.lines);
    }
}
