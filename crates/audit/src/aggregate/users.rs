//! One user's aggregate and those of their devices.

use std::net::IpAddr;

use exchange::{AccessVerdict, ClientId, NetworkId, Request};

use super::{hour_of_week, merge_map, Map, Span, PROTOCOLS};
use crate::capped::CappedCounts;
use crate::findings::FindingCounts;

const MAX_ALIASES: usize = 16;
const MAX_USER_AGENTS: usize = 16;
const MAX_SOURCES: usize = 32;
const MAX_COMMANDS: usize = 64;

/// One person, keyed by the lower-cased account name.
#[derive(Clone, Debug)]
pub struct UserAgg {
    pub aliases: CappedCounts<Box<str>>,
    pub requests: u64,
    pub span: Span,
    pub protocols: [u64; PROTOCOLS],
    pub devices: Map<Box<str>, DeviceAgg>,
}

impl UserAgg {
    pub(super) fn new() -> Self {
        UserAgg {
            aliases: CappedCounts::new(MAX_ALIASES),
            requests: 0,
            span: Span::default(),
            protocols: [0; PROTOCOLS],
            devices: Map::default(),
        }
    }

    /// Count `req`, a request of this user, and its device.
    pub(super) fn add(&mut self, req: &Request, findings: FindingCounts) {
        self.requests += 1;
        self.span.see(req.time);
        self.protocols[req.protocol.index()] += 1;
        let (name, activesync_user) = (req.username.as_str(), req.activesync.user.as_str());
        if name == activesync_user {
            // The same alias twice (most ActiveSync lines): one look-up.
            if !name.is_empty() {
                self.aliases.add_with(name, 2, || name.into());
            }
        } else {
            for alias in [name, activesync_user] {
                if !alias.is_empty() {
                    self.aliases.add_with(alias, 1, || alias.into());
                }
            }
        }
        let key = req.device_key();
        let device = match self.devices.get_mut(key) {
            Some(device) => device,
            None => self.devices.entry(key.into()).or_insert_with(DeviceAgg::new),
        };
        device.add(req, findings);
    }

    pub(super) fn merge(&mut self, other: UserAgg) {
        self.aliases.merge(other.aliases);
        self.requests += other.requests;
        self.span.merge(other.span);
        for (mine, theirs) in self.protocols.iter_mut().zip(other.protocols) {
            *mine += theirs;
        }
        merge_map(&mut self.devices, other.devices, DeviceAgg::merge);
    }

    /// Devices sorted by key, for stable output.
    pub fn sorted_devices(&self) -> Vec<(&str, &DeviceAgg)> {
        let mut devices: Vec<_> = self.devices.iter().map(|(k, d)| (&**k, d)).collect();
        devices.sort_by(|a, b| a.0.cmp(b.0));
        devices
    }
}

/// One device of one user: an ActiveSync device id, or a user agent.
#[derive(Clone, Debug)]
pub struct DeviceAgg {
    pub device_type: String,
    /// Client of the earliest request (ties: the lowest client id).
    pub client: ClientId,
    client_time: i64,
    pub requests: u64,
    pub span: Span,
    pub protocols: [u64; PROTOCOLS],
    pub user_agents: CappedCounts<Box<str>>,
    pub commands: CappedCounts<Box<str>>,
    pub sources: CappedCounts<(IpAddr, NetworkId)>,
    pub findings: FindingCounts,
    /// Model and OS from the ActiveSync Log token, when Exchange logged them.
    pub model: String,
    pub os: String,
    /// Keyed by an ActiveSync DeviceId (not by a user agent).
    pub keyed_by_id: bool,
    /// ActiveSync's own verdict (the `As` Log token) at the latest time it
    /// was logged; ties go to the greater verdict, so merges agree.
    pub access: Option<(i64, AccessVerdict)>,
    /// Day-of-week x hour buckets (168 bits) in which the device was seen.
    pub hours_seen: [u64; 3],
}

impl DeviceAgg {
    fn new() -> Self {
        DeviceAgg {
            device_type: String::new(),
            client: ClientId::default(),
            client_time: i64::MAX,
            requests: 0,
            span: Span::default(),
            protocols: [0; PROTOCOLS],
            user_agents: CappedCounts::new(MAX_USER_AGENTS),
            commands: CappedCounts::new(MAX_COMMANDS),
            sources: CappedCounts::new(MAX_SOURCES),
            findings: FindingCounts::default(),
            model: String::new(),
            os: String::new(),
            keyed_by_id: false,
            access: None,
            hours_seen: [0; 3],
        }
    }

    /// Add `other`, a device of the same phone without a device id, into
    /// this one: its requests take this device's client (see
    /// [`FindingCounts::as_client`]).
    pub(crate) fn absorb(&mut self, mut other: DeviceAgg, client: &exchange::Client) {
        other.findings = other.findings.as_client(other.requests, client);
        let (keep, time) = (self.client, self.client_time);
        let keyed = self.keyed_by_id;
        self.merge(other);
        (self.client, self.client_time, self.keyed_by_id) = (keep, time, keyed);
    }

    fn add(&mut self, req: &Request, findings: FindingCounts) {
        self.requests += 1;
        self.span.see(req.time);
        self.protocols[req.protocol.index()] += 1;
        if (req.time, req.client) < (self.client_time, self.client) {
            self.client_time = req.time;
            self.client = req.client;
        }
        if self.device_type.is_empty() && !req.activesync.device_type.is_empty() {
            self.device_type.push_str(&req.activesync.device_type);
        }
        if !req.user_agent.is_empty() {
            let ua = req.user_agent.as_str();
            self.user_agents.add_with(ua, 1, || ua.into());
        }
        let command = req.activesync.command.as_str();
        if !command.is_empty() {
            self.commands.add_with(command, 1, || command.into());
        }
        if let Some(ip) = req.client_ip {
            let key = (ip, req.network);
            self.sources.add_with(&key, 1, || key);
        }
        let log = &req.activesync.log;
        if self.model.is_empty() && !log.device_model.is_empty() {
            self.model.push_str(&log.device_model);
        }
        if self.os.is_empty() && !log.device_os.is_empty() {
            self.os.push_str(&log.device_os);
        }
        if !req.activesync.device_id.is_empty() {
            self.keyed_by_id = true;
        }
        if !log.access_state.is_empty() {
            later_access(&mut self.access, exchange::parse_access_state(&log.access_state).map(|v| (req.time, v)));
        }
        if req.time != 0 {
            let bucket = hour_of_week(req.time);
            self.hours_seen[bucket / 64] |= 1 << (bucket % 64);
        }
        self.findings.merge(findings);
    }

    fn merge(&mut self, other: DeviceAgg) {
        if self.device_type.is_empty() {
            self.device_type = other.device_type;
        }
        if (other.client_time, other.client) < (self.client_time, self.client) {
            self.client_time = other.client_time;
            self.client = other.client;
        }
        self.requests += other.requests;
        self.span.merge(other.span);
        for (mine, theirs) in self.protocols.iter_mut().zip(other.protocols) {
            *mine += theirs;
        }
        self.user_agents.merge(other.user_agents);
        self.commands.merge(other.commands);
        self.sources.merge(other.sources);
        self.findings.merge(other.findings);
        if self.model.is_empty() {
            self.model = other.model;
        }
        if self.os.is_empty() {
            self.os = other.os;
        }
        self.keyed_by_id |= other.keyed_by_id;
        later_access(&mut self.access, other.access);
        for (mine, theirs) in self.hours_seen.iter_mut().zip(other.hours_seen) {
            *mine |= theirs;
        }
    }
}

/// Keep the access verdict logged latest; ties go to the greater verdict,
/// so merges agree whatever their order.
pub(crate) fn later_access(access: &mut Option<(i64, AccessVerdict)>, seen: Option<(i64, AccessVerdict)>) {
    let key = |a: &(i64, AccessVerdict)| (a.0, a.1.state, a.1.reason);
    if let Some(new) = seen {
        if access.as_ref().is_none_or(|old| key(&new) > key(old)) {
            *access = Some(new);
        }
    }
}
