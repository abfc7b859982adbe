//! The line parser shared by every way of reading: the `#Fields` in force,
//! field splitting, malformed-line counting. What a scan reports is the W3C
//! reader's [`FileStats`], so both formats are reported alike.

use memchr::memchr_iter;
use w3c::{FileStats, Malformed, MalformedKind, ScanOptions};

use crate::fields::Fields;
use crate::record::Record;
use crate::split::{split, MAX_LINE};

const BOM: &[u8] = b"\xEF\xBB\xBF";
pub(crate) const FIELDS_DIRECTIVE: &[u8] = b"#Fields:";

/// Receives every well-formed data line of a scan.
pub trait Visitor: Send {
    /// Called once per well-formed data line, in file order.
    fn record(&mut self, record: &Record<'_>);

    /// True once the visitor wants no more lines: the scan reads no further line.
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

/// Per-line state: the `#Fields` in force, a reused span buffer and the counters.
pub(crate) struct Parser<'v, V> {
    visitor: &'v mut V,
    pub(crate) fields: Option<Fields>,
    spans: Vec<(u32, u32)>,
    pub(crate) max_line: usize,
    max_reported: usize,
    /// Physical lines seen, blank ones and directives included.
    pub(crate) line_no: u64,
    pub(crate) stats: FileStats,
}

impl<'v, V: Visitor> Parser<'v, V> {
    /// `fields`: the `#Fields` in force where this part of a file starts.
    pub(crate) fn new(visitor: &'v mut V, opts: &ScanOptions, fields: Option<Fields>) -> Self {
        Parser {
            visitor,
            fields,
            spans: Vec::with_capacity(96),
            max_line: opts.max_line.min(MAX_LINE),
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

    pub(crate) fn too_long(&mut self) {
        self.line_no += 1;
        self.stats.lines += 1;
        let max = self.max_line;
        self.malformed(MalformedKind::TooLong, || format!("line longer than {max} bytes"));
    }

    /// Every complete line in `data`; a last line without `\n` counts as a line.
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
        let line = line.strip_prefix(BOM).unwrap_or(line);
        match line.first() {
            None => {}
            Some(b'#') => {
                self.stats.directives += 1;
                if let Some(value) = line.strip_prefix(FIELDS_DIRECTIVE) {
                    self.fields = Some(Fields::parse_cached(value));
                }
            }
            Some(_) if line.iter().all(|b| matches!(b, b' ' | b'\t')) => {}
            Some(_) => self.data(line),
        }
    }

    fn data(&mut self, line: &[u8]) {
        self.stats.lines += 1;
        let Some(fields) = &self.fields else {
            self.malformed(MalformedKind::NoFields, || "data line before any #Fields directive".to_owned());
            return;
        };
        split(line, &mut self.spans);
        if self.spans.len() != fields.len() {
            let (want, got) = (fields.len(), self.spans.len());
            self.malformed(MalformedKind::FieldCount, || format!("expected {want} fields, found {got}"));
            return;
        }
        self.visitor.record(&Record::new(line, &self.spans, fields));
    }

    pub(crate) fn finish(self) -> (FileStats, u64) {
        (self.stats, self.line_no)
    }
}
