//! From the file as written to ordered rules of resolved conditions.
//! Emulation blocks become ordinary rules here, in the order the real
//! mechanisms sit in front of Exchange: URL Rewrite's global rules, IP
//! restrictions, IIS request filtering, URL Rewrite's rules, authentication
//! policies, mailbox protocol switches, EWS access, ActiveSync device
//! access; then the `[[rule]]`s.
//! One module per mechanism, as under `emit/`; this one holds the
//! `[[rule]]` conditions and what every mechanism shares.

mod exchange;
pub(crate) mod iis;
mod mailbox;
pub(crate) mod rewrite;

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::exchange::text::Glob;
use ::exchange::{AuthType, Catalog, NetworkId, Networks, Protocol};
use ipnet::IpNet;
use toml::Spanned;

use crate::blocks::Blocks;
use crate::model::{Action, Cond, DeviceState, Policy, Rule, RuleOrigin, TextMode, UserSet};
use crate::raw::*;
use crate::PolicyError;

/// The statuses a policy may answer with: HTTP's.
const HTTP_STATUS: std::ops::RangeInclusive<u16> = 100..=599;

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

struct Ctx<'a> {
    text: &'a str,
    file: String,
    dir: &'a Path,
    catalog: &'a Catalog,
    networks: &'a Networks,
    ranges: Vec<(String, Vec<IpNet>)>,
    /// Group files read, for whoever reloads the policy when they change.
    group_files: std::cell::RefCell<Vec<PathBuf>>,
    /// Byte offset of every line end, so that a span's line is a binary
    /// search: an imported policy names thousands of mailboxes.
    line_ends: Vec<usize>,
}

/// Compiles one `[table]` block of the file (its raw table and the line it
/// starts on) into rules and what the emitters need.
type BlockCompiler<T> = fn(&Ctx, T, usize, &mut Vec<Rule>, &mut Blocks) -> Result<(), PolicyError>;

impl Ctx<'_> {
    fn line(&self, span: &Range<usize>) -> Option<usize> {
        if span.start == 0 && span.end == 0 {
            return None;
        }
        let end = span.start.min(self.text.len());
        Some(self.line_ends.partition_point(|&e| e < end) + 1)
    }

    fn err(&self, span: &Range<usize>, message: impl Into<String>) -> PolicyError {
        PolicyError::Invalid { file: self.file.clone(), line: self.line(span), message: message.into() }
    }

    /// The status `key` gives (`default` when not given), refused at its
    /// line when it is no HTTP status: the gateway answers with it and
    /// simulate reports it, so both must be able to.
    fn status(&self, key: &str, given: &Option<Spanned<u16>>, default: u16) -> Result<u16, PolicyError> {
        match given {
            None => Ok(default),
            Some(s) if HTTP_STATUS.contains(s.get_ref()) => Ok(*s.get_ref()),
            Some(s) => Err(self.err(&s.span(), format!("{key} {} is not an HTTP status (100 to 599)", s.get_ref()))),
        }
    }

    /// Compiles the `[table]` block `raw` when the file has one, telling
    /// `compile` the line it starts on.
    fn block<T>(
        &self,
        raw: Option<Spanned<T>>,
        compile: BlockCompiler<T>,
        rules: &mut Vec<Rule>,
        blocks: &mut Blocks,
    ) -> Result<(), PolicyError> {
        let Some(raw) = raw else { return Ok(()) };
        let line = self.line(&raw.span()).unwrap_or(0);
        compile(self, raw.into_inner(), line, rules, blocks)
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

    /// The items of `l` as `parse` reads them, in order; an unknown one is
    /// an error that names `what` and lists every name of `all`.
    fn named<T: Copy>(
        &self,
        l: &Spanned<List>,
        what: &str,
        all: &[T],
        name: fn(T) -> &'static str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, PolicyError> {
        let outer = l.span();
        let read = |item: &Spanned<String>| {
            parse(item.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|&t| name(t)).collect();
                let message = format!("unknown {what} '{}' (expected one of {})", item.get_ref(), known.join(", "));
                self.err_item(item, &outer, message)
            })
        };
        l.get_ref().0.iter().map(read).collect()
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
        out.push(Cond::Protocol(ctx.named(&l, "protocol", &Protocol::ALL, Protocol::key, Protocol::from_key)?));
    }
    if let Some(l) = raw.path {
        let outer = l.span();
        let mut ps = Vec::new();
        for item in &l.get_ref().0 {
            let p = item.get_ref();
            if !(p.starts_with('/') || p.starts_with('*')) {
                return Err(ctx.err_item(item, &outer, format!("path '{p}' must start with '/' or '*'")));
            }
            ps.push(Glob::path(p));
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
    if let Some(l) = raw.auth {
        out.push(Cond::Auth(auth_types(ctx, &l)?));
    }
    Ok(out)
}

/// `auth = ["basic", ...]`. OAuth tokens travel as `Authorization: Bearer`
/// and HttpProxy logs name them either way, so `oauth` and `bearer` both
/// mean both.
fn auth_types(ctx: &Ctx, l: &Spanned<List>) -> Result<Vec<AuthType>, PolicyError> {
    let mut out = Vec::new();
    for a in ctx.named(l, "authentication type", &AuthType::ALL, AuthType::key, AuthType::from_key)? {
        let same = match a {
            AuthType::OAuth | AuthType::Bearer => &[AuthType::OAuth, AuthType::Bearer][..],
            _ => std::slice::from_ref(&a),
        };
        for a in same {
            if !out.contains(a) {
                out.push(*a);
            }
        }
    }
    if out.is_empty() {
        return Err(ctx.err(&l.span(), "auth names no authentication type"));
    }
    Ok(out)
}

fn add_user(set: &mut UserSet, raw: &str) {
    let k = user_key(raw);
    if k.contains('*') {
        set.patterns.push(Glob::new(&k));
    } else if !k.is_empty() {
        if let Some(f) = crate::model::fold_user_key(&k) {
            set.folded.insert(f);
        }
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

/// The names of a `user = "…"` or `user = ["…", …]` that names one mailbox.
fn names(ctx: &Ctx, l: &Spanned<List>) -> Result<Vec<String>, PolicyError> {
    let v: Vec<String> = l.get_ref().0.iter().map(|s| s.get_ref().trim().to_string()).collect();
    if v.is_empty() || v.iter().any(|n| user_key(n).is_empty() || n.contains('*')) {
        return Err(ctx.err(&l.span(), "user names a mailbox: one or more plain names, no pattern, none empty"));
    }
    Ok(v)
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
    // Exchange's own settings judge a mailbox once IIS signed it in; device
    // access too, whose first step is "authenticated?".
    let after_sign_in =
        matches!(origin, RuleOrigin::MailboxProtocols | RuleOrigin::EwsAccess | RuleOrigin::DeviceAccess);
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
        after_sign_in,
        redirect: None,
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
    let line_ends = text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i).collect();
    let mut ctx = Ctx {
        text,
        file: file.clone(),
        dir,
        catalog,
        networks,
        ranges: Vec::new(),
        group_files: Default::default(),
        line_ends,
    };
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
    rewrite::compile_url_rewrite(&ctx, &raw.url_rewrite, true, &mut rules, &mut blocks)?;
    iis::compile_ip_restrictions(&ctx, raw.ip_restrictions, &mut rules, &mut blocks)?;
    iis::compile_request_filtering(&ctx, raw.request_filtering, &mut rules, &mut blocks)?;
    if let Some(f) = raw.iis_filter {
        iis::compile_iis_filter(&ctx, f, &mut rules, &mut blocks)?;
    }
    rewrite::compile_url_rewrite(&ctx, &raw.url_rewrite, false, &mut rules, &mut blocks)?;
    ctx.block(raw.auth_policies, mailbox::compile_auth_policies, &mut rules, &mut blocks)?;
    ctx.block(raw.mailbox_protocols, mailbox::compile_mailbox_protocols, &mut rules, &mut blocks)?;
    ctx.block(raw.ews_access, exchange::compile_ews, &mut rules, &mut blocks)?;
    ctx.block(raw.device_access, exchange::compile_device_access, &mut rules, &mut blocks)?;

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
        let default = match action {
            Action::Allow => 0,
            Action::Deny => 403,
        };
        let status = ctx.status(&format!("rule '{name}': status"), &r.status, default)?;
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

    let default_status = ctx.status("default_status", &raw.default_status, 403)?;

    Ok(Policy {
        origin: file,
        rules,
        default: match raw.default {
            Some(RawAction::Deny) => Action::Deny,
            _ => Action::Allow,
        },
        default_status,
        blocks,
        ranges: ctx.ranges,
        group_files: ctx.group_files.into_inner(),
    })
}
