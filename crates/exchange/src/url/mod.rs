//! URL paths and query values as IIS and Exchange read them.
//!
//! A rule on `/EWS` must hold for every spelling that reaches EWS, so the
//! gateway decides on the path IIS routes, not on the bytes a client chose.
//! [`decode_path`] follows the layers a request crosses on an Exchange front
//! end, in order, and refuses what one of them refuses:
//!
//! 1. HTTP.sys (KB 820129, "Http.sys registry settings for Windows"): `%XX`
//!    decoded once, `%uNNNN` too (`PercentUAllowed` = 1); a `%` that starts no
//!    escape is 400 (blogs.iis.net/nazim, "Use of special characters like '%'
//!    '.' and ':' in an IIS URL"); escapes of U+0000–U+001F and U+007F–U+009F
//!    are 400 (`AllowRestrictedChars` = 0); the bytes are UTF-8 when they
//!    are valid UTF-8, else the system code page (`FavorUTF8`,
//!    `EnableNonUTF8` = 1; Windows-1252 assumed); `\` is `/`; `.` and `..`
//!    segments are resolved, and `..` above the root is 400; a segment over
//!    260 characters (`UrlSegmentMaxLength`) or more than 255 segments
//!    (`UrlSegmentMaxCount`) is 400.
//! 2. IIS request filtering: a path that still holds an escape after one
//!    decoding is double-escaped, 404.11 (`allowDoubleEscaping` = false).
//!    Exchange removes the native module from its Default Web Site (its
//!    web.config: `<remove name="RequestFilteringModule" />`), so there the
//!    next layer refuses the same requests with 400; either way they never
//!    reach Exchange. A `+` stays a literal `+` in a path (HTTP.sys does not
//!    read it as a space), so it cannot change what a rule sees and is let
//!    through, as Exchange does.
//! 3. ASP.NET, which runs for every request on an Exchange front end (its
//!    HttpProxy module is managed): `requestPathInvalidChars` defaults to
//!    `< > * % & : \ ?`, each 400 when found in the decoded path.
//!
//! Then, for matching only: trailing dots and spaces of a segment go, as
//! Windows drops them from file names, and the four characters whose simple
//! case mapping crosses into ASCII (`ſ` U+017F, `ı` U+0131, `K` U+212A, `İ`
//! U+0130) become their ASCII letters, since IIS compares paths without
//! regard to case. Neither changes what Exchange serves; both keep a spelling
//! from slipping past a rule. Empty segments (`//`) are dropped.
//!
//! [`normalize_path`] is the part that applies to a path already decoded (a
//! logged `cs-uri-stem`, or the output of [`decode_path`]): it never refuses
//! and is idempotent. [`decode_query_value_into`] decodes a query value as
//! ASP.NET's `HttpUtility.UrlDecode` does (`+` as space, `%XX`, `%uNNNN`).

mod fuzzing;
mod query;

use std::fmt;

pub use fuzzing::{fuzz, respell};
pub use query::{client_query_into, decode_query_value_into, is_cafe_req_id, redact_secrets, REDACTED};

/// Longest path segment HTTP.sys accepts (`UrlSegmentMaxLength`).
pub const MAX_SEGMENT_CHARS: usize = 260;
/// Most path segments HTTP.sys accepts (`UrlSegmentMaxCount`).
pub const MAX_SEGMENTS: usize = 255;

/// Why IIS refuses a request path before Exchange sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Not a path: the request target is not in origin form (`*`, an authority).
    NotOriginForm,
    /// A `%` that starts no valid escape, or a `%u` escape of half a surrogate pair (HTTP.sys, 400).
    BadEscape,
    /// An escape of a control character (HTTP.sys `AllowRestrictedChars`, 400).
    RestrictedChar,
    /// `..` above the root (HTTP.sys, 400).
    AboveRoot,
    /// A segment longer than [`MAX_SEGMENT_CHARS`] (HTTP.sys, 400).
    SegmentTooLong,
    /// More than [`MAX_SEGMENTS`] segments (HTTP.sys, 400).
    TooManySegments,
    /// An escape left after decoding once (IIS request filtering, 404.11).
    DoubleEscaped,
    /// A character ASP.NET refuses in a path: `< > * % & : ?` (400).
    InvalidChar,
}

impl Refusal {
    /// The HTTP status and IIS substatus IIS answers with.
    pub fn status(self) -> (u16, u16) {
        match self {
            Refusal::DoubleEscaped => (404, 11),
            _ => (400, 0),
        }
    }

    /// Which layer refuses it and why, for the event log.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NotOriginForm => "request target is not a path",
            Refusal::BadEscape => "invalid escape in the path (HTTP.sys)",
            Refusal::RestrictedChar => "escaped control character in the path (HTTP.sys)",
            Refusal::AboveRoot => "'..' above the root (HTTP.sys)",
            Refusal::SegmentTooLong => "path segment over 260 characters (HTTP.sys)",
            Refusal::TooManySegments => "more than 255 path segments (HTTP.sys)",
            Refusal::DoubleEscaped => "double-escaped path (IIS request filtering, 404.11)",
            Refusal::InvalidChar => "character ASP.NET refuses in a path",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Refusal {}

/// Decode a raw request path (no query) as HTTP.sys, IIS and ASP.NET do,
/// into `out` (cleared first). On `Err`, `out` still holds the best reading
/// of the path, for logs; it must not be used to decide.
pub fn decode_path(raw: &str, out: &mut String) -> Result<(), Refusal> {
    out.clear();
    if is_canonical(raw) {
        out.push_str(raw);
        return Ok(());
    }
    let mut refusal = None;
    let text = match percent_decode_path(raw.as_bytes()) {
        Ok(t) => t,
        Err(r) => {
            refusal = Some(r);
            String::from_utf8_lossy(raw.as_bytes()).into_owned()
        }
    };
    if !raw.starts_with('/') {
        refusal = refusal.or(Some(Refusal::NotOriginForm));
    }
    for (i, c) in text.char_indices() {
        let found = match c {
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => Some(Refusal::RestrictedChar),
            '%' if escape_at(&text.as_bytes()[i..]) => Some(Refusal::DoubleEscaped),
            '<' | '>' | '*' | '%' | '&' | ':' | '?' => Some(Refusal::InvalidChar),
            _ => None,
        };
        refusal = refusal.or(found);
    }
    let shape = resolve(&text, out);
    match refusal.or(shape) {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

/// The canonical form of a path that is already decoded (a logged
/// `cs-uri-stem`, or what [`decode_path`] made), into `out` (cleared first):
/// `\` as `/`, dot and empty segments resolved (`..` stops at the root),
/// trailing dots and spaces dropped, the case-crossing letters folded.
/// Never refuses; `normalize_path(normalize_path(p)) == normalize_path(p)`.
pub fn normalize_path(path: &str, out: &mut String) {
    out.clear();
    if is_canonical(path) {
        out.push_str(path);
    } else {
        resolve(path, out);
    }
}

/// True when [`normalize_path`] would return `path` unchanged and
/// [`decode_path`] would accept it as it is: nearly every real request.
/// A byte scan, so the common case copies the path and nothing else.
pub fn is_canonical(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    let (mut segments, mut seg_len) = (0usize, 0usize);
    let mut prev = b'/';
    for &c in &b[1..] {
        if !PLAIN[usize::from(c)] {
            return false;
        }
        if c == b'/' {
            // An empty segment, or one ending in a dot (`.`, `..`, `a.`).
            if prev == b'/' || prev == b'.' {
                return false;
            }
            segments += 1;
            seg_len = 0;
        } else {
            seg_len += 1;
            if seg_len > MAX_SEGMENT_CHARS {
                return false;
            }
        }
        prev = c;
    }
    prev != b'.' && segments < MAX_SEGMENTS
}

/// Bytes that may stand in a canonical path as they are: ASCII letters,
/// digits and the punctuation that neither IIS nor ASP.NET reads specially.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = matches!(c as u8,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9'
            | b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'\'' | b'(' | b')' | b'+' | b',' | b';' | b'=' | b'@' | b'/');
        c += 1;
    }
    t
};

/// `%XX` and `%uNNNN` decoded once; text as UTF-8 when valid, else Windows-1252.
fn percent_decode_path(raw: &[u8]) -> Result<String, Refusal> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'%' {
            bytes.push(raw[i]);
            i += 1;
            continue;
        }
        if let Some(unit) = percent_u(&raw[i..]) {
            i += 6;
            let c = if (0xD800..0xDC00).contains(&unit) {
                // A high surrogate must be followed by its low half.
                let low = percent_u(&raw[i..]).filter(|l| (0xDC00..0xE000).contains(l)).ok_or(Refusal::BadEscape)?;
                i += 6;
                char::from_u32(0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00))
            } else {
                char::from_u32(u32::from(unit))
            };
            let c = c.ok_or(Refusal::BadEscape)?;
            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        } else if let (Some(h), Some(l)) = (raw.get(i + 1).and_then(|&c| hex(c)), raw.get(i + 2).and_then(|&c| hex(c)))
        {
            bytes.push(h << 4 | l);
            i += 3;
        } else {
            return Err(Refusal::BadEscape);
        }
    }
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        // HTTP.sys falls back to Windows-1252 for a path that is not UTF-8.
        Err(e) => e.into_bytes().iter().map(|&b| w3c::windows_1252(b)).collect(),
    })
}

/// The code unit of a `%uNNNN` escape at the start of `s`.
fn percent_u(s: &[u8]) -> Option<u16> {
    if s.len() < 6 || s[0] != b'%' || !s[1].eq_ignore_ascii_case(&b'u') {
        return None;
    }
    s[2..6].iter().try_fold(0u16, |acc, &c| hex(c).map(|d| acc << 4 | u16::from(d)))
}

/// An escape (`%XX` or `%uNNNN`) starts `s`.
fn escape_at(s: &[u8]) -> bool {
    percent_u(s).is_some() || (s.len() >= 3 && hex(s[1]).is_some() && hex(s[2]).is_some())
}

/// Segments resolved into `out`; the first shape limit broken, if any.
fn resolve(text: &str, out: &mut String) -> Option<Refusal> {
    let mut refusal = None;
    let mut ends: Vec<usize> = Vec::new();
    let mut trailing_slash = false;
    for raw_seg in text.split(['/', '\\']) {
        if raw_seg == ".." {
            trailing_slash = true;
            if ends.pop().is_none() {
                refusal = refusal.or(Some(Refusal::AboveRoot));
            }
            out.truncate(ends.last().copied().unwrap_or(0));
            continue;
        }
        // Empty, `.`, and all dots or spaces (`...`, `. `) name the same
        // folder; only `..` itself is the parent.
        let seg = raw_seg.trim_end_matches(['.', ' ']);
        trailing_slash = seg.is_empty();
        if seg.is_empty() {
            continue;
        }
        if raw_seg.chars().count() > MAX_SEGMENT_CHARS {
            refusal = refusal.or(Some(Refusal::SegmentTooLong));
        }
        out.push('/');
        for c in seg.chars() {
            out.push(fold(c));
        }
        ends.push(out.len());
    }
    if ends.len() > MAX_SEGMENTS {
        refusal = refusal.or(Some(Refusal::TooManySegments));
    }
    if out.is_empty() || (trailing_slash && !ends.is_empty()) {
        out.push('/');
    }
    refusal
}

/// The letters whose simple case mapping leads into ASCII, as ASCII.
fn fold(c: char) -> char {
    match c {
        '\u{17f}' => 's',
        '\u{131}' => 'i',
        '\u{212a}' => 'K',
        '\u{130}' => 'I',
        c => c,
    }
}

/// Whether Exchange's front end would send this request to another path
/// than its own: an `autodiscover.json` request whose query (or cookie)
/// names `autodiscover.json` again is read as an explicit logon, and the
/// front end cuts the `Email` value out of the URL, so
/// `/autodiscover/autodiscover.json?@x/mapi/nspi/?&Email=autodiscover/autodiscover.json%3f@x`
/// reaches `/mapi/nspi/` on the back end (ProxyShell, CVE-2021-34473; again
/// ProxyNotShell, CVE-2022-41040). A rule on the outer path never sees the
/// inner one, and no client sends this shape: AutoDetect asks
/// `autodiscover.json?Email=user@domain&Protocol=...` or
/// `autodiscover.json/v1.0/user@domain?Protocol=...`.
/// `cookie` is the request's Cookie header, empty when it has none: ASP.NET's
/// `Request.Params["Email"]` reads cookies too.
pub fn routes_past_its_path(stem: &str, query: &str, cookie: &[u8]) -> bool {
    const MARK: &str = "autodiscover.json";
    if !crate::text::contains_ci(stem, MARK) {
        return false;
    }
    if query.starts_with('@') || crate::text::starts_with_ci(query, "%40") || crate::text::contains_ci(query, MARK) {
        return true;
    }
    // The query, then the cookie, as ASP.NET reads them: unescaped (a cookie
    // value may be escaped too: `Email=autodiscover%2Fautodiscover%2Ejson`).
    let mut unescaped = String::new();
    decode_query_value_into(query, &mut unescaped);
    if crate::text::contains_ci(&unescaped, MARK) {
        return true;
    }
    let cookie = String::from_utf8_lossy(cookie);
    unescaped.clear();
    decode_query_value_into(&cookie, &mut unescaped);
    crate::text::contains_ci(&cookie, MARK) || crate::text::contains_ci(&unescaped, MARK)
}

/// An HttpProxy `AnchorMailbox` that names a back end and a path: the
/// route Exchange's front end took from ProxyLogon's cookie (see
/// [`cookie_names_a_backend`]), `ServerInfo~<host>/<path>`, as in
/// `ServerInfo~localhost/ecp/default.flt?` (`X-AnonResource-Backend`) or
/// `ServerInfo~a]@EX01:444/autodiscover/autodiscover.xml?#` (`X-BEResource`).
/// Matched as Microsoft's `Test-ProxyLogon.ps1` (CSS-Exchange) matches
/// CVE-2021-26855 in these logs, `AnchorMailbox -like 'ServerInfo~*/*'`, any
/// case, with `\` taken for `/` as the cookie check takes it. Since its
/// commit `19778cd80` (2021-03-11) the script leaves out `localhost` and
/// `/autodiscover` routes as "too many false positives" (an attacker who
/// only reached Autodiscover "did not find a valid email address"): they are
/// attempts all the same, which the rule counts and whose status says what
/// became of them. An anchor with no path does not count.
pub fn anchor_names_a_backend(anchor: &[u8]) -> bool {
    const PREFIX: &[u8] = b"serverinfo~";
    anchor.get(..PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
        && anchor[PREFIX.len()..].iter().any(|&b| b == b'/' || b == b'\\')
}

/// A Cookie header that names a back end and a path for Exchange's front end
/// to proxy to: ProxyLogon's server-side request forgery (CVE-2021-26855),
/// a way to any back-end path whatever the judged one. Matched as
/// Microsoft's own mitigation matches it (CSS-Exchange
/// `BackendCookieMitigation.ps1`, URL Rewrite on `{HTTP_COOKIE}`, any case):
/// any `X-AnonResource-Backend`, or `X-BEResource=(.+)/(.+)~(.+)`, with
/// `\` taken for `/` as well. And EWS's `X-BackEndOverrideCookie`, which its
/// front end follows for a request saying `X-PreferServerAffinity: true`
/// (decompiled `EwsProxyRequestHandler.ResolveAnchorMailbox`) through the
/// same `BackEndServer.FromString` as `X-BEResource`, unchecked before the
/// March 2021 fix: its value (to the next `;`) may hold only what Exchange
/// writes there, `<fqdn>~<version>` (see `plain_backend`).
pub fn cookie_names_a_backend(cookie: &[u8]) -> bool {
    const ANON: &[u8] = b"x-anonresource-backend";
    const BE: &[u8] = b"x-beresource=";
    const OVERRIDE: &[u8] = b"x-backendoverridecookie=";
    // The names start with `x`: try the bytes after each one, any case.
    memchr::memchr2_iter(b'x', b'X', cookie).any(|at| {
        let rest = &cookie[at..];
        if rest.get(..ANON.len()).is_some_and(|n| n.eq_ignore_ascii_case(ANON)) {
            return true;
        }
        if rest.get(..OVERRIDE.len()).is_some_and(|n| n.eq_ignore_ascii_case(OVERRIDE)) {
            let value = &rest[OVERRIDE.len()..];
            let end = memchr::memchr(b';', value).unwrap_or(value.len());
            return !plain_backend(&value[..end]);
        }
        let Some(value) = rest.get(..BE.len()).filter(|n| n.eq_ignore_ascii_case(BE)).map(|_| &rest[BE.len()..]) else {
            return false;
        };
        // `(.+)/(.+)~(.+)`: a `/` after one byte at least, then a `~` after
        // one more at least and before the last byte (the first such `/`
        // and the last such `~` are the likeliest pair). A `\` counts as a
        // `/`: .NET's `Uri` reads it so in an http URL, and
        // `localhost\ecp\x?~1` may name a path as well (unverified).
        let Some(slash) = value.iter().skip(1).position(|&b| b == b'/' || b == b'\\').map(|i| i + 1) else {
            return false;
        };
        let before_last = &value[..value.len().saturating_sub(1)];
        before_last.iter().rposition(|&b| b == b'~').is_some_and(|tilde| tilde >= slash + 2)
    })
}

/// A back-end server as Exchange writes it in a cookie (`BackEndServer`'s
/// `<fqdn>~<version>`): a host name's letters, digits, `.`, `-` and `_`, and
/// `~`, between white space; or nothing. Anything else (`/`, `\`, `:`, `@`,
/// `?`, `#`, `%`) could make a URL of it.
fn plain_backend(value: &[u8]) -> bool {
    value.trim_ascii().iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~'))
}

/// The value of one hexadecimal digit.
pub fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-encode a canonical path so that [`decode_path`] reads it back
/// unchanged: every byte outside the plain set as `%XX` of its UTF-8.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if PLAIN[usize::from(b)] {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fuzzing::backend_cookie_reference;
    use super::*;
    use crate::testing::xorshift;

    /// Asserts that `names_a_backend` holds for each of `yes` and for none of `no`.
    fn assert_backends(names_a_backend: fn(&[u8]) -> bool, yes: &[&str], no: &[&str]) {
        for s in yes {
            assert!(names_a_backend(s.as_bytes()), "{s}");
        }
        for s in no {
            assert!(!names_a_backend(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn proxylogon_anchors() {
        assert_backends(
            anchor_names_a_backend,
            &[
                "ServerInfo~localhost/ecp/default.flt?",
                "ServerInfo~a]@EX01.contoso.com:444/autodiscover/autodiscover.xml?#",
                "serverinfo~a]@ex01:444/ecp/DDI/DDIService.svc/SetObject?schema=ResetOABVirtualDirectory#",
                "SERVERINFO~localhost\\ecp\\default.flt?",
            ],
            &[
                "ServerInfo~EX01.contoso.com",
                "ServerInfo~",
                "ServerVersion~Version 15.0 (Build 0.0)",
                "Sid~S-1-5-21-1",
                "Smtp~ann/x@contoso.com",
                "DatabaseGuid~1/2",
                "ServerInf~a/b",
                "",
            ],
        );
    }

    #[test]
    fn proxylogon_backend_cookies() {
        assert_backends(
            cookie_names_a_backend,
            &[
                "X-AnonResource=true; X-AnonResource-Backend=localhost/ecp/default.flt?~3; X-BEResource=localhost/owa/auth/logon.aspx?~3;",
                "x-anonresource-backend=a",
                "X-BEResource=EX01.contoso.com/EWS/Exchange.asmx?a=~1942062522",
                "a=1; x-beresource=ex01/ecp/proxyLogon.ecp#~1941962753",
                "X-BEResource=localhost\\ecp\\default.flt?~1942062522",
                "X-BackEndOverrideCookie=EX01:444/ecp/DDI/DDIService.svc/GetList?#~1942062522",
                "a=b; x-backendoverridecookie=ex01@evil~1; c=d",
                "X-BackEndOverrideCookie=EX01.contoso.local%2Fecp~1",
                "X-BackEndOverrideCookie=EX01 .contoso.local~1",
            ],
            &[
                "X-BEResource=EX01.contoso.com~1942062522",
                "X-BackEndCookie=S-1-5-21-1=u56Lnp2ejJqBy8fIzMnKzsrSyp3Jy9LLx87G0s3Hx8jSnJnKmJzGyM7Gycaay8vPz4GBmp2bkpSak4w=",
                "X-BEResource=/~",
                "X-BackEndOverrideCookie=EX01.contoso.local~1942062522; X-BEResource=EX01~1",
                "X-BackEndOverrideCookie=",
                "X-BackEndOverrideCookie = EX01/ecp~1",
                "PrivateComputer=true; ClientId=ABC; X-OWA-CANARY=x",
                "",
            ],
        );
        for cookie in [
            "X-BEResource=a/b~c",
            "X-BEResource=/b~c",
            "x-beresource=a/~c",
            "X-BEResource=a/b~",
            "x-beresourcE=ab/c/d~~e",
            "X-BackEndOverrideCookie=a/b~1;",
            "x-backendoverridecookie=a b",
            "X-BackEndOverrideCookie=x-backendoverridecookie=a",
        ] {
            assert_eq!(
                cookie_names_a_backend(cookie.as_bytes()),
                backend_cookie_reference(cookie.as_bytes()),
                "{cookie}"
            );
        }
    }

    fn decoded(raw: &str) -> Result<String, Refusal> {
        let mut out = String::new();
        decode_path(raw, &mut out).map(|()| out)
    }

    fn query(raw: &str) -> String {
        let mut out = String::new();
        decode_query_value_into(raw, &mut out);
        out
    }

    #[test]
    fn explicit_logon_routing_is_told_from_autodetect() {
        let json = "/autodiscover/autodiscover.json";
        for (query, cookie) in [
            ("@evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3f@evil.com", ""),
            ("@foo.com/powershell/?X-Rps-CAT=x&Email=autodiscover/autodiscover.json%3F@foo.com", ""),
            ("%40evil.com/EWS/Exchange.asmx?&Email=x", ""),
            ("a=/EWS/Exchange.asmx&Email=autodiscover/autodiscover%2Ejson%3Fa=", ""),
            ("a=/EWS/Exchange.asmx", "Email=autodiscover/autodiscover.json?a="),
            ("a=/EWS/Exchange.asmx", "Email=autodiscover%2Fautodiscover%2ejson%3Fa%3D"),
        ] {
            assert!(routes_past_its_path(json, query, cookie.as_bytes()), "{query:?} {cookie:?}");
        }
        assert!(routes_past_its_path("/AutoDiscover/AutoDiscover.JSON", "@x/ews/&Email=x", b""));
        for (stem, query) in [
            (json, "Email=jdoe%40contoso.com&Protocol=ActiveSync&RedirectCount=1"),
            (json, "Email=jdoe@contoso.com&Protocol=rest"),
            ("/autodiscover/autodiscover.json/v1.0/jdoe@contoso.com", "Protocol=ActiveSync"),
            ("/EWS/Exchange.asmx", "@x/mapi/&Email=autodiscover/autodiscover.json"),
        ] {
            assert!(!routes_past_its_path(stem, query, b"X-BackEndCookie=1"), "{stem} {query:?}");
        }
    }

    #[test]
    fn decoded_once_as_http_sys_does() {
        assert_eq!(decoded("/EWS/Exchange.asmx").unwrap(), "/EWS/Exchange.asmx");
        assert_eq!(decoded("/%45WS/Exchange.asmx").unwrap(), "/EWS/Exchange.asmx");
        assert_eq!(decoded("/%u0045WS/Exchange.asmx").unwrap(), "/EWS/Exchange.asmx");
        assert_eq!(decoded("/x%5C..%5CEWS/Exchange.asmx").unwrap(), "/EWS/Exchange.asmx");
        assert_eq!(decoded("/caf%C3%A9").unwrap(), "/caf\u{e9}");
        assert_eq!(decoded("/caf%E9").unwrap(), "/caf\u{e9}", "not UTF-8: Windows-1252");
        assert_eq!(decoded("/%uD83D%uDE00").unwrap(), "/\u{1f600}");
        assert_eq!(decoded("/EWS./Exchange.asmx%20").unwrap(), "/EWS/Exchange.asmx");
        assert_eq!(decoded("/EW%C5%BF/x").unwrap(), "/EWs/x");
        assert_eq!(decoded("/a+b").unwrap(), "/a+b");
    }

    #[test]
    fn refused_as_iis_refuses() {
        for (raw, why) in [
            ("/a%", Refusal::BadEscape),
            ("/a%zz", Refusal::BadEscape),
            ("/%uD83D", Refusal::BadEscape),
            ("/a%00b", Refusal::RestrictedChar),
            ("/a%0Ab", Refusal::RestrictedChar),
            ("/a%C2%85", Refusal::RestrictedChar),
            ("/a%252e", Refusal::DoubleEscaped),
            ("/a%25u0045", Refusal::DoubleEscaped),
            ("/a%25", Refusal::InvalidChar),
            ("/a%3Ab", Refusal::InvalidChar),
            ("/a%3F", Refusal::InvalidChar),
            ("/..", Refusal::AboveRoot),
            ("/a/../../EWS", Refusal::AboveRoot),
            ("*", Refusal::NotOriginForm),
        ] {
            assert_eq!(decoded(raw), Err(why), "{raw}");
        }
        assert_eq!(decoded(&format!("/{}", "a".repeat(261))), Err(Refusal::SegmentTooLong));
        assert!(decoded(&format!("/{}", "a".repeat(260))).is_ok());
        assert_eq!(decoded(&"/a".repeat(256)), Err(Refusal::TooManySegments));
        assert!(decoded(&"/a".repeat(255)).is_ok());
        assert_eq!(Refusal::DoubleEscaped.status(), (404, 11));
        assert_eq!(Refusal::BadEscape.status(), (400, 0));
    }

    #[test]
    fn normalizing_never_refuses_and_is_idempotent() {
        let mut out = String::new();
        for (p, want) in [
            ("/owa/../Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"),
            ("//ews\\.\\exchange.asmx", "/ews/exchange.asmx"),
            ("/owa/", "/owa/"),
            ("/", "/"),
            ("", "/"),
            ("/../..", "/"),
            ("/a/...", "/a/"),
            ("/a%2", "/a%2"),
        ] {
            normalize_path(p, &mut out);
            assert_eq!(out, want, "{p}");
            let once = out.clone();
            normalize_path(&once, &mut out);
            assert_eq!(out, once);
        }
    }

    #[test]
    fn the_canonical_shortcut_agrees_with_full_resolution() {
        // Every string of up to 6 characters over the characters that matter.
        let alphabet = ['/', '.', 'a', '%', '2', ' ', '\\'];
        let mut paths = vec![String::new()];
        let mut shortcuts = 0;
        for _ in 0..6 {
            let mut next = Vec::new();
            for p in &paths {
                for c in alphabet {
                    let path = format!("{p}{c}");
                    fuzz(path.as_bytes());
                    shortcuts += usize::from(is_canonical(&path));
                    next.push(path);
                }
            }
            paths = next;
        }
        assert!(shortcuts > 300, "the shortcut was taken {shortcuts} times");
    }

    #[test]
    fn every_spelling_of_a_path_decodes_to_it() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let paths = [
            "/EWS/Exchange.asmx",
            "/Microsoft-Server-ActiveSync/default.eas",
            "/owa/auth/caf\u{e9}.aspx",
            "/a b/\u{1f600}",
            "/",
        ];
        for round in 0..4000 {
            xorshift(&mut x);
            let path = paths[round % paths.len()];
            let spelled = respell(path, &x.to_le_bytes());
            let back = decoded(&spelled).unwrap_or_else(|e| panic!("{spelled:?}: {e}"));
            assert!(back.eq_ignore_ascii_case(path), "{path:?} -> {spelled:?} -> {back:?}");
        }
    }

    #[test]
    fn query_values_as_url_decode_reads_them() {
        assert_eq!(query("Provision"), "Provision");
        assert_eq!(query("%50rovision"), "Provision");
        assert_eq!(query("%u0050rovision"), "Provision");
        assert_eq!(query("Out+look"), "Out look");
        assert_eq!(query("a%C3%A9b"), "a\u{e9}b");
        assert_eq!(query("a%FFb"), "a\u{fffd}b");
        assert_eq!(query("100%"), "100%");
        assert_eq!(query("%uD83D%uDE00!"), "\u{1f600}!");
        assert_eq!(query("%uD83Dx"), "\u{fffd}x");
        for v in ["a%C3%A9+%u0041%zz%", "%E9%u0041+", "+%"] {
            fuzz(v.as_bytes());
        }
    }
}
