//! One module per subcommand, plus what they share: reading inputs,
//! building the interpreter, and progress on stderr.

pub mod audit;
pub mod emit;
pub mod export;
pub mod gateway;
pub mod inventory;
pub mod policy;
pub mod simulate;
pub mod watch;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use exchange::{Catalog, Interpreter, Networks};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Options every subcommand sees.
pub struct Global {
    pub quiet: bool,
    /// `--threads`: rayon's pool is already sized from it; the gateway sizes its runtime.
    pub threads: Option<usize>,
}

/// Log inputs and the data that gives them meaning.
#[derive(clap::Args, Debug)]
pub struct Inputs {
    /// Log files (plain or .gz) or folders, walked recursively.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Named network ranges: Azure service tags, AWS ip-ranges.json, Google cloud.json, or `CIDR name` lines.
    #[arg(long = "ranges", value_name = "FILE")]
    pub ranges: Vec<PathBuf>,
    /// Client catalog to use instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

impl Inputs {
    pub fn interpreter(&self) -> anyhow::Result<Interpreter> {
        interpreter(&self.ranges, self.catalog.as_deref())
    }

    pub fn files(&self) -> anyhow::Result<Vec<PathBuf>> {
        let files = w3c::collect_paths(&self.paths)?;
        if files.is_empty() {
            anyhow::bail!("no log files (*.log, *.gz) under {}", display_paths(&self.paths));
        }
        Ok(files)
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

pub fn interpreter(ranges: &[PathBuf], catalog: Option<&Path>) -> anyhow::Result<Interpreter> {
    let catalog = match catalog {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Catalog::from_toml(&text).with_context(|| format!("in client catalog {}", path.display()))?
        }
        None => Catalog::builtin(),
    };
    let mut networks = Networks::builtin();
    for path in ranges {
        networks.add_file(path)?;
    }
    Ok(Interpreter::new(catalog, networks))
}

/// Load a policy against the interpreter's catalog and networks, with the
/// inventory its `device` conditions need; fails if one is needed and missing.
pub fn load_policy(
    path: &Path,
    inventory: Option<&Path>,
    interpreter: &Interpreter,
) -> anyhow::Result<::policy::Policy> {
    let mut policy = ::policy::Policy::load_with(path, interpreter.catalog(), interpreter.networks())?;
    if let Some(inventory) = inventory {
        policy.set_inventory(std::sync::Arc::new(::policy::Inventory::load(inventory)?));
    }
    policy.check_ready()?;
    Ok(policy)
}

/// A byte-count progress bar on stderr that shows itself only for runs
/// longer than two seconds, and never when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    enabled: bool,
}

impl Progress {
    pub fn new(files: &[PathBuf], global: &Global) -> Progress {
        let total: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}") {
            bar.set_style(style);
        }
        Progress { bar, started: Instant::now(), enabled: !global.quiet && std::io::stderr().is_terminal() }
    }

    pub fn file_done(&self, path: &Path) {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.bar.inc(len);
        if self.enabled && self.bar.is_hidden() && self.started.elapsed() > Duration::from_secs(2) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
