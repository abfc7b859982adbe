//! The people in a report: each user with its devices, and the findings on
//! people ([`FindingKind::PERSON`]) drawn from the same joined devices.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use exchange::{Catalog, NetworkId, Networks};

use super::{protocol_map, span_strings, time_string, AccessReport, DeviceReport, Finding, Source, UserReport};
use crate::aggregate::{DeviceAgg, Span, UserAgg};
use crate::findings::FindingKind;

fn is_cloud_network(network: NetworkId) -> bool {
    !matches!(network, NetworkId::LOOPBACK | NetworkId::INTERNAL | NetworkId::EXTERNAL)
}

fn device_report(key: &str, device: &DeviceAgg, catalog: &Catalog, networks: &Networks) -> DeviceReport {
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
                ip: ip_text(*ip),
                network: networks.name(*network).to_string(),
                requests: n,
            })
            .collect(),
        model: (!device.model.is_empty()).then(|| device.model.clone()),
        os: (!device.os.is_empty()).then(|| device.os.clone()),
        access: device.access.map(|(time, v)| AccessReport {
            state: v.state.key(),
            reason: v.reason,
            seen: time_string(time),
        }),
        first_seen,
        last_seen,
    }
}

/// An address as `Display` writes it; IPv4 without the formatting machinery
/// (a report writes one per source of every device).
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
            out
        }
        IpAddr::V6(_) => ip.to_string(),
    }
}

/// One user's report, and the user's finding of each kind of
/// [`FindingKind::PERSON`] (in that order), if any. The user's devices are
/// joined and reported once: a finding's devices are copies of the user's.
pub(super) fn user_parts(
    key: &str,
    user: &UserAgg,
    catalog: &Catalog,
    networks: &Networks,
) -> (UserReport, [Option<Finding>; FindingKind::PERSON.len()]) {
    let joined = user.joined_devices(catalog);
    let (first_seen, last_seen) = span_strings(user.span);
    let report = UserReport {
        user: key.to_string(),
        aliases: user.aliases.iter().map(|(a, _)| a.to_string()).collect(),
        requests: user.requests,
        first_seen,
        last_seen,
        protocols: protocol_map(&user.protocols),
        devices: joined.iter().map(|(k, d)| device_report(k, d, catalog, networks)).collect(),
    };
    let findings = FindingKind::PERSON.map(|kind| person_finding(kind, key, &joined, &report.devices, networks));
    (report, findings)
}

/// The finding of `kind` of one user, from the user's joined devices and their reports (index for index).
fn person_finding(
    kind: FindingKind,
    user: &str,
    devices: &[(&str, Cow<'_, DeviceAgg>)],
    device_reports: &[DeviceReport],
    networks: &Networks,
) -> Option<Finding> {
    let count = |d: &DeviceAgg| d.findings.get(kind);
    let found: Vec<usize> = (0..devices.len()).filter(|&i| count(&devices[i].1) > 0).collect();
    if found.is_empty() {
        return None;
    }
    let mut span = Span::default();
    let mut requests = 0;
    let mut reports = Vec::with_capacity(found.len());
    for &i in &found {
        let device = &devices[i].1;
        requests += count(device);
        span = Span { first: span.first.min(device.span.first), last: span.last.max(device.span.last) };
        reports.push(device_reports[i].clone());
    }
    let mut cloud_sources: Vec<Source> = Vec::new();
    if kind == FindingKind::CloudCredentials {
        // One entry an address: the cloud polls for each device from the same addresses.
        let mut by_address: BTreeMap<(String, &str), u64> = BTreeMap::new();
        for &i in &found {
            for ((ip, network), n) in devices[i].1.sources.iter() {
                if is_cloud_network(*network) {
                    *by_address.entry((ip_text(*ip), networks.name(*network))).or_default() += n;
                }
            }
        }
        cloud_sources = by_address
            .into_iter()
            .map(|((ip, network), requests)| Source { ip, network: network.to_string(), requests })
            .collect();
    }
    let clients: Vec<&str> = {
        let mut names: Vec<&str> = reports.iter().map(|d| d.client_name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let summary = format!("{user}: {} ({} device(s), {requests} requests)", clients.join(", "), reports.len());
    let mut finding = Finding::new(kind, summary, requests, span);
    finding.user = Some(user.to_string());
    finding.devices = reports;
    finding.cloud_sources = cloud_sources;
    Some(finding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_writes_what_display_writes() {
        let mut x: u32 = 0x9E37_79B9;
        let mut addresses: Vec<IpAddr> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "1.20.199.99",
            "::1",
            "2001:db8::ff00:42:8329",
            "::ffff:1.2.3.4",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            addresses.push(IpAddr::from(x.to_be_bytes()));
        }
        for ip in addresses {
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }
}
