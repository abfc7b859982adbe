//! One day of traffic as compact events, sorted per output file before rendering.

use crate::model::{Auth, Cmd, Kind, Rule};
use crate::population::{AgentKind, Population};
use crate::rng::Rng;

pub(crate) const FE: u8 = 0;
pub(crate) const BE: u8 = 1;
const H: u32 = 3600;
const DAY: u32 = 86_400;

/// One log line to be. `key` orders lines: file slot, then time, then creation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    pub key: u64,
    /// Agent index; server index for probes and machines; source for exploits.
    pub agent: u32,
    /// Details (ids, addresses, timings) derive from this word; a back-end
    /// twin copies it so its query matches the front-end line.
    pub rnd: u32,
    pub kind: Kind,
    /// ActiveSync command code, or a variant.
    pub arg: u8,
    pub auth: Auth,
    /// For back-end hops: the front-end server that proxied the request.
    pub fe: u8,
}

impl Event {
    /// Handled by the front end's HttpProxy module, so in its log too: not
    /// `GET /` (IIS answers it with a redirect to OWA), nor an attack on a
    /// folder none of Exchange's virtual directories (`/1/data.rar`,
    /// `/nmaplowercheck…`), which no HttpProxy module serves.
    pub fn logged_by_proxy(&self, pop: &Population) -> bool {
        match self.kind {
            Kind::Root => false,
            Kind::Exploit => match pop.exploits[self.agent as usize].rule {
                Rule::DataTheft | Rule::OutsideVdirs => false,
                Rule::Scanner => self.arg & 1 == 0,
                _ => true,
            },
            _ => true,
        }
    }

    pub fn slot(&self) -> usize {
        (self.key >> 52) as usize
    }
    pub fn server(&self) -> usize {
        self.slot() >> 1
    }
    pub fn site(&self) -> u8 {
        (self.slot() & 1) as u8
    }
    pub fn t(&self) -> u32 {
        ((self.key >> 35) & 0x1_FFFF) as u32
    }
}

/// Where a malformed line goes: (day, server, site).
pub(crate) type MalformedSpot = (u32, usize, u8);

pub(crate) struct DayGen<'a> {
    pop: &'a Population,
    r: Rng,
    scale: f64,
    day: u32,
    days: u32,
    write_fe: bool,
    backend: bool,
    seq: u64,
    pub events: Vec<Event>,
}

impl<'a> DayGen<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pop: &'a Population,
        seed: u64,
        scale: f64,
        day: u32,
        days: u32,
        write_fe: bool,
        backend: bool,
        capacity: usize,
    ) -> Self {
        DayGen {
            pop,
            r: Rng::derive(seed, 0xda7 ^ (u64::from(day) << 20)),
            scale,
            day,
            days,
            write_fe,
            backend,
            seq: 0,
            events: Vec::with_capacity(capacity),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, t: u32, server: usize, site: u8, kind: Kind, arg: u8, auth: Auth, agent: u32, fe: u8, rnd: u32) {
        let slot = (server as u64) * 2 + u64::from(site);
        let key = (slot << 52) | (u64::from(t.min(DAY - 1)) << 35) | self.seq;
        self.seq += 1;
        self.events.push(Event { key, agent, rnd, kind, arg, auth, fe });
    }

    /// A person request on a front end, and (sometimes) its proxied twin on
    /// the mailbox's back end. `fixed` requests always get a twin, so every
    /// device is visible in back-end-only sets too.
    fn person(&mut self, t: u32, kind: Kind, arg: u8, auth: Auth, agent: usize, fixed: bool) {
        let fe = self.r.below(self.pop.servers.len() as u32) as usize;
        let rnd = self.r.next_u32();
        // The back-end-heavy profile proxies every signed-in request. The
        // forms sign-in is answered by the front end's FBA module itself.
        let twin =
            auth == Auth::Logged && kind != Kind::OwaAuth && (fixed || self.r.chance(0.6) || self.pop.backend_heavy);
        if self.write_fe {
            self.push(t, fe, FE, kind, arg, auth, agent as u32, 0, rnd);
        }
        if twin && self.backend {
            let mbx = self.pop.users[self.pop.agents[agent].user].mailbox;
            let t2 = t + self.r.below(2);
            self.push(t2, mbx, BE, kind, arg, auth, agent as u32, fe as u8, rnd);
        }
    }

    fn when(&mut self, lo: u32, hi: u32) -> u32 {
        if hi <= lo {
            return lo.min(DAY - 1);
        }
        lo + self.r.below(hi - lo)
    }

    fn count(&mut self, lo: u32, hi: u32) -> u32 {
        let base = self.r.range(lo, hi);
        self.r.scaled(base, self.scale)
    }

    pub fn generate(&mut self, malformed: &[MalformedSpot]) {
        let last = self.day + 1 == self.days;
        for ai in 0..self.pop.agents.len() {
            self.agent_day(ai, last);
        }
        for s in 0..self.pop.servers.len() {
            self.server_day(s);
        }
        if self.write_fe {
            for (i, src) in self.pop.exploits.iter().enumerate() {
                if i as u32 % self.days != self.day {
                    continue;
                }
                let server = i % self.pop.servers.len();
                for j in 0..src.lines {
                    // After noon: clear of the morning layout without X-Forwarded-For.
                    let t = self.when(12 * H, 23 * H);
                    let rnd = self.r.next_u32();
                    self.push(t, server, FE, Kind::Exploit, j as u8, Auth::Anonymous, i as u32, 0, rnd);
                }
            }
        }
        if self.write_fe {
            for (i, attack) in self.pop.signin_attacks.iter().enumerate() {
                if attack.day.min(self.days - 1) != self.day {
                    continue;
                }
                let server = i % self.pop.servers.len();
                for j in 0..attack.attempts {
                    let t = attack.start + j * attack.every;
                    let rnd = self.r.next_u32();
                    self.push(t, server, FE, Kind::SignInFail, j as u8, Auth::Logged, i as u32, 0, rnd);
                }
            }
        }
        let victim =
            self.pop.agents.iter().position(|a| a.device_type.is_empty() && a.ua_log.contains('+')).unwrap_or(0);
        for (i, &(day, server, site)) in malformed.iter().enumerate() {
            if day == self.day {
                let t = self.when(H, 23 * H);
                let rnd = self.r.next_u32();
                self.push(
                    t,
                    server,
                    site,
                    Kind::Malformed,
                    (i % 3) as u8,
                    Auth::Logged,
                    victim as u32,
                    server as u8,
                    rnd,
                );
            }
        }
    }

    fn agent_day(&mut self, ai: usize, last: bool) {
        let a = &self.pop.agents[ai];
        if a.new_device && !last {
            return;
        }
        let kind = a.kind;
        let s = Kind::As;
        match kind {
            AgentKind::OutlookMobile | AgentKind::IosMail | AgentKind::AndroidMail => {
                let (new, phase, om) = (a.new_device, a.phase, kind == AgentKind::OutlookMobile);
                let t0 = if new { self.when(6 * H, 20 * H) } else { self.when(0, 2 * H) };
                if om {
                    if self.r.chance(0.3) {
                        self.person(t0, Kind::AutodJson, 0, Auth::Anonymous, ai, true);
                    }
                    self.person(t0, Kind::AutodJson, 0, Auth::Logged, ai, true);
                }
                let prov = Cmd::Provision as u8;
                if new {
                    self.person(t0 + 1, s, prov, Auth::Logged, ai, true);
                    self.person(t0 + 2, s, prov, Auth::Logged, ai, true);
                } else {
                    if self.r.chance(0.7) {
                        self.person(t0 + 1, s, Cmd::Ping as u8, Auth::Param, ai, true);
                    }
                    // Existing partnerships re-provision now and then.
                    let period = if om { 2 } else { 3 };
                    let turn = (self.day + phase) % period;
                    if turn == 0 {
                        let tp = self.when(t0 + 10, 23 * H);
                        self.person(tp, s, prov, Auth::Logged, ai, true);
                        self.person(tp + 1, s, prov, Auth::Logged, ai, true);
                    }
                }
                self.person(t0 + 3, s, Cmd::FolderSync as u8, Auth::Logged, ai, true);
                if self.r.chance(0.5) {
                    self.person(t0 + 4, s, Cmd::Settings as u8, Auth::Logged, ai, true);
                }
                for (cmd, lo, hi) in
                    [(Cmd::Sync, 6, 14), (Cmd::Ping, 8, 20), (Cmd::ItemOperations, 0, 3), (Cmd::SendMail, 0, 2)]
                {
                    let n = self.count(lo, hi);
                    for _ in 0..n {
                        let t = self.when(t0 + 5, DAY);
                        self.person(t, s, cmd as u8, Auth::Logged, ai, false);
                    }
                }
            }
            AgentKind::OutlookWindows { rpc } => {
                let companion = a.companion;
                let w0 = self.when(7 * H, 9 * H + 1800);
                let w1 = self.when(16 * H, 19 * H);
                if rpc {
                    self.person(w0, Kind::RpcIn, 0, Auth::Anonymous, ai, true);
                    self.person(w0, Kind::RpcIn, 0, Auth::Logged, ai, true);
                    self.person(w0, Kind::RpcOut, 0, Auth::Anonymous, ai, true);
                    self.person(w0, Kind::RpcOut, 0, Auth::Logged, ai, true);
                    let n = self.count(5, 15);
                    for _ in 0..n {
                        let t = self.when(w0 + 1, w1);
                        self.person(t, Kind::RpcIn, 0, Auth::Logged, ai, false);
                        self.person(t, Kind::RpcOut, 0, Auth::Logged, ai, false);
                    }
                    return;
                }
                self.person(w0, Kind::AutodXml, 0, Auth::Anonymous, ai, true);
                self.person(w0, Kind::AutodXml, 0, Auth::Logged, ai, true);
                if !companion {
                    self.person(w0 + 1, Kind::MapiEmsmdb, 0, Auth::Anonymous, ai, true);
                    self.person(w0 + 1, Kind::MapiEmsmdb, 0, Auth::Logged, ai, true);
                    self.person(w0 + 2, Kind::MapiNspi, 0, Auth::Logged, ai, true);
                }
                if self.r.chance(0.7) {
                    self.person(w0 + 3, Kind::Oab, 0, Auth::Logged, ai, true);
                }
                self.person(w0 + 4, Kind::Ews, 0, Auth::Anonymous, ai, true);
                self.person(w0 + 4, Kind::Ews, 0, Auth::Logged, ai, true);
                let mut plan = vec![(Kind::Ews, 3, 10), (Kind::AutodXml, 1, 3)];
                if !companion {
                    plan.extend([(Kind::MapiEmsmdb, 15, 40), (Kind::MapiNspi, 2, 6)]);
                }
                for (k, lo, hi) in plan {
                    let n = self.count(lo, hi);
                    for _ in 0..n {
                        let t = self.when(w0 + 5, w1);
                        self.person(t, k, 0, Auth::Logged, ai, false);
                    }
                }
            }
            AgentKind::OutlookMac | AgentKind::MacMail | AgentKind::EmClient => {
                let w0 = self.when(6 * H, 10 * H);
                let w1 = self.when(18 * H, 23 * H);
                if kind != AgentKind::EmClient {
                    self.person(w0, Kind::AutodXml, 0, Auth::Anonymous, ai, true);
                    self.person(w0, Kind::AutodXml, 0, Auth::Logged, ai, true);
                }
                self.person(w0 + 1, Kind::Ews, 0, Auth::Anonymous, ai, true);
                self.person(w0 + 1, Kind::Ews, 0, Auth::Logged, ai, true);
                let (lo, hi) = if kind == AgentKind::OutlookMac { (10, 25) } else { (5, 15) };
                let n = self.count(lo, hi);
                for _ in 0..n {
                    let t = self.when(w0 + 2, w1);
                    self.person(t, Kind::Ews, 0, Auth::Logged, ai, false);
                }
            }
            AgentKind::EwsApp => {
                let t0 = self.when(0, H);
                self.person(t0, Kind::Ews, 0, Auth::Logged, ai, true);
                let n = self.count(3, 8);
                for _ in 0..n {
                    let t = self.when(t0 + 1, DAY);
                    self.person(t, Kind::Ews, 0, Auth::Logged, ai, false);
                }
            }
            AgentKind::Browser | AgentKind::MobileSafari => {
                let safari = kind == AgentKind::MobileSafari;
                let admin = self.pop.users[a.user].admin;
                let w0 = if safari { self.when(17 * H, 20 * H) } else { self.when(7 * H, 10 * H) };
                let w1 = if safari { self.when(21 * H, 23 * H) } else { self.when(15 * H, 18 * H) };
                if !safari && self.r.chance(0.5) {
                    self.person(w0, Kind::Root, 0, Auth::Anonymous, ai, true);
                }
                self.person(w0, Kind::OwaLogon, 0, Auth::Anonymous, ai, true);
                // Forms authentication logs the user on the sign-in's own line
                // (tests/data/iis: msqa-228014, ipban-owa-auth-invalid-credentials).
                self.person(w0 + 20, Kind::OwaAuth, 0, Auth::Logged, ai, true);
                self.person(w0 + 21, Kind::Owa, 0, Auth::Logged, ai, true);
                let (lo, hi) = if safari { (2, 6) } else { (5, 20) };
                let n = self.count(lo, hi);
                for _ in 0..n {
                    let t = self.when(w0 + 22, w1);
                    let action = self.r.below(6) as u8;
                    self.person(t, Kind::OwaSvc, action, Auth::Logged, ai, false);
                }
                if admin && !safari {
                    let t = self.when(w0 + 60, w1);
                    self.person(t, Kind::Ecp, 0, Auth::Logged, ai, true);
                    let n = self.r.range(1, 4);
                    for i in 0..n {
                        self.person(t + 5 + i * 7, Kind::EcpDdi, i as u8, Auth::Logged, ai, true);
                    }
                }
            }
            AgentKind::WinRm => {
                let n = self.r.range(1, 3);
                for _ in 0..n {
                    let t = self.when(8 * H, 18 * H);
                    self.person(t, Kind::PowerShell, 0, Auth::Logged, ai, true);
                }
            }
        }
    }

    fn server_day(&mut self, s: usize) {
        let n_servers = self.pop.servers.len();
        if self.write_fe {
            let n = self.count(24, 30);
            for i in 0..n {
                let t = self.when(0, DAY);
                let rnd = self.r.next_u32();
                self.push(t, s, FE, Kind::AmProbe, (i % 16) as u8, Auth::Anonymous, s as u32, 0, rnd);
            }
            for _ in 0..4 {
                let t = self.when(0, DAY);
                let rnd = self.r.next_u32();
                self.push(t, s, FE, Kind::EasProbe, 0, Auth::Logged, s as u32, 0, rnd);
            }
            // Another server's computer account talks to this front end.
            let other = ((s + 1) % n_servers) as u32;
            let t = self.when(H, 23 * H);
            let rnd = self.r.next_u32();
            self.push(t, s, FE, Kind::MachineRpc, 0, Auth::Logged, other, 0, rnd);
            self.push(t, s, FE, Kind::MachineRpc, 1, Auth::Logged, other, 0, rnd);
            let t = self.when(H, 23 * H);
            let rnd = self.r.next_u32();
            self.push(t, s, FE, Kind::MachinePs, 0, Auth::Logged, other, 0, rnd);
        }
        if self.backend {
            let n = self.count(12, 16);
            for _ in 0..n {
                let t = self.when(0, DAY);
                let rnd = self.r.next_u32();
                self.push(t, s, BE, Kind::EwsProbe, 0, Auth::Logged, s as u32, 0, rnd);
            }
            let n = self.count(6, 8);
            for _ in 0..n {
                let t = self.when(0, DAY);
                let rnd = self.r.next_u32();
                self.push(t, s, BE, Kind::OwaMonProbe, 0, Auth::Logged, s as u32, 0, rnd);
            }
        }
    }
}
