//! IIS mechanisms as rules: IP and domain restrictions (`ipSecurity`), then
//! request filtering (the sections in force per path, and hand-written
//! filtering rules), as IIS applies them before Exchange sees a request.

use std::sync::Arc;

use ::exchange::text::Glob;
use ipnet::IpNet;

use super::{parse_net, rule, strings, vdir, Ctx};
use crate::blocks::{Blocks, DenyAction, IisFilterRule, IpRestriction, RequestFiltering};
use crate::model::{under, Action, Cond, Header, Rule, RuleOrigin, ScanTarget};
use crate::pattern::{PatternSyntax, RewriteInput, TextPattern};
use crate::raw::*;
use crate::PolicyError;

/// An IIS configuration path as casguard keeps it: `/` for the site,
/// else `/EWS` (leading `/`, no trailing `/`).
pub(crate) fn config_path(path: &str) -> String {
    let v = vdir(path);
    if v.is_empty() {
        "/".to_string()
    } else {
        v
    }
}

/// What makes the section at `path` the one in force: IIS applies the most
/// specific path's section alone (it already holds what it inherited), so
/// the request is below `path` and below no deeper path of `all`.
pub(super) fn scoped(path: &str, all: &[String]) -> (Vec<Cond>, Vec<Vec<Cond>>) {
    let p = config_path(path);
    let deeper: Vec<String> = all
        .iter()
        .map(|o| config_path(o))
        .filter(|o| !o.eq_ignore_ascii_case(&p) && (p == "/" || under(o, &p)))
        .collect();
    let base = if p == "/" { Vec::new() } else { vec![Cond::Location(vec![p])] };
    let unless = if deeper.is_empty() { Vec::new() } else { vec![vec![Cond::Location(deeper)]] };
    (base, unless)
}

/// Refuse two entries for one path: IIS has one section per path.
fn unique_paths(ctx: &Ctx, paths: &[(String, std::ops::Range<usize>)], what: &str) -> Result<(), PolicyError> {
    for (i, (p, span)) in paths.iter().enumerate() {
        if paths[..i].iter().any(|(q, _)| config_path(q).eq_ignore_ascii_case(&config_path(p))) {
            return Err(ctx.err(span, format!("two [[{what}]] entries for path '{p}': IIS has one section per path")));
        }
    }
    Ok(())
}

pub(super) fn compile_ip_restrictions(
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
        parsed.push((ip, line, r.path.span()));
    }
    let spans: Vec<(String, std::ops::Range<usize>)> =
        parsed.iter().map(|(ip, _, span)| (ip.path.clone(), span.clone())).collect();
    unique_paths(ctx, &spans, "ip_restrictions")?;
    let all: Vec<String> = parsed.iter().map(|(ip, _, _)| ip.path.clone()).collect();
    for (ip, line, _) in &parsed {
        let (base, unless) = scoped(&ip.path, &all);
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
    blocks.ip_restrictions = parsed.into_iter().map(|(ip, _, _)| ip).collect();
    Ok(())
}

/// A filtering rule as written, checked.
fn filter_rule(ctx: &Ctx, r: &RawIisRule) -> Result<IisFilterRule, PolicyError> {
    let span = r.name.span();
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
    Ok(IisFilterRule {
        name: r.name.get_ref().clone(),
        path: r.path.as_ref().map(|p| p.get_ref().trim().to_string()),
        headers,
        scan_url: r.scan_url,
        scan_query_string: r.scan_query_string,
        deny_strings,
        applies_to: r.applies_to.as_ref().map(|l| strings(l.get_ref())).unwrap_or_default(),
    })
}

/// What a filtering rule scans, as one condition.
fn scan(f: &IisFilterRule) -> Cond {
    let mut targets: Vec<ScanTarget> = f.headers.iter().map(|h| ScanTarget::Header(*h)).collect();
    if f.scan_url {
        targets.push(ScanTarget::Url);
    }
    if f.scan_query_string {
        targets.push(ScanTarget::QueryString);
    }
    Cond::IisScan { targets, strings: f.deny_strings.clone(), applies_to: f.applies_to.clone() }
}

pub(super) fn compile_iis_filter(
    ctx: &Ctx,
    raw: RawIisFilter,
    rules: &mut Vec<Rule>,
    blocks: &mut Blocks,
) -> Result<(), PolicyError> {
    for r in raw.rule {
        let line = ctx.line(&r.name.span()).unwrap_or(0);
        let f = filter_rule(ctx, &r)?;
        let mut c = Vec::new();
        if let Some(p) = &f.path {
            c.push(Cond::Path(vec![Glob::path(&vdir(p))]));
        }
        c.push(scan(&f));
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

fn path_pattern(regex: &str) -> Cond {
    let p = TextPattern::new(RewriteInput::Path, regex, PatternSyntax::EcmaScript, true, false)
        .expect("casguard's own path pattern compiles");
    Cond::Pattern(Arc::new(p))
}

/// `[[request_filtering]]`: per path, the section in force (IIS substatus in
/// parentheses): denied file extensions (404.7), hidden segments (404.8),
/// URL sequences (404.5), query string sequences (404.18), filtering rules
/// (404.19). A path where the module is removed filters nothing.
pub(super) fn compile_request_filtering(
    ctx: &Ctx,
    raw: Vec<RawRequestFiltering>,
    rules: &mut Vec<Rule>,
    blocks: &mut Blocks,
) -> Result<(), PolicyError> {
    let spans: Vec<(String, std::ops::Range<usize>)> =
        raw.iter().map(|r| (r.path.get_ref().clone(), r.path.span())).collect();
    unique_paths(ctx, &spans, "request_filtering")?;
    let all: Vec<String> = spans.iter().map(|(p, _)| p.clone()).collect();
    for r in &raw {
        let line = ctx.line(&r.path.span()).unwrap_or(0);
        let path = config_path(r.path.get_ref());
        let mut section = RequestFiltering {
            path: path.clone(),
            enabled: r.enabled,
            allow_unlisted_extensions: r.allow_unlisted_extensions,
            extensions: Vec::new(),
            hidden_segments: r.hidden_segments.clone(),
            deny_url_sequences: r.deny_url_sequences.clone(),
            deny_query_string_sequences: r.deny_query_string_sequences.clone(),
            rules: Vec::new(),
        };
        for e in &r.file_extensions {
            let ext = e.extension.trim().to_string();
            if !ext.starts_with('.') {
                return Err(ctx.err(&r.path.span(), format!("file extension '{ext}' must start with '.'")));
            }
            section.extensions.push((ext, e.allowed));
        }
        for f in &r.rule {
            if f.path.is_some() {
                return Err(ctx.err(&f.name.span(), "a [[request_filtering.rule]] takes its path from its section"));
            }
            section.rules.push(filter_rule(ctx, f)?);
        }
        let (base, unless) = scoped(&path, &all);
        let mut push = |what: String, c: Cond, exceptions: Vec<Vec<Cond>>, substatus: u16, note: String| {
            let mut conds = base.clone();
            conds.push(c);
            let mut u = unless.clone();
            u.extend(exceptions);
            rules.push(rule(
                format!("request_filtering {path}: {what}"),
                Action::Deny,
                404,
                substatus,
                conds,
                u,
                RuleOrigin::RequestFiltering,
                Some(note),
                line,
            ));
        };
        if section.enabled {
            let glob = |exts: &[&str]| exts.iter().map(|e| Glob::new(&format!("*{e}"))).collect::<Vec<_>>();
            if section.allow_unlisted_extensions {
                let denied: Vec<&str> =
                    section.extensions.iter().filter(|(_, a)| !a).map(|(e, _)| e.as_str()).collect();
                if !denied.is_empty() {
                    push(
                        "file extensions".into(),
                        Cond::Path(glob(&denied)),
                        Vec::new(),
                        7,
                        format!("the file extension is denied at {path}"),
                    );
                }
            } else {
                let allowed: Vec<&str> = section
                    .extensions
                    .iter()
                    .filter(|(e, a)| *a && e.as_str() != ".")
                    .map(|(e, _)| e.as_str())
                    .collect();
                let mut exceptions = Vec::new();
                if !allowed.is_empty() {
                    exceptions.push(vec![Cond::Path(glob(&allowed))]);
                }
                // `.` stands for a URL whose last segment has no extension.
                if section.extensions.iter().any(|(e, a)| *a && e == ".") {
                    exceptions.push(vec![path_pattern("(^|/)[^/.]*$")]);
                }
                push(
                    "unlisted file extensions".into(),
                    Cond::Path(vec![Glob::new("*")]),
                    exceptions,
                    7,
                    format!(
                        "the file extension is not on the allowed list of {path}, and unlisted extensions are denied"
                    ),
                );
            }
            if !section.hidden_segments.is_empty() {
                let globs: Vec<Glob> = section
                    .hidden_segments
                    .iter()
                    .flat_map(|h| [Glob::new(&format!("*/{h}")), Glob::new(&format!("*/{h}/*"))])
                    .collect();
                push(
                    "hidden segments".into(),
                    Cond::Path(globs),
                    Vec::new(),
                    8,
                    format!("a path segment is hidden at {path}"),
                );
            }
            if !section.deny_url_sequences.is_empty() {
                let c = Cond::IisScan {
                    targets: vec![ScanTarget::Url],
                    strings: section.deny_url_sequences.clone(),
                    applies_to: Vec::new(),
                };
                push("URL sequences".into(), c, Vec::new(), 5, format!("the URL holds a sequence denied at {path}"));
            }
            if !section.deny_query_string_sequences.is_empty() {
                let c = Cond::IisScan {
                    targets: vec![ScanTarget::QueryString],
                    strings: section.deny_query_string_sequences.clone(),
                    applies_to: Vec::new(),
                };
                push(
                    "query string sequences".into(),
                    c,
                    Vec::new(),
                    18,
                    format!("the query string holds a sequence denied at {path}"),
                );
            }
            for f in &section.rules {
                push(
                    format!("rule '{}'", f.name),
                    scan(f),
                    Vec::new(),
                    19,
                    format!("filtering rule '{}' at {path}", f.name),
                );
            }
        }
        blocks.request_filtering.push(section);
    }
    Ok(())
}
