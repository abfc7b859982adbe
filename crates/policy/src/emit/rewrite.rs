//! IIS URL Rewrite: rules as `<rule>` elements, and the `[[rule]]`s that
//! request filtering cannot express (a prefix or exact user agent, a
//! case-sensitive one, several conditions together, exceptions) as global
//! rules, which the web.config files of the virtual directories, rewritten
//! by every Exchange update, cannot clear.

use ::exchange::protocol::prefixes_of;
use ::exchange::text::Glob;
use ipnet::IpNet;

use crate::blocks::{RewriteAction, RewriteCondition, RewriteRule};
use crate::emit::{common_blockers, cond_kind, xml_escape};
use crate::model::{Action, Cond, Policy, TextMode};
use crate::pattern::PatternSyntax;

/// `<rule>` with its match, conditions and action.
pub(crate) fn rule_xml(r: &RewriteRule) -> String {
    let mut s = format!(
        "<rule name=\"{}\" patternSyntax=\"{}\" stopProcessing=\"{}\">\n",
        xml_escape(&r.name),
        r.syntax.name(),
        r.stop_processing
    );
    s.push_str(&format!(
        "  <match url=\"{}\" ignoreCase=\"{}\" negate=\"{}\" />\n",
        xml_escape(&r.url),
        r.ignore_case,
        r.negate
    ));
    if !r.conditions.is_empty() {
        let grouping = if r.match_any { "MatchAny" } else { "MatchAll" };
        s.push_str(&format!("  <conditions logicalGrouping=\"{grouping}\">\n"));
        for c in &r.conditions {
            s.push_str(&format!(
                "    <add input=\"{}\" pattern=\"{}\" ignoreCase=\"{}\" negate=\"{}\" />\n",
                xml_escape(&c.input),
                xml_escape(&c.pattern),
                c.ignore_case,
                c.negate
            ));
        }
        s.push_str("  </conditions>\n");
    }
    match &r.action {
        RewriteAction::None => s.push_str("  <action type=\"None\" />\n"),
        RewriteAction::AbortRequest => s.push_str("  <action type=\"AbortRequest\" />\n"),
        RewriteAction::CustomResponse { status, substatus } => s.push_str(&format!(
            "  <action type=\"CustomResponse\" statusCode=\"{status}\" subStatusCode=\"{substatus}\" statusReason=\"Denied by casguard policy\" statusDescription=\"{}\" />\n",
            xml_escape(&r.name)
        )),
        RewriteAction::Redirect { url, status, append_query } => {
            let kind = match status {
                302 => "Found",
                303 => "SeeOther",
                307 => "Temporary",
                _ => "Permanent",
            };
            let append = if *append_query { "" } else { " appendQueryString=\"false\"" };
            s.push_str(&format!(
                "  <action type=\"Redirect\" url=\"{}\" redirectType=\"{kind}\"{append} />\n",
                xml_escape(url)
            ));
        }
    }
    s.push_str("</rule>");
    s
}

/// True when a URL pattern matches every path, wherever it is written.
pub(crate) fn matches_every_url(r: &RewriteRule) -> bool {
    !r.negate
        && match r.syntax {
            PatternSyntax::EcmaScript => matches!(r.url.as_str(), ".*" | "^.*$" | "(.*)" | "^(.*)$" | "^.*" | ""),
            PatternSyntax::Wildcard => r.url == "*",
            PatternSyntax::ExactMatch => false,
        }
}

fn esc(s: &str) -> String {
    regex::escape(s)
}

/// A regular expression for the addresses of an octet-aligned IPv4 range.
fn net_regex(net: &IpNet) -> Option<String> {
    let IpNet::V4(v4) = net else { return None };
    let len = v4.prefix_len();
    if len % 8 != 0 {
        return None;
    }
    let octets = v4.network().octets();
    let kept: Vec<String> = octets[..(len / 8) as usize].iter().map(|o| o.to_string()).collect();
    Some(match len {
        0 => ".*".to_string(),
        32 => format!("^{}$", kept.join("\\.")),
        _ => format!("^{}\\.", kept.join("\\.")),
    })
}

/// Path prefixes as a pattern on the URL without its leading `/` (`url`)
/// or on `{URL}`, which keeps it.
fn prefixes_pattern(alts: Vec<String>, slash: bool) -> String {
    let lead = if slash { "/" } else { "" };
    format!("^{lead}({})", alts.join("|"))
}

fn protocol_alts(ps: &[::exchange::Protocol]) -> Result<Vec<String>, String> {
    let mut alts = Vec::new();
    for p in ps {
        let before = alts.len();
        for (prefix, boundary) in prefixes_of(*p) {
            let mut after: Vec<String> = boundary.iter().map(|b| esc(&(*b as char).to_string())).collect();
            after.push("$".into());
            alts.push(format!("{}({})", esc(prefix.trim_start_matches('/')), after.join("|")));
        }
        if alts.len() == before {
            return Err(format!("protocol '{}' has no path of its own", p.key()));
        }
    }
    Ok(alts)
}

fn path_alts(ps: &[Glob]) -> Vec<String> {
    ps.iter()
        .map(|p| {
            let p = p.as_str().trim_start_matches('/');
            if p.contains('*') {
                format!("{}$", p.split('*').map(esc).collect::<Vec<_>>().join(".*"))
            } else {
                esc(p)
            }
        })
        .collect()
}

/// One condition as a URL Rewrite condition, or why not.
fn condition(c: &Cond, negate: bool) -> Result<RewriteCondition, String> {
    let cond = |input: &str, pattern: String, ignore_case: bool| RewriteCondition {
        input: input.to_string(),
        pattern,
        negate,
        ignore_case,
    };
    Ok(match c {
        Cond::UserAgent { case_sensitive, items } => {
            let alts: Vec<String> = items
                .iter()
                .map(|(m, v)| match m {
                    TextMode::Contains => esc(v),
                    TextMode::Prefix => format!("^{}", esc(v)),
                    TextMode::Exact => format!("^{}$", esc(v)),
                })
                .collect();
            cond("{HTTP_USER_AGENT}", alts.join("|"), !case_sensitive)
        }
        Cond::Protocol(ps) => cond("{URL}", prefixes_pattern(protocol_alts(ps)?, true), true),
        Cond::Path(ps) => cond("{URL}", prefixes_pattern(path_alts(ps), true), true),
        Cond::Cidr { nets, peer: true, .. } => {
            let alts: Option<Vec<String>> = nets.iter().map(net_regex).collect();
            let alts = alts.ok_or("only whole-octet IPv4 ranges can be written as a {REMOTE_ADDR} pattern")?;
            cond("{REMOTE_ADDR}", alts.join("|"), true)
        }
        Cond::Cidr { peer: false, .. } => {
            return Err("the client address behind X-Forwarded-For has no server variable URL Rewrite can test".into())
        }
        Cond::Not(inner) => return condition(inner, !negate),
        other => return Err(format!("{} conditions have no URL Rewrite equivalent", cond_kind(other))),
    })
}

/// A `[[rule]]` as a global URL Rewrite rule, or why not.
pub(crate) fn from_rule(policy: &Policy, idx: usize) -> Result<RewriteRule, String> {
    let r = &policy.rules()[idx];
    if let Some(why) = common_blockers(policy, idx, "IIS") {
        return Err(why);
    }
    if r.action != Action::Deny {
        return Err("only deny rules are written".into());
    }
    let mut url: Option<String> = None;
    let mut conditions = Vec::new();
    for c in &r.conditions {
        match c {
            Cond::Protocol(ps) if url.is_none() => url = Some(prefixes_pattern(protocol_alts(ps)?, false)),
            Cond::Path(ps) if url.is_none() => url = Some(prefixes_pattern(path_alts(ps), false)),
            other => conditions.push(condition(other, false)?),
        }
    }
    for group in &r.unless {
        let [c] = group.as_slice() else {
            return Err("an exception of several conditions has no URL Rewrite equivalent".into());
        };
        conditions.push(condition(c, true)?);
    }
    // A user, a client or a device are only known after authentication or
    // classification, which URL Rewrite runs before.
    let action = if r.status == 0 {
        RewriteAction::AbortRequest
    } else {
        RewriteAction::CustomResponse { status: r.status, substatus: r.substatus }
    };
    Ok(RewriteRule {
        name: format!("casguard: {}", r.name),
        base: "/".into(),
        url: url.unwrap_or_else(|| ".*".into()),
        syntax: PatternSyntax::EcmaScript,
        ignore_case: true,
        negate: false,
        match_any: false,
        conditions,
        action,
        stop_processing: true,
    })
}

/// Whether an address a pattern was written for is in `net` (for tests of the translation).
#[cfg(test)]
fn regex_says(net: &IpNet, ip: std::net::IpAddr) -> bool {
    let re = regex::Regex::new(&net_regex(net).unwrap()).unwrap();
    re.is_match(&ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octet_ranges_as_patterns() {
        let cases = [("10.0.0.0/8", "10.200.1.1", true), ("10.0.0.0/8", "110.0.0.1", false)];
        for (net, ip, want) in cases {
            let net: IpNet = net.parse().unwrap();
            assert_eq!(regex_says(&net, ip.parse().unwrap()), want, "{net} {ip}");
        }
        let n: IpNet = "192.168.1.0/24".parse().unwrap();
        assert!(regex_says(&n, "192.168.1.77".parse().unwrap()));
        assert!(!regex_says(&n, "192.168.10.7".parse().unwrap()));
        let one: IpNet = "192.0.2.5/32".parse().unwrap();
        assert!(regex_says(&one, "192.0.2.5".parse().unwrap()) && !regex_says(&one, "192.0.2.50".parse().unwrap()));
        assert_eq!(net_regex(&"10.1.0.0/12".parse().unwrap()), None);
        assert_eq!(net_regex(&"2001:db8::/32".parse().unwrap()), None);
    }
}
