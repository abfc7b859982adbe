//! The compiled policy: ordered rules of resolved conditions, and how each
//! condition matches a request. How they read in words is in `describe`;
//! user sets, folded as Active Directory signs in, in `users`.

mod describe;
mod users;

use std::net::IpAddr;
use std::sync::Arc;

use exchange::text::{
    concat_contains_ci, contains_ci, ends_with_ci, path_has_extension_ci, starts_with_ci, EwsPattern, Glob,
};
use exchange::{AuthType, ClientId, NetworkId, Protocol, Request};
use ipnet::IpNet;

use crate::inventory::Inventory;
use crate::pattern::TextPattern;

pub use users::{fold_user_key, UserSet};

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
    /// Denied for naming no one yet, where a Windows sign-in opens and the
    /// policy may let the request through once it names its user: answered
    /// with the sign-in's challenge (401) instead (see
    /// [`crate::may_allow_once_signed_in`]).
    pub challenge: bool,
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
    pub(crate) fn line_prefix(self) -> &'static str {
        match self {
            Header::UserAgent => "User-Agent: ",
            Header::XForwardedFor => "X-Forwarded-For: ",
        }
    }

    /// Whether an IIS deny string scanned in this header's line could match
    /// across its name (`agent` in `User-Agent: x`, ` Moz` at the value's
    /// start), where a test of the value alone would not.
    pub(crate) fn scan_crosses_name(self, s: &str) -> bool {
        let line = self.line_prefix();
        contains_ci(line, s) || (1..s.len()).any(|k| s.is_char_boundary(k) && ends_with_ci(line, &s[..k]))
    }
}

/// `device = "known" | "new"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceState {
    Known,
    New,
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
    /// The ActiveSync request names a DeviceId and is no `OPTIONS`: what
    /// Exchange's device access judges (a sign-in's first leg names none,
    /// and "OPTIONS is always allowed", decompiled
    /// `Command.DetermineDeviceAccessState`, the method read in any case).
    /// An `OPTIONS` is one only with no command or `Cmd=Options` (as Outlook
    /// sends it): one naming another (`OPTIONS ...?Cmd=Sync`) is judged, as
    /// what Exchange dispatches by its `Cmd` is not known here.
    NamesDevice,
    /// A mailbox move's call to `/EWS/MRSProxy.svc`, which Exchange routes
    /// to its Mailbox Replication Service, not to EWS
    /// ([`exchange::Request::is_mrs_proxy`]).
    MrsProxy,
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

/// An ActiveSync `OPTIONS` as Exchange's device access always allows it:
/// the method in any case, with no command or `Options` (see
/// [`Cond::NamesDevice`]).
fn is_options(req: &Request) -> bool {
    let command = req.activesync.command.as_str();
    req.method.eq_ignore_ascii_case("OPTIONS") && (command.is_empty() || command.eq_ignore_ascii_case("Options"))
}

fn any_ci(values: &[String], v: &str) -> bool {
    values.iter().any(|x| x.eq_ignore_ascii_case(v))
}

impl Cond {
    /// [`Cond::matches`] for a request that names no one yet, once it names
    /// its user (see [`Rule::matches_once_signed_in`]): `None` where the
    /// answer depends on who that will be.
    fn matches_once_signed_in(&self, req: &Request, inv: Option<&Inventory>) -> Option<bool> {
        match self {
            Cond::User(_) | Cond::OwnDevices { .. } | Cond::Device(_) => None,
            // Without credentials yet, the scheme is the one it will sign in with.
            Cond::Auth(_) if req.auth == AuthType::Unknown && req.auth_mechanism == AuthType::Unknown => None,
            Cond::Not(inner) => inner.matches_once_signed_in(req, inv).map(|v| !v),
            Cond::Any(cs) => any3(cs.iter().map(|c| c.matches_once_signed_in(req, inv))),
            _ => Some(self.matches(req, inv)),
        }
    }

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
            // As sent, or as the class Exchange reads it as (`IMEI...` is `IMEI`).
            Cond::DeviceType(v) => {
                let sent = req.activesync.device_type.as_str();
                any_ci(v, sent) || any_ci(v, exchange::activesync::device_class(sent))
            }
            Cond::DeviceId(v) => any_ci(v, &req.activesync.device_id),
            Cond::NamesDevice => !req.activesync.device_id.is_empty() && !is_options(req),
            Cond::MrsProxy => req.is_mrs_proxy(),
            Cond::DeviceModel(v) => any_ci(v, device_facts(req, inv).0),
            Cond::DeviceOs(v) => any_ci(v, device_facts(req, inv).1),
            Cond::User(set) => set.matches(&req.user),
            Cond::Network(ns) => ns.iter().any(|(n, _)| *n == req.network),
            Cond::Cidr { nets, peer, .. } => {
                let ip: Option<IpAddr> = if *peer { req.peer_ip } else { req.client_ip.or(req.peer_ip) };
                // Either spelling of an IPv4 address, as the network lookup reads it.
                ip.is_some_and(|ip| exchange::networks::any_contains(nets, ip))
            }
            // A device is someone's, and ActiveSync names it: a request that
            // signs no one in (a balancer's health page, a sign-in's first
            // leg) or an ActiveSync one without a DeviceId is no device, new
            // or known. Exchange answers the first 401 or serves its health
            // page, and will not sync the second.
            Cond::Device(_)
                if req.is_anonymous()
                    || (req.protocol == Protocol::ActiveSync && req.activesync.device_id.is_empty()) =>
            {
                false
            }
            Cond::Device(state) => {
                let known = inv.is_some_and(|i| i.contains(&req.user, req.device_key()));
                known == (*state == DeviceState::Known)
            }
            // NTLM or Kerberos inside Negotiate is what Windows signs in with.
            Cond::Auth(schemes) => {
                schemes.contains(&req.auth)
                    || (req.auth_mechanism != AuthType::Unknown && schemes.contains(&req.auth_mechanism))
            }
            Cond::IisScan { targets, strings, applies_to } => {
                if !applies_to.is_empty() && !applies_to.iter().any(|e| path_has_extension_ci(&req.stem, e)) {
                    return false;
                }
                let scan = |query: &str| {
                    targets.iter().any(|t| {
                        strings.iter().any(|s| match t {
                            ScanTarget::Header(h) => {
                                let value = match h {
                                    Header::UserAgent => req.user_agent.as_str(),
                                    Header::XForwardedFor => req.forwarded_for_header(),
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

/// Whether `pred` holds for one of `conds` or a condition inside them.
fn any_uses<'a>(mut conds: impl Iterator<Item = &'a Cond>, pred: &dyn Fn(&Cond) -> bool) -> bool {
    fn walk(c: &Cond, pred: &dyn Fn(&Cond) -> bool) -> bool {
        pred(c)
            || matches!(c, Cond::Not(inner) if walk(inner, pred))
            || matches!(c, Cond::Any(cs) if cs.iter().any(|c| walk(c, pred)))
    }
    conds.any(|c| walk(c, pred))
}

/// Three-valued logic (`None`: not known yet): every one holds.
fn all3(values: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut known = true;
    for v in values {
        match v {
            Some(false) => return Some(false),
            None => known = false,
            Some(true) => {}
        }
    }
    known.then_some(true)
}

/// Three-valued logic: any one holds (none fails to hold is not all hold).
fn any3(values: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    all3(values.map(|v| v.map(|b| !b))).map(|b| !b)
}

/// Three-valued logic: both hold.
fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    all3([a, b].into_iter())
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
    /// Where a URL Rewrite `Redirect` sends the client (its `Location`),
    /// when its url holds no back-reference or server variable.
    pub redirect: Option<Redirect>,
}

/// A URL Rewrite `Redirect` target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub url: String,
    /// IIS `appendQueryString`.
    pub append_query: bool,
}

impl Redirect {
    /// The `Location` IIS answers a request with query string `query` (no
    /// `?`) with: the url, and the query after it unless
    /// `appendQueryString` is false (after `&` where the url has a query
    /// of its own: not checked against IIS).
    pub fn location(&self, query: Option<&str>) -> String {
        match query.filter(|q| self.append_query && !q.is_empty()) {
            Some(q) => format!("{}{}{q}", self.url, if self.url.contains('?') { '&' } else { '?' }),
            None => self.url.clone(),
        }
    }
}

impl Rule {
    /// Whether the rule matches `req`, a request that names no one yet, once
    /// it names its user: `Some` when that does not depend on who it will
    /// be, `None` when it may (a condition on users or their devices, or a
    /// mailbox's setting, which judges a request once it signs someone in).
    pub(crate) fn matches_once_signed_in(&self, req: &Request, inv: Option<&Inventory>) -> Option<bool> {
        let conditions = all3(self.conditions.iter().map(|c| c.matches_once_signed_in(req, inv)));
        let excepted = any3(self.unless.iter().map(|g| all3(g.iter().map(|c| c.matches_once_signed_in(req, inv)))));
        let matched = and3(conditions, excepted.map(|e| !e));
        if self.after_sign_in {
            return if matched == Some(false) { Some(false) } else { None };
        }
        matched
    }

    pub(crate) fn matches(&self, req: &Request, inv: Option<&Inventory>) -> bool {
        !(self.after_sign_in && req.is_anonymous())
            && self.conditions.iter().all(|c| c.matches(req, inv))
            && !self.unless.iter().any(|g| g.iter().all(|c| c.matches(req, inv)))
    }

    /// Whether it reads a device's model or OS.
    pub(crate) fn reads_device_facts(&self) -> bool {
        self.uses(&|c| matches!(c, Cond::DeviceModel(_) | Cond::DeviceOs(_)))
    }

    /// Whether it reads the client's address (a network or a CIDR).
    pub fn reads_address(&self) -> bool {
        self.uses(&|c| matches!(c, Cond::Network(_) | Cond::Cidr { .. }))
    }

    pub(crate) fn uses(&self, pred: &dyn Fn(&Cond) -> bool) -> bool {
        any_uses(self.conditions.iter().chain(self.unless.iter().flatten()), pred)
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

    /// Whether a rule reads a device's model or OS.
    pub fn reads_device_facts(&self) -> bool {
        self.rules.iter().any(Rule::reads_device_facts)
    }

    /// The first rule that reads a device's model or OS.
    pub fn device_facts_rule(&self) -> Option<&Rule> {
        self.rules.iter().find(|r| r.reads_device_facts())
    }

    /// The first rule with a `device` condition (devices new since a
    /// cut-over), which needs the devices known before it.
    pub fn device_rule(&self) -> Option<&Rule> {
        self.rules.iter().find(|r| r.uses(&|c| matches!(c, Cond::Device(_))))
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

    /// True when some rule looks at the authentication type, which IIS logs
    /// do not record: such a rule never matches their lines.
    pub fn uses_auth_type(&self) -> bool {
        self.rules.iter().any(|r| r.uses(&|c| matches!(c, Cond::Auth(_))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_valued_logic_knows_what_does_not_depend_on_the_unknown() {
        let (t, f, u) = (Some(true), Some(false), None);
        let all = |v: &[Option<bool>]| all3(v.iter().copied());
        let any = |v: &[Option<bool>]| any3(v.iter().copied());
        assert_eq!((all(&[]), all(&[t, t]), all(&[t, u]), all(&[u, f])), (t, t, u, f));
        assert_eq!((any(&[]), any(&[f, f]), any(&[f, u]), any(&[u, t])), (f, f, u, t));
        assert_eq!((and3(t, u), and3(f, u), and3(t, t)), (u, f, t));
    }
}
