//! The `#Fields` table and the well-known field names resolved against it.

use std::fmt;

use crate::table::{FieldTable, KnownField};

/// A well-known W3C field, resolved to a column index once per `#Fields` directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// `date`
    Date,
    /// `time`
    Time,
    /// `s-ip`
    ServerIp,
    /// `cs-method`
    Method,
    /// `cs-uri-stem`
    UriStem,
    /// `cs-uri-query`
    UriQuery,
    /// `s-port`
    ServerPort,
    /// `cs-username`
    Username,
    /// `c-ip`
    ClientIp,
    /// `cs-version`
    Version,
    /// `cs(User-Agent)`
    UserAgent,
    /// `cs(Referer)`
    Referer,
    /// `cs-host`
    Host,
    /// `sc-status`
    Status,
    /// `sc-substatus`
    SubStatus,
    /// `sc-win32-status`
    Win32Status,
    /// `sc-bytes`
    BytesSent,
    /// `cs-bytes`
    BytesReceived,
    /// `time-taken`
    TimeTaken,
    /// `s-computername`
    ComputerName,
    /// `s-sitename`
    SiteName,
    /// `X-Forwarded-For` (IIS custom field) or `cs(X-Forwarded-For)` (Advanced Logging).
    ForwardedFor,
}

impl Field {
    /// Number of variants.
    pub const COUNT: usize = 22;

    /// Every variant, in declaration order (`ALL[f as usize] == f`).
    pub const ALL: [Field; Field::COUNT] = [
        Field::Date,
        Field::Time,
        Field::ServerIp,
        Field::Method,
        Field::UriStem,
        Field::UriQuery,
        Field::ServerPort,
        Field::Username,
        Field::ClientIp,
        Field::Version,
        Field::UserAgent,
        Field::Referer,
        Field::Host,
        Field::Status,
        Field::SubStatus,
        Field::Win32Status,
        Field::BytesSent,
        Field::BytesReceived,
        Field::TimeTaken,
        Field::ComputerName,
        Field::SiteName,
        Field::ForwardedFor,
    ];

    /// The canonical `#Fields` name as IIS writes it.
    pub fn name(self) -> &'static str {
        self.aliases()[0]
    }

    /// All names this field is recognised under (compared case-insensitively).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Date => &["date"],
            Field::Time => &["time"],
            Field::ServerIp => &["s-ip"],
            Field::Method => &["cs-method"],
            Field::UriStem => &["cs-uri-stem"],
            Field::UriQuery => &["cs-uri-query"],
            Field::ServerPort => &["s-port"],
            Field::Username => &["cs-username"],
            Field::ClientIp => &["c-ip"],
            Field::Version => &["cs-version"],
            Field::UserAgent => &["cs(User-Agent)"],
            Field::Referer => &["cs(Referer)"],
            Field::Host => &["cs-host"],
            Field::Status => &["sc-status"],
            Field::SubStatus => &["sc-substatus"],
            Field::Win32Status => &["sc-win32-status"],
            Field::BytesSent => &["sc-bytes"],
            Field::BytesReceived => &["cs-bytes"],
            Field::TimeTaken => &["time-taken"],
            Field::ComputerName => &["s-computername"],
            Field::SiteName => &["s-sitename"],
            Field::ForwardedFor => &["X-Forwarded-For", "cs(X-Forwarded-For)"],
        }
    }

    /// The well-known field a `#Fields` name denotes, case-insensitively.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.aliases().iter().any(|a| a.eq_ignore_ascii_case(name)))
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// IIS's default W3C columns (the `logExtFileFlags` defaults since IIS 8.0),
/// which Exchange leaves as they are.
pub const IIS_DEFAULT_FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip \
    cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken";

/// The `#Fields` table in force for IIS's W3C fields. Cloning is a
/// reference-count increment. [`FieldTable::parse`] reads the text after
/// `#Fields:`: names separated by spaces; runs of whitespace and a trailing
/// CR are tolerated in the directive itself.
pub type Fields = FieldTable<Field, { Field::COUNT }>;

impl KnownField for Field {
    fn from_name(name: &str) -> Option<Field> {
        Field::from_name(name)
    }

    #[inline]
    fn slot(self) -> usize {
        self as usize
    }

    fn column_names(directive_value: &[u8]) -> Vec<String> {
        directive_value
            .split(|b| b.is_ascii_whitespace())
            .filter(|t| !t.is_empty())
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_declaration_order() {
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(Field::from_name(f.name()), Some(*f));
        }
    }

    #[test]
    fn parse_resolves_known_fields_case_insensitively() {
        let f = Fields::parse(b" date time C-IP cs(user-agent) X-Forwarded-For\r");
        assert_eq!(f.len(), 5);
        assert_eq!(f.names().collect::<Vec<_>>(), ["date", "time", "C-IP", "cs(user-agent)", "X-Forwarded-For"]);
        assert_eq!(f.index(Field::ClientIp), Some(2));
        assert_eq!(f.index(Field::UserAgent), Some(3));
        assert_eq!(f.index(Field::ForwardedFor), Some(4));
        assert_eq!(f.index(Field::Username), None);
        assert_eq!(f.index_of("c-ip"), Some(2));
        assert_eq!(f.index_of("x-forwarded-for"), Some(4));
        assert_eq!(f.index_of("cs-host"), None);
    }

    #[test]
    fn advanced_logging_forwarded_for_name() {
        let f = Fields::parse(b"date cs(X-Forwarded-For)");
        assert_eq!(f.index(Field::ForwardedFor), Some(1));
    }

    #[test]
    fn repeated_names_and_aliases_are_found_and_the_first_is_read() {
        let f = Fields::parse(b"date c-ip time C-IP X-Forwarded-For note cs(x-forwarded-for) NOTE");
        assert_eq!(f.repeated().collect::<Vec<_>>(), [(1, 3), (4, 6), (5, 7)]);
        assert_eq!(f.index(Field::ClientIp), Some(1));
        assert_eq!(f.index(Field::ForwardedFor), Some(4));
        assert_eq!(f.index_of("note"), Some(5));
        assert_eq!(Fields::parse(IIS_DEFAULT_FIELDS.as_bytes()).repeated().count(), 0);
    }

    #[test]
    fn empty_directive() {
        let f = Fields::parse(b"");
        assert!(f.is_empty());
        assert_eq!(f.index(Field::Date), None);
    }
}
