//! `casguard policy check FILE`: validate a policy file and print the rules
//! it compiles to, in evaluation order. `casguard policy import FOLDER`:
//! write the policy that is in force, from an organisation's exports and
//! IIS configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use policy::Policy;

use super::Meaning;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Validate a policy file and print its compiled rules.
    Check(CheckArgs),
    /// Write the policy in force from exports (Get-CASMailbox, Get-OrganizationConfig, ...) and IIS configuration.
    Import(ImportArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The folder Export-CasguardInputs.ps1 wrote (or one exported file).
    #[arg(value_name = "FOLDER")]
    pub folder: PathBuf,
    /// Write the policy here instead of to stdout.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The IIS site whose configuration decides requests.
    #[arg(long, default_value = "Default Web Site", value_name = "NAME")]
    pub site: String,
    /// Exit 1 when a setting cannot be imported exactly.
    #[arg(long)]
    pub strict: bool,
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
        Command::Import(a) => import(a),
    }
}

fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if let Some(out) = &args.out {
        super::check_out_file(out, "policy import")?;
    }
    let imported = policy::import::import_folder(&args.folder, &args.site)?;
    for (file, what) in &imported.sources {
        eprintln!("read {file}: {what}");
    }
    for n in &imported.info {
        eprintln!("note: {}: {}", n.source, n.what);
    }
    // Before the refusal below: a web.config no virtual directory can be
    // found for is one, and the admin needs to know why it was not read.
    for n in &imported.inexact {
        eprintln!("warning: {}: {} cannot be imported exactly: {}", n.source, n.what, n.reason);
    }
    if imported.sources.is_empty() {
        // Nothing read is not "nothing in force": written, it would allow everything.
        anyhow::bail!(
            "{}: no export or IIS configuration that policy import reads (Get-OrganizationConfig, Get-CASMailbox, \
             Get-ActiveSyncOrganizationSettings, Get-ActiveSyncDeviceAccessRule, Get-AuthenticationPolicy, Get-User, \
             applicationHost.config, web.config): give the folder Export-CasguardInputs.ps1 wrote; no policy written",
            args.folder.display()
        );
    }
    match &args.out {
        Some(path) => {
            std::fs::write(path, &imported.policy_text).with_context(|| format!("cannot write {}", path.display()))?
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(imported.policy_text.as_bytes())?;
        }
    }
    if args.strict && !imported.inexact.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
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
    if policy.uses_auth_type() {
        out.push_str(
            "  note: rules on the authentication type decide only requests whose type is known (HttpProxy logs, \
             the gateway): IIS logs do not record it\n",
        );
    }
    use std::io::Write;
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
