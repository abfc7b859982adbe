//! What every reader of a log with `#Fields` directives shares, whatever
//! its separator: the counters and line numbers of one file ([`Tally`]),
//! what a parser keeps besides ([`ParserState`]), the walk over the lines
//! of a buffer or of a stream's block and the kinds of line
//! ([`LineParser`], [`classify`]), the splitting of a line into spans
//! ([`split_on`]), the last `#Fields` before a point ([`last_fields_in`])
//! and the reading of a stream ([`fill`]). The W3C reader is built on
//! them, and so is the `httpproxy` crate's reader of Exchange's CSV logs.

use std::io::{self, Read};
use std::ops::Range;

use memchr::{memchr, memchr_iter, memrchr};

use crate::parser::{FileStats, Malformed, MalformedKind, ScanOptions, Warning, WarningKind};
use crate::table::{FieldTable, KnownField};

/// The byte order mark some writers put before a file's first line.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";
/// The directive that names the columns.
pub const FIELDS_DIRECTIVE: &[u8] = b"#Fields:";
/// What a crash can leave in a log where lines were to be written (see [`Tally::skip_nuls`]).
const NUL: u8 = 0;

/// `bytes` without the NUL bytes it starts with (see [`Tally::skip_nuls`]).
pub fn after_nuls(bytes: &[u8]) -> &[u8] {
    &bytes[bytes.iter().take_while(|&&b| b == NUL).count()..]
}

/// The counters of one scan: physical lines seen, what [`FileStats`]
/// reports, and the first malformed lines and warnings with their numbers.
#[derive(Debug)]
pub struct Tally {
    /// Longest line accepted, without its line end.
    pub max_line: usize,
    /// How many malformed lines, and how many warnings, to keep.
    pub max_reported: usize,
    /// Physical lines seen, blank ones and directives included.
    pub line_no: u64,
    /// What the scan reports.
    pub stats: FileStats,
}

impl Tally {
    /// Counters for a scan with `opts`, lines longer than `max_line` (at
    /// most the options' `max_line`) being malformed.
    pub fn new(opts: &ScanOptions, max_line: usize) -> Self {
        Tally {
            max_line: opts.max_line.min(max_line),
            max_reported: opts.max_reported,
            line_no: 0,
            stats: FileStats::default(),
        }
    }

    /// Counts a malformed line (the current one), and keeps it while fewer
    /// than `max_reported` are kept; `detail` is built only then.
    pub fn malformed(&mut self, kind: MalformedKind, detail: impl FnOnce() -> String) {
        self.stats.malformed[kind as usize] += 1;
        if self.stats.first_malformed.len() < self.max_reported {
            self.stats.first_malformed.push(Malformed { kind, line: self.line_no, detail: detail() });
        }
    }

    /// True when a malformed line counted now would be kept.
    pub fn keeps_malformed(&self) -> bool {
        self.stats.first_malformed.len() < self.max_reported
    }

    /// Counts a warning on the current line, kept as [`Tally::malformed`] keeps lines.
    pub fn warning(&mut self, kind: WarningKind, detail: impl FnOnce() -> String) {
        self.stats.warnings[kind as usize] += 1;
        if self.stats.first_warnings.len() < self.max_reported {
            self.stats.first_warnings.push(Warning { kind, line: self.line_no, detail: detail() });
        }
    }

    /// A line that is lost as a whole (too long, or cut off by a broken
    /// stream): one more data line, malformed.
    pub fn lost_line(&mut self, kind: MalformedKind, detail: impl FnOnce() -> String) {
        self.line_no += 1;
        self.stats.lines += 1;
        self.malformed(kind, detail);
    }

    /// A line longer than `max_line`.
    pub fn too_long(&mut self) {
        let max = self.max_line;
        self.lost_line(MalformedKind::TooLong, || format!("line longer than {max} bytes"));
    }

    /// One physical line `raw`, without its `\n`, counted: the line without
    /// its `\r`, or `None` when it is too long (counted as such).
    #[inline]
    pub fn begin<'a>(&mut self, raw: &'a [u8]) -> Option<&'a [u8]> {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.len() > self.max_line {
            self.too_long();
            return None;
        }
        self.line_no += 1;
        Some(line)
    }

    /// A line (`line`, its end removed) that starts with NUL bytes: warns,
    /// and returns what follows them. A server that stops without closing
    /// its log (a crash, a power cut) can leave the room it had reserved
    /// for lines as zeros; when it starts again it writes after them,
    /// directives first.
    #[cold]
    pub fn skip_nuls<'a>(&mut self, line: &'a [u8]) -> &'a [u8] {
        let rest = after_nuls(line);
        let n = line.len() - rest.len();
        self.warning(WarningKind::NulBytes, || {
            format!(
                "{n} NUL bytes: the server stopped without finishing this log (a crash or a power cut), \
                 and what it had not written is lost; the text after them is read"
            )
        });
        rest
    }

    /// A malformed line `line`: warns when NUL bytes cut it short (see
    /// [`Tally::skip_nuls`]), which is why it is malformed. Only malformed
    /// lines are searched, so well-formed ones cost nothing.
    #[cold]
    pub fn nuls_within(&mut self, line: &[u8]) {
        if let Some(at) = memchr(NUL, line) {
            self.warning(WarningKind::NulBytes, || {
                format!(
                    "NUL bytes from byte {}: the server stopped while writing this line (a crash or a power cut); \
                     the line is counted malformed",
                    at + 1
                )
            });
        }
    }

    /// A data line `line`: counted, and checked against the `#Fields` in
    /// force, whose number of columns is `columns` (`None`: no directive
    /// yet). `split` splits the line and returns how many fields it has.
    /// True when the line is well-formed.
    #[inline]
    pub fn data_line(&mut self, line: &[u8], columns: Option<usize>, split: impl FnOnce() -> usize) -> bool {
        self.stats.lines += 1;
        let Some(want) = columns else {
            self.malformed(MalformedKind::NoFields, || "data line before any #Fields directive".to_owned());
            return false;
        };
        let got = split();
        if got != want {
            self.nuls_within(line);
            self.malformed(MalformedKind::FieldCount, || format!("expected {want} fields, found {got}"));
            return false;
        }
        true
    }
}

/// What the line parser of every format keeps: the `#Fields` in force, a
/// reused span buffer and the counters.
#[derive(Debug)]
pub struct ParserState<F> {
    /// The `#Fields` in force.
    pub fields: Option<F>,
    /// The `(start, end)` byte offsets of the columns of the last data line.
    pub spans: Vec<(u32, u32)>,
    /// The counters.
    pub tally: Tally,
}

impl<K: KnownField, const N: usize> ParserState<FieldTable<K, N>> {
    /// Counts a data line and splits it into [`ParserState::spans`] with
    /// `split`; false when it is malformed (no `#Fields` in force, or
    /// another number of fields than it names), as [`Tally::data_line`].
    #[inline]
    pub fn data_line(&mut self, line: &[u8], split: impl FnOnce(&[u8], &mut Vec<(u32, u32)>)) -> bool {
        let spans = &mut self.spans;
        let split = || {
            split(line, spans);
            spans.len()
        };
        self.tally.data_line(line, self.fields.as_ref().map(FieldTable::len), split)
    }
}

/// A line parser of a `#Fields` format, as the ways of reading a file
/// (whole, streamed, followed with [`crate::tail`]) drive it.
pub trait LineParser {
    /// The `#Fields` table of the format.
    type Fields: Clone + PartialEq;

    /// A `#Fields` directive's value: the table in force from the next line.
    fn set_fields(&mut self, value: &[u8]);

    /// A data line, without its end.
    fn data(&mut self, line: &[u8]);

    /// The receiver of the records wants no more lines.
    fn stopped(&self) -> bool;

    /// The `#Fields` in force and the counters.
    fn state(&mut self) -> &mut ParserState<Self::Fields>;

    /// The counters.
    #[inline]
    fn tally(&mut self) -> &mut Tally {
        &mut self.state().tally
    }

    /// The statistics and the number of physical lines seen.
    fn finish(mut self) -> (FileStats, u64)
    where
        Self: Sized,
    {
        let tally = self.tally();
        (std::mem::take(&mut tally.stats), tally.line_no)
    }

    /// One physical line, without its `\n`.
    fn line(&mut self, raw: &[u8]) {
        let Some(mut line) = self.tally().begin(raw) else { return };
        if line.first() == Some(&NUL) {
            line = self.tally().skip_nuls(line);
        }
        match classify(line) {
            Line::Blank => {}
            Line::Fields(value) => {
                self.tally().stats.directives += 1;
                self.set_fields(value);
            }
            Line::Directive => self.tally().stats.directives += 1,
            Line::Data(line) => self.data(line),
        }
    }

    /// Every complete line in `data`; a last line without `\n` counts as a
    /// line. Stops early, before any line, once the receiver has stopped.
    #[inline]
    fn lines(&mut self, data: &[u8]) {
        let mut start = 0;
        for nl in memchr_iter(b'\n', data) {
            if self.stopped() {
                return;
            }
            self.line(&data[start..nl]);
            start = nl + 1;
        }
        if start < data.len() && !self.stopped() {
            self.line(&data[start..]);
        }
    }

    /// The complete lines of `buf`, a block read from a file or stream, and
    /// none of a partial line at its end, unless it is already too long to
    /// keep: then it is counted and `*skipping` set, and the bytes up to the
    /// next `\n` are dropped (of this block or the next). Returns the bytes
    /// consumed: what follows them is the partial line, to read again with
    /// the next block.
    fn complete_lines(&mut self, buf: &[u8], skipping: &mut bool) -> usize {
        let mut start = 0;
        if *skipping {
            match memchr(b'\n', buf) {
                Some(nl) => {
                    *skipping = false;
                    start = nl + 1;
                }
                None => return buf.len(),
            }
        }
        let complete = memrchr(b'\n', &buf[start..]).map_or(start, |i| start + i + 1);
        self.lines(&buf[start..complete]);
        // A partial line already longer than any line kept cannot become one.
        if buf.len() - complete > self.tally().max_line.saturating_add(1) && !self.stopped() {
            self.tally().too_long();
            *skipping = true;
            return buf.len();
        }
        complete
    }
}

/// What a line (its end removed) is.
pub enum Line<'a> {
    /// Empty, or spaces and tabs only.
    Blank,
    /// A `#Fields` directive, with the text after `#Fields:`.
    Fields(&'a [u8]),
    /// Another directive.
    Directive,
    /// A data line, without a BOM.
    Data(&'a [u8]),
}

/// Classifies a line (line end already removed). A BOM is dropped at the start of any
/// line: rotated or concatenated files carry one before their directive block.
#[inline]
pub fn classify(line: &[u8]) -> Line<'_> {
    let line = line.strip_prefix(BOM).unwrap_or(line);
    match line.first() {
        None => Line::Blank,
        Some(b'#') => match line.strip_prefix(FIELDS_DIRECTIVE) {
            Some(value) => Line::Fields(value),
            None => Line::Directive,
        },
        Some(b' ' | b'\t') if line.iter().all(|b| matches!(b, b' ' | b'\t')) => Line::Blank,
        Some(_) => Line::Data(line),
    }
}

/// Fill `spans` (cleared first) with the `(start, end)` of each field of
/// `line` separated by the byte `SEP` (ASCII). Fields average a dozen
/// bytes, and `memchr_iter` sets up its vector search again for each: a
/// bit mask of the separators in 64 bytes at a time, walked bit by bit,
/// takes fewer instructions per line.
pub fn split_on<const SEP: u8>(line: &[u8], spans: &mut Vec<(u32, u32)>) {
    spans.clear();
    let mut start = 0u32;
    let mut at = 0;
    // The last, partial block is tested in a copy padded with a byte that is no separator.
    let mut last = [!SEP; 64];
    while at < line.len() {
        let block = match line.get(at..at + 64) {
            Some(block) => block,
            None => {
                let rest = &line[at..];
                last[..rest.len()].copy_from_slice(rest);
                &last[..]
            }
        };
        let mut found = separators::<SEP>(block);
        while found != 0 {
            let end = (at as u32) + found.trailing_zeros();
            spans.push((start, end));
            start = end + 1;
            found &= found - 1;
        }
        at += 64;
    }
    spans.push((start, line.len() as u32));
}

/// `bytes` as text when it is valid UTF-8. Log lines are almost always
/// ASCII, which 64 bytes at a time tell apart with fewer instructions than
/// `from_utf8`'s word-at-a-time path; anything else goes through `from_utf8`.
#[allow(unsafe_code)]
pub fn text(bytes: &[u8]) -> Option<&str> {
    if is_ascii(bytes) {
        // SAFETY: every byte is below 0x80, so `bytes` is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// Whether every byte of `bytes` is below 0x80.
#[inline]
fn is_ascii(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(64);
    let mut high = 0u64;
    for block in &mut blocks {
        let mut word = 0u64;
        for part in block.chunks_exact(8) {
            word |= u64::from_le_bytes(part.try_into().unwrap_or_default());
        }
        high |= word;
    }
    high & 0x8080_8080_8080_8080 == 0 && blocks.remainder().is_ascii()
}

/// Bit `i` set where `block[i] == SEP`; `block` has 64 bytes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)]
fn separators<const SEP: u8>(block: &[u8]) -> u64 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    debug_assert_eq!(block.len(), 64);
    let mut mask = 0u64;
    for (i, part) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of every x86_64 target, and `part` holds the
        // 16 bytes the unaligned load reads.
        let bits = unsafe {
            let v = _mm_loadu_si128(part.as_ptr().cast());
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(SEP as i8)))
        };
        mask |= u64::from(bits as u16) << (16 * i);
    }
    mask
}

/// Bit `i` set where `block[i] == SEP`; `block` has 64 bytes.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn separators<const SEP: u8>(block: &[u8]) -> u64 {
    separators_swar::<SEP>(block)
}

/// [`separators`] without vector instructions: four sixteen-byte words, each
/// tested at once (exact: no carry crosses bytes).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn separators_swar<const SEP: u8>(block: &[u8]) -> u64 {
    const LOW7: u128 = 0x7f7f_7f7f_7f7f_7f7f_7f7f_7f7f_7f7f_7f7f;
    const HIGH: u128 = !LOW7;
    let seps = u128::from_le_bytes([SEP; 16]);
    let mut mask = 0u64;
    for (i, part) in block.chunks_exact(16).enumerate() {
        let w = u128::from_le_bytes(part.try_into().unwrap_or_default()) ^ seps;
        // The high bit of each byte that was a separator, gathered to one bit a byte.
        let mut found = !(((w & LOW7) + LOW7) | w | LOW7) & HIGH;
        while found != 0 {
            mask |= 1 << (16 * i as u32 + found.trailing_zeros() / 8);
            found &= found - 1;
        }
    }
    mask
}

/// The last `#Fields` directive in `data[range]`, by the rules of a
/// sequential scan (a line longer than `max_line` is no directive), read
/// with `parse`. `range.end` must be a line boundary.
pub fn last_fields_in<F>(data: &[u8], range: Range<usize>, max_line: usize, parse: impl Fn(&[u8]) -> F) -> Option<F> {
    let mut end = range.end;
    while end > range.start {
        let hash = range.start + memrchr(b'#', &data[range.start..end])?;
        end = hash;
        let line_start = match memrchr(b'\n', &data[..hash]) {
            Some(i) => i + 1,
            None => 0,
        };
        // Only `#` at a line start (after NUL bytes, then a BOM, both
        // optional; see `LineParser::line`) can begin a directive.
        let before = &data[line_start..hash];
        let before = after_nuls(before);
        if !before.is_empty() && before != BOM {
            continue;
        }
        if !data[hash..].starts_with(FIELDS_DIRECTIVE) {
            continue;
        }
        let line_end = memchr(b'\n', &data[hash..]).map_or(data.len(), |i| hash + i);
        let raw = &data[line_start..line_end];
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.len() > max_line {
            continue; // counted as too long, so not in force
        }
        let line = after_nuls(line);
        if let Line::Fields(v) = classify(line) {
            return Some(parse(v));
        }
    }
    None
}

/// Errors from a decompressor itself, as opposed to the underlying file.
pub fn is_corrupt(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof)
}

/// Fills `buf` as far as the reader allows: the bytes read, and the error
/// that stopped the reader, if any, after them. The error is handed back,
/// not kept for a next call: a decoder that fails once (a gzip member whose
/// checksum does not match) reads as ended afterwards.
pub fn fill(reader: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

#[cfg(test)]
mod tests {
    use super::{split_on, text};

    #[test]
    fn text_agrees_with_from_utf8_wherever_a_high_byte_stands() {
        // Lengths around the 64-byte blocks and their 8-byte words; a high
        // byte (valid UTF-8 or not) at every position, in a block and in the rest.
        for len in [0, 1, 7, 8, 63, 64, 65, 127, 128, 200] {
            let ascii: Vec<u8> = (0..len).map(|i| b' ' + (i % 90) as u8).collect();
            assert_eq!(text(&ascii), std::str::from_utf8(&ascii).ok(), "len {len}");
            for at in 0..len {
                for high in [&b"\xc3\xa9"[..], b"\x80", b"\xff", b"\xe2\x82"] {
                    let mut line = ascii.clone();
                    line.splice(at..at + 1, high.iter().copied());
                    assert_eq!(text(&line), std::str::from_utf8(&line).ok(), "len {len}, at {at}, {high:?}");
                }
            }
        }
    }

    #[test]
    fn split_on_matches_memchr() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut spans = Vec::new();
        for len in 0..200 {
            for _ in 0..20 {
                let line: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        [b' ', b'a', 0x20 ^ 0x80, 0xa0, b'!', 0x1f, 0x00, b',', 0xac][(x % 9) as usize]
                    })
                    .collect();
                for sep in [b' ', b','] {
                    let mut want = Vec::new();
                    let mut start = 0;
                    for at in memchr::memchr_iter(sep, &line) {
                        want.push((start, at as u32));
                        start = at as u32 + 1;
                    }
                    want.push((start, line.len() as u32));
                    if sep == b' ' {
                        split_on::<b' '>(&line, &mut spans);
                    } else {
                        split_on::<b','>(&line, &mut spans);
                    }
                    assert_eq!(spans, want, "{line:?}");
                }
                // Both ways of finding separators, whichever this target uses.
                for block in line.chunks_exact(64) {
                    let want = (0..64).fold(0u64, |m, i| m | (u64::from(block[i] == b' ') << i));
                    assert_eq!(super::separators::<b' '>(block), want, "{block:?}");
                    assert_eq!(super::separators_swar::<b' '>(block), want, "{block:?}");
                }
            }
        }
    }
}
