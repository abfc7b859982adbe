//! The text encodings PowerShell writes files in: UTF-8 with or without a
//! byte-order mark (`Export-Csv -Encoding UTF8`, PowerShell 7's default),
//! UTF-16 with a mark (`-Encoding Unicode` / `BigEndianUnicode`, and
//! `Out-File`'s default in Windows PowerShell 5.1), and the ANSI code page
//! (`-Encoding Default`), read as Windows-1252.

use std::borrow::Cow;

/// How a file's bytes were decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
    /// Not valid UTF-8 and no mark: Windows PowerShell's ANSI default on Western systems.
    Windows1252,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf8Bom => "UTF-8 with BOM",
            Encoding::Utf16Le => "UTF-16 LE",
            Encoding::Utf16Be => "UTF-16 BE",
            Encoding::Windows1252 => "Windows-1252",
        }
    }
}

/// The text of `bytes`, by its byte-order mark, else UTF-16 if the first
/// character has a zero byte beside it (a file written without a mark), else
/// UTF-8, else Windows-1252. Never fails: bytes that do not decode become
/// U+FFFD, and a row holding one then fails on its own.
pub fn decode(bytes: &[u8]) -> (Cow<'_, str>, Encoding) {
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => (String::from_utf8_lossy(rest), Encoding::Utf8Bom),
        [0xFF, 0xFE, rest @ ..] => (Cow::Owned(utf16(rest, u16::from_le_bytes)), Encoding::Utf16Le),
        [0xFE, 0xFF, rest @ ..] => (Cow::Owned(utf16(rest, u16::from_be_bytes)), Encoding::Utf16Be),
        [a, 0, ..] if *a != 0 => (Cow::Owned(utf16(bytes, u16::from_le_bytes)), Encoding::Utf16Le),
        [0, b, ..] if *b != 0 => (Cow::Owned(utf16(bytes, u16::from_be_bytes)), Encoding::Utf16Be),
        _ => match std::str::from_utf8(bytes) {
            Ok(text) => (Cow::Borrowed(text), Encoding::Utf8),
            Err(_) => (Cow::Owned(bytes.iter().map(|&b| w3c::windows_1252(b)).collect()), Encoding::Windows1252),
        },
    }
}

/// UTF-16 code units in byte pairs; a trailing odd byte (a cut file) is dropped.
fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|p| unit([p[0], p[1]]));
    char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut out = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
        out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        out
    }

    #[test]
    fn marks_and_fallbacks() {
        let text = "\"Identity\",\"DeviceId\"\r\n\"Jürgen\",\"§1\"";
        assert_eq!(decode(text.as_bytes()), (Cow::Borrowed(text), Encoding::Utf8));
        let bom = [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat();
        assert_eq!(decode(&bom), (Cow::Borrowed(text), Encoding::Utf8Bom));
        assert_eq!(decode(&utf16le(text, true)).0, text);
        assert_eq!(decode(&utf16le(text, true)).1, Encoding::Utf16Le);
        assert_eq!(decode(&utf16le(text, false)), (Cow::Borrowed(text), Encoding::Utf16Le));
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&be), (Cow::Borrowed(text), Encoding::Utf16Be));
        // ü and § in Windows-1252, and the euro sign from the 0x80 block.
        let ansi = b"J\xFCrgen \xA7 \x80";
        assert_eq!(decode(ansi), (Cow::Borrowed("Jürgen § €"), Encoding::Windows1252));
    }

    #[test]
    fn broken_utf16_becomes_replacement_characters() {
        // A lone high surrogate, then a cut-off final byte.
        let bytes = [0xFF, 0xFE, b'a', 0, 0x00, 0xD8, b'b', 0, b'c'];
        assert_eq!(decode(&bytes).0, "a\u{FFFD}b");
    }
}
