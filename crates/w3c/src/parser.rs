//! The line parser shared by every way of reading: the `#Fields` in force,
//! field splitting, malformed-line counting, and what a scan reports.

use std::ops::Range;
use std::path::PathBuf;

use crate::fields::{Field, Fields};
use crate::lines::{split_on, LineParser, ParserState, Tally};
use crate::record::Record;
use crate::values::{describe, Checker, Columns};

/// A log format, as far as a [`Visitor`] sees it: the record it hands over.
/// Each reader names its own (this crate [`W3c`]), so that one visitor
/// trait, and one sink of records, serves every format.
pub trait Format {
    /// One well-formed data line of this format.
    type Record<'a>;
}

/// The W3C extended log format of IIS: [`Record`]s.
#[derive(Clone, Copy, Debug)]
pub struct W3c;

impl Format for W3c {
    type Record<'a> = Record<'a>;
}

/// Receives every well-formed data line of a scan (of W3C logs unless
/// another [`Format`] is named).
pub trait Visitor<F: Format = W3c>: Send {
    /// Called once per well-formed data line, in file order (within a chunk).
    fn record(&mut self, record: &F::Record<'_>);

    /// True once the visitor wants no more lines (what it writes to failed):
    /// the scan reads no further line for it, and a pooled scan starts no
    /// further part.
    #[inline]
    fn stopped(&self) -> bool {
        false
    }
}

impl<F: Format, C: FnMut(&F::Record<'_>) + Send> Visitor<F> for C {
    fn record(&mut self, record: &F::Record<'_>) {
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
    /// A line starts with NUL bytes: the server stopped without writing
    /// what it had reserved room for (a crash or a power cut). The text
    /// after them is read.
    NulBytes,
}

impl WarningKind {
    /// Number of kinds.
    pub const COUNT: usize = 3;

    /// Every kind, in `as usize` order.
    pub const ALL: [WarningKind; WarningKind::COUNT] =
        [WarningKind::DuplicateField, WarningKind::UnreadableAddress, WarningKind::NulBytes];

    /// A stable kebab-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::DuplicateField => "duplicate-field",
            WarningKind::UnreadableAddress => "unreadable-address",
            WarningKind::NulBytes => "nul-bytes",
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
    /// Lines of an HTTP.sys error log (see [`is_http_error_log`]): counted,
    /// not read, and not in `lines`.
    pub http_error_lines: u64,
    /// Why the file was not read at all: a log of another kind, told by its
    /// first lines (see `httpproxy::LogKind`).
    pub not_read: Option<Box<str>>,
}

/// A `#Fields` of HTTP.sys's error log (`HTTPERR\httperrN.log`, `#Software:
/// Microsoft HTTP API 2.0`), whose `s-reason` column no site log has: its
/// lines are connections and requests HTTP.sys refused or dropped before
/// any site saw them (KB 820729), not requests of a site.
pub fn is_http_error_log(fields: &Fields) -> bool {
    fields.index_of("s-reason").is_some()
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
        self.http_error_lines += other.http_error_lines;
        if self.not_read.is_none() {
            self.not_read.clone_from(&other.not_read);
        }
    }
}

/// The receiver of the records, what every format's parser keeps, and the
/// W3C format's own checks.
pub(crate) struct Parser<'v, V> {
    visitor: &'v mut V,
    pub(crate) state: ParserState<Fields>,
    /// Where the `#Fields` in force keeps its typed columns.
    columns: Columns,
    /// The `#Fields` in force is an HTTP.sys error log's.
    http_errors: bool,
    checker: Checker,
}

impl<'v, V: Visitor> Parser<'v, V> {
    /// `fields`: the `#Fields` in force where this part of a file starts, if a
    /// directive came before it; else the options' default, if any.
    pub(crate) fn new(visitor: &'v mut V, opts: &ScanOptions, fields: Option<Fields>) -> Self {
        let fields = fields.or_else(|| opts.default_fields.clone());
        Parser {
            visitor,
            columns: Columns::of(fields.as_ref()),
            http_errors: fields.as_ref().is_some_and(is_http_error_log),
            state: ParserState { fields, spans: Vec::with_capacity(32), tally: Tally::new(opts, opts.max_line()) },
            checker: Checker::default(),
        }
    }
}

impl<V: Visitor> LineParser for Parser<'_, V> {
    type Fields = Fields;

    fn set_fields(&mut self, value: &[u8]) {
        let fields = Fields::parse(value);
        for (first, again) in fields.repeated() {
            self.state.tally.warning(WarningKind::DuplicateField, || repeated_detail(&fields, first, again));
        }
        self.columns = Columns::of(Some(&fields));
        self.http_errors = is_http_error_log(&fields);
        self.state.fields = Some(fields);
    }

    fn data(&mut self, line: &[u8]) {
        if self.http_errors {
            self.state.tally.stats.http_error_lines += 1;
            return;
        }
        if !self.state.data_line(line, split_on::<b' '>) {
            return;
        }
        let Some(fields) = &self.state.fields else { return };
        let record = Record::new(line, &self.state.spans, fields);
        let value = |field: Field| fields.index(field).and_then(|i| record.raw(i)).unwrap_or_default();
        match self.checker.check(line, &self.state.spans, &self.columns) {
            Ok(checked) => {
                if let Some(field) = checked.unreadable {
                    let what = || format!("is not an IP address: the line is read with its {field} unknown");
                    let detail = || describe(field, value(field), &what());
                    self.state.tally.warning(WarningKind::UnreadableAddress, detail);
                }
                self.visitor.record(&record.checked(checked.time));
            }
            Err(invalid) => {
                // Described only when kept: no allocation for lines past the first few.
                self.state.tally.nuls_within(line);
                let detail = self.state.tally.keeps_malformed().then(|| invalid.describe(value(invalid.field)));
                self.state.tally.malformed(MalformedKind::BadValue, || detail.unwrap_or_default());
            }
        }
    }

    #[inline]
    fn stopped(&self) -> bool {
        self.visitor.stopped()
    }

    #[inline]
    fn state(&mut self) -> &mut ParserState<Fields> {
        &mut self.state
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

/// The last `#Fields` directive in `data[range]`, by the same rules the sequential
/// scan applies. `range.end` must be a line boundary.
pub(crate) fn last_fields_in(data: &[u8], range: Range<usize>, max_line: usize) -> Option<Fields> {
    crate::lines::last_fields_in(data, range, max_line, Fields::parse)
}
