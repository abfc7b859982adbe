//! What a correct audit must report, counted from the generator's own labels
//! as lines are written (never by re-reading the output).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::events::{Event, BE};
use crate::model::{outcome, Auth, Client, Cmd, Kind, Proto};
use crate::population::Population;
use crate::proxy::AUTH_KEYS;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Data lines, malformed included (directives excluded).
    pub lines: u64,
    pub malformed: u64,
    /// Person requests (anonymous included).
    pub requests: u64,
    pub backend_duplicates: u64,
    /// IIS front-end lines of requests the HttpProxy logs hold too.
    #[serde(default)]
    pub iis_duplicates: u64,
    pub probes: u64,
    /// Requests of exploit rules (a part of `attacks`).
    pub exploit_attempts: u64,
    /// Requests of every detection rule.
    #[serde(default)]
    pub attacks: u64,
    /// Failed sign-ins (401 1 1326); they are people's requests too.
    #[serde(default)]
    pub failed_sign_ins: u64,
    pub machine: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceTruth {
    pub requests: u64,
    pub client: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTruth {
    pub requests: u64,
    /// Raw account forms seen (cs-username, or the decoded ActiveSync User parameter), sorted.
    pub aliases: Vec<String>,
    /// Key: ActiveSync device id (upper-case hex for binary ids), else the decoded user agent.
    pub devices: BTreeMap<String, DeviceTruth>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExploitTruth {
    pub rule: String,
    pub source: String,
    pub count: u64,
    /// succeeded, blocked or failed, as the audit sums up a source's answers.
    #[serde(default)]
    pub outcome: String,
    /// The account a ProxyShell token named, as the audit writes it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub impersonated: Vec<String>,
}

/// A source that failed to sign in as many users.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SprayTruth {
    pub source: String,
    /// Distinct users, all within one window.
    pub users: u64,
    pub failures: u64,
}

/// A user with many failed sign-ins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BruteTruth {
    pub user: String,
    pub failures: u64,
    pub sources: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findings {
    #[serde(rename = "cloud-credentials")]
    pub cloud_credentials: Vec<String>,
    #[serde(rename = "ews-non-outlook")]
    pub ews_non_outlook: Vec<String>,
    #[serde(rename = "mobile-on-ews")]
    pub mobile_on_ews: Vec<String>,
    #[serde(rename = "cloud-token", default)]
    pub cloud_token: Vec<String>,
    #[serde(rename = "exploit-attempt")]
    pub exploit_attempt: Vec<ExploitTruth>,
    #[serde(rename = "web-shell", default)]
    pub web_shell: Vec<ExploitTruth>,
    #[serde(rename = "data-theft", default)]
    pub data_theft: Vec<ExploitTruth>,
    #[serde(rename = "scanner", default)]
    pub scanner: Vec<ExploitTruth>,
    #[serde(rename = "outside-vdirs", default)]
    pub outside_vdirs: Vec<ExploitTruth>,
    #[serde(rename = "password-spray", default)]
    pub password_spray: Vec<SprayTruth>,
    #[serde(rename = "brute-force", default)]
    pub brute_force: Vec<BruteTruth>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyTruth {
    pub denied_requests: u64,
    pub affected_users: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionTruth {
    pub denied_requests: u64,
    pub affected_users: Vec<String>,
    pub provision_from_known_devices: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    #[serde(rename = "iis-block-outlook-ua")]
    pub iis_block_outlook_ua: PolicyTruth,
    #[serde(rename = "ews-allow-outlook-only")]
    pub ews_allow_outlook_only: PolicyTruth,
    #[serde(rename = "block-outlook-provision")]
    pub block_outlook_provision: ProvisionTruth,
    #[serde(rename = "block-new-outlook-devices")]
    pub block_new_outlook_devices: PolicyTruth,
}

/// The expected `casguard audit --format json` result for a generated set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truth {
    /// Start of the last generated day, RFC 3339; devices seen before it are known.
    pub cutover: String,
    /// Only back-end logs were written: back-end hops count as person requests.
    pub backend_only: bool,
    pub summary: Summary,
    /// Person requests per protocol key; zero counts omitted.
    pub protocols: BTreeMap<String, u64>,
    /// Person requests per client id; zero counts omitted.
    pub clients: BTreeMap<String, u64>,
    /// Person requests per authentication type (`unknown` for IIS lines);
    /// only when HttpProxy logs are written.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_types: BTreeMap<String, u64>,
    pub users: BTreeMap<String, UserTruth>,
    pub findings: Findings,
    pub policies: Policies,
}

const F_EWS_NON_OUTLOOK: u8 = 1;
const F_MOBILE_WEB: u8 = 2;
const F_IIS_DENIED: u8 = 4;
const F_EWS_DENIED: u8 = 8;
const ALIAS_LOGGED: u8 = 1;
const ALIAS_PARAM: u8 = 2;

/// Counters for one writer; merged at the end. Per-device arrays have two
/// slots per agent: its ActiveSync requests (keyed by device id) and the
/// rest (keyed by user agent), as an audit keys them.
#[derive(Clone)]
pub(crate) struct Acc {
    pub s: Summary,
    protocols: [u64; Proto::COUNT],
    clients: [u64; Client::COUNT],
    agent_requests: Vec<u64>,
    agent_aliases: Vec<u8>,
    agent_flags: Vec<u8>,
    agent_first: Vec<i64>,
    agent_provisions: Vec<u64>,
    iis_denied: u64,
    ews_denied: u64,
    exploit: Vec<u64>,
    /// Per attack source, lines that succeeded, were blocked, failed.
    exploit_outcomes: Vec<[u64; 3]>,
    /// Per attack source: sent a ProxyShell token naming an account.
    exploit_impersonating: Vec<bool>,
    /// Per sign-in attack: attempts written and the targets they named (a bit each).
    signin: Vec<(u64, u64)>,
    /// (user key, name as logged) -> failed sign-ins, on the `MSRPC` device.
    signin_users: BTreeMap<(String, String), u64>,
    /// Person requests by index into `AUTH_KEYS`.
    auth: [u64; AUTH_KEYS.len()],
}

impl Acc {
    pub fn new(pop: &Population) -> Acc {
        let n = pop.agents.len() * 2;
        Acc {
            s: Summary::default(),
            protocols: [0; Proto::COUNT],
            clients: [0; Client::COUNT],
            agent_requests: vec![0; n],
            agent_aliases: vec![0; n],
            agent_flags: vec![0; n],
            agent_first: vec![i64::MAX; n],
            agent_provisions: vec![0; n],
            iis_denied: 0,
            ews_denied: 0,
            exploit: vec![0; pop.exploits.len()],
            exploit_outcomes: vec![[0; 3]; pop.exploits.len()],
            exploit_impersonating: vec![false; pop.exploits.len()],
            signin: vec![(0, 0); pop.signin_attacks.len()],
            signin_users: BTreeMap::new(),
            auth: [0; AUTH_KEYS.len()],
        }
    }

    pub fn merge(&mut self, o: &Acc) {
        let s = &mut self.s;
        s.lines += o.s.lines;
        s.malformed += o.s.malformed;
        s.requests += o.s.requests;
        s.backend_duplicates += o.s.backend_duplicates;
        s.iis_duplicates += o.s.iis_duplicates;
        s.probes += o.s.probes;
        s.exploit_attempts += o.s.exploit_attempts;
        s.attacks += o.s.attacks;
        s.failed_sign_ins += o.s.failed_sign_ins;
        s.machine += o.s.machine;
        for (a, b) in self.protocols.iter_mut().zip(o.protocols) {
            *a += b;
        }
        for (a, b) in self.clients.iter_mut().zip(o.clients) {
            *a += b;
        }
        for i in 0..self.agent_requests.len() {
            self.agent_requests[i] += o.agent_requests[i];
            self.agent_aliases[i] |= o.agent_aliases[i];
            self.agent_flags[i] |= o.agent_flags[i];
            self.agent_first[i] = self.agent_first[i].min(o.agent_first[i]);
            self.agent_provisions[i] += o.agent_provisions[i];
        }
        self.iis_denied += o.iis_denied;
        self.ews_denied += o.ews_denied;
        for (a, b) in self.exploit.iter_mut().zip(&o.exploit) {
            *a += b;
        }
        for (a, b) in self.exploit_outcomes.iter_mut().zip(&o.exploit_outcomes) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (a, b) in self.exploit_impersonating.iter_mut().zip(&o.exploit_impersonating) {
            *a |= b;
        }
        for (a, b) in self.signin.iter_mut().zip(&o.signin) {
            a.0 += b.0;
            a.1 |= b.1;
        }
        for (k, n) in &o.signin_users {
            *self.signin_users.entry(k.clone()).or_default() += n;
        }
        for (a, b) in self.auth.iter_mut().zip(o.auth) {
            *a += b;
        }
    }

    /// Counts one written IIS line. `day_start` is the line's day in seconds since the first day.
    pub fn count(&mut self, pop: &Population, ev: &Event, day_start: i64, backend_only: bool) {
        self.count_as(pop, ev, day_start, backend_only, 0);
    }

    /// Counts one written HttpProxy line, whose authentication type is `auth`
    /// (an index into `AUTH_KEYS`).
    pub fn count_proxy(&mut self, pop: &Population, ev: &Event, day_start: i64, auth: usize) {
        if ev.kind == Kind::SignInFail {
            // HttpProxy's line of a failed sign-in names no user and no
            // reason: an anonymous 401 to the audit.
            self.s.lines += 1;
            self.s.requests += 1;
            self.auth[auth] += 1;
            self.protocols[Proto::Rpc as usize] += 1;
            self.clients[Client::OutlookWindows as usize] += 1;
            return;
        }
        self.count_as(pop, ev, day_start, false, auth);
    }

    /// Counts an IIS front-end line whose request the HttpProxy log holds too.
    pub fn duplicate(&mut self) {
        self.s.lines += 1;
        self.s.iis_duplicates += 1;
    }

    fn count_as(&mut self, pop: &Population, ev: &Event, day_start: i64, backend_only: bool, auth: usize) {
        self.s.lines += 1;
        match ev.kind {
            Kind::Malformed => self.s.malformed += 1,
            Kind::Exploit => {
                let rule = pop.exploits[ev.agent as usize].rule;
                self.s.attacks += 1;
                if rule.kind() == "exploit" {
                    self.s.exploit_attempts += 1;
                }
                self.exploit[ev.agent as usize] += 1;
                let slot = match outcome(rule.status(ev.arg)) {
                    "succeeded" => 0,
                    "blocked" => 1,
                    _ => 2,
                };
                self.exploit_outcomes[ev.agent as usize][slot] += 1;
                self.exploit_impersonating[ev.agent as usize] |= rule.impersonates(ev.arg).is_some();
            }
            Kind::SignInFail => {
                let attack = &pop.signin_attacks[ev.agent as usize];
                let j = ev.arg as usize % attack.targets.len();
                self.s.requests += 1;
                self.s.failed_sign_ins += 1;
                self.auth[auth] += 1;
                self.protocols[Proto::Rpc as usize] += 1;
                self.clients[Client::OutlookWindows as usize] += 1;
                let (logged, key) = &attack.targets[j];
                *self.signin_users.entry((key.clone(), logged.clone())).or_default() += 1;
                let seen = &mut self.signin[ev.agent as usize];
                seen.0 += 1;
                seen.1 |= 1 << j;
            }
            Kind::AmProbe | Kind::EasProbe | Kind::EwsProbe | Kind::OwaMonProbe => self.s.probes += 1,
            Kind::MachineRpc | Kind::MachinePs => self.s.machine += 1,
            k if ev.site() == BE && !backend_only => {
                debug_assert!(k.is_person());
                self.s.backend_duplicates += 1;
            }
            kind => self.person(pop, ev, kind, day_start, auth),
        }
    }

    fn person(&mut self, pop: &Population, ev: &Event, kind: Kind, day_start: i64, auth: usize) {
        let a = &pop.agents[ev.agent as usize];
        let ai = ev.agent as usize * 2 + usize::from(kind != Kind::As);
        let proto = kind.proto();
        let client = if kind == Kind::As { a.client } else { a.web_client };
        self.s.requests += 1;
        self.auth[auth] += 1;
        self.protocols[proto as usize] += 1;
        self.clients[client as usize] += 1;
        let alias = match (ev.auth, kind) {
            (Auth::Logged, _) => ALIAS_LOGGED,
            (Auth::Param, Kind::As) => ALIAS_PARAM,
            _ => 0,
        };
        // IIS's filter counts every person request; affected users only
        // named ones. The EWS access policy, as Exchange applies it once IIS
        // signed the caller in, only requests that name a user: an anonymous
        // first leg is answered by IIS's challenge.
        let mut flags = 0;
        if kind == Kind::As && a.ua_outlook_10 {
            self.iis_denied += 1;
            flags |= F_IIS_DENIED;
        }
        if proto == Proto::Ews && !a.ews_allowed && alias != 0 {
            self.ews_denied += 1;
            flags |= F_EWS_DENIED;
        }
        if alias == 0 {
            return;
        }
        if proto == Proto::Ews && !client.outlook() {
            flags |= F_EWS_NON_OUTLOOK;
        }
        if proto.mailbox_web() && client.mobile() {
            flags |= F_MOBILE_WEB;
        }
        self.agent_flags[ai] |= flags;
        self.agent_aliases[ai] |= alias;
        self.agent_requests[ai] += 1;
        let at = day_start + i64::from(ev.t());
        self.agent_first[ai] = self.agent_first[ai].min(at);
        if kind == Kind::As && Cmd::from_u8(ev.arg) == Cmd::Provision && a.client.app() == Client::OutlookMobile {
            self.agent_provisions[ai] += 1;
        }
    }

    /// The truncated gzip member: one malformed line.
    pub fn truncated(&mut self) {
        self.s.lines += 1;
        self.s.malformed += 1;
    }

    /// The truth of what was counted. With `httpproxy` (HttpProxy logs were
    /// written), people's requests by authentication type too, and devices
    /// keyed by user agent as HttpProxy logs them: commas become spaces.
    pub fn finish(
        &self,
        pop: &Population,
        cutover: String,
        cutover_at: i64,
        backend_only: bool,
        httpproxy: bool,
    ) -> Truth {
        let mut t = Truth { cutover, backend_only, summary: self.s.clone(), ..Truth::default() };
        if httpproxy {
            for (key, n) in AUTH_KEYS.iter().zip(self.auth) {
                if n > 0 {
                    t.auth_types.insert(key.to_string(), n);
                }
            }
        }
        for p in Proto::all() {
            if self.protocols[p as usize] > 0 {
                t.protocols.insert(p.key().to_string(), self.protocols[p as usize]);
            }
        }
        for c in Client::all() {
            if self.clients[c as usize] > 0 {
                t.clients.insert(c.id().to_string(), self.clients[c as usize]);
            }
        }
        let mut aliases: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        // (user, device key) -> (first seen, outlook-mobile provisions)
        let mut devices: BTreeMap<(&str, String), (i64, u64)> = BTreeMap::new();
        let (mut ews, mut mobile) = (BTreeSet::new(), BTreeSet::new());
        let (mut iis, mut ewsp) = (BTreeSet::new(), BTreeSet::new());
        // As the audit keys them: (user, device key) -> (client, keyed by a device id, requests).
        let mut keyed: BTreeMap<(&str, String), (Client, bool, u64)> = BTreeMap::new();
        for ai in 0..self.agent_requests.len() {
            if self.agent_requests[ai] == 0 {
                continue;
            }
            let a = &pop.agents[ai / 2];
            let by_id = ai % 2 == 0;
            // HttpProxy logs write a user agent's commas as spaces.
            let ua_key = if httpproxy { a.ua.replace(',', " ") } else { a.ua.clone() };
            let (device_key, client) = if by_id { (a.device_key.clone(), a.client) } else { (ua_key, a.web_client) };
            let key = pop.users[a.user].key.as_str();
            keyed.entry((key, device_key.clone())).or_insert((client, by_id, 0)).2 += self.agent_requests[ai];
            let al = aliases.entry(key).or_default();
            if self.agent_aliases[ai] & ALIAS_LOGGED != 0 {
                al.insert(&a.auth_alias);
            }
            if self.agent_aliases[ai] & ALIAS_PARAM != 0 {
                al.insert(&a.param_alias);
            }
            let e = devices.entry((key, device_key.clone())).or_insert((i64::MAX, 0));
            e.0 = e.0.min(self.agent_first[ai]);
            e.1 += self.agent_provisions[ai];
            let f = self.agent_flags[ai];
            if f & F_EWS_NON_OUTLOOK != 0 {
                ews.insert(key);
            }
            if f & F_MOBILE_WEB != 0 {
                mobile.insert(key);
            }
            if f & F_IIS_DENIED != 0 {
                iis.insert(key);
            }
            if f & F_EWS_DENIED != 0 {
                ewsp.insert(key);
            }
        }
        // Failed sign-ins: people's requests on the `MSRPC` device (Outlook's RPC over HTTP).
        for ((user, logged), n) in &self.signin_users {
            keyed.entry((user.as_str(), "MSRPC".to_string())).or_insert((Client::OutlookWindows, false, 0)).2 += n;
            aliases.entry(user.as_str()).or_default().insert(logged.as_str());
        }
        // One phone, one device: a user's requests without a device id join
        // that user's one ActiveSync device of the same app, when there is one.
        let mut joined: BTreeMap<(&str, &str), (Client, u64)> = BTreeMap::new();
        for ((user, device), &(client, by_id, requests)) in &keyed {
            let user = *user;
            let phones: Vec<&str> = keyed
                .iter()
                .filter(|((u, _), (c, id, _))| *u == user && *id && c.app() == client.app())
                .map(|((_, d), _)| d.as_str())
                .collect();
            let target = match phones[..] {
                [phone] if !by_id => phone,
                _ => device.as_str(),
            };
            let owner = keyed[&(user, target.to_string())].0;
            joined.entry((user, target)).or_insert((owner, 0)).1 += requests;
        }
        let (mut cloud, mut token) = (BTreeSet::new(), BTreeSet::new());
        for (&(user, device), &(client, requests)) in &joined {
            let u = t.users.entry(user.to_string()).or_default();
            u.requests += requests;
            u.devices.insert(device.to_string(), DeviceTruth { requests, client: client.id().to_string() });
            if client.cloud_credentials() {
                cloud.insert(user);
            }
            if client.cloud_token() {
                token.insert(user);
            }
        }
        for (key, set) in aliases {
            if let Some(u) = t.users.get_mut(key) {
                u.aliases = set.into_iter().map(str::to_string).collect();
            }
        }
        let names = |s: BTreeSet<&str>| s.into_iter().map(str::to_string).collect::<Vec<_>>();
        let (mut prov_all, mut prov_known, mut new_users) = (0, 0, BTreeSet::new());
        for ((user, _), (first, prov)) in &devices {
            prov_all += prov;
            if *first < cutover_at {
                prov_known += prov;
            } else if *prov > 0 {
                new_users.insert(*user);
            }
        }
        let prov_users: BTreeSet<&str> = devices.iter().filter(|(_, v)| v.1 > 0).map(|(k, _)| k.0).collect();
        t.findings.cloud_credentials = names(cloud);
        t.findings.ews_non_outlook = names(ews);
        t.findings.mobile_on_ews = names(mobile);
        t.findings.cloud_token = names(token);
        let mut exploits: Vec<ExploitTruth> = pop
            .exploits
            .iter()
            .zip(&self.exploit)
            .zip(&self.exploit_outcomes)
            .zip(&self.exploit_impersonating)
            .filter(|(((_, n), _), _)| **n > 0)
            .map(|(((s, n), o), impersonating)| {
                // As the audit sums up: succeeded when any did, else failed, else blocked.
                let outcome = if o[0] > 0 {
                    "succeeded"
                } else if o[2] > 0 {
                    "failed"
                } else {
                    "blocked"
                };
                let impersonated =
                    s.rule.impersonates(1).filter(|_| *impersonating).map(String::from).into_iter().collect();
                ExploitTruth {
                    rule: s.rule.name().into(),
                    source: s.ip.clone(),
                    count: *n,
                    outcome: outcome.into(),
                    impersonated,
                }
            })
            .collect();
        exploits.sort_by(|a, b| (&a.rule, &a.source).cmp(&(&b.rule, &b.source)));
        for e in exploits {
            let kind = pop.exploits.iter().find(|s| s.rule.name() == e.rule).map_or("exploit", |s| s.rule.kind());
            let list = match kind {
                "web-shell" => &mut t.findings.web_shell,
                "data-theft" => &mut t.findings.data_theft,
                "scanner" => &mut t.findings.scanner,
                "outside-vdirs" => &mut t.findings.outside_vdirs,
                _ => &mut t.findings.exploit_attempt,
            };
            list.push(e);
        }
        self.signin_findings(pop, &mut t.findings);
        t.policies.iis_block_outlook_ua = PolicyTruth { denied_requests: self.iis_denied, affected_users: names(iis) };
        t.policies.ews_allow_outlook_only =
            PolicyTruth { denied_requests: self.ews_denied, affected_users: names(ewsp) };
        t.policies.block_outlook_provision = ProvisionTruth {
            denied_requests: prov_all,
            affected_users: names(prov_users),
            provision_from_known_devices: prov_known,
        };
        t.policies.block_new_outlook_devices =
            PolicyTruth { denied_requests: prov_all - prov_known, affected_users: names(new_users) };
        t
    }

    /// The sprays and brute forces the written attempts make under the
    /// default thresholds (5 users in 20 minutes; 100 failures in 10): each
    /// attack's attempts all fall within its window.
    fn signin_findings(&self, pop: &Population, f: &mut Findings) {
        for (attack, &(attempts, seen)) in pop.signin_attacks.iter().zip(&self.signin) {
            let targets: BTreeSet<&str> = (0..attack.targets.len())
                .filter(|j| seen >> j & 1 != 0)
                .map(|j| attack.targets[j].1.as_str())
                .collect();
            if attack.ips.len() == 1 && targets.len() >= 5 {
                debug_assert!(attack.every * attack.attempts <= 20 * 60);
                f.password_spray.push(SprayTruth {
                    source: attack.ips[0].clone(),
                    users: targets.len() as u64,
                    failures: attempts,
                });
            }
            if let (1, Some(user)) = (targets.len(), targets.first()) {
                if attempts >= 100 {
                    debug_assert!(attack.every * attack.attempts <= 10 * 60);
                    // Sources of all the user's failures, as the audit lists them, sprays included.
                    let mut sources: BTreeSet<&str> = BTreeSet::new();
                    for (other, &(n, seen)) in pop.signin_attacks.iter().zip(&self.signin) {
                        let named = (0..other.targets.len()).any(|j| seen >> j & 1 != 0 && other.targets[j].1 == *user);
                        if named {
                            sources.extend(other.ips.iter().take(n as usize).map(String::as_str));
                        }
                    }
                    let sources = sources.len() as u64;
                    f.brute_force.push(BruteTruth { user: user.to_string(), failures: attempts, sources });
                }
            }
        }
        f.password_spray.sort_by(|a, b| a.source.cmp(&b.source));
        f.brute_force.sort_by(|a, b| a.user.cmp(&b.user));
    }
}
