//! One path's IIS configuration as IIS merges it: each level's
//! `<system.webServer>` is applied in turn to the state inherited from the
//! levels above (attributes replace, collections take `<add>`, `<remove>`
//! and `<clear>`). Only what decides requests is kept: the modules that
//! run, request filtering, IP restrictions and URL Rewrite rules.

use ipnet::IpNet;
use roxmltree::Node;

use super::Notes;
use crate::blocks::{DenyAction, IisFilterRule, RequestFiltering, RewriteAction, RewriteCondition, RewriteRule};
use crate::model::Header;
use crate::pattern::PatternSyntax;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IpSecurity {
    pub allow_unlisted: bool,
    pub deny_action: DenyAction,
    pub proxy_mode: bool,
    pub entries: Vec<(IpNet, bool)>,
}

/// What is in force at one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct State {
    pub filtering_module: bool,
    pub rewrite_module: bool,
    pub ip_module: bool,
    /// Its path and whether the module runs are filled in where the state is
    /// written out (`filtering_module` says the latter here).
    pub filtering: RequestFiltering,
    pub ip: IpSecurity,
    pub rewrite: Vec<RewriteRule>,
}

impl Default for State {
    fn default() -> State {
        State {
            filtering_module: true,
            rewrite_module: true,
            ip_module: true,
            filtering: RequestFiltering {
                path: String::new(),
                enabled: true,
                allow_unlisted_extensions: true,
                extensions: Vec::new(),
                hidden_segments: Vec::new(),
                deny_url_sequences: Vec::new(),
                deny_query_string_sequences: Vec::new(),
                rules: Vec::new(),
            },
            ip: IpSecurity {
                allow_unlisted: true,
                deny_action: DenyAction::Forbidden,
                proxy_mode: false,
                entries: Vec::new(),
            },
            rewrite: Vec::new(),
        }
    }
}

fn flag(n: Node, name: &str, default: bool) -> bool {
    n.attribute(name).map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
}

fn elements<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(|c| c.is_element())
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    elements(n).find(|c| c.tag_name().name() == name)
}

/// A collection keyed by one attribute, merged as IIS merges it.
fn merge_keyed<T: Clone>(
    list: &mut Vec<T>,
    node: Node,
    key: &str,
    make: &mut dyn FnMut(Node) -> Option<T>,
    key_of: &dyn Fn(&T) -> String,
) {
    merge_by(list, node, &|c| c.attribute(key).unwrap_or("").trim().to_string(), make, key_of)
}

/// The same, with the key of a `<remove>` element computed by `node_key`.
fn merge_by<T: Clone>(
    list: &mut Vec<T>,
    node: Node,
    node_key: &dyn Fn(Node) -> String,
    make: &mut dyn FnMut(Node) -> Option<T>,
    key_of: &dyn Fn(&T) -> String,
) {
    for c in elements(node) {
        let k = node_key(c);
        match c.tag_name().name() {
            "clear" => list.clear(),
            "remove" => list.retain(|t| !key_of(t).eq_ignore_ascii_case(&k)),
            "add" | "filteringRule" | "rule" => {
                if let Some(t) = make(c) {
                    list.retain(|x| !key_of(x).eq_ignore_ascii_case(&key_of(&t)));
                    list.push(t);
                }
            }
            _ => {}
        }
    }
}

fn strings_of(node: Option<Node>, list: &mut Vec<String>, attr: &str) {
    if let Some(n) = node {
        merge_keyed(list, n, attr, &mut |c| c.attribute(attr).map(|v| v.trim().to_string()), &|s| s.clone());
    }
}

/// Where a node is, for notes.
pub(crate) fn place(file: &str, n: Node) -> String {
    format!("{file}:{}", n.document().text_pos_at(n.range().start).row)
}

/// Apply one level's `<system.webServer>` to `state`. `base` is the path
/// the level configures (URL Rewrite rules match below it).
pub(crate) fn apply(state: &mut State, web: Node, base: &str, file: &str, notes: &mut Notes) {
    if let Some(m) = child(web, "modules") {
        for c in elements(m) {
            let name = c.attribute("name").unwrap_or("");
            let on = match c.tag_name().name() {
                "add" => true,
                "remove" => false,
                "clear" => {
                    state.filtering_module = false;
                    state.rewrite_module = false;
                    state.ip_module = false;
                    continue;
                }
                _ => continue,
            };
            match name {
                "RequestFilteringModule" => state.filtering_module = on,
                "RewriteModule" => state.rewrite_module = on,
                "IpRestrictionModule" => state.ip_module = on,
                _ => {}
            }
        }
    }
    if let Some(sec) = child(web, "security") {
        if let Some(rf) = child(sec, "requestFiltering") {
            filtering(&mut state.filtering, rf, file, notes);
        }
        if let Some(ip) = child(sec, "ipSecurity") {
            ip_security(&mut state.ip, ip, file, notes);
        }
    }
    if let Some(rw) = child(web, "rewrite") {
        if let Some(rules) = child(rw, "rules") {
            rewrite_rules(&mut state.rewrite, rules, base, file, notes);
        }
        for other in ["outboundRules", "rewriteMaps", "providers"] {
            if child(rw, other).is_some_and(|n| elements(n).next().is_some()) {
                let why = if other == "outboundRules" {
                    "outbound rules change responses, not which requests are served"
                } else {
                    "rules that use them are named where they are read"
                };
                notes.info(place(file, web), format!("URL Rewrite <{other}>: {why}"));
            }
        }
    }
}

/// The server's URL Rewrite `<globalRules>`: they match the whole path.
pub(crate) fn apply_global(state: &mut State, web: Node, file: &str, notes: &mut Notes) {
    if let Some(rules) = child(web, "rewrite").and_then(|r| child(r, "globalRules")) {
        rewrite_rules(&mut state.rewrite, rules, "/", file, notes);
    }
}

fn filtering(f: &mut RequestFiltering, rf: Node, file: &str, notes: &mut Notes) {
    if rf.attribute("allowHighBitCharacters").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
        notes.inexact(
            place(file, rf),
            "allowHighBitCharacters=\"false\"".into(),
            "requests with non-ASCII bytes in the URL are not told apart".into(),
        );
    }
    if let Some(ext) = child(rf, "fileExtensions") {
        if let Some(v) = ext.attribute("allowUnlisted") {
            f.allow_unlisted_extensions = v.eq_ignore_ascii_case("true");
        }
        merge_keyed(
            &mut f.extensions,
            ext,
            "fileExtension",
            &mut |c| c.attribute("fileExtension").map(|e| (e.trim().to_string(), flag(c, "allowed", true))),
            &|(e, _)| e.clone(),
        );
    }
    strings_of(child(rf, "hiddenSegments"), &mut f.hidden_segments, "segment");
    strings_of(child(rf, "denyUrlSequences"), &mut f.deny_url_sequences, "sequence");
    strings_of(child(rf, "denyQueryStringSequences"), &mut f.deny_query_string_sequences, "sequence");
    if let Some(rules) = child(rf, "filteringRules") {
        merge_keyed(&mut f.rules, rules, "name", &mut |c| filtering_rule(c, file, notes), &|r| r.name.clone());
    }
    if let Some(verbs) = child(rf, "verbs") {
        if verbs.attribute("allowUnlisted").is_some_and(|v| v.eq_ignore_ascii_case("false"))
            || elements(verbs).any(|v| v.attribute("allowed").is_some_and(|a| a.eq_ignore_ascii_case("false")))
        {
            notes.inexact(
                place(file, verbs),
                "request filtering <verbs>".into(),
                "HTTP methods are not filtered by casguard".into(),
            );
        }
    }
    if let Some(limits) = child(rf, "requestLimits") {
        let named: Vec<&str> =
            ["maxUrl", "maxQueryString"].into_iter().filter(|a| limits.attribute(*a).is_some()).collect();
        if !named.is_empty() || child(limits, "headerLimits").is_some() {
            notes.inexact(
                place(file, limits),
                format!("request limits ({})", if named.is_empty() { "headerLimits".into() } else { named.join(", ") }),
                "lengths are not checked: logged queries carry Exchange's own additions".into(),
            );
        }
    }
    for always in ["alwaysAllowedUrls", "alwaysAllowedQueryStrings"] {
        if child(rf, always).is_some_and(|n| elements(n).next().is_some()) {
            notes.inexact(
                place(file, rf),
                format!("request filtering <{always}>"),
                "exemptions from request filtering are not emulated".into(),
            );
        }
    }
}

fn filtering_rule(c: Node, file: &str, notes: &mut Notes) -> Option<IisFilterRule> {
    let name = c.attribute("name")?.to_string();
    let mut headers = Vec::new();
    for h in child(c, "scanHeaders").into_iter().flat_map(elements).filter(|h| h.has_tag_name("add")) {
        match h.attribute("requestHeader").unwrap_or("") {
            x if x.eq_ignore_ascii_case("User-Agent") => headers.push(Header::UserAgent),
            x if x.eq_ignore_ascii_case("X-Forwarded-For") => headers.push(Header::XForwardedFor),
            x => {
                notes.inexact(
                    place(file, c),
                    format!("filtering rule '{name}'"),
                    format!("it scans the header '{x}', which is not in the request model"),
                );
                return None;
            }
        }
    }
    if flag(c, "scanAllRaw", false) {
        notes.inexact(
            place(file, c),
            format!("filtering rule '{name}'"),
            "scanAllRaw scans the raw request line and headers, which logs do not hold".into(),
        );
        return None;
    }
    let mut deny_strings = Vec::new();
    strings_of(child(c, "denyStrings"), &mut deny_strings, "string");
    let mut applies_to = Vec::new();
    strings_of(child(c, "appliesTo"), &mut applies_to, "fileExtension");
    let r = IisFilterRule {
        name: name.clone(),
        path: None,
        headers,
        scan_url: flag(c, "scanUrl", false),
        scan_query_string: flag(c, "scanQueryString", false),
        deny_strings,
        applies_to,
    };
    if r.deny_strings.is_empty() || (r.headers.is_empty() && !r.scan_url && !r.scan_query_string) {
        // IIS denies nothing with it: leaving it out is exact.
        return None;
    }
    Some(r)
}

fn parse_ip(addr: &str, mask: Option<&str>) -> Option<IpNet> {
    // A link-local address may carry its zone (`fe80::1%14`): the address is what is matched.
    let addr = addr.trim().split('%').next().unwrap_or("");
    let ip: std::net::IpAddr = addr.parse().ok()?;
    let len = match mask.map(str::trim).filter(|m| !m.is_empty()) {
        None => {
            if ip.is_ipv4() {
                32
            } else {
                128
            }
        }
        Some(m) if m.chars().all(|c| c.is_ascii_digit()) => m.parse().ok()?,
        Some(m) => {
            let mask: std::net::IpAddr = m.parse().ok()?;
            let bits: u128 = match mask {
                std::net::IpAddr::V4(v) => (u32::from(v) as u128) << 96,
                std::net::IpAddr::V6(v) => u128::from(v),
            };
            let ones = bits.leading_ones();
            if bits.checked_shl(ones).unwrap_or(0) != 0 {
                return None;
            }
            ones as u8
        }
    };
    IpNet::new(ip, len).ok().map(|n| n.trunc())
}

fn ip_security(s: &mut IpSecurity, n: Node, file: &str, notes: &mut Notes) {
    if let Some(v) = n.attribute("allowUnlisted") {
        s.allow_unlisted = v.eq_ignore_ascii_case("true");
    }
    if let Some(v) = n.attribute("denyAction") {
        s.deny_action = match v.trim() {
            "Unauthorized" => DenyAction::Unauthorized,
            "NotFound" => DenyAction::NotFound,
            "AbortRequest" => DenyAction::AbortRequest,
            _ => DenyAction::Forbidden,
        };
    }
    if let Some(v) = n.attribute("enableProxyMode") {
        s.proxy_mode = v.eq_ignore_ascii_case("true");
    }
    let key = |(net, _): &(IpNet, bool)| net.to_string();
    let node_key = |c: Node| {
        parse_ip(c.attribute("ipAddress").unwrap_or(""), c.attribute("subnetMask"))
            .map_or_else(|| c.attribute("domainName").unwrap_or("").to_string(), |n| n.to_string())
    };
    merge_by(
        &mut s.entries,
        n,
        &node_key,
        &mut |c| {
            if let Some(d) = c.attribute("domainName") {
                notes.inexact(
                    place(file, c),
                    format!("IP restriction for the domain '{d}'"),
                    "domain names need reverse DNS lookups, which casguard does not make".into(),
                );
                return None;
            }
            let net = parse_ip(c.attribute("ipAddress").unwrap_or(""), c.attribute("subnetMask"));
            if net.is_none() {
                notes.inexact(
                    place(file, c),
                    "IP restriction entry".into(),
                    "its address or subnet mask is not one casguard reads".into(),
                );
            }
            net.map(|net| (net, flag(c, "allowed", false)))
        },
        &key,
    );
}

fn rewrite_rules(list: &mut Vec<RewriteRule>, rules: Node, base: &str, file: &str, notes: &mut Notes) {
    merge_keyed(list, rules, "name", &mut |c| rewrite_rule(c, base, file, notes), &|r| r.name.clone());
}

fn rewrite_rule(c: Node, base: &str, file: &str, notes: &mut Notes) -> Option<RewriteRule> {
    let name = c.attribute("name")?.to_string();
    let what = format!("URL Rewrite rule '{name}'");
    if !flag(c, "enabled", true) {
        return None;
    }
    let Some(syntax) = PatternSyntax::from_name(c.attribute("patternSyntax").unwrap_or("ECMAScript")) else {
        notes.inexact(place(file, c), what, "its patternSyntax is not ECMAScript, Wildcard or ExactMatch".into());
        return None;
    };
    let m = child(c, "match");
    let mut conditions = Vec::new();
    let cond_node = child(c, "conditions");
    for a in cond_node.into_iter().flat_map(elements).filter(|a| a.has_tag_name("add")) {
        if a.attribute("matchType").is_some_and(|t| !t.eq_ignore_ascii_case("Pattern")) {
            notes.inexact(place(file, a), what, "a condition tests the file system (IsFile, IsDirectory)".into());
            return None;
        }
        conditions.push(RewriteCondition {
            input: a.attribute("input").unwrap_or("").trim().to_string(),
            pattern: a.attribute("pattern").unwrap_or("").to_string(),
            negate: flag(a, "negate", false),
            ignore_case: flag(a, "ignoreCase", true),
        });
    }
    let stop_processing = flag(c, "stopProcessing", false);
    let act = child(c, "action");
    let kind = act.and_then(|a| a.attribute("type")).unwrap_or("None");
    let number = |attr: &str| act.and_then(|a| a.attribute(attr)).and_then(|v| v.trim().parse::<u16>().ok());
    let action = match kind {
        "None" => RewriteAction::None,
        "AbortRequest" => RewriteAction::AbortRequest,
        "CustomResponse" => RewriteAction::CustomResponse {
            status: number("statusCode").unwrap_or(403),
            substatus: number("subStatusCode").unwrap_or(0),
        },
        "Redirect" => {
            let status = match act.and_then(|a| a.attribute("redirectType")).unwrap_or("Permanent") {
                "Found" => 302,
                "SeeOther" => 303,
                "Temporary" => 307,
                _ => 301,
            };
            let append = act.and_then(|a| a.attribute("appendQueryString")).map(str::trim);
            RewriteAction::Redirect {
                url: act.and_then(|a| a.attribute("url")).unwrap_or("").to_string(),
                status,
                append_query: !append.is_some_and(|v| v.eq_ignore_ascii_case("false")),
            }
        }
        "Rewrite" => {
            notes.inexact(
                place(file, c),
                what.clone(),
                "it rewrites the URL, and casguard decides the request as sent".into(),
            );
            if !stop_processing {
                return None;
            }
            RewriteAction::None
        }
        other => {
            notes.inexact(place(file, c), what, format!("action type '{other}' is not one casguard knows"));
            return None;
        }
    };
    let rule = RewriteRule {
        name,
        base: base.to_string(),
        url: m.and_then(|m| m.attribute("url")).unwrap_or(".*").to_string(),
        syntax,
        ignore_case: m.is_none_or(|m| flag(m, "ignoreCase", true)),
        negate: m.is_some_and(|m| flag(m, "negate", false)),
        match_any: cond_node
            .and_then(|n| n.attribute("logicalGrouping"))
            .is_some_and(|g| g.eq_ignore_ascii_case("MatchAny")),
        conditions,
        action,
        stop_processing,
    };
    if let Err(why) = crate::compile::rewrite::rule_groups(&rule) {
        notes.inexact(place(file, c), what, why);
        return None;
    }
    Some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(parse_ip("10.1.0.0", Some("255.255.0.0")), "10.1.0.0/16".parse().ok());
        assert_eq!(parse_ip("10.1.2.3", None), "10.1.2.3/32".parse().ok());
        assert_eq!(parse_ip("2001:db8::", Some("32")), "2001:db8::/32".parse().ok());
        assert_eq!(parse_ip("10.1.0.0", Some("255.0.255.0")), None);
        assert_eq!(parse_ip("nope", None), None);
        assert_eq!(parse_ip("fe80::de2:4f45:21dc:6c5a%14", None), "fe80::de2:4f45:21dc:6c5a/128".parse().ok());
    }

    #[test]
    fn collections_merge_add_remove_clear() {
        let doc = roxmltree::Document::parse(
            r#"<c><a><security><requestFiltering><hiddenSegments><add segment="bin"/><add segment="App_Data"/></hiddenSegments>
               <fileExtensions allowUnlisted="true"><add fileExtension=".config" allowed="false"/></fileExtensions></requestFiltering></security></a>
               <b><security><requestFiltering><hiddenSegments><remove segment="BIN"/></hiddenSegments>
               <fileExtensions><clear/><add fileExtension=".cs" allowed="false"/></fileExtensions></requestFiltering></security>
               <modules><remove name="RewriteModule"/></modules></b></c>"#,
        )
        .unwrap();
        let mut notes = Notes::default();
        let mut s = State::default();
        let root = doc.root_element();
        apply(&mut s, child(root, "a").unwrap(), "/", "f", &mut notes);
        apply(&mut s, child(root, "b").unwrap(), "/x", "f", &mut notes);
        assert_eq!(s.filtering.hidden_segments, ["App_Data"]);
        assert_eq!(s.filtering.extensions, [(".cs".to_string(), false)]);
        assert!(!s.rewrite_module && s.filtering_module);
    }
}
