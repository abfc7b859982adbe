//! What the gateway refuses before any policy sees a request: what IIS
//! itself would refuse, and what Exchange and the gateway could read two
//! ways. Refusing is the only safe answer to an ambiguous request: a rule
//! that read one value must not pass a request Exchange reads another way.

use hyper::header::{
    HeaderMap, HeaderName, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, TRANSFER_ENCODING,
    USER_AGENT,
};
use hyper::{Method, Uri, Version};

use crate::model::{MS_ASPROTOCOLVERSION, X_FORWARDED_FOR};

/// The identity Exchange's front end serializes for its back end
/// (`X-CommonAccessToken`; `X-Rps-CAT` in a query is refused by the model,
/// `exchange::Request::ambiguity`, in simulate too). No client sends it;
/// the back end trusts it, so one that reached it would name the user.
const X_COMMON_ACCESS_TOKEN: HeaderName = HeaderName::from_static("x-commonaccesstoken");
const INTERNAL_IDENTITY: Refused = Refused::new(400, exchange::FRONT_END_IDENTITY);

/// A request the gateway answers itself, without asking the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub substatus: u16,
    pub reason: &'static str,
}

impl Refused {
    pub(crate) const fn new(status: u16, reason: &'static str) -> Refused {
        Refused { status, substatus: 0, reason }
    }
}

impl From<exchange::url::Refusal> for Refused {
    fn from(r: exchange::url::Refusal) -> Refused {
        let (status, substatus) = r.status();
        Refused { status, substatus, reason: r.reason() }
    }
}

/// An X-Forwarded-For chain from a trusted proxy whose client is internal
/// with a public address left of it (see `model::fill`): a proxy missing
/// from `--trusted-proxy`, or an inside client's claim.
pub(crate) const FORWARDED_FOR_AMBIGUOUS: Refused = Refused::new(
    400,
    "X-Forwarded-For names an internal client after a public address (a proxy missing from --trusted-proxy?)",
);

/// X-Forwarded-For naming a public address from an internal peer that is
/// no trusted proxy: a balancer or reverse proxy missing from
/// `--trusted-proxy`, or an inside client's claim. The gateway judges such a
/// request by the peer, internal, while a log's line of it is judged by that
/// public client (c-ip is private: see `Interpreter::client_ip`), so every
/// outside client through an unlisted proxy would pass a rule that excepts
/// the internal network. Only the list can tell the two apart: the request
/// is refused, as a trusted chain that is as ambiguous is.
const FORWARDED_BY_UNLISTED: Refused = Refused::new(
    400,
    "X-Forwarded-For names a public client from an internal peer that is no --trusted-proxy (a proxy missing from it?)",
);

/// An NTLM AUTHENTICATE message whose Unicode flag differs from the
/// NEGOTIATE message before it on the connection: Windows reads its names
/// in the character set the handshake negotiated (MS-NLMP 2.2.1.3), the
/// gateway by the flag, and the same bytes are `boss` in one and two CJK
/// characters in the other.
pub(crate) const NTLM_CHARSET: Refused =
    Refused::new(400, "NTLM AUTHENTICATE message in another character set than its handshake negotiated");

/// A query whose `access_token` comes twice with different values: which
/// one Exchange reads is not known (see [`crate::model::query_token`]).
pub(crate) const TOKEN_TWICE: Refused = Refused::new(400, "access_token given twice in the query");

/// A credential's parameter (`access_token`, a sign-in form's `username`)
/// named with `ı` for `i` or `ſ` for `s`: no parameter to Exchange, whose
/// .NET on Windows takes no letter beyond ASCII for an ASCII one, but the
/// name where .NET cases through ICU ([`exchange::text::NameMatch`]).
/// Read as nobody's, it could ride past a rule with an exception for the
/// user it names; read as the user's, past one that denies nobody. Only an
/// evasion spells a name so.
pub(crate) const LOOKALIKE_NAME: Refused =
    Refused::new(400, "a credential's parameter named with a look-alike letter (\u{131} or \u{17f})");

/// A query's `access_token` on a page other than WOPI's, without a bearer
/// header carrying it: Exchange reads it nowhere else and serves such a
/// request as anonymous (see [`crate::model::reads_query_token`]).
pub(crate) const TOKEN_NOT_READ: Refused =
    Refused::new(400, "access_token in the query of a page that does not read it (only WOPI's do)");

/// A query's `access_token` beside other credentials: an Authorization header
/// other than `Bearer` with the same token, or a connection an NTLM or
/// Negotiate handshake signed in. Which of the two Exchange signs the
/// request in as is not known.
pub(crate) const TOKEN_BESIDE_CREDENTIALS: Refused =
    Refused::new(400, "access_token in the query beside other credentials");

/// Headers the policy or the framing reads: one value each, or the request
/// is refused. A second User-Agent could pass a user-agent rule that read
/// the first while Exchange reads the other; a second Authorization or Host
/// could name another user or site; a second Content-Length frames the body
/// two ways (RFC 9112 §6.3; hyper already refuses different lengths and
/// merges equal ones); a second MS-ASProtocolVersion gives the model one
/// version and Exchange (ASP.NET joins them) another; a second
/// Transfer-Encoding reaches Exchange as two lines (`chunked` twice would be
/// decoded twice there, once here). nginx refuses a second Host the same way.
const SINGLE: [(HeaderName, &str); 6] = [
    (USER_AGENT, "repeated User-Agent header"),
    (HOST, "repeated Host header"),
    (AUTHORIZATION, "repeated Authorization header"),
    (CONTENT_LENGTH, "repeated Content-Length header"),
    (MS_ASPROTOCOLVERSION, "repeated MS-ASProtocolVersion header"),
    (TRANSFER_ENCODING, "repeated Transfer-Encoding header"),
];

/// Headers the request is judged or logged by, which `Connection` must not
/// name: as hop-by-hop they would be dropped before Exchange (RFC 9110
/// §7.6.1), so Exchange would get another request than the one judged (no
/// User-Agent, no Authorization, the gateway's Host, its own X-Forwarded-For).
const JUDGED: [&[u8]; 5] = [b"user-agent", b"host", b"authorization", b"ms-asprotocolversion", b"x-forwarded-for"];

/// Where Host is in `SINGLE`.
const HOST_AT: usize = 1;

/// Check a request head. `max_head_bytes` bounds the request line and
/// headers as the client sent them (hyper's own buffer limit lets a head of
/// up to about twice that through). `unlisted`: the peer is internal and no
/// trusted proxy (see [`FORWARDED_BY_UNLISTED`]).
pub(crate) fn head(
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
    max_head_bytes: usize,
    unlisted: bool,
) -> Result<(), Refused> {
    if method == Method::CONNECT {
        return Err(Refused::new(405, "CONNECT is not served"));
    }
    // One pass over the headers for the head's size and for which of
    // `SINGLE` come twice: a lookup of each name would hash it again.
    let mut size = method.as_str().len() + uri_len(uri) + 12 + 2;
    let (mut seen, mut repeated) = (0u8, 0u8);
    let (mut underscored, mut plain) = (false, true);
    for (name, value) in headers {
        size += name.as_str().len() + value.len() + 4;
        if let Some(i) = SINGLE.iter().position(|(single, _)| single == name) {
            repeated |= seen & (1 << i);
            seen |= 1 << i;
        }
        underscored |= name.as_str().contains('_');
        // ProxyLogon: on any path, an unpatched front end proxies to the
        // back end and path the cookie names, whatever path was judged.
        if name == COOKIE && exchange::url::cookie_names_a_backend(value.as_bytes()) {
            return Err(Refused::new(400, "cookie names a back end to proxy to (ProxyLogon)"));
        }
        if name == X_COMMON_ACCESS_TOKEN {
            return Err(INTERNAL_IDENTITY);
        }
        if unlisted && name == X_FORWARDED_FOR && names_public(value.as_bytes()) {
            return Err(FORWARDED_BY_UNLISTED);
        }
        // What `charset` checks, in this pass: a lookup of each name costs more.
        if (name == CONTENT_TYPE && !plain_content_type(value.as_bytes()))
            || (name == X_UP_DEVCAP_POST_CHARSET && !plain_charset(value.as_bytes()))
        {
            plain = false;
        }
    }
    if size > max_head_bytes {
        return Err(Refused::new(431, "request head over the limit"));
    }
    if repeated != 0 {
        return Err(Refused::new(400, SINGLE[repeated.trailing_zeros() as usize].1));
    }
    // hyper decodes only a final `chunked`, and forwards the header as sent:
    // `identity, chunked` or `gzip, chunked` would reach Exchange, which may
    // frame the body another way. Only plain `chunked` is served (RFC 9112
    // §6.1: 501 for a coding not understood; nginx does the same).
    if let Some(te) = headers.get(TRANSFER_ENCODING) {
        if !te.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked") {
            return Err(Refused::new(501, "Transfer-Encoding other than chunked"));
        }
    }
    // `User_Agent` is not `User-Agent` here, but is to CGI-style server
    // variables (HTTP_USER_AGENT), as nginx and Apache warn: refused, as
    // nginx drops such headers by default.
    if underscored {
        for name in headers.keys().filter(|n| n.as_str().contains('_')) {
            let dashed = name.as_str().replace('_', "-");
            if JUDGED.contains(&dashed.as_bytes()) {
                return Err(Refused::new(400, "header name spells a judged header with '_'"));
            }
        }
    }
    for value in headers.get_all(CONNECTION) {
        let mut tokens = value.as_bytes().split(|&b| b == b',').map(<[u8]>::trim_ascii);
        if tokens.any(|t| JUDGED.iter().any(|j| t.eq_ignore_ascii_case(j))) {
            return Err(Refused::new(400, "Connection names a header the request is judged by"));
        }
    }
    if !plain {
        return Err(CHARSET);
    }
    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without
    // Host; an absolute-form target carries its own.
    if version == Version::HTTP_11 && uri.authority().is_none() && seen & (1 << HOST_AT) == 0 {
        return Err(Refused::new(400, "HTTP/1.1 request without Host"));
    }
    Ok(())
}

/// The header ASP.NET reads a charset from, before Content-Type's, for a
/// user agent starting `UP` (Openwave browsers), body or not.
const X_UP_DEVCAP_POST_CHARSET: HeaderName = HeaderName::from_static("x-up-devcap-post-charset");

/// Character sets in which ASCII reads as ASCII, one byte each: a query or
/// form decoded in one reads as the gateway reads it (UTF-8; what is not
/// UTF-8 is refused or read as nothing a rule names).
/// With the spellings clients use for them (`utf8`, `latin1`, ...): a name
/// .NET does not know leaves the request in UTF-8, one it knows is one of
/// these, so neither is a reason to refuse a client.
const PLAIN_CHARSETS: [&[u8]; 9] =
    [b"utf-8", b"utf8", b"us-ascii", b"ascii", b"iso-8859-1", b"iso8859-1", b"iso_8859-1", b"latin1", b"windows-1252"];

/// A request ASP.NET would decode in another character set: its
/// `ContentEncoding` comes from a `charset` in Content-Type (for a request
/// with a body; `GetAttributeFromHeader` finds one after `;`, `,` or any
/// white space) or from `x-up-devcap-post-charset`, and `Request.QueryString`
/// and `Request.Form` are decoded in it (the query in UTF-8 only for
/// UTF-16LE). In EBCDIC (`ibm037`) `%C4%85%A5%89%83%85%E3%A8%97%85` is
/// `DeviceType`, and in UTF-16 or ISO-2022-JP a form's or query's names and
/// values are other bytes than the gateway reads: a device type, a command
/// or a sign-in's user would reach Exchange unread. Clients send UTF-8 or
/// no charset: anything else that says `charset` is refused.
pub(crate) fn charset(headers: &HeaderMap) -> Result<(), Refused> {
    let devcap = headers.get_all(X_UP_DEVCAP_POST_CHARSET).iter().all(|v| plain_charset(v.as_bytes()));
    let types = headers.get_all(CONTENT_TYPE).iter().all(|v| plain_content_type(v.as_bytes()));
    if devcap && types {
        Ok(())
    } else {
        Err(CHARSET)
    }
}

const CHARSET: Refused =
    Refused::new(400, "a charset other than UTF-8 (ASP.NET would decode the query and form in it)");

/// A charset name (quoted or not) among [`PLAIN_CHARSETS`].
fn plain_charset(name: &[u8]) -> bool {
    let name = name.trim_ascii();
    let name = name.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(name);
    PLAIN_CHARSETS.iter().any(|c| name.eq_ignore_ascii_case(c))
}

/// A Content-Type value whose every `charset` (wherever ASP.NET might find
/// one) names a plain charset.
fn plain_content_type(value: &[u8]) -> bool {
    let mut rest = value;
    while let Some(at) = find_ci(rest, b"charset") {
        let Some(value) = rest[at + 7..].trim_ascii_start().strip_prefix(b"=") else { return false };
        let value = value.trim_ascii_start();
        let end = value.iter().position(|&b| matches!(b, b';' | b',' | b' ' | b'\t')).unwrap_or(value.len());
        if !plain_charset(&value[..end]) {
            return false;
        }
        rest = &value[end..];
    }
    true
}

/// Whether an X-Forwarded-For line names a public address.
fn names_public(line: &[u8]) -> bool {
    line.split(|&b| b == b',')
        .filter_map(|e| exchange::classify::parse_forwarded(&String::from_utf8_lossy(e.trim_ascii())))
        .any(|ip| !exchange::networks::is_private_addr(ip))
}

/// Where `needle` (lower-case ASCII) first occurs in `hay`, in any case.
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

fn uri_len(uri: &Uri) -> usize {
    let authority = uri.scheme_str().map_or(0, |s| s.len() + 3) + uri.authority().map_or(0, |a| a.as_str().len());
    authority + uri.path_and_query().map_or(1, |p| p.as_str().len())
}

/// An Autodiscover request whose Cookie would make Exchange's front end
/// route it to another path than the one judged: an explicit logon
/// ([`exchange::url::routes_past_its_path`]; ASP.NET's `Params` reads
/// cookies too). ProxyLogon's back-end cookies, on any path, are [`head`]'s.
/// The query's part of this check, and every other ambiguity the model
/// shows, is `policy::evaluate`'s (`exchange::Request::ambiguity`), so that
/// a simulation refuses the same logged requests; IIS logs no cookies by
/// default.
#[inline]
pub fn cookie_routing(m: &exchange::Request, headers: &HeaderMap) -> Result<(), Refused> {
    if m.protocol != exchange::Protocol::Autodiscover {
        return Ok(());
    }
    for cookie in headers.get_all(COOKIE) {
        if exchange::url::routes_past_its_path(&m.stem, "", cookie.as_bytes()) {
            return Err(Refused::new(400, exchange::ROUTED_PAST_ITS_PATH));
        }
    }
    Ok(())
}

/// An `Authorization` header whose scheme IIS runs ends at neither
/// whitespace nor the end (see [`crate::credentials::scheme_ends_oddly`]).
pub(crate) const SCHEME_ENDS_ODDLY: &str = "Authorization scheme not followed by a space";

/// Basic credentials the gateway cannot read: `YmFkdXNlcjpwdw` (no
/// padding), `YmFkdXNl cjpwdw==` (a space inside; .NET's
/// `Convert.FromBase64String` skips it) or trailing bytes named nobody to a
/// user rule, while Windows may decode them to a user. So is a user name
/// Windows reads in its own code page (see [`crate::model::AuthUser::Unreadable`]).
/// An NTLM or Negotiate token that does not decode is refused too, and
/// Digest credentials whose user IIS may read otherwise (see
/// [`crate::model::AuthUser::Undecoded`]), and an NTLM token with the NTLM
/// signature twice or where SPNEGO does not point (see
/// [`crate::model::ntlm_ambiguous`]).
pub fn credentials(
    m: &exchange::Request,
    auth: Option<&crate::model::AuthUser>,
    headers: &HeaderMap,
) -> Result<(), Refused> {
    // No Authorization header, nothing to read two ways (the common case:
    // no header lookup).
    let Some(auth) = auth else { return Ok(()) };
    if m.auth == exchange::AuthType::Basic && *auth == crate::model::AuthUser::Unknown {
        return Err(Refused::new(400, "Basic credentials that do not decode"));
    }
    if *auth == crate::model::AuthUser::Unreadable {
        return Err(Refused::new(400, "user name in a code page the gateway cannot read"));
    }
    if *auth == crate::model::AuthUser::Undecoded {
        return Err(Refused::new(400, "NTLM, Negotiate or Digest credentials that do not decode"));
    }
    let Some(value) = headers.get(AUTHORIZATION).map(|v| v.as_bytes()) else { return Ok(()) };
    if crate::credentials::scheme_ends_oddly(value) {
        return Err(Refused::new(400, SCHEME_ENDS_ODDLY));
    }
    if crate::model::ntlm_ambiguous(value) {
        return Err(Refused::new(400, "NTLM token with two NTLM messages"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::tests::headers;
    use hyper::header::HeaderValue;

    fn check(method: &str, uri: &str, version: Version, pairs: &[(&str, &str)]) -> Result<(), Refused> {
        head(&method.parse().unwrap(), &uri.parse().unwrap(), version, &headers(pairs), 8192, false)
    }

    #[test]
    fn one_value_for_what_policy_reads() {
        let ok = [("host", "mail"), ("user-agent", "a")];
        assert_eq!(check("GET", "/owa/", Version::HTTP_11, &ok), Ok(()));
        for name in ["user-agent", "host", "authorization", "content-length"] {
            let mut pairs = ok.to_vec();
            pairs.push((name, "1"));
            pairs.push((name, "1"));
            assert_eq!(check("GET", "/owa/", Version::HTTP_11, &pairs).unwrap_err().status, 400, "{name}");
        }
        assert_eq!(SINGLE[HOST_AT].0, HOST);
        let versions = [("host", "m"), ("ms-asprotocolversion", "14.1"), ("MS-ASProtocolVersion", "16.1")];
        assert_eq!(
            check("POST", "/Microsoft-Server-ActiveSync", Version::HTTP_11, &versions).unwrap_err().reason,
            "repeated MS-ASProtocolVersion header"
        );
        // Two repeated: the first of User-Agent, Host, Authorization, Content-Length is named.
        let pairs = [("authorization", "a"), ("host", "m"), ("authorization", "b"), ("host", "n")];
        assert_eq!(check("GET", "/owa/", Version::HTTP_11, &pairs).unwrap_err().reason, "repeated Host header");
        // Over the limit and repeated: the limit first.
        let big = "a".repeat(8200);
        let pairs = [("host", "m"), ("host", "n"), ("x", big.as_str())];
        assert_eq!(check("GET", "/owa/", Version::HTTP_11, &pairs).unwrap_err().status, 431);
    }

    #[test]
    fn connection_may_not_drop_what_the_request_is_judged_by() {
        for named in
            ["user-agent", "close, Host", "keep-alive,AUTHORIZATION ", "MS-ASProtocolVersion", "x-forwarded-for"]
        {
            let pairs = [("host", "m"), ("user-agent", "a"), ("connection", named)];
            let refused = check("GET", "/owa/", Version::HTTP_11, &pairs).unwrap_err();
            assert_eq!((refused.status, refused.reason), (400, "Connection names a header the request is judged by"));
        }
        // A second Connection line is read too.
        let pairs = [("host", "m"), ("connection", "keep-alive"), ("connection", "user-agent")];
        assert_eq!(check("GET", "/owa/", Version::HTTP_11, &pairs).unwrap_err().status, 400);
        for name in ["user_agent", "MS_ASProtocolVersion", "x_forwarded-for"] {
            let refused = check("GET", "/owa/", Version::HTTP_11, &[("host", "m"), (name, "a")]).unwrap_err();
            assert_eq!(refused.reason, "header name spells a judged header with '_'", "{name}");
        }
        assert_eq!(check("GET", "/owa/", Version::HTTP_11, &[("host", "m"), ("x_custom", "a")]), Ok(()));
        // What clients send: close, keep-alive, TE, Upgrade.
        for ok in ["close", "Keep-Alive", "TE, close", "Upgrade", "upgrade, HTTP2-Settings", "x-user-agent"] {
            assert_eq!(check("GET", "/owa/", Version::HTTP_11, &[("host", "m"), ("connection", ok)]), Ok(()), "{ok}");
        }
    }

    #[test]
    fn only_a_plain_chunked_transfer_encoding_is_served() {
        let te = |v: &'static str| check("POST", "/owa/", Version::HTTP_11, &[("host", "m"), ("transfer-encoding", v)]);
        assert_eq!(te("chunked"), Ok(()));
        assert_eq!(te("Chunked"), Ok(()));
        for v in ["identity, chunked", "gzip, chunked", "chunked, chunked", "xchunked"] {
            assert_eq!(te(v).unwrap_err().status, 501, "{v}");
        }
        let twice = [("host", "m"), ("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")];
        assert_eq!(
            check("POST", "/owa/", Version::HTTP_11, &twice).unwrap_err().reason,
            "repeated Transfer-Encoding header"
        );
    }

    #[test]
    fn a_charset_asp_net_would_decode_otherwise_is_refused() {
        let ct = |v: &'static str| check("POST", "/owa/", Version::HTTP_11, &[("host", "m"), ("content-type", v)]);
        for ok in [
            "application/vnd.ms-sync.wbxml",
            "text/xml; charset=utf-8",
            "application/x-www-form-urlencoded;charset=\"UTF-8\"",
            "application/json; Charset = us-ascii; x=y",
            "text/plain; charset=iso-8859-1",
            "text/xml; charset=utf8",
            "text/xml; charset=Latin1",
        ] {
            assert_eq!(ct(ok), Ok(()), "{ok}");
        }
        for bad in [
            "application/vnd.ms-sync.wbxml; charset=ibm037",
            "application/x-www-form-urlencoded charset=utf-16le",
            "text/xml; x=1,charset=iso-2022-jp",
            "text/xml; charset=utf-8; charset=utf-7",
            "text/xml; charset",
            "text/xml; charset=\"utf-8;x\"",
        ] {
            assert_eq!(ct(bad).unwrap_err().status, 400, "{bad}");
        }
        let nbsp = HeaderValue::from_bytes(b"text/xml; x\xa0charset\xa0=utf-16").unwrap();
        let mut h = headers(&[("host", "m")]);
        h.insert(CONTENT_TYPE, nbsp);
        assert!(charset(&h).is_err(), "white space .NET reads as such");
        let devcap = |v: &str| charset(&headers(&[("user-agent", "UP.Browser/6"), ("x-up-devcap-post-charset", v)]));
        assert!(devcap("ibm500").is_err());
        assert_eq!(devcap("utf-8"), Ok(()));
    }

    #[test]
    fn what_http_does_not_allow_here() {
        assert_eq!(check("CONNECT", "mail:443", Version::HTTP_11, &[("host", "mail")]).unwrap_err().status, 405);
        assert_eq!(check("GET", "/owa/", Version::HTTP_11, &[]).unwrap_err().status, 400);
        assert_eq!(check("GET", "/owa/", Version::HTTP_10, &[]), Ok(()));
        assert_eq!(check("GET", "http://mail/owa/", Version::HTTP_11, &[]), Ok(()));
        let big = "a".repeat(8000);
        assert_eq!(check("GET", "/owa/", Version::HTTP_11, &[("host", "m"), ("x", &big)]), Ok(()));
        let bigger = "a".repeat(8200);
        assert_eq!(check("GET", "/owa/", Version::HTTP_11, &[("host", "m"), ("x", &bigger)]).unwrap_err().status, 431);
    }
}
