//! `simulate`: replay requests through a policy with the same
//! [`policy::evaluate`] the gateway calls, and report whom each rule cuts
//! off, which other doors stay open, and what a Provision rule does to
//! devices that already existed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use exchange::{Interpreter, Protocol, Request, Traffic};
use policy::{evaluate, Action, Decision, Policy};
use serde::Serialize;
use w3c::{FileStats, Record, Visitor};

use crate::aggregate::Span;
use crate::report::time_string;

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
    pub denied: [u64; PROTOCOLS],
    /// Allowed requests that succeeded (status below 400), per protocol.
    pub reached: [u64; PROTOCOLS],
    /// Clients behind the allowed successful requests, per protocol.
    pub reached_clients: BTreeMap<(usize, u16), u64>,
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
    fn add(&mut self, req: &Request, decision: &Decision, slot: usize, rules: usize) {
        if self.rules.len() <= rules {
            self.rules.resize_with(rules + 1, RuleTally::default);
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
        if denied {
            doors.denied[p] += 1;
        } else if req.status < 400 {
            doors.reached[p] += 1;
            *doors.reached_clients.entry((p, req.client.0)).or_default() += 1;
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
            let mine = self.users.entry(user).or_default();
            for p in 0..PROTOCOLS {
                mine.denied[p] += doors.denied[p];
                mine.reached[p] += doors.reached[p];
            }
            for (key, n) in doors.reached_clients {
                *mine.reached_clients.entry(key).or_default() += n;
            }
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
    fn add(&mut self, req: &Request, policy: &Policy, example: &str) {
        self.requests += 1;
        let decision = evaluate(policy, req);
        if decision.action == Action::Deny {
            let entry = self.denied.entry(decision.rule.unwrap_or(policy.rules().len())).or_default();
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
    fn by_rule(&self, policy: &Policy) -> (u64, Vec<(String, u64, Vec<String>)>) {
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
}

impl Simulation {
    pub fn add(&mut self, req: &Request, policy: &Policy) {
        let rules = policy.rules().len();
        match req.traffic {
            // Hops beside front-end people are only counted (see `Aggregate::backend`).
            Traffic::Backend if self.people.requests > 0 => self.backend.requests += 1,
            // Machine traffic, as on the front end (see `Aggregate::backend_machine`).
            Traffic::Backend if req.is_machine_account() => self.backend_machines.add(req, policy, &req.user),
            Traffic::Person | Traffic::Backend => {
                let decision = evaluate(policy, req);
                let slot = decision.rule.unwrap_or(rules);
                let tally = if req.traffic == Traffic::Person { &mut self.people } else { &mut self.backend };
                tally.add(req, &decision, slot, rules);
            }
            Traffic::Probe => self.probes.add(req, policy, &req.user_agent),
            Traffic::Machine => self.machines.add(req, policy, &req.user),
            Traffic::Exploit => {}
        }
    }

    pub fn merge(&mut self, other: Simulation) {
        self.people.merge(other.people);
        self.backend.merge(other.backend);
        self.probes.merge(other.probes);
        self.machines.merge(other.machines);
        self.backend_machines.merge(other.backend_machines);
    }

    fn backend_only(&self) -> bool {
        self.people.requests == 0 && self.backend.requests + self.backend_machines.requests > 0
    }
}

/// The visitor: interpret, then evaluate, reusing one request.
pub struct SimCollector<'a> {
    interpreter: &'a Interpreter,
    policy: &'a Policy,
    request: Request,
    pub simulation: Simulation,
}

impl<'a> SimCollector<'a> {
    pub fn new(interpreter: &'a Interpreter, policy: &'a Policy) -> Self {
        SimCollector { interpreter, policy, request: Request::default(), simulation: Simulation::default() }
    }
}

impl Visitor for SimCollector<'_> {
    fn record(&mut self, record: &Record<'_>) {
        self.interpreter.read_record(record, &mut self.request);
        self.simulation.add(&self.request, self.policy);
    }
}

/// Tells whether a (user, device) existed before the cut-over.
pub trait KnownDevices {
    fn is_known(&self, user: &str, device: &str) -> bool;
    fn cutover(&self) -> String;
}

impl KnownDevices for policy::Inventory {
    fn is_known(&self, user: &str, device: &str) -> bool {
        self.contains(user, device)
    }
    fn cutover(&self) -> String {
        policy::Inventory::cutover(self).to_string()
    }
}

// === report ===

#[derive(Debug, Serialize)]
pub struct SimReport {
    pub policy: String,
    pub summary: SimSummary,
    pub rules: Vec<RuleReport>,
    pub denied_requests: u64,
    pub affected_users: Vec<String>,
    pub grandfathering: Grandfathering,
    pub backdoors: Vec<Backdoor>,
    pub probes: ProbeImpact,
    pub machines: MachineImpact,
    pub malformed: u64,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SimSummary {
    pub lines: u64,
    pub requests: u64,
    pub denied_requests: u64,
    pub allowed_requests: u64,
    pub affected_users: usize,
    pub backend_only: bool,
}

#[derive(Debug, Serialize)]
pub struct RuleReport {
    pub name: String,
    pub action: &'static str,
    /// Line of the policy file; absent for the default.
    pub line: Option<usize>,
    pub matched_requests: u64,
    pub denied_requests: u64,
    pub users: Vec<String>,
    pub devices: Vec<DeviceRef>,
    pub anonymous_requests: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub provision_denied: u64,
    /// Denied Provision requests from devices that existed at the cut-over.
    pub provision_from_known_devices: Option<u64>,
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeviceRef {
    pub user: String,
    pub id: String,
    pub requests: u64,
}

#[derive(Debug, Serialize)]
pub struct Grandfathering {
    pub cutover: Option<String>,
    pub provision_denied: u64,
    /// `null` when no cut-over or inventory was given.
    pub provision_from_known_devices: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Backdoor {
    pub user: String,
    pub denied_on: Vec<&'static str>,
    pub still_reaches: Vec<&'static str>,
    /// Allowed, successful requests per protocol still open, with their clients.
    pub evidence: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

#[derive(Debug, Serialize)]
pub struct ProbeImpact {
    pub requests: u64,
    pub denied_requests: u64,
    pub rules: Vec<ProbeRule>,
}

#[derive(Debug, Serialize)]
pub struct ProbeRule {
    pub name: String,
    pub denied_requests: u64,
    pub user_agents: Vec<String>,
}

/// Requests of computer accounts (`EX04$`) and the rules that would deny them.
#[derive(Debug, Serialize)]
pub struct MachineImpact {
    pub requests: u64,
    pub denied_requests: u64,
    pub rules: Vec<MachineRule>,
}

#[derive(Debug, Serialize)]
pub struct MachineRule {
    pub name: String,
    pub denied_requests: u64,
    pub accounts: Vec<String>,
}

fn slot_name(policy: &Policy, slot: usize) -> String {
    policy.rules().get(slot).map(|r| r.name.clone()).unwrap_or_else(|| "default".to_string())
}

impl SimReport {
    pub fn build(
        sim: &Simulation,
        policy: &Policy,
        interpreter: &Interpreter,
        files: &[FileStats],
        known: Option<&dyn KnownDevices>,
    ) -> SimReport {
        let backend_only = sim.backend_only();
        let tally = if backend_only { &sim.backend } else { &sim.people };
        let rules = policy.rules();
        let mut notes = Vec::new();
        if backend_only {
            let mut note = "only back-end lines were found: their hops are counted as people's requests".to_string();
            if sim.backend_machines.requests > 0 {
                note += &format!(", except {} of computer accounts", sim.backend_machines.requests);
            }
            notes.push(note);
        }

        let mut affected = BTreeSet::new();
        let mut rule_reports = Vec::new();
        let mut provision_denied_total = 0;
        let mut provision_known_total = 0;
        for (slot, rt) in tally.rules.iter().enumerate() {
            let (action, line) = match rules.get(slot) {
                Some(r) => (r.action, Some(r.line)),
                None => (policy.default_action(), None),
            };
            if rt.matched == 0 {
                continue;
            }
            let denied: u64 = device_pairs(&rt.devices).map(|(_, _, n)| n).sum();
            let mut users = BTreeSet::new();
            let mut devices = Vec::new();
            let mut anonymous = 0;
            for (user, device, n) in device_pairs(&rt.devices) {
                if user.is_empty() {
                    anonymous += n;
                    continue;
                }
                users.insert(user.to_string());
                devices.push(DeviceRef { user: user.to_string(), id: device.to_string(), requests: n });
            }
            devices.sort();
            affected.extend(users.iter().cloned());
            let provision_denied: u64 = device_pairs(&rt.provisions).map(|(_, _, n)| n).sum();
            let provision_known = known.map(|k| {
                device_pairs(&rt.provisions).filter(|(u, d, _)| k.is_known(u, d)).map(|(_, _, n)| n).sum::<u64>()
            });
            provision_denied_total += provision_denied;
            provision_known_total += provision_known.unwrap_or(0);
            rule_reports.push(RuleReport {
                name: slot_name(policy, slot),
                action: action.key(),
                line,
                matched_requests: rt.matched,
                denied_requests: denied,
                users: users.into_iter().collect(),
                devices,
                anonymous_requests: anonymous,
                first_seen: if denied > 0 { time_string(rt.span.first) } else { None },
                last_seen: if denied > 0 { time_string(rt.span.last) } else { None },
                provision_denied,
                provision_from_known_devices: provision_known,
            });
        }

        let mut backdoors = Vec::new();
        let mut users: Vec<_> = tally.users.iter().collect();
        users.sort_by(|a, b| a.0.cmp(b.0));
        for (user, doors) in users {
            let denied_on: Vec<Protocol> = Protocol::ALL.into_iter().filter(|p| doors.denied[p.index()] > 0).collect();
            if denied_on.is_empty() {
                continue;
            }
            let open: Vec<Protocol> = Protocol::ALL
                .into_iter()
                .filter(|p| p.reaches_mail() && doors.reached[p.index()] > 0 && !denied_on.contains(p))
                .collect();
            if open.is_empty() {
                continue;
            }
            let mut evidence: BTreeMap<&'static str, BTreeMap<String, u64>> = BTreeMap::new();
            for ((p, client), n) in &doors.reached_clients {
                let protocol = Protocol::ALL[*p];
                if open.contains(&protocol) {
                    let name = interpreter.catalog().get(exchange::ClientId(*client)).id.clone();
                    *evidence.entry(protocol.key()).or_default().entry(name).or_default() += n;
                }
            }
            backdoors.push(Backdoor {
                user: user.to_string(),
                denied_on: denied_on.iter().map(|p| p.key()).collect(),
                still_reaches: open.iter().map(|p| p.key()).collect(),
                evidence,
            });
        }

        let (probes_denied, probe_rules) = sim.probes.by_rule(policy);
        if probes_denied > 0 {
            notes.push(format!(
                "the policy would deny {probes_denied} monitoring probe request(s): Managed Availability would report failures"
            ));
        }
        // As in the audit's machine count: back-end hops too when the back end stands for the people.
        let mut machines = sim.machines.clone();
        if backend_only {
            machines.merge(sim.backend_machines.clone());
        }
        let (machines_denied, machine_rules) = machines.by_rule(policy);
        if machines_denied > 0 {
            notes.push(format!(
                "the policy would deny {machines_denied} request(s) of computer accounts (server-to-server traffic); \
                 casguard gateway would refuse them too where they pass through it"
            ));
        }
        let cutover = known.map(|k| k.cutover());
        if known.is_none() && provision_denied_total > 0 {
            notes.push(
                "Provision requests would be denied; give --known-before or --inventory to see how many come from devices that already existed"
                    .to_string(),
            );
        }

        SimReport {
            policy: policy.origin().to_string(),
            summary: SimSummary {
                lines: files.iter().map(|f| f.lines).sum(),
                requests: tally.requests,
                denied_requests: tally.denied,
                allowed_requests: tally.requests - tally.denied,
                affected_users: affected.len(),
                backend_only,
            },
            rules: rule_reports,
            denied_requests: tally.denied,
            affected_users: affected.into_iter().collect(),
            grandfathering: Grandfathering {
                cutover,
                provision_denied: provision_denied_total,
                provision_from_known_devices: known.map(|_| provision_known_total),
            },
            backdoors,
            probes: ProbeImpact {
                requests: sim.probes.requests,
                denied_requests: probes_denied,
                rules: probe_rules
                    .into_iter()
                    .map(|(name, denied_requests, user_agents)| ProbeRule { name, denied_requests, user_agents })
                    .collect(),
            },
            machines: MachineImpact {
                requests: machines.requests,
                denied_requests: machines_denied,
                rules: machine_rules
                    .into_iter()
                    .map(|(name, denied_requests, accounts)| MachineRule { name, denied_requests, accounts })
                    .collect(),
            },
            malformed: files.iter().map(|f| f.malformed_total()).sum(),
            notes,
        }
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

/// The simulation as text for an 80-column terminal.
pub fn render_table(report: &SimReport) -> String {
    use crate::table::fit;
    use std::fmt::Write as _;
    let mut out = String::new();
    let s = &report.summary;
    let _ = writeln!(out, "casguard simulate");
    let _ = writeln!(out, "policy {}", crate::table::fit_tail(&report.policy, 73));
    let _ = writeln!(
        out,
        "{} people's requests: {} would be denied, {} allowed; {} user(s) affected",
        s.requests, s.denied_requests, s.allowed_requests, s.affected_users
    );
    crate::table::heading(&mut out, "Rules");
    let _ = writeln!(out, "  {:<40} {:>6} {:>9} {:>6} {:>8}", "rule", "action", "matched", "users", "devices");
    for rule in &report.rules {
        let _ = writeln!(
            out,
            "  {:<40} {:>6} {:>9} {:>6} {:>8}",
            fit(&rule.name, 40),
            rule.action,
            rule.matched_requests,
            rule.users.len(),
            rule.devices.len()
        );
        if rule.denied_requests > 0 {
            if let (Some(first), Some(last)) = (&rule.first_seen, &rule.last_seen) {
                let _ = writeln!(out, "      denies {} request(s), {first} .. {last}", rule.denied_requests);
            }
            let users: Vec<&str> = rule.users.iter().take(6).map(String::as_str).collect();
            let more = if rule.users.len() > 6 { ", …" } else { "" };
            if !users.is_empty() {
                let _ = writeln!(out, "      {}", fit(&format!("users: {}{more}", users.join(", ")), 72));
            }
        }
        if rule.provision_denied > 0 {
            let known = rule
                .provision_from_known_devices
                .map(|n| format!("{n} from devices that existed at the cut-over"))
                .unwrap_or_else(|| "no cut-over given".into());
            let _ =
                writeln!(out, "      {}", fit(&format!("Provision denied: {} ({known})", rule.provision_denied), 72));
        }
    }
    crate::table::heading(&mut out, &format!("Backdoors ({})", report.backdoors.len()));
    if report.backdoors.is_empty() {
        let _ = writeln!(out, "  none: no denied user reached mail through another protocol");
    }
    for b in &report.backdoors {
        let line =
            format!("{}: denied on {}, still reaches {}", b.user, b.denied_on.join(","), b.still_reaches.join(","));
        let _ = writeln!(out, "  {}", fit(&line, 76));
    }
    if report.probes.denied_requests > 0 {
        let _ = writeln!(out, "\nMonitoring probes denied: {}", report.probes.denied_requests);
        for rule in &report.probes.rules {
            let _ = writeln!(out, "  {}", fit(&format!("{}: {} request(s)", rule.name, rule.denied_requests), 76));
        }
    }
    if report.machines.denied_requests > 0 {
        let _ = writeln!(out, "\nComputer accounts denied: {}", report.machines.denied_requests);
        for rule in &report.machines.rules {
            let line = format!("{}: {} request(s) of {}", rule.name, rule.denied_requests, rule.accounts.join(", "));
            let _ = writeln!(out, "  {}", fit(&line, 76));
        }
    }
    for note in &report.notes {
        let _ = writeln!(out);
        for (i, line) in crate::table::wrap(note, 72).iter().enumerate() {
            let _ = writeln!(out, "{}{line}", if i == 0 { "note: " } else { "      " });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn computer_accounts_hops_count_only_when_the_back_end_stands_for_people() {
        let interpreter = Interpreter::builtin();
        let deny_rpc = "default = \"allow\"\n[[rule]]\nname = \"no rpc\"\naction = \"deny\"\nprotocol = \"rpc\"\n";
        let policy =
            Policy::from_toml(deny_rpc, Path::new("deny-rpc.toml"), interpreter.catalog(), interpreter.networks())
                .unwrap();
        let request = |traffic, user: &str| Request {
            traffic,
            user: user.into(),
            protocol: Protocol::Rpc,
            stem: "/rpc/rpcproxy.dll".into(),
            ..Request::default()
        };
        let simulate = |requests: &[Request]| {
            let mut sim = Simulation::default();
            requests.iter().for_each(|r| sim.add(r, &policy));
            SimReport::build(&sim, &policy, &interpreter, &[], None)
        };
        let front_machine = request(Traffic::Machine, "ex01$");
        let hop_machine = request(Traffic::Backend, "ex04$");

        // Back-end hops stand for people: the front end's computer account and the hop's both count.
        let alone = simulate(&[front_machine.clone(), hop_machine.clone(), request(Traffic::Backend, "bob")]);
        assert!(alone.summary.backend_only);
        assert_eq!((alone.summary.requests, alone.summary.denied_requests), (1, 1));
        assert_eq!((alone.machines.requests, alone.machines.denied_requests), (2, 2));
        assert_eq!(alone.machines.rules[0].accounts, ["ex01$", "ex04$"]);

        // Beside people, a hop is a duplicate of a front-end request: only the front end counts.
        let mixed = simulate(&[front_machine, hop_machine, request(Traffic::Person, "alice")]);
        assert!(!mixed.summary.backend_only);
        assert_eq!((mixed.machines.requests, mixed.machines.denied_requests), (1, 1));
        assert_eq!(mixed.machines.rules[0].accounts, ["ex01$"]);
    }
}
