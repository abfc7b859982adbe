//! `simulate --baseline`: the change a proposed policy makes on top of the
//! one in force. Each request is decided under both policies as it is read;
//! the report keeps only the difference: who would be newly cut off (by the
//! proposed policy's rule), who is cut off already (by the rule in force),
//! what the change would newly allow, and which backdoors it closes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use exchange::{ClientId, Protocol, Request, Traffic};
use policy::{Action, Decision, ReadyPolicy, Slot};
use serde::Serialize;
use w3c::FileStats;

use super::{slot_name, Backdoor, SimReport, Simulation};
use crate::aggregate::Span;
use crate::report::time_string;

/// One user's requests in a [`Bucket`].
#[derive(Clone, Debug, Default)]
pub struct UserCounts {
    pub requests: u64,
    /// (protocol index, client id) -> requests.
    pub clients: BTreeMap<(usize, u16), u64>,
}

/// The requests of one kind of change under one rule.
#[derive(Clone, Debug, Default)]
pub struct Bucket {
    pub requests: u64,
    /// Requests without a user.
    pub anonymous: u64,
    pub span: Span,
    pub users: HashMap<Box<str>, UserCounts>,
}

impl Bucket {
    fn add(&mut self, req: &Request) {
        self.requests += 1;
        self.span.see(req.time);
        if req.user.is_empty() {
            self.anonymous += 1;
            return;
        }
        let user = match self.users.get_mut(req.user.as_str()) {
            Some(user) => user,
            None => self.users.entry(req.user.as_str().into()).or_default(),
        };
        user.requests += 1;
        *user.clients.entry((req.protocol.index(), req.client.0)).or_default() += 1;
    }

    fn merge(&mut self, other: Bucket) {
        self.requests += other.requests;
        self.anonymous += other.anonymous;
        self.span.merge(other.span);
        for (name, theirs) in other.users {
            let mine = self.users.entry(name).or_default();
            mine.requests += theirs.requests;
            for (key, n) in theirs.clients {
                *mine.clients.entry(key).or_default() += n;
            }
        }
    }
}

/// The two decisions of each request of one kind of traffic, side by side.
#[derive(Clone, Debug, Default)]
pub struct ChangeTally {
    pub requests: u64,
    /// Allowed by both policies.
    pub allowed_both: u64,
    /// Allowed in force, denied by the target: per target rule slot.
    pub newly_denied: BTreeMap<usize, Bucket>,
    /// Denied by both: per rule slot of the policy in force.
    pub still_denied: BTreeMap<usize, Bucket>,
    /// Denied in force, allowed by the target: per (baseline slot, target slot).
    pub newly_allowed: BTreeMap<(usize, usize), Bucket>,
}

impl ChangeTally {
    fn add(&mut self, req: &Request, (baseline, b_slot): (&Decision, usize), (target, t_slot): (&Decision, usize)) {
        self.requests += 1;
        match (baseline.action == Action::Deny, target.action == Action::Deny) {
            (false, false) => self.allowed_both += 1,
            (false, true) => self.newly_denied.entry(t_slot).or_default().add(req),
            (true, true) => self.still_denied.entry(b_slot).or_default().add(req),
            (true, false) => self.newly_allowed.entry((b_slot, t_slot)).or_default().add(req),
        }
    }

    fn merge(&mut self, other: ChangeTally) {
        self.requests += other.requests;
        self.allowed_both += other.allowed_both;
        for (slot, bucket) in other.newly_denied {
            self.newly_denied.entry(slot).or_default().merge(bucket);
        }
        for (slot, bucket) in other.still_denied {
            self.still_denied.entry(slot).or_default().merge(bucket);
        }
        for (slots, bucket) in other.newly_allowed {
            self.newly_allowed.entry(slots).or_default().merge(bucket);
        }
    }
}

/// Everything `simulate --baseline` learns in its one pass: each policy's
/// own simulation (for backdoors, probes and computer accounts) and the
/// requests whose decision changes.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub baseline: Simulation,
    pub target: Simulation,
    pub people: ChangeTally,
    /// Back-end hops, when only they were found (see [`Simulation::backend`]).
    pub backend: ChangeTally,
}

impl Comparison {
    pub fn add(&mut self, req: &Request, baseline: &ReadyPolicy, target: &ReadyPolicy) {
        let b = self.baseline.decide(req, baseline);
        let t = self.target.decide(req, target);
        // Both simulations see the same stream, so both decide or neither does.
        if let (Some(b), Some(t)) = (b, t) {
            let tally = if req.traffic == Traffic::Person { &mut self.people } else { &mut self.backend };
            tally.add(req, (&b, baseline.slot(&b)), (&t, target.slot(&t)));
        }
    }

    pub fn merge(&mut self, other: Comparison) {
        self.baseline.merge(other.baseline);
        self.target.merge(other.target);
        self.people.merge(other.people);
        self.backend.merge(other.backend);
    }
}

/// The difference, as `simulate --baseline` prints it.
#[derive(Debug, Serialize)]
pub struct ChangeReport {
    /// The policy in force.
    pub baseline: String,
    /// The proposed policy.
    pub policy: String,
    pub summary: ChangeSummary,
    /// Users with a request the policy in force allows and the target denies.
    pub newly_cut_off_users: Vec<String>,
    /// Users with a request both deny.
    pub already_cut_off_users: Vec<String>,
    /// Users with a request the policy in force denies and the target allows.
    pub newly_allowed_users: Vec<String>,
    /// Per rule of the target policy: the requests it newly denies.
    pub newly_cut_off: Vec<ChangeRule>,
    /// Per rule of the policy in force: the requests it denies today and the target still denies.
    pub already_cut_off: Vec<ChangeRule>,
    /// Per (rule in force, target rule): requests the change would let through.
    pub newly_allowed: Vec<ChangeRule>,
    /// Users denied somewhere under either policy who reach mail over another protocol.
    pub backdoors: Vec<BackdoorChange>,
    pub probes: OtherChange,
    pub machines: OtherChange,
    pub malformed: u64,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ChangeSummary {
    pub lines: u64,
    pub requests: u64,
    pub unchanged_allowed: u64,
    pub already_denied_requests: u64,
    pub newly_denied_requests: u64,
    pub newly_allowed_requests: u64,
    pub newly_cut_off_users: usize,
    pub already_cut_off_users: usize,
    pub newly_allowed_users: usize,
    pub backdoors_closed: usize,
    pub backdoors_still_open: usize,
    pub backdoors_new: usize,
    /// True when the change lets through something the policy in force denies.
    pub widens_access: bool,
    pub backend_only: bool,
}

/// Requests whose decision changes (or stays denied) under one rule.
#[derive(Debug, Serialize)]
pub struct ChangeRule {
    /// The rule that decides: the target's for `newly_cut_off` and
    /// `newly_allowed`, the policy in force's for `already_cut_off`.
    pub rule: String,
    /// `baseline` or `target`: whose rule `rule` is.
    pub of: &'static str,
    /// The mechanism the rule emulates (`rule`, `iis_filter`, `ews_access`,
    /// `mailbox_protocols`...), `default` for the default action.
    pub mechanism: &'static str,
    /// Line of the policy file; `null` for the default.
    pub line: Option<usize>,
    /// For `newly_allowed`: the rule in force that denies these requests today; else `null`.
    pub denied_today_by: Option<String>,
    pub requests: u64,
    pub anonymous_requests: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub users: Vec<UserChange>,
}

#[derive(Debug, Serialize)]
pub struct UserChange {
    pub user: String,
    pub requests: u64,
    /// Protocol -> client -> requests.
    pub clients: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

/// How the change moves one user's backdoor.
#[derive(Debug, Serialize)]
pub struct BackdoorChange {
    pub user: String,
    /// `closed` (open today, none after the change), `still_open` or `new`
    /// (none today, one after: the user is newly denied somewhere and still
    /// reaches mail elsewhere).
    pub status: &'static str,
    pub denied_on_today: Vec<&'static str>,
    pub denied_on_after: Vec<&'static str>,
    /// Mail protocols the user still reaches today beside the denied ones.
    pub open_today: Vec<&'static str>,
    /// Of those, the ones the change closes.
    pub closed: Vec<&'static str>,
    /// Mail protocols still reached after the change.
    pub still_open: Vec<&'static str>,
    /// A mobile client is behind a door still open.
    pub mobile: bool,
    /// Allowed, successful requests after the change per protocol still open, with their clients.
    pub evidence: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

/// Denied requests that are not people's under each policy.
#[derive(Debug, Serialize)]
pub struct OtherChange {
    pub requests: u64,
    pub denied_today: u64,
    pub denied_after: u64,
}

impl ChangeReport {
    pub fn build(cmp: &Comparison, baseline: &ReadyPolicy, target: &ReadyPolicy, files: &[FileStats]) -> ChangeReport {
        let before = SimReport::build(&cmp.baseline, baseline, files);
        let after = SimReport::build(&cmp.target, target, files);
        let backend_only = after.summary.backend_only;
        let tally = if backend_only { &cmp.backend } else { &cmp.people };
        let catalog = target.interpreter().catalog();

        let users_of = |rules: &[ChangeRule]| -> Vec<String> {
            let set: BTreeSet<&str> = rules.iter().flat_map(|r| r.users.iter().map(|u| u.user.as_str())).collect();
            set.into_iter().map(str::to_string).collect()
        };
        let newly_cut_off: Vec<ChangeRule> = tally
            .newly_denied
            .iter()
            .map(|(slot, bucket)| change_rule(bucket, target, *slot, "target", None, catalog))
            .collect();
        let already_cut_off: Vec<ChangeRule> = tally
            .still_denied
            .iter()
            .map(|(slot, bucket)| change_rule(bucket, baseline, *slot, "baseline", None, catalog))
            .collect();
        let newly_allowed: Vec<ChangeRule> = tally
            .newly_allowed
            .iter()
            .map(|((b_slot, t_slot), bucket)| {
                change_rule(bucket, target, *t_slot, "target", Some(slot_name(baseline, *b_slot)), catalog)
            })
            .collect();
        let newly_cut_off_users = users_of(&newly_cut_off);
        let already_cut_off_users = users_of(&already_cut_off);
        let newly_allowed_users = users_of(&newly_allowed);
        let count = |rules: &[ChangeRule]| rules.iter().map(|r| r.requests).sum::<u64>();
        let newly_allowed_requests = count(&newly_allowed);

        let backdoors = compare_backdoors((&before.backdoors, &cmp.baseline), (&after.backdoors, &cmp.target), target);
        let status_count = |s: &str| backdoors.iter().filter(|b| b.status == s).count();

        let mut notes = Vec::new();
        if newly_allowed_requests > 0 {
            notes.push(format!(
                "THE CHANGE WIDENS ACCESS: {newly_allowed_requests} request(s) of {} user(s) denied today would be allowed",
                newly_allowed_users.len()
            ));
        }
        for note in before.notes.iter().filter(|n| !after.notes.contains(n)) {
            notes.push(format!("in force: {note}"));
        }
        notes.extend(after.notes.iter().cloned());

        ChangeReport {
            baseline: baseline.policy().origin().to_string(),
            policy: target.policy().origin().to_string(),
            summary: ChangeSummary {
                lines: files.iter().map(|f| f.lines).sum(),
                requests: tally.requests,
                unchanged_allowed: tally.allowed_both,
                already_denied_requests: count(&already_cut_off),
                newly_denied_requests: count(&newly_cut_off),
                newly_allowed_requests,
                newly_cut_off_users: newly_cut_off_users.len(),
                already_cut_off_users: already_cut_off_users.len(),
                newly_allowed_users: newly_allowed_users.len(),
                backdoors_closed: status_count("closed"),
                backdoors_still_open: status_count("still_open"),
                backdoors_new: status_count("new"),
                widens_access: newly_allowed_requests > 0,
                backend_only,
            },
            newly_cut_off_users,
            already_cut_off_users,
            newly_allowed_users,
            newly_cut_off,
            already_cut_off,
            newly_allowed,
            backdoors,
            probes: OtherChange {
                requests: after.probes.requests,
                denied_today: before.probes.denied_requests,
                denied_after: after.probes.denied_requests,
            },
            machines: OtherChange {
                requests: after.machines.requests,
                denied_today: before.machines.denied_requests,
                denied_after: after.machines.denied_requests,
            },
            malformed: after.malformed,
            notes,
        }
    }
}

fn change_rule(
    bucket: &Bucket,
    policy: &ReadyPolicy,
    slot: usize,
    of: &'static str,
    denied_today_by: Option<String>,
    catalog: &exchange::Catalog,
) -> ChangeRule {
    let kind = policy.slot_kind(slot);
    let mut users: Vec<UserChange> = bucket
        .users
        .iter()
        .map(|(user, counts)| {
            let mut clients: BTreeMap<&'static str, BTreeMap<String, u64>> = BTreeMap::new();
            for ((p, client), n) in &counts.clients {
                let name = catalog.get(ClientId(*client)).id.clone();
                *clients.entry(Protocol::ALL[*p].key()).or_default().entry(name).or_default() += n;
            }
            UserChange { user: user.to_string(), requests: counts.requests, clients }
        })
        .collect();
    users.sort_by(|a, b| a.user.cmp(&b.user));
    ChangeRule {
        rule: slot_name(policy, slot),
        of,
        mechanism: match kind {
            Slot::Rule(r) => r.origin.key(),
            Slot::Default => "default",
            Slot::Refused => "refused",
        },
        line: match kind {
            Slot::Rule(r) => Some(r.line),
            _ => None,
        },
        denied_today_by,
        requests: bucket.requests,
        anonymous_requests: bucket.anonymous,
        first_seen: if bucket.requests > 0 { time_string(bucket.span.first) } else { None },
        last_seen: if bucket.requests > 0 { time_string(bucket.span.last) } else { None },
        users,
    }
}

/// The protocols `user` is denied on in `sim` (people's requests, or the
/// back end's when it stands for them, as in [`SimReport::build`]).
fn denied_on(sim: &Simulation, user: &str) -> Vec<&'static str> {
    let tally = if sim.backend_only() { &sim.backend } else { &sim.people };
    let Some(doors) = tally.users.get(user) else { return Vec::new() };
    Protocol::ALL.into_iter().filter(|p| doors.denied[p.index()] > 0).map(Protocol::key).collect()
}

/// Set each user's backdoor today beside the one after the change. The
/// doors the change closes are those open today that the target denies the
/// user on: a backdoor that ends because the target denies the user nowhere
/// closes none (its doors are as open as before).
fn compare_backdoors(
    (before, today_sim): (&[Backdoor], &Simulation),
    (after, after_sim): (&[Backdoor], &Simulation),
    target: &ReadyPolicy,
) -> Vec<BackdoorChange> {
    let catalog = target.interpreter().catalog();
    let mobile: BTreeSet<&str> = catalog.iter().filter(|(_, c)| c.mobile).map(|(_, c)| c.id.as_str()).collect();
    let before: BTreeMap<&str, &Backdoor> = before.iter().map(|b| (b.user.as_str(), b)).collect();
    let after: BTreeMap<&str, &Backdoor> = after.iter().map(|b| (b.user.as_str(), b)).collect();
    let users: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    let mut changes: Vec<BackdoorChange> = users
        .into_iter()
        .map(|user| {
            let today = before.get(user);
            let later = after.get(user);
            let open_today: Vec<&'static str> = today.map(|b| b.still_reaches.clone()).unwrap_or_default();
            let still_open: Vec<&'static str> = later.map(|b| b.still_reaches.clone()).unwrap_or_default();
            let denied_on_after = denied_on(after_sim, user);
            let closed = open_today.iter().copied().filter(|p| denied_on_after.contains(p)).collect();
            let evidence = later.map(|b| b.evidence.clone()).unwrap_or_default();
            let status = match (today.is_some(), later.is_some()) {
                (true, false) => "closed",
                (true, true) => "still_open",
                _ => "new",
            };
            BackdoorChange {
                user: user.to_string(),
                status,
                denied_on_today: denied_on(today_sim, user),
                denied_on_after,
                open_today,
                closed,
                still_open,
                mobile: evidence.values().any(|clients| clients.keys().any(|c| mobile.contains(c.as_str()))),
                evidence,
            }
        })
        .collect();
    // What is still open and mobile first; then by user.
    let rank = |b: &BackdoorChange| match (b.status, b.mobile) {
        ("closed", _) => 2,
        (_, true) => 0,
        _ => 1,
    };
    changes.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.user.cmp(&b.user)));
    changes
}

/// The change as text for an 80-column terminal.
pub fn render_change_table(report: &ChangeReport) -> String {
    use crate::table::{fit, fit_tail, heading};
    use std::fmt::Write as _;
    let mut out = String::new();
    let s = &report.summary;
    let _ = writeln!(out, "casguard simulate: the change on top of the policy in force");
    let _ = writeln!(out, "in force {}", fit_tail(&report.baseline, 71));
    let _ = writeln!(out, "proposed {}", fit_tail(&report.policy, 71));
    let _ = writeln!(out, "{} people's requests:", s.requests);
    let _ = writeln!(out, "  {} newly denied, {} denied already,", s.newly_denied_requests, s.already_denied_requests);
    let _ = writeln!(out, "  {} newly allowed, {} allowed by both", s.newly_allowed_requests, s.unchanged_allowed);
    if s.widens_access {
        let line =
            format!("!! THE CHANGE WIDENS ACCESS: {} request(s) denied today would pass", s.newly_allowed_requests);
        let _ = writeln!(out, "\n{}", fit(&line, 78));
    }

    let section = |out: &mut String, title: String, rules: &[ChangeRule], empty: &str| {
        heading(out, &title);
        if rules.is_empty() {
            let _ = writeln!(out, "  {empty}");
            return;
        }
        let _ = writeln!(out, "  {:<40} {:>17} {:>9} {:>6}", "rule", "mechanism", "requests", "users");
        for rule in rules {
            let _ = writeln!(
                out,
                "  {:<40} {:>17} {:>9} {:>6}",
                fit(&rule.rule, 40),
                fit(rule.mechanism, 17),
                rule.requests,
                rule.users.len()
            );
            if let Some(today) = &rule.denied_today_by {
                let _ = writeln!(out, "      {}", fit(&format!("denied today by: {today}"), 72));
            }
            if let (Some(first), Some(last)) = (&rule.first_seen, &rule.last_seen) {
                let _ = writeln!(out, "      {}", fit(&format!("{first} .. {last}"), 72));
            }
            for user in rule.users.iter().take(8) {
                let doors: Vec<String> = user
                    .clients
                    .iter()
                    .map(|(p, clients)| format!("{p} ({})", clients.keys().cloned().collect::<Vec<_>>().join(", ")))
                    .collect();
                let line = format!("{}: {} request(s), {}", user.user, user.requests, doors.join("; "));
                let _ = writeln!(out, "      {}", fit(&line, 72));
            }
            if rule.users.len() > 8 {
                let _ = writeln!(out, "      … and {} more user(s)", rule.users.len() - 8);
            }
        }
    };
    section(
        &mut out,
        format!("Newly cut off ({} user(s))", report.newly_cut_off_users.len()),
        &report.newly_cut_off,
        "nobody: the change denies nothing that is allowed today",
    );
    section(
        &mut out,
        format!("Already cut off today ({} user(s))", report.already_cut_off_users.len()),
        &report.already_cut_off,
        "nobody: the policy in force denies nothing the proposed one denies",
    );
    let title = if report.newly_allowed.is_empty() {
        "Newly allowed (0 user(s))".to_string()
    } else {
        format!("!! NEWLY ALLOWED: ACCESS WIDENS ({} user(s))", report.newly_allowed_users.len())
    };
    section(&mut out, title, &report.newly_allowed, "nothing: the change lets through nothing denied today");

    heading(
        &mut out,
        &format!(
            "Backdoors: {} closed, {} still open, {} new",
            s.backdoors_closed, s.backdoors_still_open, s.backdoors_new
        ),
    );
    if report.backdoors.is_empty() {
        let _ = writeln!(out, "  none: no denied user reaches mail through another protocol, before or after");
    }
    for b in &report.backdoors {
        let mut parts = Vec::new();
        if !b.closed.is_empty() {
            parts.push(format!("closes {}", b.closed.join(",")));
        }
        if !b.still_open.is_empty() {
            parts.push(format!("still open {}", b.still_open.join(",")));
        }
        let reopened: Vec<&str> = b.open_today.iter().copied().filter(|p| !b.closed.contains(p)).collect();
        if b.status == "closed" && !reopened.is_empty() {
            // Ended because the user is denied nowhere they were: the doors stay open.
            parts.push(format!(
                "no longer denied on {}; {} open as before",
                b.denied_on_today.join(","),
                reopened.join(",")
            ));
        }
        let mobile = if b.mobile { " [mobile]" } else { "" };
        let line = format!("{} ({}): {}{mobile}", b.user, b.status.replace('_', " "), parts.join("; "));
        let _ = writeln!(out, "  {}", fit(&line, 76));
    }
    for (what, o) in [("Monitoring probes", &report.probes), ("Computer accounts", &report.machines)] {
        if o.denied_today != o.denied_after {
            let _ = writeln!(out, "\n{what} denied: {} today, {} after the change", o.denied_today, o.denied_after);
        }
    }
    crate::table::notes(&mut out, &report.notes);
    out
}

#[cfg(test)]
mod tests {
    use exchange::Traffic;

    use super::*;
    use crate::testing::{deny_rule, ready, request};

    #[test]
    fn each_request_lands_in_the_quadrant_of_its_two_decisions() {
        let deny = |p: &str| deny_rule(&format!("no {p}"), &format!("protocol = \"{p}\""));
        // In force: no RPC. Proposed: no EWS (and RPC allowed again).
        let baseline = ready(&deny("rpc"), "in-force.toml", None);
        let target = ready(&deny("ews"), "target.toml", None);
        let request = |user: &str, protocol, stem: &str| request(Traffic::Person, user, protocol, stem);
        let mut cmp = Comparison::default();
        let requests = [
            request("ann", Protocol::Ews, "/ews/exchange.asmx"),
            request("ann", Protocol::Ews, "/ews/exchange.asmx"),
            request("bob", Protocol::Rpc, "/rpc/rpcproxy.dll"),
            request("cat", Protocol::Owa, "/owa/"),
            request("", Protocol::Ews, "/ews/exchange.asmx"),
        ];
        // Split across two collectors and merged, as the parallel scan does.
        let mut other = Comparison::default();
        for (i, r) in requests.iter().enumerate() {
            if i % 2 == 0 { &mut cmp } else { &mut other }.add(r, &baseline, &target);
        }
        cmp.merge(other);
        let report = ChangeReport::build(&cmp, &baseline, &target, &[]);
        let s = &report.summary;
        assert_eq!((s.requests, s.unchanged_allowed, s.newly_denied_requests, s.newly_allowed_requests), (5, 1, 3, 1));
        assert_eq!(report.newly_cut_off_users, ["ann"]);
        assert_eq!(report.newly_cut_off[0].rule, "no ews");
        assert_eq!(report.newly_cut_off[0].anonymous_requests, 1);
        assert_eq!(report.newly_cut_off[0].users[0].requests, 2);
        assert_eq!(report.newly_allowed_users, ["bob"]);
        assert_eq!(report.newly_allowed[0].denied_today_by.as_deref(), Some("no rpc"));
        assert!(s.widens_access && report.already_cut_off.is_empty());
    }

    /// A backdoor that ends because the target denies the user nowhere
    /// closes no door: the user reaches mail on them under both policies.
    /// Only a door the target denies the user on is one the change closes.
    #[test]
    fn a_backdoor_the_change_ends_by_allowing_everything_closes_no_door() {
        let deny = |p: &str| deny_rule("r", &format!("protocol = \"{p}\""));
        // In force: ann is denied ActiveSync; she reaches mail on EWS and OWA.
        let baseline = ready(&deny("activesync"), "in-force.toml", None);
        let request = |protocol, stem: &str| request(Traffic::Person, "ann", protocol, stem);
        let requests = [
            request(Protocol::ActiveSync, "/microsoft-server-activesync/default.eas"),
            request(Protocol::Ews, "/ews/exchange.asmx"),
            request(Protocol::Owa, "/owa/"),
        ];
        let backdoor_after = |target: &str| {
            let target = ready(target, "target.toml", None);
            let mut cmp = Comparison::default();
            requests.iter().for_each(|r| cmp.add(r, &baseline, &target));
            let report = ChangeReport::build(&cmp, &baseline, &target, &[]);
            assert_eq!(report.backdoors.len(), 1, "{:?}", report.backdoors);
            let b = &report.backdoors[0];
            assert_eq!((&b.open_today, &b.denied_on_today), (&vec!["ews", "owa"], &vec!["activesync"]));
            (b.status, b.closed.clone(), b.denied_on_after.clone())
        };
        // The target denies nothing: ActiveSync reopens, EWS and OWA were never shut.
        assert_eq!(backdoor_after("default = \"allow\"\n"), ("closed", vec![], vec![]));
        // The target denies everything: both doors close.
        assert_eq!(
            backdoor_after("default = \"deny\"\n"),
            ("closed", vec!["ews", "owa"], vec!["activesync", "ews", "owa"])
        );
        // The target denies EWS only: that door closes, OWA (and now ActiveSync) stay open.
        assert_eq!(backdoor_after(&deny("ews")), ("still_open", vec!["ews"], vec!["ews"]));
    }
}
