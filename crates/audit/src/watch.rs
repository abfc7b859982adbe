//! Following a folder of IIS or HttpProxy logs as they are written
//! (`casguard watch`): each poll reads what every `*.log` file gained since
//! the last one (see [`w3c::tail`] and [`httpproxy::tail`]) into an
//! [`Alerter`]. A file's format is told by its content when it is first seen.
//! IIS and HttpProxy lines of one request are not joined here: an alert is
//! raised once whichever line shows it first. The [`State`] (alert keys, and per
//! file how far it was read) is kept between runs, so a restart carries on
//! where the last run stopped without repeating alerts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use exchange::Feed;
use httpproxy::LogKind;
use serde::{Deserialize, Serialize};
use w3c::tail::{FileId, Position};
use w3c::{Fields, FileStats, ScanOptions};

use crate::alerts::{Alert, AlertRules, Alerter};

const STATE_VERSION: u32 = 1;

/// Why watching stopped.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Read(#[from] w3c::Error),
    #[error("cannot read state {}: {source}", path.display())]
    ReadState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read state {}: {source}", path.display())]
    ParseState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("state {} has version {found}, expected {STATE_VERSION}", path.display())]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write state {}: {source}", path.display())]
    WriteState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What watch remembers between runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    version: u32,
    /// Keys of the alerts already raised.
    alerts: BTreeSet<String>,
    /// Per file (relative to the folder, `/`-separated): how far it was read.
    files: BTreeMap<String, FileState>,
}

/// One file's [`Position`] as stored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct FileState {
    offset: u64,
    /// The `#Fields` directive in force at `offset`, its names.
    fields: Option<String>,
    #[serde(default)]
    line: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    skipping: bool,
    /// Device and file index (see [`FileId`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<(u64, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<u64>,
    /// An HttpProxy log (its `fields` are then comma-separated); else IIS W3C.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    httpproxy: bool,
    /// A log of another kind, not followed: what it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_read: Option<String>,
}

impl FileState {
    fn position(&self) -> Position {
        Position {
            offset: self.offset,
            line: self.line,
            fields: self.fields.as_deref().map(|f| Fields::parse(f.as_bytes())),
            skipping: self.skipping,
            id: self.id.map(|(device, index)| FileId::from_parts(device, index)),
            check: self.check,
        }
    }

    fn of(at: &Position) -> FileState {
        FileState {
            offset: at.offset,
            fields: at.fields.as_ref().map(|f| f.names().collect::<Vec<_>>().join(" ")),
            line: at.line,
            skipping: at.skipping,
            id: at.id.map(FileId::parts),
            check: at.check,
            httpproxy: false,
            not_read: None,
        }
    }

    fn proxy_position(&self) -> httpproxy::tail::Position {
        httpproxy::tail::Position {
            offset: self.offset,
            line: self.line,
            fields: self.fields.as_deref().map(|f| httpproxy::Fields::parse(f.as_bytes())),
            skipping: self.skipping,
            id: self.id.map(|(device, index)| FileId::from_parts(device, index)),
            check: self.check,
        }
    }

    fn of_proxy(at: &httpproxy::tail::Position) -> FileState {
        FileState {
            offset: at.offset,
            fields: at.fields.as_ref().map(|f| f.names().collect::<Vec<_>>().join(",")),
            line: at.line,
            skipping: at.skipping,
            id: at.id.map(FileId::parts),
            check: at.check,
            httpproxy: true,
            not_read: None,
        }
    }
}

impl Default for State {
    fn default() -> Self {
        State { version: STATE_VERSION, alerts: BTreeSet::new(), files: BTreeMap::new() }
    }
}

impl State {
    /// The state saved at `path`; `None` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<State>, WatchError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(WatchError::ReadState { path: path.to_path_buf(), source }),
        };
        let state: State = serde_json::from_slice(&bytes)
            .map_err(|source| WatchError::ParseState { path: path.to_path_buf(), source })?;
        if state.version != STATE_VERSION {
            return Err(WatchError::Version { path: path.to_path_buf(), found: state.version });
        }
        Ok(Some(state))
    }

    /// Write to a temporary file then rename, so a crash never leaves half a state.
    pub fn save(&self, path: &Path) -> Result<(), WatchError> {
        // Errors name the state file the user gave, not the temporary one beside it.
        let tmp = path.with_extension("tmp");
        let failed = |source| WatchError::WriteState { path: path.to_path_buf(), source };
        let text = serde_json::to_vec(self).map_err(|e| failed(e.into()))?;
        std::fs::write(&tmp, text).map_err(failed)?;
        std::fs::rename(&tmp, path).map_err(|source| WatchError::WriteState { path: path.to_path_buf(), source })
    }
}

/// What one poll found.
#[derive(Debug, Default)]
pub struct Polled {
    /// New alerts, in file order, then line order.
    pub alerts: Vec<Alert>,
    /// Files with malformed lines or warnings among those read.
    pub malformed: Vec<FileStats>,
    /// How many log files the folder holds this pass.
    pub files: usize,
}

/// One pass over `dir`: new files, and growth of known ones. Files not in
/// `state` yet are read from their start, or when `tail_existing` from their
/// current end, like `tail -f`.
pub fn poll(
    dir: &Path,
    rules: &AlertRules<'_>,
    options: &ScanOptions,
    state: &mut State,
    tail_existing: bool,
) -> Result<Polled, WatchError> {
    let files = log_files(dir)?;
    let keys: BTreeSet<String> = files.iter().map(|p| key_of(dir, p)).collect();
    // Forget files that were deleted (old logs cleaned up).
    state.files.retain(|k, _| keys.contains(k));
    let mut polled = Polled { files: files.len(), ..Polled::default() };
    for path in &files {
        let key = key_of(dir, path);
        let known = state.files.get(&key).cloned();
        let is_proxy = match &known {
            Some(known) if known.not_read.is_some() => continue,
            Some(known) => known.httpproxy,
            // A file not written yet tells nothing of its format: wait for its first lines.
            None if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) => continue,
            None => match utf16_or_kind(path) {
                Ok(LogKind::Other(why)) => {
                    polled.malformed.push(FileStats {
                        path: path.clone(),
                        not_read: Some(why.clone()),
                        ..FileStats::default()
                    });
                    state.files.insert(key, FileState { not_read: Some(why.into()), ..FileState::default() });
                    continue;
                }
                Ok(kind) => kind == LogKind::HttpProxy,
                Err(_) if !path.exists() => continue,
                Err(e) => return Err(e.into()),
            },
        };
        let mut feed = Feed::new(rules.interpreter, Alerter::new(rules, &key, &mut state.alerts));
        let (stats, file_state) = if is_proxy {
            let mut at = match known {
                Some(known) => known.proxy_position(),
                None if tail_existing => match httpproxy::tail::at_end(path) {
                    Ok(at) => at,
                    Err(_) if !path.exists() => continue,
                    Err(e) => return Err(e.into()),
                },
                None => httpproxy::tail::Position::default(),
            };
            let stats = httpproxy::tail::follow(path, &mut at, options, &mut feed)?;
            (stats, FileState::of_proxy(&at))
        } else {
            let mut at = match known {
                Some(known) => known.position(),
                None if tail_existing => match Position::at_end(path, options) {
                    Ok(at) => at,
                    // Removed since it was listed.
                    Err(_) if !path.exists() => continue,
                    Err(e) => return Err(e.into()),
                },
                None => Position::default(),
            };
            let stats = w3c::tail::follow(path, &mut at, options, &mut feed)?;
            (stats, FileState::of(&at))
        };
        polled.alerts.append(&mut feed.into_sink().alerts);
        state.files.insert(key, file_state);
        if stats.malformed_total() > 0 || stats.warnings_total() > 0 {
            polled.malformed.push(stats);
        }
    }
    Ok(polled)
}

/// What `path` is, or why it is not followed: [`tail`](w3c::tail) follows
/// bytes of UTF-8, and UTF-16 is only ever what an admin's PowerShell made.
fn utf16_or_kind(path: &Path) -> Result<LogKind, w3c::Error> {
    if w3c::utf16::is_utf16_file(path)? {
        let why = "UTF-16 text (as Windows PowerShell's Out-File and > write it), which watch does not follow (audit reads it)";
        return Ok(LogKind::Other(why.into()));
    }
    httpproxy::log_kind_file(path)
}

/// `*.log` files under `dir`, sorted (compressed archives are not followed),
/// walked by the rules every command reads by ([`w3c::collect_paths_named`]).
fn log_files(dir: &Path) -> Result<Vec<PathBuf>, WatchError> {
    let is_log = |name: &std::ffi::OsStr| {
        let name = name.as_encoded_bytes();
        name.len() >= 4 && name[name.len() - 4..].eq_ignore_ascii_case(b".log")
    };
    Ok(w3c::collect_paths_named(&[dir.to_path_buf()], is_log)?)
}

fn key_of(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}
