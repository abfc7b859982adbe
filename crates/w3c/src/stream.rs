//! Streams (gzip, pipes): decoded on one thread in blocks and parsed on
//! another, the partial last line of each block rolled over to the next.

use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc;

use memchr::{memchr, memrchr};

use crate::lines::{fill, is_corrupt, LineParser};
use crate::parser::{FileStats, MalformedKind, Parser, ScanOptions, Visitor};
use crate::Error;

pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Feeds decoded blocks into a [`Parser`], rolling the partial last line.
struct Streamer<'v, V> {
    parser: Parser<'v, V>,
    carry: Vec<u8>,
    /// Inside a too-long line already counted; drop bytes up to its `\n`.
    skipping: bool,
    bytes: u64,
}

impl<'v, V: Visitor> Streamer<'v, V> {
    fn new(parser: Parser<'v, V>) -> Self {
        Streamer { parser, carry: Vec::new(), skipping: false, bytes: 0 }
    }

    /// The longest partial line worth buffering: content plus a possible `\r`.
    fn carry_limit(&self) -> usize {
        self.parser.state.tally.max_line.saturating_add(1)
    }

    fn block(&mut self, mut block: &[u8]) {
        self.bytes += block.len() as u64;
        if self.parser.stopped() {
            return;
        }
        if self.skipping || !self.carry.is_empty() {
            let Some(nl) = memchr(b'\n', block) else {
                self.partial(block);
                return;
            };
            if self.skipping {
                self.skipping = false;
            } else {
                self.carry.extend_from_slice(&block[..nl]);
                let carry = std::mem::take(&mut self.carry);
                self.parser.line(&carry);
                self.carry = carry;
                self.carry.clear();
            }
            block = &block[nl + 1..];
        }
        let complete = match memrchr(b'\n', block) {
            Some(i) => i + 1,
            None => 0,
        };
        self.parser.lines(&block[..complete]);
        self.partial(&block[complete..]);
    }

    /// Bytes of a line whose end has not been seen yet.
    fn partial(&mut self, bytes: &[u8]) {
        if self.skipping {
            return;
        }
        if self.carry.len() + bytes.len() > self.carry_limit() {
            self.parser.state.tally.too_long();
            self.skipping = true;
            self.carry.clear();
        } else {
            self.carry.extend_from_slice(bytes);
        }
    }

    /// End of input: the last line may lack its `\n`.
    fn finish(mut self) -> FileStats {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            self.parser.line(&carry);
        }
        self.stats()
    }

    /// The stream broke: the partial line is dropped and reported in its place.
    fn truncated(mut self, err: &io::Error) -> FileStats {
        let what = match err.kind() {
            io::ErrorKind::UnexpectedEof => "gzip stream ends early",
            _ => "gzip data is damaged",
        };
        self.parser.state.tally.lost_line(MalformedKind::TruncatedGzip, || format!("{what}: {err}"));
        self.stats()
    }

    fn stats(self) -> FileStats {
        let bytes = self.bytes;
        let (mut stats, _) = self.parser.finish();
        stats.bytes = bytes;
        stats
    }
}

/// How a stream ended.
enum End {
    Eof,
    /// The visitor stopped: the rest is not read.
    Stopped,
    Error(io::Error),
}

/// Streams `reader` through the parser, reading on another thread when `parallel`.
fn stream<R: Read + Send, V: Visitor>(
    mut reader: R,
    opts: &ScanOptions,
    visitor: &mut V,
    gzip: bool,
) -> io::Result<FileStats> {
    let block = opts.block_size();
    let mut s = Streamer::new(Parser::new(visitor, opts, None));
    let end = if opts.parallel {
        stream_threaded(&mut reader, block, &mut s)
    } else {
        let mut buf = vec![0; block];
        loop {
            let (n, error) = fill(&mut reader, &mut buf);
            if n > 0 {
                s.block(&buf[..n]);
            }
            if s.parser.stopped() {
                break End::Stopped;
            }
            match error {
                Some(e) => break End::Error(e),
                None if n == 0 => break End::Eof,
                None => {}
            }
        }
    };
    let mut stats = match end {
        End::Eof => s.finish(),
        End::Stopped => s.stats(),
        End::Error(e) if gzip && is_corrupt(&e) => s.truncated(&e),
        End::Error(e) => return Err(e),
    };
    stats.compressed = gzip;
    Ok(stats)
}

/// Reads (and decompresses) on a scoped thread while this one parses; a few
/// buffers circulate between the two so neither allocates per block.
fn stream_threaded<R: Read + Send, V: Visitor>(reader: &mut R, block: usize, s: &mut Streamer<'_, V>) -> End {
    const BUFFERS: usize = 3;
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<(Vec<u8>, usize), io::Error>>(BUFFERS);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..BUFFERS {
        let _ = empty_tx.send(Vec::new());
    }
    std::thread::scope(|scope| {
        // Owned by this closure so that a panicking visitor drops them while
        // unwinding, which releases the reader thread before the scope joins it.
        let (full_rx, empty_tx) = (full_rx, empty_tx);
        scope.spawn(move || {
            // Stops when the parser hangs up (its receiver drops) or the input ends.
            while let Ok(mut buf) = empty_rx.recv() {
                if buf.len() != block {
                    // Zeroed allocation: the OS hands out pages lazily.
                    buf = vec![0; block];
                }
                let (n, error) = fill(reader, &mut buf);
                if n > 0 && full_tx.send(Ok((buf, n))).is_err() {
                    break;
                }
                match error {
                    Some(e) => {
                        let _ = full_tx.send(Err(e));
                        break;
                    }
                    None if n == 0 => break,
                    None => {}
                }
            }
        });
        let end = loop {
            match full_rx.recv() {
                Ok(Ok((buf, n))) => {
                    s.block(&buf[..n]);
                    if s.parser.stopped() {
                        break End::Stopped;
                    }
                    let _ = empty_tx.send(buf);
                }
                Ok(Err(e)) => break End::Error(e),
                Err(_) => break End::Eof,
            }
        };
        drop(empty_tx);
        end
    })
}

/// Scans a stream, plain, gzip or UTF-16 (by its magic bytes or byte-order
/// mark; see [`crate::utf16`]), with one visitor. A corrupt or truncated gzip
/// stream is reported as [`MalformedKind::TruncatedGzip`], not as an error.
pub fn scan_reader<R: Read + Send, V: Visitor>(
    reader: R,
    opts: &ScanOptions,
    visitor: &mut V,
) -> io::Result<FileStats> {
    let mut reader = io::BufReader::with_capacity(64 << 10, reader);
    let (gzip, utf16) = {
        let head = io::BufRead::fill_buf(&mut reader)?;
        (head.len() >= 2 && head[..2] == GZIP_MAGIC, crate::utf16::mark(head))
    };
    if let Some(order) = utf16 {
        io::BufRead::consume(&mut reader, 2);
        stream(crate::utf16::Utf16Reader::new(reader, order), opts, visitor, false)
    } else if gzip {
        stream(flate2::bufread::MultiGzDecoder::new(reader), opts, visitor, true)
    } else {
        stream(reader, opts, visitor, false)
    }
}

/// Scans one file in order with one visitor, streamed (plain or gzip, by its
/// magic bytes): for outputs that keep each file's order.
pub fn scan_file<V: Visitor>(path: &Path, opts: &ScanOptions, visitor: &mut V) -> Result<FileStats, Error> {
    let file = crate::paths::open_file(path)?;
    let mut stats = scan_reader(file, opts, visitor).map_err(|e| Error::io(path, e))?;
    stats.path = path.to_path_buf();
    Ok(stats)
}
