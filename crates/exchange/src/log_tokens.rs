//! The `&Log=` diagnostics Exchange's ActiveSync appends to the logged
//! query: `_`-separated elements, `Key:value` (value URL-encoded) or
//! `KeyDigits` (see [`LogTokens`]). Untrusted input: never
//! panics; an element it cannot read is skipped.

use crate::url;

/// The `&Log=` diagnostics Exchange appends to ActiveSync queries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogTokens {
    /// `V` protocol version, e.g. `160`.
    pub version: String,
    pub smtp_address: String,
    pub device_os: String,
    pub device_model: String,
    /// `As` access state and reason, e.g. `AllowedG`.
    pub access_state: String,
    /// `PrxFrom`: the front end that proxied this request.
    pub proxied_from: String,
    /// `HH`: the Host header.
    pub host: String,
}

/// Which [`LogTokens`] a reader fills: a consumer that reads only some of
/// them (the audit reads the device's OS and model and the access state)
/// lets the reader skip decoding the others, which stay empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogWanted(u8);

impl LogWanted {
    pub const NONE: LogWanted = LogWanted(0);
    pub const VERSION: LogWanted = LogWanted(1);
    pub const SMTP_ADDRESS: LogWanted = LogWanted(1 << 1);
    pub const DEVICE_OS: LogWanted = LogWanted(1 << 2);
    pub const DEVICE_MODEL: LogWanted = LogWanted(1 << 3);
    pub const ACCESS_STATE: LogWanted = LogWanted(1 << 4);
    pub const PROXIED_FROM: LogWanted = LogWanted(1 << 5);
    pub const HOST: LogWanted = LogWanted(1 << 6);
    pub const ALL: LogWanted = LogWanted((1 << 7) - 1);

    /// The tokens of both.
    pub const fn with(self, other: LogWanted) -> LogWanted {
        LogWanted(self.0 | other.0)
    }

    /// Whether any token of `other` is wanted.
    pub const fn any(self, other: LogWanted) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether every token wanted is one of `other`'s.
    pub const fn within(self, other: LogWanted) -> bool {
        self.0 & !other.0 == 0
    }
}

impl LogTokens {
    /// Empty the tokens not in `wanted`.
    pub fn keep_only(&mut self, wanted: LogWanted) {
        let fields = [
            (LogWanted::VERSION, &mut self.version),
            (LogWanted::SMTP_ADDRESS, &mut self.smtp_address),
            (LogWanted::DEVICE_OS, &mut self.device_os),
            (LogWanted::DEVICE_MODEL, &mut self.device_model),
            (LogWanted::ACCESS_STATE, &mut self.access_state),
            (LogWanted::PROXIED_FROM, &mut self.proxied_from),
            (LogWanted::HOST, &mut self.host),
        ];
        for (token, field) in fields {
            if !wanted.any(token) {
                field.clear();
            }
        }
    }

    pub fn clear(&mut self) {
        self.version.clear();
        self.smtp_address.clear();
        self.device_os.clear();
        self.device_model.clear();
        self.access_state.clear();
        self.proxied_from.clear();
        self.host.clear();
    }
}

/// Fill `out` from the value of a `Log=` parameter: `_`-separated elements,
/// each `Key:value` (value URL-encoded) or `KeyDigits`. Unknown keys are
/// skipped; the first occurrence of a key wins.
pub fn parse_log(value: &str, out: &mut LogTokens) {
    parse_log_only(value, out, LogWanted::ALL);
}

/// [`parse_log`] filling only the `wanted` tokens: the others are not
/// decoded, and stay as they were.
pub fn parse_log_only(value: &str, out: &mut LogTokens, wanted: LogWanted) {
    if wanted.within(DEVICE_FACTS) {
        device_facts_only(value, out, wanted);
    } else {
        every_element(value, out, wanted);
    }
}

/// [`parse_log_only`] by splitting the value at every `_`.
fn every_element(value: &str, out: &mut LogTokens, wanted: LogWanted) {
    let bytes = value.as_bytes();
    // One pass over the value for every `_`, eight bytes at a time (a busy
    // server's `Log=` runs to dozens of short elements: a search set up
    // again for each one costs more than the element). The loop is written
    // out here, not behind a closure, so that the test of each element
    // stays inline: most elements are skipped on their first two bytes.
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const UNDERSCORES: u64 = 0x0101_0101_0101_0101 * b'_' as u64;
    let mut start = 0;
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]])
            ^ UNDERSCORES;
        // The top bit of each byte that is zero in `w` (a `_`), exactly: no carry crosses a byte.
        let mut found = !(((w & LOW7) + LOW7) | w | LOW7);
        while found != 0 {
            let end = base + found.trailing_zeros() as usize / 8;
            log_element(value, start, end, out, wanted);
            start = end + 1;
            found &= found - 1;
        }
        base += 8;
    }
    for (i, &c) in chunks.remainder().iter().enumerate() {
        if c == b'_' {
            log_element(value, start, base + i, out, wanted);
            start = base + i + 1;
        }
    }
    log_element(value, start, bytes.len(), out, wanted);
}

/// The tokens a device's model, OS and access state are read from.
const DEVICE_FACTS: LogWanted = LogWanted::DEVICE_OS.with(LogWanted::DEVICE_MODEL).with(LogWanted::ACCESS_STATE);

/// [`parse_log_only`] for device facts alone, as the audit reads a back-end
/// hop: their elements (`As:`, `DevOS:`, `DevModel:`) are found by a SIMD
/// search for where they start, not by splitting every element of a busy
/// server's long `Log=`. Same result: the first of each key, decoded.
fn device_facts_only(value: &str, out: &mut LogTokens, wanted: LogWanted) {
    static KEYS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 2]> =
        std::sync::LazyLock::new(|| [memchr::memmem::Finder::new(b"_As"), memchr::memmem::Finder::new(b"_De")]);
    let bytes = value.as_bytes();
    let mut element_at = |start: usize| {
        let end = memchr::memchr(b'_', &bytes[start..]).map_or(bytes.len(), |e| start + e);
        log_element(value, start, end, out, wanted);
    };
    // The first element has no `_` before it.
    element_at(0);
    for (finder, token) in
        KEYS.iter().zip([LogWanted::ACCESS_STATE, LogWanted::DEVICE_OS.with(LogWanted::DEVICE_MODEL)])
    {
        if wanted.any(token) {
            for at in finder.find_iter(bytes) {
                element_at(at + 1);
            }
        }
    }
}

/// Keep the element `value[start..end]` if it may hold a key we read.
#[inline(always)]
fn log_element(value: &str, start: usize, end: usize, out: &mut LogTokens, wanted: LogWanted) {
    if is_kept(&value.as_bytes()[start..end], wanted) {
        store_log_element(&value[start..end], out, wanted);
    }
}

/// Whether a `Log=` element may hold a key we keep: every such key starts
/// with one of these pairs (`V` is followed by its digits or `:`); the rest
/// are skipped unsplit, and so are the keys not `wanted`.
#[inline]
fn is_kept(e: &[u8], wanted: LogWanted) -> bool {
    let token = match (e.first(), e.get(1)) {
        (Some(b'V'), second) if second.is_none_or(|&c| c == b':' || c.is_ascii_digit()) => LogWanted::VERSION,
        (Some(b'S'), Some(b'm')) => LogWanted::SMTP_ADDRESS,
        (Some(b'D'), Some(b'e')) => LogWanted::DEVICE_OS.with(LogWanted::DEVICE_MODEL),
        (Some(b'A'), Some(b's')) => LogWanted::ACCESS_STATE,
        (Some(b'P'), Some(b'r')) => LogWanted::PROXIED_FROM,
        (Some(b'H'), Some(b'H')) => LogWanted::HOST,
        _ => return false,
    };
    wanted.any(token)
}

/// Split one element into key and value and keep the value of a key we
/// read, unless that key came before.
#[inline]
pub(crate) fn store_log_element(element: &str, out: &mut LogTokens, wanted: LogWanted) {
    let e = element.as_bytes();
    let (key, val) = match e.iter().position(|&c| c == b':') {
        Some(i) => (&e[..i], &element[i + 1..]),
        None => {
            let at = e.iter().position(u8::is_ascii_digit).unwrap_or(e.len());
            (&e[..at], &element[at..])
        }
    };
    let (token, field) = match key {
        b"V" => (LogWanted::VERSION, &mut out.version),
        b"SmtpAdrs" => (LogWanted::SMTP_ADDRESS, &mut out.smtp_address),
        b"DevOS" => (LogWanted::DEVICE_OS, &mut out.device_os),
        b"DevModel" => (LogWanted::DEVICE_MODEL, &mut out.device_model),
        b"As" => (LogWanted::ACCESS_STATE, &mut out.access_state),
        b"PrxFrom" => (LogWanted::PROXIED_FROM, &mut out.proxied_from),
        b"HH" => (LogWanted::HOST, &mut out.host),
        _ => return,
    };
    if field.is_empty() && wanted.any(token) {
        url::decode_query_value_into(val, field);
    }
}

/// Fuzzing check: the device-facts search finds what splitting every
/// element finds.
pub(crate) fn fuzz(text: &str) {
    let (mut found, mut split) = (LogTokens::default(), LogTokens::default());
    device_facts_only(text, &mut found, DEVICE_FACTS);
    every_element(text, &mut split, DEVICE_FACTS);
    assert_eq!(found, split, "device facts of {text:?}");
}
