//! IIS URL Rewrite inbound rules as policy rules. Per path, the rule list in
//! force is evaluated in order, as the module does: a rule whose URL pattern
//! and conditions match either ends the request (`AbortRequest`,
//! `CustomResponse`, `Redirect`) or, with action `None` and
//! `stopProcessing`, ends rule processing, so every later rule gets it as
//! an exception. Global rules apply everywhere, before the others.

use std::sync::Arc;

use super::iis::{config_path, scoped};
use super::{rule, Ctx};
use crate::blocks::{Blocks, RewriteAction, RewriteCondition, RewriteRule, RewriteSet};
use crate::model::{under, Action, Cond, Redirect, Rule, RuleOrigin};
use crate::pattern::{PatternSyntax, RewriteInput, TextPattern};
use crate::raw::{RawRewriteAction, RawRewriteRule, RawUrlRewrite};
use crate::PolicyError;

/// A rule's URL pattern and conditions as condition groups: the rule
/// matches when every condition of one group does.
pub(crate) fn rule_groups(r: &RewriteRule) -> Result<Vec<Vec<Cond>>, String> {
    let url = TextPattern::new(RewriteInput::Url { base: r.base.clone() }, &r.url, r.syntax, r.ignore_case, r.negate)?;
    let url = Cond::Pattern(Arc::new(url));
    let mut conds = Vec::new();
    for c in &r.conditions {
        let input = RewriteInput::from_variable(&c.input).ok_or_else(|| {
            format!(
                "condition input '{}' is not one casguard can test ({}): rewrite maps, other headers and \
                 back-references are not in the request model",
                c.input,
                RewriteInput::supported()
            )
        })?;
        // Conditions are always regular expressions in URL Rewrite, whatever the rule's syntax.
        let p = TextPattern::new(input, &c.pattern, PatternSyntax::EcmaScript, c.ignore_case, c.negate)?;
        conds.push(Cond::Pattern(Arc::new(p)));
    }
    Ok(if conds.is_empty() {
        vec![vec![url]]
    } else if r.match_any {
        conds.into_iter().map(|c| vec![url.clone(), c]).collect()
    } else {
        let mut g = vec![url];
        g.extend(conds);
        vec![g]
    })
}

fn convert(ctx: &Ctx, set_path: &str, r: &toml::Spanned<RawRewriteRule>) -> Result<RewriteRule, PolicyError> {
    let span = r.span();
    let r = r.get_ref();
    let base = config_path(r.base.as_deref().unwrap_or(set_path));
    if !(base.eq_ignore_ascii_case(set_path) || base == "/" || under(set_path, &base)) {
        return Err(ctx.err(&span, format!("rule base '{base}' is not {set_path} or above it")));
    }
    let syntax = match &r.syntax {
        None => PatternSyntax::EcmaScript,
        Some(s) => PatternSyntax::from_name(s)
            .ok_or_else(|| ctx.err(&span, format!("syntax '{s}' is not ECMAScript, Wildcard or ExactMatch")))?,
    };
    let match_any = match r.logical_grouping.as_deref().map(str::trim) {
        None => false,
        Some(g) if g.eq_ignore_ascii_case("MatchAll") => false,
        Some(g) if g.eq_ignore_ascii_case("MatchAny") => true,
        Some(g) => return Err(ctx.err(&span, format!("logical_grouping '{g}' is not MatchAll or MatchAny"))),
    };
    let action = match r.action {
        RawRewriteAction::None => RewriteAction::None,
        RawRewriteAction::AbortRequest => RewriteAction::AbortRequest,
        // The gateway answers with the status and simulate reports it: both
        // must be an HTTP status (the gateway answered 1000 as 403).
        RawRewriteAction::CustomResponse => RewriteAction::CustomResponse {
            status: match r.status {
                None => return Err(ctx.err(&span, "a CustomResponse needs a status")),
                Some(_) => ctx.status("url_rewrite status", &r.status, 403)?,
            },
            substatus: r.substatus.unwrap_or(0),
        },
        RawRewriteAction::Redirect => RewriteAction::Redirect {
            url: r.redirect_url.clone().ok_or_else(|| ctx.err(&span, "a Redirect needs redirect_url"))?,
            status: ctx.status("url_rewrite status", &r.status, 301)?,
            append_query: r.append_query_string,
        },
    };
    Ok(RewriteRule {
        name: r.name.get_ref().trim().to_string(),
        base,
        url: r.url.clone(),
        syntax,
        ignore_case: r.ignore_case,
        negate: r.negate,
        match_any,
        conditions: r
            .conditions
            .iter()
            .map(|c| RewriteCondition {
                input: c.input.trim().to_string(),
                pattern: c.pattern.clone(),
                negate: c.negate,
                ignore_case: c.ignore_case,
            })
            .collect(),
        action,
        stop_processing: r.stop_processing,
    })
}

pub(super) fn compile_url_rewrite(
    ctx: &Ctx,
    raw: &[RawUrlRewrite],
    global: bool,
    rules: &mut Vec<Rule>,
    blocks: &mut Blocks,
) -> Result<(), PolicyError> {
    let mine: Vec<&RawUrlRewrite> = raw.iter().filter(|s| s.global == global).collect();
    if global && mine.len() > 1 {
        return Err(ctx.err(&(0..0), "more than one [[url_rewrite]] with global = true"));
    }
    let mut paths: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    for s in &mine {
        match (&s.path, global) {
            (Some(p), true) => return Err(ctx.err(&p.span(), "global rules apply to every path: give no path")),
            (None, false) => return Err(ctx.err(&(0..0), "a [[url_rewrite]] needs a path, or global = true")),
            (Some(p), false) => {
                let cp = config_path(p.get_ref());
                if paths.iter().any(|(q, _)| q.eq_ignore_ascii_case(&cp)) {
                    return Err(ctx.err(&p.span(), format!("two [[url_rewrite]] entries for path '{cp}'")));
                }
                paths.push((cp, p.span()));
            }
            (None, true) => paths.push(("/".into(), 0..0)),
        }
    }
    let all: Vec<String> = if global { Vec::new() } else { paths.iter().map(|(p, _)| p.clone()).collect() };
    for (s, (path, span)) in mine.iter().zip(&paths) {
        let line = ctx.line(span).unwrap_or(0);
        let (base, path_unless) = if global { (Vec::new(), Vec::new()) } else { scoped(path, &all) };
        let label = if global { "url_rewrite global".to_string() } else { format!("url_rewrite {path}") };
        let mut set = RewriteSet { path: (!global).then(|| path.clone()), rules: Vec::new() };
        let mut stops: Vec<Vec<Cond>> = Vec::new();
        for r in &s.rule {
            let rline = ctx.line(&r.span()).unwrap_or(line);
            let rr = convert(ctx, path, r)?;
            if set.rules.iter().any(|o| o.name.eq_ignore_ascii_case(&rr.name)) || rr.name.is_empty() {
                return Err(ctx.err(&r.span(), format!("rule name '{}' is empty or repeated in {label}", rr.name)));
            }
            let groups = rule_groups(&rr).map_err(|e| ctx.err(&r.span(), e))?;
            let (status, substatus, what) = match &rr.action {
                RewriteAction::None => {
                    if rr.stop_processing {
                        stops.extend(groups);
                    }
                    set.rules.push(rr);
                    continue;
                }
                RewriteAction::AbortRequest => (0, 0, "aborts the request".to_string()),
                RewriteAction::CustomResponse { status, substatus } => {
                    (*status, *substatus, format!("answers {status}"))
                }
                RewriteAction::Redirect { url, status, .. } if url.contains('{') => (
                    *status,
                    0,
                    format!(
                        "redirects to {url} (answered without Location: its back-references and server \
                         variables are not evaluated here)"
                    ),
                ),
                RewriteAction::Redirect { url, status, .. } => (*status, 0, format!("redirects to {url}")),
            };
            let mut unless = path_unless.clone();
            unless.extend(stops.iter().cloned());
            let mut conds = base.clone();
            if groups.len() == 1 {
                conds.extend(groups[0].iter().cloned());
            } else {
                // MatchAny: the URL pattern and any one condition.
                conds.push(groups[0][0].clone());
                conds.push(Cond::Any(groups.iter().map(|g| g[1].clone()).collect()));
            }
            let mut compiled = rule(
                format!("{label}: {}", rr.name),
                Action::Deny,
                status,
                substatus,
                conds,
                unless,
                RuleOrigin::UrlRewrite,
                Some(format!("URL Rewrite rule '{}' {what}", rr.name)),
                rline,
            );
            if let RewriteAction::Redirect { url, append_query, .. } = &rr.action {
                compiled.redirect =
                    (!url.contains('{')).then(|| Redirect { url: url.clone(), append_query: *append_query });
            }
            rules.push(compiled);
            set.rules.push(rr);
        }
        blocks.url_rewrite.push(set);
    }
    Ok(())
}
