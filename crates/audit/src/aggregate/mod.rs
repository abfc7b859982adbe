//! Per-user and per-device aggregation of requests.
//!
//! Memory grows with the number of distinct users and devices, never with the
//! number of lines: every list inside is capped (see [`crate::capped`]).
//! Aggregates from different threads merge with sums, minima, maxima and
//! capped sets, so the result is the same whatever the thread count. Each
//! user's and device's own aggregate is in `users`.

mod users;

use std::collections::HashMap;
use std::net::IpAddr;

use exchange::{AttackKind, AuthType, LogWanted, Protocol, Request, Traffic};

use crate::attacks::AttackAgg;
use crate::capped::CappedCounts;
use crate::findings::FindingCounts;
use crate::signins::SignIns;
use crate::twins::TwinFacts;

pub(crate) use users::later_access;
pub use users::{DeviceAgg, UserAgg};

/// The maps keyed by users, devices and user agents: aHash is several times
/// faster than SipHash on short keys and is still seeded at random.
pub type Map<K, V> = HashMap<K, V, ahash::RandomState>;

const PROTOCOLS: usize = Protocol::ALL.len();
const MAX_STATUSES: usize = 256;
/// Hour x client buckets of the request timeline: a year of hours for a dozen clients.
const MAX_TIMELINE: usize = 24 * 366 * 12;

/// First and last time something was seen; `i64::MAX`/`i64::MIN` when never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub first: i64,
    pub last: i64,
}

impl Default for Span {
    fn default() -> Self {
        Span { first: i64::MAX, last: i64::MIN }
    }
}

impl Span {
    pub(crate) fn see(&mut self, t: i64) {
        self.first = self.first.min(t);
        self.last = self.last.max(t);
    }

    pub(crate) fn merge(&mut self, other: Span) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }

    pub fn is_empty(&self) -> bool {
        self.first > self.last
    }
}

/// Add `theirs` into `mine`, merging the values of keys in both.
fn merge_map<K: Eq + std::hash::Hash, V>(mine: &mut Map<K, V>, theirs: Map<K, V>, merge: fn(&mut V, V)) {
    for (key, value) in theirs {
        match mine.get_mut(&key) {
            Some(v) => merge(v, value),
            None => {
                mine.insert(key, value);
            }
        }
    }
}

/// Hours since Monday 00:00 UTC: 0..168.
pub fn hour_of_week(time: i64) -> usize {
    let days = time.div_euclid(86_400);
    // 1970-01-01 was a Thursday: day index 3 counting from Monday.
    let weekday = (days + 3).rem_euclid(7);
    let hour = time.rem_euclid(86_400) / 3600;
    (weekday * 24 + hour) as usize
}

/// Requests of one kind of traffic: protocol, client and user counts.
#[derive(Clone, Debug)]
pub struct Tally {
    pub requests: u64,
    pub anonymous: u64,
    pub span: Span,
    pub protocols: [u64; PROTOCOLS],
    /// Indexed by `AuthType::index`.
    pub auth: [u64; AuthType::COUNT],
    /// Indexed by `ClientId`; grows as needed.
    pub clients: Vec<u64>,
    pub users: Map<Box<str>, UserAgg>,
    /// ActiveSync front-end statistics for the Export-ActiveSyncLog file set.
    pub activesync: ActiveSyncStats,
    /// Requests per (hour since the epoch, client id), for charts over time;
    /// read it with [`Tally::timeline`]. Capped: the earliest hours are kept,
    /// so the result does not depend on merge order.
    timeline: CappedCounts<(i64, u16)>,
    /// Per client id, the hour being counted and its count, not yet in
    /// `timeline`: lines come in time order, so this saves a tree search a line.
    timeline_run: Vec<(i64, u64)>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            requests: 0,
            anonymous: 0,
            span: Span::default(),
            protocols: [0; PROTOCOLS],
            auth: [0; AuthType::COUNT],
            clients: Vec::new(),
            users: Map::default(),
            activesync: ActiveSyncStats::default(),
            timeline: CappedCounts::new(MAX_TIMELINE),
            timeline_run: Vec::new(),
        }
    }
}

/// What Export-ActiveSyncLog reports beyond users and devices.
#[derive(Clone, Debug)]
pub struct ActiveSyncStats {
    /// (status, substatus) -> hits.
    pub statuses: CappedCounts<(u16, u16)>,
    /// Sync-related requests per hour of the week.
    pub sync_requests: [u64; 168],
}

impl Default for ActiveSyncStats {
    fn default() -> Self {
        ActiveSyncStats { statuses: CappedCounts::new(MAX_STATUSES), sync_requests: [0; 168] }
    }
}

/// Commands Export-ActiveSyncLog counts as sync related.
fn is_sync_related(command: &str) -> bool {
    ["Sync", "Ping", "FolderSync", "GetItemEstimate", "ItemOperations"].iter().any(|c| c.eq_ignore_ascii_case(command))
}

impl Tally {
    pub fn add(&mut self, req: &Request, catalog: &exchange::Catalog) {
        self.requests += 1;
        self.span.see(req.time);
        self.protocols[req.protocol.index()] += 1;
        self.auth[req.auth.index()] += 1;
        let client = req.client.index();
        if self.clients.len() <= client {
            self.clients.resize(client + 1, 0);
        }
        self.clients[client] += 1;
        if req.time != 0 {
            let hour = req.time.div_euclid(3600);
            if self.timeline_run.len() <= client {
                self.timeline_run.resize(client + 1, (0, 0));
            }
            let run = &mut self.timeline_run[client];
            if run.0 != hour || run.1 == 0 {
                add_run(&mut self.timeline, *run, req.client.0);
                *run = (hour, 0);
            }
            run.1 += 1;
        }
        if req.protocol == Protocol::ActiveSync {
            let status = (req.status, req.substatus);
            self.activesync.statuses.add_with(&status, 1, || status);
            if req.time != 0 && is_sync_related(&req.activesync.command) {
                self.activesync.sync_requests[hour_of_week(req.time)] += 1;
            }
        }
        if req.user.is_empty() {
            self.anonymous += 1;
            return;
        }
        let findings = FindingCounts::of(req, catalog);
        let user = match self.users.get_mut(req.user.as_str()) {
            Some(user) => user,
            None => self.users.entry(req.user.as_str().into()).or_insert_with(UserAgg::new),
        };
        user.add(req, findings);
    }

    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.anonymous += other.anonymous;
        self.span.merge(other.span);
        for (mine, theirs) in self.protocols.iter_mut().zip(other.protocols) {
            *mine += theirs;
        }
        for (mine, theirs) in self.auth.iter_mut().zip(other.auth) {
            *mine += theirs;
        }
        if self.clients.len() < other.clients.len() {
            self.clients.resize(other.clients.len(), 0);
        }
        for (mine, theirs) in self.clients.iter_mut().zip(other.clients) {
            *mine += theirs;
        }
        merge_map(&mut self.users, other.users, UserAgg::merge);
        self.activesync.statuses.merge(other.activesync.statuses);
        for (mine, theirs) in self.activesync.sync_requests.iter_mut().zip(other.activesync.sync_requests) {
            *mine += theirs;
        }
        self.timeline.merge(other.timeline);
        for (client, run) in other.timeline_run.into_iter().enumerate() {
            add_run(&mut self.timeline, run, client as u16);
        }
    }

    /// Requests per (hour since the epoch, client id), for charts over time.
    pub fn timeline(&self) -> CappedCounts<(i64, u16)> {
        let mut timeline = self.timeline.clone();
        for (client, &run) in self.timeline_run.iter().enumerate() {
            add_run(&mut timeline, run, client as u16);
        }
        timeline
    }

    /// Users sorted by key, for stable output.
    pub fn sorted_users(&self) -> Vec<(&str, &UserAgg)> {
        let mut users: Vec<_> = self.users.iter().map(|(k, u)| (&**k, u)).collect();
        users.sort_by(|a, b| a.0.cmp(b.0));
        users
    }
}

/// Add an `(hour, count)` run of one client to a timeline. A capped count
/// keeps the same keys and counts whatever order they are added in.
fn add_run(timeline: &mut CappedCounts<(i64, u16)>, (hour, n): (i64, u64), client: u16) {
    if n > 0 {
        let bucket = (hour, client);
        timeline.add_with(&bucket, n, || bucket);
    }
}

/// When each device of a user was first seen: user -> device key -> time.
/// Nested so that borrowed keys look up without allocating.
pub type FirstSeen = Map<Box<str>, Map<Box<str>, i64>>;

/// Note `req`'s device (see [`Request::device_key`]) in `seen`; a request
/// that names no user has no device of anyone's.
fn see_device(seen: &mut FirstSeen, req: &Request) {
    if req.user.is_empty() {
        return;
    }
    let devices = match seen.get_mut(req.user.as_str()) {
        Some(devices) => devices,
        None => seen.entry(req.user.as_str().into()).or_default(),
    };
    let key = req.device_key();
    match devices.get_mut(key) {
        Some(first) => *first = (*first).min(req.time),
        None => {
            devices.insert(key.into(), req.time);
        }
    }
}

fn merge_first_seen(mine: &mut FirstSeen, theirs: FirstSeen) {
    merge_map(mine, theirs, |mine, theirs| merge_map(mine, theirs, |first, other| *first = (*first).min(other)));
}

/// Everything learned from the logs.
#[derive(Clone, Debug, Default)]
pub struct Aggregate {
    /// Person traffic from front-end lines.
    pub people: Tally,
    /// Back-end hops: duplicates when front-end lines exist, else the people.
    /// Their `Log=` facts go to the people's devices either way ([`Aggregate::settle`]).
    /// Once this aggregate has seen a front-end person request, hops are only
    /// counted in `backend.requests`: their detail would never be reported.
    pub backend: Tally,
    /// Back-end hops of computer accounts (`EX04$`) that are not in
    /// `backend`: on back-end logs alone they are machine traffic, not people.
    pub backend_machine: u64,
    pub probes: u64,
    pub probe_span: Span,
    /// Probe user agents with their counts.
    pub probe_agents: Map<Box<str>, u64>,
    pub machine: u64,
    /// Devices of probes and computer accounts: user -> device key -> first
    /// seen. Not people's, but they exist as people's do, so an inventory
    /// knows them ([`crate::simulate::inventory_before`]).
    pub other_devices: FirstSeen,
    /// The same for back-end hops of computer accounts (those in
    /// `backend_machine`): theirs only when the back end stands for people.
    pub backend_machine_devices: FirstSeen,
    /// Requests of detection rules, by rule and source address.
    pub attacks: Map<(&'static str, Option<IpAddr>), AttackAgg>,
    /// Failed sign-ins, whoever made them (probes aside).
    pub signins: SignIns,
    /// IIS front-end lines of requests the HttpProxy logs hold too.
    pub duplicates: u64,
    /// What those lines alone logged, until [`Aggregate::settle`].
    pub(crate) twins: TwinFacts,
}

impl Aggregate {
    /// The `Log=` tokens the aggregate reads (a device's model and OS, and
    /// its access state: see `DeviceAgg::add`); a reader may leave the
    /// others out (see [`exchange::RequestSink::log_tokens`]).
    pub const LOG_TOKENS: LogWanted = LogWanted::DEVICE_OS.with(LogWanted::DEVICE_MODEL).with(LogWanted::ACCESS_STATE);

    pub fn add(&mut self, req: &Request, catalog: &exchange::Catalog) {
        if req.traffic != Traffic::Probe {
            self.signins.add(req);
        }
        match req.traffic {
            Traffic::Person => self.people.add(req, catalog),
            Traffic::Backend if self.counts_hops_only() => {
                self.backend.requests += 1;
                self.twins.add(req);
            }
            Traffic::Backend if req.is_machine_account() => {
                self.backend_machine += 1;
                see_device(&mut self.backend_machine_devices, req);
            }
            Traffic::Backend => self.backend.add(req, catalog),
            Traffic::Machine => {
                self.machine += 1;
                see_device(&mut self.other_devices, req);
            }
            Traffic::Duplicate => {
                self.duplicates += 1;
                self.twins.add(req);
            }
            Traffic::Probe => {
                self.probes += 1;
                self.probe_span.see(req.time);
                see_device(&mut self.other_devices, req);
                let ua = req.user_agent.as_str();
                if let Some(n) = self.probe_agents.get_mut(ua) {
                    *n += 1;
                } else if self.probe_agents.len() < 256 {
                    self.probe_agents.insert(ua.into(), 1);
                }
            }
            Traffic::Attack => {
                let Some(attack) = req.attack else { return };
                let key = (attack.rule, req.client_ip);
                let entry = match self.attacks.get_mut(&key) {
                    Some(entry) => entry,
                    None => self.attacks.entry(key).or_insert_with(|| AttackAgg::new(attack.kind, req.network)),
                };
                entry.add(req);
            }
        }
    }

    pub fn merge(&mut self, other: Aggregate) {
        self.people.merge(other.people);
        self.backend.merge(other.backend);
        self.probes += other.probes;
        self.probe_span.merge(other.probe_span);
        for (ua, n) in other.probe_agents {
            if let Some(mine) = self.probe_agents.get_mut(&ua) {
                *mine += n;
            } else if self.probe_agents.len() < 256 {
                self.probe_agents.insert(ua, n);
            }
        }
        self.machine += other.machine;
        merge_first_seen(&mut self.other_devices, other.other_devices);
        merge_first_seen(&mut self.backend_machine_devices, other.backend_machine_devices);
        self.duplicates += other.duplicates;
        self.backend_machine += other.backend_machine;
        for (key, attack) in other.attacks {
            match self.attacks.get_mut(&key) {
                Some(mine) => mine.merge(attack),
                None => {
                    self.attacks.insert(key, attack);
                }
            }
        }
        self.signins.merge(other.signins);
        self.twins.merge(other.twins);
    }

    /// Once every line is in: give people's devices what only another line
    /// of their requests logged (a back-end hop's `Log=`, the IIS twin of an
    /// HttpProxy line), and attacks their IIS substatus (see [`crate::twins`]).
    pub fn settle(&mut self) {
        if self.backend_only() {
            return;
        }
        let mut twins = std::mem::take(&mut self.twins);
        // Hops read before the first person was seen were added in full.
        twins.take_devices_of(&self.backend);
        twins.lay_onto(&mut self.people, &mut self.attacks);
    }

    /// True once a front-end person request has been seen: a back-end hop
    /// ([`Traffic::Backend`]) is then only counted, so neither its client nor
    /// its `Log=` tokens are read (see [`exchange::RequestSink::counts_hops_only`]).
    /// Its user, address, time and status still are (failed sign-ins).
    pub fn counts_hops_only(&self) -> bool {
        self.people.requests > 0
    }

    /// True when only back-end logs were given: their hops are then the people.
    pub fn backend_only(&self) -> bool {
        self.people.requests == 0 && self.backend_hops() > 0
    }

    /// Every back-end hop, whoever made it.
    pub fn backend_hops(&self) -> u64 {
        self.backend.requests + self.backend_machine
    }

    /// Requests of computer accounts: front-end ones, and back-end hops too
    /// when the back end stands for the people.
    pub fn machine_requests(&self) -> u64 {
        self.machine + if self.backend_only() { self.backend_machine } else { 0 }
    }

    /// The tally that stands for people: front end, or back end when alone.
    pub fn people_tally(&self) -> &Tally {
        if self.backend_only() {
            &self.backend
        } else {
            &self.people
        }
    }

    /// Requests of detection rules of `kind`.
    pub fn attack_requests(&self, kind: AttackKind) -> u64 {
        self.attacks.values().filter(|a| a.kind == kind).map(|a| a.requests).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_hops_stand_for_people_only_when_alone() {
        let catalog = exchange::Catalog::builtin();
        let request = |traffic, user: &str| Request {
            traffic,
            user: user.into(),
            user_agent: "Microsoft Office/16.0".into(),
            time: 1_795_392_000,
            ..Request::default()
        };
        let hop = |user| request(Traffic::Backend, user);
        let person = request(Traffic::Person, "alice");
        let add = |requests: &[&Request]| {
            let mut agg = Aggregate::default();
            requests.iter().for_each(|r| agg.add(r, &catalog));
            agg
        };
        let users =
            |agg: &Aggregate| agg.people_tally().sorted_users().iter().map(|(u, _)| u.to_string()).collect::<Vec<_>>();

        let alone = add(&[&hop("bob"), &hop("carol"), &hop("ex04$")]);
        assert!(alone.backend_only());
        assert_eq!(users(&alone), ["bob", "carol"]);
        assert_eq!((alone.people_tally().requests, alone.machine_requests(), alone.backend_hops()), (2, 1, 3));

        // Hops before and after people, in one aggregate or merged from several.
        // A computer account's hop is a duplicate like any other beside people.
        let mut split = add(&[&person, &hop("bob")]);
        split.merge(add(&[&hop("carol"), &hop("ex04$")]));
        for agg in [add(&[&hop("bob"), &hop("ex04$"), &person, &hop("carol")]), split] {
            assert!(!agg.backend_only());
            assert_eq!(agg.backend_hops(), 3);
            assert_eq!(agg.machine_requests(), 0);
            assert_eq!(agg.people.requests, 1);
            assert_eq!(users(&agg), ["alice"]);
        }

        // Only computer accounts on the back end: no people at all.
        let machines = add(&[&hop("ex04$")]);
        assert!(machines.backend_only());
        assert!(users(&machines).is_empty());
        assert_eq!((machines.people_tally().requests, machines.machine_requests()), (0, 1));
    }

    #[test]
    fn hour_of_week_starts_monday() {
        // 2026-11-23 is a Monday.
        let monday = 1_795_392_000; // 2026-11-23T00:00:00Z
        assert_eq!(hour_of_week(monday), 0);
        assert_eq!(hour_of_week(monday + 3600 * 25), 25);
        assert_eq!(hour_of_week(monday - 3600), 167);
    }
}
