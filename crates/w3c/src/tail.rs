//! Following a log that is still being written, as `tail -F` does: each
//! [`follow`] reads the complete lines appended since the last one, starting
//! from a [`Position`] that carries the `#Fields` in force there, so no
//! header has to be read again. A file replaced under the same name (`mv`,
//! a new file's identity) or truncated and rewritten (shorter than what was
//! read, or other bytes before the position) is read again from its start.
//!
//! Each call opens the file and closes it again, so the writer can rotate,
//! rename and delete it meanwhile (on Windows `File::open` shares read,
//! write and delete).
//!
//! The same machinery follows any log with `#Fields` directives whose
//! reader is a [`LineParser`] ([`follow_with`], [`Position::at_end_with`]):
//! `httpproxy::tail` follows Exchange's HttpProxy logs with it.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use memchr::memrchr;

use crate::fields::Fields;
use crate::lines::LineParser;
use crate::parser::{FileStats, Parser, ScanOptions, Visitor};
use crate::scan::{open, Opened};
use crate::Error;

/// Most bytes read from a file per step: what one call holds in memory.
const MAX_READ: usize = 16 << 20;
/// Bytes before the position whose hash tells a file rewritten in place:
/// the end of the last line read, its time and counters included.
const CHECK_WINDOW: u64 = 128;

/// Which file a name led to: device and inode on Unix. On Windows the file
/// index is not available in stable Rust; the creation time stands in for
/// it, and [`Position::check`] catches what it misses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId(u64, u64);

impl FileId {
    /// The identity of an open file; `None` where the platform gives none.
    pub fn of(meta: &Metadata) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileId(meta.dev(), meta.ino()))
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::MetadataExt;
            Some(FileId(0, meta.creation_time()))
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = meta;
            None
        }
    }

    /// The two numbers to store (see [`FileId::from_parts`]).
    pub fn parts(self) -> (u64, u64) {
        (self.0, self.1)
    }

    /// An identity stored with [`FileId::parts`].
    pub fn from_parts(device: u64, index: u64) -> FileId {
        FileId(device, index)
    }
}

/// How far a growing log has been read; `F` is the `#Fields` table of the
/// format (W3C's by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position<F = Fields> {
    /// Bytes consumed: just after a line end, or inside a too-long line
    /// being skipped.
    pub offset: u64,
    /// Physical lines consumed, for line numbers in reports.
    pub line: u64,
    /// The `#Fields` directive in force at `offset`; `None` before any (then
    /// [`ScanOptions::default_fields`] apply).
    pub fields: Option<F>,
    /// Inside a line longer than the limit, already counted: the bytes up to
    /// its end are dropped.
    pub skipping: bool,
    /// The file the bytes were read from.
    pub id: Option<FileId>,
    /// Hash of the bytes just before `offset`; `None` when not known (then
    /// only the identity and the length tell a rewrite).
    pub check: Option<u64>,
}

impl<F> Default for Position<F> {
    fn default() -> Self {
        Position { offset: 0, line: 0, fields: None, skipping: false, id: None, check: None }
    }
}

impl Position {
    /// After the last complete line of `path`, with the `#Fields` in force
    /// there: where following starts when older lines are not wanted.
    pub fn at_end(path: &Path, opts: &ScanOptions) -> Result<Position, Error> {
        Position::at_end_with(path, |data| crate::parser::last_fields_in(data, 0..data.len(), opts.max_line()))
    }
}

impl<F> Position<F> {
    /// After the last complete line of `path`, with the `#Fields` that
    /// `last_fields` finds in force at the end of the complete lines given
    /// to it (a gzip file starts at its start).
    pub fn at_end_with(path: &Path, last_fields: impl FnOnce(&[u8]) -> Option<F>) -> Result<Self, Error> {
        let id = crate::paths::open_file(path)?.metadata().map(|m| FileId::of(&m)).map_err(|e| Error::io(path, e))?;
        let Opened::Mapped(map) = open(path)? else {
            return Ok(Position { id, ..Position::default() });
        };
        let end = memrchr(b'\n', &map).map_or(0, |i| i + 1);
        let line = memchr::memchr_iter(b'\n', &map[..end]).count() as u64;
        let fields = last_fields(&map[..end]);
        let check = Some(window_hash(&map[..end]));
        Ok(Position { offset: end as u64, line, fields, skipping: false, id, check })
    }
}

/// Read the complete lines appended to `path` since `at` into `visitor`, and
/// move `at` past them; a partial last line is left for the next call. The
/// file is read from its start when it is not the one `at` was read from:
/// another identity, shorter than `at.offset`, or other bytes just before it.
/// A file gone since it was listed reads as empty; what is not a regular file
/// is refused before it is opened. Line numbers in the statistics count from
/// the file's start.
pub fn follow<V: Visitor>(
    path: &Path,
    at: &mut Position,
    opts: &ScanOptions,
    visitor: &mut V,
) -> Result<FileStats, Error> {
    follow_with(path, at, opts.default_fields.as_ref(), |fields| Parser::new(visitor, opts, fields))
}

/// [`follow`] for any format: `parser` makes the line parser, given the
/// `#Fields` in force at `at` (`at.fields`, else `default_fields`).
pub fn follow_with<P: LineParser>(
    path: &Path,
    at: &mut Position<P::Fields>,
    default_fields: Option<&P::Fields>,
    parser: impl FnOnce(Option<P::Fields>) -> P,
) -> Result<FileStats, Error> {
    let io_err = |e| Error::io(path, e);
    let mut file = match crate::paths::open_file(path) {
        Ok(file) => file,
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(FileStats { path: path.into(), ..FileStats::default() })
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata().map_err(io_err)?;
    let (id, len) = (FileId::of(&meta), meta.len());
    if !same_file(&mut file, at, id, len).map_err(io_err)? {
        *at = Position { id, ..Position::default() };
    }
    at.id = id;
    let start_fields = at.fields.clone().or_else(|| default_fields.cloned());
    let mut parser = parser(start_fields.clone());
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(at.offset)).map_err(io_err)?;
    while at.offset < len && !parser.stopped() {
        let want = usize::try_from(len - at.offset).unwrap_or(usize::MAX).min(MAX_READ);
        buf.clear();
        let got = (&mut file).take(want as u64).read_to_end(&mut buf).map_err(io_err)?;
        if got == 0 {
            break;
        }
        let consumed = parser.complete_lines(&buf, &mut at.skipping);
        if consumed == 0 {
            break;
        }
        at.offset += consumed as u64;
        // Only complete lines were taken: read on from just after them.
        file.seek(SeekFrom::Start(at.offset)).map_err(io_err)?;
    }
    let fields = &parser.state().fields;
    if *fields != start_fields {
        at.fields.clone_from(fields);
    }
    let (mut stats, lines) = parser.finish();
    for m in &mut stats.first_malformed {
        m.line += at.line;
    }
    for w in &mut stats.first_warnings {
        w.line += at.line;
    }
    at.line += lines;
    at.check = read_check(&mut file, at.offset).map_err(io_err)?;
    stats.path = path.to_path_buf();
    Ok(stats)
}

/// True when `file` (identity `id`, `len` bytes) is the one `at` was read from.
fn same_file<F>(file: &mut File, at: &Position<F>, id: Option<FileId>, len: u64) -> io::Result<bool> {
    if at.id.is_some() && id.is_some() && at.id != id {
        return Ok(false);
    }
    if len < at.offset {
        return Ok(false);
    }
    // Nothing new: a rewrite of the same length shows when the file grows.
    if at.check.is_none() || len == at.offset {
        return Ok(true);
    }
    Ok(read_check(file, at.offset)? == at.check)
}

/// [`window_hash`] of the bytes of `file` before `offset`; `None` when the
/// file no longer has them all.
fn read_check(file: &mut File, offset: u64) -> io::Result<Option<u64>> {
    let from = offset.saturating_sub(CHECK_WINDOW);
    let mut window = Vec::with_capacity(CHECK_WINDOW as usize);
    file.seek(SeekFrom::Start(from))?;
    file.take(offset - from).read_to_end(&mut window)?;
    Ok((window.len() as u64 == offset - from).then(|| window_hash(&window)))
}

/// FNV-1a of the last [`CHECK_WINDOW`] bytes of `data`: stable across
/// builds, as it is stored between runs.
fn window_hash(data: &[u8]) -> u64 {
    let tail = &data[data.len().saturating_sub(CHECK_WINDOW as usize)..];
    if tail.is_empty() {
        return 0;
    }
    tail.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}
