//! Following a log as it is written: what `casguard watch` reads.

use std::io::Write;
use std::path::{Path, PathBuf};

use w3c::tail::{follow, Position};
use w3c::{Field, MalformedKind, Record, ScanOptions};

const HEADER: &str = "#Software: Microsoft Internet Information Services 10.0\r\n#Fields: date time cs-username\r\n";

fn opts() -> ScanOptions {
    ScanOptions { parallel: false, ..ScanOptions::default() }
}

/// The user names of the lines `follow` hands over, and the statistics.
fn users(path: &Path, at: &mut Position, opts: &ScanOptions) -> (Vec<String>, w3c::FileStats) {
    let mut users = Vec::new();
    let stats = follow(path, at, opts, &mut |r: &Record<'_>| {
        users.push(String::from_utf8_lossy(r.get(Field::Username).unwrap_or(b"-")).into_owned());
    })
    .unwrap();
    (users, stats)
}

fn line(user: &str) -> String {
    format!("2026-11-02 10:00:00 {user}\r\n")
}

/// A folder holding `u_ex261102.log` with `text`.
fn log(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("u_ex261102.log");
    append(&log, text);
    (dir, log)
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new().append(true).create(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

#[test]
fn follow_reads_appended_complete_lines_with_the_fields_in_force() {
    let (_dir, log) = log(&format!("{HEADER}{}2026-11-02 10:00:01 bo", line("alice")));
    let mut at = Position::default();
    assert_eq!(users(&log, &mut at, &opts()).0, ["alice"]);
    let fields = at.fields.clone().expect("the #Fields line is carried over");
    assert_eq!(fields.names().collect::<Vec<_>>(), ["date", "time", "cs-username"]);
    // The partial line is read once complete; the header is not read again.
    append(&log, &format!("b\r\n{}", line("carol")));
    let (got, stats) = users(&log, &mut at, &opts());
    assert_eq!(got, ["bob", "carol"]);
    assert_eq!((stats.directives, stats.lines), (0, 2));
    assert_eq!(at.offset, std::fs::metadata(&log).unwrap().len());
    assert_eq!(at.line, 5);
    // A new #Fields line changes the columns of the lines after it.
    append(&log, "#Fields: cs-username date time\r\ndave 2026-11-02 10:00:03\r\n");
    assert_eq!(users(&log, &mut at, &opts()).0, ["dave"]);
    assert_eq!(at.fields.unwrap().index(Field::Username), Some(0));
}

#[test]
fn follow_resumes_from_a_stored_position() {
    let (_dir, log) = log(&format!("{HEADER}{}", line("alice")));
    let mut first = Position::default();
    users(&log, &mut first, &opts());
    append(&log, &line("bob"));
    // What a state file keeps: the numbers, and the directive as text.
    let fields = first.fields.as_ref().unwrap().names().collect::<Vec<_>>().join(" ");
    let (device, index) = first.id.unwrap().parts();
    let mut resumed = Position {
        offset: first.offset,
        line: first.line,
        fields: Some(w3c::Fields::parse(fields.as_bytes())),
        skipping: false,
        id: Some(w3c::tail::FileId::from_parts(device, index)),
        check: first.check,
    };
    assert_eq!(users(&log, &mut resumed, &opts()).0, ["bob"]);
}

#[test]
fn watch_reads_a_log_replaced_by_mv() {
    let (dir, log) = log(&format!("{HEADER}{}{}", line("alice"), line("bob")));
    let mut at = Position::default();
    users(&log, &mut at, &opts());
    // A new file, longer than what was read, moved over the old one.
    let new = dir.path().join("new.tmp");
    append(&new, &format!("{HEADER}{}{}{}", line("carol"), line("dave"), line("erin")));
    std::fs::rename(&new, &log).unwrap();
    assert_eq!(users(&log, &mut at, &opts()).0, ["carol", "dave", "erin"]);
}

#[test]
fn watch_reads_a_log_truncated_and_rewritten_longer() {
    let (_dir, log) = log(&format!("{HEADER}{}", line("alice")));
    let mut at = Position::default();
    users(&log, &mut at, &opts());
    // The same file (same inode), emptied and written again past the old end.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap()
        .write_all(format!("{HEADER}{}{}", line("bob"), line("carol")).as_bytes())
        .unwrap();
    assert_eq!(users(&log, &mut at, &opts()).0, ["bob", "carol"]);
    // Shorter than what was read: read again from the start too.
    std::fs::write(&log, format!("{HEADER}{}", line("x"))).unwrap();
    assert_eq!(users(&log, &mut at, &opts()).0, ["x"]);
}

#[test]
fn at_end_starts_after_the_last_complete_line() {
    let (_dir, log) = log(&format!("{HEADER}{}2026-11-02 10:00:01 bo", line("alice")));
    let mut at = Position::at_end(&log, &opts()).unwrap();
    assert!(at.fields.is_some());
    append(&log, &format!("b\r\n{}", line("carol")));
    let (got, stats) = users(&log, &mut at, &opts());
    assert_eq!(got, ["bob", "carol"]);
    assert_eq!(stats.malformed_total(), 0);
}

#[test]
fn a_line_too_long_is_counted_once_and_skipped_across_calls() {
    let o = ScanOptions { max_line: 60, ..opts() };
    let (_dir, log) = log(&format!("{HEADER}{}2026-11-02 10:00:01 {}", line("alice"), "x".repeat(80)));
    let mut at = Position::default();
    let (got, stats) = users(&log, &mut at, &o);
    assert_eq!(got, ["alice"]);
    assert_eq!(stats.malformed_of(MalformedKind::TooLong), 1);
    assert_eq!(stats.first_malformed[0].line, 4);
    append(&log, &format!("{}\r\n{}", "y".repeat(30), line("bob")));
    let (got, stats) = users(&log, &mut at, &o);
    assert_eq!(got, ["bob"]);
    assert_eq!(stats.malformed_total(), 0);
}

#[test]
fn a_missing_file_reads_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut at = Position::default();
    let (got, stats) = users(&dir.path().join("gone.log"), &mut at, &opts());
    assert!(got.is_empty());
    assert_eq!(stats.lines, 0);
}
