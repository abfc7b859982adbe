//! Every response the gateway makes itself, built in one place: policy
//! denials (403, 404.19, ...) and aborts, refusals before the policy (400,
//! 404.11, 405, 431, and 400 to an HTTP/2 preface), and upstream failures
//! (502, 503). A short text body that names the reason, never cached. Each
//! builder also records the status for the request's access log line, so
//! the log and the response cannot disagree.

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use crate::finish::{Finish, Tracked};
use crate::screen::Refused;

/// The answer to an HTTP/2 client with prior knowledge (`PRI * HTTP/2.0`),
/// written before hyper sees the connection (see [`crate::preface`]): a 400
/// that says why, as nginx answers, instead of hyper's silent close.
pub(crate) const HTTP2_PREFACE: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 45\r\nConnection: close\r\n\r\n400 Bad Request\r\nHTTP/2 is not served here.\r\n";

/// A request the policy aborts (IIS `AbortRequest`): no response at all,
/// hyper drops the connection.
#[derive(Debug, thiserror::Error)]
#[error("request aborted by policy")]
pub(crate) struct Aborted;

/// What a request gets when the gateway answers it.
pub(crate) type Answer = Result<Response<Tracked>, Aborted>;

/// A request the policy denies: its status and substatus (403, 404.19, ...),
/// with the rule that denied it, and the `Location` of a URL Rewrite
/// `Redirect`; status 0 aborts the connection instead.
pub(crate) fn denied(status: u16, substatus: u16, rule: &str, location: Option<&str>, mut finish: Finish) -> Answer {
    if status == 0 {
        // IIS logs an aborted request as 0.0 with win32 status 64.
        finish.status(0, 0);
        return Err(Aborted);
    }
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    finish.status(code.as_u16(), substatus);
    let mut resp = own(code, &format!("Denied by casguard policy rule: {rule}"), false, finish);
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        resp.headers_mut().insert(LOCATION, location);
    }
    Ok(resp)
}

/// The challenge to a request without credentials where the front end runs
/// Windows authentication (see [`crate::opening`]): 401.2, offering NTLM,
/// and Basic in `basic_realm` where the front end runs it too. Not
/// Negotiate, which IIS offers first: a domain-joined client would answer
/// it with a Kerberos ticket, which names no one the gateway can read, so
/// no rule letting users through by name could let it in.
pub(crate) fn challenge(basic_realm: Option<&HeaderValue>, mut finish: Finish) -> Answer {
    finish.status(401, 2);
    let mut resp = own(StatusCode::UNAUTHORIZED, "Sign in to go on.", false, finish);
    let h = resp.headers_mut();
    h.append(WWW_AUTHENTICATE, HeaderValue::from_static("NTLM"));
    let basic = basic_realm.and_then(|realm| {
        let realm = realm.to_str().ok().filter(|r| r.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))?;
        HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")).ok()
    });
    if let Some(basic) = basic {
        h.append(WWW_AUTHENTICATE, basic);
    }
    Ok(resp)
}

/// A request refused before the policy (see [`crate::screen`]). The
/// connection closes after it: a refused request may be framed in a way
/// Exchange would read differently, so nothing more is read from it.
pub(crate) fn refused(refused: Refused, mut finish: Finish) -> Answer {
    let code = StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST);
    finish.status(code.as_u16(), refused.substatus);
    Ok(own(code, refused.reason, true, finish))
}

/// No upstream connection could be had: 502 when one thought up failed,
/// the configured 502 or 503 when every upstream is known down.
pub(crate) fn unreachable(status: StatusCode, mut finish: Finish) -> Answer {
    finish.status(status.as_u16(), 0);
    Ok(own(status, "No Exchange server is reachable.", false, finish))
}

/// The upstream connection failed while the request was on it.
pub(crate) fn bad_gateway(mut finish: Finish) -> Answer {
    finish.status(502, 0);
    Ok(own(StatusCode::BAD_GATEWAY, "", false, finish))
}

/// `status` with `detail` on a second line; `close` ends the connection
/// after it.
fn own(status: StatusCode, detail: &str, close: bool, finish: Finish) -> Response<Tracked> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http2_answer_is_framed_exactly() {
        let text = std::str::from_utf8(HTTP2_PREFACE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), body.len());
        assert!(body.starts_with("400 Bad Request\r\n"));
    }
}
