//! Throughput of the HttpProxy reader on ~50 MB of lines shaped like the
//! public Exchange 2016 files (74 fields, ~900 bytes a line), next to the
//! `csv` crate reading the same bytes into one reused `ByteRecord`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use httpproxy::{scan_bytes, Field, Record};
use w3c::ScanOptions;

#[path = "../../w3c/benches/corpus/mod.rs"]
mod corpus;

const SAMPLE: &str = include_str!("../../../tests/data/httpproxy/artefacts-help/Eas/HttpProxy_2023011116-1.LOG");

/// ~`target` bytes: the sample's header, then its Eas line with the time,
/// request id, user and status varied.
fn corpus(target: usize) -> Vec<u8> {
    let mut lines = SAMPLE.lines();
    let mut out = String::with_capacity(target + 4096);
    for header in lines.by_ref().take(5) {
        out.push_str(header);
        out.push_str("\r\n");
    }
    let line = lines.next().expect("a data line");
    let rest = &line[line.find(",15,1,").unwrap()..];
    corpus::fill(&mut out, target, |out, x, [h, m, s]| {
        out.push_str(&format!(
            "2023-01-11T{h:02}:{m:02}:{s:02}.{:03}Z,{:08x}-01f1-4067-9002-{:012x}",
            x % 1000,
            x >> 32,
            x & 0xffff_ffff_ffff
        ));
        out.push_str(&rest.replace("DOMAIN\\username", &format!("DOMAIN\\user{}", x >> 20 & 0x3ff)));
        out.push_str("\r\n");
    });
    out.into_bytes()
}

/// Touches what a consumer reads: user agent, user, auth type, status, timestamp.
#[derive(Default)]
struct Touch(u64);

impl Touch {
    fn see(&mut self, r: &Record<'_>) {
        let n = |f| r.get(f).map_or(0, <[u8]>::len) as u64;
        self.0 += n(Field::UserAgent)
            + n(Field::AuthenticatedUser)
            + n(Field::AuthenticationType)
            + n(Field::HttpStatus)
            + n(Field::UrlQuery);
        self.0 += r.timestamp().unwrap_or(0) as u64;
    }
}

fn bench(c: &mut Criterion) {
    let data = corpus(50 << 20);
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    let mut g = c.benchmark_group("httpproxy");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("scan_bytes", |b| {
        b.iter(|| {
            let mut t = Touch::default();
            let stats = scan_bytes(&data, &ScanOptions::default(), &mut |r: &Record<'_>| t.see(r));
            assert_eq!(stats.lines + 5, lines);
            black_box(t.0)
        })
    });
    g.bench_function("csv_byte_record", |b| {
        b.iter(|| {
            let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&data[..]);
            let mut record = csv::ByteRecord::new();
            let mut n = 0u64;
            while rdr.read_byte_record(&mut record).unwrap_or(false) {
                n += record.len() as u64 + record.get(16).map_or(0, <[u8]>::len) as u64;
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
