//! Reading logs into request sinks: the drivers every command's stream goes
//! through. Files and chunks in parallel into pooled sinks merged once at
//! the end ([`scan_requests`]), one file after the other into one sink
//! ([`scan_in_order`]), or each file into a sink of its own
//! ([`scan_each_file`]). The reader of each file is picked here, by its
//! content: IIS W3C or Exchange HttpProxy ([`LogFormat`]); a reader of
//! another format is added here, and no sink changes (see
//! [`exchange::stream`]). When both are read, the `RequestId`s of the
//! HttpProxy lines are gathered first, so that the IIS line of the same
//! request is marked a duplicate (see [`exchange::join`]).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use exchange::join::{guid_key, RequestIds};
use exchange::{Catalog, Feed, Interpreter, LogWanted, Request, RequestSink};
use httpproxy::LogKind;
use rayon::prelude::*;
use w3c::{FileStats, ScanOptions, Visitor, VisitorPool};

use crate::aggregate::Aggregate;

/// Why a scan stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScanError<E> {
    /// A log could not be read.
    #[error(transparent)]
    Read(#[from] w3c::Error),
    /// The sink failed (a write error): nothing was read after it.
    #[error(transparent)]
    Sink(E),
}

/// A sink the readers can hand across threads (every sink, in practice).
pub trait SendSink: RequestSink<Error: Send> + Send {}

impl<S: RequestSink<Error: Send> + Send> SendSink for S {}

/// What a sink adds each request into, given what the adding needs (`C`).
pub trait Accumulate<C: ?Sized> {
    fn add(&mut self, request: &Request, context: &C);

    /// See [`RequestSink::counts_hops_only`].
    fn counts_hops_only(&self) -> bool {
        false
    }

    /// See [`RequestSink::log_tokens`].
    fn log_tokens(&self) -> LogWanted {
        LogWanted::ALL
    }
}

/// A sink that adds every request into `state`: the audit's aggregate
/// ([`Collector`]) or a simulation ([`crate::simulate::SimCollector`]).
pub struct Accumulator<'a, C: ?Sized, T> {
    context: &'a C,
    pub state: T,
}

impl<'a, C: ?Sized, T: Default> Accumulator<'a, C, T> {
    pub fn new(context: &'a C) -> Self {
        Accumulator { context, state: T::default() }
    }
}

impl<C: ?Sized, T: Accumulate<C>> RequestSink for Accumulator<'_, C, T> {
    type Error = Infallible;

    #[inline]
    fn request(&mut self, request: &Request) -> Result<(), Infallible> {
        self.state.add(request, self.context);
        Ok(())
    }

    #[inline]
    fn counts_hops_only(&self) -> bool {
        self.state.counts_hops_only()
    }

    #[inline]
    fn log_tokens(&self) -> LogWanted {
        self.state.log_tokens()
    }
}

/// The audit's sink: every request into an [`Aggregate`].
pub type Collector<'a> = Accumulator<'a, Catalog, Aggregate>;

impl Accumulate<Catalog> for Aggregate {
    #[inline]
    fn add(&mut self, request: &Request, catalog: &Catalog) {
        Aggregate::add(self, request, catalog);
    }

    #[inline]
    fn counts_hops_only(&self) -> bool {
        Aggregate::counts_hops_only(self)
    }

    #[inline]
    fn log_tokens(&self) -> LogWanted {
        Aggregate::LOG_TOKENS
    }
}

/// Scan `paths` in parallel, files and chunks alike, into one record
/// visitor. Workers reuse visitors from a pool, so memory holds about one per
/// thread whatever the number of files and chunks, and `merge` combines them
/// once at the end. No file is started once a visitor has stopped.
/// `on_file` is called as each file finishes (for progress), from any
/// thread. Statistics come back in path order.
pub fn scan_records<V, F, M>(
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
    let read = |_: LogFormat, path: &Path, options: &ScanOptions, pool: &VisitorPool<V, F>| {
        w3c::scan_path_pooled(path, options, pool)
    };
    scan_pooled(paths, &vec![LogFormat::W3c; paths.len()], options, VisitorPool::new(make), merge, on_file, read)
}

/// The formats casguard reads, told apart by content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// IIS W3C extended logs.
    W3c,
    /// Exchange HttpProxy logs.
    HttpProxy,
    /// A log of another kind (see [`httpproxy::LogKind::Other`]): not read,
    /// and said in its [`FileStats::not_read`].
    NotRead,
}

/// Why a file is not read when another file given holds the same bytes.
const COPY: &str = "copy of another file given (the same bytes, read once)";

/// What a scan knows before it reads: each file's format, and the HttpProxy
/// `RequestId`s when IIS lines are read too.
pub struct Plan {
    formats: Vec<LogFormat>,
    /// Why each path is not read, for those of [`LogFormat::NotRead`].
    not_read: Vec<Option<Box<str>>>,
    join: Option<RequestIds>,
}

impl Plan {
    /// Look at each of `paths` (in parallel) for its format, and for copies
    /// of an earlier one (read once, see [`w3c::copies`]), then, when both
    /// formats are there, read the `RequestId` of every HttpProxy line.
    pub fn new(paths: &[PathBuf], options: &ScanOptions) -> Result<Plan, w3c::Error> {
        let kinds = paths.par_iter().map(|p| httpproxy::log_kind_file(p)).collect::<Result<Vec<_>, w3c::Error>>()?;
        let copies = w3c::copies(paths)?;
        let (formats, not_read): (Vec<LogFormat>, _) = kinds
            .into_iter()
            .zip(copies)
            .map(|(kind, copy)| match (kind, copy) {
                (_, Some(_)) => (LogFormat::NotRead, Some(COPY.into())),
                (LogKind::W3c, None) => (LogFormat::W3c, None),
                (LogKind::HttpProxy, None) => (LogFormat::HttpProxy, None),
                (LogKind::Other(what), None) => (LogFormat::NotRead, Some(what)),
            })
            .unzip();
        let both = formats.contains(&LogFormat::W3c) && formats.contains(&LogFormat::HttpProxy);
        let join = if both { Some(request_ids(paths, &formats, options)?) } else { None };
        Ok(Plan { formats, not_read, join })
    }

    /// Say in `stats` (in path order) why the files of another kind were not read.
    fn note_unread(&self, stats: &mut [FileStats]) {
        for (stats, why) in stats.iter_mut().zip(&self.not_read) {
            if why.is_some() {
                stats.not_read.clone_from(why);
            }
        }
    }

    /// The format of each path, in path order.
    pub fn formats(&self) -> &[LogFormat] {
        &self.formats
    }

    /// The HttpProxy `RequestId`s, when IIS lines may duplicate them.
    pub fn join(&self) -> Option<&RequestIds> {
        self.join.as_ref()
    }
}

/// The `RequestId`s of the HttpProxy files among `paths`.
fn request_ids(paths: &[PathBuf], formats: &[LogFormat], options: &ScanOptions) -> Result<RequestIds, w3c::Error> {
    let all = Mutex::new(Vec::new());
    paths.par_iter().zip(formats).filter(|(_, f)| **f == LogFormat::HttpProxy).try_for_each(|(path, _)| {
        let mut ids = Vec::new();
        httpproxy::scan_file(path, options, &mut |r: &httpproxy::Record<'_>| {
            // A 401 is counted from its IIS line (see `RequestIds::mark`).
            if r.get(httpproxy::Field::HttpStatus) == Some(b"401") {
                return;
            }
            if let Some(id) = r.get(httpproxy::Field::RequestId).and_then(guid_key) {
                ids.push(id);
            }
        })?;
        all.lock().unwrap_or_else(std::sync::PoisonError::into_inner).append(&mut ids);
        Ok::<(), w3c::Error>(())
    })?;
    Ok(RequestIds::new(all.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)))
}

/// The requests of `paths`, read as [`scan_records`] reads, into sinks made
/// by `make` and combined with `merge`; then [`RequestSink::finish`].
pub fn scan_requests<S, F, M>(
    paths: &[PathBuf],
    options: &ScanOptions,
    interpreter: &Interpreter,
    make: F,
    merge: M,
    on_file: &(dyn Fn(&Path) + Sync),
) -> Result<(S, Vec<FileStats>), ScanError<S::Error>>
where
    S: SendSink,
    F: Fn() -> S + Sync,
    M: Fn(&mut S, S),
{
    let plan = Plan::new(paths, options)?;
    let pool = VisitorPool::new(|| Feed::new(interpreter, make()).with_join(plan.join()));
    let (feed, mut stats) =
        scan_pooled(paths, plan.formats(), options, pool, |a, b| Feed::merge(a, b, &merge), on_file, read_pooled)?;
    plan.note_unread(&mut stats);
    Ok((feed.finish().map_err(ScanError::Sink)?, stats))
}

/// Read one log file into the feeds of `pool`. With [`read_in_order`], the
/// one place that picks the reader of a file: a reader of another format
/// reads with a feed of the pool (`pool.with(|feed| ...)`).
fn read_pooled<'a, S, F>(
    format: LogFormat,
    path: &Path,
    options: &ScanOptions,
    pool: &VisitorPool<Feed<'a, S>, F>,
) -> Result<FileStats, w3c::Error>
where
    S: SendSink,
    F: Fn() -> Feed<'a, S> + Sync,
{
    match format {
        LogFormat::W3c => w3c::scan_path_pooled(path, options, pool),
        // Exchange rolls these at 10 MB: files in parallel, each in order.
        LogFormat::HttpProxy => pool.with(|feed| httpproxy::scan_file(path, options, feed)),
        LogFormat::NotRead => Ok(FileStats { path: path.to_path_buf(), ..FileStats::default() }),
    }
}

/// Read one log file, in order, into `feed`.
fn read_in_order<S: SendSink>(
    format: LogFormat,
    path: &Path,
    options: &ScanOptions,
    feed: &mut Feed<'_, S>,
) -> Result<FileStats, w3c::Error> {
    match format {
        LogFormat::W3c => w3c::scan_file(path, options, feed),
        LogFormat::HttpProxy => httpproxy::scan_file(path, options, feed),
        LogFormat::NotRead => Ok(FileStats { path: path.to_path_buf(), ..FileStats::default() }),
    }
}

/// The parallel scan of [`scan_records`], reading each file with `read`.
fn scan_pooled<V, F, M, R>(
    paths: &[PathBuf],
    formats: &[LogFormat],
    options: &ScanOptions,
    pool: VisitorPool<V, F>,
    merge: M,
    on_file: &(dyn Fn(&Path) + Sync),
    read: R,
) -> Result<(V, Vec<FileStats>), w3c::Error>
where
    V: Visitor,
    F: Fn() -> V + Sync,
    M: Fn(&mut V, V),
    R: Fn(LogFormat, &Path, &ScanOptions, &VisitorPool<V, F>) -> Result<FileStats, w3c::Error> + Sync,
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
    let stats = paths
        .par_iter()
        .zip(formats)
        .map(|(path, &format)| {
            if pool.stopped() {
                return Ok(FileStats { path: path.clone(), ..FileStats::default() });
            }
            let stats = read(format, path, options, &pool)?;
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
    let catalog = interpreter.catalog();
    let scanned = scan_requests(
        paths,
        options,
        interpreter,
        || Collector::new(catalog),
        |a: &mut Collector<'_>, b: Collector<'_>| a.state.merge(b.state),
        on_file,
    );
    match scanned {
        Ok((mut collector, files)) => {
            collector.state.settle();
            Ok((collector.state, files))
        }
        Err(ScanError::Read(e)) => Err(e),
        Err(ScanError::Sink(never)) => match never {},
    }
}

/// The requests of `paths`, one file after the other and each in order, into
/// `sink`; then [`RequestSink::finish`]. The stream keeps the files' order.
pub fn scan_in_order<S: SendSink>(
    paths: &[PathBuf],
    options: &ScanOptions,
    interpreter: &Interpreter,
    sink: S,
    on_file: &(dyn Fn(&Path) + Sync),
) -> Result<(S, Vec<FileStats>), ScanError<S::Error>> {
    let plan = Plan::new(paths, options)?;
    let mut feed = Feed::new(interpreter, sink).with_join(plan.join());
    let mut stats = Vec::with_capacity(paths.len());
    for (path, &format) in paths.iter().zip(plan.formats()) {
        stats.push(read_in_order(format, path, options, &mut feed)?);
        if feed.stopped() {
            break;
        }
        on_file(path);
    }
    plan.note_unread(&mut stats);
    Ok((feed.finish().map_err(ScanError::Sink)?, stats))
}

/// The requests of each of `paths`, in order, into a sink of its own made by
/// `make` from the file's index; files in parallel. Each sink is finished
/// ([`RequestSink::finish`]) when its file is read. Statistics in path order.
pub fn scan_each_file<S, F>(
    paths: &[PathBuf],
    options: &ScanOptions,
    interpreter: &Interpreter,
    make: F,
    on_file: &(dyn Fn(&Path) + Sync),
) -> Result<Vec<FileStats>, ScanError<S::Error>>
where
    S: SendSink,
    F: Fn(usize) -> S + Sync,
{
    let plan = Plan::new(paths, options)?;
    let mut stats = paths
        .par_iter()
        .zip(plan.formats())
        .enumerate()
        .map(|(index, (path, &format))| {
            let mut feed = Feed::new(interpreter, make(index)).with_join(plan.join());
            let stats = read_in_order(format, path, options, &mut feed)?;
            feed.finish().map_err(ScanError::Sink)?;
            on_file(path);
            Ok(stats)
        })
        .collect::<Result<Vec<_>, ScanError<S::Error>>>()?;
    plan.note_unread(&mut stats);
    Ok(stats)
}
