//! The audit report: a plain data model built once from the aggregate, then
//! written as JSON, a table or CSV files.

use std::collections::BTreeMap;

use exchange::{AuthType, Catalog, Interpreter, NetworkId, Networks, Protocol};
use rayon::prelude::*;
use serde::Serialize;
use w3c::{FileStats, MalformedKind};

use crate::aggregate::{Aggregate, DeviceAgg, Span, Tally, UserAgg};
use crate::findings::FindingKind;

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
    pub exploit_attempts: u64,
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
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
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
    /// Detection rule (exploit-attempt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
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

pub fn time_string(t: i64) -> Option<String> {
    (t != i64::MAX && t != i64::MIN && t != 0).then(|| w3c::time::format_rfc3339(t))
}

fn span_strings(span: Span) -> (Option<String>, Option<String>) {
    if span.is_empty() {
        (None, None)
    } else {
        (time_string(span.first), time_string(span.last))
    }
}

pub fn protocol_map(counts: &[u64]) -> BTreeMap<&'static str, u64> {
    Protocol::ALL.iter().zip(counts).filter(|(_, n)| **n > 0).map(|(p, n)| (p.key(), *n)).collect()
}

fn is_cloud_network(network: NetworkId) -> bool {
    !matches!(network, NetworkId::LOOPBACK | NetworkId::INTERNAL | NetworkId::EXTERNAL)
}

pub(crate) fn device_report(key: &str, device: &DeviceAgg, catalog: &Catalog, networks: &Networks) -> DeviceReport {
    let client = catalog.get(device.client);
    let (first_seen, last_seen) = span_strings(device.span);
    DeviceReport {
        id: key.to_string(),
        device_type: device.device_type.clone(),
        client: client.id.clone(),
        client_name: client.name.clone(),
        user_agents: device.user_agents.iter().map(|(ua, _)| ua.to_string()).collect(),
        requests: device.requests,
        protocols: protocol_map(&device.protocols),
        commands: device.commands.iter().map(|(c, n)| (c.to_string(), n)).collect(),
        sources: device
            .sources
            .iter()
            .map(|((ip, network), n)| Source {
                ip: ip.to_string(),
                network: networks.name(*network).to_string(),
                requests: n,
            })
            .collect(),
        model: (!device.model.is_empty()).then(|| device.model.clone()),
        os: (!device.os.is_empty()).then(|| device.os.clone()),
        first_seen,
        last_seen,
    }
}

fn user_report(key: &str, user: &UserAgg, catalog: &Catalog, networks: &Networks) -> UserReport {
    let (first_seen, last_seen) = span_strings(user.span);
    UserReport {
        user: key.to_string(),
        aliases: user.aliases.iter().map(|(a, _)| a.to_string()).collect(),
        requests: user.requests,
        first_seen,
        last_seen,
        protocols: protocol_map(&user.protocols),
        devices: user.sorted_devices().into_iter().map(|(k, d)| device_report(k, d, catalog, networks)).collect(),
    }
}

fn person_findings(tally: &Tally, catalog: &Catalog, networks: &Networks) -> Vec<Finding> {
    let mut findings = Vec::new();
    for kind in FindingKind::PERSON {
        let count = |d: &DeviceAgg| d.findings.get(kind);
        for (user, agg) in tally.sorted_users() {
            let devices: Vec<_> = agg.sorted_devices().into_iter().filter(|(_, d)| count(d) > 0).collect();
            if devices.is_empty() {
                continue;
            }
            let mut span = Span::default();
            let mut requests = 0;
            let mut reports = Vec::new();
            for (key, device) in &devices {
                requests += count(device);
                span = Span { first: span.first.min(device.span.first), last: span.last.max(device.span.last) };
                reports.push(device_report(key, device, catalog, networks));
            }
            let mut cloud_sources: Vec<Source> = Vec::new();
            if kind == FindingKind::CloudCredentials {
                for (_, device) in &devices {
                    for ((ip, network), n) in device.sources.iter() {
                        if is_cloud_network(*network) {
                            cloud_sources.push(Source {
                                ip: ip.to_string(),
                                network: networks.name(*network).to_string(),
                                requests: n,
                            });
                        }
                    }
                }
                cloud_sources.sort_by(|a, b| a.ip.cmp(&b.ip));
            }
            let clients: Vec<&str> = {
                let mut names: Vec<&str> = reports.iter().map(|d| d.client_name.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                names
            };
            let (first_seen, last_seen) = span_strings(span);
            findings.push(Finding {
                kind,
                user: Some(user.to_string()),
                summary: format!("{user}: {} ({} device(s), {requests} requests)", clients.join(", "), reports.len()),
                requests,
                first_seen,
                last_seen,
                devices: reports,
                cloud_sources,
                rule: None,
                source: None,
                sample: None,
            });
        }
    }
    findings
}

fn exploit_findings(agg: &Aggregate, networks: &Networks) -> Vec<Finding> {
    let mut exploits: Vec<_> = agg.exploits.iter().collect();
    exploits.sort_by(|a, b| a.0.cmp(b.0));
    exploits
        .into_iter()
        .map(|((rule, ip), e)| {
            let (first_seen, last_seen) = span_strings(e.span);
            let ip_text = ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into());
            Finding {
                kind: FindingKind::ExploitAttempt,
                user: None,
                summary: format!("{rule} from {ip_text} ({} requests)", e.requests),
                requests: e.requests,
                first_seen,
                last_seen,
                devices: Vec::new(),
                cloud_sources: Vec::new(),
                rule: Some(rule),
                source: Some(Source {
                    ip: ip_text,
                    network: networks.name(e.network).to_string(),
                    requests: e.requests,
                }),
                sample: Some(e.sample.clone()),
            }
        })
        .collect()
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
    pub fn build(agg: &Aggregate, files: &[FileStats], interpreter: &Interpreter) -> Report {
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

        // The two largest parts, built side by side: the report phase runs after the scan, on its own.
        let (mut findings, users) = rayon::join(
            || person_findings(people, catalog, networks),
            || people.sorted_users().into_par_iter().map(|(k, u)| user_report(k, u, catalog, networks)).collect(),
        );
        findings.extend(exploit_findings(agg, networks));

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
                exploit_attempts: agg.exploit_attempts(),
                machine: agg.machine_requests(),
                anonymous: people.anonymous,
                users: people.users.len(),
                devices: people.users.values().map(|u| u.devices.len()).sum(),
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
        }
    }
}
