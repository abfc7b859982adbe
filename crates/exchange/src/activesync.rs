//! ActiveSync query parameters (MS-ASHTTP): the plain `Cmd=…&User=…` form,
//! the base64 form, and the `&Log=` diagnostics Exchange appends when logging.
//!
//! Everything here takes untrusted input: it never panics, and a query it
//! cannot make sense of leaves the fields empty rather than guessing.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};

pub use crate::log_tokens::{parse_log, parse_log_only};
use crate::request::{ActiveSync, LogWanted, QueryEncoding};
use crate::url;

/// Longest base64 query accepted, in characters after percent-decoding.
/// The binary form is at most a few hundred bytes; this bounds the stack buffers.
pub const MAX_BASE64: usize = 4096;

/// Why a base64 query could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("query is not base64")]
    NotBase64,
    #[error("base64 query is longer than {MAX_BASE64} characters")]
    TooLong,
    #[error("base64 query ends inside the {0}")]
    Truncated(&'static str),
    #[error("device id is empty")]
    EmptyDeviceId,
    #[error("policy key length is {0}, not 0 or 4")]
    PolicyKeyLength(u8),
}

/// Command codes of the base64 query (MS-ASHTTP 2.2.1.1.1.1.2); 5–8 are unassigned.
const COMMANDS: [Option<&str>; 24] = [
    Some("Sync"),
    Some("SendMail"),
    Some("SmartForward"),
    Some("SmartReply"),
    Some("GetAttachment"),
    None,
    None,
    None,
    None,
    Some("FolderSync"),
    Some("FolderCreate"),
    Some("FolderDelete"),
    Some("FolderUpdate"),
    Some("MoveItems"),
    Some("GetItemEstimate"),
    Some("MeetingResponse"),
    Some("Search"),
    Some("Settings"),
    Some("Ping"),
    Some("ItemOperations"),
    Some("Provision"),
    Some("ResolveRecipients"),
    Some("ValidateCert"),
    Some("Find"),
];

/// Commands only sent in the plain form (no base64 code).
const PLAIN_ONLY_COMMANDS: [&str; 3] = ["GetHierarchy", "CreateCollection", "DeleteCollection"];

/// Base64 parameter tag for `User` (MS-ASHTTP 2.2.1.1.1.1.3).
pub const TAG_USER: u8 = 8;

/// The device class Exchange judges a device type as: any type starting
/// `IMEI` (in any case) is `IMEI` to it (`DeviceClassCache.NormalizeDeviceClass`),
/// so a device access rule on `IMEI` holds for `IMEI3520...`.
pub fn device_class(device_type: &str) -> &str {
    match device_type.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("IMEI") => "IMEI",
        _ => device_type,
    }
}

/// The command name for a base64 command code.
pub fn command_name(code: u8) -> Option<&'static str> {
    COMMANDS.get(code as usize).copied().flatten()
}

/// The base64 command code for a command name (case-insensitive).
pub fn command_code(name: &str) -> Option<u8> {
    COMMANDS.iter().position(|c| c.is_some_and(|c| c.eq_ignore_ascii_case(name))).map(|i| i as u8)
}

/// Fill `out` from an ActiveSync query string (without the leading `?`).
///
/// Accepts the plain form (`Cmd`, `User`, `DeviceId`, `DeviceType` in any
/// order, names case-insensitive, names and values decoded as ASP.NET's
/// `UrlDecode` does, `%uNNNN` included) and the base64 form (one token,
/// possibly percent-encoded, padding optional). A `Log=` parameter fills
/// `out.log` in either case. A plain parameter given twice with different
/// values, plain parameters after a base64 token, or a base64 token that
/// decodes after any other part, set `out.repeated`; a base64 token that
/// does not decode sets `out.undecoded`.
/// `out` is cleared first.
pub fn parse_query(query: &str, out: &mut ActiveSync) {
    parse_query_with(query, out, LogWanted::ALL);
}

/// [`parse_query`] without the `Log=` tokens: `out.log` stays empty. For
/// lines whose log tokens nothing reads (a back-end hop that is only
/// counted); every other field is as [`parse_query`] fills it.
pub fn parse_query_without_log(query: &str, out: &mut ActiveSync) {
    parse_query_with(query, out, LogWanted::NONE);
}

/// [`parse_query`] filling only the `wanted` log tokens; every other field
/// is as [`parse_query`] fills it.
pub fn parse_query_with(query: &str, out: &mut ActiveSync, wanted: LogWanted) {
    out.clear();
    let mut plain = false;
    let mut first: Option<&str> = None;
    let mut seen = 0u8;
    let mut beside = false;
    // Byte searches: `&` and `=` are ASCII, so every cut is a char boundary.
    for part in split_ascii(query, b'&') {
        if part.is_empty() {
            continue;
        }
        if first.is_none() {
            first = Some(part);
        } else if !beside && looks_base64(part) {
            // A token after another part: Exchange's native decoder may read
            // a device from it where this reads none.
            beside = decode_base64_query(part, &mut ActiveSync::default()).is_ok();
        }
        let Some(eq) = part.bytes().position(|b| b == b'=') else {
            continue;
        };
        let (raw_name, value) = (&part[..eq], &part[eq + 1..]);
        // A name spelled with escapes (`%43md`) is read as ASP.NET reads it.
        let mut buf = [0u8; NAME_BUFFER];
        let name = match ascii_name(raw_name, &mut buf) {
            Some(len) => &buf[..len],
            None => continue,
        };
        let (bit, field) = match name.len() {
            3 if name.eq_ignore_ascii_case(b"Cmd") => (1, &mut out.command),
            3 if name.eq_ignore_ascii_case(b"Log") => {
                if wanted != LogWanted::NONE {
                    parse_log_only(value, &mut out.log, wanted);
                }
                continue;
            }
            4 if name.eq_ignore_ascii_case(b"User") => (2, &mut out.user),
            8 if name.eq_ignore_ascii_case(b"DeviceId") => (4, &mut out.device_id),
            10 if name.eq_ignore_ascii_case(b"DeviceType") => (8, &mut out.device_type),
            _ => continue,
        };
        plain = true;
        if seen & bit == 0 {
            seen |= bit;
            url::decode_query_value_into(value, field);
        } else {
            let mut again = String::new();
            url::decode_query_value_into(value, &mut again);
            if !again.eq_ignore_ascii_case(field) {
                out.repeated = true;
            }
        }
    }
    if beside {
        out.repeated = true;
    }
    if plain {
        canonical_command(&mut out.command);
        out.encoding = QueryEncoding::Plain;
        // A base64 token first and plain parameters after it: which form
        // Exchange reads is not known, and each may name another command
        // or device type.
        if first.is_some_and(looks_base64) {
            out.repeated = true;
        }
        return;
    }
    if let Some(token) = first.filter(|t| looks_base64(t)) {
        // Decoded straight into `out`; undone on failure, keeping capacity.
        if decode_base64_query(token, out).is_err() {
            let log = std::mem::take(&mut out.log);
            out.clear();
            out.log = log;
            out.undecoded = true;
        }
    }
}

/// A query cut around its first `&Log=` parameter: the query before it,
/// the parameter's value, and the rest from its `&` on (empty when none).
/// [`parse_query`] of the query is that of the two outer parts joined, with
/// the value read by [`parse_log`], unless the outer parts hold log tokens
/// too (another `Log=`: the first one wins). `None` when the query has no
/// `&Log=`, or begins with `&` (then `Log=` may be its first parameter,
/// which the base64 form reads).
pub fn split_log(query: &str) -> Option<(&str, &str, &str)> {
    let q = query.as_bytes();
    if q.first() == Some(&b'&') {
        return None;
    }
    // Built once: `memmem::find` would build a searcher on every line.
    static LOG: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"&Log="));
    let at = LOG.find(q)?;
    let start = at + 5;
    let end = memchr::memchr(b'&', &q[start..]).map_or(q.len(), |i| start + i);
    // `&` is ASCII: every cut is a char boundary.
    Some((&query[..at], &query[start..end], &query[end..]))
}

/// Longest parameter name read, decoded: `DeviceType` and room to spare.
const NAME_BUFFER: usize = 16;

/// A parameter name decoded as `UrlDecode` would, into `buf`, when it is
/// short ASCII (every name read here is), `ı` and `ſ` taken for `I` and `S`
/// ([`crate::text::NameMatch::LookAlike`]): Exchange on Windows finds no
/// parameter so named, but a device or command read from one can only meet
/// more rules, never fewer, and a name given twice is marked; `None` for
/// anything else, such as a base64 token whose padding looked like `=`.
fn ascii_name(raw: &str, buf: &mut [u8; NAME_BUFFER]) -> Option<usize> {
    let s = raw.as_bytes();
    let (mut i, mut n) = (0, 0);
    // The first byte of a two-byte UTF-8 letter, escaped or not.
    let mut lead: Option<u8> = None;
    while i < s.len() {
        let (byte, used) = match s[i] {
            b'+' => (b' ', 1),
            b'%' => match s.get(i + 1) {
                Some(b'u' | b'U') => {
                    let unit = s
                        .get(i + 2..i + 6)?
                        .iter()
                        .try_fold(0u16, |a, &c| url::hex(c).map(|d| a << 4 | u16::from(d)))?;
                    let c = crate::text::dotnet_ascii_upper(char::from_u32(u32::from(unit))?)?;
                    (c, 6)
                }
                _ => (url::hex(*s.get(i + 1)?)? << 4 | url::hex(*s.get(i + 2)?)?, 3),
            },
            c => (c, 1),
        };
        i += used;
        let c = match (lead.take(), byte) {
            (None, 0xC4 | 0xC5) => {
                lead = Some(byte);
                continue;
            }
            (None, c) if c.is_ascii() => c,
            (Some(l), t) => crate::text::dotnet_ascii_upper(std::str::from_utf8(&[l, t]).ok()?.chars().next()?)?,
            _ => return None,
        };
        if n == NAME_BUFFER {
            return None;
        }
        buf[n] = c;
        n += 1;
    }
    lead.is_none().then_some(n)
}

/// `s.split(sep as char)` for an ASCII `sep`, without the general char
/// searcher (several times dearer on short fields).
fn split_ascii(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match find_byte(r.as_bytes(), sep) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// A known command in its canonical case (`provision` is `Provision`).
/// Exchange looks a command up lower-cased (`ToLower(InvariantCulture)`),
/// which makes `İ` (U+0130) an `i` and the Kelvin sign a `k`: `Pİng` is
/// read as Ping here too.
fn canonical_command(command: &mut String) {
    let folded: String;
    let name = if command.is_ascii() {
        command.as_str()
    } else {
        folded = command
            .chars()
            .map(|c| match c {
                '\u{130}' => 'i',
                '\u{212a}' => 'k',
                c => c,
            })
            .collect();
        folded.as_str()
    };
    let canonical = COMMANDS.iter().flatten().chain(PLAIN_ONLY_COMMANDS.iter()).find(|c| c.eq_ignore_ascii_case(name));
    if let Some(c) = canonical {
        command.clear();
        command.push_str(c);
    }
}

/// A single token of base64 characters (or their percent-encodings) with
/// `=` only as trailing padding.
fn looks_base64(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    let body = body.strip_suffix("%3D").unwrap_or(body);
    let body = body.strip_suffix("%3D").unwrap_or(body);
    body.len() >= 8 && body.bytes().all(|c| c == b'%' || BASE64_TEXT[usize::from(c)] != 0)
}

/// The standard-alphabet character for each byte of a query token: the
/// URL-safe `-` and `_`, and a `+` that became a space, are mapped; 0 is not
/// base64. A table: this runs for every character of every base64 query.
const BASE64_TEXT: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => c as u8,
            b'-' | b' ' => b'+',
            b'_' => b'/',
            _ => 0,
        };
        c += 1;
    }
    t
};

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Decode a base64 query token into `out` (fields are overwritten, `log` is
/// left alone). Tolerates percent-encoding, the URL-safe alphabet, a `+` that
/// became a space, and missing padding.
pub fn decode_base64_query(token: &str, out: &mut ActiveSync) -> Result<(), QueryError> {
    // Typical tokens are ~100 characters: small buffers avoid clearing 7 KB per line.
    const SMALL: usize = 256;
    if token.len() <= SMALL {
        decode_base64_in::<SMALL, { SMALL / 4 * 3 + 3 }>(token, out)
    } else {
        decode_base64_in::<MAX_BASE64, { MAX_BASE64 / 4 * 3 + 3 }>(token, out)
    }
}

/// [`decode_base64_query`] with buffers of `TEXT` characters and `BYTES`
/// decoded bytes; a token of at most `TEXT` characters always fits.
fn decode_base64_in<const TEXT: usize, const BYTES: usize>(
    token: &str,
    out: &mut ActiveSync,
) -> Result<(), QueryError> {
    let mut text = [0u8; TEXT];
    let mut n = 0;
    let s = token.as_bytes();
    let mut i = 0;
    while i < s.len() {
        let mut c = s[i];
        i += 1;
        if c == b'%' {
            match (s.get(i).and_then(|&h| url::hex(h)), s.get(i + 1).and_then(|&l| url::hex(l))) {
                (Some(h), Some(l)) => {
                    c = h << 4 | l;
                    i += 2;
                }
                _ => return Err(QueryError::NotBase64),
            }
        }
        if c == b'=' {
            continue;
        }
        let c = BASE64_TEXT[usize::from(c)];
        if c == 0 {
            return Err(QueryError::NotBase64);
        }
        if n == MAX_BASE64 {
            return Err(QueryError::TooLong);
        }
        text[n] = c;
        n += 1;
    }
    let mut bytes = [0u8; BYTES];
    let len = BASE64.decode_slice(&text[..n], &mut bytes).map_err(|_| QueryError::NotBase64)?;
    decode_binary_query(&bytes[..len], out)
}

/// Append `n` in decimal (no formatting machinery on the hot path).
fn push_decimal(n: u8, out: &mut String) {
    if n >= 100 {
        out.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        out.push(char::from(b'0' + n / 10 % 10));
    }
    out.push(char::from(b'0' + n % 10));
}

/// Decode the binary layout of a base64 query (after base64 decoding):
/// version, command code, locale, device id, policy key, device type, then
/// tag/length/value parameters. Sets `encoding` to `Base64` on success.
pub fn decode_binary_query(bytes: &[u8], out: &mut ActiveSync) -> Result<(), QueryError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.byte("protocol version")?;
    let command = r.byte("command code")?;
    let locale = r.take(2, "locale")?;
    let id_len = r.byte("device id length")?;
    if id_len == 0 {
        return Err(QueryError::EmptyDeviceId);
    }
    let device_id = r.take(id_len as usize, "device id")?;
    let key_len = r.byte("policy key length")?;
    let policy_key = match key_len {
        0 => None,
        4 => {
            let k = r.take(4, "policy key")?;
            Some(u32::from_le_bytes([k[0], k[1], k[2], k[3]]))
        }
        n => return Err(QueryError::PolicyKeyLength(n)),
    };
    let type_len = r.byte("device type length")?;
    let device_type = r.take(type_len as usize, "device type")?;

    out.protocol_version.clear();
    push_decimal(version / 10, &mut out.protocol_version);
    out.protocol_version.push('.');
    push_decimal(version % 10, &mut out.protocol_version);
    out.command.clear();
    match command_name(command) {
        Some(name) => out.command.push_str(name),
        None => push_decimal(command, &mut out.command),
    }
    out.locale = Some(u16::from_le_bytes([locale[0], locale[1]]));
    out.device_id.clear();
    if device_id.iter().all(u8::is_ascii_alphanumeric) {
        // All ASCII, so this is valid UTF-8.
        out.device_id.push_str(std::str::from_utf8(device_id).unwrap_or_default());
    } else {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for b in device_id {
            out.device_id.push(char::from(HEX[usize::from(b >> 4)]));
            out.device_id.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out.policy_key = policy_key;
    out.device_type.clear();
    push_lossy(device_type, &mut out.device_type);
    out.user.clear();
    while !r.done() {
        let tag = r.byte("parameter tag")?;
        let len = r.byte("parameter length")?;
        let value = r.take(len as usize, "parameter value")?;
        if tag == TAG_USER {
            out.user.clear();
            push_lossy(value, &mut out.user);
        }
    }
    out.encoding = QueryEncoding::Base64;
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, QueryError> {
        Ok(self.take(1, what)?[0])
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], QueryError> {
        let end = self.pos.checked_add(n).ok_or(QueryError::Truncated(what))?;
        let s = self.bytes.get(self.pos..end).ok_or(QueryError::Truncated(what))?;
        self.pos = end;
        Ok(s)
    }
}

/// What goes into a base64 query; used by tests and by the log generator.
#[derive(Clone, Debug, Default)]
pub struct Base64Query<'a> {
    /// Protocol version times ten: 121, 140, 141, 160, 161.
    pub version: u8,
    pub command: u8,
    pub locale: u16,
    /// Raw device id bytes (a string or a binary GUID); 1–255 bytes.
    pub device_id: &'a [u8],
    pub policy_key: Option<u32>,
    pub device_type: &'a str,
    /// Tag/value parameters, e.g. `(TAG_USER, b"jdoe")`; values up to 255 bytes.
    pub params: &'a [(u8, &'a [u8])],
}

impl Base64Query<'_> {
    /// The standard-alphabet, padded base64 text (not percent-encoded).
    /// Fields longer than 255 bytes are cut to 255.
    pub fn encode(&self) -> String {
        fn field(out: &mut Vec<u8>, v: &[u8]) {
            let v = &v[..v.len().min(255)];
            out.push(v.len() as u8);
            out.extend_from_slice(v);
        }
        let mut b = vec![self.version, self.command];
        b.extend_from_slice(&self.locale.to_le_bytes());
        field(&mut b, self.device_id);
        match self.policy_key {
            Some(k) => {
                b.push(4);
                b.extend_from_slice(&k.to_le_bytes());
            }
            None => b.push(0),
        }
        field(&mut b, self.device_type.as_bytes());
        for (tag, value) in self.params {
            b.push(*tag);
            field(&mut b, value);
        }
        base64::engine::general_purpose::STANDARD.encode(b)
    }
}

/// Below this length a plain loop finds a byte sooner than memchr's SIMD set-up.
const SHORT: usize = 64;

fn find_byte(s: &[u8], b: u8) -> Option<usize> {
    if s.len() < SHORT {
        s.iter().position(|&c| c == b)
    } else {
        memchr::memchr(b, s)
    }
}

fn push_lossy(bytes: &[u8], out: &mut String) {
    match std::str::from_utf8(bytes) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// Fuzzing entry point: runs every parser in this module on arbitrary bytes.
/// Must never panic.
pub fn fuzz(data: &[u8]) {
    let mut out = ActiveSync::default();
    let _ = decode_binary_query(data, &mut out);
    let text = String::from_utf8_lossy(data);
    parse_query(&text, &mut out);
    let _ = decode_base64_query(&text, &mut out);
    parse_log(&text, &mut out.log);
    crate::log_tokens::fuzz(&text);
    let _ = crate::device_information::read(data);
    crate::exploits::cat::fuzz(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_tokens::store_log_element;
    use crate::request::LogTokens;
    use crate::testing::xorshift;

    fn parsed(q: &str) -> ActiveSync {
        let mut a = ActiveSync::default();
        parse_query(q, &mut a);
        a
    }

    #[test]
    fn a_command_is_read_as_exchange_lower_cases_it() {
        for (sent, read) in [("Ping", "Ping"), ("P%C4%B0NG", "Ping"), ("prov%C4%B0sion", "Provision"), ("Sync", "Sync")]
        {
            assert_eq!(parsed(&format!("Cmd={sent}&DeviceId=D1&DeviceType=T")).command, read, "{sent}");
        }
        // Look-alike names (`ı`, `ſ`) are read as the name: a rule can only see more.
        let a = parsed("Cmd=Sync&U%C5%BFer=jdoe&Dev%C4%B1ceId=D1&Dev%u0131ceType=Outlook");
        assert_eq!((a.user.as_str(), a.device_id.as_str(), a.device_type.as_str()), ("jdoe", "D1", "Outlook"));
        let a = parsed("Cmd=Sync&DeviceId=D1&Dev%C4%B0ceType=Outlook&Dev%C4ceType=X&Dev%C4%C4ceType=Y");
        assert_eq!(a.device_type, "", "İ, a lone lead byte and two leads are not I");
        // The dotless ı lower-cases to itself: not a command.
        assert_eq!(parsed("Cmd=P%C4%B1ng&DeviceId=D1&DeviceType=T").command, "P\u{131}ng");
        assert_eq!(device_class("IMEI3520"), "IMEI");
        assert_eq!(device_class("imei"), "IMEI");
        assert_eq!(device_class("iPhone"), "iPhone");
        assert_eq!(device_class("IM"), "IM");
    }

    #[test]
    fn spec_example_base64() {
        let a = parsed("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l");
        assert_eq!(a.encoding, QueryEncoding::Base64);
        assert_eq!(a.protocol_version, "14.0");
        assert_eq!(a.command, "Sync");
        assert_eq!(a.locale, Some(0x0409));
        assert_eq!(a.device_id, "v140Device");
        assert_eq!(a.device_type, "SmartPhone");
        assert_eq!(a.policy_key, None);
        assert_eq!(a.user, "");
    }

    #[test]
    fn base64_with_user_guid_and_policy_key() {
        let guid: [u8; 16] =
            [0x6F, 0x9A, 0x01, 0xB2, 0x33, 0x44, 0x4C, 0x55, 0x86, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD];
        let params: [(u8, &[u8]); 2] = [(1, b"5"), (TAG_USER, b"CONTOSO\\jdoe")];
        let q = Base64Query {
            version: 161,
            command: command_code("provision").unwrap(),
            locale: 0x0407,
            device_id: &guid,
            policy_key: Some(4016830080),
            device_type: "WindowsMail",
            params: &params,
        };
        let text = q.encode();
        // As a client would send it: percent-encoded, padding dropped.
        let sent = text.trim_end_matches('=').replace('+', "%2B").replace('/', "%2F");
        for token in [text.as_str(), sent.as_str()] {
            let a = parsed(token);
            assert_eq!(a.encoding, QueryEncoding::Base64, "{token}");
            assert_eq!(a.protocol_version, "16.1");
            assert_eq!(a.command, "Provision");
            assert_eq!(a.locale, Some(0x0407));
            assert_eq!(a.device_id, "6F9A01B233444C5586778899AABBCCDD");
            assert_eq!(a.policy_key, Some(4016830080));
            assert_eq!(a.device_type, "WindowsMail");
            assert_eq!(a.user, "CONTOSO\\jdoe");
        }
    }

    #[test]
    fn base64_followed_by_log() {
        let a = parsed("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l&Log=V140_HH:mail.contoso.com");
        assert_eq!(a.encoding, QueryEncoding::Base64);
        assert_eq!(a.device_id, "v140Device");
        assert_eq!(a.log.version, "140");
        assert_eq!(a.log.host, "mail.contoso.com");
    }

    #[test]
    fn plain_parameters_after_a_base64_token_are_ambiguous() {
        for q in [
            // The token says Outlook, the plain parameter iPhone: Exchange may read either.
            "jRQJBAJEMQAHT3V0bG9vawgEamRvZQ==&DeviceType=iPhone",
            "jRQJBAJEMQAHT3V0bG9vawgEamRvZQ&Cmd=Sync",
            "jRQJBAJEMQAHT3V0bG9vawgEamRvZQ%3D%3D&cmd=Sync&Log=V141",
            // A token after another part: Exchange's decoder may read it.
            "Foo=1&jRQJBAJEMQAHT3V0bG9vawgEamRvZQ==",
            "x&jRQJBAJEMQAHT3V0bG9vawgEamRvZQ",
            "Cmd=Sync&DeviceType=iPhone&jRQJBAJEMQAHT3V0bG9vawgEamRvZQ%3D%3D",
            "jRQJBAJEMQAHT3V0bG9vawgEamRvZQ==&jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l",
        ] {
            assert!(parsed(q).repeated, "{q}");
        }
        for q in [
            "jRQJBAJEMQAHT3V0bG9vawgEamRvZQ==",
            "jRQJBAJEMQAHT3V0bG9vawgEamRvZQ==&Log=V141",
            "Cmd=Sync&User=u&DeviceId=D1&DeviceType=iPhone&CollectionId=&AttachmentName=",
            "jRQJBAJEMQAHT3V0bG9vawgEamRvZQ==&Foo=1",
            "Cmd=Sync&User=u&DeviceId=D1&DeviceType=iPhone",
            "&Cmd=Sync&DeviceType=iPhone",
        ] {
            assert!(!parsed(q).repeated, "{q}");
        }
    }

    #[test]
    fn base64_errors() {
        let mut a = ActiveSync::default();
        assert_eq!(decode_binary_query(&[140, 0, 9], &mut a), Err(QueryError::Truncated("locale")));
        assert_eq!(decode_binary_query(&[140, 0, 9, 4, 0], &mut a), Err(QueryError::EmptyDeviceId));
        assert_eq!(decode_binary_query(&[140, 0, 9, 4, 1, b'a', 3], &mut a), Err(QueryError::PolicyKeyLength(3)));
        assert_eq!(decode_base64_query("jAAJ*A", &mut a), Err(QueryError::NotBase64));
        assert_eq!(decode_base64_query(&"A".repeat(MAX_BASE64 + 1), &mut a), Err(QueryError::TooLong));
        // A failed decode leaves nothing behind.
        let a = parsed("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob2");
        assert_eq!(a.encoding, QueryEncoding::None);
        assert_eq!(a.device_id, "");
    }

    #[test]
    fn plain_any_order_and_case() {
        let a = parsed("user=CONTOSO%5Cjdoe&deviceid=ABC123&CMD=sync&DeviceType=iPhone&Log=V160");
        assert_eq!(a.encoding, QueryEncoding::Plain);
        assert_eq!(a.command, "Sync");
        assert_eq!(a.user, "CONTOSO\\jdoe");
        assert_eq!(a.device_id, "ABC123");
        assert_eq!(a.device_type, "iPhone");
        assert_eq!(a.log.version, "160");
        let a = parsed("Cmd=SomethingNew&User=a%40b.com");
        assert_eq!(a.command, "SomethingNew");
        assert_eq!(a.user, "a@b.com");
    }

    /// `parse_log` as it was before it split in one pass and skipped by
    /// two bytes: every element, split with `str::split`, stored.
    fn parse_log_reference(value: &str, out: &mut LogTokens) {
        for element in value.split('_') {
            store_log_element(element, out, LogWanted::ALL);
        }
    }

    /// A random string of `pieces`, from a xorshift state.
    fn random_text(x: &mut u64, pieces: &[&str], most: u64) -> String {
        let mut next = || xorshift(x);
        let n = next() % most;
        (0..n).map(|_| pieces[(next() % pieces.len() as u64) as usize]).collect()
    }

    #[test]
    fn parse_log_reads_as_a_plain_split_does() {
        let pieces = [
            "_",
            "V",
            "V1",
            "V161",
            "V:1",
            "Vx",
            "V1:2",
            ":",
            "S",
            "Sm",
            "SmtpAdrs",
            "SmtpAdrs:",
            "Sst:7",
            "D",
            "De",
            "DevOS:",
            "DevModel:",
            "Dur:",
            "A",
            "As",
            "As:",
            "AllowedG",
            "ASLat:3",
            "P",
            "PrxFrom:",
            "Pk:",
            "H",
            "HH:",
            "HHx",
            "a%40b",
            "+",
            "%5F",
            "%",
            "1",
            "x",
            "ü",
            "Budget:(D)Owner%3aS",
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let value = random_text(&mut x, &pieces, 12);
            let (mut fast, mut slow) = (LogTokens::default(), LogTokens::default());
            parse_log(&value, &mut fast);
            parse_log_reference(&value, &mut slow);
            assert_eq!(fast, slow, "{value:?}");
            // Only some tokens wanted: the others stay empty, the wanted ones are the same.
            let tokens = [
                LogWanted::VERSION,
                LogWanted::SMTP_ADDRESS,
                LogWanted::DEVICE_OS,
                LogWanted::DEVICE_MODEL,
                LogWanted::ACCESS_STATE,
                LogWanted::PROXIED_FROM,
                LogWanted::HOST,
            ];
            let wanted = (0..tokens.len()).filter(|i| x >> i & 1 == 1).fold(LogWanted::NONE, |w, i| w.with(tokens[i]));
            let mut some = LogTokens::default();
            parse_log_only(&value, &mut some, wanted);
            slow.keep_only(wanted);
            assert_eq!(some, slow, "{value:?} {wanted:?}");
        }
    }

    #[test]
    fn a_query_without_its_log_value_parses_as_the_whole_query() {
        let pieces = [
            "&",
            "=",
            "Cmd=Sync",
            "cmd=Ping",
            "User=a%40b",
            "User=c",
            "DeviceId=X1",
            "DeviceId=x1",
            "DeviceType=iPhone",
            "Log=",
            "&Log=",
            "&log=",
            "Log=V161_As:AllowedG",
            "PrxFrom:10.0.0.1_",
            "DevOS:iOS",
            "_",
            "%4Cog=V1",
            "jAAJBAp2",
            "oQkJBBdhbmRyb2lk",
            "eQ%3D%3D",
            "Cmd",
            "x",
        ];
        let mut x = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            let query = random_text(&mut x, &pieces, 8);
            let mut whole = ActiveSync::default();
            parse_query(&query, &mut whole);
            let mut without = ActiveSync::default();
            parse_query_without_log(&query, &mut without);
            assert_eq!(without, ActiveSync { log: LogTokens::default(), ..whole.clone() }, "{query:?}");
            let Some((before, value, after)) = split_log(&query) else { continue };
            let mut joined = ActiveSync::default();
            parse_query(&format!("{before}{after}"), &mut joined);
            if joined.log == LogTokens::default() {
                parse_log(value, &mut joined.log);
                assert_eq!(joined, whole, "{query:?}");
            }
        }
    }

    #[test]
    fn log_tokens_real_line() {
        let q = "User=jmartin@contoso.com&DeviceId=ABCD&DeviceType=iPhone&Cmd=MeetingResponse&Log=PrxFrom:10.0.1.161_V160_Ver1:160_HH:eas.contoso.com_SmtpAdrs:jmartin%40contoso.com_Fet:6014_Pk:4016830080_DevOS:iOS+9.2+13C71_DevModel:Outlook%5Ffor%5FiOS_As:AllowedG_Throttle:0";
        let a = parsed(q);
        assert_eq!(a.command, "MeetingResponse");
        let l = &a.log;
        assert_eq!(l.proxied_from, "10.0.1.161");
        assert_eq!(l.version, "160");
        assert_eq!(l.host, "eas.contoso.com");
        assert_eq!(l.smtp_address, "jmartin@contoso.com");
        assert_eq!(l.device_os, "iOS 9.2 13C71");
        assert_eq!(l.device_model, "Outlook_for_iOS");
        assert_eq!(l.access_state, "AllowedG");
    }

    #[test]
    fn not_activesync() {
        for q in
            ["", "&&", "a=b&c=d", "useMailboxOfAuthenticatedUser=true", "short", "EX04.ad.RaDomain:6001&RequestId=1"]
        {
            let a = parsed(q);
            assert_eq!(a.encoding, QueryEncoding::None, "{q}");
            assert_eq!(a, ActiveSync::default(), "{q}");
        }
    }

    #[test]
    fn reuse_clears() {
        let mut a = ActiveSync::default();
        parse_query("Cmd=Ping&User=x&Log=PrxFrom:1.2.3.4", &mut a);
        parse_query("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", &mut a);
        assert_eq!(a.user, "");
        assert_eq!(a.log.proxied_from, "");
        assert_eq!(a.command, "Sync");
    }

    #[test]
    fn parameters_are_read_as_asp_net_decodes_them() {
        // Each spelling reaches Exchange as `Provision` from an `Outlook` device.
        for q in [
            "Cmd=Provision&DeviceId=A1&DeviceType=Outlook",
            "cmd=%50rovision&DeviceId=A1&DeviceType=%4Futlook",
            "Cmd=%u0050rovision&DeviceId=A1&DeviceType=Out%u006Cook",
            "%43md=PROVISION&Device%49d=A1&%44eviceType=Outlook",
        ] {
            let a = parsed(q);
            assert_eq!(
                (a.command.as_str(), a.device_type.as_str(), a.device_id.as_str()),
                ("Provision", "Outlook", "A1"),
                "{q}"
            );
            assert!(!a.repeated, "{q}");
        }
        assert_eq!(parsed("Cmd=Sync&User=john+doe%40contoso.com").user, "john doe@contoso.com");
        assert_eq!(parsed("Cmd=Sync&User=%FF%41").user, "\u{FFFD}A");
    }

    #[test]
    fn a_parameter_given_twice_with_different_values_is_marked() {
        assert!(parsed("Cmd=Sync&Cmd=Provision").repeated);
        assert!(parsed("DeviceType=iPhone&Cmd=Sync&devicetype=Outlook").repeated);
        assert!(parsed("Cmd=Sync&%43md=Provision").repeated);
        assert!(!parsed("Cmd=Sync&Cmd=sync&Cmd=%53ync").repeated, "the same value is not ambiguous");
        assert!(!parsed("Cmd=Sync&Log=V160_Log=V161").repeated, "Log is Exchange's own");
    }

    #[test]
    fn fuzz_random_bytes_never_panic() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || xorshift(&mut x);
        let alphabet = b"ABCabc019+/=%_-:&Log=Cmd=User=DeviceId\x00\xff\x8c\x04";
        let mut buf = Vec::new();
        for round in 0..20_000 {
            buf.clear();
            let len = (next() % 300) as usize;
            for _ in 0..len {
                let r = next();
                buf.push(if round % 2 == 0 { r as u8 } else { alphabet[(r % alphabet.len() as u64) as usize] });
            }
            fuzz(&buf);
            // Random binary queries that start like a real one go deeper.
            if len > 4 {
                buf[0] = 140;
                buf[1] %= 24;
                fuzz(&buf);
                let mut a = ActiveSync::default();
                let b64 = base64::engine::general_purpose::STANDARD.encode(&buf);
                parse_query(&b64, &mut a);
            }
        }
    }
}
