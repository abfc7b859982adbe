//! One data line, borrowed from the scanner's buffer, and field decoding.

use std::net::IpAddr;

use crate::fields::{Field, Fields};
use crate::values::{parse_ip, parse_u16};

/// A data line whose field count matched the `#Fields` in force and whose
/// typed columns (date, time, addresses, status, port) hold what their names
/// say; its time comes parsed.
///
/// Borrows the line bytes and the scanner's span table: building one allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    line: &'a [u8],
    spans: &'a [(u32, u32)],
    fields: &'a Fields,
    time: Option<i64>,
}

impl<'a> Record<'a> {
    /// `spans` are `(start, end)` byte offsets into `line`, one per column of
    /// `fields`; its time is not known yet (see [`Record::checked`]).
    pub(crate) fn new(line: &'a [u8], spans: &'a [(u32, u32)], fields: &'a Fields) -> Self {
        debug_assert_eq!(spans.len(), fields.len());
        Record { line, spans, fields, time: None }
    }

    /// This line with its time, as checked by the scanner.
    pub(crate) fn checked(self, time: Option<i64>) -> Self {
        Record { time, ..self }
    }

    /// A well-known field; `None` when it is not logged, is `-` or is empty.
    #[inline]
    pub fn get(&self, f: Field) -> Option<&'a [u8]> {
        self.field(self.fields.index(f)?)
    }

    /// Well-known fields as text, `None` inside where one is absent, as for
    /// [`Record::get`]. One check of the stretch of the line from the first
    /// of them to the last (fields end at ASCII spaces, so each field of a
    /// valid stretch is valid text) costs less than one a field or one of
    /// the whole line; `None` when that stretch is not valid UTF-8.
    #[inline]
    pub fn texts<const N: usize>(&self, fields: [Field; N]) -> Option<[Option<&'a str>; N]> {
        let values = fields.map(|f| self.get(f));
        let offset = |v: &[u8]| v.as_ptr() as usize - self.line.as_ptr() as usize;
        let stretch = values
            .iter()
            .flatten()
            .map(|v| (offset(v), offset(v) + v.len()))
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
        let Some((start, end)) = stretch else { return Some([None; N]) };
        let text = crate::lines::text(&self.line[start..end])?;
        Some(values.map(|v| v.map(|v| &text[offset(v) - start..offset(v) - start + v.len()])))
    }

    /// A field by its `#Fields` name (case-insensitive); `None` as for [`Record::get`].
    pub fn get_named(&self, name: &str) -> Option<&'a [u8]> {
        self.field(self.fields.index_of(name)?)
    }

    /// A column by index; `-` and empty values are `None`.
    #[inline]
    pub fn field(&self, index: usize) -> Option<&'a [u8]> {
        match self.raw(index)? {
            b"-" | b"" => None,
            v => Some(v),
        }
    }

    /// A column by index exactly as logged (`-` included).
    #[inline]
    pub fn raw(&self, index: usize) -> Option<&'a [u8]> {
        let &(s, e) = self.spans.get(index)?;
        Some(&self.line[s as usize..e as usize])
    }

    /// Number of columns (always `self.fields().len()`).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True for a table without columns (never produced by the scanner).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The `#Fields` table this line was read under.
    pub fn fields(&self) -> &'a Fields {
        self.fields
    }

    /// `date` + `time` as Unix seconds (UTC); `None` when the table lacks
    /// either (a line whose date or time is invalid is never a record).
    #[inline]
    pub fn timestamp(&self) -> Option<i64> {
        self.time
    }

    /// The same as [`Record::timestamp`], which the scanner has already
    /// parsed through a cache of its own; `cache` is not used.
    pub fn timestamp_cached(&self, _cache: &mut crate::time::DateTimeCache) -> Option<i64> {
        self.time
    }

    /// An address column (`s-ip`, `c-ip`, ...) parsed, a zone id dropped;
    /// `None` when not logged, `-`, or not an address (a redacted `xxx`:
    /// the scan has warned of it).
    #[inline]
    pub fn address(&self, f: Field) -> Option<IpAddr> {
        parse_ip(self.get(f)?)
    }

    /// A numeric column up to 65535 (`sc-status`, `sc-substatus`, `s-port`:
    /// the scan has checked those); `None` when not logged, `-`, or not such
    /// a number.
    #[inline]
    pub fn number(&self, f: Field) -> Option<u16> {
        parse_u16(self.get(f)?)
    }

    /// The whole line without its line end (and without a leading BOM).
    pub fn line(&self) -> &'a [u8] {
        self.line
    }
}

/// Appends `raw` decoded for display or matching: invalid UTF-8 becomes U+FFFD and
/// `+` (IIS's escape for a space) becomes ` `.
pub fn decode_into(raw: &[u8], out: &mut String) {
    out.reserve(raw.len());
    // Almost every field is valid UTF-8. '+' and ' ' are both ASCII, so swapping
    // one for the other keeps it valid: copy byte by byte (vectorised), validate once.
    if std::str::from_utf8(raw).is_ok() {
        let mut bytes = std::mem::take(out).into_bytes();
        bytes.extend(raw.iter().map(|&b| if b == b'+' { b' ' } else { b }));
        *out = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                // Unreachable: valid UTF-8 with ASCII swapped for ASCII. Recover anyway.
                let mut bytes = e.into_bytes();
                bytes.clear();
                String::from_utf8(bytes).unwrap_or_default()
            }
        };
        return;
    }
    for chunk in raw.utf8_chunks() {
        push_plus_as_space(chunk.valid(), out);
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

/// Appends `text` with IIS's `+` for a space read back as a space.
fn push_plus_as_space(text: &str, out: &mut String) {
    let mut parts = text.split('+');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for p in parts {
        out.push(' ');
        out.push_str(p);
    }
}

/// Appends a user name (`cs-username`) decoded as [`decode_into`] does, but a
/// byte that is not UTF-8 read as Windows-1252: IIS set to log in ANSI
/// (`logInUTF8="false"`, files `exyymmdd.log` without `u_`) writes the
/// account name in the server's code page, so `CONTOSO\J\xFCrgen` is the
/// `Jürgen` its UTF-8 logs name, not another user (U+FFFD would split him).
pub fn decode_name_into(raw: &[u8], out: &mut String) {
    if std::str::from_utf8(raw).is_ok() {
        decode_into(raw, out);
        return;
    }
    out.reserve(raw.len());
    for chunk in raw.utf8_chunks() {
        push_plus_as_space(chunk.valid(), out);
        out.extend(chunk.invalid().iter().map(|&b| windows_1252(b)));
    }
}

/// A byte of Windows-1252, the code page Windows falls back to for text
/// that is not UTF-8 (ANSI logs, HTTP.sys's paths, PowerShell 5.1's
/// exports): Latin-1 but for 0x80..0x9F, whose five unassigned bytes map
/// to their C1 controls, as Windows' own conversion does.
pub fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        b => char::from(b),
    }
}

/// Appends `raw` with invalid UTF-8 replaced by U+FFFD and nothing else changed
/// (for URIs and queries, where `+` is meaningful).
pub fn decode_utf8_into(raw: &[u8], out: &mut String) {
    out.reserve(raw.len());
    if let Ok(text) = std::str::from_utf8(raw) {
        out.push_str(text);
        return;
    }
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `to` with what `decode` makes of `raw` appended.
    fn decoded(decode: fn(&[u8], &mut String), to: &str, raw: &[u8]) -> String {
        let mut out = to.to_owned();
        decode(raw, &mut out);
        out
    }

    #[test]
    fn decode_plus_and_invalid_utf8() {
        let s = decoded(decode_into, ">", b"Mozilla/5.0+(Windows+NT)+\xff\xfe+caf\xc3\xa9");
        assert_eq!(s, ">Mozilla/5.0 (Windows NT) \u{fffd}\u{fffd} caf\u{e9}");
        let u = decoded(decode_utf8_into, "", b"a+b=\xc3(");
        assert_eq!(u, "a+b=\u{fffd}(");
        assert_eq!(u, String::from_utf8_lossy(b"a+b=\xc3("));
    }

    #[test]
    fn a_user_name_logged_in_ansi_is_read_as_windows_1252() {
        // IIS with logInUTF8="false": `CONTOSO\Jürgen` in Windows-1252.
        let ansi = decoded(decode_name_into, "", b"CONTOSO\\J\xfcrgen");
        let utf8 = decoded(decode_name_into, "", "CONTOSO\\Jürgen".as_bytes());
        assert_eq!((ansi.as_str(), utf8.as_str()), ("CONTOSO\\Jürgen", "CONTOSO\\Jürgen"));
        // `+` is still a space; UTF-8 beside a stray byte is kept; 0x80-0x9F
        // are Windows-1252's, not Latin-1's C1 controls.
        let mixed = decoded(decode_name_into, ">", b"Ren\xe9e+M\xc3\xbcller\x80\x8a\x81");
        assert_eq!(mixed, ">Renée Müller€Š\u{81}");
        // decode_into (user agents: the gateway's reading) is unchanged.
        assert_eq!(decoded(decode_into, "", b"J\xfcrgen"), "J\u{fffd}rgen");
    }

    #[test]
    fn record_accessors() {
        let fields = Fields::parse(b"date time cs-username c-ip");
        let line = b"2022-01-01 00:01:24 - ::1";
        let spans = [(0, 10), (11, 19), (20, 21), (22, 25)];
        let r = Record::new(line, &spans, &fields);
        assert_eq!(r.get(Field::ClientIp), Some(&b"::1"[..]));
        assert_eq!(r.get(Field::Username), None);
        assert_eq!(r.raw(2), Some(&b"-"[..]));
        assert_eq!(r.get(Field::UserAgent), None);
        assert_eq!(r.get_named("C-IP"), Some(&b"::1"[..]));
        let texts = r.texts([Field::ClientIp, Field::Username, Field::UserAgent, Field::Date]);
        assert_eq!(texts, Some([Some("::1"), None, None, Some("2022-01-01")]));
        assert_eq!(r.texts([Field::UserAgent]), Some([None]));
        let bad = b"2022-01-01 00:01:24 - :\xff1";
        let r_bad = Record::new(bad, &spans, &fields);
        assert_eq!(r_bad.texts([Field::ClientIp]), None);
        // Only the stretch between the fields asked for is checked.
        assert_eq!(r_bad.texts([Field::Date, Field::Time]), Some([Some("2022-01-01"), Some("00:01:24")]));
        assert_eq!(r.field(9), None);
        let mut checker = crate::values::Checker::default();
        let columns = crate::values::Columns::of(Some(&fields));
        let r = r.checked(checker.check(line, &spans, &columns).unwrap().time);
        assert_eq!(r.timestamp(), Some(1_640_995_284));
        assert_eq!(r.address(Field::ClientIp), Some(std::net::Ipv6Addr::LOCALHOST.into()));
        assert_eq!(r.len(), 4);
    }
}
