//! `casguard export`: one row per request, as Parquet partitioned by day for
//! DuckDB, Spark, Trino or DataFusion, or as JSON lines (ECS names) for a SIEM.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use policy::ReadyPolicy;
use w3c::ScanOptions;

use super::{warn_malformed, Global, Inputs, Progress};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `DIR/date=YYYY-MM-DD/part-N.parquet`, one row per request.
    Parquet,
    /// One JSON object per request and line, with ECS field names.
    Jsonl,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// A folder for parquet (required); a file for jsonl (default: stdout).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Fill the `decision` column with what this policy would do.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Known devices from `casguard inventory build` (for policies about new devices).
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub inventory: Option<PathBuf>,
    /// Rows per Parquet row group: what is held in memory per day and file.
    #[arg(long, default_value_t = 32_768, value_name = "N")]
    pub row_group_rows: usize,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let interpreter = Arc::new(args.inputs.interpreter()?);
    let files = args.inputs.files()?;
    let policy = args
        .policy
        .as_deref()
        .map(|path| ReadyPolicy::load(path, args.inventory.as_deref(), interpreter.clone()))
        .transpose()?;
    // One sink per file, files in parallel: each file's rows are read in order.
    let options = ScanOptions { parallel: false, ..args.inputs.scan_options()? };
    let progress = Progress::new(&files, global);
    let on_file = |path: &std::path::Path| progress.file_done(path);
    let stats = match args.format {
        Format::Parquet => {
            let dir = args.out.as_deref().context("--format parquet writes a folder: give it with --out DIR")?;
            super::check_out_folder(dir, "--format parquet")?;
            let rows = args.row_group_rows;
            let stats = export::export_parquet(&files, &options, &interpreter, policy.as_ref(), dir, rows, &on_file)?;
            if !global.quiet {
                let rows: u64 = stats.iter().map(|s| s.records()).sum();
                eprintln!("wrote {rows} row(s) under {}", dir.display());
            }
            stats
        }
        Format::Jsonl => {
            let (out, target): (Box<dyn Write + Send>, String) = match &args.out {
                Some(path) => {
                    super::check_out_file(path, "--format jsonl")?;
                    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                    (Box::new(file), path.display().to_string())
                }
                None => (Box::new(std::io::stdout()), "standard output".to_string()),
            };
            export::export_jsonl(&files, &options, &interpreter, policy.as_ref(), out, &target, &on_file)?
        }
    };
    progress.finish();
    super::refuse_nothing_read(&stats)?;
    warn_malformed(&stats, "warning");
    Ok(ExitCode::SUCCESS)
}
