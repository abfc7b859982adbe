//! Every response the gateway makes itself, built in one place: policy
//! denials (403, 404.19, ...), refusals before the policy (400, 404.11,
//! 405, 431), and upstream failures (502, 503). A short text body that
//! names the reason, never cached.

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::proxy::{Finish, Tracked};

/// `status` with `detail` on a second line. `close` ends the connection
/// after it: a refused request may be framed in a way Exchange would read
/// differently, so nothing more is read from that connection.
pub(crate) fn own(status: StatusCode, detail: &str, close: bool, finish: Finish) -> Response<Tracked> {
    let mut text = format!("{} {}\r\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    if !detail.is_empty() {
        text.push_str(detail);
        text.push_str("\r\n");
    }
    let mut resp = Response::new(Tracked::text(Bytes::from(text), finish));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if close {
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
