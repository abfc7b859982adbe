//! IIS mechanisms as rules: IP and domain restrictions (`ipSecurity`), then
//! request filtering rules, as IIS applies them before Exchange sees a request.

use ::exchange::text::Glob;
use ipnet::IpNet;

use super::{parse_net, rule, strings, vdir, Ctx};
use crate::blocks::{Blocks, DenyAction, IisFilterRule, IpRestriction};
use crate::model::{Action, Cond, Header, Rule, RuleOrigin, ScanTarget};
use crate::raw::*;
use crate::PolicyError;

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
            base.push(Cond::Path(vec![Glob::path(&path)]));
        }
        let mut unless: Vec<Vec<Cond>> = Vec::new();
        if !deeper.is_empty() {
            unless.push(vec![Cond::Path(deeper.iter().map(|d| Glob::path(d)).collect())]);
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

pub(super) fn compile_iis_filter(
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
            c.push(Cond::Path(vec![Glob::path(&vdir(p))]));
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
