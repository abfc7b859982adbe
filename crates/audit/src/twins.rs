//! What only another line of a request logged, when one line of it is the
//! one counted. A back-end hop holds ActiveSync's `Log=` (in Exchange 2013+
//! the back end, where ActiveSync runs, writes it; the front-end line has
//! none): a device's model, OS and access state. The IIS line of a request
//! counted from its HttpProxy line (see [`exchange::join`]) holds what
//! HttpProxy's query lacks (`Log=`, where a front end writes one) and IIS's
//! substatus, which tells request filtering's 404.19 (blocked) from a plain
//! 404 (failed). Kept per device and per attack source, so memory grows with
//! them and not with lines, and laid onto the aggregate once every line is
//! in ([`crate::Aggregate::settle`]): one file may be read before or after
//! another of the same hour.

use std::net::IpAddr;

use exchange::{AccessVerdict, Outcome, Request};

use crate::aggregate::{later_access, Map, Tally};
use crate::attacks::{outcome_index, AttackAgg};

/// A device's `Log=` facts from the IIS lines of requests counted elsewhere.
#[derive(Clone, Debug, Default)]
struct DeviceFacts {
    model: String,
    os: String,
    access: Option<(i64, AccessVerdict)>,
}

impl DeviceFacts {
    /// Give `model`, `os` and `access` what they lack of these facts.
    fn fill(self, model: &mut String, os: &mut String, access: &mut Option<(i64, AccessVerdict)>) {
        if model.is_empty() {
            *model = self.model;
        }
        if os.is_empty() {
            *os = self.os;
        }
        later_access(access, self.access);
    }
}

/// Requests whose outcome the substatus changes: `[from][to]`, indexed as
/// `Outcome::ALL`, from the status alone (what the HttpProxy line says) to
/// the status with IIS's substatus.
type Shifts = [[u64; 4]; 4];

#[derive(Clone, Debug, Default)]
pub struct TwinFacts {
    /// User key, then device key (the ActiveSync device id).
    devices: Map<Box<str>, Map<Box<str>, DeviceFacts>>,
    outcomes: Map<(&'static str, Option<IpAddr>), Shifts>,
}

impl TwinFacts {
    /// Note what `req`, another line of a counted request, adds.
    pub(crate) fn add(&mut self, req: &Request) {
        if let Some(attack) = req.attack {
            let (from, to) = (Outcome::of(req.status, 0), req.outcome());
            if from != to {
                let shifts = self.outcomes.entry((attack.rule, req.client_ip)).or_default();
                shifts[outcome_index(from)][outcome_index(to)] += 1;
            }
        }
        let log = &req.activesync.log;
        let device = req.activesync.device_id.as_str();
        if req.user.is_empty()
            || device.is_empty()
            || (log.device_model.is_empty() && log.device_os.is_empty() && log.access_state.is_empty())
        {
            return;
        }
        let user = match self.devices.get_mut(req.user.as_str()) {
            Some(user) => user,
            None => self.devices.entry(req.user.as_str().into()).or_default(),
        };
        let facts = match user.get_mut(device) {
            Some(facts) => facts,
            None => user.entry(device.into()).or_default(),
        };
        if facts.model.is_empty() {
            facts.model.push_str(&log.device_model);
        }
        if facts.os.is_empty() {
            facts.os.push_str(&log.device_os);
        }
        if !log.access_state.is_empty() {
            let seen = exchange::parse_access_state(&log.access_state).map(|v| (req.time, v));
            later_access(&mut facts.access, seen);
        }
    }

    pub(crate) fn merge(&mut self, other: TwinFacts) {
        for (user, devices) in other.devices {
            let mine = self.devices.entry(user).or_default();
            for (device, facts) in devices {
                let m = mine.entry(device).or_default();
                facts.fill(&mut m.model, &mut m.os, &mut m.access);
            }
        }
        for (key, shifts) in other.outcomes {
            let mine = self.outcomes.entry(key).or_default();
            for (row, theirs) in mine.iter_mut().zip(shifts) {
                for (n, t) in row.iter_mut().zip(theirs) {
                    *n += t;
                }
            }
        }
    }

    /// The facts of the devices of `backend`, hops added in full.
    pub(crate) fn take_devices_of(&mut self, backend: &Tally) {
        for (user, agg) in &backend.users {
            for (key, device) in &agg.devices {
                if !device.keyed_by_id || (device.model.is_empty() && device.os.is_empty() && device.access.is_none()) {
                    continue;
                }
                let facts = self.devices.entry(user.clone()).or_default().entry(key.clone()).or_default();
                let hop = DeviceFacts { model: device.model.clone(), os: device.os.clone(), access: device.access };
                hop.fill(&mut facts.model, &mut facts.os, &mut facts.access);
            }
        }
    }

    /// Fill the devices of `people` that lack what their other lines logged,
    /// and move attack requests to the outcome their substatus tells.
    pub(crate) fn lay_onto(self, people: &mut Tally, attacks: &mut Map<(&'static str, Option<IpAddr>), AttackAgg>) {
        for (user, devices) in self.devices {
            let Some(agg) = people.users.get_mut(&user) else { continue };
            for (key, facts) in devices {
                let Some(device) = agg.devices.get_mut(&key) else { continue };
                facts.fill(&mut device.model, &mut device.os, &mut device.access);
            }
        }
        for (key, shifts) in self.outcomes {
            let Some(attack) = attacks.get_mut(&key) else { continue };
            for (from, row) in shifts.iter().enumerate() {
                for (to, &n) in row.iter().enumerate() {
                    // No more than the counted line gave `from`: a twin whose
                    // counted line fell elsewhere moves nothing.
                    let moved = n.min(attack.outcomes[from]);
                    attack.outcomes[from] -= moved;
                    attack.outcomes[to] += moved;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Aggregate;
    use exchange::{Catalog, Protocol, Source, Traffic};

    /// An ActiveSync request of jdoe's phone, its IIS line carrying `Log=`
    /// facts, its HttpProxy line not.
    fn pair(log: bool) -> (Request, Request) {
        let mut counted = Request {
            traffic: Traffic::Person,
            source: Source::HttpProxy,
            protocol: Protocol::ActiveSync,
            user: "jdoe".into(),
            user_agent: "Apple-iPhone/1".into(),
            time: 1_795_392_000,
            status: 200,
            ..Request::default()
        };
        counted.activesync.device_id = "D1".into();
        let mut twin = counted.clone();
        twin.traffic = Traffic::Duplicate;
        twin.source = Source::Iis;
        if log {
            twin.activesync.log.device_model = "iPhone15,2".into();
            twin.activesync.log.device_os = "iOS 17.1".into();
            twin.activesync.log.access_state = "AllowedG".into();
        }
        (counted, twin)
    }

    fn device(agg: &Aggregate) -> (String, String, bool) {
        let d = &agg.people.users["jdoe"].devices["D1"];
        (d.model.clone(), d.os.clone(), d.access.is_some())
    }

    /// `a` and `b` added in both orders, and in two aggregates merged.
    fn in_every_order(a: &Request, b: &Request, catalog: &Catalog) -> [Aggregate; 3] {
        let of = |requests: &[&Request]| {
            let mut agg = Aggregate::default();
            requests.iter().for_each(|r| agg.add(r, catalog));
            agg
        };
        let mut merged = of(&[a]);
        merged.merge(of(&[b]));
        [of(&[a, b]), of(&[b, a]), merged]
    }

    #[test]
    fn a_device_gets_what_only_its_iis_lines_logged_in_either_order() {
        let catalog = Catalog::builtin();
        let (counted, twin) = pair(true);
        let want = ("iPhone15,2".to_string(), "iOS 17.1".to_string(), true);
        // The IIS file first, the HttpProxy file first, or in two workers merged.
        for mut agg in in_every_order(&counted, &twin, &catalog) {
            assert_eq!(device(&agg).0, "", "not before settle");
            agg.settle();
            assert_eq!(device(&agg), want);
            assert_eq!(agg.people.requests, 1, "the twin is not counted");
        }
        // Without Log= facts nothing is kept.
        let (counted, twin) = pair(false);
        let mut agg = Aggregate::default();
        agg.add(&twin, &catalog);
        agg.add(&counted, &catalog);
        assert!(agg.twins.devices.is_empty());
        agg.settle();
        assert_eq!(device(&agg), (String::new(), String::new(), false));
    }

    #[test]
    fn a_device_gets_the_log_facts_of_its_back_end_hops_in_either_order() {
        let catalog = Catalog::builtin();
        // Exchange 2013+: the front-end line has no `Log=`, the hop has.
        let (mut person, mut hop) = pair(true);
        person.source = Source::Iis;
        hop.traffic = Traffic::Backend;
        hop.server_port = 444;
        let want = ("iPhone15,2".to_string(), "iOS 17.1".to_string(), true);
        for mut agg in in_every_order(&person, &hop, &catalog) {
            agg.settle();
            assert_eq!(device(&agg), want);
            assert_eq!((agg.people.requests, agg.backend_hops()), (1, 1));
        }
        // Back-end logs alone: the hops are the people, facts and all.
        let mut alone = Aggregate::default();
        alone.add(&hop, &catalog);
        alone.settle();
        assert!(alone.backend_only());
        assert_eq!(alone.backend.users["jdoe"].devices["D1"].os, "iOS 17.1");
    }

    #[test]
    fn a_filtered_attack_is_blocked_by_its_iis_substatus() {
        let catalog = Catalog::builtin();
        let attack = exchange::Detection { rule: "web-shell-command-parameter", kind: exchange::AttackKind::Exploit };
        let (mut counted, mut twin) = pair(false);
        for r in [&mut counted, &mut twin] {
            r.traffic = Traffic::Attack;
            r.attack = Some(attack);
            r.status = 404;
        }
        twin.traffic = Traffic::Duplicate;
        twin.substatus = 19;
        let mut agg = Aggregate::default();
        agg.add(&counted, &catalog);
        agg.add(&twin, &catalog);
        let key = (attack.rule, None);
        assert_eq!(agg.attacks[&key].outcome(), Outcome::Failed, "the HttpProxy line has no substatus");
        agg.settle();
        assert_eq!(agg.attacks[&key].outcome(), Outcome::Blocked);
        assert_eq!(agg.attacks[&key].requests, 1);
    }
}
