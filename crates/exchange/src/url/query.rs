//! Query strings: the part a client sent of a logged one, values decoded
//! as ASP.NET decodes them, and secrets kept out of what casguard writes.

use std::borrow::Cow;

use super::{hex, percent_u};

/// What a secret's value is written as.
pub const REDACTED: &str = "REDACTED";

/// The query with the value of each parameter whose name says it holds a
/// secret (a password, a token, a client secret) written as [`REDACTED`].
/// IIS logs a query as the client sent it, and ASP.NET reads a sign-in
/// form's `password` from the query too, so a query can hold one; casguard
/// judges the query as sent and never writes such a value out (exports,
/// the gateway's access log, the evidence of an attack). Allocates only
/// when there is one.
pub fn redact_secrets(query: &str) -> Cow<'_, str> {
    if !query.split('&').any(holds_secret) {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len());
    for (i, param) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match param.split_once('=') {
            Some((name, _)) if holds_secret(param) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(param),
        }
    }
    Cow::Owned(out)
}

/// `name=value` whose name, decoded, names a secret: `password`, `pwd`,
/// `pass`, `newPassword`, `access_token`, `client_secret`, ...
fn holds_secret(param: &str) -> bool {
    let Some((name, value)) = param.split_once('=') else { return false };
    if value.is_empty() || value == REDACTED {
        return false;
    }
    let mut decoded = String::new();
    let name = if name.contains(['%', '+']) {
        decode_query_value_into(name, &mut decoded);
        decoded.as_str()
    } else {
        name
    };
    // `pa\u{17f}sword` is `password` through ICU (`text::NameMatch::LookAlike`): redacted.
    let folded: String;
    let name = if name.is_ascii() {
        name
    } else {
        folded = name.chars().map(|c| crate::text::dotnet_ascii_upper(c).map_or(c, char::from)).collect();
        folded.as_str()
    };
    let is = |word: &str| name.eq_ignore_ascii_case(word);
    let has = |word: &str| crate::text::contains_ci(name, word);
    let ends = |word: &str| crate::text::ends_with_ci(name, word);
    has("passw") || has("pwd") || has("passcode") || is("pass") || is("pw") || ends("token") || ends("secret")
}

/// The query a client sent, from the one an IIS line logged: without what
/// Exchange adds to its own log line once the request ran, which IIS never
/// filtered nor URL Rewrite read. Exchange 2013+'s front end adds
/// `&CorrelationID=<empty>;` and `&cafeReqId=<GUID>;` (README "HttpProxy"),
/// Outlook on the web `&encoding=;`, and ActiveSync (`activesync`) its
/// `&Log=...` diagnostics (the reference notes, §1b): each such parameter
/// goes with the `&` before it, exactly as Exchange spells it, wherever it
/// stands. Into `out` (cleared) and true when there was any; else false and
/// `out` untouched, the logged query being the client's.
pub fn client_query_into(logged: &str, activesync: bool, out: &mut String) -> bool {
    let added = |param: &str| {
        let value = |key: &str| param.strip_prefix(key);
        value("CorrelationID=").is_some_and(|v| v.ends_with(';') && v.find(';') == Some(v.len() - 1))
            || value("cafeReqId=").is_some_and(is_cafe_req_id)
            || param == "encoding=;"
            || (activesync && param.starts_with("Log="))
    };
    if !logged.split('&').any(added) {
        return false;
    }
    out.clear();
    for (i, param) in logged.split('&').enumerate() {
        if added(param) {
            continue;
        }
        if i > 0 {
            out.push('&');
        }
        out.push_str(param);
    }
    true
}

/// Whether `value` is what Exchange's front end writes after `cafeReqId=`:
/// a GUID (36 hex digits and dashes) and its `;`.
pub fn is_cafe_req_id(value: &str) -> bool {
    value.len() == 37 && value.ends_with(';') && value[..36].bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Append a query value decoded as ASP.NET's `HttpUtility.UrlDecode` does:
/// `+` as a space, `%XX` bytes read as UTF-8 (invalid sequences as U+FFFD),
/// `%uNNNN` as that UTF-16 unit; a `%` that starts no escape stays.
/// Allocates nothing when the value has no escape or has only ASCII ones.
pub fn decode_query_value_into(src: &str, out: &mut String) {
    let s = src.as_bytes();
    let Some(first) = s.iter().position(|&c| c == b'%' || c == b'+') else {
        out.push_str(src);
        return;
    };
    out.push_str(&src[..first]);
    let base = out.len();
    let mut i = first;
    let mut run = first;
    while i < s.len() {
        let c = s[i];
        if c != b'%' && c != b'+' {
            i += 1;
            continue;
        }
        out.push_str(&src[run..i]);
        if c == b'+' {
            out.push(' ');
            i += 1;
        } else if let Some(unit) = percent_u(&s[i..]) {
            let low = percent_u(&s[i + 6..]);
            match char::decode_utf16([unit].into_iter().chain(low)).next() {
                Some(Ok(ch)) => {
                    out.push(ch);
                    i += if ch.len_utf16() == 2 { 12 } else { 6 };
                }
                _ => {
                    out.push(char::REPLACEMENT_CHARACTER);
                    i += 6;
                }
            }
        } else {
            match (s.get(i + 1).and_then(|&h| hex(h)), s.get(i + 2).and_then(|&l| hex(l))) {
                (Some(h), Some(l)) if h < 8 => {
                    out.push(char::from(h << 4 | l));
                    i += 3;
                }
                (Some(_), Some(_)) => {
                    // A byte of a multi-byte sequence: decode the rest as bytes.
                    out.truncate(base);
                    decode_query_bytes(&src[first..], out);
                    return;
                }
                _ => {
                    out.push('%');
                    i += 1;
                }
            }
        }
        run = i;
    }
    out.push_str(&src[run..]);
}

/// The general case of [`decode_query_value_into`]: escapes of any byte.
/// Decodes into `out`'s own buffer, so valid text allocates nothing.
pub(super) fn decode_query_bytes(src: &str, out: &mut String) {
    let s = src.as_bytes();
    let mut buf = std::mem::take(out).into_bytes();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => {
                buf.push(b' ');
                i += 1;
            }
            b'%' => {
                if let Some(unit) = percent_u(&s[i..]) {
                    let low = percent_u(&s[i + 6..]);
                    let ch = match char::decode_utf16([unit].into_iter().chain(low)).next() {
                        Some(Ok(ch)) => ch,
                        _ => char::REPLACEMENT_CHARACTER,
                    };
                    i += if ch.len_utf16() == 2 { 12 } else { 6 };
                    buf.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                } else if let (Some(h), Some(l)) =
                    (s.get(i + 1).and_then(|&c| hex(c)), s.get(i + 2).and_then(|&c| hex(c)))
                {
                    buf.push(h << 4 | l);
                    i += 3;
                } else {
                    buf.push(b'%');
                    i += 1;
                }
            }
            c => {
                buf.push(c);
                i += 1;
            }
        }
    }
    *out = match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_query_leaves_out_what_exchange_logs_on_top() {
        let client = |logged: &str, eas: bool| {
            let mut out = String::from("stale");
            if client_query_into(logged, eas, &mut out) {
                out
            } else {
                logged.to_string()
            }
        };
        // Real front-end lines (tests/data/iis).
        let guid = "cafeReqId=eba3262a-2abd-4152-a955-c3a7ea13398a;";
        let eas = format!("User=mmm&DeviceId=Q4&DeviceType=iPhone&Cmd=Ping&CorrelationID=<empty>;&ClientId=KCQ&{guid}");
        assert_eq!(client(&eas, true), "User=mmm&DeviceId=Q4&DeviceType=iPhone&Cmd=Ping&ClientId=KCQ");
        assert_eq!(client(&format!("&CorrelationID=<empty>;&{guid}"), false), "");
        let owa = format!("&ClientId=CC5&CorrelationID=<empty>;&ClientRequestId=6374&encoding=;&{guid}");
        assert_eq!(client(&owa, false), "&ClientId=CC5&ClientRequestId=6374");
        let auth = format!("&CorrelationID=<empty>;&{guid}&LogoffReason=NoCookies&encoding=;");
        assert_eq!(client(&auth, false), "&LogoffReason=NoCookies");
        // A back-end ActiveSync line: `Log=` is Exchange's there, a parameter elsewhere.
        let log = "User=u&DeviceId=D&DeviceType=iPhone&Cmd=Ping&Log=SC1:1_PrxFrom:10.0.22.211_Ver1:161_";
        assert_eq!(client(log, true), "User=u&DeviceId=D&DeviceType=iPhone&Cmd=Ping");
        assert_eq!(client("a=1&Log=x", false), "a=1&Log=x");
        // At the start, the parameter goes alone.
        assert_eq!(client("CorrelationID=<empty>;&a=<b>", false), "&a=<b>");
        // Only Exchange's spelling: what a client wrote otherwise is the client's.
        for q in [
            "a=<x>",
            "correlationid=<empty>;",
            "CorrelationID=<a>;b;",
            "CorrelationID=",
            "cafeReqId=x;",
            "encoding=utf-8",
            "",
        ] {
            assert_eq!(client(q, true), q);
        }
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn secrets_in_a_query_are_never_written_out() {
        let cases = [
            ("username=contoso%5Cbob&password=Summer2026!", "username=contoso%5Cbob&password=REDACTED"),
            ("PassWord=x&a=1", "PassWord=REDACTED&a=1"),
            ("pass%77ord=x", "pass%77ord=REDACTED"),
            ("pa%C5%BFsword=x&u%C5%BFer=y", "pa%C5%BFsword=REDACTED&u%C5%BFer=y"),
            ("txtPwd=x&newPassword=y&pass=z&pw=w", "txtPwd=REDACTED&newPassword=REDACTED&pass=REDACTED&pw=REDACTED"),
            (
                "access_token=eyJ0&id_token=eyJ1&client_secret=s",
                "access_token=REDACTED&id_token=REDACTED&client_secret=REDACTED",
            ),
        ];
        for (query, written) in cases {
            assert_eq!(redact_secrets(query), written, "{query}");
        }
        // Nothing else changes, and nothing is copied then.
        for query in [
            "Cmd=Sync&User=bob&DeviceId=ABC&DeviceType=Outlook&Log=V161_Pwd:1",
            "password=&passwordless=",
            "",
            "a&b=c&&",
            "jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA==",
        ] {
            assert!(matches!(redact_secrets(query), Cow::Borrowed(q) if q == query), "{query}");
        }
    }
}
