//! `simulate`: replay requests through a policy with the same
//! [`policy::evaluate`] the gateway calls, and report whom each rule cuts
//! off, which other doors stay open, and what a Provision rule does to
//! devices that already existed. With a policy in force beside it
//! ([`Comparison`]), only what the proposed policy changes.

mod change;
mod report;

use exchange::{Protocol, Request, Traffic};
use policy::{evaluate, Action, Decision, ReadyPolicy};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::aggregate::Span;
use crate::scan::{Accumulate, Accumulator};

pub use change::{
    render_change_table, BackdoorChange, Bucket, ChangeReport, ChangeRule, ChangeSummary, ChangeTally, Comparison,
    OtherChange, UserChange, UserCounts,
};
pub use report::{
    render_table, Backdoor, DeviceRef, Grandfathering, Impact, MachineImpact, MachineRule, ProbeImpact, ProbeRule,
    RuleReport, SimReport, SimSummary,
};

const PROTOCOLS: usize = Protocol::ALL.len();

/// What one rule (or the default, at index `rules.len()`) did.
#[derive(Clone, Debug, Default)]
pub struct RuleTally {
    pub matched: u64,
    pub span: Span,
    /// User -> device key -> denied requests; anonymous requests under user "".
    pub devices: DeviceCounts,
    /// Denied Provision requests, the same way.
    pub provisions: DeviceCounts,
}

impl RuleTally {
    fn merge(&mut self, other: RuleTally) {
        self.matched += other.matched;
        self.span = Span { first: self.span.first.min(other.span.first), last: self.span.last.max(other.span.last) };
        merge_counts(&mut self.devices, other.devices);
        merge_counts(&mut self.provisions, other.provisions);
    }
}

/// Per user: where they were denied and where they still got through.
#[derive(Clone, Debug, Default)]
pub struct UserDoors {
    /// Every request of the user, per protocol, whatever its decision.
    pub requests: [u64; PROTOCOLS],
    pub denied: [u64; PROTOCOLS],
    /// Allowed requests that succeeded (status below 400), per protocol.
    pub reached: [u64; PROTOCOLS],
    /// Allowed successful requests per (protocol, client, network).
    pub reached_clients: BTreeMap<(usize, u16, u16), u64>,
    /// Denied requests per (protocol, client, rule slot).
    pub denied_clients: BTreeMap<(usize, u16, usize), u64>,
}

impl UserDoors {
    fn merge(&mut self, other: UserDoors) {
        for p in 0..PROTOCOLS {
            self.requests[p] += other.requests[p];
            self.denied[p] += other.denied[p];
            self.reached[p] += other.reached[p];
        }
        for (key, n) in other.reached_clients {
            *self.reached_clients.entry(key).or_default() += n;
        }
        for (key, n) in other.denied_clients {
            *self.denied_clients.entry(key).or_default() += n;
        }
    }
}

/// Decisions for one kind of traffic.
#[derive(Clone, Debug, Default)]
pub struct SimTally {
    pub requests: u64,
    pub denied: u64,
    pub rules: Vec<RuleTally>,
    pub users: HashMap<Box<str>, UserDoors>,
}

impl SimTally {
    fn add(&mut self, req: &Request, decision: &Decision, slot: usize, slots: usize) {
        if self.rules.len() < slots {
            self.rules.resize_with(slots, RuleTally::default);
        }
        self.requests += 1;
        let denied = decision.action == Action::Deny;
        let tally = &mut self.rules[slot];
        tally.matched += 1;
        if denied {
            self.denied += 1;
            tally.span.first = tally.span.first.min(req.time);
            tally.span.last = tally.span.last.max(req.time);
            let key = (req.user.as_str(), req.device_key());
            bump(&mut tally.devices, key);
            if req.activesync.command.eq_ignore_ascii_case("Provision") {
                bump(&mut tally.provisions, key);
            }
        }
        if req.user.is_empty() {
            return;
        }
        let doors = match self.users.get_mut(req.user.as_str()) {
            Some(doors) => doors,
            None => self.users.entry(req.user.as_str().into()).or_default(),
        };
        let p = req.protocol.index();
        doors.requests[p] += 1;
        if denied {
            doors.denied[p] += 1;
            *doors.denied_clients.entry((p, req.client.0, slot)).or_default() += 1;
        } else if req.status < 400 {
            doors.reached[p] += 1;
            *doors.reached_clients.entry((p, req.client.0, req.network.0)).or_default() += 1;
        }
    }

    fn merge(&mut self, other: SimTally) {
        self.requests += other.requests;
        self.denied += other.denied;
        if self.rules.len() < other.rules.len() {
            self.rules.resize_with(other.rules.len(), RuleTally::default);
        }
        for (mine, theirs) in self.rules.iter_mut().zip(other.rules) {
            mine.merge(theirs);
        }
        for (user, doors) in other.users {
            self.users.entry(user).or_default().merge(doors);
        }
    }
}

/// Counts per user and device; nested so that borrowed keys look up without allocating.
pub type DeviceCounts = HashMap<Box<str>, HashMap<Box<str>, u64>>;

fn bump(map: &mut DeviceCounts, (user, device): (&str, &str)) {
    let devices = match map.get_mut(user) {
        Some(devices) => devices,
        None => map.entry(user.into()).or_default(),
    };
    match devices.get_mut(device) {
        Some(n) => *n += 1,
        None => {
            devices.insert(device.into(), 1);
        }
    }
}

fn merge_counts(mine: &mut DeviceCounts, theirs: DeviceCounts) {
    for (user, devices) in theirs {
        let entry = mine.entry(user).or_default();
        for (device, n) in devices {
            *entry.entry(device).or_default() += n;
        }
    }
}

/// The name of a rule slot: a rule's, or `default` past the last rule.
pub(crate) fn slot_name(policy: &ReadyPolicy, slot: usize) -> String {
    policy.slot_name(slot).to_string()
}

fn device_pairs(counts: &DeviceCounts) -> impl Iterator<Item = (&str, &str, u64)> {
    counts.iter().flat_map(|(u, devices)| devices.iter().map(move |(d, n)| (&**u, &**d, *n)))
}

/// Requests that are not people's (probes, computer accounts): how many, and
/// which rule would deny how many of them, with a few examples of each.
#[derive(Clone, Debug, Default)]
pub struct Denials {
    pub requests: u64,
    /// Rule slot -> (denied requests, up to `MAX_EXAMPLES` examples).
    pub denied: BTreeMap<usize, (u64, BTreeSet<String>)>,
}

/// User agents or accounts kept per rule in [`Denials`].
const MAX_EXAMPLES: usize = 16;

impl Denials {
    fn add(&mut self, req: &Request, policy: &ReadyPolicy, example: &str) {
        self.requests += 1;
        let decision = evaluate(policy, req);
        if decision.action == Action::Deny {
            let entry = self.denied.entry(policy.slot(&decision)).or_default();
            entry.0 += 1;
            if entry.1.len() < MAX_EXAMPLES && !entry.1.contains(example) {
                entry.1.insert(example.to_string());
            }
        }
    }

    fn merge(&mut self, other: Denials) {
        self.requests += other.requests;
        for (slot, (n, examples)) in other.denied {
            let entry = self.denied.entry(slot).or_default();
            entry.0 += n;
            for example in examples {
                if entry.1.len() < MAX_EXAMPLES {
                    entry.1.insert(example);
                }
            }
        }
    }

    /// Denied requests in all, and per rule: its name, its count, its examples.
    fn by_rule(&self, policy: &ReadyPolicy) -> (u64, Vec<(String, u64, Vec<String>)>) {
        let rules: Vec<_> = self
            .denied
            .iter()
            .map(|(slot, (n, examples))| (slot_name(policy, *slot), *n, examples.iter().cloned().collect()))
            .collect();
        (rules.iter().map(|r| r.1).sum(), rules)
    }
}

/// Everything a simulation learns.
#[derive(Clone, Debug, Default)]
pub struct Simulation {
    pub people: SimTally,
    /// Back-end hops; only counted once a front-end person request was seen.
    pub backend: SimTally,
    /// Monitoring probes, with their user agents.
    pub probes: Denials,
    /// Computer accounts (`EX04$`), with their names: server-to-server
    /// traffic that a gateway in front of the servers would also judge.
    pub machines: Denials,
    /// Back-end hops of computer accounts, not in `backend`: the machine
    /// traffic when the back end stands for the front end.
    pub backend_machines: Denials,
    /// People's requests without an authentication type (IIS lines).
    unknown_auth: u64,
    /// The same among back-end hops evaluated as `backend`: which hops a
    /// thread evaluates depends on the order it reads its files in, so
    /// they count only when no people were found at all.
    backend_unknown_auth: u64,
}

impl Simulation {
    pub fn add(&mut self, req: &Request, policy: &ReadyPolicy) {
        self.decide(req, policy);
    }

    /// [`Simulation::add`], returning the decision when the request counts
    /// as a person's (or a back-end hop standing for one): what
    /// [`Comparison`] sets beside the other policy's.
    pub fn decide(&mut self, req: &Request, policy: &ReadyPolicy) -> Option<Decision> {
        match req.traffic {
            // Hops beside front-end people are only counted (see `Aggregate::backend`).
            Traffic::Backend if self.people.requests > 0 => self.backend.requests += 1,
            // Machine traffic, as on the front end (see `Aggregate::backend_machine`).
            Traffic::Backend if req.is_machine_account() => self.backend_machines.add(req, policy, &req.user),
            Traffic::Person | Traffic::Backend => {
                if req.auth == exchange::AuthType::Unknown {
                    match req.traffic {
                        Traffic::Person => self.unknown_auth += 1,
                        _ => self.backend_unknown_auth += 1,
                    }
                }
                let decision = evaluate(policy, req);
                let tally = if req.traffic == Traffic::Person { &mut self.people } else { &mut self.backend };
                tally.add(req, &decision, policy.slot(&decision), policy.slots());
                return Some(decision);
            }
            Traffic::Probe => self.probes.add(req, policy, &req.user_agent),
            Traffic::Machine => self.machines.add(req, policy, &req.user),
            // Duplicates are counted from their HttpProxy line.
            Traffic::Attack | Traffic::Duplicate => {}
        }
        None
    }

    pub fn merge(&mut self, other: Simulation) {
        self.people.merge(other.people);
        self.backend.merge(other.backend);
        self.probes.merge(other.probes);
        self.machines.merge(other.machines);
        self.backend_machines.merge(other.backend_machines);
        self.unknown_auth += other.unknown_auth;
        self.backend_unknown_auth += other.backend_unknown_auth;
    }

    /// Requests without an authentication type among those the report
    /// counts as people's: the back-end hops only when they stand alone.
    pub fn unknown_auth(&self) -> u64 {
        self.unknown_auth + if self.backend_only() { self.backend_unknown_auth } else { 0 }
    }

    pub(crate) fn backend_only(&self) -> bool {
        self.people.requests == 0 && self.backend.requests + self.backend_machines.requests > 0
    }
}

/// The simulation's sink: every request evaluated and tallied.
pub type SimCollector<'a> = Accumulator<'a, ReadyPolicy, Simulation>;

impl Accumulate<ReadyPolicy> for Simulation {
    #[inline]
    fn add(&mut self, request: &Request, policy: &ReadyPolicy) {
        Simulation::add(self, request, policy);
    }
}

/// Two policies in one pass: the one in force and the proposed one.
#[derive(Clone, Copy, Debug)]
pub struct PolicyPair<'a> {
    pub baseline: &'a ReadyPolicy,
    pub target: &'a ReadyPolicy,
}

/// The sink of `simulate --baseline`: every request decided under both
/// policies as it is read, the logs read once.
pub type ComparisonCollector<'a> = Accumulator<'a, PolicyPair<'a>, Comparison>;

impl<'a> Accumulate<PolicyPair<'a>> for Comparison {
    #[inline]
    fn add(&mut self, request: &Request, pair: &PolicyPair<'a>) {
        Comparison::add(self, request, pair.baseline, pair.target);
    }
}

/// The devices people used before `cutover` (Unix seconds): what
/// `casguard inventory build --until` writes and `--known-before` uses.
pub fn inventory_before(agg: &crate::Aggregate, cutover: i64) -> policy::Inventory {
    let mut inventory = policy::Inventory::new(w3c::time::format_rfc3339(cutover));
    for (user, agg) in agg.people_tally().sorted_users() {
        for (device, d) in agg.sorted_devices() {
            if !d.span.is_empty() && d.span.first < cutover {
                inventory.insert(user, device, &w3c::time::format_rfc3339(d.span.first));
            }
        }
    }
    inventory
}

/// Add to `inventory` the model and OS of every device the logs' `Log=`
/// gave them for (a back-end hop's, in Exchange 2013+): Exchange judges a
/// device access rule on them for all the device's requests, while most
/// lines carry neither. What `inventory` already holds (an export's) wins.
pub fn learn_device_facts(agg: &crate::Aggregate, inventory: &mut policy::Inventory) -> usize {
    let mut learned = 0;
    for (_, user) in agg.people_tally().sorted_users() {
        for (device, d) in user.sorted_devices() {
            if d.keyed_by_id && (!d.model.is_empty() || !d.os.is_empty()) && inventory.device_facts(device).is_none() {
                inventory.insert_device_facts(device, &d.model, &d.os);
                learned += 1;
            }
        }
    }
    learned
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use exchange::{Interpreter, Request, Traffic};
    use policy::Policy;

    use super::*;

    /// Which back-end hops a thread evaluates depends on whether it has
    /// read a person's request yet; the note about requests without an
    /// authentication type must not.
    #[test]
    fn unknown_auth_count_does_not_depend_on_the_order_files_are_read() {
        let interpreter = Arc::new(Interpreter::builtin());
        let text = "default = \"allow\"\n[[rule]]\nname = \"no basic\"\naction = \"deny\"\nauth = [\"basic\"]\n";
        let policy =
            Policy::from_toml(text, Path::new("p.toml"), interpreter.catalog(), interpreter.networks()).unwrap();
        let policy = ReadyPolicy::new(policy, None, interpreter.clone()).unwrap();
        let request = |traffic| Request { traffic, user: "ann".into(), status: 200, ..Request::default() };
        let (person, hop) = (request(Traffic::Person), request(Traffic::Backend));
        let run = |order: &[&Request]| {
            let mut sim = Simulation::default();
            for r in order {
                sim.add(r, &policy);
            }
            sim.unknown_auth()
        };
        assert_eq!(run(&[&hop, &person, &hop]), 1);
        assert_eq!(run(&[&person, &hop, &hop]), 1);
        // Back-end lines alone stand for the people.
        assert_eq!(run(&[&hop, &hop]), 2);
    }
}
