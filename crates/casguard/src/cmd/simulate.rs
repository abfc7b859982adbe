//! `casguard simulate`: replay the logs through a policy and show whom it
//! would cut off, by which rule, and which other doors stay open; with
//! `--baseline`, only what it changes on top of the policy in force.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use audit::simulate::{
    inventory_before, ChangeReport, Comparison, DeviceFactsKnown, PolicyPair, SimReport, Simulation,
};
use policy::{Inventory, Policy, ReadyPolicy};

use super::devices::{sort_inputs, DeviceArgs};
use super::{parse_time, scan_against, Format, Global, Inputs, ReportArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The policy in force (`casguard policy import` writes it): report only
    /// what --policy changes on top of it.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Devices first seen in these logs before TIME are known (RFC 3339 or a date).
    #[arg(long, value_name = "TIME", conflicts_with = "inventory")]
    pub known_before: Option<String>,
    /// Known devices from `casguard inventory build`.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: Inputs,
    /// Device exports make known the partnerships that first synced before the cut-over
    /// (--known-before, or the inventory's), or every partnership without one.
    #[command(flatten)]
    pub devices: DeviceArgs,
    #[command(flatten)]
    pub report: ReportArgs,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    args.report.format.check_out(args.report.out.as_deref())?;
    if args.baseline.is_some() && args.report.format == Format::Html {
        anyhow::bail!("--baseline reports as table, json or csv; html is not written for it yet");
    }
    let interpreter = Arc::new(args.inputs.interpreter()?);
    let policy = Policy::load_with(&args.policy, interpreter.catalog(), interpreter.networks())?;
    let baseline = args
        .baseline
        .as_ref()
        .map(|p| Policy::load_with(p, interpreter.catalog(), interpreter.networks()))
        .transpose()?;
    let sorted = sort_inputs(&args.inputs, &args.devices, global)?;
    sorted.warn_bad_rows("warning");
    let files = sorted.logs;
    let options = args.inputs.scan_options()?;

    let mut first_pass = None;
    let mut inventory = match (&args.inventory, &args.known_before) {
        (Some(path), _) => Some(Inventory::load(path)?),
        (None, Some(time)) => {
            // First pass: when each device was first seen.
            let cutover = parse_time(time)?;
            let (aggregate, _) = audit::audit_files(&files, &options, &interpreter, &|_| {})?;
            let known = inventory_before(&aggregate, cutover);
            first_pass = Some(aggregate);
            Some(known)
        }
        (None, None) => None,
    };
    if !sorted.exports.is_empty() {
        // A partnership's FirstSyncTime says whether its device existed at the cut-over,
        // however far back the logs go.
        let cutover = inventory.as_ref().map(|i| i.cutover()).filter(|c| !c.is_empty()).map(parse_time).transpose()?;
        let newest = sorted.exports.iter().filter_map(|(_, e)| e.newest_time()).max();
        let mut known = inventory
            .take()
            .unwrap_or_else(|| Inventory::new(newest.map(w3c::time::format_rfc3339).unwrap_or_default()));
        for (_, export) in &sorted.exports {
            known.insert_partnerships(&export.partnerships, cutover);
        }
        inventory = Some(known);
    }
    // A rule on a device's model or OS: Exchange judges every request of a
    // device by them, and few lines carry them (the back end's `Log=`).
    let mut learned = 0;
    let mut facts = None;
    if policy.reads_device_facts() || baseline.as_ref().is_some_and(Policy::reads_device_facts) {
        let aggregate = match first_pass {
            Some(aggregate) => aggregate,
            None => audit::audit_files(&files, &options, &interpreter, &|_| {})?.0,
        };
        let known = inventory.get_or_insert_with(Inventory::facts_only);
        learned = audit::simulate::learn_device_facts(&aggregate, known);
        // Which devices are still without the model or OS a rule reads.
        facts = Some(audit::simulate::device_facts_known(&aggregate, Some(known)));
    }
    let inventory = inventory.map(Arc::new);
    let baseline = baseline.map(|b| ReadyPolicy::new(b, inventory.clone(), interpreter.clone())).transpose()?;
    let policy = ReadyPolicy::new(policy, inventory, interpreter)?;
    if let Some(baseline) = &baseline {
        return run_change(&args, global, &files, &options, baseline, &policy, facts);
    }

    let (mut simulation, stats) =
        scan_against(&files, &options, policy.interpreter(), &policy, global, args.report.strict, Simulation::merge)?;
    simulation.device_facts = facts;
    let mut report = SimReport::build(&simulation, &policy, &stats);
    if learned > 0 {
        report.notes.push(format!(
            "the model and OS of {learned} device(s) were read from the logs' `Log=` (Exchange 2013+ writes it on \
             back-end lines) and judge all their requests, as Exchange does; the gateway reads them from --devices \
             and from a new device's Provision or Settings body"
        ));
    }
    args.report.write(
        global,
        &report,
        |dir| audit::csv_out::write_simulation(&report, dir),
        || audit::simulate::render_table(&report),
        || audit::html::simulate_html(&report),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `--baseline`: both policies decide each request in one pass; only the difference is reported.
fn run_change(
    args: &Args,
    global: &Global,
    files: &[PathBuf],
    options: &w3c::ScanOptions,
    baseline: &ReadyPolicy,
    target: &ReadyPolicy,
    facts: Option<DeviceFactsKnown>,
) -> anyhow::Result<ExitCode> {
    let pair = PolicyPair { baseline, target };
    let (mut comparison, stats) =
        scan_against(files, options, target.interpreter(), &pair, global, args.report.strict, Comparison::merge)?;
    comparison.baseline.device_facts = facts;
    comparison.target.device_facts = facts;
    let report = ChangeReport::build(&comparison, baseline, target, &stats);
    if report.summary.widens_access {
        eprintln!(
            "warning: the change widens access: {} request(s) of {} user(s) denied by {} would be allowed",
            report.summary.newly_allowed_requests, report.summary.newly_allowed_users, report.baseline
        );
    }
    args.report.write(
        global,
        &report,
        |dir| audit::csv_out::write_change(&report, dir),
        || audit::simulate::render_change_table(&report),
        || unreachable!("refused above"),
    )?;
    Ok(ExitCode::SUCCESS)
}
