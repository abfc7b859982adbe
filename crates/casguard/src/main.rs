//! casguard: find out which mail clients reach Exchange, over which
//! protocol, from where and for whom; then stop the ones that break policy.
//!
//! A thin binary: one module per subcommand under `cmd/`, the work in the
//! library crates. Exit codes: 0 all well, 1 findings (with
//! `--fail-on-findings`) or unexpressible rules (with `--strict`), 2 error.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A thread count: 0 would mean none, and a typo such as 100000 would spend
/// minutes starting threads before reading a line.
fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err("give a number of threads from 1 to 1024".to_string()),
    }
}

#[derive(Parser, Debug)]
#[command(name = "casguard", version, about, propagate_version = true)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true, value_name = "N", value_parser = parse_threads)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Report who reaches Exchange, with which client, over which protocol, from where.
    Audit(cmd::audit::Args),
    /// Replay logs through a policy: who would be blocked, by which rule, and which doors stay open.
    Simulate(cmd::simulate::Args),
    /// What the settings in force leave open per user: open backdoors, unused doors, Basic authentication.
    Posture(cmd::posture::Args),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(cmd::policy::Command),
    /// Write a policy as IIS, Exchange or nginx configuration.
    Emit(cmd::emit::Args),
    /// Build the inventory of known devices.
    #[command(subcommand)]
    Inventory(cmd::inventory::Command),
    /// Enforce a policy inline, in front of Exchange.
    Gateway(Box<cmd::gateway::Args>),
    /// Write one row per request: Parquet partitioned by day, or JSON lines with ECS names.
    Export(cmd::export::Args),
    /// Follow IIS and HttpProxy logs as they are written and print each new finding once.
    Watch(cmd::watch::Args),
    /// Keep the Microsoft 365 ranges current.
    #[command(subcommand)]
    Ranges(cmd::ranges::Command),
}

impl Command {
    /// The logs a command reads, where it takes them as `PATH...`.
    fn inputs_mut(&mut self) -> Option<&mut cmd::Inputs> {
        match self {
            Command::Audit(args) => Some(&mut args.inputs),
            Command::Simulate(args) => Some(&mut args.inputs),
            Command::Posture(args) => Some(&mut args.inputs),
            Command::Inventory(cmd::inventory::Command::Build(args)) => Some(&mut args.inputs),
            Command::Export(args) => Some(&mut args.inputs),
            _ => None,
        }
    }
}

fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(inputs) = cli.command.inputs_mut() {
        inputs.expand_wildcards()?;
    }
    if let Some(threads) = cli.threads {
        rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build_global()?;
    }
    let global = cmd::Global { quiet: cli.quiet, threads: cli.threads };
    match cli.command {
        Command::Audit(args) => cmd::audit::run(args, &global),
        Command::Simulate(args) => cmd::simulate::run(args, &global),
        Command::Posture(args) => cmd::posture::run(args, &global),
        Command::Policy(args) => cmd::policy::run(args),
        Command::Emit(args) => cmd::emit::run(args),
        Command::Inventory(args) => cmd::inventory::run(args, &global),
        Command::Gateway(args) => cmd::gateway::run(*args, &global),
        Command::Export(args) => cmd::export::run(args, &global),
        Command::Watch(args) => cmd::watch::run(args),
        Command::Ranges(args) => cmd::ranges::run(args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`casguard audit ... | head`) is not an error.
            for cause in err.chain() {
                if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                    if io.kind() == std::io::ErrorKind::BrokenPipe {
                        return ExitCode::SUCCESS;
                    }
                }
            }
            eprintln!("error: {}", error_text(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line. Our library errors already put their
/// source's message in their own, so a cause whose text is already there is not
/// repeated (`{:#}` would print "No such file or directory" twice).
fn error_text(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
