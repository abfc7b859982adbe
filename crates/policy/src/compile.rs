//! From the file as written to ordered rules of resolved conditions.
//! Emulation blocks become ordinary rules here, in the order the real
//! mechanisms sit in front of Exchange: IP restrictions, IIS request
//! filtering, EWS access, ActiveSync device access; then the `[[rule]]`s.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use exchange::{Catalog, NetworkId, Networks, Protocol};
use ipnet::IpNet;
use toml::Spanned;

use crate::model::{Action, Cond, DeviceState, Header, Policy, Rule, RuleOrigin, ScanTarget, TextMode, UserSet};
use crate::raw::*;
use crate::PolicyError;

/// ActiveSync commands (MS-ASHTTP and older ones still seen in logs).
const COMMANDS: &[&str] = &[
    "Sync",
    "SendMail",
    "SmartForward",
    "SmartReply",
    "GetAttachment",
    "GetHierarchy",
    "CreateCollection",
    "DeleteCollection",
    "MoveCollection",
    "FolderSync",
    "FolderCreate",
    "FolderDelete",
    "FolderUpdate",
    "MoveItems",
    "GetItemEstimate",
    "MeetingResponse",
    "Search",
    "Settings",
    "Ping",
    "ItemOperations",
    "Provision",
    "ResolveRecipients",
    "ValidateCert",
    "Find",
    "Notify",
    "Options",
];

/// Exchange's EWS application access policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppPolicy {
    EnforceAllowList,
    EnforceBlockList,
}

impl AppPolicy {
    pub fn name(self) -> &'static str {
        match self {
            AppPolicy::EnforceAllowList => "EnforceAllowList",
            AppPolicy::EnforceBlockList => "EnforceBlockList",
        }
    }
}

/// EWS settings at one level (organization or mailbox); `None` = `$null`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EwsSettings {
    pub ews_enabled: Option<bool>,
    pub allow_outlook: Option<bool>,
    pub allow_mac_outlook: Option<bool>,
    pub allow_entourage: Option<bool>,
    pub application_access_policy: Option<AppPolicy>,
    pub list: Option<Vec<String>>,
}

impl EwsSettings {
    /// The mailbox's settings over the organization's, as Exchange combines
    /// them: each switch falls back on its own; the access policy and its
    /// list are taken together from the mailbox when it has a policy.
    fn over(&self, org: &EwsSettings) -> EwsSettings {
        let (policy, list) = if self.application_access_policy.is_some() {
            (self.application_access_policy, self.list.clone())
        } else {
            (org.application_access_policy, org.list.clone())
        };
        EwsSettings {
            ews_enabled: self.ews_enabled.or(org.ews_enabled),
            allow_outlook: self.allow_outlook.or(org.allow_outlook),
            allow_mac_outlook: self.allow_mac_outlook.or(org.allow_mac_outlook),
            allow_entourage: self.allow_entourage.or(org.allow_entourage),
            application_access_policy: policy,
            list,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct EwsBlock {
    pub org: EwsSettings,
    /// Per-mailbox overrides (user key, settings as written).
    pub users: Vec<(String, EwsSettings)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLevel {
    Allow,
    Block,
    Quarantine,
}

impl AccessLevel {
    pub fn name(self) -> &'static str {
        match self {
            AccessLevel::Allow => "Allow",
            AccessLevel::Block => "Block",
            AccessLevel::Quarantine => "Quarantine",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Characteristic {
    DeviceType,
    DeviceModel,
    DeviceOS,
    UserAgent,
}

impl Characteristic {
    pub fn name(self) -> &'static str {
        match self {
            Characteristic::DeviceType => "DeviceType",
            Characteristic::DeviceModel => "DeviceModel",
            Characteristic::DeviceOS => "DeviceOS",
            Characteristic::UserAgent => "UserAgent",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceBlock {
    pub default_access_level: Option<AccessLevel>,
    pub rules: Vec<(Characteristic, String, AccessLevel)>,
    /// (user, allowed ids, blocked ids)
    pub personal: Vec<(String, Vec<String>, Vec<String>)>,
}

#[derive(Clone, Debug)]
pub(crate) struct IisFilterRule {
    pub name: String,
    /// Virtual directory as written (`/Microsoft-Server-ActiveSync`), if any.
    pub path: Option<String>,
    pub headers: Vec<Header>,
    pub scan_url: bool,
    pub scan_query_string: bool,
    pub deny_strings: Vec<String>,
    pub applies_to: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyAction {
    Forbidden,
    Unauthorized,
    NotFound,
    AbortRequest,
}

impl DenyAction {
    pub fn name(self) -> &'static str {
        match self {
            DenyAction::Forbidden => "Forbidden",
            DenyAction::Unauthorized => "Unauthorized",
            DenyAction::NotFound => "NotFound",
            DenyAction::AbortRequest => "AbortRequest",
        }
    }
    fn status(self) -> u16 {
        match self {
            DenyAction::Forbidden => 403,
            DenyAction::Unauthorized => 401,
            DenyAction::NotFound => 404,
            DenyAction::AbortRequest => 0,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct IpRestriction {
    pub path: String,
    pub allow_unlisted: bool,
    pub deny_action: DenyAction,
    pub enable_proxy_mode: bool,
    pub entries: Vec<(IpNet, bool)>,
}

/// The emulation blocks as configured, kept for the emitters.
#[derive(Clone, Debug, Default)]
pub(crate) struct Blocks {
    pub iis_filter: Vec<IisFilterRule>,
    pub ews: Option<EwsBlock>,
    pub device_access: Option<DeviceBlock>,
    pub ip_restrictions: Vec<IpRestriction>,
}

struct Ctx<'a> {
    text: &'a str,
    file: String,
    dir: &'a Path,
    catalog: &'a Catalog,
    networks: &'a Networks,
    ranges: Vec<(String, Vec<IpNet>)>,
    /// Group files read, for whoever reloads the policy when they change.
    group_files: std::cell::RefCell<Vec<PathBuf>>,
}

impl Ctx<'_> {
    fn line(&self, span: &Range<usize>) -> Option<usize> {
        if span.start == 0 && span.end == 0 {
            return None;
        }
        let end = span.start.min(self.text.len());
        Some(self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1)
    }

    fn err(&self, span: &Range<usize>, message: impl Into<String>) -> PolicyError {
        PolicyError::Invalid { file: self.file.clone(), line: self.line(span), message: message.into() }
    }

    /// Error at an item of a list, or at the list when the item has no span.
    fn err_item(&self, item: &Spanned<String>, outer: &Range<usize>, message: impl Into<String>) -> PolicyError {
        let span = item.span();
        if span.start == 0 && span.end == 0 {
            self.err(outer, message)
        } else {
            self.err(&span, message)
        }
    }
}

/// Resolve a network name to the interpreter's id.
fn network_id(networks: &Networks, name: &str) -> Option<NetworkId> {
    networks.id_of(name)
}

/// `DOMAIN\user` and `user@domain` to the identity key, as `exchange::identity::account_key` keys a log's user.
pub(crate) fn user_key(raw: &str) -> String {
    let s = raw.trim();
    let s = s.rsplit_once('\\').map_or(s, |(_, u)| u);
    let s = s.split_once('@').map_or(s, |(u, _)| u);
    s.to_lowercase()
}

fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

fn strings(l: &List) -> Vec<String> {
    l.0.iter().map(|s| s.get_ref().clone()).collect()
}

fn vdir(path: &str) -> String {
    let p = path.trim().trim_end_matches('/');
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

fn conds(ctx: &Ctx, raw: RawConds) -> Result<Vec<Cond>, PolicyError> {
    let mut out = Vec::new();
    if let Some(l) = raw.protocol {
        let outer = l.span();
        let mut ps = Vec::new();
        for item in &l.get_ref().0 {
            let p = Protocol::from_key(item.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = Protocol::ALL.iter().map(|p| p.key()).collect();
                ctx.err_item(
                    item,
                    &outer,
                    format!("unknown protocol '{}' (expected one of {})", item.get_ref(), known.join(", ")),
                )
            })?;
            ps.push(p);
        }
        out.push(Cond::Protocol(ps));
    }
    if let Some(l) = raw.path {
        let outer = l.span();
        let mut ps = Vec::new();
        for item in &l.get_ref().0 {
            let p = item.get_ref();
            if !(p.starts_with('/') || p.starts_with('*')) {
                return Err(ctx.err_item(item, &outer, format!("path '{p}' must start with '/' or '*'")));
            }
            ps.push(p.clone());
        }
        out.push(Cond::Path(ps));
    }
    if let Some(ua) = raw.user_agent {
        let span = ua.span();
        let ua = ua.into_inner();
        let cs = ua.case_sensitive;
        let mut items = Vec::new();
        for (mode, l) in
            [(TextMode::Contains, &ua.contains), (TextMode::Prefix, &ua.prefix), (TextMode::Exact, &ua.exact)]
        {
            if let Some(l) = l {
                for s in strings(l) {
                    items.push((mode, s));
                }
            }
        }
        if items.is_empty() {
            return Err(ctx.err(&span, "user_agent needs `contains`, `prefix` or `exact`"));
        }
        out.push(Cond::UserAgent { case_sensitive: cs, items });
    }
    if let Some(l) = raw.client {
        let outer = l.span();
        let mut cs = Vec::new();
        for item in &l.get_ref().0 {
            let id = ctx
                .catalog
                .id_of(item.get_ref())
                .ok_or_else(|| ctx.err_item(item, &outer, format!("unknown client id '{}'", item.get_ref())))?;
            cs.push((id, item.get_ref().clone()));
        }
        out.push(Cond::Client(cs));
    }
    if let Some(l) = raw.command {
        let outer = l.span();
        let mut v = Vec::new();
        for item in &l.get_ref().0 {
            let c = COMMANDS.iter().find(|c| c.eq_ignore_ascii_case(item.get_ref())).ok_or_else(|| {
                ctx.err_item(item, &outer, format!("unknown ActiveSync command '{}'", item.get_ref()))
            })?;
            v.push(c.to_string());
        }
        out.push(Cond::Command(v));
    }
    if let Some(l) = raw.device_type {
        out.push(Cond::DeviceType(strings(l.get_ref())));
    }
    if let Some(l) = raw.device_id {
        out.push(Cond::DeviceId(strings(l.get_ref())));
    }
    if let Some(u) = raw.user {
        let span = u.span();
        out.push(Cond::User(Arc::new(user_set(ctx, u.into_inner(), &span)?)));
    }
    if let Some(l) = raw.network {
        let outer = l.span();
        let (mut ids, mut nets, mut names) = (Vec::new(), Vec::new(), Vec::new());
        for item in &l.get_ref().0 {
            let name = item.get_ref();
            if let Some((_, r)) = ctx.ranges.iter().find(|(n, _)| n == name) {
                nets.extend(r.iter().copied());
                names.push(name.clone());
            } else if let Some(id) = network_id(ctx.networks, name) {
                ids.push((id, name.clone()));
            } else {
                return Err(ctx.err_item(item, &outer, format!("unknown network '{name}'")));
            }
        }
        // Networks from the interpreter and ranges of this file are separate
        // tests of one condition: either matches.
        match (ids.is_empty(), nets.is_empty()) {
            (false, true) => out.push(Cond::Network(ids)),
            (true, false) => out.push(Cond::Cidr { nets, name: Some(names.join(", ")), peer: false }),
            _ => return Err(ctx.err(&outer, "mix of built-in networks and [ranges] in one condition: use two rules")),
        }
    }
    if let Some(l) = raw.cidr {
        let outer = l.span();
        let mut nets = Vec::new();
        for item in &l.get_ref().0 {
            nets.push(
                parse_net(item.get_ref())
                    .ok_or_else(|| ctx.err_item(item, &outer, format!("bad CIDR '{}'", item.get_ref())))?,
            );
        }
        out.push(Cond::Cidr { nets, name: None, peer: false });
    }
    if let Some(d) = raw.device {
        out.push(Cond::Device(match d.into_inner() {
            RawDevice::Known => DeviceState::Known,
            RawDevice::New => DeviceState::New,
        }));
    }
    Ok(out)
}

fn add_user(set: &mut UserSet, raw: &str) {
    let k = user_key(raw);
    if k.contains('*') {
        set.patterns.push(k);
    } else if !k.is_empty() {
        set.exact.insert(k);
    }
}

fn user_set(ctx: &Ctx, raw: RawUser, span: &Range<usize>) -> Result<UserSet, PolicyError> {
    let mut set = UserSet::default();
    match raw {
        RawUser::Patterns(l) => {
            for item in &l.0 {
                add_user(&mut set, item.get_ref());
                set.shown.push(item.get_ref().clone());
            }
        }
        RawUser::GroupFile(f) => {
            let path = ctx.dir.join(f.get_ref());
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ctx.err(&f.span(), format!("cannot read group file {}: {e}", path.display())))?;
            let mut read = ctx.group_files.borrow_mut();
            if !read.contains(&path) {
                read.push(path);
            }
            for line in text.lines().map(str::trim) {
                if !line.is_empty() && !line.starts_with('#') {
                    add_user(&mut set, line);
                }
            }
            set.shown.push(format!("@{}", f.get_ref()));
        }
    }
    if set.exact.is_empty() && set.patterns.is_empty() {
        return Err(ctx.err(span, "user condition names no user"));
    }
    Ok(set)
}

fn one_user(name: &str) -> Cond {
    let mut set = UserSet::default();
    add_user(&mut set, name);
    set.shown.push(name.to_string());
    Cond::User(Arc::new(set))
}

#[allow(clippy::too_many_arguments)]
fn rule(
    name: String,
    action: Action,
    status: u16,
    substatus: u16,
    conditions: Vec<Cond>,
    unless: Vec<Vec<Cond>>,
    origin: RuleOrigin,
    note: Option<String>,
    line: usize,
) -> Rule {
    Rule {
        name,
        action,
        status,
        substatus,
        status_explicit: false,
        conditions,
        unless,
        origin,
        note,
        line,
        quarantine: false,
    }
}

/// Compile a policy file's text. `origin` is the file (group files are read
/// relative to it).
pub(crate) fn compile(
    text: &str,
    origin: &Path,
    catalog: &Catalog,
    networks: &Networks,
) -> Result<Policy, PolicyError> {
    let file = origin.display().to_string();
    let dir = origin.parent().unwrap_or(Path::new("."));
    let mut ctx =
        Ctx { text, file: file.clone(), dir, catalog, networks, ranges: Vec::new(), group_files: Default::default() };
    let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError::Invalid {
        file: file.clone(),
        line: e.span().map(|s| ctx.line(&(s.start.max(1)..s.end)).unwrap_or(1)),
        message: e.message().trim().to_string(),
    })?;

    for (name, l) in &raw.ranges {
        let outer = l.span();
        let mut nets = Vec::new();
        for item in &l.get_ref().0 {
            nets.push(parse_net(item.get_ref()).ok_or_else(|| {
                ctx.err_item(item, &outer, format!("bad CIDR '{}' in range '{name}'", item.get_ref()))
            })?);
        }
        ctx.ranges.push((name.clone(), nets));
    }

    let mut rules = Vec::new();
    let mut blocks = Blocks::default();
    compile_ip_restrictions(&ctx, raw.ip_restrictions, &mut rules, &mut blocks)?;
    if let Some(f) = raw.iis_filter {
        compile_iis_filter(&ctx, f, &mut rules, &mut blocks)?;
    }
    if let Some(e) = raw.ews_access {
        let line = ctx.line(&e.span()).unwrap_or(0);
        compile_ews(&ctx, e.into_inner(), line, &mut rules, &mut blocks);
    }
    if let Some(d) = raw.device_access {
        let line = ctx.line(&d.span()).unwrap_or(0);
        compile_device_access(&ctx, d.into_inner(), line, &mut rules, &mut blocks);
    }

    for (i, r) in raw.rule.into_iter().enumerate() {
        let name_span = r.name.span();
        let line = ctx.line(&name_span).unwrap_or(0);
        let name = r.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(ctx.err(&name_span, "rule name is empty"));
        }
        let action = match r.action {
            RawAction::Allow => Action::Allow,
            RawAction::Deny => Action::Deny,
        };
        let status_explicit = r.status.is_some();
        let status = match action {
            Action::Allow => r.status.unwrap_or(0),
            Action::Deny => r.status.unwrap_or(403),
        };
        let substatus = r.substatus.unwrap_or(0);
        let (c, u) = r.split();
        let conditions = conds(&ctx, c)?;
        // Each condition of `unless` is its own exception.
        let unless = match u {
            Some(u) => conds(&ctx, u)?.into_iter().map(|c| vec![c]).collect(),
            None => Vec::new(),
        };
        let mut rule = rule(name, action, status, substatus, conditions, unless, RuleOrigin::Rule(i), None, line);
        rule.status_explicit = status_explicit;
        rules.push(rule);
    }

    let mut seen = HashSet::new();
    for r in &rules {
        if !seen.insert(r.name.as_str()) {
            return Err(PolicyError::Invalid {
                file,
                line: Some(r.line).filter(|&l| l > 0),
                message: format!("two rules are named '{}'", r.name),
            });
        }
    }

    Ok(Policy {
        origin: file,
        rules,
        default: match raw.default {
            Some(RawAction::Deny) => Action::Deny,
            _ => Action::Allow,
        },
        default_status: raw.default_status.unwrap_or(403),
        inventory: None,
        blocks,
        ranges: ctx.ranges,
        group_files: ctx.group_files.into_inner(),
    })
}

fn compile_ip_restrictions(
    ctx: &Ctx,
    raw: Vec<RawIpRestrictions>,
    rules: &mut Vec<Rule>,
    blocks: &mut Blocks,
) -> Result<(), PolicyError> {
    let mut parsed = Vec::new();
    for r in raw {
        let line = ctx.line(&r.path.span()).unwrap_or(0);
        let mut entries = Vec::new();
        for e in &r.entries {
            let net = parse_net(e.cidr.get_ref())
                .ok_or_else(|| ctx.err(&e.cidr.span(), format!("bad CIDR '{}'", e.cidr.get_ref())))?;
            entries.push((net, e.allowed));
        }
        let ip = IpRestriction {
            path: r.path.get_ref().trim().to_string(),
            allow_unlisted: r.allow_unlisted,
            deny_action: match r.deny_action.unwrap_or(RawDenyAction::Forbidden) {
                RawDenyAction::Forbidden => DenyAction::Forbidden,
                RawDenyAction::Unauthorized => DenyAction::Unauthorized,
                RawDenyAction::NotFound => DenyAction::NotFound,
                RawDenyAction::AbortRequest => DenyAction::AbortRequest,
            },
            enable_proxy_mode: r.enable_proxy_mode,
            entries,
        };
        parsed.push((ip, line));
    }
    for (ip, line) in &parsed {
        let path = vdir(&ip.path);
        // IIS applies only the most specific path's ipSecurity section.
        let deeper: Vec<String> = parsed
            .iter()
            .map(|(o, _)| vdir(&o.path))
            .filter(|o| o.len() > path.len() && o.starts_with(path.as_str()))
            .collect();
        let mut base = Vec::new();
        if path != "/" && !path.is_empty() {
            base.push(Cond::Path(vec![path.clone()]));
        }
        let mut unless: Vec<Vec<Cond>> = Vec::new();
        if !deeper.is_empty() {
            unless.push(vec![Cond::Path(deeper)]);
        }
        let peer = !ip.enable_proxy_mode;
        let status = ip.deny_action.status();
        // IIS 8+ logs substatus 503 for IP restriction denials.
        let substatus = if status == 0 { 0 } else { 503 };
        let mut allowed_before: Vec<IpNet> = Vec::new();
        for (net, allowed) in &ip.entries {
            if *allowed {
                allowed_before.push(*net);
                continue;
            }
            let mut u = unless.clone();
            if !allowed_before.is_empty() {
                u.push(vec![Cond::Cidr { nets: allowed_before.clone(), name: None, peer }]);
            }
            let mut c = base.clone();
            c.push(Cond::Cidr { nets: vec![*net], name: None, peer });
            rules.push(rule(
                format!("ip_restrictions {}: deny {net}", ip.path),
                Action::Deny,
                status,
                substatus,
                c,
                u,
                RuleOrigin::IpRestrictions,
                Some(format!("address is in {net}, listed as denied for {}", ip.path)),
                *line,
            ));
        }
        if !ip.allow_unlisted {
            let mut u = unless.clone();
            if !allowed_before.is_empty() {
                u.push(vec![Cond::Cidr { nets: allowed_before.clone(), name: None, peer }]);
            }
            rules.push(rule(
                format!("ip_restrictions {}: allowUnlisted=false", ip.path),
                Action::Deny,
                status,
                substatus,
                base.clone(),
                u,
                RuleOrigin::IpRestrictions,
                Some(format!("address is not on the allowed list of {} and allowUnlisted is false", ip.path)),
                *line,
            ));
        }
    }
    blocks.ip_restrictions = parsed.into_iter().map(|(ip, _)| ip).collect();
    Ok(())
}

fn compile_iis_filter(
    ctx: &Ctx,
    raw: RawIisFilter,
    rules: &mut Vec<Rule>,
    blocks: &mut Blocks,
) -> Result<(), PolicyError> {
    for r in raw.rule {
        let span = r.name.span();
        let line = ctx.line(&span).unwrap_or(0);
        let mut headers = Vec::new();
        if let Some(h) = &r.scan_headers {
            for item in &h.get_ref().0 {
                let name = item.get_ref();
                let header = if name.eq_ignore_ascii_case("user-agent") {
                    Header::UserAgent
                } else if name.eq_ignore_ascii_case("x-forwarded-for") {
                    Header::XForwardedFor
                } else {
                    return Err(ctx.err_item(
                        item,
                        &h.span(),
                        format!("header '{name}' is not in the request model (User-Agent, X-Forwarded-For)"),
                    ));
                };
                headers.push(header);
            }
        }
        let deny_strings = strings(r.deny_strings.get_ref());
        if deny_strings.is_empty() || deny_strings.iter().any(String::is_empty) {
            return Err(ctx.err(&r.deny_strings.span(), "deny_strings must be non-empty strings"));
        }
        if headers.is_empty() && !r.scan_url && !r.scan_query_string {
            return Err(ctx.err(&span, "filtering rule scans nothing: set scan_headers, scan_url or scan_query_string"));
        }
        let applies_to: Vec<String> = r.applies_to.as_ref().map(|l| strings(l.get_ref())).unwrap_or_default();
        let f = IisFilterRule {
            name: r.name.get_ref().clone(),
            path: r.path.as_ref().map(|p| p.get_ref().trim().to_string()),
            headers,
            scan_url: r.scan_url,
            scan_query_string: r.scan_query_string,
            deny_strings,
            applies_to,
        };
        let mut targets: Vec<ScanTarget> = f.headers.iter().map(|h| ScanTarget::Header(*h)).collect();
        if f.scan_url {
            targets.push(ScanTarget::Url);
        }
        if f.scan_query_string {
            targets.push(ScanTarget::QueryString);
        }
        let mut c = Vec::new();
        if let Some(p) = &f.path {
            c.push(Cond::Path(vec![vdir(p)]));
        }
        c.push(Cond::IisScan { targets, strings: f.deny_strings.clone(), applies_to: f.applies_to.clone() });
        rules.push(rule(
            format!("iis_filter: {}", f.name),
            Action::Deny,
            404,
            19,
            c,
            Vec::new(),
            RuleOrigin::IisFilter,
            None,
            line,
        ));
        blocks.iis_filter.push(f);
    }
    Ok(())
}

fn app_policy(p: Option<RawAppPolicy>) -> Option<AppPolicy> {
    p.map(|p| match p {
        RawAppPolicy::AllowList => AppPolicy::EnforceAllowList,
        RawAppPolicy::BlockList => AppPolicy::EnforceBlockList,
    })
}

const OUTLOOK_UA: [&str; 2] = ["Microsoft Office Outlook", "Microsoft Outlook"];

fn ua_contains_cs(values: &[&str]) -> Cond {
    Cond::UserAgent {
        case_sensitive: true,
        items: values.iter().map(|v| (TextMode::Contains, v.to_string())).collect(),
    }
}

fn compile_ews(ctx: &Ctx, raw: RawEwsAccess, line: usize, rules: &mut Vec<Rule>, blocks: &mut Blocks) {
    let status = raw.status.unwrap_or(403);
    let org = EwsSettings {
        ews_enabled: raw.ews_enabled,
        allow_outlook: raw.allow_outlook,
        allow_mac_outlook: raw.allow_mac_outlook,
        allow_entourage: raw.allow_entourage,
        application_access_policy: app_policy(raw.application_access_policy),
        list: raw.list,
    };
    let mut users = Vec::new();
    for u in raw.user {
        let s = EwsSettings {
            ews_enabled: u.ews_enabled,
            allow_outlook: u.allow_outlook,
            allow_mac_outlook: u.allow_mac_outlook,
            allow_entourage: u.allow_entourage,
            application_access_policy: app_policy(u.application_access_policy),
            list: u.list,
        };
        users.push((u.user.get_ref().clone(), s, ctx.line(&u.user.span()).unwrap_or(line)));
    }
    // Mailboxes with their own settings first; the organization's apply to everyone else.
    for (user, s, uline) in &users {
        let eff = s.over(&org);
        ews_scope(&eff, &format!("ews_access ({user})"), vec![one_user(user)], Vec::new(), status, *uline, rules);
    }
    let except: Vec<Vec<Cond>> = if users.is_empty() {
        Vec::new()
    } else {
        let mut set = UserSet::default();
        for (u, _, _) in &users {
            add_user(&mut set, u);
            set.shown.push(u.clone());
        }
        vec![vec![Cond::User(Arc::new(set))]]
    };
    ews_scope(&org, "ews_access", Vec::new(), except, status, line, rules);
    blocks.ews = Some(EwsBlock { org, users: users.into_iter().map(|(u, s, _)| (u, s)).collect() });
}

/// Exchange's `CallerAccessAllowed` (exchange.md §3a) as deny rules.
fn ews_scope(
    s: &EwsSettings,
    label: &str,
    scope: Vec<Cond>,
    except: Vec<Vec<Cond>>,
    status: u16,
    line: usize,
    rules: &mut Vec<Rule>,
) {
    let mut base = vec![Cond::Protocol(vec![Protocol::Ews])];
    base.extend(scope);
    let mk = |name: String, conds: Vec<Cond>, unless: Vec<Vec<Cond>>, note: String| {
        let mut u = except.clone();
        u.extend(unless);
        rule(name, Action::Deny, status, 0, conds, u, RuleOrigin::EwsAccess, Some(note), line)
    };
    match s.ews_enabled {
        // Not configured: Exchange checks nothing else.
        None => return,
        Some(false) => {
            rules.push(mk(
                format!("{label}: EwsEnabled=false"),
                base,
                Vec::new(),
                "EwsEnabled is false: every EWS request is denied".into(),
            ));
            return;
        }
        Some(true) => {}
    }
    let outlook = ua_contains_cs(&OUTLOOK_UA);
    let mac = ua_contains_cs(&["MacOutlook"]);
    let ent = ua_contains_cs(&["Microsoft-Entourage"]);
    // Which switch applies is decided by the first user-agent test that matches.
    let branches: [(Option<bool>, &str, Vec<Cond>, &str); 3] = [
        (
            s.allow_outlook,
            "EwsAllowOutlook",
            vec![outlook.clone()],
            "'Microsoft Outlook' or 'Microsoft Office Outlook'",
        ),
        (
            s.allow_mac_outlook,
            "EwsAllowMacOutlook",
            vec![mac.clone(), Cond::Not(Box::new(outlook.clone()))],
            "'MacOutlook'",
        ),
        (
            s.allow_entourage,
            "EwsAllowEntourage",
            vec![ent, Cond::Not(Box::new(outlook)), Cond::Not(Box::new(mac))],
            "'Microsoft-Entourage'",
        ),
    ];
    let mut allowed_by_switch = Vec::new();
    for (value, name, branch, what) in &branches {
        match value {
            Some(false) => {
                let mut c = base.clone();
                c.extend(branch.iter().cloned());
                rules.push(mk(
                    format!("{label}: {name}=false"),
                    c,
                    Vec::new(),
                    format!("user agent contains {what} and {name} is false"),
                ));
            }
            Some(true) => allowed_by_switch.push(branch.clone()),
            None => {}
        }
    }
    let list = s.list.clone().unwrap_or_default();
    match s.application_access_policy {
        None => {}
        Some(AppPolicy::EnforceAllowList) => {
            let mut unless = allowed_by_switch;
            if !list.is_empty() {
                unless.push(vec![Cond::UserAgentEws(list.clone())]);
            }
            let note = if list.is_empty() {
                "EnforceAllowList with an empty list denies every EWS client not allowed by a switch".to_string()
            } else {
                format!("user agent matches none of the allow list [{}]", list.join(", "))
            };
            rules.push(mk(format!("{label}: EnforceAllowList"), base, unless, note));
        }
        Some(AppPolicy::EnforceBlockList) if !list.is_empty() => {
            let mut c = base;
            c.push(Cond::UserAgentEws(list.clone()));
            rules.push(mk(
                format!("{label}: EnforceBlockList"),
                c,
                allowed_by_switch,
                format!("user agent matches the block list [{}]", list.join(", ")),
            ));
        }
        // An empty block list blocks nothing.
        Some(AppPolicy::EnforceBlockList) => {}
    }
}

fn compile_device_access(ctx: &Ctx, raw: RawDeviceAccess, line: usize, rules: &mut Vec<Rule>, blocks: &mut Blocks) {
    let rule_lines: Vec<usize> = raw.rule.iter().map(|r| ctx.line(&r.span()).unwrap_or(line)).collect();
    let personal_lines: Vec<usize> = raw.personal.iter().map(|p| ctx.line(&p.span()).unwrap_or(line)).collect();
    let status = raw.status.unwrap_or(403);
    let q_status = raw.quarantine_status.unwrap_or(403);
    let level = |l: RawAccessLevel| match l {
        RawAccessLevel::Allow => AccessLevel::Allow,
        RawAccessLevel::Block => AccessLevel::Block,
        RawAccessLevel::Quarantine => AccessLevel::Quarantine,
    };
    let block = DeviceBlock {
        default_access_level: raw.default_access_level.map(level),
        rules: raw
            .rule
            .iter()
            .map(|r| {
                let r = r.get_ref();
                let c = match r.characteristic {
                    RawCharacteristic::DeviceType => Characteristic::DeviceType,
                    RawCharacteristic::DeviceModel => Characteristic::DeviceModel,
                    RawCharacteristic::DeviceOS => Characteristic::DeviceOS,
                    RawCharacteristic::UserAgent => Characteristic::UserAgent,
                };
                (c, r.query_string.clone(), level(r.access_level))
            })
            .collect(),
        personal: raw
            .personal
            .iter()
            .map(|p| p.get_ref())
            .map(|p| (p.user.get_ref().clone(), p.allowed_device_ids.clone(), p.blocked_device_ids.clone()))
            .collect(),
    };
    let base = vec![Cond::Protocol(vec![Protocol::ActiveSync])];
    let ch = |c: Characteristic, q: &str| match c {
        Characteristic::DeviceType => Cond::DeviceType(vec![q.to_string()]),
        Characteristic::DeviceModel => Cond::DeviceModel(vec![q.to_string()]),
        Characteristic::DeviceOS => Cond::DeviceOs(vec![q.to_string()]),
        Characteristic::UserAgent => {
            Cond::UserAgent { case_sensitive: false, items: vec![(TextMode::Exact, q.to_string())] }
        }
    };
    let mk = |name: String, c: Vec<Cond>, u: Vec<Vec<Cond>>, st: u16, note: String, line: usize| {
        rule(name, Action::Deny, st, 0, c, u, RuleOrigin::DeviceAccess, Some(note), line)
    };
    // 4. personal block list
    for ((user, _, blocked), pline) in block.personal.iter().zip(&personal_lines) {
        if !blocked.is_empty() {
            let mut c = base.clone();
            c.push(one_user(user));
            c.push(Cond::DeviceId(blocked.clone()));
            rules.push(mk(
                format!("device_access: blocked devices of {user}"),
                c,
                Vec::new(),
                status,
                format!("device id is on {user}'s ActiveSyncBlockedDeviceIDs"),
                *pline,
            ));
        }
    }
    // 5. personal allow list: an exception to everything below.
    let personal_allow: Vec<Vec<Cond>> = block
        .personal
        .iter()
        .filter(|(_, allowed, _)| !allowed.is_empty())
        .map(|(user, allowed, _)| vec![one_user(user), Cond::DeviceId(allowed.clone())])
        .collect();
    // 6, 7. block rules, then quarantine rules.
    for want in [AccessLevel::Block, AccessLevel::Quarantine] {
        for ((c, q, l), rline) in block.rules.iter().zip(&rule_lines).filter(|((_, _, l), _)| *l == want) {
            let mut conds = base.clone();
            conds.push(ch(*c, q));
            let st = if want == AccessLevel::Block { status } else { q_status };
            let mut r = mk(
                format!("device_access: {} {} '{q}'", l.name(), c.name()),
                conds,
                personal_allow.clone(),
                st,
                format!("{} is '{q}', which a device access rule sets to {}", c.name(), l.name()),
                *rline,
            );
            r.quarantine = want == AccessLevel::Quarantine;
            rules.push(r);
        }
    }
    // 8, 9. allow rules only matter against a default that is not Allow.
    if let Some(d @ (AccessLevel::Block | AccessLevel::Quarantine)) = block.default_access_level {
        let mut unless = personal_allow;
        for (c, q, _) in block.rules.iter().filter(|(_, _, l)| *l == AccessLevel::Allow) {
            unless.push(vec![ch(*c, q)]);
        }
        let mut r = mk(
            format!("device_access: DefaultAccessLevel={}", d.name()),
            base,
            unless,
            if d == AccessLevel::Block { status } else { q_status },
            format!("no personal list or device access rule allows the device; DefaultAccessLevel is {}", d.name()),
            line,
        );
        r.quarantine = d == AccessLevel::Quarantine;
        rules.push(r);
    }
    blocks.device_access = Some(block);
}
