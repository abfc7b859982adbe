//! The typed columns of a data line, checked once as the line is read: a
//! line whose date, time, address (`s-ip`, `c-ip`), status (`sc-status`,
//! `sc-substatus`) or `s-port` does not hold what its name says is malformed
//! ([`crate::MalformedKind::BadValue`]). The date and time are parsed here,
//! through a cache, and travel with the record; the other columns are
//! parsed where they are read ([`crate::Record::address`],
//! [`crate::Record::number`]), so that a reader that does not read them
//! does not pay for it.
//!
//! No line is read without its time, which every report is ordered by. An
//! address that is printable text but no address (`xxx`, as logs shared after
//! an incident are redacted) leaves the line readable, its address unknown,
//! with a warning ([`crate::WarningKind::UnreadableAddress`]); other bytes
//! (invalid UTF-8, control characters) mean damage, and the line is malformed.

use std::net::{IpAddr, Ipv4Addr};

use crate::fields::{Field, Fields};
use crate::time::{parse_date, parse_time, time_of_day};

/// A column the table does not have.
const ABSENT: u32 = u32::MAX;

/// Where a table keeps its typed columns ([`ABSENT`] where it has none):
/// looked up once per `#Fields`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Columns {
    date: u32,
    time: u32,
    server_ip: u32,
    client_ip: u32,
    status: u32,
    substatus: u32,
    server_port: u32,
}

impl Columns {
    pub fn of(fields: Option<&Fields>) -> Columns {
        let at = |f: Field| fields.and_then(|t| t.index(f)).map_or(ABSENT, |i| i as u32);
        Columns {
            date: at(Field::Date),
            time: at(Field::Time),
            server_ip: at(Field::ServerIp),
            client_ip: at(Field::ClientIp),
            status: at(Field::Status),
            substatus: at(Field::SubStatus),
            server_port: at(Field::ServerPort),
        }
    }
}

/// What a line's check found: its time, and an address read as unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Checked {
    /// `date` + `time` as Unix seconds; `None` when the table lacks either.
    pub time: Option<i64>,
    /// An address column that held printable text but no address; `c-ip`
    /// when both did, as the source is the one a report reads.
    pub unreadable: Option<Field>,
}

/// The column that failed the check, and what it should have held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub field: Field,
    pub expected: &'static str,
}

const DATE: &str = "a date (YYYY-MM-DD)";
const TIME: &str = "a time of day (HH:MM:SS)";
const ADDRESS: &str = "an IP address";
const NUMBER: &str = "a number from 0 to 65535";

/// `field "value" is not ...`: the value escaped and cut short.
pub(crate) fn describe(field: Field, value: &[u8], what: &str) -> String {
    const SHOWN: usize = 40;
    let more = if value.len() > SHOWN { "..." } else { "" };
    format!("{field} \"{}{more}\" {what}", value[..value.len().min(SHOWN)].escape_ascii())
}

impl Invalid {
    pub fn describe(self, value: &[u8]) -> String {
        describe(self.field, value, &format!("is not {}", self.expected))
    }
}

/// Checks lines one after the other, remembering the last valid date and
/// time seen: a log has one date for thousands of lines, and busy seconds
/// have many lines.
pub(crate) struct Checker {
    date: [u8; 10],
    days: i64,
    time: [u8; 8],
    seconds: i64,
    /// The last `s-ip` found to look like an address (see [`words`]).
    server_ip: Option<(u64, u64, usize)>,
}

impl Default for Checker {
    /// Remembering spaces, which no column holds: nothing matches until a
    /// valid date and time have been seen.
    fn default() -> Self {
        Checker { date: [b' '; 10], days: 0, time: [b' '; 8], seconds: 0, server_ip: None }
    }
}

impl Checker {
    /// Checks the typed columns of a line split into `spans` under a table
    /// whose typed columns are `columns`. A date or time column must hold one
    /// (`-` included: a line must not claim a time it lacks); the other
    /// columns may log `-`.
    #[inline]
    pub fn check(&mut self, line: &[u8], spans: &[(u32, u32)], columns: &Columns) -> Result<Checked, Invalid> {
        // Spans lie within the line: only an absent column is `None`.
        let column = |at: u32| spans.get(at as usize).map(|&(start, end)| &line[start as usize..end as usize]);
        let (date, time) = (column(columns.date), column(columns.time));
        let days = match date {
            Some(d) if <&[u8; 10]>::try_from(d).is_ok_and(|d| *d == self.date) => Some(self.days),
            Some(d) => Some(self.remember_date(d).ok_or(Invalid { field: Field::Date, expected: DATE })?),
            None => None,
        };
        let seconds = match time.map(<[u8; 8]>::try_from) {
            Some(Ok(hms)) if hms == self.time => Some(self.seconds),
            Some(Ok(hms)) => {
                let seconds = time_of_day(hms).ok_or(Invalid { field: Field::Time, expected: TIME })?;
                (self.time, self.seconds) = (hms, seconds);
                Some(seconds)
            }
            // With a fraction of a second (or not a time): not worth remembering.
            Some(Err(_)) => Some(time.and_then(parse_time).ok_or(Invalid { field: Field::Time, expected: TIME })?),
            None => None,
        };
        let mut unreadable = None;
        // A server logs one `s-ip`: the one checked last needs no check again.
        let server_ip = column(columns.server_ip);
        let server_words = server_ip.and_then(words);
        let seen = server_words.is_some() && server_words == self.server_ip;
        if !seen && address(server_ip, Field::ServerIp, &mut unreadable)? {
            self.server_ip = server_words;
        }
        address(column(columns.client_ip), Field::ClientIp, &mut unreadable)?;
        number(column(columns.status), Field::Status)?;
        number(column(columns.substatus), Field::SubStatus)?;
        number(column(columns.server_port), Field::ServerPort)?;
        let time = match (days, seconds) {
            (Some(days), Some(seconds)) => Some(days * 86_400 + seconds),
            // A table with one of the two gives no instant.
            _ => None,
        };
        Ok(Checked { time, unreadable })
    }

    #[cold]
    fn remember_date(&mut self, date: &[u8]) -> Option<i64> {
        let days = parse_date(date)?;
        if let Ok(text) = date.try_into() {
            (self.date, self.days) = (text, days);
        }
        Some(days)
    }
}

/// An address column: `-`, absent, or what [`looks_like_address`] (true),
/// or printable text read as unknown (false, `unreadable` set).
#[inline]
fn address(raw: Option<&[u8]>, field: Field, unreadable: &mut Option<Field>) -> Result<bool, Invalid> {
    match raw {
        None | Some(b"-") => Ok(false),
        Some(raw) if looks_like_address(raw) => Ok(true),
        Some(raw) if raw.iter().all(u8::is_ascii_graphic) => {
            // The last one checked (c-ip) wins.
            *unreadable = Some(field);
            Ok(false)
        }
        Some(_) => Err(Invalid { field, expected: ADDRESS }),
    }
}

/// A numeric column: `-`, absent, or a number up to 65535.
#[inline]
fn number(raw: Option<&[u8]>, field: Field) -> Result<(), Invalid> {
    match raw {
        None | Some(b"-") => Ok(()),
        Some(raw) if is_u16(raw) => Ok(()),
        Some(_) => Err(Invalid { field, expected: NUMBER }),
    }
}

/// `raw` of 8 to 16 bytes as its first and last eight, and its length.
#[inline]
fn words(raw: &[u8]) -> Option<(u64, u64, usize)> {
    let (first, last) = (raw.first_chunk::<8>()?, raw.last_chunk::<8>()?);
    (raw.len() <= 16).then(|| (u64::from_le_bytes(*first), u64::from_le_bytes(*last), raw.len()))
}

/// Made of what addresses are written with (digits, hex letters, `.`, `:`,
/// `%` and a numeric zone id, brackets): a check of the bytes only, as cheap
/// as a line needs; the address itself is parsed where it is read.
#[inline]
fn looks_like_address(raw: &[u8]) -> bool {
    // IPv4 of 8 bytes or more, in two overlapping words: the common case.
    if let Some((first, last, _)) = words(raw) {
        if digits_and_dots(first) && digits_and_dots(last) {
            return true;
        }
    }
    const fn table() -> [u8; 256] {
        let mut t = [0; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            t[b] = (c.is_ascii_hexdigit() || matches!(c, b'.' | b':' | b'%' | b'[' | b']')) as u8;
            b += 1;
        }
        t
    }
    static ADDRESS_BYTES: [u8; 256] = table();
    // No early exit: the loop stays branch-free for a dozen bytes.
    raw.len() <= 64 && raw.iter().fold(1, |ok, &b| ok & ADDRESS_BYTES[usize::from(b)]) == 1
}

/// Every byte of `w` is an ASCII digit or `.`.
#[inline]
fn digits_and_dots(w: u64) -> bool {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const EACH: u64 = 0x0101_0101_0101_0101;
    // The high bit of each byte over `limit` once `base` is taken away (exact:
    // no carry crosses bytes).
    let over = |base: u64, limit: u64| {
        let x = w ^ (EACH * base);
        (((x & LOW7) + EACH * (0x7f - limit)) | x) & !LOW7
    };
    over(u64::from(b'0'), 9) & over(u64::from(b'.'), 0) == 0
}

/// Plain digits that make a number up to 65535.
#[inline]
fn is_u16(v: &[u8]) -> bool {
    match v.len() {
        1..=4 => v.iter().all(u8::is_ascii_digit),
        5 => v.iter().all(u8::is_ascii_digit) && v <= &b"65535"[..],
        _ => false,
    }
}

/// Plain decimal digits, as IIS logs its numbers (no sign, no spaces).
#[inline]
pub(crate) fn parse_u16(v: &[u8]) -> Option<u16> {
    if v.is_empty() || v.len() > 5 {
        return None;
    }
    // One pass, no separate digit check: three numbers on every line.
    let mut n = 0u32;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u32::from(d);
    }
    u16::try_from(n).ok()
}

/// Dotted-quad IPv4 as logged (`10.0.0.5`); `None` for anything else,
/// including what the standard parser also rejects (leading zeros).
#[inline]
fn parse_ipv4_plain(v: &[u8]) -> Option<Ipv4Addr> {
    if !(7..=15).contains(&v.len()) {
        return None;
    }
    // One pass, one test per digit: two addresses on every line.
    let mut octets = [0u8; 4];
    let (mut k, mut n, mut digits) = (0, 0u32, 0u32);
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d <= 9 {
            n = n.wrapping_mul(10).wrapping_add(u32::from(d));
            digits += 1;
            continue;
        }
        if b != b'.' || k == 3 || !octet(n, digits) {
            return None;
        }
        octets[k] = n as u8;
        (k, n, digits) = (k + 1, 0, 0);
    }
    if k != 3 || !octet(n, digits) {
        return None;
    }
    octets[3] = n as u8;
    Some(Ipv4Addr::from(octets))
}

/// `n` read from `digits` digits is an octet: 0 to 255, no leading zero.
#[inline]
fn octet(n: u32, digits: u32) -> bool {
    match digits {
        1 => true,
        2 => n >= 10,
        3 => (100..=255).contains(&n),
        _ => false,
    }
}

/// An address as logged (`c-ip`, `s-ip`, an `X-Forwarded-For` element):
/// IPv4, or IPv6 with its zone id (`fe80::1%3`) and brackets dropped.
pub fn parse_ip(v: &[u8]) -> Option<IpAddr> {
    if let Some(ip) = parse_ipv4_plain(v) {
        return Some(IpAddr::V4(ip));
    }
    let s = std::str::from_utf8(v).ok()?.trim();
    let s = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(s);
    let s = s.split_once('%').map_or(s, |(a, _)| a);
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_digits_that_fit() {
        assert_eq!(parse_u16(b"200"), Some(200));
        assert_eq!(parse_u16(b"65535"), Some(65535));
        for bad in [&b""[..], b"65536", b"+200", b" 200", b"2x0", b"\xff", b"123456"] {
            assert_eq!(parse_u16(bad), None, "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn small_numbers_are_checked_as_they_are_parsed() {
        for text in [&b"0"[..], b"200", b"65535", b"65536", b"99999", b"1234", b"-1", b"2x0", b"", b"123456", b"00200"]
        {
            assert_eq!(is_u16(text), parse_u16(text).is_some(), "{}", text.escape_ascii());
        }
    }

    #[test]
    fn digits_and_dots_are_told_from_everything_else() {
        for b in 0..=255u8 {
            let mut w = *b"10.0.0.5";
            w[3] = b;
            assert_eq!(digits_and_dots(u64::from_le_bytes(w)), b.is_ascii_digit() || b == b'.', "{b:#x}");
        }
    }

    #[test]
    fn addresses_as_iis_logs_them() {
        for (text, ip) in [
            (&b"10.0.0.5"[..], "10.0.0.5"),
            (b"fe80::1%3", "fe80::1"),
            (b"[2001:db8::1]", "2001:db8::1"),
            (b"::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ] {
            assert_eq!(parse_ip(text), Some(ip.parse().unwrap()));
            assert!(looks_like_address(text));
        }
        for bad in [&b"10.0.0.256"[..], b"010.0.0.1", b"10.0.0", b"10.0.0.1.", b"host", b"10.0.\xff.1", b""] {
            assert_eq!(parse_ip(bad), None, "{}", bad.escape_ascii());
        }
        for unlike in [&b"xxx"[..], b"10.0.\xff.1", b"10.0.0.1\t", b"host", b"10.0.0.1/24", b"fe80::1%eth0"] {
            assert!(!looks_like_address(unlike), "{}", unlike.escape_ascii());
        }
    }

    #[test]
    fn ipv4_agrees_with_the_standard_parser() {
        let alphabet = b"0123456789.0125.9.";
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut valid = 0;
        for _ in 0..300_000 {
            let len = 5 + (next() % 13) as usize;
            let text: Vec<u8> = (0..len).map(|_| alphabet[next() as usize % alphabet.len()]).collect();
            let std = std::str::from_utf8(&text).unwrap().parse::<Ipv4Addr>().ok();
            assert_eq!(parse_ipv4_plain(&text), std, "{}", text.escape_ascii());
            valid += u32::from(std.is_some());
        }
        assert!(valid > 300, "{valid} valid addresses drawn");
        assert_eq!(parse_ipv4_plain(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        assert_eq!(parse_ipv4_plain(b"0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
    }
}
