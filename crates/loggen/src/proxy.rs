//! The front ends' HttpProxy logs of the same requests as their IIS logs:
//! `<server>/Logging/HttpProxy/<Protocol>/HttpProxy_yyyyMMddHH-1.LOG`, one
//! file per protocol folder and hour, CSV with Exchange's five header lines.
//! Values are written as Exchange writes them (commas in a value become
//! spaces), except `GenericErrors` on 401 answers, which is quoted with a
//! comma and doubled quotes inside, as another CSV writer would: the reader
//! must take it as one field. The second server writes a shorter field list
//! (no `UrlHost`, no `RoutingType`, as older builds), so columns must be
//! read from `#Fields`.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::events::Event;
use crate::model::{Client, Kind, Rule};
use crate::output::FileCtx;
use crate::population::{AgentKind, Population, HOST};
use crate::render::{push_num, push_time, Renderer};
use crate::rng::Rng;
use crate::truth::Acc;
use crate::GzipMode;

/// The columns of Exchange 2016 CU23 (`#Version: 15.01.2375.007`), as in
/// the public files of tests/data/httpproxy.
const E2016: &[&str] = &[
    "DateTime",
    "RequestId",
    "MajorVersion",
    "MinorVersion",
    "BuildVersion",
    "RevisionVersion",
    "ClientRequestId",
    "Protocol",
    "UrlHost",
    "UrlStem",
    "ProtocolAction",
    "AuthenticationType",
    "IsAuthenticated",
    "AuthenticatedUser",
    "Organization",
    "AnchorMailbox",
    "UserAgent",
    "ClientIpAddress",
    "ServerHostName",
    "HttpStatus",
    "BackEndStatus",
    "ErrorCode",
    "Method",
    "ProxyAction",
    "TargetServer",
    "TargetServerVersion",
    "RoutingType",
    "RoutingHint",
    "BackEndCookie",
    "ServerLocatorHost",
    "ServerLocatorLatency",
    "RequestBytes",
    "ResponseBytes",
    "TargetOutstandingRequests",
    "AuthModulePerfContext",
    "HttpPipelineLatency",
    "CalculateTargetBackEndLatency",
    "GlsLatencyBreakup",
    "TotalGlsLatency",
    "AccountForestLatencyBreakup",
    "TotalAccountForestLatency",
    "ResourceForestLatencyBreakup",
    "TotalResourceForestLatency",
    "ADLatency",
    "SharedCacheLatencyBreakup",
    "TotalSharedCacheLatency",
    "ActivityContextLifeTime",
    "ModuleToHandlerSwitchingLatency",
    "ClientReqStreamLatency",
    "BackendReqInitLatency",
    "BackendReqStreamLatency",
    "BackendProcessingLatency",
    "BackendRespInitLatency",
    "BackendRespStreamLatency",
    "ClientRespStreamLatency",
    "KerberosAuthHeaderLatency",
    "HandlerCompletionLatency",
    "RequestHandlerLatency",
    "HandlerToModuleSwitchingLatency",
    "ProxyTime",
    "CoreLatency",
    "RoutingLatency",
    "HttpProxyOverhead",
    "TotalRequestTime",
    "RouteRefresherLatency",
    "UrlQuery",
    "BackEndGenericInfo",
    "GenericInfo",
    "GenericErrors",
    "EdgeTraceId",
    "DatabaseGuid",
    "UserADObjectGuid",
    "PartitionEndpointLookupLatency",
    "RoutingStatus",
];

/// People's requests by authentication type, in this order (`unknown`
/// first: the IIS lines), as the audit names them.
pub(crate) const AUTH_KEYS: [&str; 9] =
    ["unknown", "basic", "ntlm", "negotiate", "kerberos", "oauth", "bearer", "fba", "other"];

/// [`AUTH_KEYS`] as Exchange writes them in `AuthenticationType`.
const AUTH_NAMES: [&str; 9] = ["", "Basic", "NTLM", "Negotiate", "Kerberos", "OAuth", "Bearer", "FBA", "Other"];

/// The field list and build a server writes.
pub(crate) struct Layout {
    version: &'static str,
    build: [&'static str; 4],
    names: Vec<&'static str>,
}

impl Layout {
    pub fn of_server(server: usize) -> Layout {
        if server == 1 {
            let names = E2016.iter().copied().filter(|n| !matches!(*n, "UrlHost" | "RoutingType")).collect();
            Layout { version: "15.00.1497.002", build: ["15", "0", "1497", "2"], names }
        } else {
            Layout { version: "15.01.2375.007", build: ["15", "1", "2375", "7"], names: E2016.to_vec() }
        }
    }
}

/// The protocol folder a request is logged in.
fn folder(ev: &Event, stem: &str) -> &'static str {
    let by_stem = |s: &str| {
        let s = s.to_ascii_lowercase();
        [
            ("/microsoft-server-activesync", "Eas"),
            ("/ews", "Ews"),
            ("/mapi", "Mapi"),
            ("/autodiscover", "Autodiscover"),
            ("/ecp", "Ecp"),
            ("/oab", "Oab"),
            ("/rpc", "RpcHttp"),
            ("/powershell", "PowerShell"),
        ]
        .iter()
        .find(|(p, _)| s.starts_with(p))
        .map_or("Owa", |(_, f)| f)
    };
    match ev.kind {
        Kind::Malformed => "Autodiscover",
        _ => by_stem(stem),
    }
}

/// The scheme a request's client signs in with (index into [`AUTH_KEYS`]).
pub(crate) fn auth_of(pop: &Population, ev: &Event) -> usize {
    const BASIC: usize = 1;
    const NTLM: usize = 2;
    const NEGOTIATE: usize = 3;
    const KERBEROS: usize = 4;
    const BEARER: usize = 6;
    const FBA: usize = 7;
    match ev.kind {
        k if k.is_person() || k == Kind::Malformed => {
            let agent = &pop.agents[ev.agent as usize];
            match agent.kind {
                // Hybrid modern auth: Microsoft's cloud syncs with a token on
                // the user's behalf (`Authorization: Bearer`), no password.
                AgentKind::OutlookMobile if agent.client == Client::OutlookMobileHma => BEARER,
                AgentKind::OutlookMobile | AgentKind::IosMail | AgentKind::AndroidMail => BASIC,
                AgentKind::EmClient | AgentKind::EwsApp => BASIC,
                AgentKind::OutlookWindows { rpc: true } => NTLM,
                AgentKind::OutlookWindows { rpc: false } => NEGOTIATE,
                AgentKind::OutlookMac | AgentKind::MacMail => NTLM,
                AgentKind::Browser | AgentKind::MobileSafari => FBA,
                AgentKind::WinRm => KERBEROS,
            }
        }
        Kind::AmProbe => 0,
        Kind::EasProbe | Kind::EwsProbe | Kind::OwaMonProbe => NEGOTIATE,
        Kind::MachineRpc | Kind::MachinePs => KERBEROS,
        Kind::Exploit => match pop.exploits[ev.agent as usize].rule {
            Rule::Cve2020_0688 => FBA,
            // Web shells and scanners sign in as nobody.
            _ => 0,
        },
        _ => 0,
    }
}

/// Appends `v` as Exchange writes a value: commas and line ends as spaces.
fn value(out: &mut Vec<u8>, v: &str) {
    out.extend(v.bytes().map(|b| if matches!(b, b',' | b'\r' | b'\n') { b' ' } else { b }));
}

/// `2026-11-02T08:15:30.123Z`.
fn iso(out: &mut Vec<u8>, date: &str, t: u32, ms: u32) {
    out.extend_from_slice(date.as_bytes());
    out.push(b'T');
    push_time(out, t);
    out.push(b'.');
    out.extend_from_slice(&[b'0' + (ms / 100) as u8, b'0' + (ms / 10 % 10) as u8, b'0' + (ms % 10) as u8]);
    out.push(b'Z');
}

impl Renderer<'_> {
    /// Appends the HttpProxy line of front-end event `ev` (with CRLF) to
    /// `out`, in `layout`; returns its protocol folder. Its `RequestId` is
    /// the `cafeReqId` its IIS line carries.
    pub(crate) fn proxy_line(&mut self, ev: &Event, layout: &Layout, out: &mut Vec<u8>) -> &'static str {
        let (line, malformed) = self.prepare(ev);
        self.last_status = line.status;
        let pop = self.pop;
        let server = &pop.servers[ev.server()];
        let mut tt = Rng::new(ev.key ^ u64::from(ev.rnd) ^ 0x7072_6f78_7900);
        let ms = tt.below(1000);
        let folder = folder(ev, &self.stem);
        // The query as the client sent it (the real Eas line of tests/data/httpproxy
        // has no `Log=`): ActiveSync's `&Log=` and IIS's `&CorrelationID=...` are
        // appended to the IIS line only.
        let q = if self.q == "-" { "" } else { self.q.as_str() };
        let client_end = ["&Log=", "&CorrelationID="].iter().filter_map(|m| q.find(m)).min().unwrap_or(q.len());
        let (client_query, appended) = q.split_at(client_end);
        let id = appended.rsplit_once("cafeReqId=").map_or("", |(_, id)| id.trim_end_matches(';'));
        // Behind a load balancer HttpProxy logs the client (an assumption; see the README).
        let client = match self.xff.as_str() {
            "-" | "" => self.cip.as_str(),
            xff => xff.split(',').next().unwrap_or(xff).trim_matches(|c| c == '+' || c == ' '),
        };
        // A 401 ended in IIS's authentication: Exchange knows no user (an
        // assumption; see the README), whatever name IIS logged as tried.
        let authenticated = line.user != "-" && line.status != 401;
        let user = if line.user == "-" { "" } else { line.user };
        let anchor_user = match ev.kind {
            k if (k.is_person() || k == Kind::Malformed) && authenticated => Some(pop.agents[ev.agent as usize].user),
            _ => None,
        };
        let auth = AUTH_NAMES[auth_of(pop, ev)];
        let ua = line.ua.replace('+', " ");
        let begin = ev.t().saturating_sub(line.taken / 1000);
        for (i, name) in layout.names.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match *name {
                "DateTime" => iso(out, &self.date, ev.t(), ms),
                "RequestId" => out.extend_from_slice(id.as_bytes()),
                "MajorVersion" => out.extend_from_slice(layout.build[0].as_bytes()),
                "MinorVersion" => out.extend_from_slice(layout.build[1].as_bytes()),
                "BuildVersion" => out.extend_from_slice(layout.build[2].as_bytes()),
                "RevisionVersion" => out.extend_from_slice(layout.build[3].as_bytes()),
                "Protocol" => out.extend_from_slice(folder.as_bytes()),
                "UrlHost" => out.extend_from_slice(HOST.as_bytes()),
                "UrlStem" => value(out, &self.stem),
                "AuthenticationType" => value(out, auth),
                "IsAuthenticated" => out.extend_from_slice(if authenticated { b"true" } else { b"false" }),
                "AuthenticatedUser" if authenticated => value(out, user),
                "AnchorMailbox" => {
                    if let Some(u) = anchor_user {
                        out.extend_from_slice(b"Sid~S-1-5-21-2039185718-1146209875-3382521210-");
                        push_num(out, 1100 + u as u64);
                    }
                }
                "UserAgent" => value(out, &ua),
                "ClientIpAddress" => value(out, client),
                "ServerHostName" => out.extend_from_slice(server.name.as_bytes()),
                "HttpStatus" => {
                    push_num(out, u64::from(line.status));
                    if malformed.is_some() {
                        break; // a line cut short
                    }
                }
                "BackEndStatus" if line.status != 401 => push_num(out, u64::from(line.status)),
                "Method" => out.extend_from_slice(line.method.as_bytes()),
                "ProxyAction" if line.status != 401 => out.extend_from_slice(b"Proxy"),
                "TargetServer" if line.status != 401 => {
                    let mbx = anchor_user.map_or(ev.server(), |u| pop.users[u].mailbox);
                    value(out, &pop.servers[mbx].name);
                    out.extend_from_slice(b".contoso.local");
                }
                "RoutingType" => out.extend_from_slice(b"IntraForest"),
                "RoutingHint" if anchor_user.is_some() => out.extend_from_slice(b"WindowsIdentity"),
                "RequestBytes" | "ResponseBytes" => push_num(out, u64::from(tt.range(90, 20_000))),
                "TotalRequestTime" | "ProxyTime" => push_num(out, u64::from(line.taken)),
                n if n.ends_with("Latency") => push_num(out, u64::from(tt.below(4))),
                "UrlQuery" if !client_query.is_empty() => {
                    out.push(b'?');
                    value(out, client_query);
                }
                "GenericInfo" => {
                    out.extend_from_slice(b"BeginRequest=");
                    iso(out, &self.date, begin, ms);
                    out.extend_from_slice(b";CorrelationID=<empty>;ProxyState-Run=None;FEAuth=BEVersion-1942063431;");
                    out.extend_from_slice(b"BeginGetResponse=");
                    iso(out, &self.date, begin, ms);
                    out.extend_from_slice(b";OnResponseReady=");
                    iso(out, &self.date, ev.t(), ms);
                    out.extend_from_slice(b";ProxyState-Complete=ProxyResponseData;SharedCacheGuard=0;EndRequest=");
                    iso(out, &self.date, ev.t(), ms);
                    out.push(b';');
                }
                "GenericErrors" if line.status == 401 => {
                    out.extend_from_slice(
                        br##""WebExceptionStatus=ProtocolError;ResponseStatusCode=401;WebException=""Unauthorized, sign-in required""""##,
                    );
                }
                "RoutingStatus" => out.extend_from_slice(b"CafeV1"),
                _ => {}
            }
        }
        out.extend_from_slice(b"\r\n");
        folder
    }
}

/// An open HttpProxy file: its folder, hour and writer.
struct Open {
    folder: &'static str,
    hour: u32,
    out: Out,
}

enum Out {
    Plain(BufWriter<File>),
    Gz(Box<GzEncoder<BufWriter<File>>>),
}

impl Out {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Out::Plain(w) => w.write_all(b),
            Out::Gz(w) => w.write_all(b),
        }
    }
    fn finish(self) -> io::Result<()> {
        match self {
            Out::Plain(mut w) => w.flush(),
            Out::Gz(w) => w.finish()?.flush(),
        }
    }
}

/// Writes the HttpProxy files of one server and day, from its front-end
/// events (sorted by time), and counts each line in `acc`.
pub(crate) fn write_server_day(
    ctx: &FileCtx,
    server: usize,
    events: &[Event],
    gzip: GzipMode,
    acc: &mut Acc,
) -> io::Result<()> {
    let pop = ctx.pop;
    let layout = Layout::of_server(server);
    let mut r = Renderer::new(pop);
    r.set_date(ctx.date_iso);
    let compact: String = ctx.date_iso.chars().filter(char::is_ascii_digit).collect();
    let mut open: Vec<Open> = Vec::new();
    let mut line = Vec::with_capacity(4096);
    for ev in events.iter().filter(|e| e.logged_by_proxy(pop)) {
        line.clear();
        let folder = r.proxy_line(ev, &layout, &mut line);
        let hour = ev.t() / 3600;
        let at = match open.iter().position(|o| o.folder == folder) {
            Some(i) if open[i].hour == hour => i,
            found => {
                if let Some(i) = found {
                    open.swap_remove(i).out.finish()?;
                }
                let gz = match gzip {
                    GzipMode::None => false,
                    GzipMode::All => true,
                    GzipMode::Some => (server + hour as usize + folder.len()) % 2 == 1,
                };
                let name = format!("HttpProxy_{compact}{:02}-1.LOG{}", hour, if gz { ".gz" } else { "" });
                let dir: PathBuf = ctx.root.join(&pop.servers[server].name).join("Logging/HttpProxy").join(folder);
                fs::create_dir_all(&dir)?;
                let file = BufWriter::with_capacity(1 << 16, File::create(dir.join(name))?);
                let mut out =
                    if gz { Out::Gz(Box::new(GzEncoder::new(file, Compression::fast()))) } else { Out::Plain(file) };
                let mut head = Vec::with_capacity(1200);
                head.extend_from_slice(b"#Software: Microsoft Exchange Server\r\n#Version: ");
                head.extend_from_slice(layout.version.as_bytes());
                head.extend_from_slice(b"\r\n#Log-type: HttpProxy Logs\r\n#Date: ");
                iso(&mut head, ctx.date_iso, ev.t(), 0);
                head.extend_from_slice(b"\r\n#Fields: ");
                head.extend_from_slice(layout.names.join(",").as_bytes());
                head.extend_from_slice(b"\r\n");
                out.write_all(&head)?;
                open.push(Open { folder, hour, out });
                open.len() - 1
            }
        };
        open[at].out.write_all(&line)?;
        if ctx.beside_httpproxy && r.last_status == 401 {
            // Beside IIS lines, a 401 counts from IIS's line, which knows why.
            acc.duplicate();
        } else {
            acc.count_proxy(pop, ev, ctx.day_start, auth_of(pop, ev));
        }
    }
    for o in open {
        o.out.finish()?;
    }
    Ok(())
}
