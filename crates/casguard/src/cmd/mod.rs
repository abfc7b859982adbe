//! One module per subcommand, plus what they share: the arguments that name
//! inputs, times, malformed-line warnings and progress on stderr, here, and
//! the device exports, in [`devices`]. Each subcommand module parses its
//! arguments and calls the libraries; none imports another.

pub mod audit;
pub mod devices;
pub mod emit;
pub mod export;
pub mod gateway;
pub mod inventory;
pub mod policy;
pub mod posture;
mod pretty_json;
mod progress;
pub mod ranges;
pub mod simulate;
pub mod watch;

pub use pretty_json::pretty_json;
pub use progress::Progress;

use std::path::{Path, PathBuf};

use ::audit::scan::{Accumulate, Accumulator};
use ::audit::Aggregate;
use anyhow::Context;
use exchange::Interpreter;
use w3c::{Field, Fields, FileStats, MalformedKind, ScanOptions};

/// Options every subcommand sees.
pub struct Global {
    pub quiet: bool,
    /// `--threads`: rayon's pool is already sized from it; the gateway sizes its runtime.
    pub threads: Option<usize>,
}

/// The data that gives requests their meaning: networks and clients.
#[derive(clap::Args, Debug)]
pub struct Meaning {
    /// Named network ranges: Azure service tags, AWS ip-ranges.json, Google cloud.json, or `CIDR name` lines.
    #[arg(long = "ranges", value_name = "FILE")]
    pub ranges: Vec<PathBuf>,
    /// Client catalog to use instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

impl Meaning {
    pub fn interpreter(&self) -> anyhow::Result<Interpreter> {
        Ok(Interpreter::load(self.catalog.as_deref(), &self.ranges)?)
    }
}

/// How a report is written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Html,
}

impl Format {
    /// csv writes a folder and html a page: both need `--out`. An `--out`
    /// that cannot be what the format writes (a file for csv; a folder, or a
    /// file in a folder that does not exist, for the others) is refused here,
    /// before the logs are read, not after.
    pub fn check_out(self, out: Option<&Path>) -> anyhow::Result<()> {
        match (self, out) {
            (Format::Csv, None) => anyhow::bail!("--format csv writes several files: give a folder with --out DIR"),
            (Format::Html, None) => anyhow::bail!("--format html writes a page: give a file with --out report.html"),
            (Format::Csv, Some(dir)) => check_out_folder(dir, "--format csv"),
            (_, Some(file)) => {
                // The name clap gives the value, as the user typed it.
                let format = clap::ValueEnum::to_possible_value(&self).map(|v| format!("--format {}", v.get_name()));
                check_out_file(file, &format.unwrap_or_default())
            }
            _ => Ok(()),
        }
    }
}

/// Refuses an `--out` file that is a folder, whose folder does not exist,
/// or that cannot be written there, naming it, before any log is read.
pub fn check_out_file(file: &Path, what: &str) -> anyhow::Result<()> {
    if file.is_dir() {
        anyhow::bail!("--out {} is a folder: {what} writes one file, give its name", file.display());
    }
    if holds_a_log(file) {
        // `--out` then a log's path, one word early: the log would be lost
        // (export truncates its --out before reading its inputs).
        anyhow::bail!("--out {} holds a log: casguard does not write over one, give another name", file.display());
    }
    check_file_writable(file, "--out")
}

/// Whether `file` starts as an IIS or HttpProxy log, or a gzip file, does.
/// Only a regular file is opened (a pipe's open would wait for a writer).
fn holds_a_log(file: &Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(file).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = Vec::with_capacity(16);
    let read = std::fs::File::open(file).and_then(|f| f.take(16).read_to_end(&mut head));
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&head);
    read.is_ok()
        && (head.starts_with(&[0x1f, 0x8b])
            || [&b"#Software:"[..], b"#Version:", b"#Fields:", b"#Date:", b"#Log-type:"]
                .iter()
                .any(|d| head.starts_with(d)))
}

/// Refuses a file the run is to write (`flag` names it: `--out`,
/// `--state`) whose folder does not exist, or which the system would not
/// let it write (a read-only share, a folder without write permission),
/// naming it and the system's reason, before any log is read rather than
/// after the whole scan. A file that exists is opened for writing and
/// left as it is; one that does not is created and removed. Anything but
/// a regular file (`/dev/stdout`, a pipe) is left to the writer.
pub fn check_file_writable(file: &Path, flag: &str) -> anyhow::Result<()> {
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            let why = if parent.exists() { "is not a folder" } else { "does not exist" };
            anyhow::bail!("{flag} {}: {} {why}", file.display(), parent.display());
        }
    }
    let opened = match std::fs::metadata(file) {
        Ok(meta) if meta.is_file() => std::fs::OpenOptions::new().write(true).open(file).map(drop),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new().write(true).create_new(true).open(file).map(|probe| {
                drop(probe); // closed first: Windows would keep it until then
                let _ = std::fs::remove_file(file);
            })
        }
        Err(e) => Err(e),
    };
    opened.map_err(|e| anyhow::anyhow!("{flag} {}: cannot write there: {e}", file.display()))
}

/// Refuses an `--out` folder that is a file (rather than the system's
/// "File exists" when the folder is created), or where no file can be
/// created (the folder, or the nearest folder above it that exists, when
/// the run is to create it), naming it, before any log is read.
pub fn check_out_folder(dir: &Path, what: &str) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!("--out {} is a file: {what} writes its files into a folder", dir.display());
    }
    check_folder_writable(dir, "--out")
}

/// Refuses a folder the run is to write files in (`flag` names it: `--out`,
/// `--access-log`) where the system will not let it create one: in the
/// folder, or when it does not exist yet, in the nearest folder above it
/// that does. The probe file is removed at once.
pub fn check_folder_writable(dir: &Path, flag: &str) -> anyhow::Result<()> {
    let mut base = dir;
    while !base.exists() {
        match base.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => base = parent,
            _ => {
                base = Path::new(".");
                break;
            }
        }
    }
    if !base.is_dir() {
        anyhow::bail!("{flag} {}: {} is not a folder", dir.display(), base.display());
    }
    let probe = base.join(format!(".casguard-write-test-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(file) => {
            drop(file); // closed first: Windows would keep it until then
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => anyhow::bail!("{flag} {}: cannot write in {}: {e}", dir.display(), base.display()),
    }
}

/// Log inputs and the data that gives them meaning.
#[derive(clap::Args, Debug)]
pub struct Inputs {
    /// Log files (plain or .gz) or folders, walked recursively; `*` and `?` are
    /// expanded here (PowerShell and cmd pass them on as typed).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub meaning: Meaning,
    /// Columns of lines that come before any `#Fields` line, for files whose
    /// header was cut off: `default` for IIS's default columns (Exchange keeps
    /// them), or names as in a `#Fields` line, e.g. "date time c-ip cs-username".
    #[arg(long, value_name = "NAMES")]
    pub fields: Option<String>,
}

impl Inputs {
    pub fn interpreter(&self) -> anyhow::Result<Interpreter> {
        self.meaning.interpreter()
    }

    /// How to read the files: `--fields` gives lines before any `#Fields` their columns.
    pub fn scan_options(&self) -> anyhow::Result<ScanOptions> {
        let default_fields = self.fields.as_deref().map(default_fields).transpose()?;
        Ok(ScanOptions { default_fields, max_reported: MALFORMED_KEPT, ..ScanOptions::default() })
    }

    pub fn files(&self) -> anyhow::Result<Vec<PathBuf>> {
        self.files_of(&self.paths)
    }

    /// Replace each path that does not exist and holds `*` or `?` by the
    /// paths it matches, sorted: PowerShell and cmd hand `u_ex2611*.log` on
    /// as typed (Log Parser's `FROM` takes such names), and so does a Unix
    /// shell when the name is quoted. `[` and `]` stay literal, as Windows
    /// names may hold them. A pattern that matches nothing is refused.
    pub fn expand_wildcards(&mut self) -> anyhow::Result<()> {
        let mut expanded = Vec::with_capacity(self.paths.len());
        for path in std::mem::take(&mut self.paths) {
            let text = path.to_string_lossy();
            if path.exists() || !text.contains(['*', '?']) {
                expanded.push(path);
                continue;
            }
            let mut pattern = String::with_capacity(text.len() + 8);
            for c in text.chars() {
                match c {
                    '[' => pattern.push_str("[[]"),
                    ']' => pattern.push_str("[]]"),
                    c => pattern.push(c),
                }
            }
            let options = glob::MatchOptions {
                case_sensitive: !cfg!(windows),
                require_literal_separator: true,
                require_literal_leading_dot: false,
            };
            let mut matched: Vec<PathBuf> = glob::glob_with(&pattern, options)
                .map_err(|e| anyhow::anyhow!("{}: not a wildcard casguard can read: {e}", path.display()))?
                .filter_map(Result::ok)
                .collect();
            if matched.is_empty() {
                anyhow::bail!("{}: no file or folder matches", path.display());
            }
            matched.sort();
            expanded.extend(matched);
        }
        self.paths = expanded;
        Ok(())
    }

    /// The log files of `paths`, a part of the inputs (see [`devices::sort_inputs`]).
    pub fn files_of(&self, paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
        // Archives too, so that the logs inside one are named as not read.
        let files = w3c::collect_paths_named(paths, |n| w3c::is_log_name(n) || w3c::is_archive_name(n))?;
        if files.iter().all(|f| f.file_name().is_some_and(w3c::is_archive_name)) {
            let archives = match files.len() {
                0 => String::new(),
                n => {
                    format!(" ({n} archive(s) there, such as {}: extract them to read their logs)", files[0].display())
                }
            };
            anyhow::bail!("no log files (*.log, *.gz) under {}{archives}", display_paths(&self.paths));
        }
        Ok(files)
    }
}

/// The columns `--fields` names: `default`, or a `#Fields` line's names.
fn default_fields(names: &str) -> anyhow::Result<Fields> {
    let names = names.trim();
    let names = if names.eq_ignore_ascii_case("default") {
        w3c::IIS_DEFAULT_FIELDS
    } else {
        names.strip_prefix("#Fields:").unwrap_or(names)
    };
    let fields = Fields::parse(names.as_bytes());
    // `date,time,c-ip` is one name to a `#Fields` line: say why nothing is found.
    let commas = if names.contains(',') { "; separate the names with spaces, as a #Fields line does" } else { "" };
    if !Field::ALL.iter().any(|&f| fields.index(f).is_some()) {
        anyhow::bail!(
            "--fields {names:?} names none of the columns casguard reads (date time cs-uri-stem cs-username c-ip \
             cs(User-Agent) ...){commas}; `--fields default` gives IIS's default columns"
        );
    }
    if fields.index(Field::Date).is_none() || fields.index(Field::Time).is_none() {
        anyhow::bail!("--fields {names:?} needs `date` and `time`: no line is read without its time{commas}");
    }
    // IIS's own W3C fields are a fixed list (all of them `Field`s but the
    // cookie); another name shaped like one is likely a typo, which would
    // leave that column unread without a word. Custom fields are named freely.
    for name in fields.names() {
        let lower = name.to_ascii_lowercase();
        let standard_shape = ["c-", "s-", "cs-", "sc-"].iter().any(|p| lower.starts_with(p));
        if standard_shape && Field::from_name(name).is_none() {
            eprintln!("warning: --fields: `{name}` is not one of IIS's W3C fields; its column is not read");
        }
    }
    Ok(fields)
}

/// Malformed lines named on stderr per run; the rest are counted in one line.
pub const MALFORMED_SHOWN: usize = 5;
/// Malformed lines kept with their detail per file, for the JSON report.
pub const MALFORMED_KEPT: usize = 100;

/// Print which files were not read (logs of another kind), the first
/// warnings of each file, then the first [`MALFORMED_SHOWN`]
/// malformed lines of the run as `file:line: reason: detail` (`label` says
/// whether they are an error), then one line for the rest, and how to read
/// lines that came before any `#Fields` line. The JSON report lists the first
/// [`MALFORMED_KEPT`] of each file and counts them all.
pub fn warn_malformed(files: &[FileStats], label: &str) {
    for (why, n, first) in ::audit::report::unread_files(files) {
        eprintln!("warning: {n} file(s) not read: {why}, such as {}", first.display());
    }
    let mut shown = 0;
    for file in files {
        for w in &file.first_warnings {
            eprintln!("warning: {}:{}: {}: {}", file.path.display(), w.line, w.kind.as_str(), w.detail);
        }
        if file.warnings_total() > file.first_warnings.len() as u64 {
            let more = file.warnings_total() - file.first_warnings.len() as u64;
            eprintln!("warning: {}: {more} more warning(s) not shown", file.path.display());
        }
    }
    for file in files {
        for m in file.first_malformed.iter().take(MALFORMED_SHOWN - shown) {
            eprintln!("{label}: {}:{}: {}: {}", file.path.display(), m.line, m.kind.as_str(), m.detail);
            shown += 1;
        }
    }
    let total: u64 = files.iter().map(|f| f.malformed_total()).sum();
    let rest = total - shown as u64;
    if rest > 0 {
        let in_files = files.iter().filter(|f| f.malformed_total() > 0).count();
        eprintln!(
            "{label}: {rest} more malformed line(s), {total} in all in {in_files} file(s); \
             --format json lists the first {MALFORMED_KEPT} of each file"
        );
    }
    let headless: u64 = files.iter().map(|f| f.malformed_of(MalformedKind::NoFields)).sum();
    if headless > 0 {
        eprintln!(
            "hint: {headless} line(s) came before any #Fields line; if the header was cut off, \
             give their columns with --fields default (IIS's default columns) or --fields \"NAMES\""
        );
    }
}

pub fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Read `files`, the inputs' log files (see [`devices::sort_inputs`]), into
/// one aggregate, with progress; malformed lines are left for the caller to
/// report.
pub fn aggregate_files(
    inputs: &Inputs,
    files: &[PathBuf],
    global: &Global,
) -> anyhow::Result<(Interpreter, Aggregate, Vec<FileStats>)> {
    let interpreter = inputs.interpreter()?;
    let progress = Progress::new(files, global);
    let (aggregate, stats) =
        ::audit::audit_files(files, &inputs.scan_options()?, &interpreter, &|path| progress.file_done(path))?;
    progress.finish();
    refuse_nothing_read(&stats)?;
    Ok((interpreter, aggregate, stats))
}

/// Refuses a run in which every file found was of another kind (Exchange's
/// other logs, IIS's NCSA format, archives), naming them: its report would
/// be empty, which reads as all clear (no findings, exit 0), as an empty
/// folder does not.
pub fn refuse_nothing_read(stats: &[FileStats]) -> anyhow::Result<()> {
    if stats.is_empty() || stats.iter().any(|f| f.not_read.is_none()) {
        return Ok(());
    }
    let kinds: Vec<String> = ::audit::report::unread_files(stats)
        .iter()
        .map(|(why, n, first)| format!("{n} × {why}, such as {}", first.display()))
        .collect();
    anyhow::bail!(
        "none of the {} file(s) found is an IIS W3C or HttpProxy log ({}): give the IIS log folders (W3SVC*) or \
         Exchange's Logging\\HttpProxy",
        stats.len(),
        kinds.join("; ")
    )
}

/// How a report is written, and whether a malformed line fails the run.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Where to write: a folder for csv, a file for table, json and html (default: stdout).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Treat malformed lines as an error (exit 2).
    #[arg(long)]
    pub strict: bool,
}

impl ReportArgs {
    /// Write `report` in `--format`: CSV files into the `--out` folder (each
    /// named on stderr unless quiet) by `csv`, else the text `table`, `html`
    /// or serde's JSON makes, to `--out` or stdout. (`Format::check_out` has
    /// checked `--out`.)
    pub fn write<R: serde::Serialize>(
        &self,
        global: &Global,
        report: &R,
        csv: impl FnOnce(&Path) -> Result<Vec<PathBuf>, ::audit::csv_out::CsvError>,
        table: impl FnOnce() -> String,
        html: impl FnOnce() -> String,
    ) -> anyhow::Result<()> {
        let out = self.out.as_ref();
        let text = match self.format {
            Format::Csv => {
                let dir = out.expect("--format csv needs --out, checked before the scan");
                for path in csv(dir)? {
                    if !global.quiet {
                        eprintln!("wrote {}", path.display());
                    }
                }
                return Ok(());
            }
            Format::Table => table(),
            Format::Html => html(),
            Format::Json => return emit_bytes(out, &pretty_json(report)?),
        };
        emit(out, &text)
    }
}

/// [`scan_checked`] into one `T` per thread that judges each request
/// against `context` (a policy, or the pair of `simulate --baseline`),
/// merged into one.
pub fn scan_against<C, T>(
    files: &[PathBuf],
    options: &w3c::ScanOptions,
    interpreter: &Interpreter,
    context: &C,
    global: &Global,
    strict: bool,
    merge: fn(&mut T, T),
) -> anyhow::Result<(T, Vec<FileStats>)>
where
    C: Sync,
    T: Accumulate<C> + Default + Send,
{
    let (collector, stats) = scan_checked(
        files,
        options,
        interpreter,
        global,
        strict,
        || Accumulator::<C, T>::new(context),
        |a: &mut Accumulator<'_, C, T>, b: Accumulator<'_, C, T>| merge(&mut a.state, b.state),
    )?;
    Ok((collector.state, stats))
}

/// Read `files` into sinks made by `make` and combined with `merge`, with
/// progress, then report malformed lines: with `strict` any is an error.
pub fn scan_checked<S, F, M>(
    files: &[PathBuf],
    options: &w3c::ScanOptions,
    interpreter: &Interpreter,
    global: &Global,
    strict: bool,
    make: F,
    merge: M,
) -> anyhow::Result<(S, Vec<FileStats>)>
where
    S: ::audit::scan::SendSink,
    S::Error: std::error::Error + Sync + 'static,
    F: Fn() -> S + Sync,
    M: Fn(&mut S, S),
{
    let progress = Progress::new(files, global);
    let (sink, stats) =
        ::audit::scan_requests(files, options, interpreter, make, merge, &|path| progress.file_done(path))?;
    progress.finish();
    refuse_nothing_read(&stats)?;
    let malformed: u64 = stats.iter().map(|f| f.malformed_total()).sum();
    if strict && malformed > 0 {
        warn_malformed(&stats, "error");
        anyhow::bail!("{malformed} malformed line(s) (--strict)");
    }
    warn_malformed(&stats, "warning");
    Ok((sink, stats))
}

/// When failed sign-ins make a finding (password spray, brute force).
#[derive(clap::Args, Debug)]
pub struct SignInLimits {
    /// Distinct users one source may fail to sign in as within --spray-window
    /// before it is a password spray (default from Microsoft Sentinel's
    /// "Password spray attack against Microsoft Entra ID application").
    #[arg(long, default_value_t = 5, value_name = "USERS")]
    pub spray_users: usize,
    /// The spray window: 20m, 1h, 90s.
    #[arg(long, default_value = "20m", value_name = "DURATION", value_parser = parse_window)]
    pub spray_window: i64,
    /// Failed sign-ins against one user within --brute-force-window that make
    /// a brute force (default from Sentinel's "High count of failed logons by a user").
    #[arg(long, default_value_t = 100, value_name = "FAILURES")]
    pub brute_force_failures: u64,
    /// The brute-force window: 10m, 1h, 90s.
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = parse_window)]
    pub brute_force_window: i64,
}

impl SignInLimits {
    pub fn thresholds(&self) -> anyhow::Result<::audit::Thresholds> {
        let t = ::audit::Thresholds {
            spray_users: self.spray_users,
            spray_window: self.spray_window,
            brute_force_failures: self.brute_force_failures,
            brute_force_window: self.brute_force_window,
        };
        t.check()?;
        Ok(t)
    }
}

/// A window length in seconds: a number with `s`, `m` or `h` (minutes when bare).
pub fn parse_window(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, "m"),
    };
    let n: i64 = digits.parse().map_err(|_| format!("'{text}' is not a duration such as 20m, 1h or 90s"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("'{text}': the unit is s, m or h")),
    };
    n.checked_mul(scale).ok_or_else(|| format!("'{text}' is too long"))
}

/// A time given as RFC 3339 or a date, as Unix seconds.
pub fn parse_time(text: &str) -> anyhow::Result<i64> {
    w3c::time::parse_rfc3339(text)
        .with_context(|| format!("cannot read time '{text}': use RFC 3339 such as 2026-11-02T00:00:00Z, or a date"))
}

/// Write `text` to the file given, or to stdout.
pub fn emit(out: Option<&PathBuf>, text: &str) -> anyhow::Result<()> {
    emit_bytes(out, text.as_bytes())
}

/// [`emit`] for bytes.
pub fn emit_bytes(out: Option<&PathBuf>, bytes: &[u8]) -> anyhow::Result<()> {
    match out {
        Some(path) => std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display())),
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes)?;
            stdout.flush()?;
            Ok(())
        }
    }
}
