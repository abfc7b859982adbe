//! Checks for tests and fuzzing: paths spelled every way IIS reads alike,
//! and the fuzz target that holds the decoders to their slow references.

use super::query::decode_query_bytes;
use super::{
    cookie_names_a_backend, decode_path, decode_query_value_into, encode_path, normalize_path, resolve, PLAIN,
};

/// Spell a canonical path another way IIS reads alike, with `choices`
/// picking, byte by byte, how each character and slash is written: as is,
/// `%XX` in either case, `%uNNNN`, or the other letter case; a slash as `\`,
/// `%2F`, `%5C`, doubled, or with `.`, `x/..` or trailing-dot detours.
/// For tests and fuzzing: [`decode_path`] of the result must give the same
/// path up to ASCII case.
#[doc(hidden)]
pub fn respell(canonical: &str, choices: &[u8]) -> String {
    let mut next = choices.iter().copied().cycle();
    let mut pick = |n: u8| if choices.is_empty() { 0 } else { next.next().unwrap_or(0) % n };
    let mut out = String::with_capacity(canonical.len() * 3);
    let push_escape = |out: &mut String, b: u8, lower: bool| {
        let digits = if lower { b"0123456789abcdef" } else { b"0123456789ABCDEF" };
        out.push('%');
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 15)]));
    };
    for (i, c) in canonical.char_indices() {
        if c == '/' {
            if i == 0 {
                out.push('/');
                continue;
            }
            match pick(8) {
                1 => out.push('\\'),
                2 => out.push_str("%2F"),
                3 => out.push_str("%5c"),
                4 => out.push_str("//"),
                5 => out.push_str("/./"),
                6 => out.push_str("/x/../"),
                7 if !out.ends_with(['/', '\\']) && !out.ends_with("%2F") && !out.ends_with("%5c") => {
                    out.push_str("./")
                }
                _ => out.push('/'),
            }
            continue;
        }
        let mut buf = [0u8; 4];
        let bytes = c.encode_utf8(&mut buf).as_bytes();
        let plain = bytes.len() == 1 && PLAIN[usize::from(bytes[0])];
        match pick(5) {
            0 if plain => out.push(c),
            4 if plain && c.is_ascii_alphabetic() => {
                out.push(if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            }
            3 => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("%u{unit:04X}"));
                }
            }
            k => bytes.iter().for_each(|&b| push_escape(&mut out, b, k == 2)),
        }
    }
    out
}

/// Asserts that a fast path writes for `raw` what its slower `reference` writes.
fn assert_agree<A, B>(what: &str, raw: &str, fast: fn(&str, &mut String) -> A, reference: fn(&str, &mut String) -> B) {
    let (mut got, mut want) = (String::new(), String::new());
    fast(raw, &mut got);
    reference(raw, &mut want);
    assert_eq!(got, want, "{what} agrees on {raw:?}");
}

/// Fuzzing entry point. Never panics; a path [`decode_path`] accepts is
/// canonical (starts with `/`, no dot, empty or backslash segment, no
/// control character), reads back unchanged once encoded, and the fast path
/// agrees with full resolution.
pub fn fuzz(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let mut decoded = String::new();
    let accepted = decode_path(&raw, &mut decoded).is_ok();
    let mut again = String::new();
    normalize_path(&decoded, &mut again);
    assert_eq!(again, decoded, "normalize is idempotent on {raw:?}");
    assert_agree("fast path", &raw, normalize_path, resolve);
    if accepted {
        assert!(decoded.starts_with('/'), "{raw:?} -> {decoded:?}");
        assert!(
            !decoded.split('/').any(|s| s == "." || s == ".." || s.ends_with(['.', ' '])) && !decoded.contains('\\'),
            "{raw:?} -> {decoded:?}"
        );
        assert!(!decoded.chars().any(|c| c.is_control()), "{raw:?} -> {decoded:?}");
        let mut back = String::new();
        assert_eq!(decode_path(&encode_path(&decoded), &mut back), Ok(()), "{raw:?} -> {decoded:?}");
        assert_eq!(back, decoded, "{raw:?}");
    }
    assert_agree("query fast path", &raw, decode_query_value_into, decode_query_bytes);
    assert_eq!(cookie_names_a_backend(data), backend_cookie_reference(data), "{raw:?}");
}

/// [`cookie_names_a_backend`] the slow way, for the fuzz target: the
/// mitigation's two patterns and EWS's override cookie tried at every
/// position of a lower-cased copy.
pub(super) fn backend_cookie_reference(cookie: &[u8]) -> bool {
    let lower = cookie.to_ascii_lowercase();
    let at = |i: usize, needle: &[u8]| lower[i..].starts_with(needle);
    (0..lower.len()).any(|i| {
        at(i, b"x-anonresource-backend")
            || (at(i, b"x-backendoverridecookie=") && {
                let v = lower[i + b"x-backendoverridecookie=".len()..].split(|&b| b == b';').next().unwrap_or(&[]);
                let v = v.trim_ascii();
                !v.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_~".contains(&b))
            })
            || (at(i, b"x-beresource=") && {
                let v = &lower[i + b"x-beresource=".len()..];
                (1..v.len())
                    .any(|s| matches!(v[s], b'/' | b'\\') && (s + 2..v.len().saturating_sub(1)).any(|t| v[t] == b'~'))
            })
    })
}
