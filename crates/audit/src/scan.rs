//! Reading many log files in parallel into a few pooled visitors.

use std::path::{Path, PathBuf};

use exchange::{Interpreter, Request};
use rayon::prelude::*;
use w3c::{FileStats, Record, ScanOptions, Visitor, VisitorPool};

use crate::aggregate::Aggregate;

/// Turns each record into a [`Request`] and adds it to an [`Aggregate`].
/// The request is reused from line to line.
pub struct Collector<'a> {
    interpreter: &'a Interpreter,
    request: Request,
    pub aggregate: Aggregate,
}

impl<'a> Collector<'a> {
    pub fn new(interpreter: &'a Interpreter) -> Self {
        Collector { interpreter, request: Request::default(), aggregate: Aggregate::default() }
    }
}

impl Visitor for Collector<'_> {
    fn record(&mut self, record: &Record<'_>) {
        self.interpreter.read_record(record, &mut self.request);
        self.aggregate.add(&self.request, self.interpreter.catalog());
    }
}

/// Scan `paths` in parallel, files and chunks alike, into one visitor. Workers
/// reuse visitors from a pool, so memory holds about one per thread whatever the
/// number of files and chunks, and `merge` combines them once at the end.
/// `on_file` is called as each file finishes (for progress), from any thread.
/// Statistics come back in path order.
pub fn scan_files<V, F, M>(
    paths: &[PathBuf],
    options: &ScanOptions,
    make: F,
    merge: M,
    on_file: &(dyn Fn(&Path) + Sync),
) -> Result<(V, Vec<FileStats>), w3c::Error>
where
    V: Visitor,
    F: Fn() -> V + Sync,
    M: Fn(&mut V, V),
{
    // Split a file into chunks scanned in parallel only when it is large next
    // to a thread's share of the work: with many files, reading each in order
    // keeps every thread busy and spares the search for each chunk's `#Fields`.
    // One thread gains nothing from splitting.
    let threads = rayon::current_num_threads() as u64;
    let share = match threads {
        1 => u64::MAX,
        _ => paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum::<u64>() / (threads * 8),
    };
    let options = &ScanOptions { split_above: options.split_above.max(share), ..options.clone() };
    let pool = VisitorPool::new(make);
    let stats = paths
        .par_iter()
        .map(|path| {
            let stats = w3c::scan_path_pooled(path, options, &pool)?;
            on_file(path);
            Ok(stats)
        })
        .collect::<Result<Vec<_>, w3c::Error>>()?;
    Ok((pool.merged(merge), stats))
}

/// Read `paths` into one aggregate.
pub fn audit_files(
    paths: &[PathBuf],
    options: &ScanOptions,
    interpreter: &Interpreter,
    on_file: &(dyn Fn(&Path) + Sync),
) -> Result<(Aggregate, Vec<FileStats>), w3c::Error> {
    let (collector, files) = scan_files(
        paths,
        options,
        || Collector::new(interpreter),
        |a: &mut Collector<'_>, b: Collector<'_>| a.aggregate.merge(b.aggregate),
        on_file,
    )?;
    Ok((collector.aggregate, files))
}
