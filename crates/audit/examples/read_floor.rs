//! The floor under `casguard audit`: the same parallel scan of the same files
//! (line and field splitting, `#Fields` tracking, chunking, pooled visitors),
//! with a visitor that only counts records. Whatever audit takes beyond this
//! is classification, aggregation and the report. bench/compare.sh runs it.
//! IIS W3C and HttpProxy files alike, each told by its content.
//!
//!     cargo run --release -p audit --example read_floor -- LOGS...

use std::path::PathBuf;

use rayon::prelude::*;
use w3c::{Record, ScanOptions, Visitor};

struct Count(u64);

impl Visitor for Count {
    fn record(&mut self, _: &Record<'_>) {
        self.0 += 1;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let inputs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if inputs.is_empty() {
        return Err("usage: read_floor LOGS...".into());
    }
    let paths = w3c::collect_paths(&inputs)?;
    let plan = audit::Plan::new(&paths, &ScanOptions::default())?;
    let (proxy, iis): (Vec<_>, Vec<_>) =
        paths.into_iter().zip(plan.formats()).partition(|(_, f)| **f == audit::LogFormat::HttpProxy);
    let iis: Vec<PathBuf> = iis.into_iter().map(|(p, _)| p).collect();
    let (count, mut files) =
        audit::scan_records(&iis, &ScanOptions::default(), || Count(0), |a: &mut Count, b| a.0 += b.0, &|_| {})?;
    let proxy_files = proxy
        .par_iter()
        .map(|(path, _)| {
            let mut n = 0u64;
            let stats = httpproxy::scan_file(path, &ScanOptions::default(), &mut |_: &httpproxy::Record<'_>| n += 1)?;
            Ok((n, stats))
        })
        .collect::<Result<Vec<_>, w3c::Error>>()?;
    let records = count.0 + proxy_files.iter().map(|(n, _)| n).sum::<u64>();
    files.extend(proxy_files.into_iter().map(|(_, s)| s));
    let malformed: u64 = files.iter().map(|f| f.malformed_total()).sum();
    println!("{records} records, {malformed} malformed, {} files", files.len());
    Ok(())
}
