//! Following an HttpProxy log that is still being written, as the W3C
//! reader's `w3c::tail` does for IIS logs: each [`follow`] reads the complete
//! lines appended since the last one, from a [`Position`] that carries the
//! `#Fields` in force there. A file replaced under the same name, or
//! truncated and rewritten, is read again from its start.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use memchr::{memchr, memrchr};
use w3c::tail::FileId;
use w3c::{Error, FileStats, ScanOptions};

use crate::fields::Fields;
use crate::parser::{Parser, Visitor, FIELDS_DIRECTIVE};

/// Most bytes read from a file per step: what one call holds in memory.
const MAX_READ: usize = 16 << 20;
/// Bytes before the position whose hash tells a file rewritten in place.
const CHECK_WINDOW: u64 = 128;

/// How far a growing log has been read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Bytes consumed: just after a line end, or inside a too-long line being skipped.
    pub offset: u64,
    /// Physical lines consumed, for line numbers in reports.
    pub line: u64,
    /// The `#Fields` directive in force at `offset`.
    pub fields: Option<Fields>,
    /// Inside a line longer than the limit, already counted.
    pub skipping: bool,
    /// The file the bytes were read from.
    pub id: Option<FileId>,
    /// Hash of the bytes just before `offset`.
    pub check: Option<u64>,
}

impl Position {
    /// After the last complete line of `path`, with the `#Fields` in force there.
    pub fn at_end(path: &Path) -> Result<Position, Error> {
        let io_err = |e| Error::Io { path: path.to_path_buf(), source: e };
        let mut file = File::open(path).map_err(io_err)?;
        let id = FileId::of(&file.metadata().map_err(io_err)?);
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io_err)?;
        let end = memrchr(b'\n', &data).map_or(0, |i| i + 1);
        let line = memchr::memchr_iter(b'\n', &data[..end]).count() as u64;
        let fields = last_fields(&data[..end]);
        Ok(Position { offset: end as u64, line, fields, skipping: false, id, check: Some(window_hash(&data[..end])) })
    }
}

/// The last `#Fields` directive in `data`.
fn last_fields(data: &[u8]) -> Option<Fields> {
    data.split(|&b| b == b'\n').rev().find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        line.strip_prefix(FIELDS_DIRECTIVE).map(Fields::parse)
    })
}

/// Read the complete lines appended to `path` since `at` into `visitor`, and
/// move `at` past them; a partial last line is left for the next call. A file
/// gone since it was listed reads as empty. Line numbers count from the file's start.
pub fn follow<V: Visitor>(
    path: &Path,
    at: &mut Position,
    opts: &ScanOptions,
    visitor: &mut V,
) -> Result<FileStats, Error> {
    let io_err = |e| Error::Io { path: path.to_path_buf(), source: e };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(FileStats { path: path.into(), ..FileStats::default() })
        }
        Err(e) => return Err(io_err(e)),
    };
    let meta = file.metadata().map_err(io_err)?;
    let (id, len) = (FileId::of(&meta), meta.len());
    if !same_file(&mut file, at, id, len).map_err(io_err)? {
        *at = Position { id, ..Position::default() };
    }
    at.id = id;
    let mut parser = Parser::new(visitor, opts, at.fields.clone());
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(at.offset)).map_err(io_err)?;
    while at.offset < len && !parser.stopped() {
        let want = usize::try_from(len - at.offset).unwrap_or(usize::MAX).min(MAX_READ);
        buf.clear();
        let got = (&mut file).take(want as u64).read_to_end(&mut buf).map_err(io_err)?;
        if got == 0 {
            break;
        }
        let consumed = step(&mut parser, &buf, &mut at.skipping);
        if consumed == 0 {
            break;
        }
        at.offset += consumed as u64;
        file.seek(SeekFrom::Start(at.offset)).map_err(io_err)?;
    }
    if parser.fields != at.fields {
        at.fields.clone_from(&parser.fields);
    }
    let (mut stats, lines) = parser.finish();
    for m in &mut stats.first_malformed {
        m.line += at.line;
    }
    at.line += lines;
    at.check = read_check(&mut file, at.offset).map_err(io_err)?;
    stats.path = path.to_path_buf();
    Ok(stats)
}

/// Parse the complete lines of `buf`, and drop the bytes of a line too long
/// to keep; returns the bytes consumed.
fn step<V: Visitor>(parser: &mut Parser<'_, V>, buf: &[u8], skipping: &mut bool) -> usize {
    let mut start = 0;
    if *skipping {
        match memchr(b'\n', buf) {
            Some(nl) => {
                *skipping = false;
                start = nl + 1;
            }
            None => return buf.len(),
        }
    }
    let complete = memrchr(b'\n', &buf[start..]).map_or(start, |i| start + i + 1);
    parser.lines(&buf[start..complete]);
    if buf.len() - complete > parser.max_line.saturating_add(1) && !parser.stopped() {
        parser.too_long();
        *skipping = true;
        return buf.len();
    }
    complete
}

/// True when `file` (identity `id`, `len` bytes) is the one `at` was read from.
fn same_file(file: &mut File, at: &Position, id: Option<FileId>, len: u64) -> io::Result<bool> {
    if at.id.is_some() && id.is_some() && at.id != id {
        return Ok(false);
    }
    if len < at.offset {
        return Ok(false);
    }
    if at.check.is_none() || len == at.offset {
        return Ok(true);
    }
    Ok(read_check(file, at.offset)? == at.check)
}

fn read_check(file: &mut File, offset: u64) -> io::Result<Option<u64>> {
    let from = offset.saturating_sub(CHECK_WINDOW);
    let mut window = Vec::with_capacity(CHECK_WINDOW as usize);
    file.seek(SeekFrom::Start(from))?;
    file.take(offset - from).read_to_end(&mut window)?;
    Ok((window.len() as u64 == offset - from).then(|| window_hash(&window)))
}

/// FNV-1a of the last [`CHECK_WINDOW`] bytes of `data`: stable across builds.
fn window_hash(data: &[u8]) -> u64 {
    let tail = &data[data.len().saturating_sub(CHECK_WINDOW as usize)..];
    if tail.is_empty() {
        return 0;
    }
    tail.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
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

        let end = Position::at_end(&path).unwrap();
        assert_eq!((end.offset, end.line), (at.offset, at.line));
        assert_eq!(end.fields, at.fields);

        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "#Fields: UrlStem,DateTime\r\n/new,2023-01-11T17:00:00Z\r\n").unwrap();
        assert_eq!(stems(&path, &mut at).0, ["/new"]);
    }
}
