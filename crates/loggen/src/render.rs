//! Turns events into IIS W3C lines, for any `#Fields` layout.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::events::{Event, BE};
use crate::model::{Auth, Cmd, Kind, Rule};
use crate::population::{write_guid, Agent, Net, Population, DOMAIN, HOST, NETBIOS};
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Date,
    Time,
    SIp,
    Method,
    Stem,
    Query,
    SPort,
    User,
    CIp,
    Ua,
    Referer,
    Status,
    Sub,
    Win32,
    Taken,
    Xff,
    Host,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Date => "date",
            Field::Time => "time",
            Field::SIp => "s-ip",
            Field::Method => "cs-method",
            Field::Stem => "cs-uri-stem",
            Field::Query => "cs-uri-query",
            Field::SPort => "s-port",
            Field::User => "cs-username",
            Field::CIp => "c-ip",
            Field::Ua => "cs(User-Agent)",
            Field::Referer => "cs(Referer)",
            Field::Status => "sc-status",
            Field::Sub => "sc-substatus",
            Field::Win32 => "sc-win32-status",
            Field::Taken => "time-taken",
            Field::Xff => "X-Forwarded-For",
            Field::Host => "cs-host",
        }
    }
}

use Field::*;
/// Front end with the X-Forwarded-For custom field (`_x` files).
pub(crate) const FE_FIELDS: &[Field] =
    &[Date, Time, SIp, Method, Stem, Query, SPort, User, CIp, Ua, Referer, Status, Sub, Win32, Taken, Xff];
/// IIS defaults: the back end, and a front end before the custom field was added.
pub(crate) const PLAIN_FIELDS: &[Field] =
    &[Date, Time, SIp, Method, Stem, Query, SPort, User, CIp, Ua, Referer, Status, Sub, Win32, Taken];
/// A reordered list with an extra field, as after an admin edits logging.
pub(crate) const REORDERED_FIELDS: &[Field] =
    &[Date, Time, SIp, Method, Stem, Query, SPort, User, CIp, Xff, Ua, Referer, Host, Status, Sub, Win32, Taken];

const AM_STEMS: &[&str] = &[
    "/owa/HealthCheck.htm",
    "/ews/HealthCheck.htm",
    "/Microsoft-Server-ActiveSync/HealthCheck.htm",
    "/mapi/HealthCheck.htm",
    "/Autodiscover/HealthCheck.htm",
    "/ecp/HealthCheck.htm",
    "/OAB/HealthCheck.htm",
    "/rpc/HealthCheck.htm",
];
const OWA_ACTIONS: &[&str] = &[
    "action=GetFolder&EP=1&ID=-12&AC=1",
    "action=FindItem&EP=1&ID=-13&AC=1",
    "action=GetItem&EP=1&ID=-14&AC=1",
    "action=GetConversationItems&EP=1&ID=-15&AC=1",
    "action=GetAccessTokenforResource&UA=0&app=Mail",
    "action=SubscribeToNotification&UA=0&app=Mail",
];
const ECP_SCHEMAS: &[&str] = &["Mailboxes", "DistributionGroups", "MobileDevices", "ReceiveConnectors"];
const PS_QUERY: &str =
    "serializationLevel=Full;ExchClientVer=15.2.1544.4;clientApplication=ManagementShell;TargetServer=;PSVersion=5.1.17763.4644";
const BROWSER_CHROME80: &str = "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+Chrome/80.0.3987.116+Safari/537.36";

/// Reused buffers; one per writer thread.
pub(crate) struct Renderer<'a> {
    pub pop: &'a Population,
    pub date: String,
    pub stem: String,
    pub q: String,
    pub cip: String,
    pub xff: String,
    b64: String,
    bytes: Vec<u8>,
    /// The status of the line rendered last.
    pub last_status: u16,
}

/// One line's values besides stem, query and addresses (kept in the renderer).
pub(crate) struct Line<'s> {
    pub method: &'static str,
    sip: &'s str,
    port: u16,
    pub user: &'s str,
    pub ua: &'s str,
    referer: &'static str,
    pub status: u16,
    sub: u16,
    win32: u32,
    pub taken: u32,
}

impl<'a> Renderer<'a> {
    pub fn new(pop: &'a Population) -> Self {
        Renderer {
            pop,
            date: String::new(),
            stem: String::with_capacity(128),
            q: String::with_capacity(512),
            cip: String::with_capacity(64),
            xff: String::with_capacity(64),
            b64: String::with_capacity(128),
            bytes: Vec::with_capacity(128),
            last_status: 0,
        }
    }

    pub fn set_date(&mut self, iso: &str) {
        self.date.clear();
        self.date.push_str(iso);
    }

    /// Appends one line (with CRLF) to `out`.
    pub fn line(&mut self, ev: &Event, layout: &[Field], out: &mut Vec<u8>) {
        let (line, malformed) = self.prepare(ev);
        self.last_status = line.status;
        self.emit(ev, &line, layout, malformed, out);
    }

    /// The values of the line of `ev`: stem, query, client address and
    /// X-Forwarded-For in the renderer's buffers (`-` when empty), the rest
    /// returned, with the malformed variant if it is one.
    pub(crate) fn prepare(&mut self, ev: &Event) -> (Line<'a>, Option<u8>) {
        self.stem.clear();
        self.q.clear();
        self.cip.clear();
        self.xff.clear();
        let pop = self.pop;
        let server = &pop.servers[ev.server()];
        let be = ev.site() == BE;
        // Same words for a front-end line and its twin; timings differ by site.
        let mut d = Rng::new(u64::from(ev.rnd) | 0x5151_0000_0000_0000);
        let mut tt = Rng::new(ev.key ^ u64::from(ev.rnd));
        let port = if be { 444 } else { 443 };
        let mut malformed = None;
        let line = match ev.kind {
            k if k.is_person() || k == Kind::Malformed => {
                let a = &pop.agents[ev.agent as usize];
                let kind = if k == Kind::Malformed {
                    malformed = Some(ev.arg);
                    Kind::AutodXml
                } else {
                    k
                };
                if be {
                    self.cip.push_str(&pop.servers[ev.fe as usize].ip);
                } else {
                    self.client_addr(&a.net, &mut d);
                }
                let fe_ip = &pop.servers[ev.fe as usize].ip;
                let (method, status, sub, win32, taken, referer) = self.person(kind, ev, a, be, fe_ip, &mut d, &mut tt);
                let user = match ev.auth {
                    Auth::Logged => a.auth_alias.as_str(),
                    _ => "-",
                };
                Line { method, sip: &server.ip, port, user, ua: &a.ua_log, referer, status, sub, win32, taken }
            }
            Kind::AmProbe => {
                let lo = if ev.rnd & 1 == 0 { "::1" } else { "127.0.0.1" };
                self.cip.push_str(lo);
                self.stem.push_str(AM_STEMS[ev.arg as usize % AM_STEMS.len()]);
                Line {
                    method: "GET",
                    sip: lo,
                    port,
                    user: "-",
                    ua: "AMProbe/Local/ClientAccess",
                    referer: "-",
                    status: 200,
                    sub: 0,
                    win32: 0,
                    taken: tt.range(0, 15),
                }
            }
            Kind::EasProbe => {
                let hm = &pop.health[ev.server()];
                let name = &hm[NETBIOS.len() + 1..];
                self.cip.push_str(&server.ip);
                self.stem.push_str("/Microsoft-Server-ActiveSync/default.eas");
                let _ = write!(
                    self.q,
                    "Cmd=FolderSync&User={name}%40{DOMAIN}&DeviceId=EASProbeDeviceId161&DeviceType=EASProbeDeviceType"
                );
                Line {
                    method: "POST",
                    sip: &server.ip,
                    port,
                    user: hm,
                    ua: "TestActiveSyncConnectivity",
                    referer: "-",
                    status: 200,
                    sub: 0,
                    win32: 0,
                    taken: tt.range(20, 400),
                }
            }
            Kind::EwsProbe => {
                self.cip.push_str(&server.ip);
                self.stem.push_str("/EWS/Exchange.asmx");
                self.q.push_str("&request_id=");
                write_guid(&mut self.q, &mut d);
                Line {
                    method: "POST",
                    sip: &server.ip,
                    port,
                    user: &pop.health[ev.server()],
                    ua: "Ews_Probe/Local+(ExchangeServicesClient/15.01.2507.039)",
                    referer: "-",
                    status: 200,
                    sub: 0,
                    win32: 0,
                    taken: tt.range(10, 200),
                }
            }
            Kind::OwaMonProbe => {
                self.cip.push_str("::1");
                self.stem.push_str("/owa/");
                Line {
                    method: "GET",
                    sip: "::1",
                    port,
                    user: &pop.health[ev.server()],
                    ua: "Mozilla/4.0+(compatible;+MSIE+9.0;+Windows+NT+6.1;+MSEXCHMON;+ACTIVEMONITORING;+OWACTP)",
                    referer: "-",
                    status: 200,
                    sub: 0,
                    win32: 0,
                    taken: tt.range(10, 300),
                }
            }
            Kind::MachineRpc | Kind::MachinePs => {
                let caller = &pop.servers[ev.agent as usize];
                self.cip.push_str(&caller.ip);
                if ev.kind == Kind::MachineRpc {
                    self.stem.push_str("/rpc/rpcproxy.dll");
                    let _ = write!(self.q, "{}.contoso.local:6001&RequestId=", server.name);
                    write_guid(&mut self.q, &mut d);
                } else {
                    self.stem.push_str("/powershell");
                    self.q
                        .push_str("serializationLevel=Full;clientApplication=ManagementShell;PSVersion=5.1.17763.4644");
                }
                Line {
                    method: match (ev.kind, ev.arg) {
                        (Kind::MachinePs, _) => "POST",
                        (_, 0) => "RPC_IN_DATA",
                        _ => "RPC_OUT_DATA",
                    },
                    sip: &server.ip,
                    port,
                    user: &pop.machines[ev.agent as usize],
                    ua: if ev.kind == Kind::MachineRpc { "MSRPC" } else { "Microsoft+WinRM+Client" },
                    referer: "-",
                    status: 200,
                    sub: 0,
                    win32: 0,
                    taken: tt.range(5, 90_000),
                }
            }
            Kind::Exploit => {
                let src = &pop.exploits[ev.agent as usize];
                if src.via_lb {
                    self.cip.push_str("10.0.0.6");
                    self.xff.push_str(&src.ip);
                } else {
                    self.cip.push_str(&src.ip);
                }
                let status = src.rule.status(ev.arg);
                let (method, ua) = match src.rule {
                    Rule::ProxyShell => {
                        // Sigma 23eee45e: 401, and the *query field itself* holds
                        // `/autodiscover.json` plus `/mapi/nspi` or `/powershell`+`X-Rps-CAT`
                        // (and `Email=autodiscover/autodiscover.json`). The token is
                        // whole, as public exploit tools write it: administrator@contoso.com,
                        // SID ...-500, in Administrators (S-1-5-32-544).
                        self.stem.push_str("/autodiscover/autodiscover.json");
                        if src.rule.impersonates(ev.arg).is_none() {
                            self.q.push_str("@evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@evil.com");
                        } else {
                            self.q.push_str(
                                "@evil.com/powershell/?X-Rps-CAT=VgEAVAdXaW5kb3dzQwBBCEtlcmJlcm9zTBlhZG1pbmlzdHJhdG9yQGNvbnRvc28uY29tVSxTLTEtNS0yMS0xMDA0MzM2MzQ4LTExNzcyMzg5MTUtNjgyMDAzMzMwLTUwMEcBAAAABwAAAAxTLTEtNS0zMi01NDRFAAAAAA%3D%3D&Email=autodiscover/autodiscover.json%3F@evil.com",
                            );
                        }
                        ("GET", "python-requests/2.31.0")
                    }
                    Rule::ProxyLogon => {
                        // Sigma 67bce556 selection_3 and _6: POST, `/ecp/` (+ `.js`), UA
                        // ExchangeServicesClient/0.0.0.0 -- in the stem and in the query, so it
                        // matches whether cs-uri-query is read alone or with the stem.
                        self.stem.push_str("/ecp/y.js");
                        self.q.push_str(
                            "X-BEResource=localhost~1942062522/ecp/y.js?~3&CorrelationID=<empty>;&cafeReqId=",
                        );
                        write_guid(&mut self.q, &mut d);
                        self.q.push(';');
                        ("POST", "ExchangeServicesClient/0.0.0.0")
                    }
                    Rule::Cve2020_0688 => {
                        // Sigma fce2c2e2 (and 7c64e577): GET, `/ecp/` and `__VIEWSTATE=`.
                        self.stem.push_str("/ecp/default.aspx");
                        self.q.push_str(
                            "__VIEWSTATEGENERATOR=B97B4E27&__VIEWSTATE=%2FwEyhAYAAQAAAP%2F%2F%2F%2F8BAAAAAAAAAAwCAAAAXk1pY3Jvc29mdC5Qb3dlclNoZWxs&ReturnUrl=/ecp/default.aspx",
                        );
                        ("GET", BROWSER_CHROME80)
                    }
                    Rule::WebShell => {
                        // The winterfell-hunt lines: a shell in the ActiveSync folder, an ActiveSync-style query.
                        self.stem.push_str("/Microsoft-Server-ActiveSync/error.aspx");
                        self.q.push_str(if ev.arg & 1 == 0 { "cmd=whomai" } else { "file=test.pdf" });
                        self.q.push_str("&User=vvvvv&DeviceId=7f5c3228efb748deb692dd060fd3c3fa&DeviceType=Outlook");
                        ("POST", "Outlook-iOS-Android/1.0")
                    }
                    Rule::WebShellCommand => {
                        self.stem.push_str("/aspnet_client/system_web/shell.aspx");
                        self.q.push_str(if ev.arg & 1 == 0 { "cmd=whoami" } else { "c=ipconfig" });
                        ("GET", BROWSER_CHROME80)
                    }
                    Rule::DataTheft => {
                        self.stem.push_str(["/1/CEO.pst", "/1/lssas.dmp", "/1/data.rar"][ev.arg as usize % 3]);
                        self.q.push_str("User=mmm&DeviceId=Q4LRVNVQ5P7UB269033H96IU3S&DeviceType=iPhone&Cmd=Ping");
                        ("GET", "Apple-iPhone10C5/1606.250")
                    }
                    Rule::Scanner if ev.arg & 1 == 0 => {
                        self.stem
                            .push_str("/ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application");
                        ("GET", "Mozilla/5.0+zgrab/0.x")
                    }
                    Rule::Scanner => {
                        self.stem.push_str("/nmaplowercheck1743972323");
                        ("GET", "Mozilla/5.0+(compatible;+Nmap+Scripting+Engine;+https://nmap.org/book/nse.html)")
                    }
                    Rule::OutsideVdirs => {
                        self.stem.push_str("/.git/config");
                        ("GET", BROWSER_CHROME80)
                    }
                };
                Line {
                    method,
                    sip: &server.ip,
                    port,
                    user: "-",
                    ua,
                    referer: "-",
                    status,
                    sub: 0,
                    win32: if status == 404 { 2 } else { 0 },
                    taken: tt.range(5, 400),
                }
            }
            Kind::SignInFail => {
                let attack = &pop.signin_attacks[ev.agent as usize];
                let j = ev.arg as usize;
                self.cip.push_str(&attack.ips[j % attack.ips.len()]);
                self.stem.push_str("/rpc/rpcproxy.dll");
                let _ = write!(self.q, "{}.contoso.local:6001&CorrelationID=<empty>;&RequestId=", server.name);
                write_guid(&mut self.q, &mut d);
                Line {
                    method: "RPC_IN_DATA",
                    sip: &server.ip,
                    port,
                    user: &attack.targets[j % attack.targets.len()].0,
                    ua: "MSRPC",
                    referer: "-",
                    status: 401,
                    sub: 1,
                    win32: 1326,
                    taken: tt.range(0, 30),
                }
            }
            _ => unreachable!("person kinds handled above"),
        };
        // Exchange 2013+'s HttpProxy module appends this to the front-end line
        // of every request it handles, challenges too, whether or not its own
        // log is on (tests/data/iis: every port-443 line; no port-444 line).
        if !be && ev.logged_by_proxy(self.pop) && !self.q.contains("cafeReqId=") {
            self.q.push_str("&CorrelationID=<empty>;&cafeReqId=");
            let mut r = Rng::new(ev.key ^ u64::from(ev.rnd).rotate_left(32) ^ date_seed(&self.date));
            write_guid(&mut self.q, &mut r);
            self.q.push(';');
        }
        if self.xff.is_empty() {
            self.xff.push('-');
        }
        if self.q.is_empty() {
            self.q.push('-');
        }
        (line, malformed)
    }

    fn emit(&self, ev: &Event, l: &Line, layout: &[Field], malformed: Option<u8>, out: &mut Vec<u8>) {
        for (i, f) in layout.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            match f {
                Date => out.extend_from_slice(self.date.as_bytes()),
                Time => push_time(out, ev.t()),
                SIp => out.extend_from_slice(l.sip.as_bytes()),
                Method => out.extend_from_slice(l.method.as_bytes()),
                Stem => out.extend_from_slice(self.stem.as_bytes()),
                Query => out.extend_from_slice(self.q.as_bytes()),
                SPort => push_num(out, u64::from(l.port)),
                User => {
                    if malformed == Some(0) {
                        out.push(b' '); // the IIS doubled-space bug
                    }
                    out.extend_from_slice(l.user.as_bytes());
                }
                CIp => out.extend_from_slice(self.cip.as_bytes()),
                Ua => {
                    if malformed == Some(2) {
                        // A UA logged with raw spaces: many extra fields.
                        out.extend(l.ua.bytes().map(|b| if b == b'+' { b' ' } else { b }));
                    } else {
                        out.extend_from_slice(l.ua.as_bytes());
                    }
                }
                Referer => out.extend_from_slice(l.referer.as_bytes()),
                Status => {
                    push_num(out, u64::from(l.status));
                    if malformed == Some(1) {
                        break; // a line cut short
                    }
                }
                Sub => push_num(out, u64::from(l.sub)),
                Win32 => push_num(out, u64::from(l.win32)),
                Taken => push_num(out, u64::from(l.taken)),
                Xff => out.extend_from_slice(self.xff.as_bytes()),
                Host => out.extend_from_slice(HOST.as_bytes()),
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    fn client_addr(&mut self, net: &Net, d: &mut Rng) {
        match net {
            Net::Direct(ip) => self.cip.push_str(ip),
            Net::Balanced { lb, xff } => {
                self.cip.push_str(lb);
                self.xff.push_str(xff);
            }
            Net::Microsoft365 { via_lb } => {
                let target = if *via_lb {
                    self.cip.push_str("10.0.0.5");
                    &mut self.xff
                } else {
                    &mut self.cip
                };
                let x = d.next_u64();
                let _ = match x % 3 {
                    // 52.96.0.0/14, 40.96.0.0/13, 2603:1026::/36
                    0 => write!(target, "52.{}.{}.{}", 96 + (x >> 8) % 4, (x >> 16) & 0xff, 1 + (x >> 24) % 254),
                    1 => write!(target, "40.{}.{}.{}", 96 + (x >> 8) % 8, (x >> 16) & 0xff, 1 + (x >> 24) % 254),
                    _ => write!(
                        target,
                        "2603:1026:{:x}:{:x}::{:x}",
                        (x >> 8) & 0xfff,
                        (x >> 20) & 0xffff,
                        1 + (x >> 36) % 0xfff
                    ),
                };
            }
        }
    }

    /// Fills stem and query of a person request; returns
    /// (method, status, substatus, win32, time-taken, referer).
    #[allow(clippy::too_many_arguments)]
    fn person(
        &mut self,
        kind: Kind,
        ev: &Event,
        a: &Agent,
        be: bool,
        fe_ip: &str,
        d: &mut Rng,
        tt: &mut Rng,
    ) -> (&'static str, u16, u16, u32, u32, &'static str) {
        let user = &self.pop.users[a.user];
        let challenge = ev.auth != Auth::Logged;
        let mut method = "POST";
        let mut referer = "-";
        let mut taken = if challenge { tt.range(0, 15) } else { tt.range(15, 1500) };
        let mut status = if challenge { 401 } else { 200 };
        let (mut sub, mut win32) = if challenge { (2, 5) } else { (0, 0) };
        match kind {
            Kind::As => {
                let cmd = Cmd::from_u8(ev.arg);
                self.stem.push_str(if be {
                    "/Microsoft-Server-ActiveSync/Proxy/default.eas"
                } else if a.short_stem {
                    "/Microsoft-Server-ActiveSync"
                } else {
                    "/Microsoft-Server-ActiveSync/default.eas"
                });
                self.as_query(a, cmd, be, fe_ip, ev, d);
                if cmd == Cmd::Ping && !challenge {
                    taken = tt.range(480_000, 1_780_000);
                    if tt.chance(0.2) {
                        win32 = 64;
                    }
                }
            }
            Kind::AutodJson => {
                method = "GET";
                self.stem.push_str("/autodiscover/autodiscover.json");
                let _ = write!(self.q, "Email={}%40{DOMAIN}&Protocol=ActiveSync&RedirectCount=1", user.key);
            }
            Kind::AutodXml => self.stem.push_str("/Autodiscover/Autodiscover.xml"),
            Kind::MapiEmsmdb | Kind::MapiNspi => {
                self.stem.push_str(if kind == Kind::MapiEmsmdb { "/mapi/emsmdb/" } else { "/mapi/nspi/" });
                let _ = write!(self.q, "mailboxId={}@{DOMAIN}", user.mailbox_guid);
            }
            Kind::Ews => self.stem.push_str("/EWS/Exchange.asmx"),
            Kind::Oab => {
                method = "GET";
                let _ = write!(self.stem, "/OAB/{}/oab.xml", self.pop.oab_guid);
            }
            Kind::RpcIn | Kind::RpcOut => {
                method = if kind == Kind::RpcIn { "RPC_IN_DATA" } else { "RPC_OUT_DATA" };
                self.stem.push_str("/rpc/rpcproxy.dll");
                let _ = write!(self.q, "{}@{DOMAIN}:6001", user.mailbox_guid);
                if !be {
                    self.q.push_str("&CorrelationID=<empty>;&RequestId=");
                    write_guid(&mut self.q, d);
                    self.q.push_str("&cafeReqId=");
                    write_guid(&mut self.q, d);
                    self.q.push(';');
                }
                if !challenge {
                    taken = tt.range(60_000, 900_000);
                }
            }
            Kind::Root => {
                method = "GET";
                self.stem.push('/');
                (status, sub, win32) = (302, 0, 0);
            }
            Kind::OwaLogon => {
                method = "GET";
                self.stem.push_str("/owa/auth/logon.aspx");
                self.q.push_str("url=https%3a%2f%2fmail.contoso.com%2fowa%2f&reason=0");
                (status, sub, win32) = (200, 0, 0);
            }
            Kind::OwaAuth => {
                self.stem.push_str("/owa/auth.owa");
                (status, sub, win32) = (302, 0, 0);
            }
            Kind::Owa => {
                method = "GET";
                self.stem.push_str("/owa/");
            }
            Kind::OwaSvc => {
                self.stem.push_str("/owa/service.svc");
                self.q.push_str(OWA_ACTIONS[ev.arg as usize % OWA_ACTIONS.len()]);
                referer = "https://mail.contoso.com/owa/";
            }
            Kind::Ecp => {
                method = "GET";
                self.stem.push_str("/ecp/");
            }
            Kind::EcpDdi => {
                self.stem.push_str("/ecp/DDI/DDIService.svc/GetList");
                let canary: String = (0..24)
                    .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[d.below(36) as usize]))
                    .collect();
                let _ = write!(
                    self.q,
                    "schema={}&msExchEcpCanary={canary}",
                    ECP_SCHEMAS[ev.arg as usize % ECP_SCHEMAS.len()]
                );
                referer = "https://mail.contoso.com/ecp/";
            }
            Kind::PowerShell => {
                self.stem.push_str("/powershell");
                self.q.push_str(PS_QUERY);
            }
            _ => unreachable!("not a person kind"),
        }
        if be {
            taken = taken.saturating_sub(taken / 8);
        }
        (method, status, sub, win32, taken, referer)
    }

    fn as_query(&mut self, a: &Agent, cmd: Cmd, be: bool, fe_ip: &str, ev: &Event, d: &mut Rng) {
        if let Some(b) = a.b64 {
            self.b64_query(a, cmd, b.version, b.style, ev);
        } else {
            let (c, u, id, dt) = (cmd.name(), &a.param_raw, &a.device_key, a.device_type);
            let q = &mut self.q;
            let _ = match a.order {
                0 => write!(q, "Cmd={c}&User={u}&DeviceId={id}&DeviceType={dt}"),
                1 => write!(q, "User={u}&DeviceId={id}&DeviceType={dt}&Cmd={c}"),
                2 => write!(q, "DeviceId={id}&DeviceType={dt}&Cmd={c}&User={u}"),
                _ => write!(q, "Cmd={c}&DeviceId={id}&DeviceType={dt}&User={u}"),
            };
            if cmd == Cmd::SendMail {
                q.push_str("&SaveInSent=T");
            }
        }
        let q = &mut self.q;
        let key = &self.pop.users[a.user].key;
        let fet = d.range(20, 9000);
        // Only the back end, where ActiveSync runs, appends `&Log=` (Exchange
        // 2013+), after a base64 query as after a plain one: every public
        // line with one has `PrxFrom`, a hop; the front-end line has none.
        if be {
            let mbx = &self.pop.servers[self.pop.users[a.user].mailbox].name;
            let _ = write!(q, "&Log=PrxFrom:{fe_ip}_V161_HH:{HOST}_SmtpAdrs:{key}%40{DOMAIN}_");
            if cmd == Cmd::Ping {
                let _ = write!(q, "Hb:900_Rto:2_Cpo:{}_", d.range(100, 900));
            }
            if a.log_tokens {
                let _ = write!(q, "DevOS:{}_As:AllowedG_", a.dev_os);
            }
            let _ = write!(q, "Fet:{fet}_Mbx:{mbx}.contoso.local_Dc:dc01.contoso.local_Throttle:0_");
        }
        if self.pop.backend_heavy && be {
            // The rest of a busy server's `Log=`: budget, timings, sync
            // state; nothing the audit reports.
            let _ = write!(
                q,
                "Budget:(D)Owner%3aS-1-5-21-{}-{}-1104_Conn%3a1_MaxConn%3aUnlimited_MaxBurst%3aUnlimited_\
                 Balance%3aUnlimited_Cutoff%3aUnlimited_RechargeRate%3aUnlimited_Policy%3aGlobalThrottlingPolicy_\
                 IsServiceAccount%3aFalse_LiveTime%3a00%3a0{}%3a{:02}.{:07}_\
                 SyncKey:{}_Sst:{}_Ssp:1_Cli:{}_Ers:0_Cpo:{}_Dur:{}_ItemsAdded:{}_ASLat:{}_RpcC:{}_RpcL:{}_\
                 LdapC:{}_LdapL:{}_SnQ:0_Sc:{}_Dst:{}_",
                1_000_000_000 + u64::from(ev.rnd % 1_000_000),
                2_000_000_000 + u64::from(ev.rnd >> 12),
                d.below(10),
                d.below(60),
                d.below(10_000_000),
                d.range(1, 2_000_000_000),
                d.below(50),
                d.range(100, 900),
                d.range(100, 900),
                fet + d.below(2000),
                d.below(20),
                d.below(300),
                d.below(12),
                d.below(400),
                d.below(6),
                d.below(90),
                d.below(4),
                d.range(1, 900),
            );
        }
    }

    /// MS-ASHTTP base64 query: version, command, locale, device id, policy key,
    /// device type, then tagged parameters (7 Options, 8 User).
    fn b64_query(&mut self, a: &Agent, cmd: Cmd, version: u8, style: u8, ev: &Event) {
        let b = &mut self.bytes;
        b.clear();
        b.extend_from_slice(&[version, cmd as u8, 0x09, 0x04]);
        b.push(a.device_id_bytes.len() as u8);
        b.extend_from_slice(&a.device_id_bytes);
        if cmd == Cmd::Provision && ev.rnd & 1 == 0 {
            b.push(0); // the initial Provision has no policy key yet
        } else {
            b.push(4);
            b.extend_from_slice(&a.policy_key.to_le_bytes());
        }
        b.push(a.device_type.len() as u8);
        b.extend_from_slice(a.device_type.as_bytes());
        if cmd == Cmd::SendMail {
            b.extend_from_slice(&[7, 1, 0x01]);
        }
        b.push(8);
        b.push(a.param_alias.len() as u8);
        b.extend_from_slice(a.param_alias.as_bytes());
        self.b64.clear();
        base64::engine::general_purpose::STANDARD.encode_string(&*b, &mut self.b64);
        for ch in self.b64.chars() {
            match (style, ch) {
                (1, '+') => self.q.push_str("%2B"),
                (1, '/') => self.q.push_str("%2F"),
                (1, '=') => self.q.push_str("%3D"),
                (2, '=') => {}
                _ => self.q.push(ch),
            }
        }
    }
}

/// A seed from the day, so that requests of different days never share an id.
fn date_seed(date: &str) -> u64 {
    date.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

pub(crate) fn push_time(out: &mut Vec<u8>, t: u32) {
    let (h, m, s) = (t / 3600, (t / 60) % 60, t % 60);
    out.extend_from_slice(&[
        b'0' + (h / 10) as u8,
        b'0' + (h % 10) as u8,
        b':',
        b'0' + (m / 10) as u8,
        b'0' + (m % 10) as u8,
        b':',
        b'0' + (s / 10) as u8,
        b'0' + (s % 10) as u8,
    ]);
}

pub(crate) fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

pub(crate) fn time_string(t: u32) -> String {
    let mut v = Vec::with_capacity(8);
    push_time(&mut v, t);
    String::from_utf8(v).expect("ascii")
}
