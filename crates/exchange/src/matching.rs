//! Text matching for the detection rules and the probe markers, without
//! allocating: ASCII case-insensitive search, user-agent equality as Sigma
//! writes user agents, the lower-cased URI buffer, path extensions and
//! query parameter names. The case-insensitive search itself is
//! [`crate::text`]'s.

use crate::exploits::URI_BUFFER;
use crate::request::Request;
use crate::text::starts_with_ci;
pub(crate) use crate::text::{contains_ci, ends_with_ci};

/// Lower-case `stem?query` (just `stem` when the query is empty) into `uri`;
/// returns its length (longer than the buffer: not copied).
pub(crate) fn lower_uri(r: &Request, uri: &mut [u8; URI_BUFFER]) -> usize {
    let (stem, query) = (r.stem.as_bytes(), r.query.as_bytes());
    let len = stem.len() + if query.is_empty() { 0 } else { 1 + query.len() };
    if len <= URI_BUFFER {
        uri[..stem.len()].copy_from_slice(stem);
        if !query.is_empty() {
            uri[stem.len()] = b'?';
            uri[stem.len() + 1..len].copy_from_slice(query);
        }
        // Whole blocks past `len` too: the bytes after the URI are scratch.
        lowercase_blocks(&mut uri[..len.next_multiple_of(16).min(URI_BUFFER)]);
    }
    len
}

/// ASCII `A-Z` of `bytes` lower-cased (as `make_ascii_lowercase`), sixteen
/// bytes at a time and branch-free, so that the compiler makes vector code
/// of it: `make_ascii_lowercase` went byte by byte.
fn lowercase_blocks(bytes: &mut [u8]) {
    fn lower(b: u8) -> u8 {
        b | (u8::from(b.wrapping_sub(b'A') < 26) << 5)
    }
    let mut blocks = bytes.chunks_exact_mut(16);
    for block in &mut blocks {
        let lowered = <[u8; 16]>::try_from(&*block).unwrap_or_default().map(lower);
        block.copy_from_slice(&lowered);
    }
    blocks.into_remainder().make_ascii_lowercase();
}

/// Whether `stem?query` (just `stem` when the query is empty) contains
/// `needle`, ignoring ASCII case, without building the string.
pub(crate) fn uri_contains(stem: &str, query: &str, needle: &str) -> bool {
    if contains_ci(stem, needle) || (!query.is_empty() && contains_ci(query, needle)) {
        return true;
    }
    if query.is_empty() {
        return false;
    }
    // An occurrence across the boundary includes the `?`.
    let (s, n) = (stem.as_bytes(), needle.as_bytes());
    n.iter().enumerate().any(|(i, &c)| {
        c == b'?'
            && s.len() >= i
            && s[s.len() - i..].eq_ignore_ascii_case(&n[..i])
            && starts_with_ci(query, &needle[i + 1..])
    })
}

/// The extension of the last segment of `stem`, without the dot; empty when none.
pub(crate) fn extension(stem: &str) -> &str {
    let b = stem.as_bytes();
    let last = memchr::memrchr(b'/', b).map_or(0, |i| i + 1);
    // Both bytes are ASCII: the cuts fall on char boundaries.
    memchr::memrchr(b'.', &b[last..]).map_or("", |dot| &stem[last + dot + 1..])
}

/// Whether `ext` is one of `list` (lower-case), ASCII case ignored.
pub(crate) fn has_extension(list: &[Box<str>], ext: &str) -> bool {
    !ext.is_empty() && list.iter().any(|e| e.len() == ext.len() && e.eq_ignore_ascii_case(ext))
}

/// Whether `query` has a parameter named one of `names` (ASCII case ignored).
pub(crate) fn has_param(query: &str, names: &[Box<str>], except: &[Box<str>]) -> bool {
    let q = query.as_bytes();
    let mut start = 0;
    while start <= q.len() {
        let end = memchr::memchr(b'&', &q[start..]).map_or(q.len(), |i| start + i);
        let pair = &q[start..end];
        let name = &pair[..memchr::memchr(b'=', pair).unwrap_or(pair.len())];
        let same = |a: &[u8], b: &[u8]| a.eq_ignore_ascii_case(b);
        if names.iter().any(|n| same(n.as_bytes(), name)) && !except.iter().any(|e| same(e.as_bytes(), pair)) {
            return true;
        }
        start = end + 1;
    }
    false
}

/// An optional condition: absent holds.
pub(crate) fn holds<T>(condition: Option<T>, check: impl FnOnce(T) -> bool) -> bool {
    match condition {
        None => true,
        Some(c) => check(c),
    }
}

/// User agents equal ignoring ASCII case, with `+` and space the same
/// (Sigma's values are as IIS logs them; ours are decoded).
pub(crate) fn ua_eq(a: &str, b: &str) -> bool {
    let norm = |c: u8| if c == b'+' { b' ' } else { c.to_ascii_lowercase() };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| norm(x) == norm(y))
}

#[cfg(test)]
mod tests {
    use super::lowercase_blocks;

    #[test]
    fn lowercase_blocks_is_make_ascii_lowercase_for_every_byte_and_length() {
        let all: Vec<u8> = (0..=255u8).chain(b"ABCXYZ@[`{az".iter().copied()).collect();
        for len in 0..all.len() {
            for start in [0, 1, 7, 64, 200] {
                let src: Vec<u8> = all.iter().cycle().skip(start).take(len).copied().collect();
                let mut lowered = src.clone();
                lowercase_blocks(&mut lowered);
                assert_eq!(lowered, src.to_ascii_lowercase(), "len {len}, start {start}");
            }
        }
    }
}
