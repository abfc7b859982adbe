//! CSV files: casguard's own (users, devices, findings, partnerships) and the
//! Export-ActiveSyncLog set (Users, UserAgents, StatusCodes, Hourly) with
//! the columns Exchange writes, so existing workflows keep working.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::aggregate::Aggregate;
use crate::partnerships::{PartnershipEntry, PartnershipReport, UnpartneredDevice};
use crate::posture::{BasicAuthUse, Door, Evidence, OutlookMobileDoor, PostureBackdoor, UnusedDoor, UserPosture};
use crate::report::{DeviceReport, Finding, Report, UserReport};
use crate::simulate::{BackdoorChange, DeviceRef, RuleReport};

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct CsvError {
    pub path: PathBuf,
    #[source]
    pub source: csv::Error,
}

/// One CSV file being written, named in its errors.
struct Table {
    writer: csv::Writer<std::fs::File>,
    path: PathBuf,
}

impl Table {
    /// The file `name` in `dir`, its `header` row written.
    fn create(dir: &Path, name: &str, header: &[&str]) -> Result<Table, CsvError> {
        let path = dir.join(name);
        let writer = csv::Writer::from_path(&path).map_err(|source| CsvError { path: path.clone(), source })?;
        let mut table = Table { writer, path };
        table.record(header)?;
        Ok(table)
    }

    fn record<I, T>(&mut self, fields: I) -> Result<(), CsvError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.writer.write_record(fields).map_err(|source| CsvError { path: self.path.clone(), source })
    }

    /// Flushes the file; its path.
    fn finish(mut self) -> Result<PathBuf, CsvError> {
        self.writer.flush().map_err(|e| CsvError { path: self.path.clone(), source: csv::Error::from(e) })?;
        Ok(self.path)
    }
}

fn create_dir(dir: &Path) -> Result<(), CsvError> {
    std::fs::create_dir_all(dir).map_err(|e| CsvError { path: dir.to_path_buf(), source: csv::Error::from(e) })
}

/// `key:count` pairs joined with `;`.
fn counts<K: std::fmt::Display, N: std::fmt::Display>(pairs: impl IntoIterator<Item = (K, N)>) -> String {
    pairs.into_iter().map(|(k, n)| format!("{k}:{n}")).collect::<Vec<_>>().join(";")
}

/// A backdoor's evidence, `protocol:client:requests` joined with `;`.
fn evidence(by_protocol: &BTreeMap<&'static str, BTreeMap<String, u64>>) -> String {
    let items: Vec<String> = by_protocol
        .iter()
        .flat_map(|(protocol, clients)| clients.iter().map(move |(c, n)| format!("{protocol}:{c}:{n}")))
        .collect();
    items.join(";")
}

/// `key=count` pairs joined with `;`.
fn equals(pairs: &BTreeMap<String, u64>) -> String {
    pairs.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(";")
}

/// A time as written, or nothing.
fn time(t: &Option<String>) -> String {
    t.clone().unwrap_or_default()
}

/// One column of a CSV file: its header, and its field in the row of a `T`.
type Column<T> = (&'static str, fn(&T) -> String);

/// The file `name` in `dir`: the headers of `columns`, then a row per item
/// of `rows`. Each header stands beside its field, so the two cannot part.
fn write_rows<T>(
    dir: &Path,
    name: &str,
    columns: &[Column<T>],
    rows: impl IntoIterator<Item = T>,
) -> Result<PathBuf, CsvError> {
    let header: Vec<&str> = columns.iter().map(|(header, _)| *header).collect();
    let mut table = Table::create(dir, name, &header)?;
    for row in rows {
        table.record(columns.iter().map(|(_, field)| field(&row)))?;
    }
    table.finish()
}

/// One row of fields of any byte-like types.
macro_rules! row {
    ($table:expr, [$($field:expr),* $(,)?]) => {
        $table.record([$(AsRef::<[u8]>::as_ref(&$field)),*])?
    };
}

mod activesync_log;

use activesync_log::write_export_activesync_log;

/// Write every CSV file into `dir`; returns the paths written.
pub fn write_all(report: &Report, agg: &Aggregate, dir: &Path) -> Result<Vec<PathBuf>, CsvError> {
    create_dir(dir)?;
    let users: &[Column<&UserReport>] = &[
        ("user", |u| u.user.clone()),
        ("aliases", |u| u.aliases.join(";")),
        ("requests", |u| u.requests.to_string()),
        ("devices", |u| u.devices.len().to_string()),
        ("protocols", |u| counts(&u.protocols)),
        ("first_seen", |u| time(&u.first_seen)),
        ("last_seen", |u| time(&u.last_seen)),
    ];
    let devices: &[Column<(&UserReport, &DeviceReport)>] = &[
        ("user", |(u, _)| u.user.clone()),
        ("device", |(_, d)| d.id.clone()),
        ("type", |(_, d)| d.device_type.clone()),
        ("client", |(_, d)| d.client.clone()),
        ("user_agents", |(_, d)| d.user_agents.join(";")),
        ("requests", |(_, d)| d.requests.to_string()),
        ("protocols", |(_, d)| counts(&d.protocols)),
        ("commands", |(_, d)| counts(&d.commands)),
        ("sources", |(_, d)| d.sources.iter().map(|s| s.ip.as_str()).collect::<Vec<_>>().join(";")),
        ("networks", |(_, d)| device_networks(d)),
        ("activesync_access", |(_, d)| {
            d.access.as_ref().map(|a| format!("{} {}", a.state, a.reason).trim().to_string()).unwrap_or_default()
        }),
        ("first_seen", |(_, d)| time(&d.first_seen)),
        ("last_seen", |(_, d)| time(&d.last_seen)),
    ];
    let findings: &[Column<&Finding>] = &[
        ("kind", |f| f.kind.key().to_string()),
        ("severity", |f| f.severity.key().to_string()),
        ("user", |f| f.user.clone().unwrap_or_default()),
        ("summary", |f| f.summary.clone()),
        ("requests", |f| f.requests.to_string()),
        ("outcome", |f| f.outcome.unwrap_or_default().to_string()),
        ("rule", |f| f.rule.unwrap_or_default().to_string()),
        ("devices", |f| f.devices.iter().map(|d| d.id.as_str()).collect::<Vec<_>>().join(";")),
        ("sources", |f| finding_sources(f)),
        ("first_seen", |f| time(&f.first_seen)),
        ("last_seen", |f| time(&f.last_seen)),
    ];
    let mut written = vec![
        write_rows(dir, "users.csv", users, &report.users)?,
        write_rows(
            dir,
            "devices.csv",
            devices,
            report.users.iter().flat_map(|u| u.devices.iter().map(move |d| (u, d))),
        )?,
        write_rows(dir, "findings.csv", findings, &report.findings)?,
    ];
    if let Some(partnerships) = &report.partnerships {
        written.extend(write_partnerships(partnerships, dir)?);
    }
    written.extend(write_export_activesync_log(agg, dir)?);
    Ok(written)
}

/// A device's networks, each once, in order.
fn device_networks(d: &DeviceReport) -> String {
    let mut networks: Vec<&str> = d.sources.iter().map(|s| s.network.as_str()).collect();
    networks.sort_unstable();
    networks.dedup();
    networks.join(";")
}

/// A finding's sources (its devices', then its own), each once, in order.
fn finding_sources(f: &Finding) -> String {
    let mut sources: Vec<String> = (f.devices.iter().flat_map(|d| &d.sources))
        .chain(&f.source)
        .chain(&f.sources)
        .map(|s| format!("{} [{}]", s.ip, s.network))
        .collect();
    sources.sort();
    sources.dedup();
    sources.join(";")
}

/// `partnerships.csv` (every partnership) and `devices-without-partnership.csv`.
fn write_partnerships(report: &PartnershipReport, dir: &Path) -> Result<Vec<PathBuf>, CsvError> {
    let partnerships: &[Column<&PartnershipEntry>] = &[
        ("user", |e| e.user.clone()),
        ("owner", |e| e.owner.clone()),
        ("device", |e| e.device_id.clone()),
        ("type", |e| e.device_type.clone()),
        ("model", |e| e.model.clone()),
        ("os", |e| e.os.clone()),
        ("client", |e| e.client.clone()),
        ("client_type", |e| e.client_type.clone()),
        ("outlook_mobile", |e| e.outlook_mobile.to_string()),
        ("first_sync", |e| time(&e.first_sync)),
        ("last_success_sync", |e| time(&e.last_success_sync)),
        ("last_sync_attempt", |e| time(&e.last_sync_attempt)),
        ("access_state", |e| e.access_state.clone()),
        ("access_state_reason", |e| e.access_state_reason.clone()),
        ("requests", |e| e.requests.to_string()),
        ("log_first_seen", |e| time(&e.log_first_seen)),
        ("log_last_seen", |e| time(&e.log_last_seen)),
        ("log_user", |e| e.log_user.clone().unwrap_or_default()),
        ("idle_days", |e| e.idle_days.map(|d| d.to_string()).unwrap_or_default()),
        ("stale", |e| e.stale.to_string()),
        ("file", |e| e.file.clone()),
        ("line", |e| e.line.to_string()),
    ];
    let without: &[Column<&UnpartneredDevice>] = &[
        ("user", |d| d.user.clone()),
        ("device", |d| d.device_id.clone()),
        ("type", |d| d.device_type.clone()),
        ("client", |d| d.client.clone()),
        ("requests", |d| d.requests.to_string()),
        ("first_seen", |d| time(&d.first_seen)),
        ("last_seen", |d| time(&d.last_seen)),
    ];
    Ok(vec![
        write_rows(dir, "partnerships.csv", partnerships, &report.partnerships)?,
        write_rows(dir, "devices-without-partnership.csv", without, &report.without_partnership)?,
    ])
}

/// `simulate --format csv`: rules.csv, denied.csv (per rule, user and device),
/// backdoors.csv, and denied_other.csv (monitoring probes and computer
/// accounts a rule would deny, with examples).
pub fn write_simulation(report: &crate::simulate::SimReport, dir: &Path) -> Result<Vec<PathBuf>, CsvError> {
    create_dir(dir)?;
    let rules: &[Column<&RuleReport>] = &[
        ("rule", |r| r.name.clone()),
        ("action", |r| r.action.to_string()),
        ("line", |r| r.line.map(|l| l.to_string()).unwrap_or_default()),
        ("matched_requests", |r| r.matched_requests.to_string()),
        ("denied_requests", |r| r.denied_requests.to_string()),
        ("users", |r| r.users.len().to_string()),
        ("devices", |r| r.devices.len().to_string()),
        ("anonymous_requests", |r| r.anonymous_requests.to_string()),
        ("first_seen", |r| time(&r.first_seen)),
        ("last_seen", |r| time(&r.last_seen)),
        ("provision_denied", |r| r.provision_denied.to_string()),
        ("provision_from_known_devices", |r| r.provision_from_known_devices.map(|n| n.to_string()).unwrap_or_default()),
    ];
    let denied: &[Column<(&RuleReport, &DeviceRef)>] = &[
        ("rule", |(r, _)| r.name.clone()),
        ("user", |(_, d)| d.user.clone()),
        ("device", |(_, d)| d.id.clone()),
        ("requests", |(_, d)| d.requests.to_string()),
    ];
    let backdoors: &[Column<&crate::simulate::Backdoor>] = &[
        ("user", |b| b.user.clone()),
        ("denied_on", |b| b.denied_on.join(";")),
        ("still_reaches", |b| b.still_reaches.join(";")),
        ("clients", |b| evidence(&b.evidence)),
    ];
    let mut written = vec![
        write_rows(dir, "rules.csv", rules, &report.rules)?,
        write_rows(dir, "denied.csv", denied, report.rules.iter().flat_map(|r| r.devices.iter().map(move |d| (r, d))))?,
        write_rows(dir, "backdoors.csv", backdoors, &report.backdoors)?,
    ];

    let mut w = Table::create(dir, "denied_other.csv", &["kind", "rule", "denied_requests", "examples"])?;
    for r in &report.probes.rules {
        row!(w, ["probe", &r.name, &r.denied_requests.to_string(), &r.user_agents.join(";")]);
    }
    for r in &report.machines.rules {
        row!(w, ["machine", &r.name, &r.denied_requests.to_string(), &r.accounts.join(";")]);
    }
    written.push(w.finish()?);
    Ok(written)
}

/// The CSV files of `simulate --baseline` into `dir`: `change.csv`, one row
/// per change, rule, user, protocol and client, and `backdoors_change.csv`.
pub fn write_change(report: &crate::simulate::ChangeReport, dir: &Path) -> Result<Vec<PathBuf>, CsvError> {
    create_dir(dir)?;
    let mut written = Vec::new();

    let mut w = Table::create(
        dir,
        "change.csv",
        &["change", "rule", "of", "mechanism", "denied_today_by", "user", "protocol", "client", "requests"],
    )?;
    let sections = [
        ("newly_cut_off", &report.newly_cut_off),
        ("already_cut_off", &report.already_cut_off),
        ("newly_allowed", &report.newly_allowed),
    ];
    for (change, rules) in sections {
        for r in rules {
            let today = r.denied_today_by.clone().unwrap_or_default();
            for u in &r.users {
                for (protocol, clients) in &u.clients {
                    for (client, n) in clients {
                        row!(
                            w,
                            [change, &r.rule, r.of, r.mechanism, &today, &u.user, protocol, client, &n.to_string()]
                        );
                    }
                }
            }
            if r.anonymous_requests > 0 {
                row!(w, [change, &r.rule, r.of, r.mechanism, &today, "", "", "", &r.anonymous_requests.to_string()]);
            }
        }
    }
    written.push(w.finish()?);

    let backdoors: &[Column<&BackdoorChange>] = &[
        ("user", |b| b.user.clone()),
        ("status", |b| b.status.to_string()),
        ("denied_on_today", |b| b.denied_on_today.join(";")),
        ("denied_on_after", |b| b.denied_on_after.join(";")),
        ("open_today", |b| b.open_today.join(";")),
        ("closed", |b| b.closed.join(";")),
        ("still_open", |b| b.still_open.join(";")),
        ("mobile", |b| b.mobile.to_string()),
        ("clients", |b| evidence(&b.evidence)),
    ];
    written.push(write_rows(dir, "backdoors_change.csv", backdoors, &report.backdoors)?);
    Ok(written)
}

/// Write the posture into `dir`: doors.csv, backdoors.csv, outlook_mobile.csv, unused.csv,
/// basic_auth.csv and disable-unused.ps1 (the `Set-CASMailbox` lines, then the
/// `Set-User -RemotePowerShellEnabled $false` lines commented out under a warning).
pub fn write_posture(report: &crate::posture::PostureReport, dir: &Path) -> Result<Vec<PathBuf>, CsvError> {
    create_dir(dir)?;
    let doors: &[Column<(&UserPosture, &Door)>] = &[
        ("user", |(u, _)| u.user.clone()),
        ("protocol", |(_, d)| d.protocol.to_string()),
        ("state", |(_, d)| d.state.to_string()),
        ("blocked_by", |(_, d)| d.blocked_by.clone().unwrap_or_default()),
        ("denied_by", |(_, d)| equals(&d.denied_by)),
        ("used", |(_, d)| d.used.to_string()),
        ("requests", |(_, d)| d.requests.to_string()),
        ("reached", |(_, d)| d.reached.to_string()),
        ("denied", |(_, d)| d.denied.to_string()),
        ("clients", |(_, d)| equals(&d.clients)),
        ("networks", |(_, d)| equals(&d.networks)),
    ];
    let backdoors: &[Column<(&PostureBackdoor, &Evidence)>] = &[
        ("user", |(b, _)| b.user.clone()),
        ("risk", |(b, _)| b.risk.to_string()),
        ("level", |(b, _)| b.level.to_string()),
        ("gated_by", |(b, _)| {
            b.gated_by
                .iter()
                .map(|g| format!("{} {} by {}", g.client, g.protocol, g.rule))
                .collect::<Vec<_>>()
                .join(";")
        }),
        ("protocol", |(_, e)| e.protocol.to_string()),
        ("client", |(_, e)| e.client.clone()),
        ("kind", |(_, e)| e.kind.to_string()),
        ("network", |(_, e)| e.network.clone()),
        ("requests", |(_, e)| e.requests.to_string()),
        ("evidence_risk", |(_, e)| e.risk.to_string()),
    ];
    let outlook_mobile: &[Column<(&UserPosture, &OutlookMobileDoor)>] = &[
        ("user", |(u, _)| u.user.clone()),
        ("sign_in", |(_, d)| d.sign_in.to_string()),
        ("client", |(_, d)| d.client.clone()),
        ("state", |(_, d)| d.state.to_string()),
        ("blocked_by", |(_, d)| d.blocked_by.clone().unwrap_or_default()),
        ("reached", |(_, d)| d.reached.to_string()),
        ("denied", |(_, d)| d.denied.to_string()),
    ];
    let unused: &[Column<&UnusedDoor>] = &[
        ("user", |d| d.user.clone()),
        ("protocol", |d| d.protocol.to_string()),
        ("switch", |d| d.switch.clone().unwrap_or_default()),
    ];
    let basic_auth: &[Column<&BasicAuthUse>] = &[
        ("protocol", |b| b.protocol.to_string()),
        ("client", |b| b.client.clone()),
        ("requests", |b| b.requests.to_string()),
        ("users", |b| b.users.join(";")),
    ];
    let users = &report.users;
    let mut written = vec![
        write_rows(dir, "doors.csv", doors, users.iter().flat_map(|u| u.doors.iter().map(move |d| (u, d))))?,
        write_rows(
            dir,
            "backdoors.csv",
            backdoors,
            report.backdoors.iter().flat_map(|b| b.evidence.iter().chain(&b.context).map(move |e| (b, e))),
        )?,
        write_rows(
            dir,
            "outlook_mobile.csv",
            outlook_mobile,
            users.iter().flat_map(|u| u.outlook_mobile.iter().map(move |d| (u, d))),
        )?,
        write_rows(dir, "unused.csv", unused, &report.unused.doors)?,
        write_rows(dir, "basic_auth.csv", basic_auth, &report.basic_auth)?,
    ];

    let path = dir.join("disable-unused.ps1");
    let mut script = String::from("# Doors open but unused in the logs read by casguard posture.\n");
    let (shell, mailbox): (Vec<&String>, Vec<&String>) =
        report.unused.commands.iter().partition(|c| crate::posture::closes_the_shell(c));
    for c in mailbox {
        script.push_str(c);
        script.push('\n');
    }
    // Never run as they are: an administrator whose logs show no /PowerShell
    // request would lose the Exchange Management Shell.
    if !shell.is_empty() {
        script.push_str(crate::posture::SHELL_WARNING);
        for c in shell {
            script.push_str("# ");
            script.push_str(c);
            script.push('\n');
        }
    }
    std::fs::write(&path, script).map_err(|e| CsvError { path: path.clone(), source: csv::Error::from(e) })?;
    written.push(path);
    Ok(written)
}
