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

/// How the ActiveSync parameters were encoded in the query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueryEncoding {
    #[default]
    None,
    Plain,
    Base64,
}

/// What kind of traffic a request is. Exactly one applies, in this order of
/// precedence: a line logged twice, an exploit attempt, a monitoring probe,
/// a back-end hop, a machine account, else a person.
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
    /// Matches a public detection rule; the rule name is in `Request::exploit`.
    Exploit,
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

/// The `&Log=` diagnostics Exchange appends to ActiveSync queries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogTokens {
    /// `V` protocol version, e.g. `160`.
    pub version: String,
    pub smtp_address: String,
    pub device_os: String,
    pub device_model: String,
    /// `As` access state and reason, e.g. `AllowedG`.
    pub access_state: String,
    /// `PrxFrom`: the front end that proxied this request.
    pub proxied_from: String,
    /// `HH`: the Host header.
    pub host: String,
}

impl LogTokens {
    pub fn clear(&mut self) {
        self.version.clear();
        self.smtp_address.clear();
        self.device_os.clear();
        self.device_model.clear();
        self.access_state.clear();
        self.proxied_from.clear();
        self.host.clear();
    }
}

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
    /// different values: which one Exchange reads is not known, so the
    /// gateway refuses such a request rather than guess.
    pub repeated: bool,
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
    }
}

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
    /// User-Agent with `+` decoded to space, as the client sent it.
    pub user_agent: String,
    /// cs-username as logged (`DOMAIN\user`, `user@domain`), or the Basic-auth user.
    pub username: String,
    /// The authentication scheme; unknown from IIS logs.
    pub auth: AuthType,
    pub source: Source,
    /// The identity key: lower-cased account name; empty when anonymous.
    pub user: String,
    pub activesync: ActiveSync,
    pub client: ClientId,
    pub traffic: Traffic,
    /// Name of the detection rule when `traffic` is `Exploit`.
    pub exploit: Option<&'static str>,
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
        self.server_port = 0;
        self.server_ip = None;
        self.peer_ip = None;
        self.client_ip = None;
        self.network = NetworkId::default();
        self.forwarded_for.clear();
        self.user_agent.clear();
        self.username.clear();
        self.auth = AuthType::Unknown;
        self.source = Source::Unknown;
        self.user.clear();
        self.activesync.clear();
        self.client = ClientId::default();
        self.traffic = Traffic::Person;
        self.exploit = None;
    }

    /// The user is a computer account such as `EX04$` (see [`crate::identity::account_key`]).
    pub fn is_machine_account(&self) -> bool {
        self.user.ends_with('$')
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
