//! The line scanner: plain files memory-mapped and split into line-aligned chunks
//! scanned in parallel, gzip streamed in blocks with the partial last line rolled over.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex, PoisonError};

use memchr::{memchr, memchr_iter, memrchr};
use rayon::prelude::*;

use crate::fields::Fields;
use crate::record::Record;
use crate::Error;

const BOM: &[u8] = b"\xEF\xBB\xBF";
const FIELDS_DIRECTIVE: &[u8] = b"#Fields:";
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Receives every well-formed data line of a scan.
pub trait Visitor: Send {
    /// Called once per well-formed data line, in file order (within a chunk).
    fn record(&mut self, record: &Record<'_>);
}

impl<F: FnMut(&Record<'_>) + Send> Visitor for F {
    fn record(&mut self, record: &Record<'_>) {
        self(record)
    }
}

/// Why a data line was not handed to the visitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MalformedKind {
    /// The number of fields differs from the `#Fields` in force.
    FieldCount,
    /// A data line before any `#Fields` directive.
    NoFields,
    /// A line longer than [`ScanOptions::max_line`].
    TooLong,
    /// The gzip stream ended early or was corrupt; nothing after this line was read.
    TruncatedGzip,
}

impl MalformedKind {
    /// Every kind, in `as usize` order.
    pub const ALL: [MalformedKind; 4] =
        [MalformedKind::FieldCount, MalformedKind::NoFields, MalformedKind::TooLong, MalformedKind::TruncatedGzip];

    /// A stable kebab-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            MalformedKind::FieldCount => "field-count",
            MalformedKind::NoFields => "no-fields",
            MalformedKind::TooLong => "too-long",
            MalformedKind::TruncatedGzip => "truncated-gzip",
        }
    }
}

impl std::fmt::Display for MalformedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One malformed line, kept for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// What was wrong.
    pub kind: MalformedKind,
    /// 1-based physical line number in the (decoded) file.
    pub line: u64,
    /// Human-readable detail, e.g. `expected 15 fields, found 16`.
    pub detail: String,
}

/// How to scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanOptions {
    /// Bytes per parallel chunk of a plain file, and per decoded block of a stream
    /// (capped at 1 MiB there).
    pub chunk_size: usize,
    /// Longest line accepted, without its line end (IIS's `maxLogLineLength` default).
    pub max_line: usize,
    /// How many [`Malformed`] lines to keep per file.
    pub max_reported: usize,
    /// Scan plain files in parallel chunks and decode gzip on its own thread.
    pub parallel: bool,
    /// In pooled scans ([`scan_path_pooled`]), plain files of at most this
    /// many bytes are read in order on one thread, in chunks, even when
    /// `parallel`: that spares the search for the `#Fields` in force at each
    /// chunk, a second pass over the file. Worth it when there are enough
    /// files to keep every thread busy.
    pub split_above: u64,
    /// The columns of data lines that come before any `#Fields` directive, for
    /// files whose header was cut off or never written (excerpts, log
    /// shippers). `None`: such lines are malformed (`no-fields`).
    pub default_fields: Option<Fields>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            chunk_size: 8 << 20,
            max_line: 64 << 10,
            max_reported: 5,
            parallel: true,
            split_above: 0,
            default_fields: None,
        }
    }
}

impl ScanOptions {
    fn chunk_size(&self) -> usize {
        self.chunk_size.max(1)
    }

    /// Decoded block size when streaming; capped at 1 MiB: blocks only need to be
    /// large next to a line, and every file read in parallel holds a few.
    fn block_size(&self) -> usize {
        self.chunk_size.clamp(1, 1 << 20)
    }

    /// Spans are `u32`, so no line can be longer than that.
    fn max_line(&self) -> usize {
        self.max_line.min(u32::MAX as usize)
    }
}

/// What a scan of one file saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// The file scanned (empty for in-memory input).
    pub path: PathBuf,
    /// Decoded bytes read.
    pub bytes: u64,
    /// Data lines, malformed ones included; not directives, not blank lines.
    pub lines: u64,
    /// Directive lines (`#...`).
    pub directives: u64,
    /// Malformed lines, indexed by `MalformedKind as usize`.
    pub malformed: [u64; 4],
    /// The first malformed lines, sorted by line, at most `max_reported`.
    pub first_malformed: Vec<Malformed>,
    /// The input was gzip.
    pub compressed: bool,
}

impl FileStats {
    /// All malformed lines.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().sum()
    }

    /// Malformed lines of one kind.
    pub fn malformed_of(&self, kind: MalformedKind) -> u64 {
        self.malformed[kind as usize]
    }

    /// Data lines handed to the visitor.
    pub fn records(&self) -> u64 {
        self.lines - self.malformed_total()
    }

    /// Adds `other`'s counts into `self` (for totals over files). `first_malformed`
    /// is concatenated (line numbers then refer to different files); `path` is kept.
    pub fn merge(&mut self, other: &FileStats) {
        self.bytes += other.bytes;
        self.lines += other.lines;
        self.directives += other.directives;
        for (a, b) in self.malformed.iter_mut().zip(other.malformed) {
            *a += b;
        }
        self.first_malformed.extend(other.first_malformed.iter().cloned());
        self.compressed |= other.compressed;
    }
}

/// The result of [`scan_path`].
#[derive(Debug)]
pub struct FileScan<V> {
    /// One visitor per chunk, in file order.
    pub visitors: Vec<V>,
    /// What the scan saw.
    pub stats: FileStats,
}

/// Per-line state: the `#Fields` in force, a reused span buffer and the counters.
struct Parser<'v, V> {
    visitor: &'v mut V,
    fields: Option<Fields>,
    spans: Vec<(u32, u32)>,
    max_line: usize,
    max_reported: usize,
    /// Physical lines seen, blank ones and directives included.
    line_no: u64,
    stats: FileStats,
}

impl<'v, V: Visitor> Parser<'v, V> {
    /// `fields`: the `#Fields` in force where this part of a file starts, if a
    /// directive came before it; else the options' default, if any.
    fn new(visitor: &'v mut V, opts: &ScanOptions, fields: Option<Fields>) -> Self {
        Parser {
            visitor,
            fields: fields.or_else(|| opts.default_fields.clone()),
            spans: Vec::with_capacity(32),
            max_line: opts.max_line(),
            max_reported: opts.max_reported,
            line_no: 0,
            stats: FileStats::default(),
        }
    }

    fn malformed(&mut self, kind: MalformedKind, detail: impl FnOnce() -> String) {
        self.stats.malformed[kind as usize] += 1;
        if self.stats.first_malformed.len() < self.max_reported {
            self.stats.first_malformed.push(Malformed { kind, line: self.line_no, detail: detail() });
        }
    }

    fn too_long(&mut self) {
        self.line_no += 1;
        self.stats.lines += 1;
        let max = self.max_line;
        self.malformed(MalformedKind::TooLong, || format!("line longer than {max} bytes"));
    }

    /// Every complete line in `data`; a last line without `\n` counts as a line.
    fn lines(&mut self, data: &[u8]) {
        let mut start = 0;
        for nl in memchr_iter(b'\n', data) {
            self.line(&data[start..nl]);
            start = nl + 1;
        }
        if start < data.len() {
            self.line(&data[start..]);
        }
    }

    /// One physical line, without its `\n`.
    fn line(&mut self, raw: &[u8]) {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.len() > self.max_line {
            self.too_long();
            return;
        }
        self.line_no += 1;
        match classify(line) {
            Line::Blank => {}
            Line::Fields(value) => {
                self.stats.directives += 1;
                self.fields = Some(Fields::parse(value));
            }
            Line::Directive => self.stats.directives += 1,
            Line::Data(line) => self.data(line),
        }
    }

    fn data(&mut self, line: &[u8]) {
        self.stats.lines += 1;
        let Some(fields) = &self.fields else {
            self.malformed(MalformedKind::NoFields, || "data line before any #Fields directive".to_owned());
            return;
        };
        split_spaces(line, &mut self.spans);
        if self.spans.len() != fields.len() {
            let (want, got) = (fields.len(), self.spans.len());
            self.malformed(MalformedKind::FieldCount, || format!("expected {want} fields, found {got}"));
            return;
        }
        self.visitor.record(&Record::new(line, &self.spans, fields));
    }

    fn finish(self) -> (FileStats, u64) {
        (self.stats, self.line_no)
    }
}

/// Fill `spans` (cleared first) with the `(start, end)` of each
/// space-separated field of `line`. Fields average a dozen bytes, and
/// `memchr_iter` sets up its vector search again for each: testing sixteen
/// bytes at a time in a `u128` takes fewer instructions per line.
fn split_spaces(line: &[u8], spans: &mut Vec<(u32, u32)>) {
    const LOW7: u128 = 0x7f7f_7f7f_7f7f_7f7f_7f7f_7f7f_7f7f_7f7f;
    const SPACES: u128 = 0x2020_2020_2020_2020_2020_2020_2020_2020;
    spans.clear();
    let mut start = 0u32;
    let mut at = 0;
    // Indexing rather than `chunks_exact`, whose iterator costs as much as the test.
    while let Some(c) = line.get(at..at + 16) {
        // `c` has 16 bytes: the conversion cannot fail.
        let w = u128::from_le_bytes(c.try_into().unwrap_or_default()) ^ SPACES;
        // The high bit of each byte that was a space (exact: no carry crosses bytes).
        let mut spaces = !(((w & LOW7) + LOW7) | w | LOW7);
        while spaces != 0 {
            let end = (at as u32) + spaces.trailing_zeros() / 8;
            spans.push((start, end));
            start = end + 1;
            spaces &= spaces - 1;
        }
        at += 16;
    }
    for (k, &b) in line.iter().enumerate().skip(at) {
        if b == b' ' {
            spans.push((start, k as u32));
            start = k as u32 + 1;
        }
    }
    spans.push((start, line.len() as u32));
}

enum Line<'a> {
    Blank,
    Fields(&'a [u8]),
    Directive,
    Data(&'a [u8]),
}

/// Classifies a line (line end already removed). A BOM is dropped at the start of any
/// line: rotated or concatenated files carry one before their directive block.
fn classify(line: &[u8]) -> Line<'_> {
    let line = line.strip_prefix(BOM).unwrap_or(line);
    match line.first() {
        None => Line::Blank,
        Some(b'#') => match line.strip_prefix(FIELDS_DIRECTIVE) {
            Some(value) => Line::Fields(value),
            None => Line::Directive,
        },
        Some(b' ' | b'\t') if line.iter().all(|b| matches!(b, b' ' | b'\t')) => Line::Blank,
        Some(_) => Line::Data(line),
    }
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

/// The last `#Fields` directive in `data[range]`, by the same rules the sequential
/// scan applies. `range.end` must be a line boundary.
fn last_fields_in(data: &[u8], range: Range<usize>, max_line: usize) -> Option<Fields> {
    let mut end = range.end;
    while end > range.start {
        let hash = range.start + memrchr(b'#', &data[range.start..end])?;
        end = hash;
        let line_start = match memrchr(b'\n', &data[..hash]) {
            Some(i) => i + 1,
            None => 0,
        };
        // Only `#` at a line start (after an optional BOM) can begin a directive.
        if hash != line_start && data[line_start..hash] != *BOM {
            continue;
        }
        if !data[hash..].starts_with(FIELDS_DIRECTIVE) {
            continue;
        }
        let line_end = memchr(b'\n', &data[hash..]).map_or(data.len(), |i| hash + i);
        let raw = &data[line_start..line_end];
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.len() > max_line {
            continue; // counted as too long, so not in force
        }
        if let Line::Fields(v) = classify(line) {
            return Some(Fields::parse(v));
        }
    }
    None
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
        s.bytes = 0;
        stats.merge(&s);
        offset += lines;
    }
    stats.first_malformed.truncate(opts.max_reported);
    stats
}

/// Visitors reused across the files and chunks of a scan. Each part takes an
/// idle visitor, or makes one when none is idle, and gives it back when done:
/// a scan holds about one visitor per worker thread, and visitors are only
/// combined once, at the end, by [`VisitorPool::merged`].
pub struct VisitorPool<V, F> {
    idle: Mutex<Vec<V>>,
    make: F,
}

impl<V: Visitor, F: Fn() -> V + Sync> VisitorPool<V, F> {
    /// An empty pool that makes visitors with `make`.
    pub fn new(make: F) -> Self {
        VisitorPool { idle: Mutex::new(Vec::new()), make }
    }

    /// Run `work` with an idle visitor (a new one when none is idle), then
    /// give it back.
    fn with<T>(&self, work: impl FnOnce(&mut V) -> T) -> T {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut visitor = idle.unwrap_or_else(&self.make);
        let result = work(&mut visitor);
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(visitor);
        result
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

/// Feeds decoded blocks into a [`Parser`], rolling the partial last line.
struct Streamer<'v, V> {
    parser: Parser<'v, V>,
    carry: Vec<u8>,
    /// Inside a too-long line already counted; drop bytes up to its `\n`.
    skipping: bool,
    bytes: u64,
}

impl<'v, V: Visitor> Streamer<'v, V> {
    fn new(parser: Parser<'v, V>) -> Self {
        Streamer { parser, carry: Vec::new(), skipping: false, bytes: 0 }
    }

    /// The longest partial line worth buffering: content plus a possible `\r`.
    fn carry_limit(&self) -> usize {
        self.parser.max_line.saturating_add(1)
    }

    fn block(&mut self, mut block: &[u8]) {
        self.bytes += block.len() as u64;
        if self.skipping || !self.carry.is_empty() {
            let Some(nl) = memchr(b'\n', block) else {
                self.partial(block);
                return;
            };
            if self.skipping {
                self.skipping = false;
            } else {
                self.carry.extend_from_slice(&block[..nl]);
                let carry = std::mem::take(&mut self.carry);
                self.parser.line(&carry);
                self.carry = carry;
                self.carry.clear();
            }
            block = &block[nl + 1..];
        }
        let complete = match memrchr(b'\n', block) {
            Some(i) => i + 1,
            None => 0,
        };
        self.parser.lines(&block[..complete]);
        self.partial(&block[complete..]);
    }

    /// Bytes of a line whose end has not been seen yet.
    fn partial(&mut self, bytes: &[u8]) {
        if self.skipping {
            return;
        }
        if self.carry.len() + bytes.len() > self.carry_limit() {
            self.parser.too_long();
            self.skipping = true;
            self.carry.clear();
        } else {
            self.carry.extend_from_slice(bytes);
        }
    }

    /// End of input: the last line may lack its `\n`.
    fn finish(mut self) -> FileStats {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            self.parser.line(&carry);
        }
        self.stats()
    }

    /// The stream broke: the partial line is dropped and reported in its place.
    fn truncated(mut self, err: &io::Error) -> FileStats {
        let p = &mut self.parser;
        p.line_no += 1;
        p.stats.lines += 1;
        p.malformed(MalformedKind::TruncatedGzip, || format!("gzip stream ends early: {err}"));
        self.stats()
    }

    fn stats(self) -> FileStats {
        let bytes = self.bytes;
        let (mut stats, _) = self.parser.finish();
        stats.bytes = bytes;
        stats
    }
}

/// Errors from the decompressor itself, as opposed to the underlying file.
fn is_corrupt(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof)
}

/// Fills `buf` as far as the reader allows; `Ok(0)` only at the end.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if n > 0 => {
                // Hand over what was read; the error comes back on the next call.
                let _ = e;
                return Ok(n);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// How a stream ended.
enum End {
    Eof,
    Error(io::Error),
}

/// Streams `reader` through the parser, reading on another thread when `parallel`.
fn stream<R: Read + Send, V: Visitor>(
    mut reader: R,
    opts: &ScanOptions,
    visitor: &mut V,
    gzip: bool,
) -> io::Result<FileStats> {
    let block = opts.block_size();
    let mut s = Streamer::new(Parser::new(visitor, opts, None));
    let end = if opts.parallel {
        stream_threaded(&mut reader, block, &mut s)
    } else {
        let mut buf = vec![0; block];
        loop {
            match fill(&mut reader, &mut buf) {
                Ok(0) => break End::Eof,
                Ok(n) => s.block(&buf[..n]),
                Err(e) => break End::Error(e),
            }
        }
    };
    let mut stats = match end {
        End::Eof => s.finish(),
        End::Error(e) if gzip && is_corrupt(&e) => s.truncated(&e),
        End::Error(e) => return Err(e),
    };
    stats.compressed = gzip;
    Ok(stats)
}

/// Reads (and decompresses) on a scoped thread while this one parses; a few
/// buffers circulate between the two so neither allocates per block.
fn stream_threaded<R: Read + Send, V: Visitor>(reader: &mut R, block: usize, s: &mut Streamer<'_, V>) -> End {
    const BUFFERS: usize = 3;
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<(Vec<u8>, usize), io::Error>>(BUFFERS);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..BUFFERS {
        let _ = empty_tx.send(Vec::new());
    }
    std::thread::scope(|scope| {
        // Owned by this closure so that a panicking visitor drops them while
        // unwinding, which releases the reader thread before the scope joins it.
        let (full_rx, empty_tx) = (full_rx, empty_tx);
        scope.spawn(move || {
            // Stops when the parser hangs up (its receiver drops) or the input ends.
            while let Ok(mut buf) = empty_rx.recv() {
                if buf.len() != block {
                    // Zeroed allocation: the OS hands out pages lazily.
                    buf = vec![0; block];
                }
                match fill(reader, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if full_tx.send(Ok((buf, n))).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = full_tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        let end = loop {
            match full_rx.recv() {
                Ok(Ok((buf, n))) => {
                    s.block(&buf[..n]);
                    let _ = empty_tx.send(buf);
                }
                Ok(Err(e)) => break End::Error(e),
                Err(_) => break End::Eof,
            }
        };
        drop(empty_tx);
        end
    })
}

/// Scans a stream, plain or gzip (by its magic bytes), with one visitor.
/// A corrupt or truncated gzip stream is reported as [`MalformedKind::TruncatedGzip`],
/// not as an error.
pub fn scan_reader<R: Read + Send, V: Visitor>(
    reader: R,
    opts: &ScanOptions,
    visitor: &mut V,
) -> io::Result<FileStats> {
    let mut reader = io::BufReader::with_capacity(64 << 10, reader);
    let gzip = {
        let head = io::BufRead::fill_buf(&mut reader)?;
        head.len() >= 2 && head[..2] == GZIP_MAGIC
    };
    if gzip {
        stream(flate2::bufread::MultiGzDecoder::new(reader), opts, visitor, true)
    } else {
        stream(reader, opts, visitor, false)
    }
}

/// Like [`scan_path`], but with visitors taken from `pool` (see [`VisitorPool`]).
pub fn scan_path_pooled<V, F>(path: &Path, opts: &ScanOptions, pool: &VisitorPool<V, F>) -> Result<FileStats, Error>
where
    V: Visitor,
    F: Fn() -> V + Sync,
{
    let mut stats = match open(path)? {
        Opened::Gzip(file) => pool.with(|v| scan_reader(file, opts, v)).map_err(|e| Error::io(path, e))?,
        Opened::Empty => FileStats::default(),
        Opened::Mapped(map) => scan_chunks_hinted(&map, opts, pool, &MappedFile(&map)),
    };
    stats.path = path.to_path_buf();
    Ok(stats)
}

/// A memory-mapped file: read ahead before a backward search, and give back
/// the pages of each part once read, so that resident memory stays bounded by
/// the chunks in flight, not by the size of the file.
struct MappedFile<'a>(&'a memmap2::Mmap);

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

enum Opened {
    Gzip(File),
    Empty,
    Mapped(memmap2::Mmap),
}

/// Open a log file and tell gzip from plain by its magic bytes.
fn open(path: &Path) -> Result<Opened, Error> {
    let io_err = |e| Error::io(path, e);
    let mut file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let mut magic = [0u8; 2];
    let got = fill(&mut file, &mut magic).map_err(io_err)?;
    if got == 2 && magic == GZIP_MAGIC {
        use std::io::Seek;
        file.rewind().map_err(io_err)?;
        return Ok(Opened::Gzip(file));
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
/// one [`MalformedKind::TruncatedGzip`] line and returns `Ok`.
pub fn scan_path<V: Visitor, F: Fn() -> V + Sync>(
    path: &Path,
    opts: &ScanOptions,
    make: F,
) -> Result<FileScan<V>, Error> {
    let mut scan = match open(path)? {
        Opened::Gzip(file) => {
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

#[cfg(test)]
mod split_tests {
    use super::split_spaces;

    #[test]
    fn split_spaces_matches_memchr() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut spans = Vec::new();
        for len in 0..200 {
            for _ in 0..20 {
                let line: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        [b' ', b'a', 0x20 ^ 0x80, 0xa0, b'!', 0x1f, 0x00][(x % 7) as usize]
                    })
                    .collect();
                let mut want = Vec::new();
                let mut start = 0;
                for sp in memchr::memchr_iter(b' ', &line) {
                    want.push((start, sp as u32));
                    start = sp as u32 + 1;
                }
                want.push((start, line.len() as u32));
                split_spaces(&line, &mut spans);
                assert_eq!(spans, want, "{line:?}");
            }
        }
    }
}
