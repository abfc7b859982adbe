//! The `#Fields` table in force: column names as the log states them, and
//! where the columns a reader needs sit. The list differs between Exchange
//! versions, so nothing here assumes a position.

use std::cell::RefCell;

use w3c::{FieldTable, KnownField};

/// Columns of HttpProxy logs that readers look up by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// End of the request, ISO 8601 UTC with milliseconds.
    DateTime,
    /// The request's GUID; IIS logs it as `cafeReqId=` in cs-uri-query.
    RequestId,
    /// The `ClientRequestId` column.
    ClientRequestId,
    /// The protocol folder (`Eas`, `Ews`, `Owa`, ...).
    Protocol,
    /// The `UrlHost` column.
    UrlHost,
    /// The `UrlStem` column.
    UrlStem,
    /// The query string with its leading `?`.
    UrlQuery,
    /// The `ProtocolAction` column.
    ProtocolAction,
    /// `Basic`, `NTLM`, `Negotiate`, `Kerberos`, `OAuth`, `Bearer`, `FBA`, ...
    AuthenticationType,
    /// The `IsAuthenticated` column.
    IsAuthenticated,
    /// The `AuthenticatedUser` column.
    AuthenticatedUser,
    /// A typed routing hint: `Smtp~user@domain`, `Sid~S-1-5-...`, ...
    AnchorMailbox,
    /// The `UserAgent` column.
    UserAgent,
    /// The `ClientIpAddress` column.
    ClientIpAddress,
    /// The `ServerHostName` column.
    ServerHostName,
    /// The `HttpStatus` column.
    HttpStatus,
    /// The `BackEndStatus` column.
    BackEndStatus,
    /// The `ErrorCode` column.
    ErrorCode,
    /// The `Method` column.
    Method,
}

impl Field {
    /// Number of well-known fields.
    pub const COUNT: usize = 19;

    /// Every well-known field, in declaration order.
    pub const ALL: [Field; Field::COUNT] = [
        Field::DateTime,
        Field::RequestId,
        Field::ClientRequestId,
        Field::Protocol,
        Field::UrlHost,
        Field::UrlStem,
        Field::UrlQuery,
        Field::ProtocolAction,
        Field::AuthenticationType,
        Field::IsAuthenticated,
        Field::AuthenticatedUser,
        Field::AnchorMailbox,
        Field::UserAgent,
        Field::ClientIpAddress,
        Field::ServerHostName,
        Field::HttpStatus,
        Field::BackEndStatus,
        Field::ErrorCode,
        Field::Method,
    ];

    /// The column name as Exchange writes it in `#Fields`.
    pub fn name(self) -> &'static str {
        match self {
            Field::DateTime => "DateTime",
            Field::RequestId => "RequestId",
            Field::ClientRequestId => "ClientRequestId",
            Field::Protocol => "Protocol",
            Field::UrlHost => "UrlHost",
            Field::UrlStem => "UrlStem",
            Field::UrlQuery => "UrlQuery",
            Field::ProtocolAction => "ProtocolAction",
            Field::AuthenticationType => "AuthenticationType",
            Field::IsAuthenticated => "IsAuthenticated",
            Field::AuthenticatedUser => "AuthenticatedUser",
            Field::AnchorMailbox => "AnchorMailbox",
            Field::UserAgent => "UserAgent",
            Field::ClientIpAddress => "ClientIpAddress",
            Field::ServerHostName => "ServerHostName",
            Field::HttpStatus => "HttpStatus",
            Field::BackEndStatus => "BackEndStatus",
            Field::ErrorCode => "ErrorCode",
            Field::Method => "Method",
        }
    }

    /// The field a column name denotes, compared case-insensitively (ASCII).
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name))
    }
}

/// The `#Fields` table in force for HttpProxy fields. Cloning is a
/// reference-count increment. [`w3c::FieldTable::parse`] reads the text
/// after `#Fields:`: names separated by commas, spaces around them and a
/// trailing CR ignored.
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
        let names: Vec<String> = directive_value
            .split(|&b| b == b',')
            .map(|t| String::from_utf8_lossy(t.trim_ascii()).into_owned())
            .collect();
        if names.len() == 1 && names[0].is_empty() {
            Vec::new()
        } else {
            names
        }
    }
}

/// [`Fields::parse`], remembering the last directive parsed on this
/// thread: every file of a server repeats the same one, and files are many.
pub(crate) fn parse_cached(directive_value: &[u8]) -> Fields {
    thread_local! {
        static LAST: RefCell<Option<(Vec<u8>, Fields)>> = const { RefCell::new(None) };
    }
    let cached = LAST.try_with(|last| {
        let mut last = last.try_borrow_mut().ok()?;
        if let Some((text, fields)) = &*last {
            if text.as_slice() == directive_value {
                return Some(fields.clone());
            }
        }
        let fields = Fields::parse(directive_value);
        *last = Some((directive_value.to_vec(), fields.clone()));
        Some(fields)
    });
    cached.ok().flatten().unwrap_or_else(|| Fields::parse(directive_value))
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
    fn names_are_read_not_assumed() {
        let f = Fields::parse(b" DateTime,RequestId , urlstem,UrlQuery,Extra\r");
        assert_eq!(f.len(), 5);
        assert_eq!(f.names().collect::<Vec<_>>(), ["DateTime", "RequestId", "urlstem", "UrlQuery", "Extra"]);
        assert_eq!(f.index(Field::UrlStem), Some(2));
        assert_eq!(f.index(Field::UrlQuery), Some(3));
        assert_eq!(f.index(Field::UrlHost), None);
        assert_eq!(f.index_of("extra"), Some(4));
        assert!(Fields::parse(b"").is_empty());
        assert!(Fields::parse(b"  ").is_empty());
    }
}
