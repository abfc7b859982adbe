//! The access log, in IIS W3C format so `casguard audit` and `simulate`
//! read it like any CAS log. Lines go through a bounded channel to a writer
//! thread that drains it every 50 ms; the request path never waits on the
//! disk nor wakes the writer. A queue full (65,536 lines or 64 MiB, while
//! the disk stalls) drops the line and counts it, and the event log says
//! so once, until the writer catches up.
//! One file per UTC day: `u_exYYMMDD_x.log`. Each request's line is begun
//! when it is decided and finished when its response ends ([`LogLine`]).

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::header::{HeaderMap, REFERER};

use crate::events::{EventSink, Level};
use crate::lock;
use crate::model::ConnInfo;
use crate::GatewayError;

/// Exchange's default fields, plus X-Forwarded-For and casguard's verdict.
pub const FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) \
cs(Referer) sc-status sc-substatus sc-win32-status time-taken X-Forwarded-For x-casguard-decision x-casguard-rule";

/// Lines queued at most.
const QUEUE: usize = 65_536;

/// Bytes of lines queued at most: lines are up to [`MAX_LINE`], so the
/// line count alone would let a stalled disk hold 4 GiB.
const QUEUE_BYTES: usize = 64 << 20;

/// Longest line written, without its line end: the longest `casguard audit`
/// and `simulate` read (`w3c::ScanOptions::max_line`, IIS's default
/// `maxLogLineLength`), which skip a longer one whole as malformed. A
/// client's head is at most `--max-header-bytes`, but a byte that is not
/// UTF-8 is written as U+FFFD, three bytes, so its fields can come to
/// three times that: see [`fit`].
pub const MAX_LINE: usize = 64 << 10;

/// Appends `value` as one W3C field: empty becomes `-`, spaces and control
/// characters become `+` (IIS's escape), so a field never splits.
pub fn push_field(line: &mut String, value: &str) {
    if !line.is_empty() {
        line.push(' ');
    }
    if value.is_empty() {
        line.push('-');
        return;
    }
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        line.push_str(value);
    } else if value.is_ascii() {
        line.extend(value.bytes().map(|b| if b.is_ascii_graphic() { char::from(b) } else { '+' }));
    } else {
        push_escaped(line, value);
    }
}

fn push_escaped(line: &mut String, value: &str) {
    for c in value.chars() {
        line.push(if c.is_whitespace() || c.is_control() { '+' } else { c });
    }
}

/// The sending side; shared by all connections.
pub struct AccessLog {
    tx: SyncSender<String>,
    queue: Arc<Queue>,
    events: EventSink,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// What the senders and the writer share.
struct Queue {
    /// Bytes of the lines sent and not yet written, at most `max_bytes`.
    bytes: AtomicUsize,
    max_bytes: usize,
    dropped: AtomicU64,
    /// Whether lines were dropped since the writer last caught up: the
    /// event log is told once, not once a line.
    dropping: AtomicBool,
}

impl AccessLog {
    /// Start the writer thread for `dir` (created if missing).
    pub fn start(dir: &Path, events: EventSink) -> Result<AccessLog, GatewayError> {
        std::fs::create_dir_all(dir).map_err(GatewayError::io(format!("cannot create {}", dir.display())))?;
        let (log, rx) = AccessLog::unstarted(QUEUE, QUEUE_BYTES, events);
        log.spawn_writer(dir, rx)?;
        Ok(log)
    }

    /// Its queue, not yet drained by a writer (a test's stalled disk).
    fn unstarted(lines: usize, max_bytes: usize, events: EventSink) -> (AccessLog, Receiver<String>) {
        let (tx, rx) = sync_channel::<String>(lines);
        let queue = Arc::new(Queue {
            bytes: AtomicUsize::new(0),
            max_bytes,
            dropped: AtomicU64::new(0),
            dropping: AtomicBool::new(false),
        });
        (AccessLog { tx, queue, events, writer: Mutex::new(None) }, rx)
    }

    fn spawn_writer(&self, dir: &Path, rx: Receiver<String>) -> Result<(), GatewayError> {
        let (dir, queue, events) = (dir.to_path_buf(), self.queue.clone(), self.events.clone());
        let writer = std::thread::Builder::new()
            .name("casguard-access-log".into())
            .spawn(move || write_loop(&dir, rx, &queue, &events))
            .map_err(GatewayError::io("cannot start the access log writer"))?;
        *lock(&self.writer) = Some(writer);
        Ok(())
    }

    /// Queue one line (without line end). Never blocks. A line the queue
    /// has no room for is dropped and counted.
    pub fn send(&self, line: String) {
        let len = line.len();
        if len > 0 {
            // Reserved before it is queued, released once written.
            let before = self.queue.bytes.fetch_add(len, Ordering::Relaxed);
            if before + len <= self.queue.max_bytes && self.tx.try_send(line).is_ok() {
                return;
            }
            self.queue.bytes.fetch_sub(len, Ordering::Relaxed);
        }
        self.queue.dropped.fetch_add(1, Ordering::Relaxed);
        if !self.queue.dropping.swap(true, Ordering::Relaxed) {
            (self.events)(
                Level::Warn,
                "access log: its writer is behind (the disk slow or stalled), so lines are dropped and counted \
                 (casguard_gateway_access_log_dropped_total) until it catches up",
            );
        }
    }

    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }

    /// Write what is queued and stop the writer; later lines are dropped.
    pub fn close(&self) {
        let writer = lock(&self.writer).take();
        if let Some(w) = writer {
            // An empty line is the stop mark (real lines are never empty).
            let _ = self.tx.send(String::new());
            let _ = w.join();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.close();
    }
}

struct Current {
    day: String,
    out: BufWriter<File>,
}

struct Writer<'a> {
    dir: &'a Path,
    events: &'a EventSink,
    current: Option<Current>,
    failing: bool,
}

impl Writer<'_> {
    fn write(&mut self, line: &str) {
        // The line starts with its UTC date: it picks the file.
        let day = line.get(..10).unwrap_or("1970-01-01");
        if self.current.as_ref().is_none_or(|c| c.day != day) {
            self.flush();
            self.current = None;
            match open_day(self.dir, day, line) {
                Ok(c) => {
                    self.current = Some(c);
                    self.failing = false;
                }
                Err(e) => return self.fail(&e),
            }
        }
        if let Some(c) = &mut self.current {
            if let Err(e) = c.out.write_all(line.as_bytes()).and_then(|_| c.out.write_all(b"\r\n")) {
                self.fail(&e);
            }
        }
    }

    fn fail(&mut self, e: &std::io::Error) {
        if !self.failing {
            (self.events)(Level::Error, &format!("access log: {e}"));
            self.failing = true;
        }
    }

    fn flush(&mut self) {
        if let Some(c) = &mut self.current {
            let _ = c.out.flush();
        }
    }
}

/// How often the writer wakes to write what is queued. Senders never wake
/// it: a wake-up per line would cost each request a system call.
const DRAIN_EVERY: Duration = Duration::from_millis(50);

fn write_loop(dir: &Path, rx: Receiver<String>, queue: &Queue, events: &EventSink) {
    let mut w = Writer { dir, events, current: None, failing: false };
    loop {
        match rx.try_recv() {
            // An empty line is the stop mark.
            Ok(line) if line.is_empty() => return w.flush(),
            Ok(line) => {
                w.write(&line);
                queue.bytes.fetch_sub(line.len(), Ordering::Relaxed);
            }
            Err(TryRecvError::Disconnected) => return w.flush(),
            Err(TryRecvError::Empty) => {
                // Caught up: the lines dropped are said, and later ones will be.
                if queue.dropping.swap(false, Ordering::Relaxed) {
                    let dropped = queue.dropped.load(Ordering::Relaxed);
                    events(
                        Level::Warn,
                        &format!("access log: writing again; {dropped} line(s) dropped since the start"),
                    );
                }
                // Flushed each round, so tail -f sees lines within DRAIN_EVERY.
                w.flush();
                std::thread::sleep(DRAIN_EVERY);
            }
        }
    }
}

/// `u_exYYMMDD_x.log`, as IIS names files with custom fields.
pub fn file_name(day: &str) -> String {
    let digits: String = day.chars().filter(char::is_ascii_digit).collect();
    format!("u_ex{}_x.log", digits.get(2..8).unwrap_or("000000"))
}

fn open_day(dir: &Path, day: &str, first_line: &str) -> std::io::Result<Current> {
    let path: PathBuf = dir.join(file_name(day));
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    // IIS writes the directives again whenever it (re)opens a file.
    let time = first_line.get(11..19).unwrap_or("00:00:00");
    write!(
        out,
        "#Software: casguard gateway {}\r\n#Version: 1.0\r\n#Date: {day} {time}\r\n#Fields: {FIELDS}\r\n",
        env!("CARGO_PKG_VERSION")
    )?;
    Ok(Current { day: day.to_string(), out })
}

// === The request's line ===

/// An access log line, written up to `cs(Referer)` when the request is
/// decided, completed with status and time taken when it ends.
pub(crate) struct LogLine {
    line: String,
    /// Usually empty, so no allocation.
    forwarded_for: String,
    deny: bool,
    rule: Option<Arc<str>>,
}

impl LogLine {
    pub(crate) fn new(
        m: &exchange::Request,
        conn: &ConnFields,
        now: i64,
        deny: bool,
        rule: Option<&Arc<str>>,
        headers: &HeaderMap,
    ) -> LogLine {
        let mut line = String::with_capacity(320);
        push_date_time(&mut line, now);
        line.push_str(&conn.server_ip);
        push_field(&mut line, &m.method);
        push_field(&mut line, &m.stem);
        // A query holds what the client put there, a password too.
        push_field(&mut line, &exchange::url::redact_secrets(&m.query));
        line.push_str(&conn.port);
        push_field(&mut line, &m.username);
        line.push_str(&conn.peer_ip);
        push_field(&mut line, &m.user_agent);
        let referer = headers.get(REFERER).map(|v| String::from_utf8_lossy(v.as_bytes()));
        let referer = referer.as_deref().unwrap_or("");
        let redacted = referer.split_once('?').and_then(|(page, query)| match exchange::url::redact_secrets(query) {
            Cow::Owned(query) => Some(format!("{page}?{query}")),
            Cow::Borrowed(_) => None,
        });
        push_field(&mut line, redacted.as_deref().unwrap_or(referer));
        LogLine { line, forwarded_for: m.forwarded_for.clone(), deny, rule: rule.cloned() }
    }

    pub(crate) fn finish(mut self, status: u16, substatus: u16, win32: u32, taken: Duration) -> String {
        let line = &mut self.line;
        let mut digits = itoa::Buffer::new();
        for n in [u64::from(status), u64::from(substatus), u64::from(win32), taken.as_millis() as u64] {
            line.push(' ');
            line.push_str(digits.format(n));
        }
        push_field(line, &self.forwarded_for);
        push_field(line, if self.deny { "deny" } else { "allow" });
        push_field(line, self.rule.as_deref().unwrap_or(""));
        if self.line.len() > MAX_LINE {
            fit(&mut self.line);
        }
        self.line
    }
}

/// Cut `line`'s longest fields of those a client writes (method, stem,
/// query, user, User-Agent, Referer, X-Forwarded-For) to one length, the
/// longest that leaves the line at most [`MAX_LINE`] bytes, rather than have
/// the audit skip the request whole (its user, its path, its decision). A
/// field within that length (at least a seventh of the line) stays whole,
/// and a cut one keeps its start, but for the user's account (see
/// [`cut_user`]).
#[cold]
fn fit(line: &mut String) {
    const USER: usize = 7;
    const CLIENT_FIELDS: [usize; 7] = [3, 4, 5, USER, 9, 10, 15];
    // Fields never hold a space (see `push_field`).
    let mut fields: Vec<&str> = line.split(' ').collect();
    let theirs: Vec<usize> = CLIENT_FIELDS.iter().copied().filter(|&i| i < fields.len()).collect();
    let mut lens: Vec<usize> = theirs.iter().map(|&i| fields[i].len()).collect();
    let mut room = MAX_LINE.saturating_sub(line.len() - lens.iter().sum::<usize>());
    lens.sort_unstable();
    let mut most = usize::MAX;
    for (k, &len) in lens.iter().enumerate() {
        let share = room / (lens.len() - k);
        if len > share {
            most = share;
            break;
        }
        room -= len;
    }
    for i in theirs {
        let field = fields[i];
        if field.len() > most {
            fields[i] = if i == USER { cut_user(field, most) } else { cut(field, most) };
        }
    }
    *line = fields.join(" ");
}

/// The start of `field`: at most `most` bytes, but at least one character
/// (an empty field is written `-`).
fn cut(field: &str, most: usize) -> &str {
    let first = field.chars().next().map_or(0, char::len_utf8);
    let mut keep = most.max(first);
    while !field.is_char_boundary(keep) {
        keep -= 1;
    }
    &field[..keep]
}

/// A user name cut to `most` bytes keeping the account the gateway judged
/// and the audit reads (`boss` of `DOMAIN\boss`, as
/// `exchange::identity::account_key` reads it): the name's end when the
/// account fits, with what of its domain fits before it, or else the
/// account's start. Its start alone would give a long domain's first bytes.
fn cut_user(field: &str, most: usize) -> &str {
    let account = field.rfind('\\').map_or(field, |i| &field[i + 1..]);
    if account.len() > most {
        return cut(account, most);
    }
    // At least one character, as `cut` keeps.
    let last = field.chars().next_back().map_or(0, char::len_utf8);
    let mut start = field.len() - most.max(last);
    while !field.is_char_boundary(start) {
        start += 1;
    }
    &field[start..]
}

/// The fields that are the same for every request of a connection, each
/// with its leading space: `s-ip`, `s-port` and `c-ip`.
pub(crate) struct ConnFields {
    server_ip: String,
    port: String,
    peer_ip: String,
}

impl ConnFields {
    pub(crate) fn new(info: &ConnInfo) -> ConnFields {
        ConnFields {
            server_ip: format!(" {}", info.local),
            port: format!(" {}", info.port),
            peer_ip: format!(" {}", info.peer),
        }
    }
}

/// `date time` (`2024-05-01 10:00:00`), formatted once a second per thread.
fn push_date_time(line: &mut String, now: i64) {
    thread_local! {
        static STAMP: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    STAMP.with_borrow_mut(|(secs, text)| {
        if *secs != now {
            text.clear();
            // `2024-05-01T10:00:00Z` becomes the `date` and `time` fields.
            w3c::time::write_rfc3339(now, text);
            text.truncate(19);
            text.replace_range(10..11, " ");
            *secs = now;
        }
        line.push_str(text);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_escape() {
        let mut l = String::new();
        push_field(&mut l, "2024-05-01");
        push_field(&mut l, "");
        push_field(&mut l, "Mozilla/5.0 (X11;\tLinux)\r\n");
        push_field(&mut l, "Caf\u{e9}\u{a0}iOS\u{7f}");
        assert_eq!(l, "2024-05-01 - Mozilla/5.0+(X11;+Linux)++ Caf\u{e9}+iOS+");
        assert_eq!(file_name("2024-05-01"), "u_ex240501_x.log");
    }

    #[test]
    fn a_line_too_long_for_the_audit_is_cut_in_its_longest_fields() {
        let head = "2024-05-01 10:00:00 10.0.0.1 GET /EWS/Exchange.asmx q=1 443 CONTOSO\\boss 10.0.0.9";
        let tail = ["403", "0", "0", "5", "-", "deny", "no+EWS"];
        let padded = |ua: &str, referer: &str| {
            let mut line = head.to_string();
            push_field(&mut line, ua);
            push_field(&mut line, referer);
            line.push(' ');
            line.push_str(&tail.join(" "));
            fit(&mut line);
            line
        };
        // Both padded: each cut to the same length, on a character boundary.
        let line = padded(&"\u{fffd}".repeat(30_000), &"r".repeat(MAX_LINE));
        assert!(line.len() <= MAX_LINE && line.len() > MAX_LINE - 8, "{}", line.len());
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 18);
        assert_eq!(fields[..9], head.split(' ').collect::<Vec<_>>());
        assert!(fields[9].len().abs_diff(fields[10].len()) < 3, "{} {}", fields[9].len(), fields[10].len());
        assert!(fields[9].chars().all(|c| c == '\u{fffd}') && fields[10].bytes().all(|b| b == b'r'));
        assert_eq!(fields[11..], tail);
        // One padded: the other stays whole.
        let ua = "Mozilla/5.0+(Windows+NT+10.0)";
        let line = padded(ua, &"\u{e9}".repeat(100_000));
        let fields: Vec<&str> = line.split(' ').collect();
        assert!(line.len() <= MAX_LINE && line.len() > MAX_LINE - 2, "{}", line.len());
        assert_eq!((fields.len(), fields[9]), (18, ua));
    }

    #[test]
    fn a_cut_user_name_keeps_the_account() {
        let (domain, wide) = ("D".repeat(40_000), "\u{e9}".repeat(20_000));
        for (user, account) in [
            (format!("{domain}\\boss"), "boss"),
            (format!("{wide}\\boss@contoso.com"), "boss"),
            (format!("boss@{domain}"), "boss"),
            (format!("CONTOSO\\boss@{domain}"), "boss"),
            (format!("{wide}\\"), ""),
        ] {
            let mut line = format!("2024-05-01 10:00:00 10.0.0.1 GET /EWS/Exchange.asmx - 443 {user} 10.0.0.9 ");
            line.push_str(&"\u{fffd}".repeat(10_000));
            line.push_str(" - 200 0 0 5 - allow -");
            fit(&mut line);
            assert!(line.len() <= MAX_LINE, "{}", line.len());
            let fields: Vec<&str> = line.split(' ').collect();
            assert!(fields[7].len() < user.len() && fields[8] == "10.0.0.9", "{}", fields[7].len());
            let mut key = String::new();
            exchange::identity::account_key(fields[7], &mut key);
            assert!(key == account, "read as {key:.40}");
        }
    }

    #[test]
    fn rotates_by_day() {
        let dir = tempfile::tempdir().unwrap();
        let log = AccessLog::start(dir.path(), crate::events::silent()).unwrap();
        log.send("2024-05-01 23:59:59 a".into());
        log.send("2024-05-02 00:00:01 b".into());
        log.close();
        let one = std::fs::read_to_string(dir.path().join("u_ex240501_x.log")).unwrap();
        let two = std::fs::read_to_string(dir.path().join("u_ex240502_x.log")).unwrap();
        assert!(one.starts_with("#Software") && one.ends_with("2024-05-01 23:59:59 a\r\n"), "{one}");
        assert!(two.contains("#Date: 2024-05-02 00:00:01\r\n#Fields: date time") && two.ends_with("b\r\n"), "{two}");
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn a_stalled_writer_holds_a_bounded_queue_and_drops_are_said_once() {
        let said = Arc::new(Mutex::new(Vec::<String>::new()));
        let events: EventSink = {
            let said = said.clone();
            Arc::new(move |_, m: &str| lock(&said).push(m.to_string()))
        };
        let line = |c: char, len: usize| format!("2024-05-01 10:00:00 {}", c.to_string().repeat(len - 20));
        // A disk that stalls: nothing drains the queue yet.
        let (log, rx) = AccessLog::unstarted(4, 100, events);
        log.send(line('a', 40));
        log.send(line('b', 39));
        log.send(line('c', 30));
        log.send(line('d', 21));
        log.send(line('e', 21));
        assert_eq!((log.dropped(), log.queue.bytes.load(Ordering::Relaxed)), (2, 100), "c and e: over 100 bytes");
        assert_eq!(lock(&said).len(), 1, "said once: {:?}", lock(&said));
        assert!(lock(&said)[0].contains("lines are dropped"), "{:?}", lock(&said));
        // The disk back: the writer catches up, says so, and lines fit again.
        let dir = tempfile::tempdir().unwrap();
        log.spawn_writer(dir.path(), rx).unwrap();
        let start = std::time::Instant::now();
        while lock(&said).len() < 2 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            lock(&said).get(1).is_some_and(|m| m.contains("writing again; 2 line(s) dropped")),
            "{:?}",
            lock(&said)
        );
        assert_eq!(log.queue.bytes.load(Ordering::Relaxed), 0);
        log.send(line('f', 100));
        log.close();
        let written = std::fs::read_to_string(dir.path().join("u_ex240501_x.log")).unwrap();
        let kept: Vec<char> =
            written.lines().filter(|l| !l.starts_with('#')).map(|l| l.as_bytes()[20].into()).collect();
        assert_eq!(kept, ['a', 'b', 'd', 'f']);
        assert_eq!((log.dropped(), lock(&said).len()), (2, 2));
        // Lines count too: four at most here.
        let (log, _stalled) = AccessLog::unstarted(4, 100, crate::events::silent());
        for c in ['a', 'b', 'c', 'd', 'e'] {
            log.send(line(c, 21));
        }
        assert_eq!((log.dropped(), log.queue.bytes.load(Ordering::Relaxed)), (1, 84));
    }
}
