//! `casguard inventory build`: the devices seen in the logs before a
//! cut-over, and those whose partnership first synced before it, for
//! `device = "known" | "new"` rules.

use std::path::PathBuf;
use std::process::ExitCode;

use super::devices::{sort_inputs, DeviceArgs};
use super::{parse_time, warn_malformed, Global, Inputs};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write the devices first seen before --until.
    Build(BuildArgs),
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The cut-over: devices first seen before it are known (RFC 3339 or a date).
    #[arg(long, value_name = "TIME")]
    pub until: String,
    /// Where to write the inventory (JSON).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub inputs: Inputs,
    /// Partnerships whose FirstSyncTime is before --until are known too.
    #[command(flatten)]
    pub devices: DeviceArgs,
}

pub fn run(command: Command, global: &Global) -> anyhow::Result<ExitCode> {
    let Command::Build(args) = command;
    let cutover = parse_time(&args.until)?;
    super::check_out_file(&args.out, "inventory build")?;
    let sorted = sort_inputs(&args.inputs, &args.devices, global)?;
    let (_, aggregate, stats) = super::aggregate_files(&args.inputs, &sorted.logs, global)?;
    warn_malformed(&stats, "warning");
    sorted.warn_bad_rows("warning");
    let mut inventory = audit::simulate::inventory_before(&aggregate, cutover);
    let from_logs = inventory.len();
    let partnerships: usize =
        sorted.exports.iter().map(|(_, e)| inventory.insert_partnerships(&e.partnerships, Some(cutover))).sum();
    let first = aggregate.people.span.first;
    if inventory.is_empty() && aggregate.people.requests > 0 && cutover <= first {
        // A year typed wrong makes every phone new to a `device = "new"` rule, and blocked.
        eprintln!(
            "warning: --until {} is not after the logs' first request ({}): no device is known, so a \
             `device = \"new\"` rule would take every device for new",
            w3c::time::format_rfc3339(cutover),
            w3c::time::format_rfc3339(first)
        );
    }
    inventory.save(&args.out)?;
    if !global.quiet {
        eprintln!(
            "wrote {} known device(s) to {} ({from_logs} seen in the logs, {partnerships} partnership(s) first synced before the cut-over)",
            inventory.len(),
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
