//! Microsoft 365's endpoints web service (`endpoints.office.com`): its
//! version method's answer and its endpoints method's records, turned into
//! the `microsoft365` range file casguard reads (see [`crate::networks`]).
//!
//! Shapes, from Microsoft's "Office 365 IP Address and URL web service"
//! (MicrosoftDocs/microsoft-365-docs `microsoft-365-ip-web-service.md`):
//! `GET /version/Worldwide` gives `{"instance","latest"}` (an array of them
//! for all instances); `GET /endpoints/Worldwide?ServiceAreas=Exchange` gives
//! an array of `{id, serviceArea, urls, ips, ...}`. No I/O here: the caller
//! reads the files.

use std::fmt::Write as _;

use ipnet::IpNet;
use serde::Deserialize;

use crate::networks::AUTODETECT;

#[derive(Debug, thiserror::Error)]
pub enum EndpointsError {
    #[error("{origin}: not the endpoints web service's JSON: {source}")]
    Json {
        origin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{origin}: no Exchange record with addresses (was it fetched with ServiceAreas=Exchange?)")]
    NoExchange { origin: String },
    #[error("{origin}: bad address `{ip}` in record {id}")]
    BadAddress { origin: String, id: u32, ip: String },
    #[error("{origin}: no version for the {instance} instance")]
    NoInstance { origin: String, instance: String },
    #[error("version `{0}` is not YYYYMMDDNN (such as 2026080100)")]
    BadVersion(String),
}

#[derive(Deserialize)]
struct Record {
    id: u32,
    #[serde(rename = "serviceArea", default)]
    service_area: String,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    ips: Vec<String>,
}

/// One endpoint set of the Exchange service area that lists addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSet {
    pub id: u32,
    pub urls: Vec<String>,
    pub ips: Vec<IpNet>,
}

/// The Exchange records with addresses of an endpoints method answer.
pub fn exchange_sets(text: &str, origin: &str) -> Result<Vec<EndpointSet>, EndpointsError> {
    let records: Vec<Record> =
        serde_json::from_str(text).map_err(|source| EndpointsError::Json { origin: origin.to_string(), source })?;
    let mut sets = Vec::new();
    for r in records.into_iter().filter(|r| r.service_area == "Exchange" && !r.ips.is_empty()) {
        let mut ips = Vec::with_capacity(r.ips.len());
        for ip in &r.ips {
            let net = ip.parse::<IpNet>().map_err(|_| EndpointsError::BadAddress {
                origin: origin.to_string(),
                id: r.id,
                ip: ip.clone(),
            })?;
            ips.push(net);
        }
        sets.push(EndpointSet { id: r.id, urls: r.urls, ips });
    }
    if sets.is_empty() {
        return Err(EndpointsError::NoExchange { origin: origin.to_string() });
    }
    Ok(sets)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VersionDoc {
    One(VersionRecord),
    Many(Vec<VersionRecord>),
}

#[derive(Deserialize)]
struct VersionRecord {
    instance: String,
    latest: String,
}

/// The latest version of `instance` in a version method answer.
pub fn latest_version(text: &str, instance: &str, origin: &str) -> Result<String, EndpointsError> {
    let doc: VersionDoc =
        serde_json::from_str(text).map_err(|source| EndpointsError::Json { origin: origin.to_string(), source })?;
    let records = match doc {
        VersionDoc::One(r) => vec![r],
        VersionDoc::Many(rs) => rs,
    };
    let latest = records.into_iter().find(|r| r.instance.eq_ignore_ascii_case(instance)).map(|r| r.latest);
    let latest = latest
        .ok_or_else(|| EndpointsError::NoInstance { origin: origin.to_string(), instance: instance.to_string() })?;
    version_time(&latest).ok_or_else(|| EndpointsError::BadVersion(latest.clone()))?;
    Ok(latest)
}

/// The day a version was published (`YYYYMMDDNN`), as Unix seconds at midnight UTC.
pub fn version_time(version: &str) -> Option<i64> {
    if version.len() != 10 || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = format!("{}-{}-{}", &version[..4], &version[4..6], &version[6..8]);
    w3c::time::parse_rfc3339(&date)
}

/// The range file for `sets` of endpoints `version`, with the AutoDetect
/// ranges the web service does not list. `source` says where the records
/// came from. Each address is written once, under the first set that lists it.
pub fn ranges_file(version: &str, sets: &[EndpointSet], source: &str) -> Result<String, EndpointsError> {
    version_time(version).ok_or_else(|| EndpointsError::BadVersion(version.to_string()))?;
    let mut out = String::new();
    let _ = writeln!(out, "# Microsoft 365 Exchange Online address ranges, written by `casguard ranges update`.");
    let _ = writeln!(out, "# Source: Microsoft's endpoints web service, service area Exchange ({source}).");
    let _ = writeln!(out, "# Given with --ranges, this list replaces casguard's built-in microsoft365 ranges.");
    let _ = writeln!(out, "# endpoints-version: {version}");
    let mut written: Vec<IpNet> = Vec::new();
    for set in sets {
        let fresh: Vec<&IpNet> = set.ips.iter().filter(|ip| !written.contains(ip)).collect();
        let _ = write!(out, "\n# ID {}", set.id);
        if !set.urls.is_empty() {
            let _ = write!(out, ": {}", set.urls.join(", "));
        }
        if fresh.is_empty() {
            out.push_str(" (addresses listed above)");
        }
        out.push('\n');
        for ip in fresh {
            let _ = writeln!(out, "{ip} microsoft365");
            written.push(*ip);
        }
    }
    out.push('\n');
    out.push_str(AUTODETECT);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDS: &str = r#"[
      {"id":1,"serviceArea":"Exchange","serviceAreaDisplayName":"Exchange Online","urls":["outlook.office.com","outlook.office365.com"],"ips":["13.107.6.152/31","2603:1006::/40"],"tcpPorts":"80,443","expressRoute":true,"category":"Optimize","required":true},
      {"id":2,"serviceArea":"Exchange","urls":["outlook.office365.com"],"ips":["13.107.6.152/31"],"tcpPorts":"143,587,993,995"},
      {"id":8,"serviceArea":"Exchange","urls":["*.outlook.com"],"tcpPorts":"80,443"},
      {"id":46,"serviceArea":"Common","urls":["login.microsoftonline.com"],"ips":["20.190.128.0/18"]}
    ]"#;

    #[test]
    fn exchange_records_with_addresses() {
        let sets = exchange_sets(RECORDS, "e.json").unwrap();
        assert_eq!(sets.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 2]);
        let text = ranges_file("2026080100", &sets, "e.json").unwrap();
        assert!(text.contains("# endpoints-version: 2026080100"));
        assert_eq!(text.matches("13.107.6.152/31 microsoft365").count(), 1);
        assert!(text.contains("# ID 2: outlook.office365.com (addresses listed above)"));
        assert!(text.contains("52.125.128.0/20 microsoft365"), "AutoDetect is kept");
        let mut n = crate::Networks::builtin();
        n.add_text(&text, "out.txt").unwrap();
        assert_eq!(n.microsoft365_version(), Some("2026080100"));
        assert_eq!(n.name(n.lookup("2603:1006::1".parse().unwrap())), "microsoft365");
        assert_eq!(n.name(n.lookup("52.96.1.1".parse().unwrap())), "external");
        assert_eq!(n.name(n.lookup("52.125.128.1".parse().unwrap())), "microsoft365");
    }

    #[test]
    fn errors_name_the_file() {
        let e = exchange_sets("{}", "x.json").unwrap_err();
        assert!(matches!(e, EndpointsError::Json { .. }) && e.to_string().starts_with("x.json"), "{e}");
        let e = exchange_sets(r#"[{"id":3,"serviceArea":"SharePoint","ips":["1.2.3.0/24"]}]"#, "x.json").unwrap_err();
        assert!(matches!(e, EndpointsError::NoExchange { .. }));
        let e = exchange_sets(r#"[{"id":3,"serviceArea":"Exchange","ips":["1.2.3.0/33"]}]"#, "x.json").unwrap_err();
        assert!(e.to_string().contains("1.2.3.0/33") && e.to_string().contains("record 3"), "{e}");
        assert!(ranges_file("2026", &[], "x").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(
            latest_version(r#"{"instance":"Worldwide","latest":"2026080100"}"#, "Worldwide", "v").unwrap(),
            "2026080100"
        );
        let all = r#"[{"instance":"Worldwide","latest":"2026080100"},{"instance":"China","latest":"2026070100"}]"#;
        assert_eq!(latest_version(all, "China", "v").unwrap(), "2026070100");
        assert!(matches!(latest_version(all, "USGovDoD", "v"), Err(EndpointsError::NoInstance { .. })));
        assert!(matches!(
            latest_version(r#"{"instance":"Worldwide","latest":"soon"}"#, "Worldwide", "v"),
            Err(EndpointsError::BadVersion(_))
        ));
        assert_eq!(version_time("2023073100"), Some(1_690_761_600));
        assert_eq!(version_time("2023133100"), None);
    }
}
