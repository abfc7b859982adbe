//! `casguard watch`: follow the IIS logs being written and print each new
//! finding once: a user's first Outlook mobile device, a new EWS client
//! other than Outlook, a mobile client on EWS/OWA/Outlook Anywhere, a device
//! a policy would deny, an exploit attempt (see `audit::watch`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use audit::alerts::AlertRules;
use audit::watch::State;
use policy::ReadyPolicy;
use w3c::ScanOptions;

use super::{parse_time, warn_malformed, Meaning};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Line,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder of IIS or HttpProxy logs, walked recursively (only `*.log` files, any case, are followed).
    #[arg(value_name = "LOGDIR")]
    pub dir: PathBuf,
    /// Also alert on devices this policy would deny.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Known devices from `casguard inventory build` (for policies about new devices).
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub inventory: Option<PathBuf>,
    /// Where to keep alert keys and file offsets between runs.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Read existing files from their start and ignore lines before TIME
    /// (RFC 3339 or a date). Without it a first run starts at the files' ends.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Alerts as text lines, or as JSON objects, one per line.
    #[arg(long, value_enum, default_value_t = Format::Line)]
    pub format: Format,
    /// Process what is there and exit (no following).
    #[arg(long)]
    pub once: bool,
    /// Seconds between polls.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub interval: f64,
    #[command(flatten)]
    pub meaning: Meaning,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let interpreter = Arc::new(args.meaning.interpreter()?);
    let policy = args
        .policy
        .as_deref()
        .map(|path| ReadyPolicy::load(path, args.inventory.as_deref(), interpreter.clone()))
        .transpose()?;
    let since = args.since.as_deref().map(parse_time).transpose()?;
    if !args.dir.is_dir() {
        let why = if args.dir.exists() { "is not a folder" } else { "does not exist" };
        anyhow::bail!("{} {why}: watch follows the logs in a folder", args.dir.display());
    }
    if let Some(path) = &args.state {
        // Before the first poll prints its alerts, not after: unsaved, they would all come again.
        super::check_file_writable(path, "--state")?;
    }
    let rules = AlertRules { interpreter: &interpreter, policy: policy.as_ref(), since };
    let loaded = match &args.state {
        Some(path) => State::load(path)?,
        None => None,
    };
    // A first run without --since follows from the files' current ends, like `tail -f`.
    let mut tail_existing = loaded.is_none() && since.is_none();
    let mut first = true;
    let mut state = loaded.unwrap_or_default();
    let options = ScanOptions { parallel: false, ..ScanOptions::default() };
    let interval = Duration::from_secs_f64(args.interval.clamp(0.1, 3600.0));
    let mut stdout = std::io::stdout();
    loop {
        let polled = audit::watch::poll(&args.dir, &rules, &options, &mut state, tail_existing)?;
        if first && polled.files == 0 {
            // Not an error: IIS creates the day's log with its first request.
            eprintln!("warning: {} holds no log files (*.log) yet", args.dir.display());
        }
        (first, tail_existing) = (false, false);
        warn_malformed(&polled.malformed, "warning");
        for alert in &polled.alerts {
            match args.format {
                Format::Json => writeln!(stdout, "{}", serde_json::to_string(alert)?)?,
                Format::Line => writeln!(stdout, "{}", alert.line())?,
            }
        }
        stdout.flush()?;
        if let Some(path) = &args.state {
            state.save(path)?;
        }
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(interval);
    }
}
