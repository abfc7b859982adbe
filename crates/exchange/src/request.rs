//! The request model shared by log lines and live traffic.
//!
//! A `Request` is filled in place and reused across lines: `clear` keeps the
//! capacity of every string, so the steady state allocates nothing.

use std::net::IpAddr;

pub use crate::auth::AuthType;
use crate::catalog::ClientId;
use crate::networks::NetworkId;

/// Exchange protocol, from the URI stem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    ActiveSync,
    Ews,
    Owa,
    Ecp,
    Mapi,
    Rpc,
    Autodiscover,
    Oab,
    PowerShell,
    Rest,
    #[default]
    Other,
}

impl Protocol {
    pub const ALL: [Protocol; 11] = [
        Protocol::ActiveSync,
        Protocol::Ews,
        Protocol::Owa,
        Protocol::Ecp,
        Protocol::Mapi,
        Protocol::Rpc,
        Protocol::Autodiscover,
        Protocol::Oab,
        Protocol::PowerShell,
        Protocol::Rest,
        Protocol::Other,
    ];

    /// Stable lower-case key used in reports, JSON and policy files.
    pub fn key(self) -> &'static str {
        match self {
            Protocol::ActiveSync => "activesync",
            Protocol::Ews => "ews",
            Protocol::Owa => "owa",
            Protocol::Ecp => "ecp",
            Protocol::Mapi => "mapi",
            Protocol::Rpc => "rpc",
            Protocol::Autodiscover => "autodiscover",
            Protocol::Oab => "oab",
            Protocol::PowerShell => "powershell",
            Protocol::Rest => "rest",
            Protocol::Other => "other",
        }
    }

    pub fn from_key(key: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.key().eq_ignore_ascii_case(key))
    }

    /// Index into arrays of per-protocol counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Protocols that reach a mailbox's mail (used for backdoor analysis).
    pub fn reaches_mail(self) -> bool {
        matches!(
            self,
            Protocol::ActiveSync | Protocol::Ews | Protocol::Owa | Protocol::Mapi | Protocol::Rpc | Protocol::Rest
        )
    }
}

/// Site ports of the Exchange Back End website.
const BACKEND_PORTS: [u16; 2] = [444, 81];

/// ERROR_LOGON_FAILURE: "The user name or password is incorrect."
pub const WIN32_LOGON_FAILURE: u32 = 1326;

/// SEC_E_NO_CREDENTIALS (0x8009030E), as IIS logs it, in decimal: "No
/// credentials are available in the security package". IIS writes it with
/// 401.1 on a leg of the Negotiate/NTLM handshake, before the client has
/// sent credentials: Outlook's `401 1 2148074254` is followed in the same
/// second by its 200 as the user, and Apple's EWS client writes thousands a
/// minute while its users sign in normally (Microsoft Q&A 1248391 and
/// 1022693). No credentials, so no failed sign-in.
pub const WIN32_NO_CREDENTIALS: u32 = 2_148_074_254;

/// What Exchange's forms authentication writes into the IIS line when it
/// turns a sign-in down (decompiled `FbaModule`): the user name and password
/// posted to `/owa/auth.owa` become a Basic `Authorization` header; when
/// that gets a 401, `OnEndRequestInternal` appends this to the logged query
/// and redirects to `/owa/auth/logon.aspx` with `reason=` invalid
/// credentials. So IIS logs a 302 for a failed sign-in.
const OWA_FORMS_TURNED_DOWN: &str = "LogoffReason=NoCookiesGetOrE14AuthPost";

/// How the ActiveSync parameters were encoded in the query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueryEncoding {
    #[default]
    None,
    Plain,
    Base64,
}

/// What kind of traffic a request is. Exactly one applies, in this order of
/// precedence: a line logged twice, an attack, a monitoring probe, a
/// back-end hop, a machine account, else a person.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Traffic {
    #[default]
    Person,
    /// Managed Availability, Test-*Connectivity, HealthMailbox, `*_Probe`.
    Probe,
    /// Back-end hop: site port 444, ActiveSync `/Proxy/`, `PrxFrom` in Log.
    Backend,
    /// A computer account such as `EX04$`.
    Machine,
    /// Matches a detection rule (an exploit, a web shell, data theft, a path
    /// outside Exchange, a scanner); the rule is in `Request::attack`.
    Attack,
    /// An IIS front-end line of a request the HttpProxy log holds too (its
    /// `cafeReqId` is the HttpProxy line's `RequestId`): counted once, from
    /// HttpProxy (see [`crate::join`]).
    Duplicate,
}

/// Where a request was read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Source {
    #[default]
    Unknown,
    /// An IIS W3C log line.
    Iis,
    /// An Exchange HttpProxy log line.
    HttpProxy,
    /// A live request through the gateway.
    Gateway,
}

/// What a detection rule says a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttackKind {
    /// A public rule for a known Exchange vulnerability (Sigma).
    Exploit,
    /// A script Exchange does not ship, or a web shell's command.
    WebShell,
    /// An archive, dump or mailbox export fetched from a web path.
    DataTheft,
    /// A folder that is none of Exchange's virtual directories.
    OutsideVdirs,
    /// A vulnerability or port scanner, by its user agent.
    Scanner,
}

impl AttackKind {
    pub const ALL: [AttackKind; 5] = [
        AttackKind::Exploit,
        AttackKind::WebShell,
        AttackKind::DataTheft,
        AttackKind::OutsideVdirs,
        AttackKind::Scanner,
    ];

    /// Stable kebab-case key, as in `data/exploits.toml` and reports.
    pub fn key(self) -> &'static str {
        match self {
            AttackKind::Exploit => "exploit",
            AttackKind::WebShell => "web-shell",
            AttackKind::DataTheft => "data-theft",
            AttackKind::OutsideVdirs => "outside-vdirs",
            AttackKind::Scanner => "scanner",
        }
    }

    pub fn from_key(key: &str) -> Option<AttackKind> {
        AttackKind::ALL.into_iter().find(|k| k.key() == key)
    }
}

/// The detection rule a request matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Detection {
    /// The rule's stable name, e.g. `proxyshell`.
    pub rule: &'static str,
    pub kind: AttackKind,
}

/// What the answer says became of a request, from its status: for an attack,
/// whether it got through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// 2xx: the server did what was asked.
    Succeeded,
    /// Stopped by authentication or access control: 401, 403, 456 (ActiveSync
    /// blocked), or 404 with an IIS request-filtering substatus.
    Blocked,
    /// Anything else: not found, redirected, refused as malformed, a server error.
    Failed,
    /// No status (live traffic before the answer).
    Unknown,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Outcome::Succeeded, Outcome::Blocked, Outcome::Failed, Outcome::Unknown];

    /// IIS 404 substatuses 1 to 20 are request filtering's denials (404.19:
    /// a filtering rule); 404.0 is "not found".
    pub fn of(status: u16, substatus: u16) -> Outcome {
        match status {
            0 => Outcome::Unknown,
            200..=299 => Outcome::Succeeded,
            401 | 403 | 456 => Outcome::Blocked,
            404 if (1..=20).contains(&substatus) => Outcome::Blocked,
            _ => Outcome::Failed,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Blocked => "blocked",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        }
    }
}

pub use crate::log_tokens::{LogTokens, LogWanted};

/// ActiveSync parameters, from the plain or the base64 query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActiveSync {
    pub encoding: QueryEncoding,
    /// Command name, canonical case (`Sync`, `Provision`, ...).
    pub command: String,
    /// Device id; a binary id from a base64 query is shown as upper-case hex.
    pub device_id: String,
    pub device_type: String,
    /// The `User` parameter as sent.
    pub user: String,
    /// Protocol version such as `14.0`, from the base64 query or `MS-ASProtocolVersion`.
    pub protocol_version: String,
    pub policy_key: Option<u32>,
    pub locale: Option<u16>,
    pub log: LogTokens,
    /// `Cmd`, `User`, `DeviceId` or `DeviceType` was given twice with
    /// different values, or plain parameters follow a base64 token, or a
    /// base64 token that decodes follows another part: which one Exchange
    /// reads is not known, so the gateway refuses such a request rather
    /// than guess.
    pub repeated: bool,
    /// The query is one base64 token that does not decode (see
    /// [`crate::activesync::QueryError`]): the fields are empty here, while
    /// Exchange may read a command and device from it; refused too.
    pub undecoded: bool,
}

impl ActiveSync {
    pub fn clear(&mut self) {
        self.encoding = QueryEncoding::None;
        self.command.clear();
        self.device_id.clear();
        self.device_type.clear();
        self.user.clear();
        self.protocol_version.clear();
        self.policy_key = None;
        self.locale = None;
        self.log.clear();
        self.repeated = false;
        self.undecoded = false;
    }
}

/// Why an Autodiscover request is refused whose query or cookie routes it to
/// another path (see [`crate::url::routes_past_its_path`]): the ProxyShell
/// and ProxyNotShell shape.
pub const ROUTED_PAST_ITS_PATH: &str = "autodiscover.json routed to another path (explicit logon, ProxyShell)";
/// Why a request naming the identity Exchange's front end gives its back
/// end is refused: no client sends it, and the back end trusts it.
pub const FRONT_END_IDENTITY: &str =
    "the identity Exchange's front end gives its back end (X-CommonAccessToken, X-Rps-CAT)";

/// One HTTP request to a Client Access server, from a log line or the wire.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Seconds since the Unix epoch, UTC; 0 when unknown.
    pub time: i64,
    pub method: String,
    /// URI stem as IIS routes it: decoded and normalized (see [`crate::url`]).
    pub stem: String,
    /// Raw query string without the leading `?`; empty when none.
    pub query: String,
    pub protocol: Protocol,
    /// HTTP status and IIS substatus; 0 when unknown (live traffic before the answer).
    pub status: u16,
    pub substatus: u16,
    /// sc-win32-status: the Windows error of the request (1326: bad user name or password).
    pub win32_status: u32,
    /// Local port of the site (s-port): 443 front end, 444 back end.
    pub server_port: u16,
    pub server_ip: Option<IpAddr>,
    /// The address the connection came from (c-ip).
    pub peer_ip: Option<IpAddr>,
    /// The client's address after X-Forwarded-For resolution.
    pub client_ip: Option<IpAddr>,
    pub network: NetworkId,
    /// Raw X-Forwarded-For value, when logged or sent.
    pub forwarded_for: String,
    /// X-Forwarded-For as Exchange gets it, when the reader knows it apart
    /// from `forwarded_for`: the gateway reads the client from the element
    /// its trusted proxies vouch for, and forwards the whole chain with the
    /// peer appended. Empty: `forwarded_for` is that header (a log's field).
    /// See [`Request::forwarded_for_header`].
    pub forwarded_header: String,
    /// User-Agent with `+` decoded to space, as the client sent it.
    pub user_agent: String,
    /// cs-username as logged (`DOMAIN\user`, `user@domain`), or the Basic-auth user.
    pub username: String,
    /// The authentication scheme; unknown from IIS logs.
    pub auth: AuthType,
    /// For `Negotiate`, the mechanism its token carries when the reader can
    /// tell (the gateway): NTLM or Kerberos, which is how Windows signs the
    /// request in. An `auth` condition naming it matches, as one naming
    /// `negotiate` does. `Bearer` for a token in the query without a header
    /// (the gateway's `access_token`, which only some pages read).
    /// `Unknown` otherwise.
    pub auth_mechanism: AuthType,
    pub source: Source,
    /// The identity key: lower-cased account name; empty when anonymous.
    pub user: String,
    /// Credentials came with the request, or its connection was signed in,
    /// naming nobody readable here (a Kerberos ticket, an opaque token):
    /// someone is signed in, though `user` is empty. Only the gateway sets
    /// it; IIS logs the user it signed in. See [`Request::is_anonymous`].
    pub unnamed_credentials: bool,
    pub activesync: ActiveSync,
    pub client: ClientId,
    /// For an attack, the client its user agent and device claim (`client`
    /// is then `unknown`); see [`Request::claimed_client`].
    pub attack_claims: ClientId,
    pub traffic: Traffic,
    /// The detection rule when `traffic` is `Attack`.
    pub attack: Option<Detection>,
    /// The request named a back end and a path for the front end to proxy
    /// to: ProxyLogon's server-side request forgery (CVE-2021-26855). IIS
    /// logs its cookie only where an admin ticked cs(Cookie) (the IIS
    /// reader then reads it, [`crate::url::cookie_names_a_backend`]); an
    /// HttpProxy line keeps the route the front end took from it, an
    /// `AnchorMailbox` of `ServerInfo~<host>/<path>` (see
    /// [`crate::url::anchor_names_a_backend`]). The gateway refuses such a
    /// cookie before making a request, so it never sets it.
    pub backend_named: bool,
}

/// Whether Exchange's forms sign-in (`FbaModule`) may take `method` for a
/// `POST`: it reads the method as .NET's `Enum.TryParse<HttpMethod>(method,
/// ignoreCase: true)` (decompiled `Extensions.GetHttpMethod`), so `post` or
/// `Post` is one, and a number is whatever member has its value (`TryParse`
/// takes a method starting with a digit, `+` or `-` for a number; `3` is
/// `Post`). HTTP.sys passes such a method on as it came, and logs it so.
pub fn forms_reads_as_post(method: &str) -> bool {
    let m = method.as_bytes();
    m.eq_ignore_ascii_case(b"POST") || m.first().is_some_and(|&b| b.is_ascii_digit() || b == b'+' || b == b'-')
}

impl Request {
    /// Reset for reuse without giving back any string capacity.
    pub fn clear(&mut self) {
        self.time = 0;
        self.method.clear();
        self.stem.clear();
        self.query.clear();
        self.protocol = Protocol::Other;
        self.status = 0;
        self.substatus = 0;
        self.win32_status = 0;
        self.server_port = 0;
        self.server_ip = None;
        self.peer_ip = None;
        self.client_ip = None;
        self.network = NetworkId::default();
        self.forwarded_for.clear();
        self.forwarded_header.clear();
        self.user_agent.clear();
        self.username.clear();
        self.auth = AuthType::Unknown;
        self.auth_mechanism = AuthType::Unknown;
        self.source = Source::Unknown;
        self.user.clear();
        self.unnamed_credentials = false;
        self.activesync.clear();
        self.client = ClientId::default();
        self.attack_claims = ClientId::default();
        self.traffic = Traffic::Person;
        self.attack = None;
        self.backend_named = false;
    }

    /// The query the client sent, which IIS request filtering scanned and
    /// URL Rewrite read: an IIS line's logged query less what Exchange adds
    /// to its log line (see [`crate::url::client_query_into`]), written
    /// into `scratch` only when there is any; any other source's query
    /// (HttpProxy's `UrlQuery`, the gateway's request) as it is.
    pub fn client_query<'a>(&'a self, scratch: &'a mut String) -> &'a str {
        if self.source == Source::Iis
            && crate::url::client_query_into(&self.query, self.protocol == Protocol::ActiveSync, scratch)
        {
            scratch
        } else {
            &self.query
        }
    }

    /// The X-Forwarded-For header as Exchange gets it: what IIS request
    /// filtering and URL Rewrite, which the policy emulates, scan there.
    /// The client's say-so left of what a trusted proxy vouched for is in
    /// it, and reaches Exchange.
    pub fn forwarded_for_header(&self) -> &str {
        if self.forwarded_header.is_empty() {
            &self.forwarded_for
        } else {
            &self.forwarded_header
        }
    }

    /// Nobody is signed in: no user, and no credentials that name one. The
    /// anonymous first leg of an NTLM or Negotiate sign-in (which IIS
    /// answers with its challenge, 401), a load balancer's health page.
    /// Exchange applies a mailbox's settings (and the organisation's, which
    /// hold for every mailbox without its own) once it knows the mailbox,
    /// after IIS signed the request in: they do not judge such a request.
    #[inline]
    pub fn is_anonymous(&self) -> bool {
        self.user.is_empty() && !self.unnamed_credentials
    }

    /// The client the request claims to be: its `client`, or for an attack,
    /// which names no client, the one its user agent and device claim. What
    /// a policy judges, so that an attack dressed as a denied client is
    /// denied as that client.
    pub fn claimed_client(&self) -> ClientId {
        if self.attack.is_some() {
            self.attack_claims
        } else {
            self.client
        }
    }

    /// What the status says became of the request.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self.status, self.substatus)
    }

    /// A sign-in that failed on its credentials: 401 with IIS substatus 1
    /// ("logon failed") or Windows error 1326 ("bad user name or password"),
    /// or OWA's forms sign-in turned down (a 302, see
    /// `OWA_FORMS_TURNED_DOWN`). The legs of a challenge are not one: the
    /// anonymous first (401.2, error 5) and the one without credentials
    /// (401.1, [`WIN32_NO_CREDENTIALS`]).
    pub fn is_failed_sign_in(&self) -> bool {
        match self.status {
            401 => {
                self.win32_status == WIN32_LOGON_FAILURE
                    || (self.substatus == 1 && self.win32_status != WIN32_NO_CREDENTIALS)
            }
            302 => self.is_forms_sign_in_turned_down(),
            _ => false,
        }
    }

    /// `POST /owa/auth.owa` (a method [`forms_reads_as_post`]) whose logged
    /// query says that forms authentication turned the credentials down.
    fn is_forms_sign_in_turned_down(&self) -> bool {
        forms_reads_as_post(&self.method)
            && self.stem.eq_ignore_ascii_case("/owa/auth.owa")
            && crate::text::contains_ci(&self.query, OWA_FORMS_TURNED_DOWN)
    }

    /// The request reached the Exchange Back End website (site port 444, or 81 without TLS).
    pub fn on_backend_site(&self) -> bool {
        BACKEND_PORTS.contains(&self.server_port)
    }

    /// The request is the Mailbox Replication Service's (mailbox moves from
    /// Exchange Online or another forest): `/EWS/MRSProxy.svc`, any case,
    /// with or without a trailing `/`. Exchange's front end routes it to MRS
    /// rather than to EWS (decompiled `MrsProxyRequestHandler.IsMrsRequest`:
    /// the URL's third segment, its `/` trimmed, is `MRSProxy.svc`), so EWS's
    /// own settings (`EwsEnabled`, the application access policy) are not
    /// checked for it; authentication policies still are.
    pub fn is_mrs_proxy(&self) -> bool {
        const PAGE: &[u8] = b"mrsproxy.svc";
        let Some(rest) = self.stem.as_bytes().get(b"/ews/".len()..) else { return false };
        let rest = rest.strip_suffix(b"/").unwrap_or(rest);
        self.protocol == Protocol::Ews && rest.eq_ignore_ascii_case(PAGE)
    }

    /// The user is a computer account such as `EX04$` (see [`crate::identity::account_key`]).
    pub fn is_machine_account(&self) -> bool {
        self.user.ends_with('$')
    }

    /// Why Exchange could read this request another way than the model
    /// does, if it could: then a rule that read one value must not pass a
    /// request Exchange reads another way, so it is refused (400) before any
    /// rule, on the wire and in a simulation alike. Headers the model does
    /// not keep (a second User-Agent, a cookie) are the gateway's to screen.
    pub fn ambiguity(&self) -> Option<&'static str> {
        if self.activesync.repeated {
            return Some("ActiveSync parameter given twice (different values, or plain beside base64)");
        }
        if self.activesync.undecoded {
            return Some("ActiveSync base64 query that does not decode");
        }
        // `baduser\0` is not `baduser` to a user rule, but may be to Windows,
        // whose C-string APIs end the name at the NUL.
        if self.username.chars().any(char::is_control) {
            return Some("control character in the user name");
        }
        // Credentials that name someone the identity key reads as nobody
        // (`Anonymous`, `CONTOSO\`): no user rule could match them, while
        // Windows may sign in an account of that name. In a log the same
        // names are IIS's own marks of an anonymous request.
        if self.source == Source::Gateway && self.user.is_empty() && !self.username.trim().is_empty() {
            return Some("credentials name a user the policy reads as nobody");
        }
        // Only Autodiscover's handler reads an explicit logon from the query.
        if self.protocol == Protocol::Autodiscover && crate::url::routes_past_its_path(&self.stem, &self.query, b"") {
            return Some(ROUTED_PAST_ITS_PATH);
        }
        // Remote PowerShell's back end reads the account from `X-Rps-CAT`
        // when the front end sent no X-CommonAccessToken (ProxyShell's
        // impersonation, CVE-2021-34523).
        if crate::exploits::cat::named_in(&self.query) {
            return Some(FRONT_END_IDENTITY);
        }
        None
    }

    /// The device key used to group requests: the ActiveSync device id, or
    /// the user agent for protocols without one.
    pub fn device_key(&self) -> &str {
        if self.activesync.device_id.is_empty() {
            &self.user_agent
        } else {
            &self.activesync.device_id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(method: &str, stem: &str, query: &str, status: u16, substatus: u16, win32: u32) -> Request {
        Request {
            method: method.into(),
            stem: stem.into(),
            query: query.into(),
            status,
            substatus,
            win32_status: win32,
            ..Request::default()
        }
    }

    #[test]
    fn mrs_proxy_is_the_third_segment_mrsproxy_svc() {
        let mrs = |stem: &str| {
            Request { protocol: crate::protocol::protocol_of(stem), stem: stem.into(), ..Request::default() }
                .is_mrs_proxy()
        };
        for stem in ["/EWS/mrsproxy.svc", "/ews/MRSProxy.svc", "/EWS/mrsproxy.svc/"] {
            assert!(mrs(stem), "{stem}");
        }
        for stem in [
            "/EWS/Exchange.asmx",
            "/EWS/mrsproxy.svc/x",
            "/EWS//mrsproxy.svc",
            "/EWS/mrsproxy.svc//",
            "/ews",
            "/mrsproxy.svc",
            "/owa/mrsproxy.svc",
            "/EWSx/mrsproxy.svc",
        ] {
            assert!(!mrs(stem), "{stem}");
        }
    }

    /// Microsoft Q&A 1022693 (Apple's EWS client, anonymous, thousands a
    /// minute) and 1248391 (Outlook's Autodiscover, then its 200 as the user).
    #[test]
    fn no_credentials_challenge_leg_is_not_a_failed_sign_in() {
        let ews = "&CorrelationID=<empty>;&cafeReqId=e7a7da63-88ac-408b-b800-82458bb450b8;";
        assert!(!answered("POST", "/EWS/Exchange.asmx", ews, 401, 1, WIN32_NO_CREDENTIALS).is_failed_sign_in());
        assert!(!answered("POST", "/Autodiscover/Autodiscover.xml", "", 401, 1, 2148074254).is_failed_sign_in());
        assert!(!answered("GET", "/owa/", "", 401, 2, 5).is_failed_sign_in(), "the anonymous first leg");
        // The credentials that follow, turned down: failed sign-ins.
        assert!(answered("RPC_IN_DATA", "/rpc/rpcproxy.dll", "", 401, 1, WIN32_LOGON_FAILURE).is_failed_sign_in());
        assert!(answered("POST", "/EWS/Exchange.asmx", "", 401, 1, 0).is_failed_sign_in(), "401.1: logon failed");
        assert!(answered("POST", "/EWS/Exchange.asmx", "", 401, 0, WIN32_LOGON_FAILURE).is_failed_sign_in());
        assert!(!answered("POST", "/EWS/Exchange.asmx", "", 200, 0, 0).is_failed_sign_in());
    }

    /// IPBan's OWA line (`Recipes/Windows/LogFile/IIS.xml`), 302 and sent
    /// back to `logon.aspx?...&reason=2`; a sign-in that got in (Microsoft
    /// Q&A 228014) has no `LogoffReason`.
    #[test]
    fn owa_forms_sign_in_turned_down_is_a_failed_sign_in() {
        let turned_down = "&ClientId=FFE0193F3E554CEF803430F768C190D2&CorrelationID=<empty>;\
&cafeReqId=f93d12d7-80e5-4d34-bb66-7150d505a7dc;&LogoffReason=NoCookiesGetOrE14AuthPost&encoding=;";
        assert!(answered("POST", "/owa/auth.owa", turned_down, 302, 0, 0).is_failed_sign_in());
        assert!(answered("POST", "/OWA/Auth.owa", &turned_down.to_lowercase(), 302, 0, 0).is_failed_sign_in());
        let got_in = "&CorrelationID=<empty>;&cafeReqId=370783e0-b245-4649-84ec-66858324fcb2;&encoding=;";
        assert!(!answered("POST", "/owa/auth.owa", got_in, 302, 0, 0).is_failed_sign_in());
        // The same words elsewhere are no sign-in: a page visited without cookies.
        assert!(!answered("GET", "/owa/", turned_down, 302, 0, 0).is_failed_sign_in());
        assert!(!answered("POST", "/owa/service.svc", turned_down, 302, 0, 0).is_failed_sign_in());
        // Any method FbaModule reads as POST, as the gateway reads it (`forms.rs`).
        for method in ["post", "Post", "3", "+3"] {
            assert!(answered(method, "/owa/auth.owa", turned_down, 302, 0, 0).is_failed_sign_in(), "{method}");
        }
        assert!(!answered("PUT", "/owa/auth.owa", turned_down, 302, 0, 0).is_failed_sign_in());
        assert!(!answered("POSTX", "/owa/auth.owa", turned_down, 302, 0, 0).is_failed_sign_in());
    }
}
