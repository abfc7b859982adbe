//! Reading HttpProxy lines into a reused `Request` allocates nothing per
//! line: the reader lends each line, the interpreter copies into strings
//! already grown to size. Its own test binary, because it installs a
//! counting allocator.

#[path = "../../../tests/support/counting.rs"]
mod counting;

use exchange::{Interpreter, Request};
use httpproxy::Record;
use w3c::ScanOptions;

const SAMPLES: &[&str] = &[
    include_str!("../../../tests/data/httpproxy/artefacts-help/Eas/HttpProxy_2023011116-1.LOG"),
    include_str!("../../../tests/data/httpproxy/artefacts-help/Mapi/HttpProxy_2023010601-1.LOG"),
    include_str!("../../../tests/data/httpproxy/artefacts-help/Ecp/HttpProxy_2023010611-1.LOG"),
    include_str!("../../../tests/data/httpproxy/artefacts-help/PowerShell/HttpProxy_2023011116-1.LOG"),
];

/// One header and the public data lines, `times` over.
fn log(times: usize) -> Vec<u8> {
    let mut out: String = SAMPLES[0].lines().take(5).map(|l| format!("{l}\r\n")).collect();
    for _ in 0..times {
        for sample in SAMPLES {
            for line in sample.lines().skip(5) {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
    }
    out.into_bytes()
}

fn allocations_reading(data: &[u8], it: &Interpreter, req: &mut Request) -> (u64, u64) {
    let before = counting::allocations();
    let mut users = 0;
    let stats = httpproxy::scan_bytes(data, &ScanOptions::default(), &mut |r: &Record<'_>| {
        it.read_proxy_record(r, req);
        users += u64::from(!req.user.is_empty());
    });
    assert_eq!(stats.malformed_total(), 0);
    (counting::allocations() - before, users)
}

#[test]
fn reading_lines_allocates_nothing_per_line() {
    let it = Interpreter::builtin();
    let mut req = Request::default();
    let (small, large) = (log(10), log(110));
    // Warm up: strings grow to size, the thread's memos fill.
    allocations_reading(&large, &it, &mut req);
    // The counter works.
    let before = counting::allocations();
    std::hint::black_box(Vec::<u8>::with_capacity(16));
    assert!(counting::allocations() > before);
    let (a, users_small) = allocations_reading(&small, &it, &mut req);
    let (b, users_large) = allocations_reading(&large, &it, &mut req);
    assert_eq!(users_large, users_small * 11);
    assert!(users_small > 0);
    // A scan allocates its span table and statistics once, whatever its length.
    assert_eq!(a, b, "{} more lines cost {} more allocations", 100 * 7, b as i64 - a as i64);
}
