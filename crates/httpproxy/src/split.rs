//! Splitting one CSV line into field spans, without copying.
//!
//! Exchange's log writer replaces `,` and line ends in every value with a
//! space, so its lines have no quoted field; other writers quote as RFC 4180
//! does (`"a,b"`, `""` for a quote). Both are read: a field that starts with
//! `"` and has a closing `"` followed by `,` or the end of the line is
//! quoted; any other `"` is an ordinary character.

use memchr::memchr;
use w3c::lines::split_on;

/// Set in a span's end when the field holds doubled quotes to undo.
pub(crate) const ESCAPED: u32 = 1 << 31;

/// The longest line whose offsets fit beside the [`ESCAPED`] bit.
pub(crate) const MAX_LINE: usize = (ESCAPED - 1) as usize;

/// Fill `spans` (cleared first) with the `(start, end)` of each field of
/// `line`, quotes excluded; `end` carries [`ESCAPED`] when the field has
/// doubled quotes. `line` must be at most [`MAX_LINE`] bytes. The common
/// case, no `"` in the line (one vector search tells), is split on commas
/// as the W3C reader splits on spaces ([`split_on`]).
pub(crate) fn split(line: &[u8], spans: &mut Vec<(u32, u32)>) {
    debug_assert!(line.len() <= MAX_LINE);
    if memchr(b'"', line).is_some() {
        spans.clear();
        split_quoted(line, spans);
    } else {
        split_on::<b','>(line, spans);
    }
}

/// Lines with a `"`: field by field.
fn split_quoted(line: &[u8], spans: &mut Vec<(u32, u32)>) {
    let mut start = 0;
    loop {
        if line.get(start) == Some(&b'"') {
            if let Some((end, escaped, next)) = quoted(line, start + 1) {
                let flag = if escaped { ESCAPED } else { 0 };
                spans.push((start as u32 + 1, end as u32 | flag));
                match next {
                    Some(n) => {
                        start = n;
                        continue;
                    }
                    None => return,
                }
            }
        }
        match memchr(b',', &line[start..]) {
            Some(i) => {
                spans.push((start as u32, (start + i) as u32));
                start += i + 1;
            }
            None => {
                spans.push((start as u32, line.len() as u32));
                return;
            }
        }
    }
}

/// A quoted field whose content starts at `from`: its end, whether it holds
/// doubled quotes, and where the next field starts (`None` at the end of the
/// line). `None` when the closing quote is missing or not followed by `,` or
/// the end: the field is then read as ordinary text.
fn quoted(line: &[u8], from: usize) -> Option<(usize, bool, Option<usize>)> {
    let mut at = from;
    let mut escaped = false;
    loop {
        let q = at + memchr(b'"', &line[at..])?;
        match line.get(q + 1) {
            Some(b'"') => {
                escaped = true;
                at = q + 2;
            }
            Some(b',') => return Some((q, escaped, Some(q + 2))),
            None => return Some((q, escaped, None)),
            Some(_) => return None,
        }
    }
}

/// Appends a field's bytes to `out`, undoing doubled quotes when `escaped`.
pub(crate) fn unescape_into(raw: &[u8], escaped: bool, out: &mut Vec<u8>) {
    if !escaped {
        out.extend_from_slice(raw);
        return;
    }
    let mut rest = raw;
    while let Some(q) = memchr(b'"', rest) {
        out.extend_from_slice(&rest[..=q]);
        // The quote that doubles this one.
        rest = rest.get(q + 2..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Vec<String> {
        let mut spans = Vec::new();
        split(line.as_bytes(), &mut spans);
        spans
            .iter()
            .map(|&(s, e)| {
                let mut out = Vec::new();
                unescape_into(&line.as_bytes()[s as usize..(e & !ESCAPED) as usize], e & ESCAPED != 0, &mut out);
                String::from_utf8(out).unwrap()
            })
            .collect()
    }

    #[test]
    fn plain_and_quoted_fields() {
        assert_eq!(fields(""), [""]);
        assert_eq!(fields("a,,b,"), ["a", "", "b", ""]);
        assert_eq!(
            fields("2023-01-11T16:06:06.997Z,823d6c00,15,1"),
            ["2023-01-11T16:06:06.997Z", "823d6c00", "15", "1"]
        );
        assert_eq!(fields(r#"a,"b,c",d"#), ["a", "b,c", "d"]);
        assert_eq!(fields(r#""He said ""hi"", twice",x"#), [r#"He said "hi", twice"#, "x"]);
        assert_eq!(fields(r#"x,"""""#), ["x", r#"""#]);
        assert_eq!(fields(r#""","#), ["", ""]);
        // Quotes that do not open a field, or never close, are ordinary characters.
        assert_eq!(fields(r#"Mozilla "x" y,z"#), [r#"Mozilla "x" y"#, "z"]);
        assert_eq!(fields(r#""x" y,z"#), [r#""x" y"#, "z"]);
        assert_eq!(fields(r#"a,"b,c"#), ["a", r#""b"#, "c"]);
    }

    #[test]
    fn the_fast_path_agrees_with_a_byte_by_byte_split() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut spans = Vec::new();
        for len in 0..120 {
            for _ in 0..30 {
                let line: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        [b',', b'a', b',' ^ 0x80, 0xac, b' ', 0x00, b'"'][(x % 7) as usize]
                    })
                    .collect();
                split(&line, &mut spans);
                let mut want = Vec::new();
                split_quoted(&line, &mut want);
                assert_eq!(spans, want, "{line:?}");
                if !line.contains(&b'"') {
                    let commas = line.iter().filter(|&&b| b == b',').count();
                    assert_eq!(spans.len(), commas + 1);
                }
            }
        }
    }
}
