//! `casguard posture`: what the settings in force leave open for each user,
//! which doors are used, and the findings (open backdoors, doors open but
//! unused, Basic authentication in use).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use audit::posture::{Posture, PostureReport};
use policy::{Inventory, Policy, ReadyPolicy};

use super::{scan_against, Global, Inputs, ReportArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy in force, as `casguard policy import` writes it.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    #[command(flatten)]
    pub inputs: Inputs,
    #[command(flatten)]
    pub report: ReportArgs,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    args.report.format.check_out(args.report.out.as_deref())?;
    let interpreter = Arc::new(args.inputs.interpreter()?);
    let policy = Policy::load_with(&args.policy, interpreter.catalog(), interpreter.networks())?;
    if let Some(rule) = policy.device_rule() {
        // Exchange enforces no such rule: it is a cut-over plan, for simulate.
        anyhow::bail!(
            "{}:{}: rule '{}' judges devices new since a cut-over, which no setting in force does: \
             posture reads the policy in force (as `casguard policy import` writes it); simulate this policy instead",
            args.policy.display(),
            rule.line,
            rule.name
        );
    }
    let files = args.inputs.files()?;
    let options = args.inputs.scan_options()?;
    // A rule on a device's model or OS judges all of a device's requests by
    // what Exchange logged of it (the back end's `Log=`), as in simulate.
    let inventory = if policy.reads_device_facts() {
        let (aggregate, _) = audit::audit_files(&files, &options, &interpreter, &|_| {})?;
        let mut known = Inventory::facts_only();
        audit::simulate::learn_device_facts(&aggregate, &mut known);
        Some(Arc::new(known))
    } else {
        None
    };
    let policy = ReadyPolicy::new(policy, inventory, interpreter)?;

    let (posture, stats) =
        scan_against(&files, &options, policy.interpreter(), &policy, global, args.report.strict, Posture::merge)?;
    let report = PostureReport::build(&posture, &policy, &stats);
    args.report.write(
        global,
        &report,
        |dir| audit::csv_out::write_posture(&report, dir),
        || audit::posture::render_table(&report),
        || audit::html::posture_html(&report),
    )?;
    Ok(ExitCode::SUCCESS)
}
