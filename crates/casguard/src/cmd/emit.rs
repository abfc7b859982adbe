//! `casguard emit`: write a policy as IIS, Exchange shell or nginx
//! configuration, and say which rules the target cannot express.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use policy::emit::{self, iis, merge_web_config, Output, Target};
use policy::Policy;

use super::Meaning;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetArg {
    Iis,
    Exchange,
    Nginx,
}

impl From<TargetArg> for Target {
    fn from(t: TargetArg) -> Target {
        match t {
            TargetArg::Iis => Target::Iis,
            TargetArg::Exchange => Target::Exchange,
            TargetArg::Nginx => Target::Nginx,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy file (TOML).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// What to write configuration for.
    #[arg(long, value_enum)]
    pub target: TargetArg,
    /// Write the files into this folder instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Exit 1 when some rule cannot be expressed for the target.
    #[arg(long)]
    pub strict: bool,
    /// The networks and clients the policy may refer to.
    #[command(flatten)]
    pub meaning: Meaning,
    /// IIS site name used in configuration paths (iis only).
    #[arg(long, default_value = iis::DEFAULT_SITE, value_name = "NAME")]
    pub site: String,
    /// Merge the filtering rules into this existing web.config and write the
    /// result as `web.config` (iis only; the policy must target one path).
    #[arg(long, value_name = "FILE")]
    pub merge: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let interpreter = args.meaning.interpreter()?;
    let policy = Policy::load_with(&args.policy, interpreter.catalog(), interpreter.networks())?;
    let target: Target = args.target.into();
    if args.merge.is_some() && target != Target::Iis {
        anyhow::bail!("--merge applies to --target iis only");
    }
    let output: Output = match target {
        Target::Iis => {
            let out = iis::emit(&policy, &args.site);
            let merged = match &args.merge {
                Some(path) => {
                    let [section] = out.sections.as_slice() else {
                        anyhow::bail!(
                            "--merge needs filtering rules for exactly one IIS path; this policy has {}",
                            out.sections.len()
                        );
                    };
                    let text =
                        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                    let merged = merge_web_config(&text, &section.filtering_rules)
                        .with_context(|| format!("cannot merge into {}", path.display()))?;
                    Some(merged)
                }
                None => None,
            };
            let mut output = out.into_output();
            if let Some(m) = merged {
                output.files.insert(0, ("web.config".to_string(), m));
            }
            output
        }
        t => emit::emit(&policy, t),
    };
    for u in &output.unexpressible {
        eprintln!("warning: rule '{}' cannot be expressed for {target}: {}", u.rule, u.reason);
    }
    match &args.out {
        Some(dir) => {
            super::check_out_folder(dir, "emit")?;
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, content) in &output.files {
                let path = dir.join(name);
                std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        None => {
            std::io::stdout().write_all(output.text().as_bytes())?;
        }
    }
    if args.strict && !output.unexpressible.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
