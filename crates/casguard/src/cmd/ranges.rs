//! `casguard ranges update`: a current Microsoft 365 range file from the
//! answers of Microsoft's endpoints web service, saved to files.
//!
//! casguard does not fetch them itself (the machines it runs on often
//! cannot reach the Internet, and the binary carries no HTTP client for
//! it); the commands that do are in `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use exchange::endpoints;

use super::emit;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write the Microsoft 365 ranges (Exchange Online and AutoDetect) from the endpoints web service's answers.
    ///
    /// Fetch the two answers where the Internet is reachable, for example:
    ///   id=$(uuidgen)
    ///   curl -o version.json "https://endpoints.office.com/version/Worldwide?ClientRequestId=$id"
    ///   curl -o endpoints.json "https://endpoints.office.com/endpoints/Worldwide?ServiceAreas=Exchange&ClientRequestId=$id"
    /// then `casguard ranges update --endpoints endpoints.json --endpoints-version version.json --out m365.txt`
    /// and give `--ranges m365.txt` to audit, simulate, export, watch and the gateway: it replaces
    /// the built-in ranges. Microsoft asks clients to check the version at most once an hour.
    Update(UpdateArgs),
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// The endpoints method's answer (`/endpoints/Worldwide?ServiceAreas=Exchange`).
    #[arg(long, value_name = "FILE")]
    pub endpoints: PathBuf,
    /// The version method's answer (`/version/Worldwide`), or the version itself (YYYYMMDDNN).
    #[arg(long, value_name = "FILE|VERSION")]
    pub endpoints_version: String,
    /// The instance whose version to read from an answer listing several.
    #[arg(long, default_value = "Worldwide", value_name = "NAME")]
    pub instance: String,
    /// Where to write the range file (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Update(args) = command;
    let read =
        |path: &PathBuf| std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()));
    let version = if endpoints::version_time(&args.endpoints_version).is_some() {
        args.endpoints_version.clone()
    } else {
        let path = PathBuf::from(&args.endpoints_version);
        endpoints::latest_version(&read(&path)?, &args.instance, &path.display().to_string())?
    };
    let origin = args.endpoints.display().to_string();
    let sets = endpoints::exchange_sets(&read(&args.endpoints)?, &origin)?;
    let file_name = args.endpoints.file_name().map_or(origin.clone(), |n| n.to_string_lossy().into_owned());
    let text = endpoints::ranges_file(&version, &sets, &file_name)?;
    emit(args.out.as_ref(), &text)?;
    if let Some(out) = &args.out {
        let addresses = text.lines().filter(|l| l.ends_with(" microsoft365")).count();
        eprintln!("wrote {} ({addresses} ranges, endpoints version {version})", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
