//! CSV files: casguard's own (users, devices, findings, partnerships) and the
//! Export-ActiveSyncLog set (Users, UserAgents, StatusCodes, Hourly) with
//! the columns Exchange writes, so existing workflows keep working.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::aggregate::Aggregate;
use crate::report::Report;

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

/// A time as written, or nothing.
fn time(t: &Option<String>) -> String {
    t.clone().unwrap_or_default()
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
    let mut written = Vec::new();

    let mut w = Table::create(
        dir,
        "users.csv",
        &["user", "aliases", "requests", "devices", "protocols", "first_seen", "last_seen"],
    )?;
    for user in &report.users {
        row!(
            w,
            [
                user.user,
                user.aliases.join(";"),
                user.requests.to_string(),
                user.devices.len().to_string(),
                counts(&user.protocols),
                time(&user.first_seen),
                time(&user.last_seen),
            ]
        );
    }
    written.push(w.finish()?);

    let mut w = Table::create(
        dir,
        "devices.csv",
        &[
            "user",
            "device",
            "type",
            "client",
            "user_agents",
            "requests",
            "protocols",
            "commands",
            "sources",
            "networks",
            "activesync_access",
            "first_seen",
            "last_seen",
        ],
    )?;
    for user in &report.users {
        for d in &user.devices {
            let ips: Vec<&str> = d.sources.iter().map(|s| s.ip.as_str()).collect();
            let mut networks: Vec<&str> = d.sources.iter().map(|s| s.network.as_str()).collect();
            networks.sort_unstable();
            networks.dedup();
            row!(
                w,
                [
                    user.user,
                    d.id,
                    d.device_type,
                    d.client,
                    d.user_agents.join(";"),
                    d.requests.to_string(),
                    counts(&d.protocols),
                    counts(&d.commands),
                    ips.join(";"),
                    networks.join(";"),
                    d.access
                        .as_ref()
                        .map(|a| format!("{} {}", a.state, a.reason).trim().to_string())
                        .unwrap_or_default(),
                    time(&d.first_seen),
                    time(&d.last_seen),
                ]
            );
        }
    }
    written.push(w.finish()?);

    let mut w = Table::create(
        dir,
        "findings.csv",
        &[
            "kind",
            "severity",
            "user",
            "summary",
            "requests",
            "outcome",
            "rule",
            "devices",
            "sources",
            "first_seen",
            "last_seen",
        ],
    )?;
    for f in &report.findings {
        let devices: Vec<&str> = f.devices.iter().map(|d| d.id.as_str()).collect();
        let mut sources: Vec<String> = (f.devices.iter().flat_map(|d| &d.sources))
            .chain(&f.source)
            .chain(&f.sources)
            .map(|s| format!("{} [{}]", s.ip, s.network))
            .collect();
        sources.sort();
        sources.dedup();
        row!(
            w,
            [
                f.kind.key(),
                f.severity.key(),
                f.user.clone().unwrap_or_default(),
                f.summary,
                f.requests.to_string(),
                f.outcome.unwrap_or_default(),
                f.rule.unwrap_or_default(),
                devices.join(";"),
                sources.join(";"),
                time(&f.first_seen),
                time(&f.last_seen),
            ]
        );
    }
    written.push(w.finish()?);

    if let Some(partnerships) = &report.partnerships {
        written.extend(write_partnerships(partnerships, dir)?);
    }
    written.extend(write_export_activesync_log(agg, dir)?);
    Ok(written)
}

/// `partnerships.csv` (every partnership) and `devices-without-partnership.csv`.
fn write_partnerships(report: &crate::partnerships::PartnershipReport, dir: &Path) -> Result<Vec<PathBuf>, CsvError> {
    let mut w = Table::create(
        dir,
        "partnerships.csv",
        &[
            "user",
            "owner",
            "device",
            "type",
            "model",
            "os",
            "client",
            "client_type",
            "outlook_mobile",
            "first_sync",
            "last_success_sync",
            "last_sync_attempt",
            "access_state",
            "access_state_reason",
            "requests",
            "log_first_seen",
            "log_last_seen",
            "log_user",
            "idle_days",
            "stale",
            "file",
            "line",
        ],
    )?;
    for e in &report.partnerships {
        row!(
            w,
            [
                e.user,
                e.owner,
                e.device_id,
                e.device_type,
                e.model,
                e.os,
                e.client,
                e.client_type,
                e.outlook_mobile.to_string(),
                time(&e.first_sync),
                time(&e.last_success_sync),
                time(&e.last_sync_attempt),
                e.access_state,
                e.access_state_reason,
                e.requests.to_string(),
                time(&e.log_first_seen),
                time(&e.log_last_seen),
                e.log_user.clone().unwrap_or_default(),
                e.idle_days.map(|d| d.to_string()).unwrap_or_default(),
                e.stale.to_string(),
                e.file,
                e.line.to_string(),
            ]
        );
    }
    let mut written = vec![w.finish()?];

    let mut w = Table::create(
        dir,
        "devices-without-partnership.csv",
        &["user", "device", "type", "client", "requests", "first_seen", "last_seen"],
    )?;
    for d in &report.without_partnership {
        row!(
            w,
            [
                d.user,
                d.device_id,
                d.device_type,
                d.client,
                d.requests.to_string(),
                time(&d.first_seen),
                time(&d.last_seen),
            ]
        );
    }
    written.push(w.finish()?);
    Ok(written)
}

/// `simulate --format csv`: rules.csv, denied.csv (per rule, user and device),
/// backdoors.csv, and denied_other.csv (monitoring probes and computer
/// accounts a rule would deny, with examples).
pub fn write_simulation(report: &crate::simulate::SimReport, dir: &Path) -> Result<Vec<PathBuf>, CsvError> {
    create_dir(dir)?;
    let mut written = Vec::new();
    let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();

    let mut w = Table::create(
        dir,
        "rules.csv",
        &[
            "rule",
            "action",
            "line",
            "matched_requests",
            "denied_requests",
            "users",
            "devices",
            "anonymous_requests",
            "first_seen",
            "last_seen",
            "provision_denied",
            "provision_from_known_devices",
        ],
    )?;
    for r in &report.rules {
        row!(
            w,
            [
                r.name,
                r.action,
                r.line.map(|l| l.to_string()).unwrap_or_default(),
                r.matched_requests.to_string(),
                r.denied_requests.to_string(),
                r.users.len().to_string(),
                r.devices.len().to_string(),
                r.anonymous_requests.to_string(),
                time(&r.first_seen),
                time(&r.last_seen),
                r.provision_denied.to_string(),
                opt(r.provision_from_known_devices),
            ]
        );
    }
    written.push(w.finish()?);

    let mut w = Table::create(dir, "denied.csv", &["rule", "user", "device", "requests"])?;
    for r in &report.rules {
        for d in &r.devices {
            row!(w, [r.name, d.user, d.id, d.requests.to_string()]);
        }
    }
    written.push(w.finish()?);

    let mut w = Table::create(dir, "backdoors.csv", &["user", "denied_on", "still_reaches", "clients"])?;
    for b in &report.backdoors {
        row!(w, [b.user, b.denied_on.join(";"), b.still_reaches.join(";"), evidence(&b.evidence)]);
    }
    written.push(w.finish()?);

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

    let mut w = Table::create(
        dir,
        "backdoors_change.csv",
        &[
            "user",
            "status",
            "denied_on_today",
            "denied_on_after",
            "open_today",
            "closed",
            "still_open",
            "mobile",
            "clients",
        ],
    )?;
    for b in &report.backdoors {
        row!(
            w,
            [
                &b.user,
                b.status,
                &b.denied_on_today.join(";"),
                &b.denied_on_after.join(";"),
                &b.open_today.join(";"),
                &b.closed.join(";"),
                &b.still_open.join(";"),
                if b.mobile { "true" } else { "false" },
                &evidence(&b.evidence),
            ]
        );
    }
    written.push(w.finish()?);
    Ok(written)
}

/// Write the posture into `dir`: doors.csv, backdoors.csv, outlook_mobile.csv, unused.csv,
/// basic_auth.csv and disable-unused.ps1 (the `Set-CASMailbox` lines, then the
/// `Set-User -RemotePowerShellEnabled $false` lines commented out under a warning).
pub fn write_posture(report: &crate::posture::PostureReport, dir: &Path) -> Result<Vec<PathBuf>, CsvError> {
    create_dir(dir)?;
    let mut written = Vec::new();
    let join = |m: &BTreeMap<String, u64>| m.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(";");

    let mut w = Table::create(
        dir,
        "doors.csv",
        &[
            "user",
            "protocol",
            "state",
            "blocked_by",
            "denied_by",
            "used",
            "requests",
            "reached",
            "denied",
            "clients",
            "networks",
        ],
    )?;
    for u in &report.users {
        for d in &u.doors {
            row!(
                w,
                [
                    u.user,
                    d.protocol,
                    d.state,
                    d.blocked_by.clone().unwrap_or_default(),
                    join(&d.denied_by),
                    d.used.to_string(),
                    d.requests.to_string(),
                    d.reached.to_string(),
                    d.denied.to_string(),
                    join(&d.clients),
                    join(&d.networks),
                ]
            );
        }
    }
    written.push(w.finish()?);

    let mut w = Table::create(
        dir,
        "backdoors.csv",
        &["user", "risk", "level", "gated_by", "protocol", "client", "kind", "network", "requests", "evidence_risk"],
    )?;
    for b in &report.backdoors {
        let gates = b
            .gated_by
            .iter()
            .map(|g| format!("{} {} by {}", g.client, g.protocol, g.rule))
            .collect::<Vec<_>>()
            .join(";");
        for e in b.evidence.iter().chain(&b.context) {
            row!(
                w,
                [
                    b.user,
                    b.risk.to_string(),
                    b.level,
                    gates,
                    e.protocol,
                    e.client,
                    e.kind,
                    e.network,
                    e.requests.to_string(),
                    e.risk.to_string(),
                ]
            );
        }
    }
    written.push(w.finish()?);

    let mut w = Table::create(
        dir,
        "outlook_mobile.csv",
        &["user", "sign_in", "client", "state", "blocked_by", "reached", "denied"],
    )?;
    for u in &report.users {
        for d in &u.outlook_mobile {
            row!(
                w,
                [
                    u.user,
                    d.sign_in,
                    d.client,
                    d.state,
                    d.blocked_by.clone().unwrap_or_default(),
                    d.reached.to_string(),
                    d.denied.to_string(),
                ]
            );
        }
    }
    written.push(w.finish()?);

    let mut w = Table::create(dir, "unused.csv", &["user", "protocol", "switch"])?;
    for d in &report.unused.doors {
        row!(w, [d.user, d.protocol, d.switch.clone().unwrap_or_default()]);
    }
    written.push(w.finish()?);

    let mut w = Table::create(dir, "basic_auth.csv", &["protocol", "client", "requests", "users"])?;
    for b in &report.basic_auth {
        row!(w, [b.protocol, b.client, b.requests.to_string(), b.users.join(";")]);
    }
    written.push(w.finish()?);

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
