//! UTC date/time conversions for W3C `date`/`time` fields and RFC 3339 text.
//!
//! W3C extended logs are always UTC, so there is no time-zone database here.

use std::fmt::Write as _;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, &c| n * 10 + u32::from(c - b'0')))
}

/// `YYYY-MM-DD` -> days since the epoch.
pub(crate) fn parse_date(d: &[u8]) -> Option<i64> {
    if d.len() != 10 || d[4] != b'-' || d[7] != b'-' {
        return None;
    }
    let y = i64::from(digits(&d[0..4])?);
    let m = digits(&d[5..7])?;
    let day = digits(&d[8..10])?;
    if !(1..=12).contains(&m) || day == 0 || day > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, day))
}

/// `HH:MM:SS` with an optional `.fraction` -> seconds of the day.
pub(crate) fn parse_time(t: &[u8]) -> Option<i64> {
    let (hms, rest) = t.split_first_chunk::<8>()?;
    if !rest.is_empty() && (rest[0] != b'.' || rest.len() < 2 || !rest[1..].iter().all(u8::is_ascii_digit)) {
        return None;
    }
    time_of_day(*hms)
}

/// `HH:MM:SS` -> seconds of the day.
#[inline]
pub(crate) fn time_of_day(hms: [u8; 8]) -> Option<i64> {
    // All eight bytes at once (a log has a new second every few lines): each
    // minus what it should be, `0` for the digits and `:` for the colons ...
    let x = u64::from_le_bytes(hms) ^ 0x3030_3a30_303a_3030;
    // ... leaves digits at most 9 and colons 0: adding 0x76 (or 0x7f) sets
    // a byte's high bit exactly when it is over that (no carry crosses bytes).
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const LIMIT: u64 = 0x7676_7f76_767f_7676;
    if (((x & LOW7) + LIMIT) | x) & !LOW7 != 0 {
        return None;
    }
    let [h1, h0, _, m1, m0, _, s1, s0] = x.to_le_bytes().map(u32::from);
    let (h, m, s) = (h1 * 10 + h0, m1 * 10 + m0, s1 * 10 + s0);
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    Some(i64::from(h * 3600 + m * 60 + s))
}

/// W3C `date` (`2022-01-01`) and `time` (`00:01:24`, a fraction allowed) to Unix seconds (UTC).
pub fn parse_date_time(date: &[u8], time: &[u8]) -> Option<i64> {
    Some(parse_date(date)? * 86_400 + parse_time(time)?)
}

/// [`parse_date_time`] remembering the last date and time seen: a log file
/// has one date for thousands of lines, and busy seconds have many lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct DateTimeCache {
    date: Last<10>,
    time: Last<8>,
}

impl DateTimeCache {
    /// The same result as [`parse_date_time`].
    pub fn parse(&mut self, date: &[u8], time: &[u8]) -> Option<i64> {
        Some(self.date.parse(date, parse_date)? * 86_400 + self.time.parse(time, parse_time)?)
    }
}

/// The last `N`-byte text parsed and what it parsed to.
#[derive(Clone, Copy, Debug)]
struct Last<const N: usize> {
    text: [u8; N],
    value: Option<i64>,
}

impl<const N: usize> Default for Last<N> {
    fn default() -> Self {
        Last { text: [0; N], value: None }
    }
}

impl<const N: usize> Last<N> {
    /// `parse(text)`, remembered when `text` is `N` bytes long (a time with a
    /// fraction of a second is not worth remembering).
    fn parse(&mut self, text: &[u8], parse: fn(&[u8]) -> Option<i64>) -> Option<i64> {
        match <[u8; N]>::try_from(text) {
            Ok(t) if t == self.text => self.value,
            Ok(t) => {
                self.text = t;
                self.value = parse(text);
                self.value
            }
            Err(_) => parse(text),
        }
    }
}

/// Appends `secs` as `2022-01-01T00:01:24Z`.
pub fn write_rfc3339(secs: i64, out: &mut String) {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60);
}

/// `secs` as `2022-01-01T00:01:24Z`.
pub fn format_rfc3339(secs: i64) -> String {
    let mut s = String::with_capacity(20);
    write_rfc3339(secs, &mut s);
    s
}

/// Parses `2022-01-01T00:01:24Z`, a `+hh:mm`/`-hh:mm` offset, a fraction of a second,
/// `2022-01-01 00:01:24` (UTC) and a bare date `2022-01-01` (midnight UTC).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let days = parse_date(b.get(..10)?)?;
    if b.len() == 10 {
        return Some(days * 86_400);
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let rest = &b[11..];
    // The time runs up to the zone designator, if any.
    let zone_at = rest.iter().position(|&c| matches!(c, b'Z' | b'z' | b'+' | b'-')).unwrap_or(rest.len());
    let tod = parse_time(&rest[..zone_at])?;
    let offset = match &rest[zone_at..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), hh @ ..] if hh.len() == 5 && hh[2] == b':' => {
            let (h, m) = (digits(&hh[0..2])?, digits(&hh[3..5])?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    Some(days * 86_400 + tod - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_agrees_with_parse() {
        let lines: [(&[u8], &[u8]); 8] = [
            (b"2022-01-01", b"00:01:24"),
            (b"2022-01-01", b"00:01:24"),
            (b"2022-01-01", b"00:01:25.5"),
            (b"2022-13-01", b"00:01:25"),
            (b"2022-13-01", b"00:01:26"),
            (b"2022-01-02", b"24:00:00"),
            (b"2022-01-02", b"23:59:59"),
            (b"\0\0\0\0\0\0\0\0\0\0", b"\0\0\0\0\0\0\0\0"),
        ];
        let mut cache = DateTimeCache::default();
        for (date, time) in lines {
            assert_eq!(cache.parse(date, time), parse_date_time(date, time), "{date:?} {time:?}");
        }
    }

    #[test]
    fn time_of_day_agrees_with_a_plain_reading() {
        let plain = |t: &[u8; 8]| -> Option<i64> {
            if t[2] != b':' || t[5] != b':' {
                return None;
            }
            let (h, m, s) = (digits(&t[0..2])?, digits(&t[3..5])?, digits(&t[6..8])?);
            (h <= 23 && m <= 59 && s <= 59).then(|| i64::from(h * 3600 + m * 60 + s))
        };
        let bytes =
            [b'0', b'1', b'2', b'5', b'9', b':', b'/', b';', 0x00, 0x7f, 0x80, 0xb0, 0xba, 0xff, b'x', 0x39 ^ 0x80];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut t = [0u8; 8];
            for (i, b) in t.iter_mut().enumerate() {
                // Mostly a well-formed shape, so that valid times are drawn too.
                let shape = if i == 2 || i == 5 { b':' } else { b"0123456789"[(x >> (i * 4)) as usize % 10] };
                *b = if (x >> (32 + i * 3)) & 7 == 0 { bytes[(x >> (i * 5)) as usize % bytes.len()] } else { shape };
            }
            assert_eq!(parse_time(&t), plain(&t), "{}", t.escape_ascii());
        }
    }

    #[test]
    fn w3c_date_time() {
        assert_eq!(parse_date_time(b"1970-01-01", b"00:00:00"), Some(0));
        assert_eq!(parse_date_time(b"2022-01-01", b"00:01:24"), Some(1_640_995_284));
        assert_eq!(parse_date_time(b"2022-01-01", b"00:01:24.123"), Some(1_640_995_284));
        assert_eq!(parse_date_time(b"2024-02-29", b"23:59:59"), Some(1_709_251_199));
        assert_eq!(parse_date_time(b"2023-02-29", b"00:00:00"), None);
        assert_eq!(parse_date_time(b"2022-13-01", b"00:00:00"), None);
        assert_eq!(parse_date_time(b"2022-01-01", b"24:00:00"), None);
        assert_eq!(parse_date_time(b"2022-01-01", b"00:01:2x"), None);
        assert_eq!(parse_date_time(b"2022-01-01", b"00:01:24."), None);
        assert_eq!(parse_date_time(b"2022-01-01", b"00:01:24.1a"), None);
        assert_eq!(parse_date_time(b"2022-01-01", b"23:59:59"), Some(1_641_081_599));
        for bad in
            [&b"00:01:2\xba"[..], b"0\xb0:01:24", b"00;01:24", b"00:01\x00:24", b"0/:01:24", b"25:61:61", b"00:60:00"]
        {
            assert_eq!(parse_date_time(b"2022-01-01", bad), None, "{}", bad.escape_ascii());
        }
        assert_eq!(parse_date_time(b"2022/01/01", b"00:01:24"), None);
        assert_eq!(parse_date_time(b"-", b"00:01:24"), None);
    }

    #[test]
    fn rfc3339_round_trip() {
        for secs in [0, 1_640_995_284, 951_782_400, -86_401, 4_102_444_800] {
            let s = format_rfc3339(secs);
            assert_eq!(parse_rfc3339(&s), Some(secs), "{s}");
        }
        assert_eq!(format_rfc3339(1_640_995_284), "2022-01-01T00:01:24Z");
    }

    #[test]
    fn rfc3339_forms() {
        let t = 1_640_995_284;
        assert_eq!(parse_rfc3339("2022-01-01T00:01:24Z"), Some(t));
        assert_eq!(parse_rfc3339("2022-01-01T00:01:24.5z"), Some(t));
        assert_eq!(parse_rfc3339("2022-01-01 00:01:24"), Some(t));
        assert_eq!(parse_rfc3339("2022-01-01T02:01:24+02:00"), Some(t));
        assert_eq!(parse_rfc3339("2021-12-31T22:31:24-01:30"), Some(t));
        assert_eq!(parse_rfc3339("2022-01-01"), Some(t - 84));
        assert_eq!(parse_rfc3339("2022-01-01T00:01"), None);
        assert_eq!(parse_rfc3339("2022-01-01T00:01:24+0200"), None);
        assert_eq!(parse_rfc3339("2022-01-01X00:01:24"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
