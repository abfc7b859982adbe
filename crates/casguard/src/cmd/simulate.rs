//! `casguard simulate`: replay the logs through a policy and show whom it
//! would cut off, by which rule, and which other doors stay open.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use audit::simulate::{inventory_before, SimCollector, SimReport};
use policy::{Inventory, Policy, ReadyPolicy};

use super::{emit, parse_time, warn_malformed, Format, Global, Inputs, Progress};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Devices first seen in these logs before TIME are known (RFC 3339 or a date).
    #[arg(long, value_name = "TIME", conflicts_with = "inventory")]
    pub known_before: Option<String>,
    /// Known devices from `casguard inventory build`.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: Inputs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file instead of stdout (a folder for csv).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Treat malformed lines as an error (exit 2).
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    args.format.check_out(args.out.as_deref())?;
    let interpreter = Arc::new(args.inputs.interpreter()?);
    let policy = Policy::load_with(&args.policy, interpreter.catalog(), interpreter.networks())?;
    let files = args.inputs.files()?;
    let options = args.inputs.scan_options()?;

    let inventory = match (&args.inventory, &args.known_before) {
        (Some(path), _) => Some(Inventory::load(path)?),
        (None, Some(time)) => {
            // First pass: when each device was first seen.
            let cutover = parse_time(time)?;
            let (aggregate, _) = audit::audit_files(&files, &options, &interpreter, &|_| {})?;
            Some(inventory_before(&aggregate, cutover))
        }
        (None, None) => None,
    };
    let policy = ReadyPolicy::new(policy, inventory.map(Arc::new), interpreter)?;

    let progress = Progress::new(&files, global);
    let (collector, stats) = audit::scan_requests(
        &files,
        &options,
        policy.interpreter(),
        || SimCollector::new(&policy),
        |a: &mut SimCollector<'_>, b: SimCollector<'_>| a.state.merge(b.state),
        &|path| progress.file_done(path),
    )?;
    progress.finish();

    let malformed: u64 = stats.iter().map(|f| f.malformed_total()).sum();
    if args.strict && malformed > 0 {
        warn_malformed(&stats, "error");
        anyhow::bail!("{malformed} malformed line(s) (--strict)");
    }
    warn_malformed(&stats, "warning");

    let report = SimReport::build(&collector.state, &policy, &stats);
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Table => audit::simulate::render_table(&report),
        Format::Html => audit::html::simulate_html(&report),
        Format::Csv => {
            let dir = args.out.as_deref().expect("checked above");
            for path in audit::csv_out::write_simulation(&report, dir)? {
                if !global.quiet {
                    eprintln!("wrote {}", path.display());
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    emit(args.out.as_ref(), &text)?;
    Ok(ExitCode::SUCCESS)
}
