//! The `#Fields` table and the well-known field names resolved against it.

use std::fmt;

use crate::table::FieldTable;

crate::known_fields! {
    /// A well-known W3C field, resolved to a column index once per `#Fields` directive.
    pub enum Field split column_names {
        /// `date`
        Date = "date",
        /// `time`
        Time = "time",
        /// `s-ip`
        ServerIp = "s-ip",
        /// `cs-method`
        Method = "cs-method",
        /// `cs-uri-stem`
        UriStem = "cs-uri-stem",
        /// `cs-uri-query`
        UriQuery = "cs-uri-query",
        /// `s-port`
        ServerPort = "s-port",
        /// `cs-username`
        Username = "cs-username",
        /// `c-ip`
        ClientIp = "c-ip",
        /// `cs-version`
        Version = "cs-version",
        /// `cs(User-Agent)`
        UserAgent = "cs(User-Agent)",
        /// `cs(Referer)`
        Referer = "cs(Referer)",
        /// `cs(Cookie)`: not logged by default; an admin may tick it.
        Cookie = "cs(Cookie)",
        /// `cs-host`
        Host = "cs-host",
        /// `sc-status`
        Status = "sc-status",
        /// `sc-substatus`
        SubStatus = "sc-substatus",
        /// `sc-win32-status`
        Win32Status = "sc-win32-status",
        /// `sc-bytes`
        BytesSent = "sc-bytes",
        /// `cs-bytes`
        BytesReceived = "cs-bytes",
        /// `time-taken`
        TimeTaken = "time-taken",
        /// `s-computername`
        ComputerName = "s-computername",
        /// `s-sitename`
        SiteName = "s-sitename",
        /// `X-Forwarded-For` (IIS custom field) or `cs(X-Forwarded-For)` (Advanced Logging).
        ForwardedFor = "X-Forwarded-For" | "cs(X-Forwarded-For)",
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

/// Names separated by spaces; runs of whitespace and a trailing CR are
/// tolerated in the directive itself.
fn column_names(directive_value: &[u8]) -> Vec<String> {
    directive_value
        .split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect()
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
