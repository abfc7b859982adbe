//! Header handling between the two sides: the request as Exchange gets it
//! (hop-by-hop headers dropped, Host made valid, the client added to
//! X-Forwarded-For) and the hop-by-hop headers of Exchange's responses.

use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, EXPECT, HOST, TE, TRAILER, TRANSFER_ENCODING,
    UPGRADE,
};
use hyper::{Request, Version};

use crate::learn::{ClientBody, Tee, Watched};
use crate::model::{self, ConnInfo};
use crate::rejudge::Rejudge;

/// The body Exchange gets: the client's, streamed (and watched, see
/// [`crate::learn`]), or none. A request without a body is sent with
/// [`Empty`], so that it can be made again (see `forward::Replay`).
pub(crate) type UpstreamBody = Either<Watched, Empty<Bytes>>;

/// The request as Exchange gets it: hop-by-hop headers dropped and the
/// client added to X-Forwarded-For; everything else, Authorization included,
/// unchanged. `tee`, if any, reads the body on its way; `rejudge`, if any,
/// judges it again on a reload (see [`crate::rejudge`]).
pub(crate) fn upstream_request(
    req: Request<ClientBody>,
    info: &ConnInfo,
    peer_xff: Option<&HeaderValue>,
    tee: Option<Tee>,
    rejudge: Option<Rejudge>,
) -> Request<UpstreamBody> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host;
    // Exchange gets the origin form, as from any client.
    if let Some(authority) = parts.uri.authority() {
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            parts.headers.insert(HOST, host);
        }
        let origin = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        if let Ok(uri) = origin.parse() {
            parts.uri = uri;
        }
    }
    // HTTP/1.0 may leave Host out; the request goes on as HTTP/1.1, which
    // must have one: the address the client reached, as IIS would use.
    if !parts.headers.contains_key(HOST) {
        if let Ok(host) = HeaderValue::from_str(&std::net::SocketAddr::new(info.local, info.port).to_string()) {
            parts.headers.insert(HOST, host);
        }
    }
    // hyper answered `100 Continue` to the client when the body was first read.
    parts.headers.remove(EXPECT);
    let xff = model::X_FORWARDED_FOR;
    if info.trusted_peer && parts.headers.contains_key(&xff) {
        // As the request was judged (`model::forwarded_header`).
        let mut value = String::new();
        model::forwarded_lines(&parts.headers, &mut value);
        value.push_str(&info.peer.to_string());
        if let Ok(v) = HeaderValue::from_str(&value) {
            parts.headers.insert(xff, v);
        }
    } else if let Some(v) = peer_xff {
        // The common case: no allocation per request.
        parts.headers.insert(xff, v.clone());
    }
    parts.version = Version::HTTP_11;
    let body =
        if body.is_end_stream() { Either::Right(Empty::new()) } else { Either::Left(Watched::new(body, tee, rejudge)) };
    Request::from_parts(parts, body)
}

/// The fixed hop-by-hop set (RFC 9110 §7.6.1, plus the legacy `Keep-Alive`
/// and `Proxy-Connection`).
const HOP_BY_HOP: [HeaderName; 6] = [
    CONNECTION,
    TE,
    TRAILER,
    UPGRADE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// RFC 9110 §7.6.1: drop `Connection` and the headers it names, and the
/// fixed hop-by-hop set. Framing headers stay: hyper re-frames from them.
/// True when `Connection` said `close`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) -> bool {
    // One pass over the names finds which of the set are here; most requests
    // have none, and responses mostly just `Connection: keep-alive`.
    let mut present = 0u8;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return false;
    }
    let mut close = false;
    // Names other than `keep-alive` and `close` are rare: usually no allocation.
    let mut named = Vec::new();
    for value in headers.get_all(CONNECTION) {
        for token in value.as_bytes().split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                if let Ok(name) = HeaderName::from_bytes(token) {
                    if name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
                        named.push(name);
                    }
                }
            }
        }
    }
    for n in named {
        headers.remove(n);
    }
    for (i, n) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(n);
        }
    }
    close
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header map of `pairs`, in order (for the tests of other modules too).
    pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_go_and_end_to_end_ones_stay() {
        let mut h = headers(&[
            ("Connection", "Keep-Alive, X-Hop"),
            ("connection", " close ,te"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("content-length", "3"),
            ("x-end", "2"),
        ]);
        assert!(strip_hop_by_hop(&mut h), "Connection: close was said");
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["content-length", "x-end"]);

        // Connection may not name framing headers away.
        let mut h = headers(&[("connection", "content-length, transfer-encoding"), ("content-length", "3")]);
        assert!(!strip_hop_by_hop(&mut h));
        assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["content-length"]);

        let mut h = headers(&[("host", "mail"), ("x-hop", "1")]);
        assert!(!strip_hop_by_hop(&mut h));
        assert_eq!(h.len(), 2, "without Connection, nothing is hop-by-hop but the fixed set");
    }
}
