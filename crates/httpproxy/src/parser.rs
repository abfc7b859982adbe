//! The line parser shared by every way of reading: the `#Fields` in force,
//! field splitting, malformed-line counting. What a scan reports is the W3C
//! reader's [`w3c::FileStats`], so both formats are reported alike.

use w3c::lines::{LineParser, ParserState, Tally};
use w3c::ScanOptions;

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

/// The receiver of the records and what every format's parser keeps.
pub(crate) struct Parser<'v, V> {
    visitor: &'v mut V,
    pub(crate) state: ParserState<Fields>,
}

impl<'v, V: Visitor> Parser<'v, V> {
    /// `fields`: the `#Fields` in force where this part of a file starts.
    pub(crate) fn new(visitor: &'v mut V, opts: &ScanOptions, fields: Option<Fields>) -> Self {
        let state = ParserState { fields, spans: Vec::with_capacity(96), tally: Tally::new(opts, MAX_LINE) };
        Parser { visitor, state }
    }
}

impl<V: Visitor> LineParser for Parser<'_, V> {
    type Fields = Fields;

    fn set_fields(&mut self, value: &[u8]) {
        self.state.fields = Some(parse_cached(value));
    }

    fn data(&mut self, line: &[u8]) {
        if !self.state.data_line(line, split) {
            return;
        }
        if let Some(fields) = &self.state.fields {
            self.visitor.record(&Record::new(line, &self.state.spans, fields));
        }
    }

    fn stopped(&self) -> bool {
        self.visitor.stopped()
    }

    fn state(&mut self) -> &mut ParserState<Fields> {
        &mut self.state
    }
}
