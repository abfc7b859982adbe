//! The floor under `casguard audit`: the same parallel scan of the same files
//! (line and field splitting, `#Fields` tracking, chunking, pooled visitors),
//! with a visitor that only counts records. Whatever audit takes beyond this
//! is classification, aggregation and the report. bench/compare.sh runs it.
//!
//!     cargo run --release -p audit --example read_floor -- LOGS...

use std::path::PathBuf;

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
    let (count, files) =
        audit::scan_records(&paths, &ScanOptions::default(), || Count(0), |a: &mut Count, b| a.0 += b.0, &|_| {})?;
    let malformed: u64 = files.iter().map(|f| f.malformed_total()).sum();
    println!("{} records, {malformed} malformed, {} files", count.0, files.len());
    Ok(())
}
