//! The dates of a device export. `ConvertTo-Json` writes `/Date(ms)/` in
//! Windows PowerShell 5.1 and ISO 8601 in PowerShell 7; `Export-Csv` writes
//! a date as the culture of the session formats it (`11/2/2026 8:15:00 AM`
//! in en-US, `02.11.2026 08:15:00` in de-DE, `2026/11/02 8:15:00` in ja-JP).
//! Day and month in `a/b/yyyy` are told apart per file (see [`SlashOrder`]).
//! A time without a zone is read as UTC: Exchange keeps these times in UTC
//! (an assumption the README states).

use w3c::time::parse_rfc3339;

/// A date cell before the order of `a/b/yyyy` dates is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawDate {
    /// Empty or `null`: never.
    Never,
    At(i64),
    /// `a/b/yyyy`: month/day or day/month, and the seconds of the day.
    Slashed {
        a: u32,
        b: u32,
        year: i64,
        secs: i64,
    },
}

/// How `a/b/yyyy` dates are read in one file: month first as en-US and the
/// invariant culture write them, unless some date has a first number above
/// 12 (day first, as en-GB and fr-FR write them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SlashOrder {
    #[default]
    MonthFirst,
    DayFirst,
}

/// What the slash dates of a file say about their order.
#[derive(Clone, Copy, Debug, Default)]
pub struct SlashEvidence {
    pub seen: bool,
    /// Some date's first number is above 12: it is the day.
    pub day_first: bool,
    /// Some date's second number is above 12: the first is the month.
    pub month_first: bool,
}

impl SlashEvidence {
    pub fn see(&mut self, date: RawDate) {
        if let RawDate::Slashed { a, b, .. } = date {
            self.seen = true;
            self.day_first |= a > 12;
            self.month_first |= b > 12;
        }
    }

    /// The order to read with; `None` when the file holds both kinds, which
    /// no single culture writes.
    pub fn order(self) -> Option<SlashOrder> {
        match (self.day_first, self.month_first) {
            (true, true) => None,
            (true, false) => Some(SlashOrder::DayFirst),
            _ => Some(SlashOrder::MonthFirst),
        }
    }
}

impl RawDate {
    /// Unix seconds (`None`: never), or `Err` when the day is not a day.
    pub fn resolve(self, order: SlashOrder) -> Result<Option<i64>, ()> {
        match self {
            RawDate::Never => Ok(None),
            RawDate::At(t) => Ok(Some(t)),
            RawDate::Slashed { a, b, year, secs } => {
                let (month, day) = if order == SlashOrder::MonthFirst { (a, b) } else { (b, a) };
                ymd(year, month, day).map(|midnight| Some(midnight + secs)).ok_or(())
            }
        }
    }
}

/// Read one date cell; `Err` when it is no date form casguard knows.
pub fn parse(text: &str) -> Result<RawDate, ()> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("null") {
        return Ok(RawDate::Never);
    }
    if let Some(inner) = t.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        return epoch_millis(inner).map(RawDate::At);
    }
    let b = t.as_bytes();
    if b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return parse_rfc3339(t).map(RawDate::At).ok_or(());
    }
    culture_date(t)
}

/// `1700000000000`, `-1000` or `1700000000000+0100`: milliseconds since the
/// epoch in UTC; the offset only says how the writer's zone would show it.
fn epoch_millis(inner: &str) -> Result<i64, ()> {
    let end = inner.char_indices().skip(1).find(|(_, c)| matches!(c, '+' | '-')).map_or(inner.len(), |(i, _)| i);
    let (millis, offset) = inner.split_at(end);
    if !offset.is_empty() && (offset.len() != 5 || !offset[1..].bytes().all(|c| c.is_ascii_digit())) {
        return Err(());
    }
    millis.parse::<i64>().map(|ms| ms.div_euclid(1000)).map_err(|_| ())
}

/// `M/d/yyyy h:mm:ss AM`, `dd.MM.yyyy HH:mm:ss`, `d-M-yyyy H:mm`, `yyyy/MM/dd H:mm:ss`.
fn culture_date(t: &str) -> Result<RawDate, ()> {
    let (date, time) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    let sep = date.chars().find(|c| matches!(c, '/' | '.' | '-')).ok_or(())?;
    let parts: Vec<&str> = date.trim_end_matches('.').split(sep).collect();
    let [p0, p1, p2] = parts[..] else { return Err(()) };
    let num = |s: &str| -> Result<u32, ()> {
        if s.is_empty() || s.len() > 4 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(());
        }
        s.parse().map_err(|_| ())
    };
    let secs = time_of_day(time.trim())?;
    if p0.len() == 4 {
        let midnight = ymd(i64::from(num(p0)?), num(p1)?, num(p2)?).ok_or(())?;
        return Ok(RawDate::At(midnight + secs));
    }
    if p2.len() != 4 {
        return Err(());
    }
    let (a, b, year) = (num(p0)?, num(p1)?, i64::from(num(p2)?));
    match sep {
        // Cultures that write `d.M.yyyy` or `d-M-yyyy` put the day first.
        '.' | '-' => Ok(RawDate::At(ymd(year, b, a).ok_or(())? + secs)),
        _ => Ok(RawDate::Slashed { a, b, year, secs }),
    }
}

/// `H:mm`, `H:mm:ss` or `H:mm:ss.fff`, then `AM`/`PM` or none; empty is midnight.
fn time_of_day(t: &str) -> Result<i64, ()> {
    if t.is_empty() {
        return Ok(0);
    }
    let (clock, meridiem) = match t.rsplit_once(char::is_whitespace) {
        Some((clock, m)) => (clock.trim(), Some(m)),
        None => (t, None),
    };
    let pm = match meridiem.map(|m| m.trim_matches('.').to_ascii_uppercase()) {
        None => None,
        Some(m) if m == "AM" || m == "A.M" => Some(false),
        Some(m) if m == "PM" || m == "P.M" => Some(true),
        Some(_) => return Err(()),
    };
    let clock = clock.split_once('.').map_or(clock, |(whole, _)| whole);
    let fields: Vec<&str> = clock.split(':').collect();
    let value = |s: &str, max: u32| -> Result<i64, ()> {
        match s.parse::<u32>() {
            Ok(n) if n <= max && (1..=2).contains(&s.len()) => Ok(i64::from(n)),
            _ => Err(()),
        }
    };
    let (h, m, s) = match fields[..] {
        [h, m] => (value(h, 23)?, value(m, 59)?, 0),
        [h, m, s] => (value(h, 23)?, value(m, 59)?, value(s, 59)?),
        _ => return Err(()),
    };
    let h = match pm {
        None => h,
        Some(_) if !(1..=12).contains(&h) => return Err(()),
        Some(false) => h % 12,
        Some(true) => h % 12 + 12,
    };
    Ok(h * 3600 + m * 60 + s)
}

/// Midnight UTC of a calendar day, if it is one.
fn ymd(year: i64, month: u32, day: u32) -> Option<i64> {
    if !(1..=9999).contains(&year) {
        return None;
    }
    parse_rfc3339(&format!("{year:04}-{month:02}-{day:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-02T08:15:30Z
    const T: i64 = 1_793_607_330;

    fn at(text: &str) -> Option<i64> {
        match parse(text) {
            Ok(RawDate::At(t)) => Some(t),
            Ok(RawDate::Slashed { .. }) => parse(text).unwrap().resolve(SlashOrder::MonthFirst).unwrap(),
            _ => None,
        }
    }

    #[test]
    fn powershell_json_forms() {
        assert_eq!(at("/Date(1793607330000)/"), Some(T));
        assert_eq!(at("/Date(1793607330999+0100)/"), Some(T));
        assert_eq!(at("/Date(-1000)/"), Some(-1));
        assert_eq!(at("2026-11-02T08:15:30"), Some(T));
        assert_eq!(at("2026-11-02T08:15:30.1234567Z"), Some(T));
        assert_eq!(at("2026-11-02T09:15:30.1234567+01:00"), Some(T));
        assert_eq!(parse(""), Ok(RawDate::Never));
        assert_eq!(parse("null"), Ok(RawDate::Never));
        assert_eq!(parse("/Date(abc)/"), Err(()));
        assert_eq!(parse("/Date(1+01)/"), Err(()));
    }

    #[test]
    fn culture_forms() {
        assert_eq!(at("11/2/2026 8:15:30 AM"), Some(T));
        assert_eq!(at("11/2/2026 8:15:30 PM"), Some(T + 12 * 3600));
        assert_eq!(at("11/2/2026 12:15:30 AM"), Some(T - 8 * 3600));
        assert_eq!(at("11/02/2026 08:15:30"), Some(T));
        assert_eq!(at("02.11.2026 08:15:30"), Some(T));
        assert_eq!(at("2-11-2026 8:15:30"), Some(T));
        assert_eq!(at("2026/11/02 8:15:30"), Some(T));
        assert_eq!(at("02.11.2026 08:15"), Some(T - 30));
        assert_eq!(at("11/2/2026"), Some(T - 8 * 3600 - 15 * 60 - 30));
        for bad in ["13/13/2026 08:00:00", "11/2/26 8:15", "31.02.2026 08:00:00", "11/2/2026 25:00:00", "yesterday"] {
            let resolved = parse(bad).and_then(|d| d.resolve(SlashOrder::MonthFirst));
            assert!(!matches!(resolved, Ok(Some(_))), "{bad}: {resolved:?}");
        }
        assert_eq!(parse("11/2/2026 13:15:30 PM"), Err(()));
    }

    #[test]
    fn slash_order_is_decided_by_the_file() {
        let mut evidence = SlashEvidence::default();
        for text in ["02/11/2026 08:15:30", "25/12/2026 10:00:00"] {
            evidence.see(parse(text).unwrap());
        }
        assert_eq!(evidence.order(), Some(SlashOrder::DayFirst));
        assert_eq!(parse("02/11/2026 08:15:30").unwrap().resolve(SlashOrder::DayFirst), Ok(Some(T)));
        evidence.see(parse("12/25/2026 10:00:00").unwrap());
        assert_eq!(evidence.order(), None, "a file cannot be both");
        assert_eq!(SlashEvidence::default().order(), Some(SlashOrder::MonthFirst));
    }
}
