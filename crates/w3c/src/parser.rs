//! The line parser shared by every way of reading: the `#Fields` in force,
//! field splitting, malformed-line counting, and what a scan reports.

use std::ops::Range;
use std::path::PathBuf;

use memchr::{memchr, memchr_iter, memrchr};

use crate::fields::{Field, Fields};
use crate::record::Record;
use crate::values::{describe, Checker, Columns};

pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";
pub(crate) const FIELDS_DIRECTIVE: &[u8] = b"#Fields:";

/// Receives every well-formed data line of a scan.
pub trait Visitor: Send {
    /// Called once per well-formed data line, in file order (within a chunk).
    fn record(&mut self, record: &Record<'_>);

    /// True once the visitor wants no more lines (what it writes to failed):
    /// the scan reads no further line for it, and a pooled scan starts no
    /// further part.
    #[inline]
    fn stopped(&self) -> bool {
        false
    }
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
    /// The gzip stream ended early or was corrupt (a member's checksum
    /// included); nothing after this line was read.
    TruncatedGzip,
    /// A date, time, address (`s-ip`, `c-ip`), status (`sc-status`,
    /// `sc-substatus`) or `s-port` column holds something else (`2026-02-30`,
    /// `25:61:61`, invalid UTF-8); a date or time logged as `-` too.
    BadValue,
}

impl MalformedKind {
    /// Number of kinds.
    pub const COUNT: usize = 5;

    /// Every kind, in `as usize` order.
    pub const ALL: [MalformedKind; MalformedKind::COUNT] = {
        use MalformedKind::*;
        [FieldCount, NoFields, TooLong, TruncatedGzip, BadValue]
    };

    /// A stable kebab-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            MalformedKind::FieldCount => "field-count",
            MalformedKind::NoFields => "no-fields",
            MalformedKind::TooLong => "too-long",
            MalformedKind::TruncatedGzip => "truncated-gzip",
            MalformedKind::BadValue => "bad-value",
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

/// Something odd in a file that costs no line: counted and reported, and
/// the lines are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WarningKind {
    /// A `#Fields` directive names a column twice (or two names of one
    /// well-known field): the first of them is read.
    DuplicateField,
    /// An address column (`s-ip`, `c-ip`) holds printable text that is no
    /// address (`xxx` in a redacted log): the line is read, its address unknown.
    UnreadableAddress,
}

impl WarningKind {
    /// Number of kinds.
    pub const COUNT: usize = 2;

    /// Every kind, in `as usize` order.
    pub const ALL: [WarningKind; WarningKind::COUNT] = [WarningKind::DuplicateField, WarningKind::UnreadableAddress];

    /// A stable kebab-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::DuplicateField => "duplicate-field",
            WarningKind::UnreadableAddress => "unreadable-address",
        }
    }
}

/// One warning, kept for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// What was odd.
    pub kind: WarningKind,
    /// 1-based physical line number in the (decoded) file.
    pub line: u64,
    /// Human-readable detail, naming what is read.
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
    /// In pooled scans ([`crate::scan_path_pooled`]), plain files of at most this
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
    pub(crate) fn chunk_size(&self) -> usize {
        self.chunk_size.max(1)
    }

    /// Decoded block size when streaming; capped at 1 MiB: blocks only need to be
    /// large next to a line, and every file read in parallel holds a few.
    pub(crate) fn block_size(&self) -> usize {
        self.chunk_size.clamp(1, 1 << 20)
    }

    /// Spans are `u32`, so no line can be longer than that.
    pub(crate) fn max_line(&self) -> usize {
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
    pub malformed: [u64; MalformedKind::COUNT],
    /// The first malformed lines, sorted by line, at most `max_reported`.
    pub first_malformed: Vec<Malformed>,
    /// Warnings, indexed by `WarningKind as usize`.
    pub warnings: [u64; WarningKind::COUNT],
    /// The first warnings, sorted by line, at most `max_reported`.
    pub first_warnings: Vec<Warning>,
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

    /// All warnings.
    pub fn warnings_total(&self) -> u64 {
        self.warnings.iter().sum()
    }

    /// Warnings of one kind.
    pub fn warnings_of(&self, kind: WarningKind) -> u64 {
        self.warnings[kind as usize]
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
        for (a, b) in self.warnings.iter_mut().zip(other.warnings) {
            *a += b;
        }
        self.first_warnings.extend(other.first_warnings.iter().cloned());
        self.compressed |= other.compressed;
    }
}

/// Per-line state: the `#Fields` in force, a reused span buffer and the counters.
pub(crate) struct Parser<'v, V> {
    visitor: &'v mut V,
    pub(crate) fields: Option<Fields>,
    spans: Vec<(u32, u32)>,
    /// Where the `#Fields` in force keeps its typed columns.
    columns: Columns,
    checker: Checker,
    pub(crate) max_line: usize,
    max_reported: usize,
    /// Physical lines seen, blank ones and directives included.
    pub(crate) line_no: u64,
    pub(crate) stats: FileStats,
}

impl<'v, V: Visitor> Parser<'v, V> {
    /// `fields`: the `#Fields` in force where this part of a file starts, if a
    /// directive came before it; else the options' default, if any.
    pub(crate) fn new(visitor: &'v mut V, opts: &ScanOptions, fields: Option<Fields>) -> Self {
        let fields = fields.or_else(|| opts.default_fields.clone());
        Parser {
            visitor,
            columns: Columns::of(fields.as_ref()),
            fields,
            spans: Vec::with_capacity(32),
            checker: Checker::default(),
            max_line: opts.max_line(),
            max_reported: opts.max_reported,
            line_no: 0,
            stats: FileStats::default(),
        }
    }

    pub(crate) fn malformed(&mut self, kind: MalformedKind, detail: impl FnOnce() -> String) {
        self.stats.malformed[kind as usize] += 1;
        if self.stats.first_malformed.len() < self.max_reported {
            self.stats.first_malformed.push(Malformed { kind, line: self.line_no, detail: detail() });
        }
    }

    fn warning(&mut self, kind: WarningKind, detail: impl FnOnce() -> String) {
        warn(&mut self.stats, self.max_reported, self.line_no, kind, detail);
    }

    pub(crate) fn too_long(&mut self) {
        self.line_no += 1;
        self.stats.lines += 1;
        let max = self.max_line;
        self.malformed(MalformedKind::TooLong, || format!("line longer than {max} bytes"));
    }

    /// Every complete line in `data`; a last line without `\n` counts as a line.
    /// Stops early, before any line, once the visitor has stopped.
    pub(crate) fn lines(&mut self, data: &[u8]) {
        let mut start = 0;
        for nl in memchr_iter(b'\n', data) {
            if self.visitor.stopped() {
                return;
            }
            self.line(&data[start..nl]);
            start = nl + 1;
        }
        if start < data.len() && !self.visitor.stopped() {
            self.line(&data[start..]);
        }
    }

    /// The visitor wants no more lines.
    pub(crate) fn stopped(&self) -> bool {
        self.visitor.stopped()
    }

    /// One physical line, without its `\n`.
    pub(crate) fn line(&mut self, raw: &[u8]) {
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
                let fields = Fields::parse(value);
                for (first, again) in fields.repeated() {
                    self.warning(WarningKind::DuplicateField, || repeated_detail(&fields, first, again));
                }
                self.columns = Columns::of(Some(&fields));
                self.fields = Some(fields);
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
        let record = Record::new(line, &self.spans, fields);
        let value = |field: Field| fields.index(field).and_then(|i| record.raw(i)).unwrap_or_default();
        match self.checker.check(line, &self.spans, &self.columns) {
            Ok(checked) => {
                if let Some(field) = checked.unreadable {
                    let what = || format!("is not an IP address: the line is read with its {field} unknown");
                    let detail = || describe(field, value(field), &what());
                    warn(&mut self.stats, self.max_reported, self.line_no, WarningKind::UnreadableAddress, detail);
                }
                self.visitor.record(&record.checked(checked.time));
            }
            Err(invalid) => {
                // Described only when kept: no allocation for lines past the first few.
                let kept = self.stats.first_malformed.len() < self.max_reported;
                let detail = kept.then(|| invalid.describe(value(invalid.field)));
                self.malformed(MalformedKind::BadValue, || detail.unwrap_or_default());
            }
        }
    }

    pub(crate) fn finish(self) -> (FileStats, u64) {
        (self.stats, self.line_no)
    }
}

/// Count a warning in `stats`, and keep it while fewer than `max_reported` are kept.
fn warn(stats: &mut FileStats, max_reported: usize, line: u64, kind: WarningKind, detail: impl FnOnce() -> String) {
    stats.warnings[kind as usize] += 1;
    if stats.first_warnings.len() < max_reported {
        stats.first_warnings.push(Warning { kind, line, detail: detail() });
    }
}

/// What a warning about a repeated column says: both columns, 1-based, and which is read.
fn repeated_detail(fields: &Fields, first: usize, again: usize) -> String {
    let name = |i: usize| fields.names().nth(i).unwrap_or_default().to_owned();
    let (a, b) = (name(first), name(again));
    let what = if a.eq_ignore_ascii_case(&b) {
        format!("'{a}' is named twice")
    } else {
        format!("'{a}' and '{b}' name the same field")
    };
    format!("#Fields: {what} (columns {} and {}): column {} is read", first + 1, again + 1, first + 1)
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

pub(crate) enum Line<'a> {
    Blank,
    Fields(&'a [u8]),
    Directive,
    Data(&'a [u8]),
}

/// Classifies a line (line end already removed). A BOM is dropped at the start of any
/// line: rotated or concatenated files carry one before their directive block.
pub(crate) fn classify(line: &[u8]) -> Line<'_> {
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

/// The last `#Fields` directive in `data[range]`, by the same rules the sequential
/// scan applies. `range.end` must be a line boundary.
pub(crate) fn last_fields_in(data: &[u8], range: Range<usize>, max_line: usize) -> Option<Fields> {
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
