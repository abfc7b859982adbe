//! Scanning whole files: plain files memory-mapped and split into line-aligned
//! chunks scanned in parallel (each started with the `#Fields` in force there),
//! with visitors pooled across files and chunks.

use std::fs::File;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use memchr::memchr;
use rayon::prelude::*;

use crate::fields::Fields;
use crate::lines::{fill, LineParser};
use crate::parser::{last_fields_in, FileStats, Parser, ScanOptions, Visitor};
use crate::paths::open_file;
use crate::stream::{scan_reader, GZIP_MAGIC};
use crate::Error;

/// The result of [`scan_path`].
#[derive(Debug)]
pub struct FileScan<V> {
    /// One visitor per chunk, in file order.
    pub visitors: Vec<V>,
    /// What the scan saw.
    pub stats: FileStats,
}

/// Scans bytes already in memory, sequentially, with one visitor.
pub fn scan_bytes<V: Visitor>(data: &[u8], opts: &ScanOptions, visitor: &mut V) -> FileStats {
    scan_in_order(data, std::iter::once(0..data.len()), opts, visitor, &InMemory)
}

/// Scans `data` in order with one visitor, one line-aligned range after the
/// other (together all of `data`), telling `hints` as each is done.
fn scan_in_order<V: Visitor>(
    data: &[u8],
    ranges: impl IntoIterator<Item = Range<usize>>,
    opts: &ScanOptions,
    visitor: &mut V,
    hints: &dyn PageHints,
) -> FileStats {
    let mut p = Parser::new(visitor, opts, None);
    for r in ranges {
        p.lines(&data[r.clone()]);
        hints.done(r);
        if p.stopped() {
            break;
        }
    }
    let (mut stats, _) = p.finish();
    stats.bytes = data.len() as u64;
    stats
}

/// Line-aligned chunk ranges of about `chunk_size` bytes each.
fn chunk_ranges(data: &[u8], chunk_size: usize) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(data.len() / chunk_size + 1);
    let mut start = 0;
    while start < data.len() {
        let want = start.saturating_add(chunk_size);
        let end = if want >= data.len() {
            data.len()
        } else {
            // Extend to just past the `\n` ending the line that straddles `want`.
            match memchr(b'\n', &data[want - 1..]) {
                Some(i) => want + i,
                None => data.len(),
            }
        };
        out.push(start..end);
        start = end;
    }
    out
}

/// Scans bytes in memory; when `opts.parallel`, as line-aligned chunks of about
/// `opts.chunk_size` scanned in parallel, one visitor per chunk in order.
/// Results are identical for every chunk size.
pub fn scan_chunks<V: Visitor, F: Fn() -> V + Sync>(data: &[u8], opts: &ScanOptions, make: F) -> FileScan<V> {
    scan_chunks_with(data, opts, make, &InMemory)
}

fn scan_chunks_with<V: Visitor, F: Fn() -> V + Sync>(
    data: &[u8],
    opts: &ScanOptions,
    make: F,
    hints: &dyn PageHints,
) -> FileScan<V> {
    let ranges = chunk_ranges(data, opts.chunk_size());
    if !opts.parallel || ranges.len() <= 1 {
        let mut v = make();
        let stats = scan_bytes(data, opts, &mut v);
        return FileScan { visitors: vec![v], stats };
    }
    let in_force = fields_in_force(data, &ranges, opts.max_line(), hints);
    let work = |(r, f): (&Range<usize>, &Option<Fields>)| {
        let mut v = make();
        let mut p = Parser::new(&mut v, opts, f.clone());
        p.lines(&data[r.clone()]);
        let (stats, lines) = p.finish();
        hints.done(r.clone());
        (v, stats, lines)
    };
    let parts: Vec<(V, FileStats, u64)> = ranges.par_iter().zip(in_force.par_iter()).map(work).collect();
    let mut visitors = Vec::with_capacity(parts.len());
    let mut chunk_stats = Vec::with_capacity(parts.len());
    for (v, s, lines) in parts {
        visitors.push(v);
        chunk_stats.push((s, lines));
    }
    FileScan { visitors, stats: join_chunk_stats(data.len(), chunk_stats, opts) }
}

/// The chunks' statistics as one file's: line numbers made absolute by prefix sums.
fn join_chunk_stats(len: usize, parts: Vec<(FileStats, u64)>, opts: &ScanOptions) -> FileStats {
    let mut stats = FileStats { bytes: len as u64, ..FileStats::default() };
    let mut offset = 0u64;
    for (mut s, lines) in parts {
        for m in &mut s.first_malformed {
            m.line += offset;
        }
        for w in &mut s.first_warnings {
            w.line += offset;
        }
        s.bytes = 0;
        stats.merge(&s);
        offset += lines;
    }
    stats.first_malformed.truncate(opts.max_reported);
    stats.first_warnings.truncate(opts.max_reported);
    stats
}

/// Visitors reused across the files and chunks of a scan. Each part takes an
/// idle visitor, or makes one when none is idle, and gives it back when done:
/// a scan holds about one visitor per worker thread, and visitors are only
/// combined once, at the end, by [`VisitorPool::merged`].
pub struct VisitorPool<V, F> {
    idle: Mutex<Vec<V>>,
    make: F,
    /// Some visitor has stopped: parts not yet started are skipped.
    stopped: AtomicBool,
}

impl<V: Visitor, F: Fn() -> V + Sync> VisitorPool<V, F> {
    /// An empty pool that makes visitors with `make`.
    pub fn new(make: F) -> Self {
        VisitorPool { idle: Mutex::new(Vec::new()), make, stopped: AtomicBool::new(false) }
    }

    /// Run `work` with an idle visitor (a new one when none is idle), then
    /// give it back: how a reader of another format shares the pool.
    pub fn with<T>(&self, work: impl FnOnce(&mut V) -> T) -> T {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut visitor = idle.unwrap_or_else(&self.make);
        let result = work(&mut visitor);
        if visitor.stopped() {
            self.stopped.store(true, Ordering::Relaxed);
        }
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(visitor);
        result
    }

    /// True once a visitor has stopped (see [`Visitor::stopped`]): the scan
    /// should start no further file.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Every visitor combined into one with `merge`; a new one when the scan
    /// read nothing. Which lines each visitor saw depends on scheduling, so
    /// `merge` must not depend on order for results to be deterministic.
    pub fn merged(self, mut merge: impl FnMut(&mut V, V)) -> V {
        let mut idle = self.idle.into_inner().unwrap_or_else(PoisonError::into_inner);
        let mut whole = idle.pop().unwrap_or_else(&self.make);
        for visitor in idle {
            merge(&mut whole, visitor);
        }
        whole
    }
}

/// Like [`scan_chunks`], but with visitors taken from `pool`, which may hold
/// lines of other scans too.
pub fn scan_chunks_pooled<V, F>(data: &[u8], opts: &ScanOptions, pool: &VisitorPool<V, F>) -> FileStats
where
    V: Visitor,
    F: Fn() -> V + Sync,
{
    scan_chunks_hinted(data, opts, pool, &InMemory)
}

/// What a scan tells the memory behind its bytes about the parts it reads.
trait PageHints: Sync {
    /// `range` is about to be read, perhaps backwards: fetch it now.
    fn will_read(&self, _range: Range<usize>) {}
    /// `range` has been read and will not be read again.
    fn done(&self, _range: Range<usize>) {}
}

/// Bytes already in memory: nothing to tell.
struct InMemory;

impl PageHints for InMemory {}

/// [`scan_chunks_pooled`], telling `hints` about each part of `data` as it is
/// read, so that a memory map can read ahead and give its pages back.
fn scan_chunks_hinted<V, F>(
    data: &[u8],
    opts: &ScanOptions,
    pool: &VisitorPool<V, F>,
    hints: &dyn PageHints,
) -> FileStats
where
    V: Visitor,
    F: Fn() -> V + Sync,
{
    let ranges = chunk_ranges(data, opts.chunk_size());
    if !opts.parallel || ranges.len() <= 1 || data.len() as u64 <= opts.split_above {
        // Chunk by chunk, so that pages are given back as they are read.
        return pool.with(|v| scan_in_order(data, ranges, opts, v, hints));
    }
    let in_force = fields_in_force(data, &ranges, opts.max_line(), hints);
    let work = |(r, f): (&Range<usize>, &Option<Fields>)| {
        if pool.stopped() {
            return (FileStats::default(), 0);
        }
        let part = pool.with(|v| {
            let mut p = Parser::new(v, opts, f.clone());
            p.lines(&data[r.clone()]);
            p.finish()
        });
        hints.done(r.clone());
        part
    };
    let parts: Vec<(FileStats, u64)> = ranges.par_iter().zip(in_force.par_iter()).map(work).collect();
    join_chunk_stats(data.len(), parts, opts)
}

/// The `#Fields` in force at the start of each chunk.
fn fields_in_force(
    data: &[u8],
    ranges: &[Range<usize>],
    max_line: usize,
    hints: &dyn PageHints,
) -> Vec<Option<Fields>> {
    // Directive search per chunk is bounded by the chunk, so the whole pass reads
    // the file once; the fields in force then follow by a forward walk.
    let last: Vec<Option<Fields>> = ranges
        .par_iter()
        .map(|r| {
            // The search runs backwards, which defeats the kernel's read-ahead
            // of a cold file: one synchronous 4 KiB read a page without this.
            hints.will_read(r.clone());
            let found = last_fields_in(data, r.clone(), max_line);
            hints.done(r.clone());
            found
        })
        .collect();
    let mut in_force = Vec::with_capacity(ranges.len());
    let mut cur: Option<Fields> = None;
    for l in &last {
        in_force.push(cur.clone());
        if l.is_some() {
            cur.clone_from(l);
        }
    }
    in_force
}

/// Like [`scan_path`], but with visitors taken from `pool` (see [`VisitorPool`]).
pub fn scan_path_pooled<V, F>(path: &Path, opts: &ScanOptions, pool: &VisitorPool<V, F>) -> Result<FileStats, Error>
where
    V: Visitor,
    F: Fn() -> V + Sync,
{
    let mut stats = match open(path)? {
        Opened::Stream(file) => pool.with(|v| scan_reader(file, opts, v)).map_err(|e| Error::io(path, e))?,
        Opened::Empty => FileStats::default(),
        Opened::Mapped(map) => scan_chunks_hinted(&map, opts, pool, &MappedFile(&map)),
    };
    stats.path = path.to_path_buf();
    Ok(stats)
}

/// A memory-mapped file: read ahead before a backward search, and give back
/// the pages of each part once read, so that resident memory stays bounded by
/// the chunks in flight, not by the size of the file. Windows has no such advice for
/// a file view: there the clean, file-backed pages stay in the working set until the
/// memory manager trims them.
struct MappedFile<'a>(#[cfg_attr(not(unix), allow(dead_code))] &'a memmap2::Mmap);

impl PageHints for MappedFile<'_> {
    fn will_read(&self, range: Range<usize>) {
        #[cfg(unix)]
        {
            let start = range.start / PAGE_ALIGN * PAGE_ALIGN;
            let _ = self.0.advise_range(memmap2::Advice::WillNeed, start, range.end - start);
        }
        #[cfg(not(unix))]
        let _ = range;
    }

    fn done(&self, range: Range<usize>) {
        #[cfg(unix)]
        {
            let base = self.0.as_ptr() as usize;
            let start = (base + range.start).next_multiple_of(PAGE_ALIGN) - base;
            let end = ((base + range.end) / PAGE_ALIGN * PAGE_ALIGN).saturating_sub(base);
            if end > start {
                // SAFETY: the map is a read-only private file mapping that nothing writes
                // to, so dropping its pages only makes a later read fault them in again
                // from the file; no reference observes a change.
                #[allow(unsafe_code)]
                let _ =
                    unsafe { self.0.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) };
            }
        }
        #[cfg(not(unix))]
        let _ = range;
    }
}

/// Only whole pages are advised; 64 KiB is a multiple of every page size in use.
#[cfg(unix)]
const PAGE_ALIGN: usize = 64 << 10;

pub(crate) enum Opened {
    /// Gzip, or UTF-16 text: read as a stream (see [`scan_reader`]).
    Stream(File),
    Empty,
    Mapped(memmap2::Mmap),
}

/// Open a log file and tell gzip and UTF-16 from plain by their magic bytes.
pub(crate) fn open(path: &Path) -> Result<Opened, Error> {
    let io_err = |e| Error::io(path, e);
    let mut file = open_file(path)?;
    let len = file.metadata().map_err(io_err)?.len();
    let mut magic = [0u8; 2];
    let (got, error) = fill(&mut file, &mut magic);
    if let Some(e) = error {
        return Err(io_err(e));
    }
    if got == 2 && (magic == GZIP_MAGIC || crate::utf16::mark(&magic).is_some()) {
        use std::io::Seek;
        file.rewind().map_err(io_err)?;
        return Ok(Opened::Stream(file));
    }
    if len == 0 {
        return Ok(Opened::Empty);
    }
    // SAFETY: the map is read-only and private to this call. IIS only appends to
    // its logs, which leaves the mapped range intact; a file truncated by another
    // process while mapped would fault, the accepted price of zero-copy reading.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?;
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(Opened::Mapped(map))
}

/// Scans one file, plain or gzip (by its magic bytes `1f 8b`, not its name).
///
/// Plain files are memory-mapped and, when `opts.parallel` and the file is larger than
/// `opts.chunk_size`, split into line-aligned chunks scanned in parallel, each started
/// with the `#Fields` in force at its start; `visitors` then holds one per chunk in file
/// order. Gzip (multi-member too) is decoded on one thread and parsed on another. A
/// truncated or corrupt gzip stream keeps every line decoded before the damage, counts
/// one [`crate::MalformedKind::TruncatedGzip`] line and returns `Ok`.
pub fn scan_path<V: Visitor, F: Fn() -> V + Sync>(
    path: &Path,
    opts: &ScanOptions,
    make: F,
) -> Result<FileScan<V>, Error> {
    let mut scan = match open(path)? {
        Opened::Stream(file) => {
            let mut v = make();
            let stats = scan_reader(file, opts, &mut v).map_err(|e| Error::io(path, e))?;
            FileScan { visitors: vec![v], stats }
        }
        Opened::Empty => {
            let mut v = make();
            let stats = scan_bytes(&[], opts, &mut v);
            FileScan { visitors: vec![v], stats }
        }
        Opened::Mapped(map) => scan_chunks_with(&map, opts, make, &MappedFile(&map)),
    };
    scan.stats.path = path.to_path_buf();
    Ok(scan)
}
