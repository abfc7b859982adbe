//! The audit report: a plain data model built once from the aggregate, then
//! written as JSON, a table or CSV files. Its users, their devices and the
//! findings on people are built in `report/people.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use exchange::{AttackKind, AuthType, Interpreter, Networks, Protocol};
use rayon::prelude::*;
use serde::Serialize;
use w3c::{FileStats, MalformedKind, WarningKind};

use crate::aggregate::{Aggregate, Span};
use crate::findings::{FindingKind, Severity};
use crate::signins::Thresholds;

mod people;

use people::user_parts;

/// What a report is built with beyond the logs.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// When failed sign-ins make a spray or brute-force finding.
    pub thresholds: Thresholds,
    /// Now, in seconds since the epoch: the age of the Microsoft 365 ranges
    /// is judged against it. `None`: not judged.
    pub now: Option<i64>,
}

/// Ranges older than this many days draw a warning.
pub const RANGES_MAX_AGE_DAYS: i64 = 45;

/// Keys of this document are stable; see README "JSON output".
#[derive(Debug, Serialize)]
pub struct Report {
    pub summary: Summary,
    pub protocols: BTreeMap<&'static str, u64>,
    pub clients: BTreeMap<String, u64>,
    /// People's requests by authentication type (`unknown` for IIS lines).
    pub auth_types: BTreeMap<&'static str, u64>,
    pub users: Vec<UserReport>,
    pub findings: Vec<Finding>,
    pub probes: ProbeReport,
    pub malformed: Vec<MalformedFile>,
    pub notes: Vec<String>,
    /// Present when device exports were given (`--devices`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partnerships: Option<crate::partnerships::PartnershipReport>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    /// Data lines read, malformed ones included.
    pub lines: u64,
    pub malformed: u64,
    /// People's requests (anonymous ones included).
    pub requests: u64,
    pub backend_duplicates: u64,
    /// IIS front-end lines of requests also in the HttpProxy logs, joined by
    /// `cafeReqId` = `RequestId` and counted once, from HttpProxy.
    pub iis_duplicates: u64,
    pub probes: u64,
    /// Requests of public exploit rules (a kind of `attacks`).
    pub exploit_attempts: u64,
    /// Requests of every detection rule: exploits, web shells, data theft,
    /// paths outside Exchange, scanners. None of them is a person's.
    pub attacks: u64,
    /// `attacks` by kind; zero counts omitted.
    pub attack_kinds: BTreeMap<&'static str, u64>,
    /// Failed sign-ins (401 with substatus 1 or Windows error 1326).
    pub failed_sign_ins: u64,
    /// Requests by computer accounts such as `EX04$`.
    pub machine: u64,
    pub anonymous: u64,
    pub users: usize,
    pub devices: usize,
    /// Only back-end logs were given: their hops are counted as people's requests.
    pub backend_only: bool,
    pub files: usize,
    pub bytes: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UserReport {
    pub user: String,
    pub aliases: Vec<String>,
    pub requests: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub protocols: BTreeMap<&'static str, u64>,
    pub devices: Vec<DeviceReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DeviceReport {
    pub id: String,
    #[serde(rename = "type")]
    pub device_type: String,
    pub client: String,
    pub client_name: String,
    pub user_agents: Vec<String>,
    pub requests: u64,
    pub protocols: BTreeMap<&'static str, u64>,
    pub commands: BTreeMap<String, u64>,
    pub sources: Vec<Source>,
    pub model: Option<String>,
    pub os: Option<String>,
    /// ActiveSync's own verdict on the device, the last time it logged one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessReport>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

/// The device access state from the ActiveSync `As` Log token.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AccessReport {
    /// allowed, blocked, quarantined, device-discovery, unknown.
    pub state: &'static str,
    /// Exchange's `DeviceAccessStateReason` (Global, Individual, DeviceRule, ...).
    pub reason: &'static str,
    /// When Exchange last logged it.
    pub seen: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Source {
    pub ip: String,
    pub network: String,
    pub requests: u64,
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub user: Option<String>,
    /// One line an admin can read.
    pub summary: String,
    /// Requests that make this finding.
    pub requests: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceReport>,
    /// Addresses in named cloud networks (cloud-credentials).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cloud_sources: Vec<Source>,
    /// Detection rule (attacks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
    /// What became of an attack's requests, most telling first: succeeded
    /// when any did, else failed, else blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// Requests by outcome (succeeded, blocked, failed, unknown); zeros omitted.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Paths an attack asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Accounts an attack named, or a spray tried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_agents: Vec<String>,
    /// Accounts an attack's forged token named (ProxyShell's `X-Rps-CAT`),
    /// as `logon (SID)`: whom it ran as.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub impersonated: Vec<String>,
    /// Where a brute force came from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    /// Password spray and brute force: the worst window (distinct users, or
    /// failures), the window in seconds and the threshold it reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
}

impl Finding {
    /// A finding of `kind` with nothing but its summary and counts set.
    pub(crate) fn new(kind: FindingKind, summary: String, requests: u64, span: Span) -> Finding {
        let (first_seen, last_seen) = span_strings(span);
        Finding {
            kind,
            severity: kind.severity(),
            user: None,
            summary,
            requests,
            first_seen,
            last_seen,
            devices: Vec::new(),
            cloud_sources: Vec::new(),
            rule: None,
            source: None,
            sample: None,
            outcome: None,
            outcomes: BTreeMap::new(),
            paths: Vec::new(),
            users: Vec::new(),
            user_agents: Vec::new(),
            impersonated: Vec::new(),
            sources: Vec::new(),
            peak: None,
            window_seconds: None,
            threshold: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub requests: u64,
    pub user_agents: Vec<CountedName>,
}

#[derive(Debug, Serialize)]
pub struct CountedName {
    pub name: String,
    pub requests: u64,
}

#[derive(Debug, Serialize)]
pub struct MalformedFile {
    pub file: String,
    pub counts: BTreeMap<&'static str, u64>,
    pub first: Vec<MalformedLine>,
}

#[derive(Debug, Serialize)]
pub struct MalformedLine {
    pub line: u64,
    pub reason: &'static str,
    pub detail: String,
}

/// A note when the Microsoft 365 ranges in use are older than
/// [`RANGES_MAX_AGE_DAYS`] at `now`: addresses Microsoft added since are
/// not named `microsoft365`.
pub fn ranges_age_note(networks: &Networks, now: i64) -> Option<String> {
    let version = networks.microsoft365_version()?;
    let published = exchange::endpoints::version_time(version)?;
    let checked = networks
        .microsoft365_checked()
        .and_then(|day| Some((day, w3c::time::parse_rfc3339(day)?)))
        .filter(|&(_, t)| t > published);
    let days = (now - checked.map_or(published, |(_, t)| t)) / 86_400;
    (days > RANGES_MAX_AGE_DAYS).then(|| {
        let since = match checked {
            Some((day, _)) => {
                format!("endpoints version {version}, last checked against Microsoft's list {days} days ago ({day})")
            }
            None => format!("endpoints version {version}, {days} days old"),
        };
        format!(
            "the Microsoft 365 ranges in use are {since}: addresses Microsoft added since are not recognised as \
             microsoft365; `casguard ranges update` writes a current list for --ranges"
        )
    })
}

pub fn time_string(t: i64) -> Option<String> {
    (t != i64::MAX && t != i64::MIN && t != 0).then(|| w3c::time::format_rfc3339(t))
}

pub(crate) fn span_strings(span: Span) -> (Option<String>, Option<String>) {
    if span.is_empty() {
        (None, None)
    } else {
        (time_string(span.first), time_string(span.last))
    }
}

pub fn protocol_map(counts: &[u64]) -> BTreeMap<&'static str, u64> {
    Protocol::ALL.iter().zip(counts).filter(|(_, n)| **n > 0).map(|(p, n)| (p.key(), *n)).collect()
}

/// The files that were not read, being logs of another kind, grouped by what
/// they are: (what, how many, the first of them), in order of first path.
pub fn unread_files(files: &[FileStats]) -> Vec<(&str, usize, &Path)> {
    let mut groups: Vec<(&str, usize, &Path)> = Vec::new();
    for file in files {
        let Some(why) = file.not_read.as_deref() else { continue };
        match groups.iter_mut().find(|(w, ..)| *w == why) {
            Some(group) => group.1 += 1,
            None => groups.push((why, 1, &file.path)),
        }
    }
    groups
}

/// The report's note on [`unread_files`].
fn unread_note(files: &[FileStats]) -> Option<String> {
    let groups = unread_files(files);
    if groups.is_empty() {
        return None;
    }
    let total: usize = groups.iter().map(|g| g.1).sum();
    let kinds: Vec<String> =
        groups.iter().map(|(why, n, first)| format!("{n} × {why}, such as {}", first.display())).collect();
    Some(format!("{total} file(s) were not read, being no IIS W3C or HttpProxy log: {}", kinds.join("; ")))
}

/// A file with NUL bytes where lines were to be (see
/// [`w3c::WarningKind::NulBytes`]): its requests from about then are missing.
fn crashed_note(file: &FileStats) -> Option<String> {
    let runs = file.warnings_of(WarningKind::NulBytes);
    if runs == 0 {
        return None;
    }
    let first = file.first_warnings.iter().find(|w| w.kind == WarningKind::NulBytes);
    Some(format!(
        "{}: {runs} run(s) of NUL bytes{}: the server stopped without finishing this log \
         (a crash or a power cut), so requests it had not yet written are missing",
        file.path.display(),
        first.map(|w| format!(", the first at line {}", w.line)).unwrap_or_default()
    ))
}

fn malformed_files(files: &[FileStats]) -> Vec<MalformedFile> {
    files
        .iter()
        .filter(|f| f.malformed_total() > 0)
        .map(|f| MalformedFile {
            file: f.path.display().to_string(),
            counts: MalformedKind::ALL
                .iter()
                .map(|k| (k.as_str(), f.malformed[*k as usize]))
                .filter(|(_, n)| *n > 0)
                .collect(),
            first: f
                .first_malformed
                .iter()
                .map(|m| MalformedLine { line: m.line, reason: m.kind.as_str(), detail: m.detail.clone() })
                .collect(),
        })
        .collect()
}

impl Report {
    /// The report with the default thresholds, without judging the ranges' age.
    pub fn build(agg: &Aggregate, files: &[FileStats], interpreter: &Interpreter) -> Report {
        Report::build_with(agg, files, interpreter, &ReportOptions::default())
    }

    pub fn build_with(
        agg: &Aggregate,
        files: &[FileStats],
        interpreter: &Interpreter,
        options: &ReportOptions,
    ) -> Report {
        let catalog = interpreter.catalog();
        let networks = interpreter.networks();
        let people = agg.people_tally();
        let backend_only = agg.backend_only();
        let lines: u64 = files.iter().map(|f| f.lines).sum();
        let malformed: u64 = files.iter().map(|f| f.malformed_total()).sum();
        let (first_seen, last_seen) = span_strings(people.span);

        let mut clients = BTreeMap::new();
        for (index, n) in people.clients.iter().enumerate() {
            if *n > 0 {
                let client = catalog.get(exchange::ClientId(index as u16));
                clients.insert(client.id.clone(), *n);
            }
        }

        // Users in parallel: the report phase runs after the scan, on its own.
        // Person findings come kind by kind, users in order within a kind.
        let mut parts: Vec<_> =
            people.sorted_users().into_par_iter().map(|(k, u)| user_parts(k, u, catalog, networks)).collect();
        let mut findings: Vec<Finding> = Vec::new();
        for kind in 0..FindingKind::PERSON.len() {
            findings.extend(parts.iter_mut().filter_map(|(_, found)| found[kind].take()));
        }
        let users: Vec<UserReport> = parts.into_iter().map(|(user, _)| user).collect();
        findings.extend(crate::threats::attack_findings(agg, networks));
        findings.extend(crate::threats::signin_findings(&agg.signins, &options.thresholds, networks));
        findings.sort_by_key(|f| FindingKind::ALL.iter().position(|k| *k == f.kind));

        let mut probe_agents: Vec<_> =
            agg.probe_agents.iter().map(|(ua, n)| CountedName { name: ua.to_string(), requests: *n }).collect();
        probe_agents.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.name.cmp(&b.name)));

        let mut notes = Vec::new();
        if backend_only {
            let mut note = format!(
                "only back-end (Exchange Back End, port 444) lines were found: their {} hops are counted as people's requests",
                agg.backend.requests
            );
            if agg.backend_machine > 0 {
                note += &format!(", and {} of computer accounts as machine accounts", agg.backend_machine);
            }
            notes.push(note);
        }
        if malformed > 0 {
            notes.push(format!("{malformed} malformed line(s) were counted and skipped"));
        }
        notes.extend(files.iter().filter_map(crashed_note));
        notes.extend(unread_note(files));
        let http_errors: u64 = files.iter().map(|f| f.http_error_lines).sum();
        if http_errors > 0 {
            let logs = files.iter().filter(|f| f.http_error_lines > 0).count();
            notes.push(format!(
                "{http_errors} line(s) of {logs} HTTP.sys error log(s) (HTTPERR) were counted, not read as requests: \
                 they are connections and requests HTTP.sys refused or dropped before any site logged them"
            ));
        }
        if let Some(note) = options.now.and_then(|now| ranges_age_note(networks, now)) {
            notes.push(note);
        }
        let unknown_auth = people.auth[AuthType::Unknown.index()];
        if unknown_auth > 0 {
            notes.push(format!(
                "the authentication type of {unknown_auth} of {} people's request(s) is unknown: IIS logs do not \
                 record it (HttpProxy logs do, but leave it empty for some requests)",
                people.requests
            ));
        }
        if agg.duplicates > 0 {
            notes.push(format!(
                "{} IIS front-end line(s) are requests the HttpProxy logs hold too (same cafeReqId and RequestId): \
                 each is counted once, from HttpProxy",
                agg.duplicates
            ));
        }

        Report {
            summary: Summary {
                lines,
                malformed,
                requests: people.requests,
                backend_duplicates: if backend_only { 0 } else { agg.backend_hops() },
                iis_duplicates: agg.duplicates,
                probes: agg.probes,
                exploit_attempts: agg.attack_requests(AttackKind::Exploit),
                attacks: agg.attacks.values().map(|a| a.requests).sum(),
                attack_kinds: AttackKind::ALL
                    .into_iter()
                    .map(|k| (k.key(), agg.attack_requests(k)))
                    .filter(|(_, n)| *n > 0)
                    .collect(),
                failed_sign_ins: agg.signins.failures,
                machine: agg.machine_requests(),
                anonymous: people.anonymous,
                users: people.users.len(),
                devices: users.iter().map(|u| u.devices.len()).sum(),
                backend_only,
                files: files.len(),
                bytes: files.iter().map(|f| f.bytes).sum(),
                first_seen,
                last_seen,
            },
            protocols: protocol_map(&people.protocols),
            clients,
            auth_types: AuthType::ALL
                .iter()
                .zip(people.auth)
                .filter(|(_, n)| *n > 0)
                .map(|(a, n)| (a.key(), n))
                .collect(),
            users,
            findings,
            probes: ProbeReport { requests: agg.probes, user_agents: probe_agents },
            malformed: malformed_files(files),
            notes,
            partnerships: None,
        }
    }
}
