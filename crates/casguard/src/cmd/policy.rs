//! `casguard policy check FILE`: validate a policy file and print the rules
//! it compiles to, in evaluation order.

use std::path::PathBuf;
use std::process::ExitCode;

use policy::Policy;

use super::Meaning;

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
    /// The networks and clients the policy may refer to.
    #[command(flatten)]
    pub meaning: Meaning,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check(a) => check(a),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let interpreter = args.meaning.interpreter()?;
    let policy = Policy::load_with(&args.file, interpreter.catalog(), interpreter.networks())?;
    let mut out = String::new();
    for (i, rule) in policy.rules().iter().enumerate() {
        out.push_str(&format!("{:>3}. {rule}\n", i + 1));
    }
    out.push_str(&format!("  default: {}\n", policy.default_action().key()));
    if policy.requires_inventory() {
        out.push_str("  note: device conditions need --inventory, --devices or --known-before when simulating\n");
    }
    use std::io::Write;
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
