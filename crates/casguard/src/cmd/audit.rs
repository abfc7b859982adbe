//! `casguard audit`: who reaches Exchange, with which client, over which
//! protocol, from where.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use audit::Report;

use super::{warn_malformed, Global, Inputs, Progress};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Html,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Where to write: a folder for csv, a file for table, json and html (default: stdout).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Treat malformed lines as an error (exit 2).
    #[arg(long)]
    pub strict: bool,
    /// Exit 1 when there are findings.
    #[arg(long)]
    pub fail_on_findings: bool,
    /// Users listed in the table.
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub top: usize,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    if args.format == Format::Csv && args.out.is_none() {
        anyhow::bail!("--format csv writes several files: give a folder with --out DIR");
    }
    if args.format == Format::Html && args.out.is_none() {
        anyhow::bail!("--format html writes a page: give a file with --out report.html");
    }
    let interpreter = args.inputs.interpreter()?;
    let files = args.inputs.files()?;
    let progress = Progress::new(&files, global);
    let (aggregate, stats) =
        audit::audit_files(&files, &args.inputs.scan_options()?, &interpreter, &|path| progress.file_done(path))?;
    progress.finish();

    let malformed: u64 = stats.iter().map(|f| f.malformed_total()).sum();
    if args.strict && malformed > 0 {
        warn_malformed(&stats, "error");
        anyhow::bail!("{malformed} malformed line(s) (--strict)");
    }
    warn_malformed(&stats, "warning");

    let report = Report::build(&aggregate, &stats, &interpreter);
    match args.format {
        Format::Csv => {
            let dir = args.out.as_deref().expect("checked above");
            let written = audit::csv_out::write_all(&report, &aggregate, dir)?;
            if !global.quiet {
                for path in written {
                    eprintln!("wrote {}", path.display());
                }
            }
        }
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&report)?;
            text.push('\n');
            emit(args.out.as_ref(), &text)?;
        }
        Format::Table => emit(args.out.as_ref(), &audit::table::render(&report, args.top))?,
        Format::Html => emit(args.out.as_ref(), &audit::html::audit_html(&report, &aggregate, interpreter.catalog()))?,
    }
    let people_findings = !report.findings.is_empty();
    Ok(if args.fail_on_findings && people_findings { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Write to the file given, or to stdout.
pub fn emit(out: Option<&PathBuf>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            Ok(())
        }
    }
}
