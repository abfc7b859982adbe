//! Throughput of the W3C reader on ~50 MB of realistic Exchange front-end lines,
//! next to a naive `lines()` + `split(' ')` + `Vec<String>` baseline.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use w3c::{scan_bytes, scan_chunks, Field, Record, ScanOptions, Visitor};

mod corpus;

const HEADER: &str = "#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n#Date: 2024-03-01 00:00:00\r\n#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken X-Forwarded-For\r\n";

const REQUESTS: &[(&str, &str, &str)] = &[
    ("POST", "/Microsoft-Server-ActiveSync/default.eas", "Cmd=Sync&User=CONTOSO%5Cjdoe&DeviceId=ABCDEF0123456789&DeviceType=iPhone&Log=V161_HH:mail.contoso.com_SmtpAdrs:jdoe%40contoso.com_Fet:6014_"),
    ("POST", "/EWS/Exchange.asmx", "-"),
    ("POST", "/mapi/emsmdb/", "mailboxId=0a1b2c3d-1111-2222-3333-444455556666@contoso.com"),
    ("GET", "/owa/", "ExchClientVer=15.2.1118"),
    ("RPC_IN_DATA", "/rpc/rpcproxy.dll", "ex01.contoso.com:6001&CorrelationID=<empty>;&RequestId=5b0f0a5e"),
    ("GET", "/autodiscover/autodiscover.xml", "-"),
];

const AGENTS: &[&str] = &[
    "Outlook-iOS-Android/1.0",
    "Microsoft+Office/16.0+(Windows+NT+10.0;+Microsoft+Outlook+16.0.17328;+Pro)",
    "Apple-iPhone14C2/2104.92",
    "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+Chrome/122.0+Safari/537.36",
    "MSRPC",
];

/// ~`target` bytes of log: one header, then lines cycling through typical requests.
fn corpus(target: usize) -> Vec<u8> {
    let mut out = String::with_capacity(target + 1024);
    out.push_str(HEADER);
    corpus::fill(&mut out, target, |out, x, [h, m, s]| {
        let (method, stem, query) = REQUESTS[(x % REQUESTS.len() as u64) as usize];
        let ua = AGENTS[(x >> 8) as usize % AGENTS.len()];
        let user = if x % 11 == 0 { "-".to_owned() } else { format!("CONTOSO\\user{}", x >> 20 & 0x3ff) };
        out.push_str(&format!(
            "2024-03-01 {h:02}:{m:02}:{s:02} 10.0.1.5 {method} {stem} {query} 443 {user} 10.0.{}.{} {ua} - {} 0 0 {} {}\r\n",
            x >> 30 & 0xff,
            x >> 40 & 0xff,
            [200, 200, 200, 401, 302, 500][(x >> 50) as usize % 6],
            x >> 12 & 0xfff,
            if x % 3 == 0 { "203.0.113.7" } else { "-" },
        ));
    });
    out.into_bytes()
}

/// Touches what a real consumer reads: the user agent, user, status and timestamp.
#[derive(Default)]
struct Touch(u64);

impl Visitor for Touch {
    fn record(&mut self, r: &Record<'_>) {
        self.0 += r.get(Field::UserAgent).map_or(0, <[u8]>::len) as u64;
        self.0 += r.get(Field::Username).map_or(0, <[u8]>::len) as u64;
        self.0 += r.get(Field::Status).map_or(0, |s| u64::from(s[0]));
        self.0 += r.timestamp().unwrap_or(0) as u64 & 1;
    }
}

/// What a first attempt looks like: UTF-8 check, `lines()`, a `Vec<String>` per line.
fn naive(data: &[u8]) -> u64 {
    let text = std::str::from_utf8(data).unwrap();
    let mut fields = 0;
    let mut sum = 0u64;
    for line in text.lines() {
        if let Some(names) = line.strip_prefix("#Fields: ") {
            fields = names.split(' ').count();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let parts: Vec<String> = line.split(' ').map(String::from).collect();
        if parts.len() == fields {
            sum += parts[9].len() as u64 + parts[7].len() as u64;
        }
    }
    sum
}

fn bench(c: &mut Criterion) {
    let data = corpus(50 << 20);
    let mut g = c.benchmark_group("w3c");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.measurement_time(std::time::Duration::from_secs(4));
    let sequential = ScanOptions { parallel: false, ..ScanOptions::default() };
    g.bench_function("scan_bytes", |b| {
        b.iter(|| {
            let mut t = Touch::default();
            let s = scan_bytes(black_box(&data), &sequential, &mut t);
            assert_eq!(s.malformed_total(), 0);
            t.0
        })
    });
    g.bench_function("scan_chunks_parallel", |b| {
        b.iter(|| {
            let scan = scan_chunks(black_box(&data), &ScanOptions::default(), Touch::default);
            scan.visitors.iter().map(|t| t.0).sum::<u64>()
        })
    });
    g.bench_function("naive_split_vec_string", |b| b.iter(|| naive(black_box(&data))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
