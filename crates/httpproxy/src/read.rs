//! Reading whole logs: bytes in memory, or a stream (a file, plain or gzip)
//! read in blocks into one reused buffer, the partial last line of each block
//! moved to its front. HttpProxy files are small (Exchange rolls them at
//! 10 MB), so files are read in parallel, each in order on one thread.

use std::cell::RefCell;
use std::io::{self, BufReader, Read};
use std::path::Path;

use w3c::lines::{fill, is_corrupt, LineParser};
use w3c::{Error, FileStats, MalformedKind, ScanOptions};

use crate::parser::{Parser, Visitor};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Bytes read per step: large next to a line, small next to memory.
fn block_size(opts: &ScanOptions) -> usize {
    opts.chunk_size.clamp(1, 1 << 20)
}

/// Scans bytes already in memory, in order, with one visitor.
pub fn scan_bytes<V: Visitor>(data: &[u8], opts: &ScanOptions, visitor: &mut V) -> FileStats {
    let mut p = Parser::new(visitor, opts, None);
    p.lines(data);
    let (mut stats, _) = p.finish();
    stats.bytes = data.len() as u64;
    stats
}

/// Scans a stream, plain, gzip (by its magic bytes, multi-member too) or
/// UTF-16 (by its byte-order mark, see [`w3c::utf16`]).
/// A corrupt or truncated gzip stream keeps every line decoded before the
/// damage and counts one [`MalformedKind::TruncatedGzip`] line.
pub fn scan_reader<R: Read, V: Visitor>(mut reader: R, opts: &ScanOptions, visitor: &mut V) -> io::Result<FileStats> {
    // The magic bytes alone, then the rest read straight into the block
    // buffer: a buffered reader in between would copy every byte once more.
    let mut magic = [0u8; 2];
    let got = match fill(&mut reader, &mut magic) {
        (0, Some(e)) => return Err(e),
        (got, _) => got,
    };
    if let Some(order) = w3c::utf16::mark(&magic[..got]) {
        return stream(w3c::utf16::Utf16Reader::new(reader, order), opts, visitor, false);
    }
    let rest = (&magic[..got]).chain(reader);
    let gzip = got == 2 && magic == GZIP_MAGIC;
    let mut stats = if gzip {
        stream(flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(64 << 10, rest)), opts, visitor, true)?
    } else {
        stream(rest, opts, visitor, false)?
    };
    stats.compressed = gzip;
    Ok(stats)
}

/// Scans one file, plain or gzip (by content, not name), in order.
pub fn scan_file<V: Visitor>(path: &Path, opts: &ScanOptions, visitor: &mut V) -> Result<FileStats, Error> {
    let file = w3c::open_file(path)?;
    let mut stats = scan_reader(file, opts, visitor).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    stats.path = path.to_path_buf();
    Ok(stats)
}

thread_local! {
    /// The block buffer, kept for the next file read on this thread: files
    /// are many and small, and a fresh zeroed megabyte each costs more than
    /// reading it.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads `reader` to its end through a parser. The buffer holds one block
/// after the partial line carried over, so memory is bounded by the block
/// and the longest line kept, whatever the size of the file.
fn stream<R: Read, V: Visitor>(reader: R, opts: &ScanOptions, visitor: &mut V, gzip: bool) -> io::Result<FileStats> {
    let mut spare = BUFFER.try_with(|b| b.try_borrow_mut().map(|mut b| std::mem::take(&mut *b)).ok()).ok().flatten();
    let result = stream_with(reader, opts, visitor, gzip, spare.as_mut().unwrap_or(&mut Vec::new()));
    if let Some(buf) = spare {
        let _ = BUFFER.try_with(|b| b.try_borrow_mut().map(|mut b| *b = buf));
    }
    result
}

fn stream_with<R: Read, V: Visitor>(
    mut reader: R,
    opts: &ScanOptions,
    visitor: &mut V,
    gzip: bool,
    buf: &mut Vec<u8>,
) -> io::Result<FileStats> {
    let block = block_size(opts);
    let mut p = Parser::new(visitor, opts, None);
    let keep = p.state.tally.max_line.saturating_add(1);
    if buf.len() < block + keep.min(block) {
        buf.resize(block + keep.min(block), 0);
    }
    // Bytes of a partial line at the front of `buf`.
    let mut carry = 0;
    // Inside a too-long line already counted: drop bytes up to its `\n`.
    let mut skipping = false;
    let mut bytes = 0u64;
    loop {
        if buf.len() < carry + block {
            buf.resize(carry + block, 0);
        }
        // An error after some bytes comes back when the reader is asked again.
        let n = match fill(&mut reader, &mut buf[carry..carry + block]) {
            (0, None) => break,
            (0, Some(e)) if gzip && is_corrupt(&e) => {
                // The partial line is dropped and reported in its place.
                p.state.tally.lost_line(MalformedKind::TruncatedGzip, || format!("gzip stream ends early: {e}"));
                carry = 0;
                break;
            }
            (0, Some(e)) => return Err(e),
            (n, _) => n,
        };
        bytes += n as u64;
        let consumed = p.complete_lines(&buf[..carry + n], &mut skipping);
        if p.stopped() {
            carry = 0;
            break;
        }
        buf.copy_within(consumed..carry + n, 0);
        carry = carry + n - consumed;
    }
    if carry > 0 && !skipping {
        p.line(&buf[..carry]);
    }
    let (mut stats, _) = p.finish();
    stats.bytes = bytes;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::Field;
    use crate::record::Record;

    const LOG: &[u8] = b"#Software: Microsoft Exchange Server\r\n#Version: 15.01.2375.007\r\n\
#Log-type: HttpProxy Logs\r\n#Date: 2023-01-11T16:00:11.478Z\r\n\
#Fields: DateTime,RequestId,UrlStem,UrlQuery,UserAgent\r\n\
2023-01-11T16:06:06.997Z,a,/ews/,,AMProbe/Local/ClientAccess\r\n\
2023-01-11T16:06:07.001Z,b,/owa/,\"?x=1,2\",\"Mozilla \"\"q\"\"\"\r\n\
2023-01-11T16:06:08.001Z,c,/owa/\r\n\
\r\n\
2023-01-11T16:06:09.001Z,d,/mapi/,?mailboxId=x,MapiHttpClient";

    fn stems(data: &[u8], opts: &ScanOptions) -> (Vec<String>, FileStats) {
        let mut out = Vec::new();
        let mut v = |r: &Record<'_>| {
            let mut s = String::new();
            r.value_into(Field::RequestId, &mut s);
            r.value_into(Field::UrlQuery, &mut s);
            r.value_into(Field::UserAgent, &mut s);
            out.push(s);
        };
        let stats = scan_reader(data, opts, &mut v).unwrap();
        (out, stats)
    }

    #[test]
    fn every_block_size_reads_the_same() {
        let whole = stems(LOG, &ScanOptions::default());
        assert_eq!(whole.0, ["aAMProbe/Local/ClientAccess", "b?x=1,2Mozilla \"q\"", "d?mailboxId=xMapiHttpClient"]);
        assert_eq!((whole.1.lines, whole.1.directives, whole.1.malformed_total()), (4, 5, 1));
        assert_eq!(whole.1.first_malformed[0].line, 8);
        assert_eq!(whole.1.first_malformed[0].detail, "expected 5 fields, found 3");
        for chunk_size in 1..80 {
            let opts = ScanOptions { chunk_size, ..ScanOptions::default() };
            assert_eq!(stems(LOG, &opts), whole, "chunk {chunk_size}");
        }
        let mut n = 0;
        let stats = scan_bytes(LOG, &ScanOptions::default(), &mut |_: &Record<'_>| n += 1);
        assert_eq!((n, stats.lines, stats.bytes), (3, 4, LOG.len() as u64));
    }

    #[test]
    fn nul_bytes_a_crash_left_before_the_restart_header_lose_no_line() {
        let (head, tail) = LOG.split_at(LOG.windows(2).position(|w| w == b"\r\n").unwrap() + 2);
        let mut crashed = LOG.to_vec();
        crashed.extend_from_slice(b"\r\n");
        crashed.resize(crashed.len() + 4096, 0);
        crashed.extend_from_slice(head);
        crashed.extend_from_slice(tail);
        let (once, one) = stems(LOG, &ScanOptions::default());
        let (twice, stats) = stems(&crashed, &ScanOptions::default());
        assert_eq!(twice, [once.clone(), once].concat());
        assert_eq!(stats.malformed_total(), 2 * one.malformed_total(), "only the log's own short lines");
        assert_eq!(stats.warnings_of(w3c::WarningKind::NulBytes), 1);
        let mut zeroed = vec![0; 300];
        zeroed.extend_from_slice(LOG);
        assert!(crate::is_httpproxy(&zeroed), "NUL bytes before the header");
    }

    #[test]
    fn too_long_lines_are_counted_and_skipped_whatever_the_block() {
        let long =
            format!("#Fields: DateTime,UrlStem\n2023-01-11T16:06:06Z,/{}\n2023-01-11T16:06:07Z,/ok\n", "x".repeat(300));
        for chunk_size in [1, 7, 64, 100, 1 << 20] {
            let opts = ScanOptions { chunk_size, max_line: 100, ..ScanOptions::default() };
            let mut seen = Vec::new();
            let stats = scan_reader(long.as_bytes(), &opts, &mut |r: &Record<'_>| {
                seen.push(r.get(Field::UrlStem).unwrap().to_vec())
            })
            .unwrap();
            assert_eq!(seen, [b"/ok".to_vec()], "chunk {chunk_size}");
            assert_eq!((stats.lines, stats.malformed_of(MalformedKind::TooLong)), (2, 1));
            assert_eq!(stats.first_malformed[0].line, 2);
        }
    }

    #[test]
    fn gzip_whole_and_truncated() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(LOG).unwrap();
        let packed = gz.finish().unwrap();
        let plain = stems(LOG, &ScanOptions::default());
        let (rows, stats) = stems(&packed, &ScanOptions::default());
        assert_eq!(rows, plain.0);
        assert!(stats.compressed);
        let cut = &packed[..packed.len() - 12];
        let (_, stats) = stems(cut, &ScanOptions::default());
        assert_eq!(stats.malformed_of(MalformedKind::TruncatedGzip), 1);
    }

    #[test]
    fn a_missing_file_names_itself() {
        let err = scan_file(
            Path::new("/nonexistent/HttpProxy_2023010101-1.LOG"),
            &ScanOptions::default(),
            &mut |_: &Record<'_>| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("HttpProxy_2023010101-1.LOG"), "{err}");
    }

    /// Every way of reading a named file refuses a FIFO, as the W3C reader
    /// does, rather than wait for a writer that never comes.
    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_before_it_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("HttpProxy_2023011116-1.LOG");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let opts = ScanOptions::default();
            let _ = tx.send(scan_file(&path, &opts, &mut |_: &Record<'_>| {}).err());
            let _ = tx.send(crate::log_kind_file(&path).err());
            let _ = tx.send(crate::tail::at_end(&path).err());
            let mut at = crate::tail::Position::default();
            let _ = tx.send(crate::tail::follow(&path, &mut at, &opts, &mut |_: &Record<'_>| {}).err());
        });
        for call in ["scan_file", "log_kind_file", "tail::at_end", "tail::follow"] {
            let err = rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap_or_else(|_| panic!("{call} hung"));
            match err {
                Some(Error::NotAFile { path, kind }) => assert_eq!((path, kind), (fifo.clone(), "a FIFO"), "{call}"),
                other => panic!("{call}: {other:?}"),
            }
        }
    }
}
