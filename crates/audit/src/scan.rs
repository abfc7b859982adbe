//! Reading many log files in parallel into per-chunk visitors.

use std::path::{Path, PathBuf};

use exchange::{Interpreter, Request};
use rayon::prelude::*;
use w3c::{FileStats, Record, ScanOptions, Visitor};

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

/// The visitors of every chunk of every file, in path order, and each file's statistics.
pub struct Scanned<V> {
    pub visitors: Vec<V>,
    pub files: Vec<FileStats>,
}

/// Scan `paths` in parallel, files and chunks alike. `on_file` is called as each file
/// finishes (for progress); it may be called from any thread.
pub fn scan_files<V, F>(
    paths: &[PathBuf],
    options: &ScanOptions,
    make: F,
    on_file: &(dyn Fn(&Path) + Sync),
) -> Result<Scanned<V>, w3c::Error>
where
    V: Visitor,
    F: Fn() -> V + Sync,
{
    let results: Vec<_> = paths
        .par_iter()
        .map(|path| {
            let scan = w3c::scan_path(path, options, &make);
            on_file(path);
            scan
        })
        .collect::<Result<_, _>>()?;
    let mut scanned = Scanned { visitors: Vec::new(), files: Vec::with_capacity(results.len()) };
    for result in results {
        scanned.visitors.extend(result.visitors);
        scanned.files.push(result.stats);
    }
    Ok(scanned)
}

/// Read `paths` into one aggregate.
pub fn audit_files(
    paths: &[PathBuf],
    options: &ScanOptions,
    interpreter: &Interpreter,
    on_file: &(dyn Fn(&Path) + Sync),
) -> Result<(Aggregate, Vec<FileStats>), w3c::Error> {
    let scanned = scan_files(paths, options, || Collector::new(interpreter), on_file)?;
    // Merge in a balanced tree: fewer large maps are moved than by folding left.
    let aggregate = scanned.visitors.into_par_iter().map(|c| c.aggregate).reduce(Aggregate::default, |mut a, b| {
        a.merge(b);
        a
    });
    Ok((aggregate, scanned.files))
}
