//! Shared by audit, simulate and inventory: the mobile-device exports they
//! read (`--devices FILE`, and any export among the inputs, told from logs
//! by its content), and the log files left once those are set apart.

use std::collections::HashSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use exchange::devices::{self, DeviceExport};

use super::{Global, Inputs};

/// Larger exports are refused rather than read into memory.
const MAX_EXPORT_BYTES: u64 = 1 << 30;

#[derive(clap::Args, Debug)]
pub struct DeviceArgs {
    /// Mobile-device partnerships: `Get-MobileDevice | Get-MobileDeviceStatistics` written by
    /// Export-Csv or ConvertTo-Json (repeatable). Exports inside the input folders are found by content.
    #[arg(long = "devices", value_name = "FILE")]
    pub devices: Vec<PathBuf>,
}

/// The inputs, sorted out: log files to read, and each device export read.
pub struct Sorted {
    pub logs: Vec<PathBuf>,
    /// Each export with the path it is named by in reports.
    pub exports: Vec<(String, DeviceExport)>,
}

impl Sorted {
    /// Bad rows in all the exports.
    pub fn bad_rows(&self) -> u64 {
        self.exports.iter().map(|(_, e)| e.bad_rows).sum()
    }

    /// Print the first bad rows of each export as `file:line: reason`.
    pub fn warn_bad_rows(&self, label: &str) {
        for (file, export) in &self.exports {
            for bad in &export.first_bad {
                eprintln!("{label}: {file}:{}: {}", bad.line, bad.reason);
            }
            let shown = export.first_bad.len() as u64;
            if export.bad_rows > shown {
                eprintln!("{label}: {file}: {} more bad row(s) not shown", export.bad_rows - shown);
            }
        }
    }
}

/// Set the device exports among `inputs` (files named, and `*.csv` or
/// `*.json` files in the folders named) apart from the logs, add those of
/// `args`, and read them all.
pub fn sort_inputs(inputs: &Inputs, args: &DeviceArgs, global: &Global) -> anyhow::Result<Sorted> {
    let mut found = args.devices.clone();
    let mut log_paths = Vec::new();
    let mut walked = HashSet::new();
    for path in &inputs.paths {
        if path.is_dir() {
            find_exports(path, &mut found, &mut walked)?;
            log_paths.push(path.clone());
        } else if path.is_file() && is_export(path)? {
            found.push(path.clone());
        } else {
            log_paths.push(path.clone());
        }
    }
    if log_paths.is_empty() {
        // Not "no log files under devices.csv": it was read, as what it is.
        anyhow::bail!(
            "{} {} a device export, and no logs were given: give the logs too (the export is read beside them)",
            super::display_paths(&inputs.paths),
            if inputs.paths.len() == 1 { "is" } else { "are each" }
        );
    }
    found.sort();
    // One file named twice (as an input, and inside a folder or behind a link) is read once.
    let mut seen = HashSet::new();
    found.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    let mut exports = Vec::with_capacity(found.len());
    for path in found {
        let export = read_export(&path)?;
        if !global.quiet {
            eprintln!("devices: {} partnership(s) from {}", export.partnerships.len(), path.display());
        }
        exports.push((path.display().to_string(), export));
    }
    Ok(Sorted { logs: inputs.files_of(&log_paths)?, exports })
}

fn read_export(path: &Path) -> anyhow::Result<DeviceExport> {
    if path.is_dir() {
        anyhow::bail!(
            "--devices {} is a folder: give the export file, or the folder among the inputs (exports in it are found \
             by their columns)",
            path.display()
        );
    }
    let len = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if len > MAX_EXPORT_BYTES {
        anyhow::bail!("{}: {len} bytes is more than a device export can be (1 GiB)", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(devices::read(&bytes, &path.display().to_string())?)
}

/// Whether the file at `path` starts like a device export.
fn is_export(path: &Path) -> anyhow::Result<bool> {
    let mut head = Vec::with_capacity(devices::SNIFF_BYTES);
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    file.take(devices::SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(devices::looks_like_export(&head))
}

/// Device exports under `dir`: `*.csv` and `*.json` files that start like
/// one. Links are followed, to folders as to files, as for logs; a folder
/// reached twice (`walked` holds those seen) is walked once.
fn find_exports(dir: &Path, out: &mut Vec<PathBuf>, walked: &mut HashSet<PathBuf>) -> anyhow::Result<()> {
    if !walked.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            find_exports(&path, out, walked)?;
            continue;
        }
        let named = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("csv") || e.eq_ignore_ascii_case("json"));
        if named && path.is_file() && is_export(&path)? {
            out.push(path);
        }
    }
    Ok(())
}
