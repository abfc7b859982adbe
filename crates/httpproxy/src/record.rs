//! One data line, borrowed from the reader's buffer.

use w3c::time::DateTimeCache;

use crate::fields::{Field, Fields};
use crate::split::{unescape_into, ESCAPED};

/// A data line whose field count matched the `#Fields` in force.
///
/// Borrows the line bytes and the reader's span table: building one allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    line: &'a [u8],
    spans: &'a [(u32, u32)],
    fields: &'a Fields,
}

impl<'a> Record<'a> {
    /// `spans` are `(start, end)` byte offsets into `line` (see `split`), one per column.
    pub(crate) fn new(line: &'a [u8], spans: &'a [(u32, u32)], fields: &'a Fields) -> Self {
        debug_assert_eq!(spans.len(), fields.len());
        Record { line, spans, fields }
    }

    /// A well-known field as logged; `None` when it is not logged or empty.
    /// A quoted value with doubled quotes keeps them: [`Record::value_into`]
    /// gives the value itself.
    #[inline]
    pub fn get(&self, f: Field) -> Option<&'a [u8]> {
        self.field(self.fields.index(f)?)
    }

    /// A column by index, quotes removed; `None` when empty or out of range.
    #[inline]
    pub fn field(&self, index: usize) -> Option<&'a [u8]> {
        let &(s, e) = self.spans.get(index)?;
        let v = &self.line[s as usize..(e & !ESCAPED) as usize];
        (!v.is_empty()).then_some(v)
    }

    /// A field by its `#Fields` name (case-insensitive); `None` as for [`Record::get`].
    pub fn get_named(&self, name: &str) -> Option<&'a [u8]> {
        self.field(self.fields.index_of(name)?)
    }

    /// The whole line as text, when it is valid UTF-8 (almost always). One
    /// validation of the line is cheaper than one per field read as text.
    pub fn text(&self) -> Option<&'a str> {
        w3c::lines::text(self.line)
    }

    /// A well-known field of `text`, the line from [`Record::text`], when it
    /// has no doubled quotes to undo; `None` when absent or empty, or when
    /// it has them (then read it with [`Record::value_into`]).
    #[inline]
    pub fn get_text(&self, text: &'a str, f: Field) -> Option<&'a str> {
        let &(s, e) = self.spans.get(self.fields.index(f)?)?;
        if e & ESCAPED != 0 || s == e {
            return None;
        }
        // Fields end at ASCII commas and quotes, so at char boundaries.
        text.get(s as usize..e as usize)
    }

    /// True when a well-known field holds doubled quotes to undo.
    #[inline]
    pub fn is_escaped(&self, f: Field) -> bool {
        self.fields.index(f).and_then(|i| self.spans.get(i)).is_some_and(|&(_, e)| e & ESCAPED != 0)
    }

    /// Appends a well-known field's value to `out`: doubled quotes undone,
    /// invalid UTF-8 replaced by U+FFFD. Appends nothing when it is absent.
    pub fn value_into(&self, f: Field, out: &mut String) {
        let Some(index) = self.fields.index(f) else { return };
        let Some(&(s, e)) = self.spans.get(index) else { return };
        let raw = &self.line[s as usize..(e & !ESCAPED) as usize];
        if e & ESCAPED == 0 {
            w3c::decode_utf8_into(raw, out);
            return;
        }
        let mut bytes = Vec::with_capacity(raw.len());
        unescape_into(raw, true, &mut bytes);
        w3c::decode_utf8_into(&bytes, out);
    }

    /// Number of columns (always `self.fields().len()`).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True for a table without columns (never produced by the reader).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The `#Fields` table this line was read under.
    pub fn fields(&self) -> &'a Fields {
        self.fields
    }

    /// The whole line without its line end (and without a leading BOM).
    pub fn line(&self) -> &'a [u8] {
        self.line
    }

    /// `DateTime` as Unix seconds (UTC, fraction dropped); `None` when
    /// missing or not `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp_cached(&mut DateTimeCache::default())
    }

    /// [`Record::timestamp`] through a cache kept across lines.
    pub fn timestamp_cached(&self, cache: &mut DateTimeCache) -> Option<i64> {
        let (date, time) = split_iso(self.get(Field::DateTime)?)?;
        cache.parse(date, time)
    }
}

/// `2023-01-11T16:06:06.997Z` as its date and its time of day.
fn split_iso(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let v = v.strip_suffix(b"Z").or_else(|| v.strip_suffix(b"z"))?;
    if v.len() < 19 || !matches!(v[10], b'T' | b't') {
        return None;
    }
    Some((&v[..10], &v[11..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::split;

    #[test]
    fn accessors() {
        let fields = Fields::parse(b"DateTime,RequestId,UserAgent,GenericErrors");
        let line = br#"2023-01-11T16:06:06.997Z,823d6c00-01f1-4067-9002-18ff1cf2e5d9,,"Say ""no"", caf\xc3\xa9""#;
        let mut spans = Vec::new();
        split(line, &mut spans);
        let r = Record::new(line, &spans, &fields);
        assert_eq!(r.timestamp(), Some(1_673_453_166));
        assert_eq!(r.get(Field::RequestId), Some(&b"823d6c00-01f1-4067-9002-18ff1cf2e5d9"[..]));
        assert_eq!(r.get(Field::UserAgent), None);
        assert_eq!(r.get(Field::UrlStem), None);
        let mut text = String::new();
        r.value_into(Field::UserAgent, &mut text);
        assert_eq!(text, "");
        assert_eq!(r.get_named("genericerrors"), Some(&br#"Say ""no"", caf\xc3\xa9"#[..]));
        assert_eq!(r.len(), 4);
        assert_eq!(r.field(9), None);
        let text = r.text().unwrap();
        assert_eq!(r.get_text(text, Field::RequestId), Some("823d6c00-01f1-4067-9002-18ff1cf2e5d9"));
        assert_eq!(r.get_text(text, Field::UserAgent), None);
    }

    #[test]
    fn value_into_undoes_quotes() {
        let fields = Fields::parse(b"UserAgent,Method");
        let line = b"\"Mozilla \"\"x\"\", y \xff\",GET";
        let mut spans = Vec::new();
        split(line, &mut spans);
        let r = Record::new(line, &spans, &fields);
        let mut ua = String::new();
        r.value_into(Field::UserAgent, &mut ua);
        assert_eq!(ua, "Mozilla \"x\", y \u{fffd}");
        let mut m = String::from(">");
        r.value_into(Field::Method, &mut m);
        assert_eq!(m, ">GET");
    }

    #[test]
    fn iso_times() {
        assert_eq!(split_iso(b"2023-01-11T16:06:06.997Z"), Some((&b"2023-01-11"[..], &b"16:06:06.997"[..])));
        assert_eq!(split_iso(b"2023-01-11T16:06:06Z"), Some((&b"2023-01-11"[..], &b"16:06:06"[..])));
        assert_eq!(split_iso(b"2023-01-11 16:06:06Z"), None);
        assert_eq!(split_iso(b"2023-01-11T16:06:06.997"), None);
        assert_eq!(split_iso(b"Z"), None);
    }
}
