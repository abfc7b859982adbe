//! The read → classify → aggregate loop allocates nothing per line once the
//! users and devices it sees are known. Its own test binary, because it
//! installs a counting allocator.

#[path = "../../../tests/support/counting.rs"]
mod counting;

use audit::Collector;
use exchange::{Feed, Interpreter};
use w3c::ScanOptions;

/// Realistic lines under one `#Fields` header: the lines after the last
/// `#Fields` directive of every generated file that uses the front-end
/// default fields.
fn generated_body() -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = casguard_loggen::Options::new(dir.path());
    opts.seed = 13;
    opts.gzip = casguard_loggen::GzipMode::None;
    opts.malformed = 0;
    casguard_loggen::generate(&opts).unwrap();
    let mut header: Option<Vec<u8>> = None;
    let mut body = Vec::new();
    for file in w3c::collect_paths(&[dir.path().to_path_buf()]).unwrap() {
        let text = std::fs::read(&file).unwrap();
        let at = text.windows(8).rposition(|w| w == b"#Fields:").unwrap();
        let end = at + text[at..].iter().position(|&b| b == b'\n').unwrap() + 1;
        let fields = text[at..end].to_vec();
        if header.get_or_insert_with(|| fields.clone()) == &fields {
            body.extend_from_slice(&text[end..]);
        }
    }
    (header.unwrap(), body)
}

#[test]
fn steady_state_allocates_nothing_per_line() {
    let (header, body) = generated_body();
    let once: Vec<u8> = [header.as_slice(), &body].concat();
    let four: Vec<u8> = [header.as_slice(), &body, &body, &body, &body].concat();
    let interpreter = Interpreter::builtin();
    let opts = ScanOptions { parallel: false, ..ScanOptions::default() };
    let mut collector = Feed::new(&interpreter, Collector::new(interpreter.catalog()));
    // First pass: every user, device, user agent and source becomes known.
    let first = w3c::scan_bytes(&once, &opts, &mut collector);
    assert!(first.lines > 1_000, "{} lines", first.lines);
    assert_eq!(first.malformed_total(), 0);

    let count = |data: &[u8], collector: &mut Feed<'_, Collector<'_>>| {
        let before = counting::allocations();
        let stats = w3c::scan_bytes(data, &opts, collector);
        (counting::allocations() - before, stats.lines)
    };
    let (allocations_once, lines_once) = count(&once, &mut collector);
    let (allocations_four, lines_four) = count(&four, &mut collector);
    assert_eq!(lines_four, 4 * lines_once);
    // Whatever a pass allocates (the parser, the header) does not grow with its lines.
    assert_eq!(
        allocations_four,
        allocations_once,
        "{} more allocations for {} more lines",
        allocations_four - allocations_once,
        lines_four - lines_once
    );
    assert!(collector.sink().state.people.requests > 0);
}
