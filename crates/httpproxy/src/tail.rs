//! Following an HttpProxy log that is still being written, as the W3C
//! reader's `w3c::tail` does for IIS logs: each [`follow`] reads the complete
//! lines appended since the last one, from a [`Position`] that carries the
//! `#Fields` in force there. A file replaced under the same name, or
//! truncated and rewritten, is read again from its start. The machinery
//! is the W3C reader's ([`w3c::tail::follow_with`]).

use std::path::Path;

use w3c::lines::last_fields_in;
use w3c::{Error, FileStats, ScanOptions};

use crate::fields::Fields;
use crate::parser::{Parser, Visitor};
use crate::split::MAX_LINE;

/// How far a growing log has been read (see [`w3c::tail::Position`]).
pub type Position = w3c::tail::Position<Fields>;

/// After the last complete line of `path`, with the `#Fields` in force there.
pub fn at_end(path: &Path) -> Result<Position, Error> {
    Position::at_end_with(path, |data| last_fields_in(data, 0..data.len(), MAX_LINE, Fields::parse))
}

/// Read the complete lines appended to `path` since `at` into `visitor`, and
/// move `at` past them; a partial last line is left for the next call. A file
/// gone since it was listed reads as empty; what is not a regular file is
/// refused before it is opened. Line numbers count from the file's start.
pub fn follow<V: Visitor>(
    path: &Path,
    at: &mut Position,
    opts: &ScanOptions,
    visitor: &mut V,
) -> Result<FileStats, Error> {
    w3c::tail::follow_with(path, at, None, |fields| Parser::new(visitor, opts, fields))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::fields::Field;
    use crate::record::Record;

    fn stems(path: &Path, at: &mut Position) -> (Vec<String>, FileStats) {
        let mut out = Vec::new();
        let stats = follow(path, at, &ScanOptions::default(), &mut |r: &Record<'_>| {
            out.push(String::from_utf8_lossy(r.get(Field::UrlStem).unwrap_or_default()).into_owned())
        })
        .unwrap();
        (out, stats)
    }

    #[test]
    fn reads_what_was_appended_and_starts_over_on_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("HttpProxy_2023011116-1.LOG");
        std::fs::write(&path, "#Fields: DateTime,UrlStem\r\n2023-01-11T16:00:00Z,/a\r\n2023-01-11T16:00:01Z,/b")
            .unwrap();
        let mut at = Position::default();
        assert_eq!(stems(&path, &mut at).0, ["/a"]);
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"\r\n2023-01-11T16:00:02Z,/c,extra\r\n").unwrap();
        let (seen, stats) = stems(&path, &mut at);
        assert_eq!(seen, ["/b"]);
        assert_eq!(stats.first_malformed[0].line, 4);
        assert_eq!(stems(&path, &mut at).0, Vec::<String>::new());

        let end = at_end(&path).unwrap();
        assert_eq!((end.offset, end.line), (at.offset, at.line));
        assert_eq!(end.fields, at.fields);

        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "#Fields: UrlStem,DateTime\r\n/new,2023-01-11T17:00:00Z\r\n").unwrap();
        assert_eq!(stems(&path, &mut at).0, ["/new"]);
    }
}
