//! Telling an HttpProxy log from an IIS W3C log by its first lines, never by
//! its name: plain or gzip, with or without its header lines.

use std::io::{self, Read};
use std::path::Path;

use w3c::Error;

use w3c::lines::{after_nuls, fill, FIELDS_DIRECTIVE};

/// How much of a file is looked at: the five header lines and a data line.
const HEAD: usize = 8 << 10;

/// What a log is, by its first lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// An IIS W3C extended log, or lines of no other kind known here.
    W3c,
    /// An Exchange HttpProxy log.
    HttpProxy,
    /// A log casguard does not read, and what it is. Exchange's logging folder
    /// holds dozens of kinds beside HttpProxy's (RPC Client Access, EWS,
    /// MapiHttp, transport, ...), with the same header lines; read as W3C
    /// lines, each of theirs would only be a malformed line.
    Other(Box<str>),
}

/// What `head`, the first bytes of a log, is. An HttpProxy log:
/// `#Log-type: HttpProxy Logs`, or a comma-separated `#Fields` naming
/// `UrlStem` with no `#Log-type` saying otherwise, or (header lines cut off)
/// a first data line that starts with an ISO 8601 time and a comma, which no
/// W3C line does (W3C separates date and time with a space). Another
/// `#Log-type`, or another comma-separated `#Fields`, is another Exchange
/// log; a first line in NCSA or IIS's own format is no W3C log either.
pub fn log_kind(head: &[u8]) -> LogKind {
    if let Some(what) = archive(head) {
        return LogKind::Other(format!("{what} archive: extract it to read the logs inside").into());
    }
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut log_type: Option<&[u8]> = None;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // NUL bytes: a writer that crashed before writing what it had made room for.
        let line = after_nuls(line).trim_ascii_start();
        if line.is_empty() {
            continue;
        }
        if let Some(kind) = strip_prefix_ci(line, b"#Log-type:") {
            log_type = Some(kind.trim_ascii());
            continue;
        }
        if let Some(names) = line.strip_prefix(FIELDS_DIRECTIVE) {
            if let Some(kind) = log_type {
                return of_log_type(kind);
            }
            if !names.contains(&b',') {
                return LogKind::W3c;
            }
            if names.split(|&b| b == b',').any(|n| n.trim_ascii().eq_ignore_ascii_case(b"UrlStem")) {
                return LogKind::HttpProxy;
            }
            return LogKind::Other("comma-separated log with no UrlStem column".into());
        }
        if line.starts_with(b"#") {
            continue;
        }
        return match log_type {
            Some(kind) => of_log_type(kind),
            None if iso_time_then_comma(line) => LogKind::HttpProxy,
            None if is_ncsa(line) => LogKind::Other("log in NCSA common log format".into()),
            None if is_iis_native(line) => LogKind::Other("log in IIS log file format".into()),
            None => LogKind::W3c,
        };
    }
    log_type.map_or(LogKind::W3c, of_log_type)
}

/// The kind of archive `head` starts, by its magic bytes (a tar's stand at
/// byte 257, also inside a gzip).
fn archive(head: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 6] = [
        (b"PK\x03\x04", "zip"),
        (b"7z\xBC\xAF\x27\x1C", "7z"),
        (b"Rar!\x1A\x07", "RAR"),
        (b"BZh", "bzip2"),
        (b"\xFD7zXZ\x00", "xz"),
        (b"\x28\xB5\x2F\xFD", "zstd"),
    ];
    let found = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)).map(|(_, what)| *what);
    found.or_else(|| head.get(257..262).is_some_and(|m| m == b"ustar").then_some("tar"))
}

/// True when `head` is an HttpProxy log (see [`log_kind`]).
pub fn is_httpproxy(head: &[u8]) -> bool {
    log_kind(head) == LogKind::HttpProxy
}

/// `HttpProxy Logs` is HttpProxy's; every other `#Log-type` is another log of Exchange's.
fn of_log_type(kind: &[u8]) -> LogKind {
    if kind.eq_ignore_ascii_case(b"HttpProxy Logs") {
        return LogKind::HttpProxy;
    }
    let kind = String::from_utf8_lossy(&kind[..kind.len().min(80)]);
    LogKind::Other(format!("Exchange log of another kind (#Log-type: {kind})").into())
}

/// `host ident user [10/Oct/2000:13:55:36 -0700] "`: NCSA's common and combined formats.
fn is_ncsa(line: &[u8]) -> bool {
    let Some(open) = memchr::memchr(b'[', line) else { return false };
    let before = &line[..open];
    let words = before.split(|&b| b == b' ').filter(|w| !w.is_empty()).count();
    let shape = b"dd/aaa/dddd:dd:dd:dd ";
    let stamp = &line[open + 1..];
    words == 3
        && before.ends_with(b" ")
        && stamp.len() > shape.len()
        && shape.iter().zip(stamp).all(|(&s, &b)| match s {
            b'd' => b.is_ascii_digit(),
            b'a' => b.is_ascii_alphabetic(),
            _ => s == b,
        })
}

/// `client, user, 3/20/01, 7:55:20, W3SVC2, ...`: IIS's own comma-and-space
/// format (`in*.log`), fifteen fields or more, date and time third and fourth.
fn is_iis_native(line: &[u8]) -> bool {
    let mut fields = line.split(|&b| b == b',').map(<[u8]>::trim_ascii);
    let (Some(_), Some(_), Some(date), Some(time)) = (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let numbers = |value: &[u8], sep: u8| {
        let parts: Vec<&[u8]> = value.split(|&b| b == sep).collect();
        parts.len() == 3 && parts.iter().all(|p| (1..=4).contains(&p.len()) && p.iter().all(u8::is_ascii_digit))
    };
    numbers(date, b'/') && numbers(time, b':') && fields.count() >= 11
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

/// What the file at `path` is (see [`log_kind`]), by its first 8 KiB,
/// decompressed when it is gzip, decoded when it is UTF-16.
pub fn log_kind_file(path: &Path) -> Result<LogKind, Error> {
    let io_err = |e| Error::Io { path: path.to_path_buf(), source: e };
    let mut file = w3c::open_file(path)?;
    let mut head = [0u8; HEAD];
    let got = match fill(&mut file, &mut head) {
        (_, Some(e)) => return Err(io_err(e)),
        (got, None) => got,
    };
    if let Some(order) = w3c::utf16::mark(&head[..got]) {
        let mut text = Vec::with_capacity(HEAD);
        w3c::utf16::Utf16Reader::new(&head[2..got], order).read_to_end(&mut text).map_err(io_err)?;
        return Ok(log_kind(&text));
    }
    if got < 2 || head[..2] != [0x1f, 0x8b] {
        return Ok(log_kind(&head[..got]));
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
    Ok(log_kind(&text))
}

/// Whether the file at `path` is an HttpProxy log (see [`log_kind_file`]).
pub fn is_httpproxy_file(path: &Path) -> Result<bool, Error> {
    Ok(log_kind_file(path)? == LogKind::HttpProxy)
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

    #[test]
    fn logs_of_other_kinds() {
        let other = |head: &[u8]| match log_kind(head) {
            LogKind::Other(what) => what.to_string(),
            kind => panic!("{kind:?} for {:?}", String::from_utf8_lossy(head)),
        };
        // Exchange's other logs share HttpProxy's header lines.
        let rca = b"#Software: Microsoft Exchange Server\r\n#Version: 15.01.2507.006\r\n#Log-type: RCA Protocol Logs\r\n#Date: 2023-01-11T16:00:11.478Z\r\n#Fields: date-time,session-id,seq-number,client-name\r\n";
        assert!(other(rca).contains("RCA Protocol Logs"), "{}", other(rca));
        assert!(other(b"#Log-type: Ews Logs\r\n2023-01-09T19:00:00Z,x\n").contains("Ews Logs"));
        assert!(other(b"#Log-type: Rps Http Logs\r\n").contains("Rps Http Logs"));
        assert!(other(b"#Fields: DateTime,RequestId,Method\r\n").contains("no UrlStem"));
        // IIS's other formats, from IIS's documentation of each.
        let ncsa = b"172.21.13.45 - REDMOND\\fred [08/Apr/2001:17:39:04 -0800] \"GET /scripts/iisadmin/ism.dll?http/serv HTTP/1.0\" 200 3401\r\n";
        assert!(other(ncsa).contains("NCSA"));
        let native = b"192.168.114.201, -, 03/20/01, 7:55:20, W3SVC2, SALES1, 172.21.13.45, 4502, 163, 3223, 200, 0, GET, /DeptLogo.gif, -,\r\n";
        assert!(other(native).contains("IIS log file format"));
        // W3C lines without a header, and what merely looks alike, stay W3C.
        assert_eq!(log_kind(b"2022-01-01 00:01:24 ::1 POST /powershell - 444 - ::1 [x] - 200 0 0 1\n"), LogKind::W3c);
        assert_eq!(log_kind(b"2022-01-01 00:01:24 ::1 GET /owa/ a=[08/Apr/2001:17:39:04 - 443\n"), LogKind::W3c);
        assert_eq!(log_kind(b"#Fields: date time cs-uri-stem\r\n1, 2, 3/4/5, 6:7:8\n"), LogKind::W3c);
        assert_eq!(log_kind(b"#Log-type: HttpProxy Logs\r\n"), LogKind::HttpProxy);
        // Archives, by their magic bytes; a tar's stands at byte 257.
        assert!(other(b"PK\x03\x04\x14\x00").starts_with("zip archive"));
        assert!(other(b"7z\xBC\xAF\x27\x1C\x00\x04").starts_with("7z archive"));
        let mut tar = vec![0u8; 512];
        tar[..14].copy_from_slice(b"u_ex261102.log");
        tar[257..263].copy_from_slice(b"ustar\0");
        assert!(other(&tar).starts_with("tar archive"));
        assert_eq!(log_kind(b"PK,2026-11-02 00:00:01 10.0.0.5 GET /owa/\n"), LogKind::W3c);
    }
}
