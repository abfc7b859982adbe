//! One request, two log lines: a front end's IIS log and its HttpProxy log
//! both record each request the HttpProxy module handles. The module appends
//! `&cafeReqId=<GUID>;` to the IIS line's cs-uri-query, and that GUID is the
//! HttpProxy line's `RequestId` (Exchange's `ProxyModule.OnEndRequest`
//! appends its logger's `ActivityId`, which is the column `RequestId`).
//! [`RequestIds`] holds the `RequestId`s of the HttpProxy lines read, and
//! marks the IIS line of each as [`Traffic::Duplicate`], so the request
//! counts once, from the line that knows its authentication type.
//!
//! A 401 is the exception: it counts from the IIS line, whose substatus and
//! Windows error tell a failed sign-in (401.1, 1326) from the legs of a
//! challenge (401.2; 401.1 without credentials), and which names the
//! account tried; HttpProxy's line of it names no user. So with both logs
//! read, HttpProxy's 401 lines are the duplicates (even one whose IIS line
//! was not given: the logs of one front end are expected together).
//!
//! The set keeps 8 bytes per HttpProxy request (a 64-bit digest of the GUID),
//! plus a bit that lets each be joined once: an IIS line can only claim a
//! `RequestId` no other IIS line claimed, so a `cafeReqId` copied into a
//! query by a client hides nothing.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::request::{Request, Source, Traffic};

/// The 64-bit digest of a GUID written `8-4-4-4-12` (any case, braces
/// allowed); `None` for anything else.
pub fn guid_key(text: &[u8]) -> Option<u64> {
    let text = text.strip_prefix(b"{").and_then(|t| t.strip_suffix(b"}")).unwrap_or(text);
    if text.len() != 36 {
        return None;
    }
    let mut value: u128 = 0;
    for (i, &b) in text.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        let digit = (b as char).to_digit(16)?;
        value = value << 4 | u128::from(digit);
    }
    // Version 4 GUIDs are random in both halves.
    Some((value >> 64) as u64 ^ value as u64)
}

/// The GUID of the last `cafeReqId=` in an IIS query (the one Exchange
/// appends, in this spelling; an earlier one is the client's), as [`guid_key`].
pub fn cafe_request_id(query: &str) -> Option<u64> {
    const KEY: &[u8] = b"cafeReqId=";
    // Built once: `memmem::rfind` would build a searcher on every line.
    static FINDER: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new(KEY));
    let at = FINDER.rfind(query.as_bytes())?;
    let value = &query.as_bytes()[at + KEY.len()..];
    let end = value.iter().position(|&b| matches!(b, b';' | b'&')).unwrap_or(value.len());
    guid_key(&value[..end])
}

/// The `RequestId`s of the HttpProxy lines read, each joinable once.
#[derive(Debug, Default)]
pub struct RequestIds {
    /// Sorted, without repeats.
    ids: Vec<u64>,
    /// One bit per id: an IIS line was joined to it.
    taken: Vec<AtomicU64>,
}

impl RequestIds {
    /// The set of `ids` (digests from [`guid_key`]), in any order.
    pub fn new(mut ids: Vec<u64>) -> RequestIds {
        ids.sort_unstable();
        ids.dedup();
        ids.shrink_to_fit();
        let taken = (0..ids.len().div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        RequestIds { ids, taken }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Mark `req` as [`Traffic::Duplicate`] when it is an IIS front-end line
    /// whose `cafeReqId` is an HttpProxy `RequestId` not joined before, or an
    /// HttpProxy 401 (`ids` holds no 401's id: its IIS line counts).
    /// Back-end hops keep their own kind: they are another line of the
    /// request already, counted apart.
    pub fn mark(&self, req: &mut Request) {
        if req.source == Source::HttpProxy && req.status == 401 {
            req.traffic = Traffic::Duplicate;
            return;
        }
        if req.source != Source::Iis || req.traffic == Traffic::Backend || self.ids.is_empty() {
            return;
        }
        let Some(id) = cafe_request_id(&req.query) else { return };
        let Ok(i) = self.ids.binary_search(&id) else { return };
        let bit = 1u64 << (i % 64);
        if self.taken[i / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            req.traffic = Traffic::Duplicate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_and_cafe_request_ids() {
        let a = guid_key(b"cde28fc4-299e-4179-b3e9-de56f5c1d9ee").unwrap();
        assert_eq!(guid_key(b"CDE28FC4-299E-4179-B3E9-DE56F5C1D9EE"), Some(a));
        assert_eq!(guid_key(b"{cde28fc4-299e-4179-b3e9-de56f5c1d9ee}"), Some(a));
        assert_eq!(guid_key(b"cde28fc4-299e-4179-b3e9-de56f5c1d9e"), None);
        assert_eq!(guid_key(b"cde28fc4x299e-4179-b3e9-de56f5c1d9ee"), None);
        assert_eq!(guid_key(b"gde28fc4-299e-4179-b3e9-de56f5c1d9ee"), None);
        // The HelseCERT line: `&encoding=;` after it.
        assert_eq!(
            cafe_request_id("&CorrelationID=<empty>;&cafeReqId=cde28fc4-299e-4179-b3e9-de56f5c1d9ee;&encoding=;"),
            Some(a)
        );
        // A client's own `cafeReqId` before Exchange's does not count.
        let q = "x=1&cafeReqId=00000000-0000-4000-8000-000000000000&CorrelationID=<empty>;&cafeReqId=cde28fc4-299e-4179-b3e9-de56f5c1d9ee;";
        assert_eq!(cafe_request_id(q), Some(a));
        assert_eq!(cafe_request_id("Cmd=Sync&User=x"), None);
        assert_eq!(cafe_request_id(""), None);
        assert_eq!(cafe_request_id("cafeReqId="), None);
    }

    #[test]
    fn each_request_id_joins_one_iis_front_end_line() {
        let id = "cde28fc4-299e-4179-b3e9-de56f5c1d9ee";
        let ids = RequestIds::new(vec![guid_key(id.as_bytes()).unwrap(), 7, 7, 3]);
        assert_eq!(ids.len(), 3);
        let line = |source, traffic| Request {
            source,
            traffic,
            query: format!("&CorrelationID=<empty>;&cafeReqId={id};"),
            ..Request::default()
        };
        let mut proxy = line(Source::HttpProxy, Traffic::Person);
        ids.mark(&mut proxy);
        assert_eq!(proxy.traffic, Traffic::Person, "HttpProxy lines are the duplicate of none but a 401");
        let mut refused = Request { status: 401, ..line(Source::HttpProxy, Traffic::Attack) };
        ids.mark(&mut refused);
        assert_eq!(refused.traffic, Traffic::Duplicate, "a 401 counts from its IIS line");
        let mut hop = line(Source::Iis, Traffic::Backend);
        ids.mark(&mut hop);
        assert_eq!(hop.traffic, Traffic::Backend);
        let mut first = line(Source::Iis, Traffic::Attack);
        ids.mark(&mut first);
        assert_eq!(first.traffic, Traffic::Duplicate);
        let mut copy = line(Source::Iis, Traffic::Person);
        ids.mark(&mut copy);
        assert_eq!(copy.traffic, Traffic::Person, "a RequestId joins once");
        let mut other = Request {
            query: "cafeReqId=00000000-0000-4000-8000-000000000001;".into(),
            ..line(Source::Iis, Traffic::Person)
        };
        ids.mark(&mut other);
        assert_eq!(other.traffic, Traffic::Person);
    }
}
