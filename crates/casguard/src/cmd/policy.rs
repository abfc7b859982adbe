//! `casguard policy check FILE`: validate a policy file and print the rules
//! it compiles to, in evaluation order.

use std::path::PathBuf;
use std::process::ExitCode;

use exchange::{Catalog, Networks};
use policy::Policy;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Validate a policy file and print its compiled rules.
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The policy file (TOML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Named network ranges the policy may refer to (as for `audit --ranges`).
    #[arg(long = "ranges", value_name = "FILE")]
    pub ranges: Vec<PathBuf>,
}

/// Built-in networks plus `--ranges` files.
pub fn networks(ranges: &[PathBuf]) -> anyhow::Result<Networks> {
    let mut networks = Networks::builtin();
    for path in ranges {
        networks.add_file(path)?;
    }
    Ok(networks)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Check(a) => check(a),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let networks = networks(&args.ranges)?;
    let policy = match Policy::load_with(&args.file, &Catalog::builtin(), &networks) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut out = String::new();
    for (i, rule) in policy.rules().iter().enumerate() {
        out.push_str(&format!("{:>3}. {rule}\n", i + 1));
    }
    out.push_str(&format!("  default: {}\n", policy.default_action().key()));
    if policy.requires_inventory() {
        out.push_str("  note: device conditions need --inventory or --known-before when simulating\n");
    }
    use std::io::Write;
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
