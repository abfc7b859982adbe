//! `casguard posture`: what the settings in force leave open for each user,
//! which doors are used, and the findings (open backdoors, doors open but
//! unused, Basic authentication in use).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use audit::posture::{PostureCollector, PostureReport};
use policy::{Policy, ReadyPolicy};

use super::{scan_checked, write_report, Format, Global, Inputs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy in force, as `casguard policy import` writes it.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
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
    let policy = ReadyPolicy::new(policy, None, interpreter)?;
    let files = args.inputs.files()?;
    let options = args.inputs.scan_options()?;

    let (collector, stats) = scan_checked(
        &files,
        &options,
        policy.interpreter(),
        global,
        args.strict,
        || PostureCollector::new(&policy),
        |a: &mut PostureCollector<'_>, b: PostureCollector<'_>| a.state.merge(b.state),
    )?;

    let report = PostureReport::build(&collector.state, &policy, &stats);
    write_report(
        args.format,
        args.out.as_ref(),
        global,
        |dir| audit::csv_out::write_posture(&report, dir),
        |format| {
            Ok(match format {
                Format::Table => audit::posture::render_table(&report),
                Format::Html => audit::html::posture_html(&report),
                Format::Json | Format::Csv => serde_json::to_string_pretty(&report)? + "\n",
            })
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
