//! Reader for IIS W3C extended log files.
//!
//! Zero-copy: each data line is split on single spaces into a reused span table and
//! handed to a [`Visitor`] as a borrowed [`Record`]; nothing is allocated per line.
//! Plain files are memory-mapped and scanned in parallel line-aligned chunks; gzip
//! files are decoded on one thread and parsed on another. [`tail`] follows logs
//! that are still being written. A visitor can stop a scan (see
//! [`Visitor::stopped`]). The crate knows the W3C format only, nothing of Exchange.
//!
//! ```
//! use w3c::{scan_bytes, Field, Record, ScanOptions};
//!
//! let log = b"#Software: Microsoft Internet Information Services 10.0\r\n\
//! #Fields: date time c-ip cs-username cs(User-Agent) sc-status\r\n\
//! 2022-01-01 00:01:24 ::1 DOMAIN\\user Microsoft+WinRM+Client 200\r\n\
//! 2022-01-01 00:01:25 10.0.0.1 - curl/8.0 401\r\n\
//! 2022-01-01 00:01:26 10.0.0.1  - curl/8.0 401\r\n";
//! let mut users = Vec::new();
//! let stats = scan_bytes(log, &ScanOptions::default(), &mut |r: &Record<'_>| {
//!     users.push(r.get(Field::Username).map(<[u8]>::to_vec));
//! });
//! assert_eq!(users, [Some(b"DOMAIN\\user".to_vec()), None]);
//! assert_eq!((stats.lines, stats.directives, stats.malformed_total()), (3, 2, 1));
//! assert_eq!(stats.first_malformed[0].line, 5);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod fields;
pub mod lines;
mod parser;
mod paths;
mod record;
mod scan;
mod stream;
pub mod table;
pub mod tail;
pub mod time;
pub mod utf16;
mod values;

pub use error::Error;
pub use fields::{Field, Fields, IIS_DEFAULT_FIELDS};
pub use parser::{
    is_http_error_log, FileStats, Format, Malformed, MalformedKind, ScanOptions, Visitor, W3c, Warning, WarningKind,
};
pub use paths::{collect_paths, collect_paths_named, copies, is_archive_name, is_log_name, open_file};
pub use record::{decode_into, decode_name_into, decode_utf8_into, windows_1252, Record};
pub use scan::{scan_bytes, scan_chunks, scan_chunks_pooled, scan_path, scan_path_pooled, FileScan, VisitorPool};
pub use stream::{scan_file, scan_reader};
pub use table::{FieldTable, KnownField};
pub use values::parse_ip;
