//! The compiled policy: ordered rules of resolved conditions, and how each
//! condition matches a request.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use exchange::text::{concat_contains_ci, contains_ci, path_has_extension_ci, starts_with_ci, EwsPattern, Glob};
use exchange::{AuthType, ClientId, NetworkId, Protocol, Request};
use ipnet::IpNet;

use crate::inventory::Inventory;
use crate::pattern::TextPattern;

/// What a rule (or the default) does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    Deny,
}

impl Action {
    pub fn key(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

/// The outcome of [`crate::evaluate`]. `rule` indexes [`Policy::rules`]; `None`
/// means the default applied, or, with `refused`, that the request was
/// refused before any rule (see `exchange::Request::ambiguity`). `status` is
/// 0 with `Deny` when the request is aborted without an answer (IIS
/// `denyAction="AbortRequest"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub rule: Option<usize>,
    pub status: u16,
    pub substatus: u16,
    pub refused: Option<&'static str>,
}

/// Which part of the policy file a compiled rule came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleOrigin {
    /// A `[[rule]]`, with its 0-based position among them.
    Rule(usize),
    IpRestrictions,
    IisFilter,
    RequestFiltering,
    UrlRewrite,
    AuthPolicies,
    MailboxProtocols,
    EwsAccess,
    DeviceAccess,
}

impl RuleOrigin {
    /// The mechanism a rule emulates, as reports name it: `rule` for a
    /// `[[rule]]`, else the block it was compiled from.
    pub fn key(&self) -> &'static str {
        match self {
            RuleOrigin::Rule(_) => "rule",
            RuleOrigin::IpRestrictions => "ip_restrictions",
            RuleOrigin::IisFilter => "iis_filter",
            RuleOrigin::RequestFiltering => "request_filtering",
            RuleOrigin::UrlRewrite => "url_rewrite",
            RuleOrigin::AuthPolicies => "auth_policies",
            RuleOrigin::MailboxProtocols => "mailbox_protocols",
            RuleOrigin::EwsAccess => "ews_access",
            RuleOrigin::DeviceAccess => "device_access",
        }
    }
}

/// How a user-agent value is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextMode {
    Contains,
    Prefix,
    Exact,
}

/// Where an IIS filtering rule looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanTarget {
    /// A request header, by its canonical name.
    Header(Header),
    Url,
    QueryString,
}

/// Request headers the request model carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    UserAgent,
    XForwardedFor,
}

impl Header {
    pub fn name(self) -> &'static str {
        match self {
            Header::UserAgent => "User-Agent",
            Header::XForwardedFor => "X-Forwarded-For",
        }
    }
    fn line_prefix(self) -> &'static str {
        match self {
            Header::UserAgent => "User-Agent: ",
            Header::XForwardedFor => "X-Forwarded-For: ",
        }
    }
}

/// `device = "known" | "new"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceState {
    Known,
    New,
}

/// A set of users: exact keys (lower-case) and `*` patterns.
#[derive(Clone, Debug, Default)]
pub struct UserSet {
    pub exact: HashSet<String>,
    /// The exact names beyond ASCII as Active Directory folds them (see
    /// [`fold_user_key`]): `jürgen` is `jurgen` to a sign-in.
    pub folded: HashSet<String>,
    pub patterns: Vec<Glob>,
    /// What the file said, for display: patterns, names, `@file`.
    pub shown: Vec<String>,
}

impl UserSet {
    fn matches(&self, user: &str) -> bool {
        if user.is_empty() {
            return false;
        }
        if self.exact.contains(user) || self.folded.contains(user) || self.patterns.iter().any(|p| p.matches(user)) {
            return true;
        }
        // Allocates for a name beyond ASCII only.
        fold_user_key(user).is_some_and(|f| {
            self.exact.contains(&f) || self.folded.contains(&f) || self.patterns.iter().any(|p| p.matches(&f))
        })
    }
    /// Plain user names only (no patterns, no group file), for emitters.
    pub fn plain_names(&self) -> Option<Vec<&str>> {
        if self.patterns.is_empty() && self.shown.iter().all(|s| !s.starts_with('@')) {
            let mut v: Vec<&str> = self.exact.iter().map(String::as_str).collect();
            v.sort_unstable();
            Some(v)
        } else {
            None
        }
    }
}

/// Letters Active Directory reads as their base letter in a user name.
const FOLDS: [(char, &str); 21] = [
    ('a', "àáâãäåāăąǎǟǡǻȁȃȧ"),
    ('c', "çćĉċč"),
    ('d', "ďđ"),
    ('e', "èéêëēĕėęěȅȇȩ"),
    ('g', "ĝğġģǧǵ"),
    ('h', "ĥħȟ"),
    ('i', "ìíîïĩīĭįıǐȉȋ"),
    ('j', "ĵǰ"),
    ('k', "ķǩ"),
    ('l', "ĺļľŀł"),
    ('n', "ñńņňǹ"),
    ('o', "òóôõöøōŏőǒǫǭǿȍȏȫȭȯȱ"),
    ('r', "ŕŗřȑȓ"),
    ('s', "śŝşšșſ"),
    ('t', "ţťŧț"),
    ('u', "ùúûüũūŭůűųǔǖǘǚǜȕȗ"),
    ('w', "ŵ"),
    ('y', "ýÿŷȳ"),
    ('z', "źżžƶ"),
    ('e', "ǝ"),
    ('o', "ɵ"),
];

/// A user key beyond ASCII as Active Directory would match it at sign-in,
/// if that differs: full-width forms as ASCII (KB 2656984), diacritics and
/// combining marks dropped, `ß` as `ss` (KB 938447, Samba bug 14847: `björn`
/// signs in `bjorn`), then cut to the account key again (`baduser＠contoso`).
/// A partial fold: Active Directory's own rules are not published. `None`
/// for ASCII, without allocating.
pub fn fold_user_key(key: &str) -> Option<String> {
    if key.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(key.len());
    for c in key.chars().flat_map(char::to_lowercase) {
        match c {
            '\u{FF01}'..='\u{FF5E}' => out.extend(char::from_u32(c as u32 - 0xFEE0).map(|a| a.to_ascii_lowercase())),
            '\u{0300}'..='\u{036F}' => {}
            'ß' => out.push_str("ss"),
            _ => out.push(FOLDS.iter().find(|(_, from)| from.contains(c)).map_or(c, |(to, _)| *to)),
        }
    }
    let name = out.rsplit_once('\\').map_or(out.as_str(), |(_, u)| u);
    let name = name.split_once('@').map_or(name, |(u, _)| u).trim();
    (name != key).then(|| name.to_string())
}

/// One compiled condition. Values inside one condition are ORed.
#[derive(Clone, Debug)]
pub enum Cond {
    Protocol(Vec<Protocol>),
    /// Path patterns, any case; a pattern without `*` is a prefix ([`Glob::path`]).
    Path(Vec<Glob>),
    /// IIS configuration paths (`/EWS`): the path itself or below it, by
    /// whole segments, any case; as IIS applies a `<location>` or web.config.
    Location(Vec<String>),
    /// A URL Rewrite pattern on the URL or a server variable.
    Pattern(Arc<TextPattern>),
    /// Any of these (URL Rewrite's `MatchAny`).
    Any(Vec<Cond>),
    /// The device id is on the request user's own list (`list` names it,
    /// `ActiveSyncBlockedDeviceIDs`); user keys to ids, any case.
    OwnDevices {
        list: &'static str,
        by_user: Arc<std::collections::HashMap<String, Vec<String>>>,
    },
    UserAgent {
        case_sensitive: bool,
        items: Vec<(TextMode, String)>,
    },
    /// User agent against Exchange's EWS application list patterns.
    UserAgentEws(Vec<EwsPattern>),
    Client(Vec<(ClientId, String)>),
    /// ActiveSync command, case-insensitive.
    Command(Vec<String>),
    DeviceType(Vec<String>),
    DeviceId(Vec<String>),
    DeviceModel(Vec<String>),
    DeviceOs(Vec<String>),
    User(Arc<UserSet>),
    Network(Vec<(NetworkId, String)>),
    Cidr {
        nets: Vec<IpNet>,
        /// Name of the policy range these came from, for display.
        name: Option<String>,
        /// Match the connection's address (c-ip), not the X-Forwarded-For client.
        peer: bool,
    },
    Device(DeviceState),
    /// The authentication scheme (unknown from IIS logs, so never matched there).
    Auth(Vec<AuthType>),
    /// IIS filtering rule: substring deny strings (any case) over the targets.
    IisScan {
        targets: Vec<ScanTarget>,
        strings: Vec<String>,
        /// File extensions (`.gif`); empty = every request.
        applies_to: Vec<String>,
    },
    Not(Box<Cond>),
}

/// A device's model and OS: as this request's `Log=` gives them (log lines),
/// else as the inventory's device export holds them (the gateway, and log
/// lines without them: Exchange logs them on few requests).
fn device_facts<'a>(req: &'a Request, inv: Option<&'a Inventory>) -> (&'a str, &'a str) {
    let log = &req.activesync.log;
    if !log.device_model.is_empty() && !log.device_os.is_empty() {
        return (&log.device_model, &log.device_os);
    }
    let (model, os) = inv.and_then(|i| i.device_facts(&req.activesync.device_id)).unwrap_or(("", ""));
    let pick = |logged: &'a str, known: &'a str| if logged.is_empty() { known } else { logged };
    (pick(&log.device_model, model), pick(&log.device_os, os))
}

fn any_ci(values: &[String], v: &str) -> bool {
    values.iter().any(|x| x.eq_ignore_ascii_case(v))
}

impl Cond {
    fn matches(&self, req: &Request, inv: Option<&Inventory>) -> bool {
        match self {
            Cond::Protocol(ps) => ps.contains(&req.protocol),
            Cond::Path(ps) => ps.iter().any(|p| p.matches(&req.stem)),
            Cond::Location(ps) => ps.iter().any(|p| under(&req.stem, p)),
            Cond::Pattern(p) => p.matches(req),
            Cond::Any(cs) => cs.iter().any(|c| c.matches(req, inv)),
            Cond::OwnDevices { by_user, .. } => {
                by_user.get(req.user.as_str()).is_some_and(|ids| any_ci(ids, &req.activesync.device_id))
            }
            Cond::UserAgent { case_sensitive, items } => {
                let ua = req.user_agent.as_str();
                items.iter().any(|(mode, v)| match (mode, case_sensitive) {
                    (TextMode::Contains, true) => ua.contains(v.as_str()),
                    (TextMode::Contains, false) => contains_ci(ua, v),
                    (TextMode::Prefix, true) => ua.starts_with(v.as_str()),
                    (TextMode::Prefix, false) => starts_with_ci(ua, v),
                    (TextMode::Exact, true) => ua == v,
                    (TextMode::Exact, false) => ua.eq_ignore_ascii_case(v),
                })
            }
            Cond::UserAgentEws(ps) => ps.iter().any(|p| p.matches(&req.user_agent)),
            Cond::Client(cs) => cs.iter().any(|(c, _)| *c == req.claimed_client()),
            Cond::Command(v) => any_ci(v, &req.activesync.command),
            Cond::DeviceType(v) => any_ci(v, &req.activesync.device_type),
            Cond::DeviceId(v) => any_ci(v, &req.activesync.device_id),
            Cond::DeviceModel(v) => any_ci(v, device_facts(req, inv).0),
            Cond::DeviceOs(v) => any_ci(v, device_facts(req, inv).1),
            Cond::User(set) => set.matches(&req.user),
            Cond::Network(ns) => ns.iter().any(|(n, _)| *n == req.network),
            Cond::Cidr { nets, peer, .. } => {
                let ip: Option<IpAddr> = if *peer { req.peer_ip } else { req.client_ip.or(req.peer_ip) };
                // Either spelling of an IPv4 address, as the network lookup reads it.
                ip.is_some_and(|ip| exchange::networks::any_contains(nets, ip))
            }
            Cond::Device(state) => {
                let known = inv.is_some_and(|i| i.contains(&req.user, req.device_key()));
                known == (*state == DeviceState::Known)
            }
            Cond::Auth(schemes) => schemes.contains(&req.auth),
            Cond::IisScan { targets, strings, applies_to } => {
                if !applies_to.is_empty() && !applies_to.iter().any(|e| path_has_extension_ci(&req.stem, e)) {
                    return false;
                }
                let scan = |query: &str| {
                    targets.iter().any(|t| {
                        strings.iter().any(|s| match t {
                            ScanTarget::Header(h) => {
                                let value = match h {
                                    Header::UserAgent => &req.user_agent,
                                    Header::XForwardedFor => &req.forwarded_for,
                                };
                                !value.is_empty() && concat_contains_ci(h.line_prefix(), value, s)
                            }
                            ScanTarget::Url => contains_ci(&req.stem, s),
                            ScanTarget::QueryString => contains_ci(query, s) || unescaped_contains_ci(query, s),
                        })
                    })
                };
                if targets.contains(&ScanTarget::QueryString) {
                    with_client_query(req, scan)
                } else {
                    scan("")
                }
            }
            Cond::Not(c) => !c.matches(req, inv),
        }
    }
}

/// `f` of the query the client sent, which IIS filtered and URL Rewrite
/// reads ([`Request::client_query`]): an IIS line logs more, Exchange's
/// `&CorrelationID=<empty>;` among it, which a `<` sequence would deny.
/// In a buffer reused per thread: no allocation per request once grown.
pub(crate) fn with_client_query<R>(req: &Request, f: impl FnOnce(&str) -> R) -> R {
    if req.source != exchange::Source::Iis {
        return f(&req.query);
    }
    thread_local! {
        static CLIENT_QUERY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    CLIENT_QUERY.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(req.client_query(&mut scratch)),
        Err(_) => f(req.client_query(&mut String::new())),
    })
}

/// IIS scans a query string raw and, with `unescapeQueryString` (on by
/// default), unescaped too: `?a=%65vil` holds `evil`. Unescaped as ASP.NET
/// reads it (`+`, `%XX`, `%uNNNN`), so what Exchange reads is scanned.
fn unescaped_contains_ci(query: &str, s: &str) -> bool {
    if !query.bytes().any(|b| b == b'%' || b == b'+') {
        return false;
    }
    thread_local! {
        // Reused: no allocation per request once it has grown.
        static UNESCAPED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    let scan = |unescaped: &mut String| {
        unescaped.clear();
        exchange::url::decode_query_value_into(query, unescaped);
        contains_ci(unescaped, s)
    };
    UNESCAPED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut unescaped) => scan(&mut unescaped),
        Err(_) => scan(&mut String::new()),
    })
}

/// `stem` is `path` or below it, by whole segments, any case.
pub(crate) fn under(stem: &str, path: &str) -> bool {
    let p = path.trim_end_matches('/');
    stem.len() >= p.len()
        && stem.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
        && matches!(stem.as_bytes().get(p.len()), None | Some(b'/'))
}

/// `what` and then the items: `'a'` alone, or `any of ['a', 'b']`.
fn list(f: &mut fmt::Formatter, what: &str, items: impl IntoIterator<Item = impl fmt::Display>) -> fmt::Result {
    let v: Vec<String> = items.into_iter().map(|i| format!("'{i}'")).collect();
    if v.len() == 1 {
        write!(f, "{what}{}", v[0])
    } else {
        write!(f, "{what}any of [{}]", v.join(", "))
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Cond::Protocol(ps) => list(f, "protocol is ", ps.iter().map(|p| p.key())),
            Cond::Path(ps) => list(
                f,
                "path matches ",
                ps.iter().map(|p| if p.has_wildcard() { p.to_string() } else { format!("{p}*") }),
            ),
            Cond::Location(ps) => list(f, "path is under ", ps),
            Cond::Pattern(p) => write!(f, "{p}"),
            Cond::Any(cs) => {
                let v: Vec<String> = cs.iter().map(|c| c.to_string()).collect();
                write!(f, "({})", v.join(" or "))
            }
            Cond::OwnDevices { list, by_user } => {
                write!(f, "device id is on the user's own {list} ({} names)", by_user.len())
            }
            Cond::UserAgent { case_sensitive, items } => {
                f.write_str("user agent ")?;
                let v: Vec<String> = items
                    .iter()
                    .map(|(m, s)| {
                        let m = match m {
                            TextMode::Contains => "contains",
                            TextMode::Prefix => "starts with",
                            TextMode::Exact => "is",
                        };
                        format!("{m} '{s}'")
                    })
                    .collect();
                f.write_str(&v.join(" or "))?;
                f.write_str(if *case_sensitive { " (case-sensitive)" } else { " (any case)" })
            }
            Cond::UserAgentEws(ps) => {
                if ps.is_empty() {
                    f.write_str("user agent matches an empty EWS list (never)")
                } else {
                    list(f, "user agent matches EWS pattern ", ps)
                }
            }
            Cond::Client(cs) => list(f, "client is ", cs.iter().map(|(_, n)| n)),
            Cond::Command(v) => list(f, "command is ", v),
            Cond::DeviceType(v) => list(f, "device type is ", v),
            Cond::DeviceId(v) => list(f, "device id is ", v),
            Cond::DeviceModel(v) => list(f, "device model is ", v),
            Cond::DeviceOs(v) => list(f, "device OS is ", v),
            // An imported policy names thousands: the first few say enough.
            Cond::User(set) if set.shown.len() > 12 => {
                list(f, "user is ", &set.shown[..10])?;
                write!(f, " and {} more", set.shown.len() - 10)
            }
            Cond::User(set) => list(f, "user is ", &set.shown),
            Cond::Network(ns) => list(f, "network is ", ns.iter().map(|(_, n)| n)),
            Cond::Cidr { nets, name, peer } => {
                f.write_str(if *peer { "connection address in " } else { "client address in " })?;
                match name {
                    Some(n) => write!(f, "range '{n}'"),
                    None => list(f, "", nets),
                }
            }
            Cond::Device(DeviceState::Known) => f.write_str("device is known"),
            Cond::Device(DeviceState::New) => f.write_str("device is new"),
            Cond::Auth(schemes) => list(f, "authentication is ", schemes.iter().map(|a| a.key())),
            Cond::IisScan { targets, strings, applies_to } => {
                let t: Vec<&str> = targets
                    .iter()
                    .map(|t| match t {
                        ScanTarget::Header(h) => h.name(),
                        ScanTarget::Url => "URL",
                        ScanTarget::QueryString => "query string",
                    })
                    .collect();
                list(f, &format!("{} contains ", t.join(" or ")), strings)?;
                if !applies_to.is_empty() {
                    write!(f, " (extensions {})", applies_to.join(", "))?;
                }
                Ok(())
            }
            Cond::Not(c) => write!(f, "not ({c})"),
        }
    }
}

/// Whether `pred` holds for one of `conds` or a condition inside them.
fn any_uses<'a>(mut conds: impl Iterator<Item = &'a Cond>, pred: &dyn Fn(&Cond) -> bool) -> bool {
    fn walk(c: &Cond, pred: &dyn Fn(&Cond) -> bool) -> bool {
        pred(c)
            || matches!(c, Cond::Not(inner) if walk(inner, pred))
            || matches!(c, Cond::Any(cs) if cs.iter().any(|c| walk(c, pred)))
    }
    conds.any(|c| walk(c, pred))
}

/// One compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    pub status: u16,
    pub substatus: u16,
    /// True when the file gave `status` explicitly (emitters must honour it).
    pub status_explicit: bool,
    /// ANDed.
    pub conditions: Vec<Cond>,
    /// Exceptions: the rule is skipped when every condition of any group matches.
    pub unless: Vec<Vec<Cond>>,
    pub origin: RuleOrigin,
    /// Why this rule exists, in the words of the mechanism it emulates.
    pub note: Option<String>,
    /// Line in the policy file (1-based).
    pub line: usize,
    /// Marks ActiveSync quarantine (answered as a deny).
    pub quarantine: bool,
    /// A mailbox's or the organisation's Exchange setting, which Exchange
    /// applies once IIS signed the request in: it does not judge an
    /// anonymous request ([`Request::is_anonymous`]; a sign-in's first leg,
    /// which IIS answers with its challenge, or a health page).
    pub after_sign_in: bool,
}

impl Rule {
    pub(crate) fn matches(&self, req: &Request, inv: Option<&Inventory>) -> bool {
        !(self.after_sign_in && req.is_anonymous())
            && self.conditions.iter().all(|c| c.matches(req, inv))
            && !self.unless.iter().any(|g| g.iter().all(|c| c.matches(req, inv)))
    }

    /// Whether it reads a device's model or OS.
    pub(crate) fn reads_device_facts(&self) -> bool {
        self.uses(&|c| matches!(c, Cond::DeviceModel(_) | Cond::DeviceOs(_)))
    }

    pub(crate) fn uses(&self, pred: &dyn Fn(&Cond) -> bool) -> bool {
        any_uses(self.conditions.iter().chain(self.unless.iter().flatten()), pred)
    }

    fn describe_conditions(&self) -> String {
        let mut s = if self.conditions.is_empty() {
            "always".to_string()
        } else {
            self.conditions.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" and ")
        };
        if !self.unless.is_empty() {
            let g: Vec<String> = self
                .unless
                .iter()
                .map(|g| {
                    let s = g.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" and ");
                    if g.len() > 1 {
                        format!("({s})")
                    } else {
                        s
                    }
                })
                .collect();
            s.push_str(" unless ");
            s.push_str(&g.join(" or "));
        }
        s
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} ", self.name)?;
        match self.action {
            Action::Allow => f.write_str("allow")?,
            Action::Deny if self.substatus != 0 => write!(f, "deny {}.{}", self.status, self.substatus)?,
            Action::Deny => write!(f, "deny {}", self.status)?,
        }
        if self.quarantine {
            f.write_str(" (quarantine)")?;
        }
        write!(f, " if {}", self.describe_conditions())?;
        if self.after_sign_in {
            f.write_str(" (signed-in requests only)")?;
        }
        Ok(())
    }
}

/// A compiled policy. Build with [`Policy::load`] or [`Policy::from_toml`];
/// evaluate it once made a [`crate::ReadyPolicy`].
#[derive(Clone, Debug)]
pub struct Policy {
    pub(crate) origin: String,
    pub(crate) rules: Vec<Rule>,
    pub(crate) default: Action,
    pub(crate) default_status: u16,
    pub(crate) blocks: crate::blocks::Blocks,
    pub(crate) ranges: Vec<(String, Vec<IpNet>)>,
    pub(crate) group_files: Vec<std::path::PathBuf>,
}

impl Policy {
    /// The group files the policy read, each once, in the order first read.
    pub fn group_files(&self) -> &[std::path::PathBuf] {
        &self.group_files
    }

    /// The compiled rules in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn default_action(&self) -> Action {
        self.default
    }

    /// The file the policy came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Named ranges defined in the policy's `[ranges]`.
    pub fn ranges(&self) -> &[(String, Vec<IpNet>)] {
        &self.ranges
    }

    /// True when some rule has a `device = "known" | "new"` condition, which
    /// needs an inventory of known devices.
    pub fn requires_inventory(&self) -> bool {
        self.rules.iter().any(|r| r.uses(&|c| matches!(c, Cond::Device(_))))
    }

    /// True when some rule looks at the authentication type, which IIS logs
    /// do not record: such a rule never matches their lines.
    /// Whether a rule reads a device's model or OS.
    pub fn reads_device_facts(&self) -> bool {
        self.rules.iter().any(Rule::reads_device_facts)
    }

    /// A deny rule whose conditions name users: live, it cannot see a
    /// request signed in with Kerberos or an opaque token, which names no
    /// user the gateway can read (its exceptions are safe: such a request
    /// is no one excepted).
    pub fn deny_rule_on_users(&self) -> Option<&Rule> {
        self.rules.iter().find(|r| {
            r.action == Action::Deny
                && any_uses(r.conditions.iter(), &|c| matches!(c, Cond::User(_) | Cond::OwnDevices { .. }))
        })
    }

    pub fn uses_auth_type(&self) -> bool {
        self.rules.iter().any(|r| r.uses(&|c| matches!(c, Cond::Auth(_))))
    }

    /// A sentence on why `decision` was reached for `request`. Allocates; call
    /// only when a decision is shown.
    pub fn explain(&self, decision: &Decision, request: &Request) -> String {
        let Some(i) = decision.rule else {
            return match decision.action {
                Action::Allow => "no rule matched; the default allows".to_string(),
                Action::Deny => format!("no rule matched; the default denies ({})", decision.status),
            };
        };
        let Some(r) = self.rules.get(i) else {
            return format!("rule {} (not in this policy)", i + 1);
        };
        let verb = match (r.action, r.quarantine) {
            (Action::Allow, _) => "allowed".to_string(),
            (Action::Deny, true) => format!("quarantined ({})", decision.status),
            (Action::Deny, false) if decision.status == 0 => "aborted the connection".to_string(),
            (Action::Deny, false) if decision.substatus != 0 => {
                format!("denied ({}.{})", decision.status, decision.substatus)
            }
            (Action::Deny, false) => format!("denied ({})", decision.status),
        };
        let why = r.note.clone().unwrap_or_else(|| r.describe_conditions());
        let seen = observed(r, request);
        if seen.is_empty() {
            format!("rule {} '{}' {verb}: {why}", i + 1, r.name)
        } else {
            format!("rule {} '{}' {verb}: {why} [{seen}]", i + 1, r.name)
        }
    }
}

/// What the request showed for the fields a rule looks at.
fn observed(r: &Rule, req: &Request) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut add = |k: &str, v: &str| {
        let item = format!("{k} '{v}'");
        if !v.is_empty() && !seen.contains(&item) {
            seen.push(item);
        }
    };
    fn walk(c: &Cond, req: &Request, add: &mut dyn FnMut(&str, &str)) {
        match c {
            Cond::Path(_) => add("path", &req.stem),
            Cond::UserAgent { .. } | Cond::UserAgentEws(_) => add("user agent", &req.user_agent),
            Cond::Command(_) => add("command", &req.activesync.command),
            Cond::DeviceType(_) => add("device type", &req.activesync.device_type),
            Cond::DeviceId(_) | Cond::Device(_) | Cond::OwnDevices { .. } => add("device", req.device_key()),
            Cond::DeviceModel(_) => add("device model", &req.activesync.log.device_model),
            Cond::DeviceOs(_) => add("device OS", &req.activesync.log.device_os),
            Cond::User(_) => add("user", &req.user),
            Cond::Auth(_) => add("authentication", req.auth.key()),
            Cond::IisScan { .. } => add("user agent", &req.user_agent),
            Cond::Location(_) => add("path", &req.stem),
            Cond::Pattern(p) => match p.input {
                crate::pattern::RewriteInput::UserAgent => add("user agent", &req.user_agent),
                crate::pattern::RewriteInput::QueryString => with_client_query(req, |q| add("query", q)),
                crate::pattern::RewriteInput::ForwardedFor => add("X-Forwarded-For", &req.forwarded_for),
                crate::pattern::RewriteInput::Method => add("method", &req.method),
                _ => add("path", &req.stem),
            },
            Cond::Any(cs) => cs.iter().for_each(|c| walk(c, req, add)),
            Cond::Not(c) => walk(c, req, add),
            _ => {}
        }
    }
    for c in r.conditions.iter().chain(r.unless.iter().flatten()) {
        walk(c, req, &mut add);
    }
    seen.join(", ")
}

#[cfg(test)]
mod fold_tests {
    use super::*;

    #[test]
    fn user_keys_fold_as_active_directory_signs_in() {
        for (key, want) in [
            ("ｂａｄｕｓｅｒ", Some("baduser")),
            ("bāduser", Some("baduser")),
            ("ba\u{301}duser", Some("baduser")),
            ("meißner", Some("meissner")),
            ("baduser＠contoso.com", Some("baduser")),
            ("contoso＼baduser", Some("baduser")),
            ("jürgen", Some("jurgen")),
            ("baduser", None),
            ("山田", None),
        ] {
            assert_eq!(fold_user_key(key).as_deref(), want, "{key}");
        }
        let mut set = UserSet::default();
        set.exact.insert("jürgen".into());
        set.folded.insert("jurgen".into());
        assert!(set.matches("jurgen") && set.matches("jürgen") && set.matches("ｊüｒｇｅｎ"));
        assert!(!set.matches("juergen") && !set.matches(""));
    }
}
