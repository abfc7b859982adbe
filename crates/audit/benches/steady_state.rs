//! Lines per second and allocations per line of the audit loop
//! (read → classify → aggregate), against a baseline in the same run: the
//! bare reader with a visitor that does nothing.
//!
//!     cargo bench -p audit --bench steady_state

#[path = "../../../tests/support/counting.rs"]
mod counting;

use std::time::Instant;

use audit::Collector;
use exchange::{Feed, Interpreter};
use w3c::{Record, ScanOptions};

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = casguard_loggen::Options::new(dir.path());
    opts.seed = 42;
    opts.users = 500;
    opts.gzip = casguard_loggen::GzipMode::None;
    opts.target_bytes = Some(100_000_000);
    casguard_loggen::generate(&opts).unwrap();
    let files = w3c::collect_paths(&[dir.path().to_path_buf()]).unwrap();
    let data: Vec<u8> = files.iter().flat_map(|f| std::fs::read(f).unwrap()).collect();
    let scan = ScanOptions { parallel: false, ..ScanOptions::default() };

    let measure = |name: &str, run: &mut dyn FnMut() -> u64| -> f64 {
        run(); // warm up: caches, and every user and device becomes known
        let allocations = counting::allocations();
        let start = Instant::now();
        let lines = run();
        let seconds = start.elapsed().as_secs_f64();
        let allocations = counting::allocations() - allocations;
        let rate = lines as f64 / seconds;
        println!(
            "{name:<28} {:>8.1} MB/s {:>12.0} lines/s {:>10.4} allocations/line",
            data.len() as f64 / seconds / 1e6,
            rate,
            allocations as f64 / lines as f64
        );
        rate
    };

    println!("{} MB, one thread", data.len() / 1_000_000);
    let baseline = measure("reader only (baseline)", &mut || {
        let mut fields = 0u64;
        let stats = w3c::scan_bytes(&data, &scan, &mut |r: &Record<'_>| fields += r.len() as u64);
        std::hint::black_box(fields);
        stats.lines
    });
    let interpreter = Interpreter::builtin();
    let mut request = exchange::Request::default();
    let classify = measure("reader + classify", &mut || {
        let stats = w3c::scan_bytes(&data, &scan, &mut |r: &Record<'_>| {
            interpreter.read_record(r, &mut request);
            std::hint::black_box(&request);
        });
        stats.lines
    });
    let mut collector = Feed::new(&interpreter, Collector::new(interpreter.catalog()));
    let full = measure("reader + classify + aggregate", &mut || w3c::scan_bytes(&data, &scan, &mut collector).lines);
    println!(
        "ratios: classify {:.2}x slower than the bare reader, full loop {:.2}x",
        baseline / classify,
        baseline / full
    );
}
