//! `simulate`: replay requests through a policy with the same
//! [`policy::evaluate`] the gateway calls, and report whom each rule cuts
//! off, which other doors stay open, and what a Provision rule does to
//! devices that already existed. With a policy in force beside it
//! ([`Comparison`]), only what the proposed policy changes.

mod change;
mod report;

use exchange::{Protocol, Request, Traffic};
use policy::{evaluate, Action, Cond, Decision, ReadyPolicy};
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
    /// How many devices a rule on a device's model or OS can judge by them,
    /// when the caller counted it ([`device_facts_known`]) before the report.
    pub device_facts: Option<DeviceFactsKnown>,
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
        self.device_facts = self.device_facts.or(other.device_facts);
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

/// The devices seen before `cutover` (Unix seconds): what `casguard
/// inventory build --until` writes and `--known-before` uses. People's, and
/// those of monitoring probes and computer accounts: Managed Availability's
/// ActiveSync test device existed at the cut-over as much as a phone did,
/// and a `device = "new"` rule must not refuse it.
pub fn inventory_before(agg: &crate::Aggregate, cutover: i64) -> policy::Inventory {
    let mut inventory = policy::Inventory::new(w3c::time::format_rfc3339(cutover));
    for (user, agg) in agg.people_tally().sorted_users() {
        for (device, d) in agg.sorted_devices() {
            if !d.span.is_empty() && d.span.first < cutover {
                inventory.insert(user, device, &w3c::time::format_rfc3339(d.span.first));
            }
        }
    }
    // The back end's computer accounts are machine traffic when it stands for people, as in the audit.
    let machine_hops = agg.backend_only().then_some(&agg.backend_machine_devices);
    let mut others: Vec<(&str, &str, i64)> = std::iter::once(&agg.other_devices)
        .chain(machine_hops)
        .flat_map(|seen| seen.iter().flat_map(|(u, ds)| ds.iter().map(move |(d, t)| (&**u, &**d, *t))))
        .collect();
    others.sort();
    for (user, device, first) in others {
        if first < cutover {
            inventory.insert(user, device, &w3c::time::format_rfc3339(first));
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

/// People's ActiveSync devices, and how many of them have no model or no
/// OS that a rule on them could be judged by: neither the logs' `Log=`
/// ([`learn_device_facts`]) nor an export gave it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceFactsKnown {
    pub devices: usize,
    pub without_model: usize,
    pub without_os: usize,
    /// Without a model, or without an OS, or both.
    pub without_either: usize,
}

impl DeviceFactsKnown {
    /// The devices a policy's rules cannot judge: those without what one
    /// of them reads (see [`facts_read`]).
    pub fn without(&self, (model, os): (bool, bool)) -> usize {
        match (model, os) {
            (true, true) => self.without_either,
            (true, false) => self.without_model,
            (false, true) => self.without_os,
            (false, false) => 0,
        }
    }
}

/// What `inventory` (once [`learn_device_facts`] filled it) holds of the
/// model and OS of the people's ActiveSync devices in `agg`.
pub fn device_facts_known(agg: &crate::Aggregate, inventory: Option<&policy::Inventory>) -> DeviceFactsKnown {
    let mut ids = BTreeSet::new();
    for (_, user) in agg.people_tally().sorted_users() {
        ids.extend(user.sorted_devices().into_iter().filter(|(_, d)| d.keyed_by_id).map(|(id, _)| id));
    }
    let mut known = DeviceFactsKnown { devices: ids.len(), ..DeviceFactsKnown::default() };
    for id in ids {
        let (model, os) = inventory.and_then(|i| i.device_facts(id)).unwrap_or(("", ""));
        known.without_model += usize::from(model.is_empty());
        known.without_os += usize::from(os.is_empty());
        known.without_either += usize::from(model.is_empty() || os.is_empty());
    }
    known
}

/// Whether a rule of `policy` reads a device's model, and whether one reads its OS.
pub fn facts_read(policy: &policy::Policy) -> (bool, bool) {
    policy.rules().iter().map(facts_read_by).fold((false, false), |(m, o), (rm, ro)| (m || rm, o || ro))
}

/// Whether `rule` reads a device's model, and whether it reads its OS.
pub fn facts_read_by(rule: &policy::Rule) -> (bool, bool) {
    fn walk(c: &Cond, pred: &dyn Fn(&Cond) -> bool) -> bool {
        pred(c)
            || matches!(c, Cond::Not(inner) if walk(inner, pred))
            || matches!(c, Cond::Any(cs) if cs.iter().any(|c| walk(c, pred)))
    }
    let reads = |pred: &dyn Fn(&Cond) -> bool| {
        rule.conditions.iter().chain(rule.unless.iter().flatten()).any(|c| walk(c, pred))
    };
    (reads(&|c| matches!(c, Cond::DeviceModel(_))), reads(&|c| matches!(c, Cond::DeviceOs(_))))
}

#[cfg(test)]
mod tests {
    use exchange::{Request, Traffic};

    use super::*;
    use crate::testing::{activesync, deny_rule, ready, simulated};

    /// Which back-end hops a thread evaluates depends on whether it has
    /// read a person's request yet; the note about requests without an
    /// authentication type must not.
    #[test]
    fn unknown_auth_count_does_not_depend_on_the_order_files_are_read() {
        let policy = ready(&deny_rule("no basic", "auth = [\"basic\"]"), "p.toml", None);
        let request = |traffic| Request { traffic, user: "ann".into(), status: 200, ..Request::default() };
        let (person, hop) = (request(Traffic::Person), request(Traffic::Backend));
        let run = |order: &[&Request]| simulated(order.iter().copied(), &policy).unknown_auth();
        assert_eq!(run(&[&hop, &person, &hop]), 1);
        assert_eq!(run(&[&person, &hop, &hop]), 1);
        // Back-end lines alone stand for the people.
        assert_eq!(run(&[&hop, &hop]), 2);
    }

    /// Managed Availability's ActiveSync probe has polled with its test
    /// device since long before the cut-over: the inventory knows it, so a
    /// `device = "new"` rule does not refuse it (nor does a gateway given
    /// `inventory build`'s file). A device first seen after is still new.
    #[test]
    fn inventory_knows_the_probes_and_computer_accounts_devices_seen_before_the_cutover() {
        let catalog = exchange::Catalog::builtin();
        let mut agg = crate::Aggregate::default();
        let probe = "healthmailbox0123456789abcdef";
        for req in [
            activesync(Traffic::Probe, probe, "EASProbeDeviceId161", 1_000),
            activesync(Traffic::Probe, probe, "EASProbeDeviceId161", 5_000),
            activesync(Traffic::Probe, probe, "EASProbeDeviceIdLate", 9_000),
            activesync(Traffic::Machine, "ex02$", "MachineDevice", 2_000),
            activesync(Traffic::Person, "ann", "ANNPHONE", 3_000),
            activesync(Traffic::Person, "bob", "BOBPHONE", 8_000),
            // A request that names no user is no one's device.
            activesync(Traffic::Probe, "", "ANONYMOUS", 1_000),
        ] {
            agg.add(&req, &catalog);
        }
        // Merged from two threads, as the scan does: the earliest sighting wins.
        let mut other = crate::Aggregate::default();
        other.add(&activesync(Traffic::Probe, probe, "EASProbeDeviceId161", 500), &catalog);
        agg.merge(other);
        let inventory = inventory_before(&agg, 6_000);
        assert!(inventory.contains(probe, "EASProbeDeviceId161"));
        assert!(inventory.contains("ex02$", "MachineDevice"));
        assert!(inventory.contains("ann", "ANNPHONE"));
        assert!(!inventory.contains(probe, "EASProbeDeviceIdLate"));
        assert!(!inventory.contains("bob", "BOBPHONE"));
        assert!(!inventory.contains("", "ANONYMOUS"));
        assert_eq!(inventory.len(), 3);
        let first = inventory.devices().iter().find(|d| d.device == "EASProbeDeviceId161").unwrap();
        assert_eq!(first.first_seen, w3c::time::format_rfc3339(500));

        // Back-end hops of computer accounts are machines only when the back end stands for people.
        let mut hops = crate::Aggregate::default();
        hops.add(&activesync(Traffic::Backend, "ex04$", "HopDevice", 1_000), &catalog);
        hops.add(&activesync(Traffic::Backend, "carl", "CARLPHONE", 1_000), &catalog);
        assert!(inventory_before(&hops, 6_000).contains("ex04$", "HopDevice"));
        hops.add(&activesync(Traffic::Person, "ann", "ANNPHONE", 1_000), &catalog);
        assert!(!inventory_before(&hops, 6_000).contains("ex04$", "HopDevice"));
    }

    /// A DeviceModel rule can miss the requests of every device whose model
    /// neither the logs' `Log=` nor an export gives, even when other
    /// devices' models are known: the note says so, with how many.
    #[test]
    fn the_model_rule_note_counts_the_devices_without_a_model_though_others_have_one() {
        let catalog = exchange::Catalog::builtin();
        let mut agg = crate::Aggregate::default();
        let mut logged = activesync(Traffic::Person, "ann", "ANNPHONE", 1_000);
        logged.activesync.log.device_model = "iPhone14C2".into();
        logged.activesync.log.device_os = "iOS 17.1".into();
        let mut os_only = activesync(Traffic::Person, "cat", "CATPHONE", 1_000);
        os_only.activesync.log.device_os = "Android 13".into();
        for req in [logged, os_only, activesync(Traffic::Person, "bob", "BOBPHONE", 1_000)] {
            agg.add(&req, &catalog);
        }
        // Not an ActiveSync device: no rule on a model judges it.
        let mut owa = activesync(Traffic::Person, "bob", "", 1_000);
        owa.protocol = Protocol::Owa;
        owa.user_agent = "Mozilla/5.0".into();
        agg.add(&owa, &catalog);
        let mut inventory = policy::Inventory::facts_only();
        assert_eq!(learn_device_facts(&agg, &mut inventory), 2);
        let known = device_facts_known(&agg, Some(&inventory));
        assert_eq!(known, DeviceFactsKnown { devices: 3, without_model: 2, without_os: 1, without_either: 2 });

        let rule = |characteristic: &str, value: &str| {
            format!(
                "default = 'allow'\n[device_access]\n[[device_access.rule]]\ncharacteristic = '{characteristic}'\n\
                 query_string = '{value}'\naccess_level = 'Block'\n"
            )
        };
        let note = |text: &str| {
            let policy = ready(text, "p.toml", Some(inventory.clone()));
            let sim = Simulation { device_facts: Some(known), ..Simulation::default() };
            let report = SimReport::build(&sim, &policy, &[]);
            report.notes.into_iter().find(|n| n.contains("can miss"))
        };
        let model = note(&rule("DeviceModel", "Outlook for iOS and Android")).expect("a note");
        assert!(model.contains("2 of 3 ActiveSync device(s) have no model"), "{model}");
        let os = note(&rule("DeviceOS", "Android 13")).expect("a note");
        assert!(os.contains("1 of 3 ActiveSync device(s) have no OS"), "{os}");
        // Every device's model known (an export, say): no note.
        let all = DeviceFactsKnown { without_model: 0, without_either: 0, ..known };
        let policy = ready(&rule("DeviceModel", "x"), "p.toml", Some(inventory.clone()));
        let sim = Simulation { device_facts: Some(all), ..Simulation::default() };
        assert!(SimReport::build(&sim, &policy, &[]).notes.iter().all(|n| !n.contains("can miss")));
    }
}
