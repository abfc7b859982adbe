//! The request stream: readers yield records, one [`Feed`] turns each into
//! a [`Request`] (reused from record to record) and hands it to a
//! [`RequestSink`]: the audit's aggregate, a simulation, an export, watch's
//! alerts. A sink that fails (a write error) stops the stream, and its error
//! comes back from [`Feed::finish`].
//!
//! A reader of another log format plugs in with two pieces, and no sink
//! changes: its record type implements [`RecordSource`] (fill a request),
//! and its scanner hands each record to [`Feed::push`]; the drivers in
//! `audit::scan` pick the reader of each file. W3C and HttpProxy records
//! plug in this way. A feed given the HttpProxy `RequestId`s read
//! ([`Feed::with_join`]) marks the IIS lines of the same requests as
//! duplicates (see [`crate::join`]).

use std::convert::Infallible;

use crate::classify::{Interpreter, Reading};
use crate::join::RequestIds;
use crate::request::{LogWanted, Request};

/// A parsed log record that can fill a request.
pub trait RecordSource {
    /// Clear `request` and fill it from this record.
    fn fill(&self, interpreter: &Interpreter, request: &mut Request);

    /// [`fill`](RecordSource::fill) for a sink that reads only what
    /// `reading` says ([`RequestSink::counts_hops_only`],
    /// [`RequestSink::log_tokens`]): a reader may leave out the rest (see
    /// [`Interpreter::read_record_as`]).
    fn fill_as(&self, interpreter: &Interpreter, request: &mut Request, reading: Reading) {
        let _ = reading;
        self.fill(interpreter, request);
    }
}

impl RecordSource for w3c::Record<'_> {
    #[inline]
    fn fill(&self, interpreter: &Interpreter, request: &mut Request) {
        interpreter.read_record(self, request);
    }

    #[inline]
    fn fill_as(&self, interpreter: &Interpreter, request: &mut Request, reading: Reading) {
        interpreter.read_record_as(self, request, reading);
    }
}

impl RecordSource for httpproxy::Record<'_> {
    #[inline]
    fn fill(&self, interpreter: &Interpreter, request: &mut Request) {
        interpreter.read_proxy_record(self, request);
    }
}

/// Takes the requests of a stream, in the order of each part read.
pub trait RequestSink {
    /// Why a request could not be taken; [`Infallible`] for sinks that only count.
    type Error;

    /// One request; an error stops the stream.
    fn request(&mut self, request: &Request) -> Result<(), Self::Error>;

    /// True while this sink only counts a plain back-end hop
    /// ([`Traffic::Backend`](crate::Traffic::Backend) on the Back End site):
    /// it reads neither its client nor its `Log=` tokens, so the feed may
    /// leave them out. Asked before each record.
    fn counts_hops_only(&self) -> bool {
        false
    }

    /// The `Log=` tokens this sink reads: a reader may leave the others
    /// empty. Asked before each record.
    fn log_tokens(&self) -> LogWanted {
        LogWanted::ALL
    }

    /// The stream has ended: write out what is held back. Called once, by
    /// [`Feed::finish`], unless the stream stopped on an error.
    fn finish(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// From records to a sink: interprets each record into one reused request.
pub struct Feed<'a, S: RequestSink> {
    interpreter: &'a Interpreter,
    join: Option<&'a RequestIds>,
    request: Request,
    sink: S,
    error: Option<S::Error>,
}

impl<'a, S: RequestSink> Feed<'a, S> {
    pub fn new(interpreter: &'a Interpreter, sink: S) -> Self {
        Feed { interpreter, join: None, request: Request::default(), sink, error: None }
    }

    /// Mark IIS lines of requests whose HttpProxy line is in `ids` as
    /// duplicates ([`RequestIds::mark`]).
    pub fn with_join(mut self, ids: Option<&'a RequestIds>) -> Self {
        self.join = ids;
        self
    }

    /// Interpret `record` and hand it to the sink, unless the sink failed before.
    #[inline]
    pub fn push<R: RecordSource + ?Sized>(&mut self, record: &R) {
        if self.error.is_some() {
            return;
        }
        let reading = Reading { hops_counted: self.sink.counts_hops_only(), log: self.sink.log_tokens() };
        if reading == Reading::FULL {
            record.fill(self.interpreter, &mut self.request);
        } else {
            record.fill_as(self.interpreter, &mut self.request, reading);
        }
        if let Some(ids) = self.join {
            ids.mark(&mut self.request);
        }
        if let Err(e) = self.sink.request(&self.request) {
            self.error = Some(e);
        }
    }

    /// True once the sink has failed: readers stop.
    #[inline]
    pub fn stopped(&self) -> bool {
        self.error.is_some()
    }

    pub fn interpreter(&self) -> &'a Interpreter {
        self.interpreter
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Combine `other` into this feed: the sinks with `merge`, and the first
    /// error is kept.
    pub fn merge(&mut self, other: Feed<'a, S>, merge: impl FnOnce(&mut S, S)) {
        if self.error.is_none() {
            self.error = other.error;
        }
        merge(&mut self.sink, other.sink);
    }

    /// The sink, finished ([`RequestSink::finish`]), or the error that
    /// stopped it.
    pub fn finish(mut self) -> Result<S, S::Error> {
        match self.error {
            Some(e) => Err(e),
            None => {
                self.sink.finish()?;
                Ok(self.sink)
            }
        }
    }
}

impl<'a, S: RequestSink<Error = Infallible>> Feed<'a, S> {
    /// The finished sink of a stream that cannot fail.
    pub fn into_sink(self) -> S {
        match self.finish() {
            Ok(sink) => sink,
            Err(never) => match never {},
        }
    }
}

/// One feed for every format whose records can fill a request: a new
/// reader plugs in by naming its [`w3c::Format`] and a [`RecordSource`].
impl<F, S> w3c::Visitor<F> for Feed<'_, S>
where
    F: w3c::Format,
    for<'r> F::Record<'r>: RecordSource,
    S: RequestSink + Send,
    S::Error: Send,
{
    #[inline]
    fn record(&mut self, record: &F::Record<'_>) {
        self.push(record);
    }

    #[inline]
    fn stopped(&self) -> bool {
        Feed::stopped(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps users until its "disk" is full.
    struct Users {
        room: usize,
        users: Vec<String>,
    }

    impl RequestSink for Users {
        type Error = String;
        fn request(&mut self, request: &Request) -> Result<(), String> {
            if self.users.len() == self.room {
                return Err(format!("no room for {}", request.user));
            }
            self.users.push(request.user.clone());
            Ok(())
        }
    }

    /// Keeps the log tokens of each request, reading only `wanted`.
    struct Tokens {
        wanted: LogWanted,
        seen: Vec<crate::LogTokens>,
    }

    impl RequestSink for Tokens {
        type Error = Infallible;
        fn request(&mut self, request: &Request) -> Result<(), Infallible> {
            self.seen.push(request.activesync.log.clone());
            Ok(())
        }
        fn log_tokens(&self) -> LogWanted {
            self.wanted
        }
    }

    #[test]
    fn a_sink_gets_the_log_tokens_it_reads_and_prxfrom() {
        let log = "#Fields: date time cs-uri-stem cs-uri-query s-port\n\
2026-11-02 10:00:00 /Microsoft-Server-ActiveSync/default.eas Cmd=Sync&DeviceId=A&DeviceType=iPhone&Log=V161_HH:mail.contoso.com_SmtpAdrs:a%40b.c_DevOS:iOS+17_As:AllowedG_PrxFrom:10.0.0.1_ 443\n";
        let interpreter = Interpreter::builtin();
        let scan = |wanted| {
            let mut feed = Feed::new(&interpreter, Tokens { wanted, seen: Vec::new() });
            w3c::scan_bytes(log.as_bytes(), &w3c::ScanOptions::default(), &mut feed);
            feed.into_sink().seen.pop().unwrap()
        };
        let all = scan(LogWanted::ALL);
        assert_eq!((all.smtp_address.as_str(), all.device_os.as_str()), ("a@b.c", "iOS 17"));
        let some = scan(LogWanted::DEVICE_OS);
        let expected =
            crate::LogTokens { device_os: "iOS 17".into(), proxied_from: "10.0.0.1".into(), ..Default::default() };
        assert_eq!(some, expected);
    }

    #[test]
    fn a_failing_sink_stops_the_scan_and_its_error_comes_back() {
        let mut log = String::from("#Fields: date time cs-username\n");
        for user in ["alice", "bob", "carol", "dave"] {
            log.push_str(&format!("2026-11-02 10:00:00 {user}\n"));
        }
        let interpreter = Interpreter::builtin();
        let mut feed = Feed::new(&interpreter, Users { room: 2, users: Vec::new() });
        let stats = w3c::scan_bytes(log.as_bytes(), &w3c::ScanOptions::default(), &mut feed);
        assert_eq!(feed.sink().users, ["alice", "bob"]);
        assert_eq!(stats.lines, 3, "the scan stops at the line the sink refused");
        assert_eq!(feed.finish().err().as_deref(), Some("no room for carol"));
    }
}
