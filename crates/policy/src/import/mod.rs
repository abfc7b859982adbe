//! What is in force, read from an organisation's own exports: the files
//! `scripts/Export-CasguardInputs.ps1` writes (one per cmdlet, recognised
//! by content, as `Export-Csv`, `ConvertTo-Json` or `Export-Clixml`) and
//! its IIS configuration (`applicationHost.config`, the virtual
//! directories' `web.config` files). The result is a policy file that
//! evaluates requests as those settings do. What cannot be imported exactly
//! is named with the reason ([`Imported::inexact`]); nothing is dropped
//! silently. One module per source, as under `emit/`.

mod cmdlets;
mod iis;
mod sections;
mod table;
mod write;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use exchange::{Catalog, Networks};

use crate::blocks::{AccessLevel, AuthPolicy, Characteristic, EwsSettings, MailboxSwitches};
use crate::compile::user_key;
use crate::{Policy, PolicyError};

/// Files larger than this are refused: exports and configuration are far smaller.
const MAX_FILE: u64 = 512 << 20;
/// How deep and how many files a folder walk goes.
const MAX_DEPTH: usize = 8;
const MAX_FILES: usize = 20_000;

/// One thing said about the import: where, what, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub source: String,
    pub what: String,
    pub reason: String,
}

/// Notes, each said once.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    pub inexact: Vec<Note>,
    pub info: Vec<Note>,
    seen: HashSet<(String, String, String)>,
}

impl Notes {
    /// A setting that is not imported exactly.
    pub fn inexact(&mut self, source: String, what: String, reason: String) {
        if self.seen.insert((source.clone(), what.clone(), reason.clone())) {
            self.inexact.push(Note { source, what, reason });
        }
    }

    /// Something worth knowing that loses nothing.
    pub fn info(&mut self, source: String, text: String) {
        if self.seen.insert((source.clone(), text.clone(), String::new())) {
            self.info.push(Note { source, what: text, reason: String::new() });
        }
    }
}

/// One mailbox as exported.
#[derive(Clone, Debug, Default)]
pub(crate) struct Mailbox {
    /// Identity first (SamAccountName), then the names it signs in with.
    pub names: Vec<String>,
    pub switches: MailboxSwitches,
    pub ews: EwsSettings,
    pub allowed: Vec<String>,
    pub blocked: Vec<String>,
}

/// The Exchange settings in force.
#[derive(Debug, Default)]
pub(crate) struct InForce {
    pub org_read: bool,
    pub ews_org: Option<EwsSettings>,
    pub mapi_http_org: Option<bool>,
    pub default_auth_policy: Option<String>,
    pub mailboxes: Vec<Mailbox>,
    pub device_default: Option<AccessLevel>,
    pub device_rules: Vec<(Characteristic, String, AccessLevel)>,
    pub auth_policies: Vec<AuthPolicy>,
    pub auth_users: Vec<(Vec<String>, String)>,
    /// Every Get-User record's names, to join sign-in names to mailboxes.
    pub users: Vec<Vec<String>>,
}

/// The result of an import.
#[derive(Debug)]
pub struct Imported {
    /// The policy file, already checked to compile.
    pub policy_text: String,
    /// (file, what it was read as)
    pub sources: Vec<(String, String)>,
    /// Settings not imported exactly, with the reason.
    pub inexact: Vec<Note>,
    /// What else is worth knowing (files skipped, settings that decide nothing).
    pub info: Vec<Note>,
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), PolicyError> {
    let io = |source| PolicyError::Io { file: dir.display().to_string(), source };
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(io)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        if p.is_dir() && depth < MAX_DEPTH {
            walk(&p, depth + 1, out)?;
        } else if p.is_file() {
            if out.len() >= MAX_FILES {
                return Err(PolicyError::Invalid {
                    file: dir.display().to_string(),
                    line: None,
                    message: format!("more than {MAX_FILES} files: give the folder of one export"),
                });
            }
            out.push(p);
        }
    }
    Ok(())
}

fn invalid(file: &str, line: Option<usize>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid { file: file.to_string(), line, message: message.into() }
}

/// `line N: message` from the table readers, as a located error.
fn located(file: &str, message: String) -> PolicyError {
    let line = message.strip_prefix("line ").and_then(|r| r.split(':').next()).and_then(|n| n.parse().ok());
    let text = match line {
        Some(_) => message.split_once(": ").map_or(message.clone(), |(_, m)| m.to_string()),
        None => message,
    };
    invalid(file, line, text)
}

/// A line Export-Csv could have written as its header: property names,
/// quoted or not, separated by commas.
fn csv_header(line: &str) -> bool {
    let names: Vec<&str> = line.trim_end().split(',').map(|n| n.trim().trim_matches('"')).collect();
    names.len() >= 2
        && names.iter().all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)))
}

fn is_log_name(file_name: &str) -> bool {
    let lower = file_name.to_ascii_lowercase();
    lower.ends_with(".gz") || lower.ends_with(".log") || lower.ends_with(".parquet")
}

/// Read every export and configuration file under `folder` for the IIS
/// site `site` (`Default Web Site` on Exchange's front end).
pub fn import_folder(folder: &Path, site: &str) -> Result<Imported, PolicyError> {
    let mut paths = Vec::new();
    if folder.is_file() {
        paths.push(folder.to_path_buf());
    } else {
        walk(folder, 0, &mut paths)?;
    }
    let mut files = Vec::new();
    let mut logs = 0usize;
    for path in &paths {
        let name = path.strip_prefix(folder).unwrap_or(path).display().to_string();
        let name = if name.is_empty() { path.display().to_string() } else { name };
        if path.file_name().is_some_and(|n| is_log_name(&n.to_string_lossy())) {
            logs += 1;
            continue;
        }
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size > MAX_FILE {
            return Err(invalid(
                &name,
                None,
                format!("{size} bytes: larger than any export casguard reads ({MAX_FILE})"),
            ));
        }
        let bytes = std::fs::read(path).map_err(|source| PolicyError::Io { file: name.clone(), source })?;
        files.push((name, bytes));
    }
    read_all(&folder.display().to_string(), files, logs, site)
}

/// [`import_folder`] on files already read: (name, content), the name as
/// in the folder (the last part says what a web.config is for).
pub fn import_files(label: &str, files: Vec<(String, Vec<u8>)>, site: &str) -> Result<Imported, PolicyError> {
    read_all(label, files, 0, site)
}

fn read_all(label: &str, files: Vec<(String, Vec<u8>)>, logs: usize, site: &str) -> Result<Imported, PolicyError> {
    let mut notes = Notes::default();
    let mut state = InForce::default();
    let mut sources = Vec::new();
    let mut xml: Vec<(String, String, String)> = Vec::new();
    let mut logs = logs;
    for (name, bytes) in files {
        let file_name = name.rsplit(['/', '\\']).next().unwrap_or(&name).to_string();
        if is_log_name(&file_name) {
            logs += 1;
            continue;
        }
        let text = match table::decode(&bytes) {
            Ok(t) => t,
            Err(why) => {
                notes.info(name.clone(), format!("skipped: {why}"));
                continue;
            }
        };
        let head = text.trim_start();
        let table = if head.starts_with('<') {
            let doc = roxmltree::Document::parse(&text)
                .map_err(|e| invalid(&name, Some(e.pos().row as usize), e.to_string()))?;
            match doc.root_element().tag_name().name() {
                "Objs" => table::from_clixml(&doc).map_err(|e| located(&name, e))?,
                "configuration" => {
                    xml.push((name.clone(), file_name.clone(), text.clone()));
                    continue;
                }
                other => {
                    notes.info(
                        name.clone(),
                        format!("skipped: XML with a <{other}> root is neither IIS configuration nor Export-Clixml"),
                    );
                    continue;
                }
            }
        } else if head.starts_with('{') || head.starts_with('[') {
            table::from_json(&text).map_err(|e| located(&name, e))?
        } else if head.starts_with("#Software") || head.starts_with("#Version") || head.starts_with("#Fields") {
            logs += 1;
            continue;
        } else if head.starts_with("#TYPE ") || head.lines().next().is_some_and(csv_header) {
            table::from_csv(&text).map_err(|e| located(&name, e))?
        } else {
            notes.info(name.clone(), "skipped: not an export or configuration file casguard reads".into());
            continue;
        };
        match cmdlets::recognise(&table) {
            Some(cmdlets::Cmdlet::MobileDeviceStatistics) => {
                notes.info(
                    name.clone(),
                    "device statistics: read with --devices by audit and simulate, not by import".into(),
                );
            }
            Some(c) => {
                sources
                    .push((name.clone(), format!("{} ({}, {} records)", c.name(), table.format, table.records.len())));
                if c == cmdlets::Cmdlet::AuthenticationPolicy && table.has_field_prefix("AllowBasicAuth") {
                    notes.info(name.clone(), "AllowBasicAuth* are Exchange Online settings: on premises the BlockLegacyAuth* switches decide".into());
                }
                cmdlets::read(c, &name, &table, &mut state, &mut notes);
            }
            None => notes.info(name.clone(), "skipped: not the output of a cmdlet casguard reads".into()),
        }
    }
    if logs > 0 {
        notes.info(label.to_string(), format!("{logs} log files left to audit and simulate"));
    }
    let mut configs = Vec::new();
    for (name, file_name, text) in &xml {
        let doc =
            roxmltree::Document::parse(text).map_err(|e| invalid(name, Some(e.pos().row as usize), e.to_string()))?;
        let is_host = doc.root_element().children().any(|c| c.has_tag_name("system.applicationHost"))
            || file_name.to_ascii_lowercase().starts_with("applicationhost");
        let place = if is_host { None } else { iis::web_config_place(file_name, site, &doc) };
        if !is_host && place.is_none() {
            notes.inexact(
                name.clone(),
                "this web.config".into(),
                "casguard cannot tell which virtual directory it belongs to: name it like <Site>-<VDir>_web.config \
                 (DefaultWebSite-EWS_web.config)"
                    .into(),
            );
            continue;
        }
        let what = match &place {
            None => "applicationHost.config".to_string(),
            Some((s, v)) => {
                let at = format!("{s}{}", if v == "/" { String::new() } else { v.clone() });
                if s.eq_ignore_ascii_case(site) {
                    format!("web.config of {at}")
                } else {
                    format!("web.config of {at} (another site: not imported)")
                }
            }
        };
        sources.push((name.clone(), what));
        configs.push(iis::ConfigFile { name: name.clone(), doc, place });
    }
    let hosts: Vec<&str> = configs.iter().filter(|c| c.place.is_none()).map(|c| c.name.as_str()).collect();
    if hosts.len() > 1 {
        notes.inexact(
            hosts.join(", "),
            "several applicationHost.config files".into(),
            "each server has its own; they are read as one server's, in name order: import each server's files apart \
             to see what is in force on each"
                .into(),
        );
    }
    let iis = iis::read(&configs, site, &mut notes);
    settle(&mut state, &mut notes);
    let text = write::policy_text(&state, &iis, label, &sources, &notes);
    Policy::from_toml(&text, Path::new("in-force.toml"), &Catalog::builtin(), &Networks::builtin())
        .map_err(|e| invalid(label, None, format!("the imported policy does not compile: {e}")))?;
    Ok(Imported { policy_text: text, sources, inexact: notes.inexact, info: notes.info })
}

/// Join what several cmdlets said of one person, drop repeats, and name
/// what refers to something that was not exported.
fn settle(state: &mut InForce, notes: &mut Notes) {
    // Each Get-User record by every key it has, the first record per key.
    let mut by_key: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, u) in state.users.iter().enumerate() {
        for n in u {
            by_key.entry(user_key(n)).or_insert(i);
        }
    }
    for m in &mut state.mailboxes {
        let mut mine: HashSet<String> = m.names.iter().map(|n| user_key(n)).collect();
        let Some(&i) = m.names.iter().find_map(|n| by_key.get(&user_key(n))) else { continue };
        for n in &state.users[i] {
            if mine.insert(user_key(n)) {
                m.names.push(n.clone());
            }
        }
    }
    let mut seen = HashSet::new();
    state.mailboxes.retain(|m| {
        let first = user_key(&m.names[0]);
        let fresh = seen.insert(first.clone());
        if !fresh {
            notes.inexact(
                "Get-CASMailbox".into(),
                format!("mailbox '{}'", m.names[0]),
                format!("another mailbox has the same account name '{first}'; only the first is kept"),
            );
        }
        fresh
    });
    let known = |p: &str, policies: &[AuthPolicy]| policies.iter().any(|q| q.name.eq_ignore_ascii_case(p));
    if let Some(d) = state.default_auth_policy.clone() {
        if !known(&d, &state.auth_policies) {
            notes.inexact(
                "Get-OrganizationConfig".into(),
                format!("DefaultAuthenticationPolicy '{d}'"),
                "the policy is not in the Get-AuthenticationPolicy export, so what it blocks is unknown".into(),
            );
            state.default_auth_policy = None;
        }
    }
    let policies = state.auth_policies.clone();
    state.auth_users.retain(|(u, p)| {
        let ok = known(p, &policies);
        if !ok {
            notes.inexact(
                "Get-User".into(),
                format!("authentication policy '{p}' of {}", u[0]),
                "the policy is not in the Get-AuthenticationPolicy export, so what it blocks is unknown".into(),
            );
        }
        ok
    });
    let mut seen = HashSet::new();
    state.auth_users.retain(|(u, _)| seen.insert(user_key(&u[0])));
    if !state.auth_policies.is_empty() && state.users.is_empty() && state.default_auth_policy.is_some() {
        notes.info(
            "Get-AuthenticationPolicy".into(),
            "no Get-User export: who has a policy of their own is unknown, so the default is taken to apply to everyone".into(),
        );
    }
    if state.mailboxes.iter().any(|m| m.switches.owa_for_devices_enabled == Some(false)) {
        notes.info(
            "Get-CASMailbox".into(),
            "OWAforDevicesEnabled=false is kept but decides no request: the request model does not tell OWA for Devices from Outlook on the web".into(),
        );
    }
    if state.mailboxes.iter().any(|m| m.switches.pop_enabled == Some(false) || m.switches.imap_enabled == Some(false))
        || state
            .auth_policies
            .iter()
            .any(|p| p.block_legacy.iter().chain(&p.block_modern).any(|a| a.protocol().is_none()))
    {
        notes.info(
            "Get-CASMailbox".into(),
            "POP and IMAP settings are kept but decide no request: POP and IMAP are not HTTP and have no IIS logs"
                .into(),
        );
    }
    if !state.auth_policies.is_empty() {
        notes.info(
            "Get-AuthenticationPolicy".into(),
            "authentication policies decide only requests whose authentication type is known (HttpProxy logs, the gateway); IIS logs do not carry it".into(),
        );
    }
}
