//! The line parser shared by every way of reading: the `#Fields` in force,
//! field splitting, malformed-line counting. What a scan reports is the W3C
//! reader's [`FileStats`], so both formats are reported alike.

use w3c::lines::{LineParser, Tally};
use w3c::{FileStats, ScanOptions};

use crate::fields::{parse_cached, Fields};
use crate::record::Record;
use crate::split::{split, MAX_LINE};

/// The HttpProxy log format, as a [`w3c::Visitor`] sees it: [`Record`]s.
#[derive(Clone, Copy, Debug)]
pub struct HttpProxy;

impl w3c::Format for HttpProxy {
    type Record<'a> = Record<'a>;
}

/// Receives every well-formed data line of a scan: the W3C reader's
/// [`w3c::Visitor`], of this format's records. Implement that one (a closure
/// taking `&Record` already does); this one follows from it.
pub trait Visitor: w3c::Visitor<HttpProxy> {}

impl<V: w3c::Visitor<HttpProxy> + ?Sized> Visitor for V {}

/// Per-line state: the `#Fields` in force, a reused span buffer and the counters.
pub(crate) struct Parser<'v, V> {
    visitor: &'v mut V,
    pub(crate) fields: Option<Fields>,
    spans: Vec<(u32, u32)>,
    pub(crate) tally: Tally,
}

impl<'v, V: Visitor> Parser<'v, V> {
    /// `fields`: the `#Fields` in force where this part of a file starts.
    pub(crate) fn new(visitor: &'v mut V, opts: &ScanOptions, fields: Option<Fields>) -> Self {
        Parser { visitor, fields, spans: Vec::with_capacity(96), tally: Tally::new(opts, MAX_LINE) }
    }
}

impl<V: Visitor> LineParser for Parser<'_, V> {
    type Fields = Fields;

    fn set_fields(&mut self, value: &[u8]) {
        self.fields = Some(parse_cached(value));
    }

    fn data(&mut self, line: &[u8]) {
        let spans = &mut self.spans;
        let split = || {
            split(line, spans);
            spans.len()
        };
        if !self.tally.data_line(line, self.fields.as_ref().map(Fields::len), split) {
            return;
        }
        if let Some(fields) = &self.fields {
            self.visitor.record(&Record::new(line, &self.spans, fields));
        }
    }

    fn stopped(&self) -> bool {
        self.visitor.stopped()
    }

    fn tally(&mut self) -> &mut Tally {
        &mut self.tally
    }

    fn fields(&self) -> Option<&Fields> {
        self.fields.as_ref()
    }

    fn finish(self) -> (FileStats, u64) {
        self.tally.finish()
    }
}
