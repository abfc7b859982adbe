//! The `#Fields` table in force: column names as the log states them, and
//! where the columns a reader needs sit. The list differs between Exchange
//! versions, so nothing here assumes a position.

use std::cell::RefCell;

use w3c::FieldTable;

w3c::known_fields! {
    /// Columns of HttpProxy logs that readers look up by name.
    pub enum Field split column_names {
        /// End of the request, ISO 8601 UTC with milliseconds.
        DateTime = "DateTime",
        /// The request's GUID; IIS logs it as `cafeReqId=` in cs-uri-query.
        RequestId = "RequestId",
        /// The `ClientRequestId` column.
        ClientRequestId = "ClientRequestId",
        /// The protocol folder (`Eas`, `Ews`, `Owa`, ...).
        Protocol = "Protocol",
        /// The `UrlHost` column.
        UrlHost = "UrlHost",
        /// The `UrlStem` column.
        UrlStem = "UrlStem",
        /// The query string with its leading `?`.
        UrlQuery = "UrlQuery",
        /// The `ProtocolAction` column.
        ProtocolAction = "ProtocolAction",
        /// `Basic`, `NTLM`, `Negotiate`, `Kerberos`, `OAuth`, `Bearer`, `FBA`, ...
        AuthenticationType = "AuthenticationType",
        /// The `IsAuthenticated` column.
        IsAuthenticated = "IsAuthenticated",
        /// The `AuthenticatedUser` column.
        AuthenticatedUser = "AuthenticatedUser",
        /// A typed routing hint: `Smtp~user@domain`, `Sid~S-1-5-...`, ...
        AnchorMailbox = "AnchorMailbox",
        /// The `UserAgent` column.
        UserAgent = "UserAgent",
        /// The `ClientIpAddress` column.
        ClientIpAddress = "ClientIpAddress",
        /// The `ServerHostName` column.
        ServerHostName = "ServerHostName",
        /// The `HttpStatus` column.
        HttpStatus = "HttpStatus",
        /// The `BackEndStatus` column.
        BackEndStatus = "BackEndStatus",
        /// The `ErrorCode` column.
        ErrorCode = "ErrorCode",
        /// The `Method` column.
        Method = "Method",
    }
}

/// The `#Fields` table in force for HttpProxy fields. Cloning is a
/// reference-count increment. [`w3c::FieldTable::parse`] reads the text
/// after `#Fields:`: names separated by commas, spaces around them and a
/// trailing CR ignored.
pub type Fields = FieldTable<Field, { Field::COUNT }>;

/// Names separated by commas, spaces around them and a trailing CR ignored.
fn column_names(directive_value: &[u8]) -> Vec<String> {
    let names: Vec<String> =
        directive_value.split(|&b| b == b',').map(|t| String::from_utf8_lossy(t.trim_ascii()).into_owned()).collect();
    if names.len() == 1 && names[0].is_empty() {
        Vec::new()
    } else {
        names
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
    fn a_table_naming_every_field_finds_each_at_its_column() {
        // Last to first, so that no column happens to equal a slot.
        let names: Vec<&str> = Field::ALL.iter().rev().map(|f| f.name()).collect();
        let table = Fields::parse(names.join(",").as_bytes());
        assert_eq!(table.repeated().count(), 0);
        for (column, f) in Field::ALL.into_iter().rev().enumerate() {
            assert_eq!(Field::ALL[f as usize], f, "ALL is in declaration order");
            assert_eq!(table.index(f), Some(column), "{f:?}");
        }
    }

    #[test]
    fn names_are_read_not_assumed() {
        let f = Fields::parse(b" DateTime,RequestId , urlstem,UrlQuery,Extra\r");
        assert_eq!(f.names().collect::<Vec<_>>(), ["DateTime", "RequestId", "urlstem", "UrlQuery", "Extra"]);
        let found = [Field::UrlStem, Field::UrlQuery, Field::UrlHost].map(|k| f.index(k));
        assert_eq!(found, [Some(2), Some(3), None]);
        assert_eq!((f.index_of("extra"), f.index_of("urlhost")), (Some(4), None));
        for empty in [&b""[..], b"  ", b"\r"] {
            assert!(Fields::parse(empty).is_empty(), "{empty:?}");
        }
        // Empty names between commas are columns all the same.
        assert_eq!(Fields::parse(b"DateTime,,UrlStem").index(Field::UrlStem), Some(2));
    }
}
