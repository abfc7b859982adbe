//! The simulation report: which rule denies whom, the doors that stay open,
//! what a Provision rule does to devices that existed, and its table.

use std::collections::{BTreeMap, BTreeSet};

use exchange::Protocol;
use policy::{Action, ReadyPolicy, Slot};
use serde::Serialize;
use w3c::FileStats;

use super::{device_pairs, slot_name, Simulation};
use crate::report::time_string;

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

/// Requests that are not people's, and the rules that would deny them:
/// monitoring probes ([`ProbeImpact`]) or computer accounts such as `EX04$`
/// ([`MachineImpact`]).
#[derive(Debug, Serialize)]
pub struct Impact<R> {
    pub requests: u64,
    pub denied_requests: u64,
    pub rules: Vec<R>,
}

pub type ProbeImpact = Impact<ProbeRule>;
pub type MachineImpact = Impact<MachineRule>;

#[derive(Debug, Serialize)]
pub struct ProbeRule {
    pub name: String,
    pub denied_requests: u64,
    pub user_agents: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct MachineRule {
    pub name: String,
    pub denied_requests: u64,
    pub accounts: Vec<String>,
}

impl SimReport {
    /// The report of `sim`, run under `policy`; Provision denials are
    /// checked against the policy's inventory, when it has one.
    pub fn build(sim: &Simulation, policy: &ReadyPolicy, files: &[FileStats]) -> SimReport {
        // An inventory of devices' models and OSes only says nothing of
        // which devices existed: there is no cut-over then.
        let known = policy.inventory().filter(|k| !k.is_facts_only());
        let interpreter = policy.interpreter();
        let backend_only = sim.backend_only();
        let tally = if backend_only { &sim.backend } else { &sim.people };
        let mut notes = Vec::new();
        if backend_only {
            let mut note = "only back-end lines were found: their hops are counted as people's requests".to_string();
            if sim.backend_machines.requests > 0 {
                note += &format!(", except {} of computer accounts", sim.backend_machines.requests);
            }
            notes.push(note);
        }
        if policy.policy().uses_auth_type() && sim.unknown_auth() > 0 {
            notes.push(format!(
                "{} request(s) have no authentication type (IIS logs do not record it): rules with an auth \
                 condition cannot match them; HttpProxy logs have it",
                sim.unknown_auth()
            ));
        }
        if let Some(note) = device_facts_note(sim, policy) {
            notes.push(note);
        }

        let mut affected = BTreeSet::new();
        let mut rule_reports = Vec::new();
        let mut provision_denied_total = 0;
        let mut provision_known_total = 0;
        for (slot, rt) in tally.rules.iter().enumerate() {
            let (action, line) = match policy.slot_kind(slot) {
                Slot::Rule(r) => (r.action, Some(r.line)),
                Slot::Default => (policy.policy().default_action(), None),
                Slot::Refused => (Action::Deny, None),
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
                device_pairs(&rt.provisions).filter(|(u, d, _)| k.contains(u, d)).map(|(_, _, n)| n).sum::<u64>()
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
            for ((p, client, _), n) in &doors.reached_clients {
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
        let cutover = known.map(|k| k.cutover().to_string());
        if known.is_none() && provision_denied_total > 0 {
            notes.push(
                "Provision requests would be denied; give --known-before, --inventory or --devices to see how many come from devices that already existed"
                    .to_string(),
            );
        }

        SimReport {
            policy: policy.policy().origin().to_string(),
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

/// The note that a rule on a device's model or OS can miss requests: some
/// ActiveSync devices have no such fact from the logs' `Log=` nor from an
/// export, and their requests then match no such rule.
fn device_facts_note(sim: &Simulation, policy: &ReadyPolicy) -> Option<String> {
    let advice = "give --devices with a device export, as the gateway needs";
    let Some(known) = sim.device_facts else {
        // Not counted: say so when nothing at all gives a model or OS.
        let rule = policy.rule_without_device_facts()?;
        return Some(format!(
            "rule '{}' reads a device's model or OS: only a line's own `Log=` gives them here (Exchange 2013+ \
             writes it on back-end lines, which are counted, not judged), so the rule can miss requests; {advice}",
            rule.name
        ));
    };
    let read = super::facts_read(policy.policy());
    let missing = known.without(read);
    if missing == 0 {
        return None;
    }
    let rules: Vec<&str> = policy
        .policy()
        .rules()
        .iter()
        .filter(|r| super::facts_read_by(r) != (false, false))
        .map(|r| r.name.as_str())
        .collect();
    let more = match rules.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    let what = match read {
        (true, true) => "model or OS",
        (true, false) => "model",
        _ => "OS",
    };
    Some(format!(
        "rule '{}'{more} reads a device's model or OS: {missing} of {} ActiveSync device(s) have no {what} from the \
         logs' `Log=` (Exchange 2013+ writes it on back-end lines, which are counted, not judged) nor from a device \
         export, so the rule can miss their requests; {advice}",
        rules.first().copied().unwrap_or_default(),
        known.devices
    ))
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
    crate::table::notes(&mut out, &report.notes);
    out
}

#[cfg(test)]
mod tests {
    use exchange::{Request, Traffic};

    use super::*;
    use crate::testing::{activesync, deny_rule, ready, request, simulated};

    #[test]
    fn computer_accounts_hops_count_only_when_the_back_end_stands_for_people() {
        let policy = ready(&deny_rule("no rpc", "protocol = \"rpc\""), "deny-rpc.toml", None);
        let request = |traffic, user: &str| request(traffic, user, Protocol::Rpc, "/rpc/rpcproxy.dll");
        let simulate = |requests: &[Request]| SimReport::build(&simulated(requests, &policy), &policy, &[]);
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

    /// A rule on a device's model gives simulate an inventory of models and
    /// OSes only: it says nothing of which devices existed, so without a
    /// cut-over grandfathering knows none (null), as without such a rule;
    /// with one it counts the denied Provisions of devices that existed.
    #[test]
    fn grandfathering_without_a_cutover_is_null_when_a_model_rule_reads_device_facts() {
        let text = "default = 'allow'\n[device_access]\n[[device_access.rule]]\ncharacteristic = 'DeviceModel'\n\
                    query_string = 'iPhone14C2'\naccess_level = 'Block'\n";
        let mut provision = activesync(Traffic::Person, "alice", "ALICEPHONE", 0);
        provision.activesync.command = "Provision".into();
        let grandfathering = |mut inventory: policy::Inventory| {
            inventory.insert_device_facts("ALICEPHONE", "iPhone14C2", "iOS 17.1");
            let policy = ready(text, "model.toml", Some(inventory));
            let report = SimReport::build(&simulated([&provision], &policy), &policy, &[]);
            assert_eq!(report.denied_requests, 1);
            assert_eq!(
                report.rules[0].provision_from_known_devices,
                report.grandfathering.provision_from_known_devices
            );
            let g = report.grandfathering;
            (g.cutover, g.provision_denied, g.provision_from_known_devices, report.notes)
        };
        let (cutover, denied, known, notes) = grandfathering(policy::Inventory::facts_only());
        assert_eq!((cutover, denied, known), (None, 1, None));
        assert!(notes.iter().any(|n| n.contains("give --known-before, --inventory or --devices")), "{notes:?}");
        let mut existed = policy::Inventory::new("2026-11-09T06:30:00Z");
        existed.insert("alice", "ALICEPHONE", "2026-10-01T00:00:00Z");
        let (cutover, denied, known, _) = grandfathering(existed);
        assert_eq!((cutover.as_deref(), denied, known), (Some("2026-11-09T06:30:00Z"), 1, Some(1)));
    }
}
