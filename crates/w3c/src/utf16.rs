//! UTF-16 logs, read as the UTF-8 the readers expect. Windows PowerShell's
//! `Out-File` and `>` write UTF-16 LE with a byte-order mark, so a log an
//! admin filtered or copied with them comes in that way; IIS and Exchange
//! never write it. Decoded as a stream, so memory stays bounded; an unpaired
//! surrogate reads as U+FFFD, as any bad byte of a UTF-8 log does.

use std::io::{self, Read};
use std::path::Path;

/// The order of the bytes of each UTF-16 unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// `FF FE`: what Windows writes as "Unicode".
    Little,
    /// `FE FF`: "BigEndianUnicode".
    Big,
}

/// The byte order that `head`'s byte-order mark names, if it starts with one.
pub fn mark(head: &[u8]) -> Option<ByteOrder> {
    match head {
        [0xFF, 0xFE, ..] => Some(ByteOrder::Little),
        [0xFE, 0xFF, ..] => Some(ByteOrder::Big),
        _ => None,
    }
}

/// Whether the file at `path` starts with a UTF-16 byte-order mark (what
/// is not a regular file is refused, as [`crate::open_file`] does).
pub fn is_utf16_file(path: &Path) -> Result<bool, crate::Error> {
    let mut head = [0u8; 2];
    match crate::lines::fill(&mut crate::open_file(path)?, &mut head) {
        (_, Some(e)) => Err(crate::Error::io(path, e)),
        (got, None) => Ok(got == 2 && mark(&head).is_some()),
    }
}

/// The unit that starts `pair`.
fn unit(order: ByteOrder, pair: &[u8]) -> u16 {
    let pair = [pair[0], pair[1]];
    match order {
        ByteOrder::Little => u16::from_le_bytes(pair),
        ByteOrder::Big => u16::from_be_bytes(pair),
    }
}

/// Bytes of UTF-16 read from the inner reader at a time.
const BLOCK: usize = 64 << 10;

/// Reads the UTF-16 text of `inner` (its byte-order mark already read) as UTF-8.
pub struct Utf16Reader<R> {
    inner: R,
    order: ByteOrder,
    /// UTF-16 bytes read and not yet decoded: a lone last byte, or a high
    /// surrogate waiting for its pair.
    raw: Vec<u8>,
    raw_len: usize,
    /// Decoded text not yet handed out.
    text: Vec<u8>,
    text_at: usize,
    ended: bool,
}

impl<R: Read> Utf16Reader<R> {
    /// `inner`: the stream after its byte-order mark, which gave `order`.
    pub fn new(inner: R, order: ByteOrder) -> Self {
        Utf16Reader {
            inner,
            order,
            raw: vec![0; BLOCK],
            raw_len: 0,
            text: Vec::with_capacity(BLOCK / 2 * 3),
            text_at: 0,
            ended: false,
        }
    }

    /// Decode the next block into `text`; false at the end of the input.
    fn refill(&mut self) -> io::Result<bool> {
        self.text.clear();
        self.text_at = 0;
        while self.text.is_empty() {
            if self.ended && self.raw_len == 0 {
                return Ok(false);
            }
            if !self.ended {
                match self.inner.read(&mut self.raw[self.raw_len..]) {
                    Ok(0) => self.ended = true,
                    Ok(n) => self.raw_len += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            let (order, raw) = (self.order, &self.raw);
            let mut units = self.raw_len / 2;
            // A high surrogate at the end of a block waits for the unit after it.
            if !self.ended && units > 0 && (0xD800..0xDC00).contains(&unit(order, &raw[units * 2 - 2..])) {
                units -= 1;
            }
            let decoded = char::decode_utf16((0..units).map(|i| unit(order, &raw[i * 2..])));
            for c in decoded.map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)) {
                let mut buf = [0u8; 4];
                self.text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            self.raw.copy_within(units * 2..self.raw_len, 0);
            self.raw_len -= units * 2;
            if self.ended && self.raw_len > 0 {
                // A lone byte at the very end: no unit, so a replacement character.
                self.raw_len = 0;
                self.text.extend_from_slice(char::REPLACEMENT_CHARACTER.encode_utf8(&mut [0; 4]).as_bytes());
            }
        }
        Ok(true)
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.text_at == self.text.len() && !self.refill()? {
            return Ok(0);
        }
        let n = out.len().min(self.text.len() - self.text_at);
        out[..n].copy_from_slice(&self.text[self.text_at..self.text_at + n]);
        self.text_at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(text: &str, order: ByteOrder) -> Vec<u8> {
        text.encode_utf16()
            .flat_map(|u| match order {
                ByteOrder::Little => u.to_le_bytes(),
                ByteOrder::Big => u.to_be_bytes(),
            })
            .collect()
    }

    /// A reader that gives one byte at a time, so that every unit and pair is split.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else { return Ok(0) };
            if out.is_empty() {
                return Ok(0);
            }
            out[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn utf16_reads_as_the_same_text_in_utf8() {
        let text = "#Fields: date time cs(User-Agent)\r\n2026-11-02 10:00:00 Outlook-iOS/2.0 Müller 📱\r\n";
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let bytes = encode(text, order);
            let mut out = String::new();
            Utf16Reader::new(&bytes[..], order).read_to_string(&mut out).unwrap();
            assert_eq!(out, text);
            let mut out = String::new();
            Utf16Reader::new(Trickle(&bytes), order).read_to_string(&mut out).unwrap();
            assert_eq!(out, text, "one byte at a time");
        }
        let mut big = "a".repeat(BLOCK / 2 - 1);
        big.push('📱');
        let mut out = String::new();
        Utf16Reader::new(&encode(&big, ByteOrder::Little)[..], ByteOrder::Little).read_to_string(&mut out).unwrap();
        assert_eq!(out, big, "a pair across two blocks");
    }

    #[test]
    fn broken_utf16_reads_as_replacement_characters() {
        // A lone high surrogate, a lone low one, and a last odd byte.
        let bytes = [0x3D, 0xD8, b'a', 0, 0x00, 0xDC, b'b', 0, b'c'];
        let mut out = String::new();
        Utf16Reader::new(&bytes[..], ByteOrder::Little).read_to_string(&mut out).unwrap();
        assert_eq!(out, "\u{FFFD}a\u{FFFD}b\u{FFFD}");
        assert_eq!(mark(b"\xFF\xFEa"), Some(ByteOrder::Little));
        assert_eq!(mark(b"\xFE\xFF"), Some(ByteOrder::Big));
        assert_eq!((mark(b"\xFF"), mark(b"\xEF\xBB\xBF#")), (None, None));
    }
}
