//! The end of a request the gateway handles: the response body it sends
//! (Exchange's, streamed, or its own text), and the access-log line and
//! connection activity that end with it, also when the client goes away.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::access_log::LogLine;
use crate::connection::Activity;
use crate::state::Shared;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body (streamed from upstream, or the gateway's own text) that
/// finishes its request when it ends or is dropped: access log line,
/// connection activity.
pub(crate) struct Tracked {
    inner: Either<Incoming, Full<Bytes>>,
    finish: Option<Finish>,
}

impl Tracked {
    /// Exchange's response body, streamed.
    pub(crate) fn upstream(body: Incoming, finish: Finish) -> Tracked {
        Tracked { inner: Either::Left(body), finish: Some(finish) }
    }

    /// A body of the gateway's own (see [`crate::answer`]).
    pub(crate) fn text(text: Bytes, finish: Finish) -> Tracked {
        Tracked { inner: Either::Right(Full::new(text)), finish: Some(finish) }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.finish.take().map_or((), |f| f.done(0)),
            Poll::Ready(Some(Err(_))) => self.finish.take().map_or((), |f| f.done(64)),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.finish.take().map_or((), |f| f.done(0)),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // hyper may drop an empty body without polling it: that is complete.
        if let Some(f) = self.finish.take() {
            f.done(if self.inner.is_end_stream() { 0 } else { 64 });
        }
    }
}

/// What is left to do when a request ends. Dropped unfinished (the client
/// went away), it still logs, with win32 status 64 as IIS does.
pub(crate) struct Finish {
    pub(crate) shared: Arc<Shared>,
    pub(crate) activity: Arc<Activity>,
    pub(crate) started: Instant,
    pub(crate) log: Option<LogLine>,
    pub(crate) status: u16,
    pub(crate) substatus: u16,
    pub(crate) win32: u32,
}

impl Finish {
    pub(crate) fn new(shared: &Arc<Shared>, activity: &Arc<Activity>) -> Finish {
        activity.begin();
        Finish {
            shared: shared.clone(),
            activity: activity.clone(),
            started: Instant::now(),
            log: None,
            status: 0,
            substatus: 0,
            win32: 64,
        }
    }

    pub(crate) fn status(&mut self, status: u16, substatus: u16) {
        self.status = status;
        self.substatus = substatus;
    }

    pub(crate) fn done(mut self, win32: u32) {
        self.win32 = win32;
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.activity.end();
        if let (Some(log), Some(sink)) = (self.log.take(), &self.shared.access_log) {
            sink.send(log.finish(self.status, self.substatus, self.win32, self.started.elapsed()));
        }
    }
}
