//! Named networks: which network an address belongs to (loopback, internal,
//! Microsoft 365, a cloud service tag, a site of yours), most specific prefix
//! first. Prefixes are flattened into sorted, non-overlapping interval tables
//! so that a lookup is one binary search.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// Index of a named network in its [`Networks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId(pub u16);

impl NetworkId {
    pub const LOOPBACK: NetworkId = NetworkId(0);
    /// RFC 1918, 100.64/10, 169.254/16, fc00::/7, fe80::/10.
    pub const INTERNAL: NetworkId = NetworkId(1);
    /// Anything no prefix covers.
    pub const EXTERNAL: NetworkId = NetworkId(2);
    /// Exchange Online (data/ranges/microsoft365.txt).
    pub const MICROSOFT365: NetworkId = NetworkId(3);

    /// Index into arrays of per-network counters (`0..networks.len()`).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl Default for NetworkId {
    fn default() -> Self {
        NetworkId::EXTERNAL
    }
}

const BUILTIN_NAMES: [&str; 4] = ["loopback", "internal", "external", "microsoft365"];
const LOOPBACK_RANGES: [&str; 2] = ["127.0.0.0/8", "::1/128"];
const INTERNAL_RANGES: [&str; 7] =
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10"];
/// The fixed prefixes of a built-in network (`loopback`, `internal`), for
/// emitters that must write them out; `None` for the others, whose extent
/// depends on the range files loaded.
pub fn builtin_prefixes(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "loopback" => Some(&LOOPBACK_RANGES),
        "internal" => Some(&INTERNAL_RANGES),
        _ => None,
    }
}
const MICROSOFT365: &str = include_str!("../../../data/ranges/microsoft365.txt");
/// The AutoDetect ranges (data/ranges/autodetect.txt): not in the endpoints web service.
pub const AUTODETECT: &str = include_str!("../../../data/ranges/autodetect.txt");

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: not a range file: {source}")]
    Json {
        origin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{origin}: JSON is neither Azure service tags, AWS ip-ranges nor Google cloud.json")]
    UnknownFormat { origin: String },
    #[error("{origin}:{line}: {message}")]
    Line { origin: String, line: usize, message: String },
    #[error("{origin}: bad prefix `{prefix}` in {name}")]
    Prefix { origin: String, name: String, prefix: String },
    #[error("more than {max} named networks")]
    TooManyNetworks { max: usize },
}

/// One prefix as added, kept so that the tables can be rebuilt.
#[derive(Clone, Copy, Debug)]
struct Entry {
    net: IpNet,
    id: NetworkId,
    /// Order of the add call: at equal prefixes, later files win.
    seq: u32,
    /// Addresses the whole network covers in this family (in this add):
    /// at equal prefixes within one file, the smaller network wins
    /// (`Storage.WestEurope` over `Storage`).
    size: u128,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment<T> {
    start: T,
    end: T,
    id: NetworkId,
}

/// Named networks and their prefixes.
#[derive(Clone, Debug)]
pub struct Networks {
    names: Vec<String>,
    by_name: HashMap<String, NetworkId>,
    entries: Vec<Entry>,
    seq: u32,
    v4: Vec<Segment<u32>>,
    v6: Vec<Segment<u128>>,
    /// The Microsoft 365 endpoints version of the `microsoft365` ranges in use.
    microsoft365_version: Option<String>,
    /// When those ranges were last found to be Microsoft's current ones
    /// (`# checked: YYYY-MM-DD`), if later than their version.
    microsoft365_checked: Option<String>,
}

impl Networks {
    /// The four built-in networks with loopback and internal ranges, but no
    /// Microsoft 365 ranges.
    pub fn new() -> Networks {
        let mut n = Networks {
            names: BUILTIN_NAMES.iter().map(|s| s.to_string()).collect(),
            by_name: BUILTIN_NAMES.iter().enumerate().map(|(i, s)| (s.to_string(), NetworkId(i as u16))).collect(),
            entries: Vec::new(),
            seq: 0,
            v4: Vec::new(),
            v6: Vec::new(),
            microsoft365_version: None,
            microsoft365_checked: None,
        };
        let mut add = |ranges: &[&str], id| {
            for r in ranges {
                let net: IpNet = r.parse().expect("built-in range is valid");
                n.entries.push(Entry { net, id, seq: 0, size: 0 });
            }
        };
        add(&LOOPBACK_RANGES, NetworkId::LOOPBACK);
        add(&INTERNAL_RANGES, NetworkId::INTERNAL);
        n.seq = 1;
        n.rebuild();
        n
    }

    /// Loopback, internal and Microsoft 365 (data/ranges/microsoft365.txt and autodetect.txt).
    pub fn builtin() -> Networks {
        let mut n = Networks::new();
        n.add_text(MICROSOFT365, "built-in microsoft365").expect("built-in microsoft365 ranges are valid");
        n.add_text(AUTODETECT, "built-in autodetect").expect("built-in autodetect ranges are valid");
        n
    }

    /// The Microsoft 365 endpoints version (`YYYYMMDDNN`) of the
    /// `microsoft365` ranges in use: the last range file that gave one.
    pub fn microsoft365_version(&self) -> Option<&str> {
        self.microsoft365_version.as_deref()
    }

    /// The day (`YYYY-MM-DD`) the `microsoft365` ranges in use were last
    /// found unchanged on Microsoft's list, from the same range file as
    /// their version: a version is the day Microsoft last changed them, so
    /// an old one need not be out of date.
    pub fn microsoft365_checked(&self) -> Option<&str> {
        self.microsoft365_checked.as_deref()
    }

    /// Add a range file; see [`Networks::add_text`].
    pub fn add_file(&mut self, path: impl AsRef<Path>) -> Result<(), NetworkError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| NetworkError::Io { path: path.to_path_buf(), source })?;
        self.add_text(&text, &path.display().to_string())
    }

    /// Add ranges, detecting the format from the content: Azure service tags
    /// JSON (one network per tag name), AWS `ip-ranges.json` (`aws-<service>`),
    /// Google `cloud.json` (`google-cloud`), or text lines `CIDR name` with `#`
    /// comments. On error nothing is added. `origin` names the source in errors.
    ///
    /// A text file with a `# endpoints-version: YYYYMMDDNN` comment (as
    /// `casguard ranges update` writes) is a Microsoft 365 endpoints list: its
    /// `microsoft365` ranges replace those added before, the built-in ones included.
    pub fn add_text(&mut self, text: &str, origin: &str) -> Result<(), NetworkError> {
        let mut staged: Vec<(IpNet, NetworkId)> = Vec::new();
        let names_before = self.names.len();
        let result = if text.trim_start().starts_with('{') {
            self.parse_json(text, origin, &mut staged)
        } else {
            self.parse_lines(text, origin, &mut staged)
        };
        if let Err(e) = result {
            for name in self.names.drain(names_before..) {
                self.by_name.remove(&name);
            }
            return Err(e);
        }
        // Size of each network in this add, per family, for tie-breaking.
        let mut sizes: HashMap<(NetworkId, bool), u128> = HashMap::new();
        for (net, id) in &staged {
            let s = sizes.entry((*id, net.addr().is_ipv4())).or_insert(0);
            *s = s.saturating_add(prefix_size(net));
        }
        let version = if text.trim_start().starts_with('{') { None } else { endpoints_version(text) };
        if let Some(version) = version {
            if staged.iter().any(|(_, id)| *id == NetworkId::MICROSOFT365) {
                self.entries.retain(|e| e.id != NetworkId::MICROSOFT365);
                self.microsoft365_version = Some(version.to_string());
                self.microsoft365_checked = checked_day(text).map(str::to_string);
            }
        }
        let seq = self.seq;
        self.seq += 1;
        self.entries.extend(staged.into_iter().map(|(net, id)| Entry {
            net,
            id,
            seq,
            size: sizes[&(id, net.addr().is_ipv4())],
        }));
        self.rebuild();
        Ok(())
    }

    fn intern(&mut self, name: &str) -> Result<NetworkId, NetworkError> {
        if let Some(&id) = self.by_name.get(name) {
            return Ok(id);
        }
        let id = u16::try_from(self.names.len())
            .map(NetworkId)
            .map_err(|_| NetworkError::TooManyNetworks { max: u16::MAX as usize })?;
        self.names.push(name.to_string());
        self.by_name.insert(name.to_string(), id);
        Ok(id)
    }

    fn parse_lines(&mut self, text: &str, origin: &str, out: &mut Vec<(IpNet, NetworkId)>) -> Result<(), NetworkError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |message: String| NetworkError::Line { origin: origin.to_string(), line: i + 1, message };
            let mut parts = line.split_whitespace();
            let (Some(cidr), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(err(format!("expected `CIDR name`, found `{line}`")));
            };
            let net = parse_net(cidr).ok_or_else(|| err(format!("bad prefix `{cidr}`")))?;
            let id = self.intern(name)?;
            out.push((net, id));
        }
        Ok(())
    }

    fn parse_json(&mut self, text: &str, origin: &str, out: &mut Vec<(IpNet, NetworkId)>) -> Result<(), NetworkError> {
        let doc: RangeJson<'_> =
            serde_json::from_str(text).map_err(|source| NetworkError::Json { origin: origin.to_string(), source })?;
        let bad = |name: &str, prefix: &str| NetworkError::Prefix {
            origin: origin.to_string(),
            name: name.to_string(),
            prefix: prefix.to_string(),
        };
        if let Some(tags) = doc.values {
            for tag in tags {
                let id = self.intern(&tag.name)?;
                for p in tag.properties.address_prefixes {
                    out.push((parse_net(&p).ok_or_else(|| bad(&tag.name, &p))?, id));
                }
            }
            return Ok(());
        }
        let prefixes = doc.prefixes.unwrap_or_default();
        let v6 = doc.ipv6_prefixes.unwrap_or_default();
        let all = prefixes.iter().chain(v6.iter());
        let aws = prefixes.iter().chain(v6.iter()).any(|p| p.ip_prefix.is_some() || p.ipv6_prefix.is_some());
        let google = prefixes.iter().any(|p| p.ipv4_prefix.is_some() || p.ipv6_prefix_google.is_some());
        if !aws && !google {
            return Err(NetworkError::UnknownFormat { origin: origin.to_string() });
        }
        let mut name = String::new();
        for p in all {
            name.clear();
            if aws {
                name.push_str("aws-");
                name.extend(p.service.as_deref().unwrap_or("unknown").chars().map(|c| c.to_ascii_lowercase()));
            } else {
                name.push_str("google-cloud");
            }
            let id = self.intern(&name)?;
            let cidrs = [&p.ip_prefix, &p.ipv6_prefix, &p.ipv4_prefix, &p.ipv6_prefix_google];
            for cidr in cidrs.into_iter().flatten() {
                out.push((parse_net(cidr).ok_or_else(|| bad(&name, cidr))?, id));
            }
        }
        Ok(())
    }

    fn rebuild(&mut self) {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for e in &self.entries {
            let (start, end) = match e.net {
                IpNet::V4(n) => (u32::from(n.network()) as u128, u32::from(n.broadcast()) as u128),
                IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
            };
            let item = Item { start, end, len: e.net.prefix_len(), seq: e.seq, size: e.size, id: e.id };
            if e.net.addr().is_ipv4() {
                v4.push(item);
            } else {
                v6.push(item);
            }
        }
        self.v4 =
            flatten(v4).into_iter().map(|s| Segment { start: s.start as u32, end: s.end as u32, id: s.id }).collect();
        self.v6 = flatten(v6);
    }

    /// The network of an address: the most specific prefix that covers it,
    /// else `EXTERNAL`. IPv4-mapped IPv6 addresses are looked up as IPv4.
    pub fn lookup(&self, ip: IpAddr) -> NetworkId {
        match ip {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(a)),
            },
        }
        .unwrap_or(NetworkId::EXTERNAL)
    }

    /// The name of a network; `external` for an unknown id.
    pub fn name(&self, id: NetworkId) -> &str {
        self.names.get(id.index()).map_or("external", String::as_str)
    }

    pub fn id_of(&self, name: &str) -> Option<NetworkId> {
        self.by_name.get(name).copied()
    }

    /// Number of named networks; ids are `0..len()`.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Never true: the built-in networks are always there.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Loopback or internal by address, whatever the range files say, so
    /// that naming an internal subnet does not change X-Forwarded-For handling.
    pub fn is_private(&self, ip: IpAddr) -> bool {
        is_private_addr(ip)
    }
}

impl Default for Networks {
    fn default() -> Self {
        Networks::builtin()
    }
}

/// The `endpoints-version` of a text range file: a `#` comment line
/// `# endpoints-version: 2023073100`.
fn endpoints_version(text: &str) -> Option<&str> {
    comment_value(text, "endpoints-version:")
        .find(|value| value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit()))
}

/// The day a text range file was last checked against Microsoft's list: a
/// `#` comment line `# checked: 2026-08-14`.
fn checked_day(text: &str) -> Option<&str> {
    comment_value(text, "checked:").find(|value| {
        let b = value.as_bytes();
        b.len() == 10 && b[4] == b'-' && b[7] == b'-' && w3c::time::parse_rfc3339(value).is_some()
    })
}

/// The values of the `#` comment lines of `text` that start with `key`.
fn comment_value<'t>(text: &'t str, key: &'t str) -> impl Iterator<Item = &'t str> {
    text.lines().filter_map(move |l| Some(l.trim().strip_prefix('#')?.trim().strip_prefix(key)?.trim()))
}

/// Whether a prefix of `nets` holds `ip` in either spelling of an IPv4
/// address: `::ffff:203.0.113.5` is 203.0.113.5 (dual-stack listeners and
/// proxies write IPv4 clients so), and a prefix written either way sees both.
pub fn any_contains(nets: &[IpNet], ip: IpAddr) -> bool {
    let (v4, mapped) = match ip.to_canonical() {
        IpAddr::V4(a) => (IpAddr::V4(a), IpAddr::V6(a.to_ipv6_mapped())),
        v6 => (v6, v6),
    };
    nets.iter().any(|n| n.contains(&v4) || n.contains(&mapped))
}

/// Loopback (127/8, ::1) or internal (RFC 1918, 100.64/10, 169.254/16,
/// fc00::/7, fe80::/10); IPv4-mapped IPv6 addresses as IPv4.
pub fn is_private_addr(ip: IpAddr) -> bool {
    fn v4(a: Ipv4Addr) -> bool {
        let [a0, a1, ..] = a.octets();
        a0 == 127
            || a0 == 10
            || (a0 == 172 && a1 & 0xF0 == 16)
            || (a0 == 192 && a1 == 168)
            || (a0 == 100 && a1 & 0xC0 == 64)
            || (a0 == 169 && a1 == 254)
    }
    fn v6(a: Ipv6Addr) -> bool {
        let s0 = a.segments()[0];
        a == Ipv6Addr::LOCALHOST || s0 & 0xFE00 == 0xFC00 || s0 & 0xFFC0 == 0xFE80
    }
    match ip {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or_else(|| v6(a), v4),
    }
}

fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    match s.parse::<IpNet>() {
        Ok(n) => Some(n.trunc()),
        Err(_) => s.parse::<IpAddr>().ok().map(IpNet::from),
    }
}

fn prefix_size(net: &IpNet) -> u128 {
    let bits = net.max_prefix_len() - net.prefix_len();
    1u128.checked_shl(bits as u32).unwrap_or(u128::MAX)
}

struct Item {
    start: u128,
    end: u128,
    len: u8,
    seq: u32,
    size: u128,
    id: NetworkId,
}

/// Turn nested or disjoint prefixes (CIDR blocks never partly overlap) into
/// sorted, non-overlapping segments where each address maps to its most
/// specific prefix.
fn flatten(mut items: Vec<Item>) -> Vec<Segment<u128>> {
    // Broader first; at equal prefixes the winner goes last (on top).
    items.sort_by(|a, b| {
        a.start.cmp(&b.start).then(a.len.cmp(&b.len)).then(a.seq.cmp(&b.seq)).then(b.size.cmp(&a.size))
    });
    let mut out: Vec<Segment<u128>> = Vec::new();
    let mut push = |start: u128, end: u128, id: NetworkId| {
        if let Some(last) = out.last_mut() {
            if last.id == id && last.end.checked_add(1) == Some(start) {
                last.end = end;
                return;
            }
        }
        out.push(Segment { start, end, id });
    };
    let mut stack: Vec<(u128, NetworkId)> = Vec::new();
    // Next address not yet emitted; `None` once past the end of the space.
    let mut pos: Option<u128> = Some(0);
    for it in items {
        while let Some(&(end, id)) = stack.last() {
            if end >= it.start {
                break;
            }
            if let Some(p) = pos.filter(|&p| p <= end) {
                push(p, end, id);
            }
            pos = pos.map(|p| p.max(end.wrapping_add(1)));
            stack.pop();
        }
        if let Some(&(_, id)) = stack.last() {
            if let Some(p) = pos.filter(|&p| p < it.start) {
                push(p, it.start - 1, id);
            }
        }
        pos = Some(it.start);
        stack.push((it.end, it.id));
    }
    while let Some((end, id)) = stack.pop() {
        if let Some(p) = pos.filter(|&p| p <= end) {
            push(p, end, id);
        }
        pos = match pos {
            Some(p) => end.checked_add(1).map(|e| e.max(p)),
            None => None,
        };
    }
    out
}

fn find<T: Ord + Copy>(segments: &[Segment<T>], x: T) -> Option<NetworkId> {
    let i = segments.partition_point(|s| s.start <= x);
    let s = segments.get(i.checked_sub(1)?)?;
    (x <= s.end).then_some(s.id)
}

/// All three JSON formats at once; which fields are present tells them apart.
#[derive(Deserialize)]
struct RangeJson<'a> {
    #[serde(borrow, default)]
    values: Option<Vec<AzureTag<'a>>>,
    #[serde(borrow, default)]
    prefixes: Option<Vec<PrefixJson<'a>>>,
    #[serde(borrow, default)]
    ipv6_prefixes: Option<Vec<PrefixJson<'a>>>,
}

#[derive(Deserialize)]
struct AzureTag<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    properties: AzureProperties<'a>,
}

#[derive(Deserialize)]
struct AzureProperties<'a> {
    #[serde(borrow, rename = "addressPrefixes", default)]
    address_prefixes: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct PrefixJson<'a> {
    #[serde(borrow, default)]
    ip_prefix: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ipv6_prefix: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "ipv4Prefix")]
    ipv4_prefix: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "ipv6Prefix")]
    ipv6_prefix_google: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    service: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Asserts the name of the network each address is in.
    fn assert_names(n: &Networks, cases: &[(&str, &str)]) {
        for &(addr, want) in cases {
            assert_eq!(n.name(n.lookup(ip(addr))), want, "{addr}");
        }
    }

    #[test]
    fn builtin_networks() {
        let n = Networks::builtin();
        assert_names(
            &n,
            &[
                ("127.0.0.1", "loopback"),
                ("::1", "loopback"),
                ("::ffff:127.0.0.1", "loopback"),
                ("10.0.0.5", "internal"),
                ("172.31.255.255", "internal"),
                ("172.32.0.0", "external"),
                ("100.64.0.1", "internal"),
                ("fe80::1", "internal"),
                ("fd00::1", "internal"),
                ("52.96.1.1", "microsoft365"),
                ("52.99.255.255", "microsoft365"),
                ("52.100.0.1", "microsoft365"),
                ("52.104.0.0", "external"),
                ("52.125.128.9", "microsoft365"),
                ("2603:1036:1::1", "microsoft365"),
                ("2620:1ec:4::152", "microsoft365"),
                ("2620:1ec:4::154", "external"),
                ("203.0.113.7", "external"),
            ],
        );
        assert_eq!(n.lookup(ip("8.8.8.8")), NetworkId::default());
        assert_eq!(n.id_of("microsoft365"), Some(NetworkId::MICROSOFT365));
        assert_eq!(n.name(NetworkId(60000)), "external");
        // Every line of the data file is in the table.
        let lines =
            || MICROSOFT365.lines().chain(AUTODETECT.lines()).filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        assert_eq!(lines().count(), 36);
        assert_eq!(n.microsoft365_version(), Some("2023073100"));
        for l in lines() {
            let net = parse_net(l.split_whitespace().next().unwrap()).unwrap();
            assert_eq!(n.lookup(net.network()), NetworkId::MICROSOFT365, "{l}");
            assert_eq!(n.lookup(net.broadcast()), NetworkId::MICROSOFT365, "{l}");
        }
    }

    /// A range file may say when it was last found current (`# checked:`),
    /// a real day or nothing.
    #[test]
    fn the_day_a_list_was_checked_is_read_with_its_version() {
        let mut n = Networks::builtin();
        let checked = "# endpoints-version: 2026080100\n# checked: 2026-11-30\n52.96.0.0/14 microsoft365\n";
        n.add_text(checked, "checked.txt").unwrap();
        assert_eq!(n.microsoft365_checked(), Some("2026-11-30"));
        for bad in ["2026-13-01", "2026-11-3", "20261130", "soon"] {
            n.add_text(&format!("# endpoints-version: 2026080100\n# checked: {bad}\n52.96.0.0/14 microsoft365\n"), "x")
                .unwrap();
            assert_eq!(n.microsoft365_checked(), None, "{bad}");
        }
    }

    /// A list written by `casguard ranges update` replaces the built-in
    /// Microsoft 365 ranges and gives their version; other files add.
    #[test]
    fn an_endpoints_list_replaces_the_built_in_microsoft365_ranges() {
        let mut n = Networks::builtin();
        n.add_text("203.0.113.0/24 branch\n", "branch.txt").unwrap();
        assert_eq!(n.microsoft365_version(), Some("2023073100"));
        assert_eq!(n.microsoft365_checked(), Some("2026-08-14"));
        let current = "# endpoints-version: 2026080100\n52.96.0.0/14 microsoft365\n198.18.0.0/15 microsoft365\n";
        n.add_text(current, "m365.txt").unwrap();
        assert_eq!(n.microsoft365_version(), Some("2026080100"));
        assert_eq!(n.microsoft365_checked(), None, "the day goes with the list it was said of");
        assert_names(
            &n,
            &[
                ("198.18.0.1", "microsoft365"),
                ("52.96.1.1", "microsoft365"),
                // A range no longer listed is gone.
                ("40.96.0.1", "external"),
                ("203.0.113.9", "branch"),
            ],
        );
        // A version without microsoft365 lines replaces nothing.
        n.add_text("# endpoints-version: 2026090100\n192.0.2.0/24 lab\n", "lab.txt").unwrap();
        assert_names(&n, &[("52.96.1.1", "microsoft365")]);
        assert_eq!(n.microsoft365_version(), Some("2026080100"));
        assert_eq!(endpoints_version("# endpoints-version: 20260801\n"), None);
    }

    #[test]
    fn private_addresses() {
        let n = Networks::builtin();
        for s in [
            "127.0.0.1",
            "10.1.1.1",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.1.1",
            "100.127.0.1",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(n.is_private(ip(s)), "{s}");
        }
        for s in ["8.8.8.8", "172.15.0.1", "100.128.0.1", "52.96.1.1", "2001:db8::1", "::ffff:8.8.8.8", "0.0.0.0"] {
            assert!(!n.is_private(ip(s)), "{s}");
        }
    }

    #[test]
    fn most_specific_wins_and_later_files_win_ties() {
        let mut n = Networks::builtin();
        n.add_text(
            "# sites\n10.0.0.0/8 corp\n10.20.0.0/16 vpn # remote\n10.20.5.0/24 lab\n0.0.0.0/0 world\n::/0 world6\n",
            "sites.txt",
        )
        .unwrap();
        assert_names(
            &n,
            &[
                ("10.1.1.1", "corp"),
                ("10.20.1.1", "vpn"),
                ("10.20.5.255", "lab"),
                ("10.20.6.0", "vpn"),
                ("10.21.0.0", "corp"),
                ("255.255.255.255", "world"),
                ("0.0.0.0", "world"),
                ("52.96.0.0", "microsoft365"),
                ("ffff::1", "world6"),
                ("::1", "loopback"),
            ],
        );
        // Naming an internal subnet keeps it private.
        assert!(n.is_private(ip("10.20.5.1")));
        n.add_text("10.20.5.0/24 lab2", "later.txt").unwrap();
        assert_names(&n, &[("10.20.5.1", "lab2"), ("10.20.4.1", "vpn")]);
    }

    #[test]
    fn flatten_matches_naive_lookup() {
        // Compare the interval table with a linear most-specific search.
        let text = "10.0.0.0/8 a\n10.0.0.0/9 b\n10.64.0.0/10 c\n10.64.0.0/10 d\n10.64.1.0/24 e\n10.127.255.255/32 f\n11.0.0.0/8 g\n";
        let mut n = Networks::new();
        n.add_text(text, "t").unwrap();
        let nets: Vec<(IpNet, &str)> = text
            .lines()
            .map(|l| {
                let (c, name) = l.split_once(' ').unwrap();
                (c.parse().unwrap(), name)
            })
            .collect();
        let mut x: u32 = 0x0900_0000;
        while x < 0x0C00_0000 {
            let a = IpAddr::V4(Ipv4Addr::from(x));
            let best = nets.iter().filter(|(net, _)| net.contains(&a)).max_by_key(|(net, _)| net.prefix_len()).map(
                |(net, _)| {
                    // c and d are the same size: the later line wins the tie.
                    nets.iter().rfind(|(m, _)| m == net).unwrap().1
                },
            );
            let got = n.name(n.lookup(a));
            assert_eq!(got, best.unwrap_or("external"), "{a}");
            x = x.wrapping_add(0x0000_7FFF);
        }
    }

    #[test]
    fn aws_and_google_and_errors() {
        let aws = r#"{"syncToken":"1","createDate":"2025-01-01-00-00-00","prefixes":[
            {"ip_prefix":"3.0.0.0/8","region":"GLOBAL","service":"AMAZON","network_border_group":"x"},
            {"ip_prefix":"3.5.0.0/16","region":"us-east-1","service":"EC2","network_border_group":"x"},
            {"ip_prefix":"3.5.0.0/16","region":"us-east-1","service":"AMAZON","network_border_group":"x"}],
            "ipv6_prefixes":[{"ipv6_prefix":"2600:1f00::/24","region":"GLOBAL","service":"S3","network_border_group":"x"}]}"#;
        let google = r#"{"syncToken":"1","creationTime":"x","prefixes":[{"ipv4Prefix":"34.1.0.0/16","service":"Google Cloud","scope":"us"},{"ipv6Prefix":"2600:1900::/28","service":"Google Cloud","scope":"us"}]}"#;
        let mut n = Networks::builtin();
        n.add_text(aws, "ip-ranges.json").unwrap();
        n.add_text(google, "cloud.json").unwrap();
        assert_names(
            &n,
            &[
                ("3.1.1.1", "aws-amazon"),
                ("3.5.1.1", "aws-ec2"),
                ("2600:1f00::1", "aws-s3"),
                ("34.1.2.3", "google-cloud"),
                ("2600:1900::5", "google-cloud"),
            ],
        );

        let before = n.len();
        assert!(matches!(n.add_text("{\"foo\": 1}", "x.json"), Err(NetworkError::UnknownFormat { .. })));
        assert!(matches!(n.add_text("{", "x.json"), Err(NetworkError::Json { .. })));
        assert!(matches!(
            n.add_text("1.2.3.0/24 ok\nnot-a-cidr name\n", "x.txt"),
            Err(NetworkError::Line { line: 2, .. })
        ));
        assert!(matches!(n.add_text("1.2.3.0/24\n", "x.txt"), Err(NetworkError::Line { line: 1, .. })));
        assert_eq!(n.len(), before, "failed adds leave no names behind");
        assert_eq!(n.lookup(ip("1.2.3.4")), NetworkId::EXTERNAL);
        assert!(matches!(n.add_file("/nonexistent/ranges.txt"), Err(NetworkError::Io { .. })));
    }

    #[test]
    fn azure_service_tags_sample() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/ranges/ServiceTags_Public_20251028.json");
        let mut n = Networks::builtin();
        n.add_file(path).unwrap();
        assert!(n.len() > 3000, "{}", n.len());
        // 13.69.40.16/28 is in Storage and Storage.WestEurope; its /17 in
        // AzureCloud and AzureCloud.westeurope.
        assert_names(
            &n,
            &[
                ("13.69.40.17", "Storage.WestEurope"),
                ("13.69.0.1", "AzureCloud.westeurope"),
                ("4.232.98.113", "AzureFrontDoor.Frontend"),
                ("4.232.0.1", "AzureCloud.italynorth"),
                // Exchange Online is in none of the tags.
                ("52.96.1.1", "microsoft365"),
                ("10.0.0.1", "internal"),
            ],
        );
        assert!(n.id_of("AzureCloud").is_some());
        // The tables are sorted and disjoint.
        assert!(n.v4.windows(2).all(|w| w[0].end < w[1].start));
        assert!(n.v6.windows(2).all(|w| w[0].end < w[1].start));
    }
}
