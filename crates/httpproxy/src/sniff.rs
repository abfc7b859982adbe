//! Telling an HttpProxy log from an IIS W3C log by its first lines, never by
//! its name: plain or gzip, with or without its header lines.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use w3c::Error;

use w3c::lines::{after_nuls, FIELDS_DIRECTIVE};

/// How much of a file is looked at: the five header lines and a data line.
const HEAD: usize = 8 << 10;

/// True when `head`, the first bytes of a log, is an HttpProxy log:
/// `#Log-type: HttpProxy Logs`, or a comma-separated `#Fields` naming
/// `UrlStem` with no `#Log-type` saying otherwise, or (header lines cut off)
/// a first data line that starts with an ISO 8601 time and a comma, which no
/// W3C line does (W3C separates date and time with a space).
pub fn is_httpproxy(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut log_type: Option<bool> = None;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // NUL bytes: a writer that crashed before writing what it had made room for.
        let line = after_nuls(line).trim_ascii_start();
        if line.is_empty() {
            continue;
        }
        if let Some(kind) = strip_prefix_ci(line, b"#Log-type:") {
            log_type = Some(kind.trim_ascii().eq_ignore_ascii_case(b"HttpProxy Logs"));
            continue;
        }
        if let Some(names) = line.strip_prefix(FIELDS_DIRECTIVE) {
            let csv = names.contains(&b',');
            let named = names.split(|&b| b == b',').any(|n| n.trim_ascii().eq_ignore_ascii_case(b"UrlStem"));
            return log_type.unwrap_or(csv && named);
        }
        if line.starts_with(b"#") {
            continue;
        }
        return log_type.unwrap_or_else(|| iso_time_then_comma(line));
    }
    log_type.unwrap_or(false)
}

/// `YYYY-MM-DDTHH:MM:SS`, an optional fraction, `Z`, then `,`.
fn iso_time_then_comma(line: &[u8]) -> bool {
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if line.len() < shape.len() + 2 {
        return false;
    }
    let fits = shape.iter().zip(line).all(|(&s, &b)| if s == b'd' { b.is_ascii_digit() } else { s == b });
    let rest = &line[shape.len()..];
    let rest = match rest.strip_prefix(b".") {
        Some(r) => &r[r.iter().take_while(|b| b.is_ascii_digit()).count()..],
        None => rest,
    };
    fits && rest.starts_with(b"Z,")
}

fn strip_prefix_ci<'a>(line: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = line.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &line[prefix.len()..])
}

/// Whether the file at `path` is an HttpProxy log (see [`is_httpproxy`]),
/// looking at its first 8 KiB, decompressed when it is gzip.
pub fn is_httpproxy_file(path: &Path) -> Result<bool, Error> {
    let io_err = |e| Error::Io { path: path.to_path_buf(), source: e };
    let mut file = File::open(path).map_err(io_err)?;
    let mut head = [0u8; HEAD];
    let mut got = 0;
    while got < HEAD {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    if got < 2 || head[..2] != [0x1f, 0x8b] {
        return Ok(is_httpproxy(&head[..got]));
    }
    let mut text = Vec::with_capacity(HEAD);
    let compressed = (&head[..got]).chain(file);
    match flate2::read::MultiGzDecoder::new(compressed).take(HEAD as u64).read_to_end(&mut text) {
        Ok(_) => {}
        // A damaged gzip is judged on what it gave; the reader reports the
        // damage. (flate2 calls a CRC mismatch InvalidInput.)
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
            ) => {}
        Err(e) => return Err(io_err(e)),
    }
    Ok(is_httpproxy(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_content() {
        let proxy = b"#Software: Microsoft Exchange Server\r\n#Version: 15.01.2375.007\r\n#Log-type: HttpProxy Logs\r\n#Date: 2023-01-09T19:00:00.130Z\r\n#Fields: DateTime,RequestId,UrlStem\r\n";
        assert!(is_httpproxy(proxy));
        assert!(is_httpproxy(b"\xEF\xBB\xBF#Fields: DateTime,RequestId,UrlStem\n"));
        assert!(is_httpproxy(b"2023-01-09T19:00:00.130Z,5e58f5e5-1ddc-48d3-82c6-0199bc121640,15,1\n"));
        assert!(is_httpproxy(b"\n2023-01-09T19:00:00Z,x\n"));
        let iis = b"#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n#Date: 2022-01-01 00:00:01\r\n#Fields: date time s-ip cs-method\r\n";
        assert!(!is_httpproxy(iis));
        assert!(!is_httpproxy(b"2022-01-01 00:01:24 ::1 POST /powershell\n"));
        assert!(!is_httpproxy(b""));
        // Another Exchange CSV log is not an HttpProxy log.
        assert!(!is_httpproxy(b"#Log-type: Rps Http Logs\r\n#Fields: DateTime,StartTime,RequestId,UrlStem\r\n"));
        assert!(!is_httpproxy(b"#Log-type: Rps Http Logs\r\n2023-01-09T19:00:00Z,x\n"));
        assert!(!is_httpproxy(b"#Fields: DateTime,RequestId,Method\r\n"));
        assert!(!is_httpproxy(b"2023-01-09T19:00:00.Z\n"));
    }
}
