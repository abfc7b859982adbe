//! The `#Fields` table and the well-known field names resolved against it.

use std::fmt;
use std::sync::Arc;

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

#[derive(Debug, PartialEq, Eq)]
struct Inner {
    names: Vec<String>,
    known: [Option<u32>; Field::COUNT],
    /// `(first, again)`: column `again` repeats the name, or the well-known
    /// field, of column `first`.
    repeated: Vec<(u32, u32)>,
}

/// The `#Fields` table in force. Cloning is a reference-count increment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields(Arc<Inner>);

impl Fields {
    /// Parses the text after `#Fields:`. Names are separated by spaces; runs of
    /// whitespace and a trailing CR are tolerated in the directive itself.
    pub fn parse(directive_value: &[u8]) -> Fields {
        let names: Vec<String> = directive_value
            .split(|b| b.is_ascii_whitespace())
            .filter(|t| !t.is_empty())
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .collect();
        let mut known = [None; Field::COUNT];
        let mut repeated = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let field = Field::from_name(name);
            // The first column of a name wins if a table repeats it: it is
            // the one `index_of` finds too.
            let first = match field {
                Some(f) => *known[f as usize].get_or_insert(i as u32),
                None => names.iter().position(|n| n.eq_ignore_ascii_case(name)).unwrap_or(i) as u32,
            };
            if first != i as u32 {
                repeated.push((first, i as u32));
            }
        }
        Fields(Arc::new(Inner { names, known, repeated }))
    }

    /// Columns that repeat an earlier column's name (case-insensitively) or
    /// well-known field (`X-Forwarded-For` and `cs(X-Forwarded-For)`), as
    /// `(first, again)`: the first is the one read.
    pub fn repeated(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.0.repeated.iter().map(|&(first, again)| (first as usize, again as usize))
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.0.names.len()
    }

    /// True when the directive named no column.
    pub fn is_empty(&self) -> bool {
        self.0.names.is_empty()
    }

    /// Column of a field name, compared case-insensitively (ASCII).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.0.names.iter().position(|n| n.eq_ignore_ascii_case(name))
    }

    /// Column of a well-known field, if logged.
    #[inline]
    pub fn index(&self, field: Field) -> Option<usize> {
        self.0.known[field as usize].map(|i| i as usize)
    }

    /// Column names in order, as written in the directive.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.names.iter().map(String::as_str)
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
