//! From raw request fields to meaning: protocol, ActiveSync parameters, the
//! user, the client address and network, the client software, and the kind of
//! traffic. [`Interpreter::interpret`] is shared by log reading and the live
//! gateway; [`Interpreter::read_record`] only copies a log line's fields in.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::activesync;
use crate::catalog::{Catalog, ClientId, Device};
use crate::exploits::{ExploitRules, URI_BUFFER};
use crate::identity::{account_key, UserKind};
use crate::matching::{contains_ci, holds, lower_uri};
use crate::networks::{NetworkId, Networks};
use crate::protocol::protocol_of;
use crate::request::{LogWanted, Protocol, Request, Traffic};
use crate::url;

mod memo;

use memo::{activesync_query, canonical_stem, Address, Memo, QuerySlot, StemSlot, UaFacts, MEMO};

/// User-agent substrings of Managed Availability and Test-*Connectivity
/// (ASCII case-insensitive). `_probe` is special: it must end a token.
const PROBE_UA: [&str; 6] =
    ["AMProbe", "MSEXCHMON", "ACTIVEMONITORING", "TestActiveSyncConnectivity", "Exchange BackEnd Probes", "_Probe"];
const PROBE_TOKEN: usize = 5;
const PROBE_DEVICE_TYPES: [&str; 2] = ["EASProbeDeviceType", "TestActiveSyncConnectivity"];
const PROBE_QUERY: &str = "clientApplication=ActiveMonitor";
/// The page each of Exchange's virtual directories serves for load
/// balancers' health checks (`/owa/healthcheck.htm`, `/EWS/healthcheck.htm`,
/// ...; Managed Availability answers 200 while the protocol is healthy).
const HEALTH_PAGE: &str = "/healthcheck.htm";

/// A load balancer's (or a monitor's) poll of a health page.
fn is_health_page(stem: &str) -> bool {
    crate::text::ends_with_ci(stem, HEALTH_PAGE)
}

/// What the consumer of a reader's requests reads, so that the reader may
/// leave out the rest (see [`Interpreter::read_record_as`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The consumer only counts back-end hops (see [`crate::RequestSink::counts_hops_only`]).
    pub hops_counted: bool,
    /// The `Log=` tokens it reads (see [`crate::RequestSink::log_tokens`]);
    /// `PrxFrom` is read in any case, since it makes a line a back-end hop.
    pub log: LogWanted,
}

impl Reading {
    /// Everything read.
    pub const FULL: Reading = Reading { hops_counted: false, log: LogWanted::ALL };
}

/// Everything needed to interpret requests; build once, share across threads.
#[derive(Clone, Debug)]
pub struct Interpreter {
    /// Identifies the rules in force for the per-thread memo; a clone has the same rules.
    id: u64,
    catalog: Catalog,
    networks: Networks,
    exploits: ExploitRules,
    probe_ua: AhoCorasick,
    /// `PROBE_QUERY` lower-cased, for the lower-cased URI.
    probe_query: memchr::memmem::Finder<'static>,
}

impl Interpreter {
    /// With the built-in exploit rules.
    pub fn new(catalog: Catalog, networks: Networks) -> Interpreter {
        Interpreter {
            id: next_id(),
            catalog,
            networks,
            exploits: ExploitRules::builtin(),
            probe_ua: AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(PROBE_UA)
                .expect("fixed literal patterns build"),
            probe_query: memchr::memmem::Finder::new(&PROBE_QUERY.to_ascii_lowercase()).into_owned(),
        }
    }

    /// Built-in catalog, networks and exploit rules.
    pub fn builtin() -> Interpreter {
        Interpreter::new(Catalog::builtin(), Networks::builtin())
    }

    /// Replace the exploit rules.
    pub fn with_exploits(mut self, exploits: ExploitRules) -> Interpreter {
        self.exploits = exploits;
        self.id = next_id();
        self
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn networks(&self) -> &Networks {
        &self.networks
    }

    pub fn exploits(&self) -> &ExploitRules {
        &self.exploits
    }

    /// Clear `req`, copy the raw fields of a log line into it, then
    /// [`interpret`](Interpreter::interpret) them.
    pub fn read_record(&self, record: &w3c::Record<'_>, req: &mut Request) {
        self.read_record_as(record, req, Reading::FULL);
    }

    /// [`read_record`](Interpreter::read_record) for a reader that only
    /// counts back-end hops (see [`crate::RequestSink::counts_hops_only`]):
    /// a line on the Back End site that turns out a plain hop
    /// ([`Traffic::Backend`]) is not given its client, and no line on that
    /// site its `PrxFrom`. Everything else is as `read_record` fills it.
    pub fn read_record_counting_hops(&self, record: &w3c::Record<'_>, req: &mut Request) {
        self.read_record_as(record, req, Reading { hops_counted: true, log: LogWanted::ALL });
    }

    /// [`read_record`](Interpreter::read_record) for a consumer that reads
    /// what `reading` says: as [`read_record_counting_hops`](Interpreter::read_record_counting_hops)
    /// when `reading.hops_counted`, and only the `Log=` tokens of
    /// `reading.log` (and `PrxFrom`) filled; everything else as `read_record` fills it.
    pub fn read_record_as(&self, record: &w3c::Record<'_>, req: &mut Request, reading: Reading) {
        use w3c::Field;
        req.clear();
        req.source = crate::request::Source::Iis;
        // Method, stem and query are read as text, checked once (see
        // `w3c::Record::texts`); with any invalid byte among them each is
        // decoded on its own, invalid bytes replaced.
        let fields = [Field::Method, Field::UriStem, Field::UriQuery];
        let texts = record.texts(fields);
        let text = |i: usize, out: &mut String| match &texts {
            Some(texts) => out.push_str(texts[i].unwrap_or_default()),
            None => {
                if let Some(v) = record.get(fields[i]) {
                    w3c::decode_utf8_into(v, out);
                }
            }
        };
        let display = |f: Field, out: &mut String| {
            if let Some(v) = record.get(f) {
                w3c::decode_into(v, out);
            }
        };
        text(0, &mut req.method);
        text(1, &mut req.stem);
        text(2, &mut req.query);
        display(Field::ForwardedFor, &mut req.forwarded_for);
        // ProxyLogon's route in the Cookie header, where the site logs
        // cs(Cookie) (not by default): the cookie the gateway refuses.
        req.backend_named = record.get(Field::Cookie).is_some_and(url::cookie_names_a_backend);
        let username = record.get(Field::Username);
        // The reader has checked the typed columns and parsed the time.
        let number = |f: Field| record.number(f).unwrap_or(0);
        req.status = number(Field::Status);
        req.substatus = number(Field::SubStatus);
        req.win32_status = record.get(Field::Win32Status).and_then(parse_u32).unwrap_or(0);
        req.server_port = number(Field::ServerPort);
        req.time = record.timestamp().unwrap_or(0);
        let ua = record.get(Field::UserAgent).unwrap_or_default();
        // The memo is keyed by the raw user agent, so a known one is copied, not decoded.
        let done = MEMO.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut memo) => {
                let memo = memo.get_or_insert_with(Memo::new);
                let kind = username.map_or(UserKind::None, |raw| memo.user(raw, &mut req.username, &mut req.user));
                let facts = memo.raw_facts(self, ua, &mut req.user_agent);
                req.server_ip = memo.server_ip(record.get(Field::ServerIp));
                let address = memo.address(self, record.get(Field::ClientIp), &req.forwarded_for);
                req.peer_ip = address.peer;
                let queries = Some((&mut memo.queries[..], &mut memo.query_key));
                self.interpret_with(
                    req,
                    facts,
                    Some(kind),
                    &mut memo.uri,
                    Some(&mut memo.stems),
                    queries,
                    Some(address),
                    reading,
                );
                true
            }
            Err(_) => false,
        });
        if done != Ok(true) {
            req.server_ip = record.address(Field::ServerIp);
            req.peer_ip = record.address(Field::ClientIp);
            if let Some(raw) = username {
                w3c::decode_name_into(raw, &mut req.username);
            }
            req.user_agent.clear();
            w3c::decode_into(ua, &mut req.user_agent);
            let facts = self.ua_facts(&req.user_agent);
            self.interpret_with(req, facts, None, &mut [0; URI_BUFFER], None, None, None, reading);
        }
    }

    /// Derive everything else from the raw fields (method, stem, query,
    /// status, ports, addresses, forwarded_for, user_agent, username).
    /// Allocates nothing once `req`'s strings have grown to size (and the
    /// thread's memo of user agents has seen this one).
    pub fn interpret(&self, req: &mut Request) {
        let memo = MEMO.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut memo) => {
                let memo = memo.get_or_insert_with(Memo::new);
                let facts = memo.facts(self, &req.user_agent);
                let queries = Some((&mut memo.queries[..], &mut memo.query_key));
                self.interpret_with(
                    req,
                    facts,
                    None,
                    &mut memo.uri,
                    Some(&mut memo.stems),
                    queries,
                    None,
                    Reading::FULL,
                );
                true
            }
            Err(_) => false,
        });
        if memo != Ok(true) {
            let facts = self.ua_facts(&req.user_agent);
            self.interpret_with(req, facts, None, &mut [0; URI_BUFFER], None, None, None, Reading::FULL);
        }
    }

    /// `user_kind`: `req.user` already holds the account key of `req.username`, of this kind.
    /// `queries`: the thread's memo of ActiveSync queries and its scratch key.
    /// `address`: the client address and network of `req.peer_ip` and
    /// `req.forwarded_for`, when known. `reading`: see
    /// [`Interpreter::read_record_as`].
    #[allow(clippy::too_many_arguments)]
    fn interpret_with(
        &self,
        req: &mut Request,
        facts: UaFacts,
        user_kind: Option<UserKind>,
        uri: &mut [u8; URI_BUFFER],
        stems: Option<&mut [StemSlot]>,
        queries: Option<(&mut [QuerySlot], &mut String)>,
        address: Option<Address>,
        reading: Reading,
    ) {
        // Logged stems are decoded already; resolve what IIS would route
        // (`\\`, dot segments, trailing dots) so a rule sees one spelling.
        // A canonical stem seen before is known with its protocol.
        let mut stem = None;
        let canonical = match stems {
            Some(slots) => {
                stem = canonical_stem(slots, &req.stem);
                stem.is_some()
            }
            None => url::is_canonical(&req.stem),
        };
        if !canonical {
            let mut canonical = String::with_capacity(req.stem.len());
            url::normalize_path(&req.stem, &mut canonical);
            req.stem = canonical;
        }
        req.protocol = stem.as_ref().map_or_else(|| protocol_of(&req.stem), |s| s.protocol);
        // A line on the Back End site is a hop, a probe or an attack,
        // whatever its `Log=` says (see `is_backend`): `PrxFrom` is not
        // needed. Its other tokens are read, since in Exchange 2013+ only the
        // back end, where ActiveSync runs, writes `Log=`: a device's model,
        // OS and access state are in its hops, not in its front-end lines.
        let hop = reading.hops_counted && req.on_backend_site();
        let log = if hop { reading.log } else { reading.log.with(LogWanted::PROXIED_FROM) };
        if req.protocol == Protocol::ActiveSync {
            match queries {
                Some((slots, key)) => activesync_query(slots, key, &req.query, &mut req.activesync, log),
                None => activesync::parse_query_with(&req.query, &mut req.activesync, log),
            }
        } else {
            req.activesync.clear();
        }

        let mut kind = match user_kind {
            Some(kind) => kind,
            None => account_key(&req.username, &mut req.user),
        };
        if kind == UserKind::None && !req.activesync.user.is_empty() {
            kind = account_key(&req.activesync.user, &mut req.user);
        }

        (req.client_ip, req.network) = match address {
            Some(a) => (a.client, a.network),
            // The gateway keeps X-Forwarded-For only from a peer it was told
            // to trust, public or not.
            None => self.client_and_network(req.peer_ip, &req.forwarded_for, req.source == crate::Source::Gateway),
        };

        // Lower-cased once for the detection rules and the probe query alike.
        let uri_len = lower_uri(req, uri);
        let path = match stem.as_deref_mut() {
            Some(slot) if self.exploits.uses_paths() => {
                Some(slot.facts(self.exploits.files(), &req.stem, req.on_backend_site()))
            }
            _ => None,
        };
        req.attack = self.exploits.detect_with(req, facts.exploit, uri, Some(uri_len), path);
        req.traffic = if req.attack.is_some() {
            Traffic::Attack
        } else if kind == UserKind::HealthMailbox
            || facts.probe
            || stem.as_ref().map_or_else(|| is_health_page(&req.stem), |s| s.health)
            || self.is_probe_request(req, uri, uri_len)
        {
            Traffic::Probe
        } else if is_backend(req, || stem.as_ref().map_or_else(|| contains_ci(&req.stem, "/Proxy"), |s| s.proxy)) {
            Traffic::Backend
        } else if kind == UserKind::Machine {
            Traffic::Machine
        } else {
            Traffic::Person
        };
        if hop && req.traffic == Traffic::Backend {
            // Only counted: no client to name.
            (req.client, req.attack_claims) = (ClientId::UNKNOWN, ClientId::UNKNOWN);
            return;
        }
        let device = Device { device_type: &req.activesync.device_type, device_id: &req.activesync.device_id };
        let claimed = self.catalog.classify_ua(&req.user_agent, &facts.class, device, req.protocol, &req.stem);
        // An attack names no client: its user agent and device type are the attacker's choice.
        (req.client, req.attack_claims) =
            if req.attack.is_some() { (ClientId::UNKNOWN, claimed) } else { (claimed, ClientId::UNKNOWN) };
    }

    fn ua_facts(&self, ua: &str) -> UaFacts {
        UaFacts {
            class: self.catalog.ua_class(ua),
            probe: self.is_probe_ua(ua),
            exploit: self.exploits.ua_verdicts(ua),
        }
    }

    /// [`client_ip`](Interpreter::client_ip) and its network.
    fn client_and_network(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: &str,
        peer_vouched: bool,
    ) -> (Option<IpAddr>, NetworkId) {
        let client = self.client_ip_from(peer, forwarded_for, peer_vouched);
        (client, client.map_or(NetworkId::EXTERNAL, |ip| self.networks.lookup(ip)))
    }

    /// c-ip, unless it is private or loopback and X-Forwarded-For names a
    /// public address: then the right-most such address.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: &str) -> Option<IpAddr> {
        self.client_ip_from(peer, forwarded_for, false)
    }

    /// [`Interpreter::client_ip`], reading X-Forwarded-For also from a public
    /// `peer` when it is vouched for (a proxy the gateway was told to trust).
    fn client_ip_from(&self, peer: Option<IpAddr>, forwarded_for: &str, peer_vouched: bool) -> Option<IpAddr> {
        let peer = peer?;
        if forwarded_for.is_empty() || !(peer_vouched || self.networks.is_private(peer)) {
            return Some(peer);
        }
        forwarded_for.rsplit(',').filter_map(parse_forwarded).find(|ip| !self.networks.is_private(*ip)).or(Some(peer))
    }

    /// A monitoring user agent.
    fn is_probe_ua(&self, ua: &str) -> bool {
        let bytes = ua.as_bytes();
        // Most user agents contain no probe marker: a quick unanchored test first.
        self.probe_ua.is_match(ua)
            && self.probe_ua.find_overlapping_iter(ua).any(|m| {
                m.pattern().as_usize() != PROBE_TOKEN
                    || holds(bytes.get(m.end()), |&c| matches!(c, b'/' | b' ' | b';' | b')' | b'(' | b','))
            })
    }

    /// A probe by its ActiveSync device type or query (the user agent aside).
    /// `uri` holds the lower-cased URI of `uri_len` bytes (see [`lower_uri`]).
    fn is_probe_request(&self, req: &Request, uri: &[u8; URI_BUFFER], uri_len: usize) -> bool {
        PROBE_DEVICE_TYPES.iter().any(|d| req.activesync.device_type.eq_ignore_ascii_case(d))
            || (!req.query.is_empty()
                && match uri.get(req.stem.len() + 1..uri_len) {
                    Some(query) if uri_len <= URI_BUFFER => self.probe_query.find(query).is_some(),
                    _ => contains_ci(&req.query, PROBE_QUERY),
                })
    }
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Default for Interpreter {
    fn default() -> Self {
        Interpreter::builtin()
    }
}

/// `proxy`: whether the stem names `/Proxy` (in any case).
fn is_backend(req: &Request, proxy: impl FnOnce() -> bool) -> bool {
    req.on_backend_site()
        || (req.protocol == Protocol::ActiveSync && proxy())
        || !req.activesync.log.proxied_from.is_empty()
}

/// `sc-win32-status` as logged: a 32-bit code in decimal (`2148074254`).
fn parse_u32(v: &[u8]) -> Option<u32> {
    if (1..=10).contains(&v.len()) && v.iter().all(u8::is_ascii_digit) {
        let n = v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        return u32::try_from(n).ok();
    }
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// One X-Forwarded-For element: an address, optionally with a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:443`) or a zone id.
pub fn parse_forwarded(item: &str) -> Option<IpAddr> {
    let item = item.trim().trim_matches('"');
    if let Some(ip) = w3c::parse_ip(item.as_bytes()) {
        return Some(ip);
    }
    item.parse::<SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ActiveSync;
    use crate::testing::xorshift;

    const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/exchange-backend-edge-cases.log");

    fn live(stem: &str, query: &str, port: u16, peer: &str, ua: &str, user: &str) -> Request {
        let mut r = Request {
            method: "POST".into(),
            stem: stem.into(),
            query: query.into(),
            status: 200,
            server_port: port,
            peer_ip: Some(peer.parse().unwrap()),
            user_agent: ua.into(),
            username: user.into(),
            ..Request::default()
        };
        Interpreter::builtin().interpret(&mut r);
        r
    }

    fn scan(data: &[u8]) -> (Vec<Request>, w3c::FileStats) {
        let it = Interpreter::builtin();
        let mut out = Vec::new();
        let mut req = Request::default();
        let stats = w3c::scan_bytes(data, &w3c::ScanOptions::default(), &mut |r: &w3c::Record<'_>| {
            it.read_record(r, &mut req);
            out.push(req.clone());
        });
        (out, stats)
    }

    /// ProxyLogon's SSRF probe (Microsoft's `http-vuln-cve2021-26855.nse`,
    /// Nuclei's template) names its back end in the Cookie header alone: a
    /// site that logs cs(Cookie) shows it, whatever the user agent; OWA's
    /// own routing cookie is no such route.
    #[test]
    fn logged_cookie_naming_a_backend_is_proxylogon() {
        let log = "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip \
cs(User-Agent) cs(Cookie) sc-status sc-substatus sc-win32-status time-taken\r\n\
2026-11-10 13:24:11 10.0.0.23 GET /owa/auth/x.js - 443 - 198.51.100.46 \
Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) X-AnonResource=true;+X-AnonResource-Backend=somethingnonexistent/ecp/\
default.flt?~3;+X-BEResource=somethingnonexistent/owa/auth/logon.aspx?~3; 404 0 2 37\r\n\
2026-11-10 13:24:12 10.0.0.23 GET /owa/auth/x.js - 443 - 198.51.100.44 \
Mozilla/5.0+(compatible;+Nmap+Scripting+Engine;+https://nmap.org/book/nse.html) \
X-BEResource=localhost/owa/auth/logon.aspx?~3; 404 0 2 37\r\n\
2026-11-10 13:24:13 10.0.0.23 POST /owa/service.svc action=GetItem 443 CONTOSO\\dmitry 10.1.26.4 \
Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) X-BackEndCookie=S-1-5-21-1=u56Lnp2ejJqBy8fIzMnKzsrSyp3Jy9LLx87G0s3H; \
200 0 0 37\r\n";
        let (reqs, stats) = scan(log.as_bytes());
        assert_eq!((reqs.len(), stats.malformed_total()), (3, 0));
        for r in &reqs[..2] {
            assert!(r.backend_named, "{}", r.user_agent);
            assert_eq!(r.traffic, Traffic::Attack, "{}", r.user_agent);
            assert_eq!(r.attack.map(|d| d.rule), Some("proxylogon"), "{}", r.user_agent);
        }
        assert!(!reqs[2].backend_named);
        assert_eq!((reqs[2].traffic, reqs[2].attack), (Traffic::Person, None));
    }

    #[test]
    fn backend_edge_cases_sample() {
        let data = std::fs::read(SAMPLE).unwrap();
        let (reqs, stats) = scan(&data);
        // Three lines have a doubled space: the reader reports them malformed.
        assert_eq!(reqs.len() as u64 + stats.malformed_total(), 12);
        assert!(reqs.len() >= 9, "{}", reqs.len());
        let mut seen = 0;
        for r in &reqs {
            let (protocol, traffic) = match (r.method.as_str(), r.stem.as_str()) {
                ("POST", "/powershell") => (Protocol::PowerShell, Traffic::Probe),
                ("GET", "/api/v1.0/$metadata") => (Protocol::Rest, Traffic::Probe),
                ("GET", "/rancertloc/CertMgmt/EditCertificate.aspx") => (Protocol::Other, Traffic::Backend),
                ("POST", "/Microsoft-Server-ActiveSync/Proxy") => (Protocol::ActiveSync, Traffic::Probe),
                // Port 81 is a back-end hop, which precedes the machine account.
                ("RPC_IN_DATA", "/rpc/rpcproxy.dll") => (Protocol::Rpc, Traffic::Backend),
                ("RPC_OUT_DATA", "/rpc/rpcproxy.dll") => (Protocol::Rpc, Traffic::Backend),
                ("POST", "/rancertloc/DDI/DDIService.svc/SetObject") => (Protocol::Other, Traffic::Backend),
                ("POST", "/ews/exchange.asmx") => (Protocol::Ews, Traffic::Probe),
                ("POST", "/mapi/emdata/") => (Protocol::Mapi, Traffic::Backend),
                ("GET", "/rancertloc/logoff.aspx") => (Protocol::Other, Traffic::Probe),
                other => panic!("unexpected line {other:?}"),
            };
            assert_eq!((r.protocol, r.traffic), (protocol, traffic), "{} {}", r.method, r.stem);
            assert_eq!(r.attack, None);
            assert!(r.time > 1_640_995_200 && r.time < 1_641_081_600, "{}", r.time);
            assert_eq!(r.peer_ip, Some("::1".parse().unwrap()));
            assert_eq!(r.network, NetworkId::LOOPBACK);
            seen += 1;
        }
        assert_eq!(seen, reqs.len());

        let find = |method: &str, stem: &str| reqs.iter().find(|r| r.method == method && r.stem == stem).unwrap();
        let cert = find("GET", "/rancertloc/CertMgmt/EditCertificate.aspx");
        assert_eq!(cert.username, "ranDom\\Ran.User");
        assert_eq!(cert.user, "ran.user");
        assert_eq!(cert.server_port, 444);
        assert_eq!(cert.status, 200);
        assert_eq!(cert.user_agent, "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; Touch; rv:11.0) like Gecko");
        assert_eq!(Interpreter::builtin().catalog().get(cert.client).id, "browser");

        let rpc = find("RPC_IN_DATA", "/rpc/rpcproxy.dll");
        assert_eq!(rpc.user, "ex04$");
        assert_eq!(rpc.server_port, 81);
        let mut key = String::new();
        assert_eq!(account_key(&rpc.username, &mut key), UserKind::Machine);
        assert_eq!(Interpreter::builtin().catalog().get(rpc.client).id, "outlook-windows");
        assert_eq!(find("RPC_OUT_DATA", "/rpc/rpcproxy.dll").user, "");

        let eas = find("POST", "/Microsoft-Server-ActiveSync/Proxy");
        assert_eq!(eas.username, "");
        assert_eq!(eas.activesync.command, "Settings");
        assert_eq!(eas.activesync.device_type, "RandomDeviceDeviceType");
        assert_eq!(eas.activesync.device_id, "RandomDeviceIdasaewre54461");
        assert_eq!(eas.user, "randomuserbe22875gh5660904erere9ec9acdcd7ef09ccab9");
        assert_eq!((eas.status, eas.substatus), (401, 1));

        let mapi = find("POST", "/mapi/emdata/");
        assert_eq!(mapi.user, "randommailbox3242354");
        assert_eq!(find("POST", "/ews/exchange.asmx").user, "randommailbox3242354");
    }

    #[test]
    fn the_query_memo_reads_as_parse_query_does() {
        let pieces = [
            "&",
            "Cmd=Sync",
            "Cmd=Ping",
            "User=a%40b",
            "DeviceId=X1",
            "DeviceId=x2",
            "DeviceType=iPhone",
            "&Log=",
            "&log=",
            "Log=V161_As:AllowedG",
            "PrxFrom:10.0.0.1_",
            "DevOS:iOS_",
            "_Fet:12",
            "jAAJBAp2",
            "oQkJBBdhbmRyb2lk",
            "&CorrelationID=<empty>;",
            "&cafeReqId=0a1b2c3d-0000-4000-8000-00000000000a;",
            "&cafeReqId=0a1b2c3d-0000-4000-8000-00000000000b;",
            "cafeReqId=0a1b2c3d-0000-4000-8000-00000000000c;",
            "&cafeReqId=0a1b2c3d-0000-4000-8000-0000000000;",
            "&cafeReqId=not-a-guid;",
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || xorshift(&mut x);
        // Four slots: queries evict each other all the time.
        let mut slots: Vec<QuerySlot> = std::iter::repeat_with(QuerySlot::default).take(4).collect();
        let (mut key, mut memo, mut plain) = (String::new(), ActiveSync::default(), ActiveSync::default());
        for i in 0..20_000 {
            let query: String = (0..next() % 8).map(|_| pieces[(next() % pieces.len() as u64) as usize]).collect();
            let audit = LogWanted::DEVICE_OS.with(LogWanted::DEVICE_MODEL).with(LogWanted::ACCESS_STATE);
            let log = [LogWanted::NONE, LogWanted::ALL, audit, LogWanted::PROXIED_FROM][i % 4];
            activesync_query(&mut slots, &mut key, &query, &mut memo, log);
            // The whole parse, then the tokens not wanted dropped.
            activesync::parse_query(&query, &mut plain);
            plain.log.keep_only(log);
            assert_eq!(memo, plain, "{query:?} log={log:?}");
        }
    }

    #[test]
    fn counting_hops_leaves_out_only_what_a_counted_hop_is_not_read_for() {
        let log = "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) sc-status sc-substatus sc-win32-status\n\
2026-11-02 10:00:00 10.0.1.11 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync&User=jdoe&DeviceId=ABC&DeviceType=iPhone&Log=V161_As:AllowedG_DevOS:iOS+17 443 CONTOSO\\jdoe 203.0.113.9 Apple-iPhone15C3/2104.100 200 0 0\n\
2026-11-02 10:00:01 10.0.1.12 POST /Microsoft-Server-ActiveSync/Proxy/default.eas Cmd=Sync&User=jdoe&DeviceId=ABC&DeviceType=iPhone&Log=PrxFrom:10.0.1.11_V161_As:AllowedG 444 CONTOSO\\jdoe 10.0.1.11 Apple-iPhone15C3/2104.100 401 1 1326\n\
2026-11-02 10:00:02 10.0.1.12 POST /Microsoft-Server-ActiveSync/Proxy/default.eas Cmd=Sync&User=a&DeviceId=EASProbeDeviceId1&DeviceType=EASProbeDeviceType&Log=PrxFrom:10.0.1.11_V161 444 - 10.0.1.11 TestActiveSyncConnectivity 200 0 0\n\
2026-11-02 10:00:03 10.0.1.12 GET /autodiscover/autodiscover.json @evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3f@evil.com 444 - 198.51.100.4 python-requests/2.31 200 0 0\n\
2026-11-02 10:00:04 10.0.1.12 POST /EWS/Exchange.asmx - 444 CONTOSO\\jdoe 10.0.1.11 Microsoft+Office/16.0+(Windows+NT+10.0;+Microsoft+Outlook+16.0.17928;+Pro) 200 0 0\n";
        let it = Interpreter::builtin();
        let (mut full, mut counted) = (Vec::new(), Vec::new());
        let mut req = Request::default();
        w3c::scan_bytes(log.as_bytes(), &w3c::ScanOptions::default(), &mut |r: &w3c::Record<'_>| {
            it.read_record(r, &mut req);
            full.push(req.clone());
            it.read_record_counting_hops(r, &mut req);
            counted.push(req.clone());
        });
        assert_eq!(full.len(), 5);
        let traffic: Vec<_> = full.iter().map(|r| r.traffic).collect();
        assert_eq!(traffic, [Traffic::Person, Traffic::Backend, Traffic::Probe, Traffic::Attack, Traffic::Backend]);
        for (f, c) in full.iter().zip(&counted) {
            let mut expected = f.clone();
            if f.traffic == Traffic::Backend {
                (expected.client, expected.attack_claims) = (ClientId::UNKNOWN, ClientId::UNKNOWN);
            }
            // Request has no PartialEq: compare what Debug shows, every field.
            assert_eq!(format!("{c:?}"), format!("{expected:?}"));
        }
        // What a counted hop still tells: a failed sign-in, by whom, from where.
        let hop = &counted[1];
        assert!(hop.is_failed_sign_in() && hop.user == "jdoe" && hop.client_ip.is_some());
        assert_ne!(full[1].client, ClientId::UNKNOWN);
        assert_eq!(full[1].activesync.log.proxied_from, "10.0.1.11");
        assert_eq!(hop.activesync.log.access_state, "AllowedG");
    }

    #[test]
    fn interpreter_is_shareable() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Interpreter>();
    }

    #[test]
    fn machine_account_on_front_end() {
        let r = live("/rpc/rpcproxy.dll", "", 443, "10.0.0.9", "MSRPC", "RanDomain\\EX04$");
        assert_eq!(r.traffic, Traffic::Machine);
        let r = live("/owa/", "", 443, "10.0.0.9", "Mozilla/5.0", "CONTOSO\\jdoe");
        assert_eq!((r.traffic, r.user.as_str()), (Traffic::Person, "jdoe"));
        let r = live("/owa/", "", 443, "10.0.0.9", "Mozilla/5.0", "");
        assert_eq!((r.traffic, r.user.as_str()), (Traffic::Person, ""));
    }

    #[test]
    fn probes() {
        let cases = [
            ("/owa/", "", "AMProbe/Local/ClientAccess", ""),
            ("/ews/exchange.asmx", "", "Ews_Probe/Local (ExchangeServicesClient/15.01.25965.004)", ""),
            ("/api/v1.0/$metadata", "", "Odata_PC_Probe/Local", ""),
            ("/owa/", "", "Mozilla/4.0 (compatible; MSEXCHMON; ACTIVEMONITORING)", ""),
            ("/owa/", "", "Exchange BackEnd Probes", ""),
            (
                "/Microsoft-Server-ActiveSync",
                "Cmd=Sync&User=a&DeviceId=EASProbeDeviceId160&DeviceType=EASProbeDeviceType",
                "x",
                "",
            ),
            (
                "/Microsoft-Server-ActiveSync",
                "Cmd=Sync&User=a&DeviceId=b&DeviceType=TestActiveSyncConnectivity",
                "x",
                "",
            ),
            (
                "/powershell",
                "clientApplication=ActiveMonitor;PSVersion=5.1",
                "Microsoft WinRM Client",
                "CONTOSO\\admin",
            ),
            ("/owa/", "", "Mozilla/5.0", "HealthMailboxdf8b87828ab0427cb91e985bbdfcec62@contoso.com"),
            // Load balancers' polls: anonymous, often without a user agent.
            ("/owa/healthcheck.htm", "", "", ""),
            ("/EWS/HealthCheck.htm", "", "KEMP Health Check", ""),
            ("/Microsoft-Server-ActiveSync/healthcheck.htm", "", "", ""),
        ];
        for (stem, query, ua, user) in cases {
            assert_eq!(live(stem, query, 443, "127.0.0.1", ua, user).traffic, Traffic::Probe, "{stem} {ua}");
        }
        // `_Probe` must end a token.
        assert_eq!(live("/owa/", "", 443, "10.0.0.1", "My_ProbeX/1", "u").traffic, Traffic::Person);
        assert_eq!(live("/owa/healthcheck.html", "", 443, "10.0.0.1", "", "").traffic, Traffic::Person);
    }

    #[test]
    fn backend_hops() {
        let r = live(
            "/Microsoft-Server-ActiveSync/default.eas",
            "Cmd=Ping&User=u&DeviceId=d&DeviceType=iPhone&Log=PrxFrom:10.0.22.211_V161",
            443,
            "10.0.0.1",
            "Apple-iPhone/1",
            "",
        );
        assert_eq!(r.traffic, Traffic::Backend);
        assert_eq!(r.user, "u");
        let r = live(
            "/Microsoft-Server-ActiveSync/default.eas",
            "Cmd=Ping&User=u&DeviceId=d&DeviceType=iPhone&Log=V161",
            443,
            "10.0.0.1",
            "Apple-iPhone/1",
            "",
        );
        assert_eq!(r.traffic, Traffic::Person);
        assert_eq!(live("/ews/exchange.asmx", "", 444, "10.0.0.1", "x", "u").traffic, Traffic::Backend);
    }

    #[test]
    fn exploit_precedes_everything() {
        let mut r = Request {
            method: "GET".into(),
            stem: "/autodiscover/autodiscover.json".into(),
            query: "@evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3f@evil.com".into(),
            status: 401,
            server_port: 444,
            peer_ip: Some("198.51.100.4".parse().unwrap()),
            user_agent: "AMProbe".into(),
            ..Request::default()
        };
        Interpreter::builtin().interpret(&mut r);
        assert_eq!((r.traffic, r.attack.map(|a| a.rule)), (Traffic::Attack, Some("proxyshell")));
        assert_eq!(r.protocol, Protocol::Autodiscover);
    }

    #[test]
    fn forwarded_for() {
        let it = Interpreter::builtin();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(it.client_ip(ip("10.0.0.5"), "203.0.113.7, 10.1.1.1"), ip("203.0.113.7"));
        assert_eq!(it.client_ip(ip("10.0.0.5"), "198.51.100.1, 203.0.113.7, 10.1.1.1"), ip("203.0.113.7"));
        assert_eq!(it.client_ip(ip("198.51.100.9"), "203.0.113.7"), ip("198.51.100.9"));
        // The gateway fills X-Forwarded-For only from a proxy it trusts: a
        // public one (a cloud balancer) is believed too, or every client
        // behind it would be judged by the balancer's address.
        let mut r = Request {
            method: "GET".into(),
            stem: "/owa/".into(),
            peer_ip: ip("198.51.100.9"),
            forwarded_for: "40.97.94.103".into(),
            source: crate::Source::Gateway,
            ..Request::default()
        };
        it.interpret(&mut r);
        assert_eq!(
            (r.client_ip, r.network),
            (ip("40.97.94.103"), it.networks().lookup("40.97.94.103".parse().unwrap()))
        );
        assert_ne!(r.network, NetworkId::EXTERNAL, "an Exchange Online address");
        r.source = crate::Source::Iis;
        it.interpret(&mut r);
        assert_eq!(r.client_ip, ip("198.51.100.9"), "a log's public c-ip is the client");
        assert_eq!(it.client_ip(ip("10.0.0.5"), "10.1.1.1, 127.0.0.1"), ip("10.0.0.5"));
        assert_eq!(it.client_ip(ip("10.0.0.5"), "garbage"), ip("10.0.0.5"));
        assert_eq!(it.client_ip(ip("10.0.0.5"), ""), ip("10.0.0.5"));
        assert_eq!(it.client_ip(ip("::1"), "[2001:db8::7]:443"), ip("2001:db8::7"));
        assert_eq!(it.client_ip(ip("::1"), "203.0.113.7:5555"), ip("203.0.113.7"));
        assert_eq!(it.client_ip(None, "203.0.113.7"), None);

        let r = live("/owa/", "", 443, "10.0.0.5", "x", "");
        assert_eq!(r.network, NetworkId::INTERNAL);
        let mut r = Request {
            stem: "/Microsoft-Server-ActiveSync".into(),
            query: "Cmd=Sync&User=jdoe&DeviceId=ABC&DeviceType=Outlook".into(),
            peer_ip: Some("10.0.0.5".parse().unwrap()),
            forwarded_for: "52.96.1.1, 10.1.1.1".into(),
            ..Request::default()
        };
        it.interpret(&mut r);
        assert_eq!(r.client_ip, ip("52.96.1.1"));
        assert_eq!(r.network, NetworkId::MICROSOFT365);
        assert_eq!(it.networks().name(r.network), "microsoft365");
        assert_eq!(it.catalog().get(r.client).id, "outlook-mobile");
        assert_eq!(r.user, "jdoe");
        let r = live("/owa/", "", 443, "52.96.1.1", "x", "");
        assert_eq!(r.network, NetworkId::MICROSOFT365);
    }

    #[test]
    fn read_record_fields() {
        let log = b"#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) sc-status sc-substatus X-Forwarded-For\r\n\
2024-05-01 10:00:00 10.0.0.2 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync&User=CONTOSO%5Cjdoe&DeviceId=ABC&DeviceType=Outlook&Log=V161_As:AllowedG 443 CONTOSO\\JDoe fe80::1%3 Outlook-iOS-Android/1.0 200 0 52.96.1.1,+10.1.1.1\r\n\
2024-05-01 10:00:01 10.0.0.2 GET /owa/ a+b=c 443 - 198.51.100.7 Mozilla/5.0+(iPhone;+CPU+iPhone+OS+17_5+like+Mac+OS+X) 302 0 -\r\n";
        let (reqs, stats) = scan(log);
        assert_eq!(stats.malformed_total(), 0);
        assert_eq!(reqs.len(), 2);
        let it = Interpreter::builtin();
        let r = &reqs[0];
        assert_eq!(r.time, 1_714_557_600);
        assert_eq!(r.server_ip, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(r.peer_ip, Some("fe80::1".parse().unwrap()));
        assert_eq!(r.forwarded_for, "52.96.1.1, 10.1.1.1");
        assert_eq!(r.client_ip, Some("52.96.1.1".parse().unwrap()));
        assert_eq!(r.network, NetworkId::MICROSOFT365);
        assert_eq!(r.user, "jdoe");
        assert_eq!(r.activesync.user, "CONTOSO\\jdoe");
        assert_eq!(r.activesync.log.access_state, "AllowedG");
        assert_eq!(it.catalog().get(r.client).id, "outlook-mobile");
        assert_eq!(r.traffic, Traffic::Person);
        let r = &reqs[1];
        assert_eq!(r.query, "a+b=c");
        assert_eq!(r.user_agent, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)");
        assert_eq!((r.status, r.username.as_str(), r.forwarded_for.as_str()), (302, "", ""));
        assert_eq!(it.catalog().get(r.client).id, "mobile-browser");
        assert_eq!(r.protocol, Protocol::Owa);
        assert_eq!(r.activesync, crate::ActiveSync::default());
    }

    #[test]
    fn method_stem_and_query_read_as_text_whatever_the_rest_of_the_line_holds() {
        // Invalid UTF-8 in the user agent, before the stem (a field order
        // IIS allows), in the query, and none at all.
        let log = b"#Fields: date time cs-method cs(User-Agent) cs-uri-stem cs-uri-query\n\
2026-11-02 10:00:00 GET Bad\xff/1 /owa/caf\xc3\xa9 a=\xc3\xa9&b=c\n\
2026-11-02 10:00:01 GET Ok/1 /owa/ a=\xc3(&b=\xff\n\
2026-11-02 10:00:02 GET Ok/1 /owa/x a=1\n\
#Fields: date time cs-uri-query cs-method cs(User-Agent) cs-uri-stem\n\
2026-11-02 10:00:03 q=\xc3\xa9 POST Bad\xff /ews/\n";
        let (reqs, _) = scan(log);
        let read: Vec<_> = reqs.iter().map(|r| (r.method.as_str(), r.stem.as_str(), r.query.as_str())).collect();
        assert_eq!(
            read,
            [
                ("GET", "/owa/caf\u{e9}", "a=\u{e9}&b=c"),
                ("GET", "/owa/", "a=\u{fffd}(&b=\u{fffd}"),
                ("GET", "/owa/x", "a=1"),
                ("POST", "/ews/", "q=\u{e9}"),
            ]
        );
    }

    #[test]
    fn interpret_reuses_capacity() {
        let it = Interpreter::builtin();
        let mut r = Request::default();
        let fill = |r: &mut Request| {
            r.clear();
            r.method.push_str("POST");
            r.stem.push_str("/Microsoft-Server-ActiveSync/default.eas");
            r.query
                .push_str("Cmd=Sync&User=CONTOSO%5Cjdoe&DeviceId=ABC&DeviceType=iPhone&Log=V161_HH:mail.contoso.com");
            r.user_agent.push_str("Apple-iPhone15C3/2104.100");
            r.username.push_str("CONTOSO\\jdoe");
            r.peer_ip = Some("10.0.0.1".parse().unwrap());
        };
        fill(&mut r);
        it.interpret(&mut r);
        let ptrs = (r.user.as_ptr(), r.activesync.user.as_ptr(), r.activesync.log.host.as_ptr());
        for _ in 0..3 {
            fill(&mut r);
            it.interpret(&mut r);
        }
        assert_eq!(ptrs, (r.user.as_ptr(), r.activesync.user.as_ptr(), r.activesync.log.host.as_ptr()));
        assert_eq!(it.catalog().get(r.client).id, "ios-mail");
    }

    #[test]
    fn interpret_random_fields_never_panics() {
        let it = Interpreter::builtin();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pieces = [
            "/",
            "?",
            "@",
            "%",
            "%3f",
            "%4",
            "_",
            "_Probe",
            "$",
            "\\",
            ",",
            ":",
            "=",
            "&",
            "Cmd=",
            "Log=",
            "PrxFrom:",
            "/Microsoft-Server-ActiveSync",
            "/owa/",
            "/ecp/",
            "/powershell",
            "autodiscover.json",
            "ü",
            "\u{FFFD}",
            " ",
            "+",
            "jAAJBAp2",
            "HealthMailbox",
            "10.0.0.1",
            "::1",
            "[",
            "]",
        ];
        let mut req = Request::default();
        for _ in 0..20_000 {
            req.clear();
            let fields = [
                &mut req.stem,
                &mut req.query,
                &mut req.user_agent,
                &mut req.username,
                &mut req.forwarded_for,
                &mut req.method,
            ];
            for f in fields {
                for _ in 0..next() % 8 {
                    f.push_str(pieces[(next() % pieces.len() as u64) as usize]);
                }
            }
            req.peer_ip = if next() % 2 == 0 { Some("10.0.0.5".parse().unwrap()) } else { None };
            req.status = (next() % 600) as u16;
            req.server_port = [443, 444, 81][(next() % 3) as usize];
            it.interpret(&mut req);
            assert!(req.client.index() < it.catalog().len());
        }
    }
}
