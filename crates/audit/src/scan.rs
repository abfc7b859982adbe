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

/// Scan `paths` in parallel, files and chunks alike, into one visitor: each worker
/// reuses its visitor and finished ones are combined with `merge`, so memory holds a
/// few visitors whatever the number of files and chunks. `on_file` is called as each
/// file finishes (for progress), from any thread. Statistics come back in path order.
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
    M: Fn(&mut V, V) + Sync,
{
    type Acc<V> = (Option<V>, Vec<(usize, FileStats)>);
    let combine = |(a, mut sa): Acc<V>, (b, sb): Acc<V>| -> Acc<V> {
        sa.extend(sb);
        let v = match (a, b) {
            (Some(mut a), Some(b)) => {
                merge(&mut a, b);
                Some(a)
            }
            (a, b) => a.or(b),
        };
        (v, sa)
    };
    let (visitor, mut stats) = paths
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            let (v, stats) = w3c::scan_path_merged(path, options, &make, &merge)?;
            on_file(path);
            Ok((Some(v), vec![(i, stats)]))
        })
        .try_reduce(|| (None, Vec::new()), |a, b| Ok(combine(a, b)))?;
    stats.sort_by_key(|(i, _)| *i);
    Ok((visitor.unwrap_or_else(make), stats.into_iter().map(|(_, s)| s).collect()))
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
