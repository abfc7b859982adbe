//! Expanding command-line paths into the log files to read.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;

/// True for names IIS gives its logs: `*.log`, and `*.gz` for compressed archives
/// (e.g. `u_ex210101_x.log`, `ex2101.log.gz`), compared case-insensitively.
pub fn is_log_name(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    let ends =
        |suffix: &[u8]| name.len() >= suffix.len() && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
    ends(b".log") || ends(b".gz")
}

/// Expands files and folders into the log files to read.
///
/// A folder is walked recursively and yields every regular file whose name ends in
/// `.log` or `.gz` (case-insensitive); symbolic links to folders are not followed, so
/// a link cycle cannot loop. A file named explicitly is always taken. The result is
/// sorted by path with duplicates removed. A missing path is an error.
pub fn collect_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in paths {
        let meta = fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if ty.is_dir() {
            walk(&path, out)?;
        } else if is_log_name(&entry.file_name()) {
            // A symbolic link counts when it leads to a regular file.
            let is_file = ty.is_file() || fs::metadata(&path).is_ok_and(|m| m.is_file());
            if is_file {
                out.push(path);
            }
        }
    }
    Ok(())
}
