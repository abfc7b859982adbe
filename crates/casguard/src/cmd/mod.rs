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
pub mod simulate;
pub mod watch;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ::audit::Aggregate;
use anyhow::Context;
use exchange::Interpreter;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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
    /// csv writes a folder and html a page: both need `--out`.
    pub fn check_out(self, out: Option<&Path>) -> anyhow::Result<()> {
        match (self, out) {
            (Format::Csv, None) => anyhow::bail!("--format csv writes several files: give a folder with --out DIR"),
            (Format::Html, None) => anyhow::bail!("--format html writes a page: give a file with --out report.html"),
            _ => Ok(()),
        }
    }
}

/// Log inputs and the data that gives them meaning.
#[derive(clap::Args, Debug)]
pub struct Inputs {
    /// Log files (plain or .gz) or folders, walked recursively.
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
        Ok(ScanOptions { default_fields, ..ScanOptions::default() })
    }

    pub fn files(&self) -> anyhow::Result<Vec<PathBuf>> {
        self.files_of(&self.paths)
    }

    /// The log files of `paths`, a part of the inputs (see [`devices::sort_inputs`]).
    pub fn files_of(&self, paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
        let files = w3c::collect_paths(paths)?;
        if files.is_empty() {
            anyhow::bail!("no log files (*.log, *.gz) under {}", display_paths(&self.paths));
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
    if !Field::ALL.iter().any(|&f| fields.index(f).is_some()) {
        anyhow::bail!(
            "--fields {names:?} names none of the columns casguard reads (date, time, cs-uri-stem, cs-username, \
             c-ip, cs(User-Agent), ...); `--fields default` gives IIS's default columns"
        );
    }
    Ok(fields)
}

/// Print the first malformed lines of each file as `file:line: reason: detail`
/// (`label` says whether they are an error), how to read lines that came
/// before any `#Fields` line, and the first warnings of each file.
pub fn warn_malformed(files: &[FileStats], label: &str) {
    for file in files {
        for w in &file.first_warnings {
            eprintln!("warning: {}:{}: {}: {}", file.path.display(), w.line, w.kind.as_str(), w.detail);
        }
        if file.warnings_total() > file.first_warnings.len() as u64 {
            let more = file.warnings_total() - file.first_warnings.len() as u64;
            eprintln!("warning: {}: {more} more warning(s) not shown", file.path.display());
        }
        for m in &file.first_malformed {
            eprintln!("{label}: {}:{}: {}: {}", file.path.display(), m.line, m.kind.as_str(), m.detail);
        }
        let shown = file.first_malformed.len() as u64;
        if file.malformed_total() > shown {
            eprintln!(
                "{label}: {}: {} more malformed line(s) not shown",
                file.path.display(),
                file.malformed_total() - shown
            );
        }
    }
    let headless: u64 = files.iter().map(|f| f.malformed_of(MalformedKind::NoFields)).sum();
    if headless > 0 {
        eprintln!(
            "hint: {headless} line(s) came before any #Fields line; if the header was cut off, \
             give their columns with --fields default (IIS's default columns) or --fields \"NAMES\""
        );
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
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
    Ok((interpreter, aggregate, stats))
}

/// A time given as RFC 3339 or a date, as Unix seconds.
pub fn parse_time(text: &str) -> anyhow::Result<i64> {
    w3c::time::parse_rfc3339(text)
        .with_context(|| format!("cannot read time '{text}': use RFC 3339 such as 2026-11-02T00:00:00Z, or a date"))
}

/// Write `text` to the file given, or to stdout.
pub fn emit(out: Option<&PathBuf>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display())),
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            Ok(())
        }
    }
}

/// A byte-count progress bar on stderr that shows itself only for runs
/// longer than two seconds, and never when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    enabled: bool,
}

impl Progress {
    pub fn new(files: &[PathBuf], global: &Global) -> Progress {
        let total: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}") {
            bar.set_style(style);
        }
        Progress { bar, started: Instant::now(), enabled: !global.quiet && std::io::stderr().is_terminal() }
    }

    pub fn file_done(&self, path: &Path) {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.bar.inc(len);
        if self.enabled && self.bar.is_hidden() && self.started.elapsed() > Duration::from_secs(2) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
