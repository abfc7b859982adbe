//! The fixed cast: users, their devices (agents), servers, health mailboxes
//! and attackers. Drawn from the seed alone, so a bigger `--target-bytes`
//! adds lines but never people or devices.

use crate::model::{Client, Rule};
use crate::rng::Rng;

pub(crate) const DOMAIN: &str = "contoso.com";
pub(crate) const NETBIOS: &str = "CONTOSO";
pub(crate) const HOST: &str = "mail.contoso.com";

const FIRST: &[&str] = &[
    "John", "Anna", "Mark", "Julia", "Peter", "Sara", "David", "Laura", "Tom", "Nina", "Paul", "Eva", "Chris", "Maria",
    "Alex", "Kate", "Brian", "Olga", "Sam", "Lena", "Frank", "Irene", "Victor", "Hanna",
];
const LAST: &[&str] = &[
    "Doe", "Smith", "Miller", "Brown", "Jones", "Garcia", "Wilson", "Moore", "Taylor", "Clark", "Lewis", "Walker",
    "Young", "King", "Wright", "Hill", "Green", "Baker", "Adams", "Nelson", "Carter", "Parker", "Evans", "Turner",
    "Collins", "Murphy", "Cook", "Bell",
];

pub(crate) struct User {
    /// Identity key: lower case.
    pub key: String,
    pub upn: String,
    /// `CONTOSO\jdoe`, sometimes with capitals (`CONTOSO\JDoe`).
    pub downlevel: String,
    /// Server index holding the mailbox: where the back-end hops go.
    pub mailbox: usize,
    pub desktop_ip: String,
    pub mailbox_guid: String,
    pub admin: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AgentKind {
    OutlookMobile,
    IosMail,
    AndroidMail,
    OutlookWindows { rpc: bool },
    OutlookMac,
    MacMail,
    EmClient,
    EwsApp,
    Browser,
    MobileSafari,
    WinRm,
}

/// How an agent's requests reach the front end.
#[derive(Clone, Debug)]
pub(crate) enum Net {
    /// c-ip is the client, no X-Forwarded-For.
    Direct(String),
    /// c-ip is a load balancer; X-Forwarded-For as logged (spaces as `+`).
    Balanced { lb: &'static str, xff: String },
    /// Exchange Online addresses, a new one per request; sometimes through the balancer.
    Microsoft365 { via_lb: bool },
}

/// How the base64 ActiveSync query is written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct B64 {
    pub version: u8,
    /// 0 raw `+/=`, 1 percent-encoded, 2 raw without padding.
    pub style: u8,
}

pub(crate) struct Agent {
    pub user: usize,
    pub kind: AgentKind,
    /// The client its ActiveSync requests are named as (or all its requests, for other agents).
    pub client: Client,
    /// The client its requests without an ActiveSync device are named as
    /// (Outlook mobile's Autodiscover: its user agent alone cannot tell how it signs in).
    pub web_client: Client,
    /// User agent as IIS writes it (`+` for spaces).
    pub ua_log: String,
    /// Decoded user agent: the device key of this agent's requests without a device id.
    pub ua: String,
    /// The device key of the report: ActiveSync device id (hex when binary), else the decoded UA.
    pub device_key: String,
    /// ActiveSync only.
    pub device_id_bytes: Vec<u8>,
    pub device_type: &'static str,
    /// cs-username when authenticated.
    pub auth_alias: String,
    /// ActiveSync `User=` as written in a plain query.
    pub param_raw: String,
    /// The same, decoded: the alias an audit keeps.
    pub param_alias: String,
    pub order: u8,
    pub short_stem: bool,
    pub log_tokens: bool,
    pub b64: Option<B64>,
    pub net: Net,
    /// First seen on the last day only (after the cut-over).
    pub new_device: bool,
    pub phase: u32,
    pub policy_key: u32,
    pub dev_os: &'static str,
    /// UA contains `Outlook-iOS-Android/1.0` (iis-block-outlook-ua).
    pub ua_outlook_10: bool,
    /// UA allowed by ews-allow-outlook-only.
    pub ews_allowed: bool,
    /// Outlook for Windows of an RPC user: only EWS, Autodiscover and OAB.
    pub companion: bool,
}

pub(crate) struct Server {
    pub name: String,
    pub ip: String,
}

pub(crate) struct ExploitSource {
    pub rule: Rule,
    pub ip: String,
    /// Through the load balancer: c-ip private, the source in X-Forwarded-For.
    pub via_lb: bool,
    pub lines: u32,
}

/// Failed sign-ins from one or a few sources: a password spray (many
/// targets, one attempt each) or a brute force (one target, many attempts).
pub(crate) struct SignInAttack {
    /// Sources, taken in turn.
    pub ips: Vec<String>,
    /// Targets as logged in cs-username, with their identity key; taken in turn.
    pub targets: Vec<(String, String)>,
    pub attempts: u32,
    /// Seconds between attempts.
    pub every: u32,
    /// Day of the attack (the last day when the set is shorter).
    pub day: u32,
    /// Second of the day of the first attempt.
    pub start: u32,
}

pub(crate) struct Population {
    pub users: Vec<User>,
    pub agents: Vec<Agent>,
    pub servers: Vec<Server>,
    /// `CONTOSO\HealthMailbox<32 hex>`, one per server.
    pub health: Vec<String>,
    /// `CONTOSO\EX01$`, one per server.
    pub machines: Vec<String>,
    pub exploits: Vec<ExploitSource>,
    pub signin_attacks: Vec<SignInAttack>,
    pub oab_guid: String,
    /// The back-end-heavy profile ([`crate::Profile::BackendHeavy`]): mobile
    /// devices first, every signed-in request proxied to the back end, long
    /// `Log=` tokens.
    pub backend_heavy: bool,
}

pub(crate) fn guid(r: &mut Rng) -> String {
    let mut s = String::with_capacity(36);
    write_guid(&mut s, r);
    s
}

/// A lower-case GUID with dashes, appended without allocating.
pub(crate) fn write_guid(out: &mut String, r: &mut Rng) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let (a, b) = (r.next_u64(), r.next_u64());
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        let word = if i < 16 { a } else { b };
        let nib = (word >> ((15 - (i % 16)) * 4)) & 0xf;
        out.push(HEX[nib as usize] as char);
    }
}

pub(crate) fn hex32(r: &mut Rng, upper: bool) -> String {
    let s = format!("{:016x}{:016x}", r.next_u64(), r.next_u64());
    if upper {
        s.to_ascii_uppercase()
    } else {
        s
    }
}

fn alnum(r: &mut Rng, n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..n).map(|_| *r.pick(A) as char).collect()
}

const UA_OUTLOOK_WIN: &[&str] = &[
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.18025; Pro)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
];
const UA_BROWSER: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
];
pub(crate) const UA_MOBILE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

fn log_form(ua: &str) -> String {
    ua.replace(' ', "+")
}

struct Plan {
    om: Vec<(u8, bool)>, // (variant 0 = 1.0, 1 = iOS/2.0, 2 = Android/2.0; new)
    ios: bool,
    android: Option<(bool, u8)>, // (binary id, version)
    win: Option<bool>,           // rpc
    mac: bool,
    macmail: bool,
    em: bool,
    ewsapp: bool,
    browser: bool,
    safari: bool,
}

impl Population {
    /// `backend_heavy`: see [`Population::backend_heavy`].
    pub fn with_profile(seed: u64, users: usize, servers: usize, backend_heavy: bool) -> Population {
        let mut r = Rng::derive(seed, 0x5eed_0001);
        let servers: Vec<Server> = (0..servers)
            .map(|i| Server { name: format!("EX{:02}", i + 1), ip: format!("10.0.1.{}", 11 + i) })
            .collect();
        let health = (0..servers.len()).map(|_| format!("{NETBIOS}\\HealthMailbox{}", hex32(&mut r, false))).collect();
        let oab_guid = guid(&mut r);
        let machines = servers.iter().map(|s| format!("{NETBIOS}\\{}$", s.name)).collect();

        let mut pop = Population {
            users: Vec::with_capacity(users),
            agents: Vec::new(),
            servers,
            health,
            machines,
            exploits: vec![
                ExploitSource { rule: Rule::ProxyShell, ip: "192.0.2.10".into(), via_lb: false, lines: 3 },
                ExploitSource { rule: Rule::ProxyShell, ip: "192.0.2.77".into(), via_lb: true, lines: 2 },
                ExploitSource { rule: Rule::ProxyLogon, ip: "192.0.2.200".into(), via_lb: false, lines: 2 },
                ExploitSource { rule: Rule::Cve2020_0688, ip: "192.0.2.201".into(), via_lb: false, lines: 2 },
                // From a Microsoft 365 address with Outlook mobile's user agent, as in the winterfell-hunt lines.
                ExploitSource { rule: Rule::WebShell, ip: "40.96.39.253".into(), via_lb: false, lines: 2 },
                ExploitSource { rule: Rule::WebShellCommand, ip: "192.0.2.210".into(), via_lb: true, lines: 2 },
                ExploitSource { rule: Rule::DataTheft, ip: "192.0.2.220".into(), via_lb: false, lines: 3 },
                ExploitSource { rule: Rule::Scanner, ip: "192.0.2.230".into(), via_lb: false, lines: 2 },
                ExploitSource { rule: Rule::OutsideVdirs, ip: "192.0.2.240".into(), via_lb: false, lines: 1 },
            ],
            signin_attacks: Vec::new(),
            oab_guid,
            backend_heavy,
        };

        let mut taken = std::collections::HashSet::new();
        for u in 0..users {
            let first = *r.pick(FIRST);
            let last = *r.pick(LAST);
            let mut key = format!("{}{}", first[..1].to_ascii_lowercase(), last.to_ascii_lowercase());
            if !taken.insert(key.clone()) {
                let mut n = 2;
                while !taken.insert(format!("{key}{n}")) {
                    n += 1;
                }
                key = format!("{key}{n}");
            }
            let downlevel = if r.chance(0.2) {
                // Same account, other spelling: the key must still be lower case.
                format!("{NETBIOS}\\{}{}", &first[..1], &key[1..].replacen(&last.to_ascii_lowercase(), last, 1))
            } else {
                format!("{NETBIOS}\\{key}")
            };
            let user = User {
                upn: format!("{key}@{DOMAIN}"),
                downlevel,
                mailbox: u % pop.servers.len(),
                desktop_ip: format!("10.20.{}.{}", 1 + u / 200, 10 + u % 200),
                mailbox_guid: guid(&mut r),
                admin: u == 0,
                key,
            };
            pop.users.push(user);
            let plan = if backend_heavy { Self::plan_mobile(&mut r, u, users) } else { Self::plan(&mut r, u, users) };
            pop.add_agents(&mut r, u, plan);
        }
        pop.signin_attacks = pop.signin_attacks();
        pop
    }

    /// A password spray against up to seven users and two accounts that do
    /// not exist, one attempt a minute; and a brute force against one user,
    /// 120 attempts in eight minutes from two addresses. Over RPC over HTTP,
    /// as the failure line of Microsoft's account-lockout guide
    /// (`RPC_IN_DATA /rpc/rpcproxy.dll ... 401 1 1326`).
    fn signin_attacks(&self) -> Vec<SignInAttack> {
        let mut targets: Vec<(String, String)> =
            self.users.iter().take(7).map(|u| (u.downlevel.clone(), u.key.clone())).collect();
        for fake in ["administrator", "test"] {
            targets.push((format!("{NETBIOS}\\{fake}"), fake.to_string()));
        }
        let victim = &self.users[3 % self.users.len()];
        vec![
            SignInAttack {
                ips: vec!["198.18.7.7".into()],
                attempts: targets.len() as u32,
                targets,
                every: 60,
                day: 0,
                start: 3 * 3600,
            },
            SignInAttack {
                ips: vec!["198.18.9.9".into(), "198.18.9.10".into()],
                targets: vec![(victim.upn.clone(), victim.key.clone())],
                attempts: 120,
                every: 4,
                day: 1,
                start: 14 * 3600,
            },
        ]
    }

    /// Which devices user `u` has. The first five users get a fixed set so
    /// that every edge case exists even in small sets.
    fn plan(r: &mut Rng, u: usize, n: usize) -> Plan {
        let f = |k: usize| u == k % n;
        let mut p = Plan {
            om: Vec::new(),
            ios: f(1) || r.chance(0.3),
            android: None,
            win: None,
            mac: f(3) || r.chance(0.08),
            macmail: f(2) || r.chance(0.05),
            em: f(3) || r.chance(0.05),
            ewsapp: f(4) || r.chance(0.02),
            browser: f(0) || r.chance(0.4),
            safari: f(4) || r.chance(0.05),
        };
        if f(0) {
            p.om.push((0, false));
        }
        if f(1) {
            p.om.push((0, true));
        }
        if f(2) {
            p.om.push((1, false));
        }
        if f(4) {
            p.om.push((2, true));
        }
        if u >= 5 && r.chance(0.4) {
            let v = if r.chance(0.75) { 0 } else { 1 + r.below(2) as u8 };
            p.om.push((v, r.chance(0.25)));
        }
        if f(2) {
            p.android = Some((true, 161));
        } else if f(3) {
            p.android = Some((false, 140));
        } else if r.chance(0.15) {
            p.android = Some((r.chance(0.5), if r.chance(0.7) { 161 } else { 140 }));
        }
        if f(0) {
            p.win = Some(false);
        } else if f(1) {
            p.win = Some(true);
        } else if r.chance(0.85) {
            p.win = Some(r.chance(0.08));
        }
        let any = !p.om.is_empty()
            || p.ios
            || p.android.is_some()
            || p.win.is_some()
            || p.mac
            || p.macmail
            || p.em
            || p.ewsapp
            || p.browser
            || p.safari;
        if !any {
            p.browser = true;
        }
        p
    }

    /// The devices of the back-end-heavy profile: mostly ActiveSync phones
    /// (about 3.5 devices a user), the edge cases of [`Population::plan`] kept.
    fn plan_mobile(r: &mut Rng, u: usize, n: usize) -> Plan {
        let mut p = Self::plan(r, u, n);
        if u >= 5 {
            p.ios = r.chance(0.7);
            if r.chance(0.9) {
                let v = if r.chance(0.5) { 0 } else { 1 + r.below(2) as u8 };
                p.om = vec![(v, r.chance(0.1))];
            }
            if p.android.is_none() && r.chance(0.6) {
                p.android = Some((r.chance(0.5), if r.chance(0.7) { 161 } else { 140 }));
            }
            p.browser = r.chance(0.2);
        }
        p
    }

    fn add_agents(&mut self, r: &mut Rng, u: usize, p: Plan) {
        for (variant, new) in p.om {
            let (ua, dt) = match variant {
                0 => ("Outlook-iOS-Android/1.0", "Outlook"),
                1 => ("Outlook-iOS/2.0", "OutlookService"),
                _ => ("Outlook-Android/2.0", "OutlookService"),
            };
            let id = hex32(r, true);
            let client = if dt == "OutlookService" { Client::OutlookMobileHma } else { Client::OutlookMobile };
            let mut a = self.as_agent(r, u, AgentKind::OutlookMobile, client, ua, id, dt);
            a.web_client = Client::OutlookMobile;
            a.new_device = new;
            a.net = Net::Microsoft365 { via_lb: r.chance(0.3) };
            a.dev_os = "Outlook+for+iOS+and+Android+1.0";
            a.short_stem = r.chance(0.5);
            self.agents.push(a);
        }
        if p.ios {
            let id = alnum(r, 26);
            let a = self.as_agent(r, u, AgentKind::IosMail, Client::IosMail, "Apple-iPhone15C3/2104.100", id, "iPhone");
            self.agents.push(a);
        }
        if let Some((binary, version)) = p.android {
            let (key, bytes) = if binary {
                let mut b: Vec<u8> = (0..16).map(|_| r.below(256) as u8).collect();
                if b.iter().all(|c| c.is_ascii_alphanumeric()) {
                    b[0] = 0; // binary ids must not pass for text
                }
                let hex: String = b.iter().map(|c| format!("{c:02X}")).collect();
                (hex, b)
            } else {
                let s = format!("android{:016x}", r.next_u64());
                (s.clone(), s.into_bytes())
            };
            let ua = "Android-Mail/2024.01.14.599093187.Release";
            let mut a = self.as_agent(r, u, AgentKind::AndroidMail, Client::AndroidMail, ua, key, "Android");
            a.device_id_bytes = bytes;
            a.b64 = Some(B64 { version, style: r.below(3) as u8 });
            a.dev_os = "Android+14";
            self.agents.push(a);
        }
        let (downlevel, upn, desktop_ip, admin) = {
            let user = &self.users[u];
            (user.downlevel.clone(), user.upn.clone(), user.desktop_ip.clone(), user.admin)
        };
        let internal = Net::Direct(desktop_ip);
        if let Some(rpc) = p.win {
            let ua = if rpc { "MSRPC".to_string() } else { r.pick(UA_OUTLOOK_WIN).to_string() };
            let alias = downlevel.clone();
            self.push_web(u, AgentKind::OutlookWindows { rpc }, Client::OutlookWindows, &ua, alias, internal.clone());
            if rpc {
                // RPC users still use EWS and Autodiscover from the same Outlook.
                let ua = r.pick(UA_OUTLOOK_WIN).to_string();
                let alias = downlevel.clone();
                self.push_web(
                    u,
                    AgentKind::OutlookWindows { rpc: false },
                    Client::OutlookWindows,
                    &ua,
                    alias,
                    internal.clone(),
                );
                self.agents.last_mut().unwrap().companion = true;
            }
        }
        let external = |r: &mut Rng| -> Net {
            if r.chance(0.5) {
                Net::Direct(format!("203.0.113.{}", r.range(1, 250)))
            } else if r.chance(0.5) {
                Net::Balanced {
                    lb: if r.chance(0.5) { "10.0.0.5" } else { "10.0.0.6" },
                    xff: format!("203.0.113.{}", r.range(1, 250)),
                }
            } else {
                Net::Balanced {
                    lb: if r.chance(0.5) { "10.0.0.5" } else { "10.0.0.6" },
                    xff: format!("198.51.100.{},+10.1.1.1", r.range(1, 200)),
                }
            }
        };
        let down = downlevel;
        if p.mac {
            let ua = "MacOutlook/16.89.24091630 (Intelx64 Mac OS X 14.6.1 (Build 23G93))";
            let net = if r.chance(0.5) { internal.clone() } else { external(r) };
            self.push_web(u, AgentKind::OutlookMac, Client::OutlookMac, ua, upn.clone(), net);
        }
        if p.macmail {
            let ua = "Mac OS X/14.6.1 (23G93); ExchangeWebServices/14.0 (343); Mail/16.0 (3776.700.51)";
            let net = external(r);
            self.push_web(u, AgentKind::MacMail, Client::MacosMail, ua, upn.clone(), net);
        }
        if p.em {
            let net = external(r);
            self.push_web(u, AgentKind::EmClient, Client::EwsApp, "eM Client/9.2.2157.0", upn.clone(), net);
        }
        if p.ewsapp {
            let ua = "ExchangeServicesClient/15.00.0913.015";
            self.push_web(u, AgentKind::EwsApp, Client::EwsApp, ua, down.clone(), Net::Direct("10.30.0.21".into()));
        }
        if p.browser {
            let ua = r.pick(UA_BROWSER).to_string();
            let net = if r.chance(0.5) { internal.clone() } else { external(r) };
            let alias = if r.chance(0.5) { down.clone() } else { upn.clone() };
            self.push_web(u, AgentKind::Browser, Client::Browser, &ua, alias, net);
        }
        if p.safari {
            let net = external(r);
            self.push_web(u, AgentKind::MobileSafari, Client::MobileBrowser, UA_MOBILE_SAFARI, upn.clone(), net);
        }
        if admin {
            self.push_web(u, AgentKind::WinRm, Client::RemotePowershell, "Microsoft WinRM Client", down, internal);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn as_agent(
        &self,
        r: &mut Rng,
        u: usize,
        kind: AgentKind,
        client: Client,
        ua: &str,
        device_id: String,
        device_type: &'static str,
    ) -> Agent {
        let user = &self.users[u];
        let (param_raw, param_alias) = match r.below(4) {
            0 => (user.upn.clone(), user.upn.clone()),
            1 => (user.upn.replace('@', "%40"), user.upn.clone()),
            2 => (format!("{NETBIOS}%5C{}", user.key), format!("{NETBIOS}\\{}", user.key)),
            _ => (user.key.clone(), user.key.clone()),
        };
        let auth_alias = if r.chance(0.6) { user.upn.clone() } else { user.downlevel.clone() };
        let net = match r.below(3) {
            0 => Net::Direct(format!("203.0.113.{}", r.range(1, 250))),
            1 => Net::Balanced { lb: "10.0.0.5", xff: format!("203.0.113.{}", r.range(1, 250)) },
            _ => Net::Balanced { lb: "10.0.0.6", xff: format!("198.51.100.{},+10.1.1.1", r.range(1, 200)) },
        };
        Agent {
            user: u,
            kind,
            client,
            web_client: client,
            ua_log: log_form(ua),
            ua: ua.to_string(),
            device_key: device_id.clone(),
            device_id_bytes: device_id.into_bytes(),
            device_type,
            auth_alias,
            param_raw,
            param_alias,
            order: r.below(4) as u8,
            short_stem: false,
            log_tokens: r.chance(0.5) || self.backend_heavy,
            b64: None,
            net,
            new_device: false,
            phase: r.below(3),
            policy_key: r.next_u32() | 1,
            dev_os: "iOS+17.5+21F79",
            ua_outlook_10: ua.to_ascii_lowercase().contains("outlook-ios-android/1.0"),
            ews_allowed: ews_allowed(ua),
            companion: false,
        }
    }

    fn push_web(&mut self, u: usize, kind: AgentKind, client: Client, ua: &str, alias: String, net: Net) {
        self.agents.push(Agent {
            user: u,
            kind,
            client,
            web_client: client,
            ua_log: log_form(ua),
            ua: ua.to_string(),
            device_key: ua.to_string(),
            device_id_bytes: Vec::new(),
            device_type: "",
            auth_alias: alias,
            param_raw: String::new(),
            param_alias: String::new(),
            order: 0,
            short_stem: false,
            log_tokens: false,
            b64: None,
            net,
            new_device: false,
            phase: 0,
            policy_key: 0,
            dev_os: "",
            ua_outlook_10: ua.to_ascii_lowercase().contains("outlook-ios-android/1.0"),
            ews_allowed: ews_allowed(ua),
            companion: false,
        });
    }
}

/// ews-allow-outlook-only: ordinal, case-sensitive `Contains`.
fn ews_allowed(ua: &str) -> bool {
    ua.contains("Microsoft Office Outlook") || ua.contains("Microsoft Outlook") || ua.contains("MacOutlook")
}
