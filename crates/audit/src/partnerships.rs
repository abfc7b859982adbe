//! Mobile-device partnerships beside the traffic: every Outlook for iOS and
//! Android partnership, whether or not the logs hold its traffic (it may be
//! older than the logs, or idle); the ActiveSync devices the logs show with
//! no partnership; and the partnerships idle for more than N days, which are
//! what admins clean up.
//!
//! A partnership meets its traffic by device id (compared without regard to
//! ASCII case) under one of its user keys; failing that, by device id alone,
//! since the export's owner name may not be the logon name the logs carry
//! (see [`exchange::devices`]), and the user the logs name is shown beside it.
//!
//! Idle time is measured against one time for the whole report, never the
//! clock: the later of the exports' newest sync and the logs' last request,
//! so that a report can be made again from the same files and say the same.

use std::collections::HashMap;
use std::fmt::Write as _;

use exchange::devices::DeviceExport;
use exchange::{Catalog, Protocol};
use serde::Serialize;

use crate::aggregate::{Aggregate, DeviceAgg, Span};
use crate::report::time_string;
use crate::table::{fit, heading};

/// `--stale-days` when not given.
pub const DEFAULT_STALE_DAYS: u32 = 30;
const DAY: i64 = 86_400;

#[derive(Debug, Serialize)]
pub struct PartnershipReport {
    pub files: Vec<ExportFile>,
    pub stale_days: u32,
    /// What idle time is measured against (see the module documentation).
    pub measured_at: Option<String>,
    pub summary: PartnershipSummary,
    /// Every partnership, by user and device id.
    pub partnerships: Vec<PartnershipEntry>,
    /// ActiveSync devices in the logs that no partnership names.
    pub without_partnership: Vec<UnpartneredDevice>,
}

#[derive(Debug, Serialize)]
pub struct ExportFile {
    pub file: String,
    pub format: &'static str,
    pub encoding: &'static str,
    pub rows: u64,
    pub bad_rows: u64,
    pub first_bad: Vec<BadRowReport>,
    /// How `a/b/yyyy` dates were read: `month/day/year` or `day/month/year`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slash_dates: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct BadRowReport {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
pub struct PartnershipSummary {
    pub partnerships: usize,
    pub outlook_mobile: usize,
    pub outlook_mobile_without_traffic: usize,
    pub without_traffic: usize,
    pub stale: usize,
    pub without_partnership: usize,
}

#[derive(Debug, Serialize)]
pub struct PartnershipEntry {
    pub user: String,
    pub owner: String,
    pub device_id: String,
    pub device_type: String,
    pub model: String,
    pub os: String,
    pub user_agent: String,
    pub client: String,
    pub client_name: String,
    /// ClientType as exported (`EAS`, `MOWA`, `Outlook`).
    pub client_type: String,
    pub outlook_mobile: bool,
    pub first_sync: Option<String>,
    pub last_success_sync: Option<String>,
    pub last_sync_attempt: Option<String>,
    pub access_state: String,
    pub access_state_reason: String,
    /// Requests in the logs from this device.
    pub requests: u64,
    pub log_first_seen: Option<String>,
    pub log_last_seen: Option<String>,
    /// The user the logs name, when it is none of the partnership's user keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_user: Option<String>,
    /// Whole days since the last sync, sync attempt or request; `null` when never.
    pub idle_days: Option<u64>,
    pub stale: bool,
    pub file: String,
    pub line: u64,
}

#[derive(Debug, Serialize)]
pub struct UnpartneredDevice {
    pub user: String,
    pub device_id: String,
    pub device_type: String,
    pub client: String,
    pub client_name: String,
    pub requests: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

/// One ActiveSync device of the logs, and whether a partnership named it.
struct LogDevice<'a> {
    user: &'a str,
    id: &'a str,
    agg: &'a DeviceAgg,
    partnered: bool,
}

/// Join the partnerships of `exports` (each with the file it came from) to
/// the ActiveSync devices of `agg`.
pub fn build(
    exports: &[(String, DeviceExport)],
    agg: &Aggregate,
    catalog: &Catalog,
    stale_days: u32,
) -> PartnershipReport {
    let people = agg.people_tally();
    let mut devices: Vec<LogDevice<'_>> = Vec::new();
    for (user, u) in people.sorted_users() {
        for (id, d) in u.sorted_devices() {
            // A device id, not a user agent: ActiveSync requests name their DeviceType.
            if d.protocols[Protocol::ActiveSync.index()] > 0 && !d.device_type.is_empty() {
                devices.push(LogDevice { user, id, agg: d, partnered: false });
            }
        }
    }
    let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, d) in devices.iter().enumerate() {
        by_id.entry(d.id.to_ascii_lowercase()).or_default().push(i);
    }

    let newest = exports.iter().filter_map(|(_, e)| e.newest_time()).max();
    let logs_last = (!people.span.is_empty()).then_some(people.span.last);
    let measured_at = newest.max(logs_last);
    let outlook_mobile = catalog.id_of("outlook-mobile");

    let mut entries = Vec::new();
    for (file, export) in exports {
        for p in &export.partnerships {
            let found = by_id.get(&p.device_id.to_ascii_lowercase()).map(Vec::as_slice).unwrap_or_default();
            let own: Vec<usize> =
                found.iter().copied().filter(|&i| p.user_keys.iter().any(|k| k == devices[i].user)).collect();
            let (matched, log_user) = if own.is_empty() && !found.is_empty() {
                let mut users: Vec<&str> = found.iter().map(|&i| devices[i].user).collect();
                users.dedup();
                (found.to_vec(), Some(users.join(", ")))
            } else {
                (own, None)
            };
            let mut span = Span::default();
            let mut requests = 0;
            for &i in &matched {
                devices[i].partnered = true;
                requests += devices[i].agg.requests;
                span = Span {
                    first: span.first.min(devices[i].agg.span.first),
                    last: span.last.max(devices[i].agg.span.last),
                };
            }
            let last_contact = p.last_contact().max((!span.is_empty()).then_some(span.last));
            let idle = measured_at.zip(last_contact).map(|(at, last)| (at - last).max(0));
            let device = exchange::Device { device_type: &p.device_type, device_id: &p.device_id };
            let client_id = catalog.classify_device(&p.user_agent, device, Protocol::ActiveSync);
            let client = catalog.get(client_id);
            let (log_first_seen, log_last_seen) =
                if span.is_empty() { (None, None) } else { (time_string(span.first), time_string(span.last)) };
            entries.push(PartnershipEntry {
                user: p.user.clone(),
                owner: p.owner.clone(),
                device_id: p.device_id.clone(),
                device_type: p.device_type.clone(),
                model: p.device_model.clone(),
                os: p.device_os.clone(),
                user_agent: p.user_agent.clone(),
                client: client.id.clone(),
                client_name: client.name.clone(),
                client_type: p.client_type.clone(),
                outlook_mobile: Some(client_id) == outlook_mobile,
                first_sync: p.first_sync.and_then(time_string),
                last_success_sync: p.last_success_sync.and_then(time_string),
                last_sync_attempt: p.last_sync_attempt.and_then(time_string),
                access_state: p.access_state.clone(),
                access_state_reason: p.access_state_reason.clone(),
                requests,
                log_first_seen,
                log_last_seen,
                log_user,
                idle_days: idle.map(|s| (s / DAY) as u64),
                // Never heard from at all: nothing to keep.
                stale: idle.is_none_or(|s| s > i64::from(stale_days) * DAY),
                file: file.clone(),
                line: p.line,
            });
        }
    }
    entries.sort_by(|a, b| (&a.user, &a.device_id, &a.file, a.line).cmp(&(&b.user, &b.device_id, &b.file, b.line)));

    let without_partnership: Vec<UnpartneredDevice> = devices
        .iter()
        .filter(|d| !d.partnered)
        .map(|d| {
            let client = catalog.get(d.agg.client);
            UnpartneredDevice {
                user: d.user.to_string(),
                device_id: d.id.to_string(),
                device_type: d.agg.device_type.clone(),
                client: client.id.clone(),
                client_name: client.name.clone(),
                requests: d.agg.requests,
                first_seen: time_string(d.agg.span.first),
                last_seen: time_string(d.agg.span.last),
            }
        })
        .collect();

    let count = |f: &dyn Fn(&PartnershipEntry) -> bool| entries.iter().filter(|e| f(e)).count();
    let summary = PartnershipSummary {
        partnerships: entries.len(),
        outlook_mobile: count(&|e| e.outlook_mobile),
        outlook_mobile_without_traffic: count(&|e| e.outlook_mobile && e.requests == 0),
        without_traffic: count(&|e| e.requests == 0),
        stale: count(&|e| e.stale),
        without_partnership: without_partnership.len(),
    };
    PartnershipReport {
        files: exports.iter().map(|(file, e)| export_file(file, e)).collect(),
        stale_days,
        measured_at: measured_at.and_then(time_string),
        summary,
        partnerships: entries,
        without_partnership,
    }
}

fn export_file(file: &str, export: &DeviceExport) -> ExportFile {
    ExportFile {
        file: file.to_string(),
        format: match export.format {
            exchange::devices::Format::Csv => "csv",
            exchange::devices::Format::Json => "json",
        },
        encoding: export.encoding.name(),
        rows: export.rows,
        bad_rows: export.bad_rows,
        first_bad: export.first_bad.iter().map(|b| BadRowReport { line: b.line, reason: b.reason.clone() }).collect(),
        slash_dates: export.slash_order.map(|o| match o {
            exchange::devices::SlashOrder::MonthFirst => "month/day/year",
            exchange::devices::SlashOrder::DayFirst => "day/month/year",
        }),
    }
}

fn day(time: &Option<String>) -> &str {
    time.as_deref().map_or("never", |t| t.get(..10).unwrap_or(t))
}

/// The partnership section of the audit table, `top` rows a list at most.
pub fn render_table(out: &mut String, report: &PartnershipReport, top: usize) {
    let s = &report.summary;
    heading(out, &format!("Mobile-device partnerships ({} in {} export(s))", s.partnerships, report.files.len()));
    let rows = [
        ("Outlook for iOS and Android", s.outlook_mobile),
        ("  of which without traffic in the logs", s.outlook_mobile_without_traffic),
        ("partnerships without traffic in the logs", s.without_traffic),
        (&*format!("idle more than {} days (stale)", report.stale_days), s.stale),
        ("ActiveSync devices in the logs without one", s.without_partnership),
    ];
    for (name, n) in rows {
        let _ = writeln!(out, "  {name:<56} {n:>14}");
    }
    if let Some(at) = &report.measured_at {
        let _ = writeln!(out, "  idle time measured at {at}");
    }
    let bad: u64 = report.files.iter().map(|f| f.bad_rows).sum();
    if bad > 0 {
        let _ = writeln!(out, "  note: {bad} bad row(s) in the export(s) were counted and skipped");
    }

    let outlook: Vec<&PartnershipEntry> = report.partnerships.iter().filter(|e| e.outlook_mobile).collect();
    if !outlook.is_empty() {
        let _ = writeln!(out, "\n  Outlook for iOS and Android");
        let _ = writeln!(out, "    {:<14} {:<32} {:<10} {:<11} {:>5}", "user", "device", "last sync", "state", "reqs");
        for e in outlook.iter().take(top) {
            let _ = writeln!(
                out,
                "    {:<14} {:<32} {:<10} {:<11} {:>5}",
                fit(&e.user, 14),
                fit(&e.device_id, 32),
                day(&e.last_success_sync),
                fit(&e.access_state, 11),
                e.requests
            );
        }
        more(out, outlook.len(), top);
    }
    let stale: Vec<&PartnershipEntry> = report.partnerships.iter().filter(|e| e.stale).collect();
    if !stale.is_empty() {
        let _ = writeln!(out, "\n  Stale: idle more than {} days", report.stale_days);
        let _ = writeln!(out, "    {:<14} {:<32} {:<16} {:>6}", "user", "device", "type", "days");
        for e in stale.iter().take(top) {
            let days = e.idle_days.map_or_else(|| "never".to_string(), |d| d.to_string());
            let _ = writeln!(
                out,
                "    {:<14} {:<32} {:<16} {:>6}",
                fit(&e.user, 14),
                fit(&e.device_id, 32),
                fit(&e.device_type, 16),
                days
            );
        }
        more(out, stale.len(), top);
    }
    if !report.without_partnership.is_empty() {
        let _ = writeln!(out, "\n  ActiveSync devices in the logs without a partnership");
        let _ = writeln!(out, "    {:<14} {:<32} {:<16} {:>7}", "user", "device", "client", "reqs");
        for d in report.without_partnership.iter().take(top) {
            let _ = writeln!(
                out,
                "    {:<14} {:<32} {:<16} {:>7}",
                fit(&d.user, 14),
                fit(&d.device_id, 32),
                fit(&d.client, 16),
                d.requests
            );
        }
        more(out, report.without_partnership.len(), top);
    }
}

fn more(out: &mut String, len: usize, top: usize) {
    if len > top {
        let _ = writeln!(out, "    … and {} more (see --format csv or json)", len - top);
    }
}
