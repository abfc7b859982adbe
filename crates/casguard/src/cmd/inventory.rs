//! `casguard inventory build`: the devices seen in the logs before a
//! cut-over, for `device = "known" | "new"` rules.

use std::path::PathBuf;
use std::process::ExitCode;

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
}

pub fn run(command: Command, global: &Global) -> anyhow::Result<ExitCode> {
    let Command::Build(args) = command;
    let cutover = parse_time(&args.until)?;
    let (_, aggregate, stats) = super::aggregate(&args.inputs, global)?;
    warn_malformed(&stats, "warning");
    let inventory = audit::simulate::inventory_before(&aggregate, cutover);
    inventory.save(&args.out)?;
    if !global.quiet {
        eprintln!("wrote {} known device(s) to {}", inventory.len(), args.out.display());
    }
    Ok(ExitCode::SUCCESS)
}
