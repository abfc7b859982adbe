//! Generated traffic for tests: loggen's IIS logs, read into requests the
//! way audit and simulate read them, with loggen's truth beside them.

use std::path::{Path, PathBuf};

use casguard_loggen::{generate, GzipMode, Options, Truth};
use exchange::{Interpreter, Request, Traffic};

pub struct Generated {
    pub dir: tempfile::TempDir,
    pub truth: Truth,
    pub requests: Vec<Request>,
}

fn logs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            logs(&p, out);
        } else if p.extension().is_some_and(|x| x == "log") {
            out.push(p);
        }
    }
}

/// Three days of 40 users' front-end traffic (seed 1), every request read.
pub fn generated() -> Generated {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(dir.path().join("logs"));
    opts.gzip = GzipMode::None;
    opts.backend = false;
    opts.malformed = 0;
    let truth = generate(&opts).unwrap();
    let requests = read_logs(&dir.path().join("logs"));
    assert!(requests.len() > 1000, "{} requests", requests.len());
    Generated { dir, truth, requests }
}

/// The requests people made (what loggen's truth counts).
pub fn people(requests: &[Request]) -> impl Iterator<Item = &Request> {
    requests.iter().filter(|r| r.traffic == Traffic::Person)
}

/// The example logs' requests (`examples/logs`), read as simulate reads them.
pub fn example_logs() -> Vec<Request> {
    read_logs(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/logs"))
}

/// The requests of every log under `dir`, file by file in name order, read
/// as simulate reads them.
fn read_logs(dir: &Path) -> Vec<Request> {
    let mut files = Vec::new();
    logs(dir, &mut files);
    files.sort();
    let interpreter = Interpreter::builtin();
    let opts = w3c::ScanOptions { parallel: false, ..w3c::ScanOptions::default() };
    let mut requests = Vec::new();
    for f in &files {
        let mut visit = |rec: &w3c::Record<'_>| {
            let mut r = Request::default();
            interpreter.read_record(rec, &mut r);
            requests.push(r);
        };
        w3c::scan_file(f, &opts, &mut visit).unwrap();
    }
    requests
}
