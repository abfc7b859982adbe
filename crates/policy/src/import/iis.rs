//! IIS configuration files: `applicationHost.config` (its root
//! `<system.webServer>`, `<location>` elements and the site's
//! applications) and the virtual directories' `web.config` files. Each
//! level is applied in the order IIS merges them (the server, then per
//! path segment the applicationHost `<location>` before that path's
//! web.config), skipping a level marked `inheritInChildApplications="false"`
//! for paths in another application. The result is, per path where it
//! changes, what is in force there: the policy's "most specific path wins"
//! sections.

use roxmltree::{Document, Node};

use super::sections::{apply, place, State};
use super::Notes;
use crate::blocks::{IpRestriction, RequestFiltering, RewriteRule, RewriteSet};
use crate::compile::iis::config_path;
use crate::model::under;

/// A parsed configuration file, and where it sits.
pub(crate) struct ConfigFile<'a> {
    pub name: String,
    pub doc: Document<'a>,
    /// `None` for applicationHost.config; else (site, virtual directory path).
    pub place: Option<(String, String)>,
}

/// What IIS has in force for one site.
#[derive(Debug, Default)]
pub(crate) struct IisInForce {
    pub ip: Vec<IpRestriction>,
    pub filtering: Vec<RequestFiltering>,
    pub rewrite: Vec<RewriteSet>,
}

/// The applications Exchange creates in the front-end site, used when no
/// applicationHost.config says which paths are applications.
const EXCHANGE_APPS: [&str; 14] = [
    "/",
    "/owa",
    "/owa/Calendar",
    "/owa/Integrated",
    "/owa/oma",
    "/ecp",
    "/EWS",
    "/API",
    "/Autodiscover",
    "/Microsoft-Server-ActiveSync",
    "/OAB",
    "/PowerShell",
    "/mapi",
    "/Rpc",
];

/// Virtual directory names in the names HealthChecker gives web.config
/// copies (`DefaultWebSite-EAS_web.config`).
const VDIR_NAMES: [(&str, &str); 12] = [
    ("EAS", "/Microsoft-Server-ActiveSync"),
    ("AutoD", "/Autodiscover"),
    ("Rest", "/API"),
    ("MapiEmsmdb", "/mapi/emsmdb"),
    ("MapiNspi", "/mapi/nspi"),
    ("Push", "/PushNotifications"),
    ("OWA", "/owa"),
    ("ECP", "/ecp"),
    ("EWS", "/EWS"),
    ("OAB", "/OAB"),
    ("RPC", "/Rpc"),
    ("MAPI", "/mapi"),
];

/// `HttpProxy.ProtocolType` of the front end's web.config files.
const PROXY_TYPES: [(&str, &str); 10] = [
    ("Eas", "/Microsoft-Server-ActiveSync"),
    ("Ews", "/EWS"),
    ("Owa", "/owa"),
    ("Ecp", "/ecp"),
    ("Autodiscover", "/Autodiscover"),
    ("Mapi", "/mapi"),
    ("RpcHttp", "/Rpc"),
    ("Oab", "/OAB"),
    ("PowerShell", "/PowerShell"),
    ("RestApi", "/API"),
];

fn site_name(token: &str) -> String {
    match token.replace(' ', "").to_ascii_lowercase().as_str() {
        "defaultwebsite" => "Default Web Site".into(),
        "exchangebackend" => "Exchange Back End".into(),
        _ => token.to_string(),
    }
}

/// Where a web.config belongs: casguard's own header comment, the file
/// name (`<Site>-<VDir>_web.config`, `<Site>_web.config`), else its
/// `HttpProxy.ProtocolType` setting (front-end virtual directories).
pub(crate) fn web_config_place(file_name: &str, site: &str, doc: &Document) -> Option<(String, String)> {
    for c in doc.root().children().chain(doc.root_element().children()).filter(|n| n.is_comment()) {
        let text = c.text().unwrap_or("").trim();
        if let Some(path) = text.strip_prefix("casguard: filtering rules for ") {
            let (site, vdir) = path.split_once('/').unwrap_or((path, ""));
            return Some((site.to_string(), config_path(vdir)));
        }
    }
    let stem = file_name
        .strip_suffix("_web.config")
        .or_else(|| file_name.strip_suffix(".web.config"))
        .or_else(|| file_name.strip_suffix("-web.config"));
    if let Some(stem) = stem {
        // `<anything>-<Site>-<VDir>`: the site is a known name, or the site imported.
        let parts: Vec<&str> = stem.split('-').collect();
        let squeeze = |s: &str| s.replace(' ', "").to_ascii_lowercase();
        let known = ["defaultwebsite".to_string(), "exchangebackend".to_string(), squeeze(site)];
        if let Some(i) = parts.iter().position(|p| known.contains(&squeeze(p))) {
            let site = if squeeze(parts[i]) == squeeze(site) { site.to_string() } else { site_name(parts[i]) };
            let vdir = parts[i + 1..].join("-");
            let vdir = VDIR_NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&vdir))
                .map_or_else(|| config_path(&vdir), |(_, p)| p.to_string());
            return Some((site, vdir));
        }
    }
    let settings = doc.root_element().children().find(|n| n.has_tag_name("appSettings"))?;
    let kind = settings
        .children()
        .find(|n| n.attribute("key") == Some("HttpProxy.ProtocolType"))
        .and_then(|n| n.attribute("value"))?;
    let vdir = PROXY_TYPES.iter().find(|(t, _)| t.eq_ignore_ascii_case(kind))?.1;
    Some(("Default Web Site".into(), vdir.into()))
}

/// One level of configuration.
struct Layer<'a, 'i> {
    path: String,
    /// Merge order among levels of the same depth: server, apphost location, web.config.
    rank: u8,
    inherit_children: bool,
    web: Node<'a, 'i>,
    file: &'a str,
}

fn web_of<'a, 'i>(n: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name("system.webServer"))
}

fn depth(path: &str) -> usize {
    path.split('/').filter(|s| !s.is_empty()).count()
}

fn has_decisions(web: Node) -> bool {
    web.descendants().any(|n| {
        matches!(
            n.tag_name().name(),
            "ipSecurity" | "filteringRules" | "fileExtensions" | "hiddenSegments" | "denyUrlSequences" | "rules"
        ) && n.children().any(|c| c.is_element())
    })
}

pub(crate) fn read(files: &[ConfigFile], site: &str, notes: &mut Notes) -> IisInForce {
    let mut layers: Vec<Layer> = Vec::new();
    let mut apps: Vec<String> = Vec::new();
    let mut installed: Option<Vec<String>> = None;
    let mut global: Vec<RewriteRule> = Vec::new();
    let mut other_sites = Vec::new();
    for f in files {
        let root = f.doc.root_element();
        let file = f.name.as_str();
        match &f.place {
            None => {
                if let Some(host) = root.children().find(|c| c.has_tag_name("system.applicationHost")) {
                    for s in host.descendants().filter(|n| n.has_tag_name("site")) {
                        if s.attribute("name").is_some_and(|n| n.eq_ignore_ascii_case(site)) {
                            apps.extend(
                                s.children()
                                    .filter(|a| a.has_tag_name("application"))
                                    .filter_map(|a| a.attribute("path"))
                                    .map(config_path),
                            );
                        }
                    }
                }
                if let Some(web) = web_of(root) {
                    if let Some(g) = web.children().find(|c| c.has_tag_name("globalModules")) {
                        let names = g.children().filter_map(|a| a.attribute("name")).map(str::to_string).collect();
                        installed = Some(names);
                    }
                    let mut st = State::default();
                    super::sections::apply_global(&mut st, web, file, notes);
                    global.extend(st.rewrite);
                    layers.push(Layer { path: "/".into(), rank: 0, inherit_children: true, web, file });
                }
                for loc in root.children().filter(|c| c.has_tag_name("location")) {
                    let Some(web) = web_of(loc) else { continue };
                    let p = loc.attribute("path").unwrap_or("").trim().trim_matches('/');
                    let inherit =
                        !loc.attribute("inheritInChildApplications").is_some_and(|v| v.eq_ignore_ascii_case("false"));
                    let (s, rest) = p.split_once('/').unwrap_or((p, ""));
                    if p.is_empty() {
                        layers.push(Layer { path: "/".into(), rank: 1, inherit_children: inherit, web, file });
                    } else if s.eq_ignore_ascii_case(site) {
                        layers.push(Layer { path: config_path(rest), rank: 2, inherit_children: inherit, web, file });
                    } else if has_decisions(web) {
                        other_sites.push(place(file, loc));
                    }
                }
            }
            Some((s, vdir)) => {
                if !s.eq_ignore_ascii_case(site) {
                    if web_of(root).is_some_and(has_decisions) {
                        other_sites.push(file.to_string());
                    }
                    continue;
                }
                if let Some(web) = web_of(root) {
                    layers.push(Layer { path: vdir.clone(), rank: 3, inherit_children: true, web, file });
                }
                for loc in root.children().filter(|c| c.has_tag_name("location")) {
                    let Some(web) = web_of(loc) else { continue };
                    let sub = loc.attribute("path").unwrap_or("").trim().trim_matches('/');
                    let path =
                        if sub.is_empty() || sub == "." { vdir.clone() } else { config_path(&format!("{vdir}/{sub}")) };
                    let inherit =
                        !loc.attribute("inheritInChildApplications").is_some_and(|v| v.eq_ignore_ascii_case("false"));
                    layers.push(Layer { path, rank: 3, inherit_children: inherit, web, file });
                }
            }
        }
    }
    if !other_sites.is_empty() {
        notes.info(
            other_sites.join(", "),
            format!("request filtering, IP restrictions or rewrite rules of other sites than '{site}' are not imported: casguard decides the requests that reach '{site}'"),
        );
    }
    if apps.is_empty() {
        apps = EXCHANGE_APPS.iter().map(|a| a.to_string()).collect();
    }
    layers.sort_by_key(|l| (depth(&l.path), l.rank));
    let app_of = |p: &str| -> String {
        apps.iter()
            .filter(|a| a.as_str() == "/" || under(p, a))
            .max_by_key(|a| a.len())
            .cloned()
            .unwrap_or_else(|| "/".into())
    };
    // Every path where something may change: the levels and the applications.
    let mut nodes: Vec<String> = vec!["/".into()];
    for p in layers.iter().map(|l| l.path.clone()).chain(apps.iter().cloned()) {
        if !nodes.iter().any(|n| n.eq_ignore_ascii_case(&p)) {
            nodes.push(p);
        }
    }
    nodes.sort_by_key(|n| depth(n));
    let mut out = IisInForce::default();
    let mut states: Vec<(String, State)> = Vec::new();
    for node in &nodes {
        let mut st = State::default();
        if let Some(names) = &installed {
            let has = |m: &str| names.iter().any(|n| n == m);
            st.filtering_module = has("RequestFilteringModule");
            st.rewrite_module = has("RewriteModule");
            st.ip_module = has("IpRestrictionModule");
        }
        for l in layers.iter().filter(|l| l.path == "/" || under(node, &l.path)) {
            if !l.inherit_children && app_of(node) != app_of(&l.path) {
                continue;
            }
            apply(&mut st, l.web, &l.path, l.file, notes);
        }
        states.push((node.clone(), st));
    }
    let baseline = State::default();
    // The state of the nearest path above `node` whose entry the policy writes.
    fn above<'s>(written: &[(String, &'s State)], node: &str, baseline: &'s State) -> &'s State {
        written
            .iter()
            .filter(|(p, _)| p != node && (p == "/" || under(node, p)))
            .max_by_key(|(p, _)| p.len())
            .map_or(baseline, |(_, s)| *s)
    }
    let mut w_filter: Vec<(String, &State)> = Vec::new();
    let mut w_ip: Vec<(String, &State)> = Vec::new();
    let mut w_rw: Vec<(String, &State)> = Vec::new();
    for (node, st) in &states {
        let f_of = |s: &State| (s.filtering_module, s.filtering_module.then(|| s.filtering.clone()));
        let i_of =
            |s: &State| s.ip_module.then(|| s.ip.clone()).filter(|ip| !ip.allow_unlisted || !ip.entries.is_empty());
        let r_of = |s: &State| if s.rewrite_module { s.rewrite.clone() } else { Vec::new() };
        if f_of(st) != f_of(above(&w_filter, node, &baseline)) {
            w_filter.push((node.clone(), st));
        }
        if i_of(st) != i_of(above(&w_ip, node, &baseline)) {
            w_ip.push((node.clone(), st));
        }
        if r_of(st) != r_of(above(&w_rw, node, &baseline)) {
            w_rw.push((node.clone(), st));
        }
    }
    let ip_configured = states.iter().any(|(_, s)| !s.ip.allow_unlisted || !s.ip.entries.is_empty());
    if ip_configured && states.iter().all(|(_, s)| !s.ip_module) {
        notes.info(
            "applicationHost.config".into(),
            "IP restrictions are configured but the IpRestrictionModule is not installed: they decide nothing".into(),
        );
    }
    for (path, st) in w_filter {
        out.filtering.push(RequestFiltering { path, enabled: st.filtering_module, ..st.filtering.clone() });
    }
    for (path, st) in w_ip {
        let on = st.ip_module;
        out.ip.push(IpRestriction {
            path,
            allow_unlisted: !on || st.ip.allow_unlisted,
            deny_action: st.ip.deny_action,
            enable_proxy_mode: st.ip.proxy_mode,
            entries: if on { st.ip.entries.clone() } else { Vec::new() },
        });
    }
    if !global.is_empty() {
        out.rewrite.push(RewriteSet { path: None, rules: global });
    }
    for (path, st) in w_rw {
        let rules = if st.rewrite_module { st.rewrite.clone() } else { Vec::new() };
        out.rewrite.push(RewriteSet { path: Some(path), rules });
    }
    out
}
