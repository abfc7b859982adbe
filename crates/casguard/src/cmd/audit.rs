//! `casguard audit`: who reaches Exchange, with which client, over which
//! protocol, from where.

use std::process::ExitCode;

use audit::{Report, ReportOptions};

use super::devices::{sort_inputs, DeviceArgs};
use super::{warn_malformed, Global, Inputs, ReportArgs, SignInLimits};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub inputs: Inputs,
    #[command(flatten)]
    pub devices: DeviceArgs,
    /// A partnership idle for more than N days is stale (idle up to the latest time in the export and logs).
    #[arg(long, value_name = "N", default_value_t = audit::partnerships::DEFAULT_STALE_DAYS)]
    pub stale_days: u32,
    #[command(flatten)]
    pub signins: SignInLimits,
    #[command(flatten)]
    pub report: ReportArgs,
    /// Exit 1 when there are findings.
    #[arg(long)]
    pub fail_on_findings: bool,
    /// Users listed in the table.
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub top: usize,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    args.report.format.check_out(args.report.out.as_deref())?;
    let thresholds = args.signins.thresholds()?;
    let sorted = sort_inputs(&args.inputs, &args.devices, global)?;
    let (interpreter, aggregate, stats) = super::aggregate_files(&args.inputs, &sorted.logs, global)?;
    let malformed: u64 = stats.iter().map(|f| f.malformed_total()).sum();
    let bad_rows = sorted.bad_rows();
    if args.report.strict && malformed + bad_rows > 0 {
        warn_malformed(&stats, "error");
        sorted.warn_bad_rows("error");
        match (malformed, bad_rows) {
            (_, 0) => anyhow::bail!("{malformed} malformed line(s) (--strict)"),
            (0, _) => anyhow::bail!("{bad_rows} bad device export row(s) (--strict)"),
            _ => anyhow::bail!("{malformed} malformed line(s) and {bad_rows} bad device export row(s) (--strict)"),
        }
    }
    warn_malformed(&stats, "warning");
    sorted.warn_bad_rows("warning");

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).ok();
    if let Some(note) = now.and_then(|now| audit::report::ranges_age_note(interpreter.networks(), now)) {
        eprintln!("warning: {note}");
    }
    let mut report = Report::build_with(&aggregate, &stats, &interpreter, &ReportOptions { thresholds, now });
    if !sorted.exports.is_empty() {
        let catalog = interpreter.catalog();
        report.partnerships = Some(audit::partnerships::build(&sorted.exports, &aggregate, catalog, args.stale_days));
    }
    args.report.write(
        global,
        &report,
        |dir| audit::csv_out::write_all(&report, &aggregate, dir),
        || audit::table::render(&report, args.top),
        || audit::html::audit_html(&report, &aggregate, interpreter.catalog()),
    )?;
    let people_findings = !report.findings.is_empty();
    Ok(if args.fail_on_findings && people_findings { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
