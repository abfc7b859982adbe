//! Reader for Exchange HttpProxy logs
//! (`Logging\HttpProxy\<Protocol>\HttpProxy_yyyyMMddHH-N.LOG`).
//!
//! They are CSV: `#Software`, `#Version`, `#Log-type`, `#Date` and `#Fields`
//! lines, then one line per request of the front end. The columns differ
//! between Exchange versions and are read from `#Fields`, never assumed.
//! Zero-copy as the W3C reader: each data line is split into a reused span
//! table and handed to a [`Visitor`] as a borrowed [`Record`]; nothing is
//! allocated per line. Quoted fields (`"a,b"`, `""` for a quote) are read as
//! RFC 4180 says, though Exchange's writer replaces commas in values instead.
//! Files are plain or gzip, told apart by content ([`is_httpproxy`] tells
//! them from IIS logs); a malformed line is counted in the W3C reader's
//! [`w3c::FileStats`] with its line number. Like `w3c`, the crate knows the
//! format only, nothing of what the requests mean.
//!
//! ```
//! use httpproxy::{scan_bytes, Field, Record};
//! use w3c::ScanOptions;
//!
//! let log = b"#Software: Microsoft Exchange Server\r\n\
//! #Log-type: HttpProxy Logs\r\n\
//! #Fields: DateTime,RequestId,UrlStem,AuthenticationType,UserAgent\r\n\
//! 2023-01-11T16:06:06.997Z,823d6c00-01f1-4067-9002-18ff1cf2e5d9,/Microsoft-Server-ActiveSync/default.eas,Basic,Outlook-iOS-Android/1.0\r\n\
//! 2023-01-11T16:06:07.001Z,cut-short\r\n";
//! let mut auth = Vec::new();
//! let stats = scan_bytes(log, &ScanOptions::default(), &mut |r: &Record<'_>| {
//!     auth.push(r.get(Field::AuthenticationType).map(<[u8]>::to_vec));
//! });
//! assert_eq!(auth, [Some(b"Basic".to_vec())]);
//! assert_eq!((stats.lines, stats.malformed_total()), (2, 1));
//! assert_eq!(stats.first_malformed[0].line, 5);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod fields;
mod parser;
mod read;
mod record;
mod sniff;
mod split;
pub mod tail;

pub use fields::{Field, Fields};
pub use parser::{HttpProxy, Visitor};
pub use read::{scan_bytes, scan_file, scan_reader};
pub use record::Record;
pub use sniff::{is_httpproxy, is_httpproxy_file, log_kind, log_kind_file, LogKind};
