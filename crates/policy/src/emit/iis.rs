//! IIS: Request Filtering `filteringRules` (web.config) and `ipSecurity`
//! (applicationHost.config, the section is locked at site level), with the
//! equivalent appcmd commands (exchange.md §3d); the request filtering and
//! URL Rewrite sections in force per path, and the `[[rule]]`s request
//! filtering cannot express as URL Rewrite global rules, as
//! applicationHost.config `<location>` elements.

use std::collections::BTreeMap;

use crate::blocks::{IisFilterRule, RequestFiltering};
use crate::emit::rewrite::{self, matches_every_url, rule_xml};
use crate::emit::{common_blockers, cond_kind, is_user_rule, vdirs_of, xml_comment, xml_escape, Output, Unexpressible};
use crate::model::{under, Action, Cond, Header, Policy, TextMode};

pub const DEFAULT_SITE: &str = "Default Web Site";
const APPCMD: &str = r"%windir%\system32\inetsrv\appcmd.exe";

/// Filtering rules for one IIS configuration path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IisSection {
    /// IIS configuration path, e.g. `Default Web Site/Microsoft-Server-ActiveSync`.
    pub path: String,
    /// Each a `<filteringRule>` element.
    pub filtering_rules: Vec<String>,
}

impl IisSection {
    /// A complete web.config for this path holding only the rules; merge it
    /// into the existing file with [`crate::emit::merge_web_config`].
    pub fn web_config(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        s.push_str(&format!("<!-- casguard: filtering rules for {} -->\n", xml_comment(&self.path)));
        s.push_str(
            "<!-- Merge the <filteringRule> elements into that directory's web.config (casguard emit's merge option \
             writes the merged file) or run appcmd.cmd. Never replace the file: it holds Exchange's own settings. \
             Exchange updates rewrite it: apply the rules again after each. -->\n",
        );
        s.push_str("<configuration>\n  <system.webServer>\n    <security>\n      <requestFiltering>\n        <filteringRules>\n");
        for r in &self.filtering_rules {
            for l in r.lines() {
                s.push_str("          ");
                s.push_str(l);
                s.push('\n');
            }
        }
        s.push_str("        </filteringRules>\n      </requestFiltering>\n    </security>\n  </system.webServer>\n</configuration>\n");
        s
    }
}

/// Everything the IIS emitter produces.
#[derive(Clone, Debug, Default)]
pub struct IisOutput {
    pub sections: Vec<IisSection>,
    /// `<location>` elements (ipSecurity, request filtering, URL Rewrite),
    /// one per path, for applicationHost.config.
    pub locations: Vec<String>,
    /// URL Rewrite `<rule>` elements for the server's `<globalRules>`.
    pub global_rules: Vec<String>,
    pub appcmd: String,
    pub unexpressible: Vec<Unexpressible>,
}

fn indented(s: &mut String, text: &str, indent: &str) {
    for line in text.lines() {
        s.push_str(indent);
        s.push_str(line);
        s.push('\n');
    }
}

/// `items` indented between `open` and `close`, or nothing when there are none.
fn element(s: &mut String, open: &str, items: &[String], indent: &str, close: &str) {
    if items.is_empty() {
        return;
    }
    s.push_str(open);
    for item in items {
        indented(s, item, indent);
    }
    s.push_str(close);
}

impl IisOutput {
    /// The global rules and `<location>` elements for applicationHost.config, as one document.
    pub fn application_host(&self) -> Option<String> {
        if self.locations.is_empty() && self.global_rules.is_empty() {
            return None;
        }
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- casguard: merge these elements into %windir%\\system32\\inetsrv\\config\\applicationHost.config -->\n");
        if self.locations.iter().any(|l| l.contains("<requestFiltering>")) {
            s.push_str(
                "<!-- Each <requestFiltering> below is whole: its <clear /> elements drop what the path inherits, \
                 IIS's default denied extensions and hidden segments included, so that only what the policy \
                 lists is in force there, as simulate decides. -->\n",
            );
        }
        s.push_str("<configuration>\n");
        element(
            &mut s,
            "  <system.webServer>\n    <rewrite>\n      <globalRules>\n",
            &self.global_rules,
            "        ",
            "      </globalRules>\n    </rewrite>\n  </system.webServer>\n",
        );
        for l in &self.locations {
            indented(&mut s, l, "  ");
        }
        s.push_str("</configuration>\n");
        Some(s)
    }

    pub fn into_output(self) -> Output {
        let mut files = Vec::new();
        for s in &self.sections {
            let tail = s.path.rsplit('/').next().unwrap_or("site").replace(' ', "-");
            let name =
                if self.sections.len() == 1 { "web.config.xml".to_string() } else { format!("web.config.{tail}.xml") };
            files.push((name, s.web_config()));
        }
        if let Some(a) = self.application_host() {
            files.push(("applicationHost.xml".to_string(), a));
        }
        if !self.appcmd.is_empty() {
            files.push(("appcmd.cmd".to_string(), self.appcmd.clone()));
        }
        Output { files, unexpressible: self.unexpressible }
    }
}

fn site_path(site: &str, vdir: Option<&str>) -> String {
    match vdir.map(|v| v.trim().trim_end_matches('/')) {
        None | Some("") => site.to_string(),
        Some(v) => format!("{site}/{}", v.trim_start_matches('/')),
    }
}

fn filter_xml(f: &IisFilterRule) -> String {
    let mut s = format!(
        "<filteringRule name=\"{}\" scanUrl=\"{}\" scanQueryString=\"{}\" scanAllRaw=\"false\" denyUnescapedPercent=\"false\">\n",
        xml_escape(&f.name),
        f.scan_url,
        f.scan_query_string
    );
    s.push_str("  <scanHeaders>\n");
    for h in &f.headers {
        s.push_str(&format!("    <add requestHeader=\"{}\" />\n", h.name()));
    }
    s.push_str("  </scanHeaders>\n");
    if !f.applies_to.is_empty() {
        s.push_str("  <appliesTo>\n");
        for e in &f.applies_to {
            s.push_str(&format!("    <add fileExtension=\"{}\" />\n", xml_escape(e)));
        }
        s.push_str("  </appliesTo>\n");
    }
    s.push_str("  <denyStrings>\n");
    for d in &f.deny_strings {
        s.push_str(&format!("    <add string=\"{}\" />\n", xml_escape(d)));
    }
    s.push_str("  </denyStrings>\n</filteringRule>");
    s
}

/// What appcmd.cmd says first: how it can be run again.
const APPCMD_AGAIN: &str = "rem Each filtering rule and IP entry is removed before it is added (the error when it is \
    not there yet is hidden), so that this can be run again, after editing the policy too.\n";

fn filter_appcmd(path: &str, f: &IisFilterRule) -> String {
    let head = format!("{APPCMD} set config \"{path}\" -section:system.webServer/security/requestFiltering");
    let n = &f.name;
    // Removed whole, its strings and headers with it: adding a rule that
    // exists fails, and would leave the strings the policy took out.
    let mut s = format!("{head} /-\"filteringRules.[name='{n}']\" >nul 2>&1\n");
    s.push_str(&format!(
        "{head} /+\"filteringRules.[name='{n}',scanUrl='{}',scanQueryString='{}',scanAllRaw='false',denyUnescapedPercent='false']\"\n",
        f.scan_url, f.scan_query_string
    ));
    for h in &f.headers {
        s.push_str(&format!("{head} /+\"filteringRules.[name='{n}'].scanHeaders.[requestHeader='{}']\"\n", h.name()));
    }
    for e in &f.applies_to {
        s.push_str(&format!("{head} /+\"filteringRules.[name='{n}'].appliesTo.[fileExtension='{e}']\"\n"));
    }
    for d in &f.deny_strings {
        s.push_str(&format!("{head} /+\"filteringRules.[name='{n}'].denyStrings.[string='{d}']\"\n"));
    }
    s
}

/// Strings appcmd cannot carry inside its `[key='value']` syntax.
fn appcmd_safe(s: &str) -> bool {
    !s.contains(['\'', '"', ']', '%', '\n'])
}

/// A `[[rule]]` as IIS filtering rules (one per virtual directory), or why not.
fn from_rule(policy: &Policy, idx: usize) -> Result<Vec<(Option<String>, IisFilterRule)>, String> {
    let r = &policy.rules()[idx];
    if let Some(why) = common_blockers(policy, idx, "IIS") {
        return Err(why);
    }
    if !r.unless.is_empty() {
        return Err("IIS filtering rules have no exceptions (unless)".into());
    }
    if r.status_explicit && r.status != 404 {
        return Err(format!("IIS filtering rules answer 404.19, the rule asks for {}", r.status));
    }
    let mut vdirs: Option<Vec<String>> = None;
    let mut strings = None;
    for c in &r.conditions {
        match c {
            Cond::Protocol(ps) if vdirs.is_none() => {
                let mut v = Vec::new();
                for p in ps {
                    let dirs = vdirs_of(*p);
                    if dirs.is_empty() {
                        return Err("protocol 'other' has no virtual directory".into());
                    }
                    v.extend(dirs.iter().map(|d| d.to_string()));
                }
                vdirs = Some(v);
            }
            Cond::Path(ps) if vdirs.is_none() => {
                if ps.iter().any(|p| p.has_wildcard()) {
                    return Err("IIS configuration paths cannot be globs".into());
                }
                vdirs = Some(ps.iter().map(|p| p.as_str().to_owned()).collect());
            }
            Cond::Protocol(_) | Cond::Path(_) => {
                return Err("both protocol and path: IIS takes one configuration path".into());
            }
            Cond::UserAgent { case_sensitive: false, items } => {
                if items.iter().any(|(m, _)| *m != TextMode::Contains) {
                    return Err("IIS deny strings match substrings only, not a prefix or an exact user agent".into());
                }
                // IIS scans `User-Agent: value`: a string that could match across the name would
                // refuse what the rule lets through (`agent` every user agent).
                if items.iter().any(|(_, v)| Header::UserAgent.scan_crosses_name(v) || !appcmd_safe(v)) {
                    return Err("IIS scans the `User-Agent: ` line, and a user-agent string would match across its name, or has characters appcmd cannot carry".into());
                }
                strings = Some(items.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
            }
            Cond::UserAgent { case_sensitive: true, .. } => {
                return Err("IIS deny strings are not case-sensitive".into());
            }
            Cond::Cidr { .. } | Cond::Network(_) => {
                return Err("address conditions: write them as [[ip_restrictions]], which IIS applies to a path".into())
            }
            Cond::Auth(_) => {
                return Err("authentication type: IIS request filtering cannot tell schemes apart exactly; \
                    turn the scheme off on the virtual directory instead"
                    .into())
            }
            other => return Err(format!("{} conditions have no IIS equivalent", cond_kind(other))),
        }
    }
    let strings = strings.ok_or("IIS filtering rules need a user_agent `contains` condition")?;
    let name = format!("casguard: {}", r.name);
    if !appcmd_safe(&name) {
        return Err("the rule name has characters appcmd cannot carry".into());
    }
    let make = |vdir: Option<String>| {
        (
            vdir,
            IisFilterRule {
                name: name.clone(),
                path: None,
                headers: vec![crate::model::Header::UserAgent],
                scan_url: false,
                scan_query_string: false,
                deny_strings: strings.clone(),
                applies_to: Vec::new(),
            },
        )
    };
    Ok(match vdirs {
        None => vec![make(None)],
        Some(v) => v.into_iter().map(|d| make(Some(d))).collect(),
    })
}

/// What one `<location>` holds, by configuration section.
#[derive(Default)]
struct Location {
    modules: Vec<String>,
    security: Vec<String>,
    rewrite: Vec<String>,
}

impl Location {
    fn xml(&self, path: &str) -> String {
        let mut x = format!("<location path=\"{}\">\n  <system.webServer>\n", xml_escape(path));
        element(&mut x, "    <modules>\n", &self.modules, "      ", "    </modules>\n");
        element(&mut x, "    <security>\n", &self.security, "      ", "    </security>\n");
        element(
            &mut x,
            "    <rewrite>\n      <rules>\n        <clear />\n",
            &self.rewrite,
            "        ",
            "      </rules>\n    </rewrite>\n",
        );
        x.push_str("  </system.webServer>\n</location>");
        x
    }
}

/// A whole request filtering section, each collection cleared first: the
/// policy holds what is in force at the path, inherited parts included.
fn request_filtering_xml(r: &RequestFiltering) -> String {
    let mut x = String::from("<requestFiltering>\n");
    x.push_str(&format!("  <fileExtensions allowUnlisted=\"{}\">\n    <clear />\n", r.allow_unlisted_extensions));
    for (e, allowed) in &r.extensions {
        x.push_str(&format!("    <add fileExtension=\"{}\" allowed=\"{allowed}\" />\n", xml_escape(e)));
    }
    x.push_str("  </fileExtensions>\n");
    for (tag, item, attr, values) in [
        ("hiddenSegments", "add", "segment", &r.hidden_segments),
        ("denyUrlSequences", "add", "sequence", &r.deny_url_sequences),
        ("denyQueryStringSequences", "add", "sequence", &r.deny_query_string_sequences),
    ] {
        x.push_str(&format!("  <{tag}>\n    <clear />\n"));
        for v in values {
            x.push_str(&format!("    <{item} {attr}=\"{}\" />\n", xml_escape(v)));
        }
        x.push_str(&format!("  </{tag}>\n"));
    }
    x.push_str("  <filteringRules>\n    <clear />\n");
    for f in &r.rules {
        indented(&mut x, &filter_xml(f), "    ");
    }
    x.push_str("  </filteringRules>\n</requestFiltering>");
    x
}

/// Emit `policy` for the IIS site `site`.
pub fn emit(policy: &Policy, site: &str) -> IisOutput {
    let mut out = IisOutput::default();
    let mut by_path: BTreeMap<String, Vec<IisFilterRule>> = BTreeMap::new();
    let mut locations: BTreeMap<String, Location> = BTreeMap::new();
    let blocks = &policy.blocks;
    for f in &blocks.iis_filter {
        if !appcmd_safe(&f.name) || f.deny_strings.iter().any(|d| !appcmd_safe(d)) {
            out.unexpressible.push(Unexpressible {
                rule: format!("iis_filter: {}", f.name),
                reason: "the name or a deny string has characters appcmd cannot carry".into(),
            });
            continue;
        }
        by_path.entry(site_path(site, f.path.as_deref())).or_default().push(f.clone());
    }
    for (block, what) in [
        (blocks.ews.is_some(), "ews_access"),
        (blocks.device_access.is_some(), "device_access"),
        (blocks.mailbox.is_some(), "mailbox_protocols"),
        (blocks.auth.is_some(), "auth_policies"),
    ] {
        if block {
            out.unexpressible.push(Unexpressible {
                rule: what.into(),
                reason: format!("{what} is an Exchange setting; emit it with --target exchange"),
            });
        }
    }
    for rf in &blocks.request_filtering {
        let loc = locations.entry(site_path(site, Some(&rf.path))).or_default();
        if !rf.enabled {
            loc.modules.push("<remove name=\"RequestFilteringModule\" />".into());
            continue;
        }
        // Turned off above this path by the policy: turn it back on.
        let parent_off = blocks
            .request_filtering
            .iter()
            .filter(|o| o.path != rf.path && (o.path == "/" || under(&rf.path, &o.path)))
            .max_by_key(|o| o.path.len())
            .is_some_and(|o| !o.enabled);
        if parent_off {
            loc.modules.push("<add name=\"RequestFilteringModule\" />".into());
        }
        loc.security.push(request_filtering_xml(rf));
    }
    for set in &blocks.url_rewrite {
        let mut xml = Vec::new();
        for r in &set.rules {
            let here = set.path.as_deref().unwrap_or("/");
            if !r.base.eq_ignore_ascii_case(here) && !matches_every_url(r) {
                out.unexpressible.push(Unexpressible {
                    rule: format!("url_rewrite {here}: {}", r.name),
                    reason: format!(
                        "the rule is inherited from {}, and IIS matches its URL pattern relative to where it is written",
                        r.base
                    ),
                });
                continue;
            }
            xml.push(rule_xml(r));
        }
        match &set.path {
            None => out.global_rules.extend(xml),
            Some(p) => locations.entry(site_path(site, Some(p))).or_default().rewrite.extend(xml),
        }
    }
    for (i, r) in policy.rules().iter().enumerate() {
        if !is_user_rule(r) || r.action == Action::Allow {
            continue;
        }
        match from_rule(policy, i) {
            Ok(fs) => {
                for (vdir, f) in fs {
                    by_path.entry(site_path(site, vdir.as_deref())).or_default().push(f);
                }
            }
            Err(filtering) => match rewrite::from_rule(policy, i) {
                Ok(rw) => out.global_rules.push(rule_xml(&rw)),
                Err(rewriting) => out.unexpressible.push(Unexpressible {
                    rule: r.name.clone(),
                    reason: format!("{filtering}; as a URL Rewrite rule: {rewriting}"),
                }),
            },
        }
    }
    if policy.default_action() == Action::Deny {
        out.unexpressible.push(Unexpressible {
            rule: "default".into(),
            reason: "IIS request filtering cannot deny everything not matched by a rule".into(),
        });
    }
    let mut appcmd = String::new();
    for (path, fs) in &by_path {
        appcmd.push_str(&format!("rem Request filtering for {path}\n"));
        for f in fs {
            appcmd.push_str(&filter_appcmd(path, f));
        }
        out.sections.push(IisSection { path: path.clone(), filtering_rules: fs.iter().map(filter_xml).collect() });
    }
    for ip in &blocks.ip_restrictions {
        let path = site_path(site, Some(&ip.path));
        let mut x = format!(
            "<ipSecurity allowUnlisted=\"{}\" denyAction=\"{}\" enableProxyMode=\"{}\">\n  <clear />\n",
            ip.allow_unlisted,
            ip.deny_action.name(),
            ip.enable_proxy_mode
        );
        let head = format!("{APPCMD} set config \"{path}\" -section:system.webServer/security/ipSecurity");
        appcmd.push_str(&format!(
            "rem IP restrictions for {path} (IIS 8+, role service \"IP and Domain Restrictions\")\n\
             rem These add to the entries {path} already has or inherits, where applicationHost.xml clears them:\n\
             rem remove any other entry first, or an allowed one lets through what the policy denies.\n"
        ));
        appcmd.push_str(&format!(
            "{head} /allowUnlisted:\"{}\" /denyAction:\"{}\" /enableProxyMode:\"{}\" /commit:apphost\n",
            ip.allow_unlisted,
            ip.deny_action.name(),
            ip.enable_proxy_mode
        ));
        for (net, allowed) in &ip.entries {
            let (addr, mask) = (net.network(), net.netmask());
            x.push_str(&format!("  <add ipAddress=\"{addr}\" subnetMask=\"{mask}\" allowed=\"{allowed}\" />\n"));
            // Removed first: an entry for the same address that exists
            // (allowed before the policy was edited) makes the add fail
            // and would stay as it was.
            appcmd.push_str(&format!(
                "{head} /-\"[ipAddress='{addr}',subnetMask='{mask}']\" /commit:apphost >nul 2>&1\n\
                 {head} /+\"[ipAddress='{addr}',subnetMask='{mask}',allowed='{allowed}']\" /commit:apphost\n"
            ));
        }
        x.push_str("</ipSecurity>");
        locations.entry(path).or_default().security.push(x);
    }
    if !out.global_rules.is_empty() || blocks.request_filtering.iter().len() + blocks.url_rewrite.len() > 0 {
        appcmd.push_str("rem URL Rewrite rules and request filtering sections: merge applicationHost.xml\n");
    }
    out.locations = locations.iter().map(|(p, l)| l.xml(p)).collect();
    if appcmd.contains(" /+\"") {
        appcmd.insert_str(0, APPCMD_AGAIN);
    }
    out.appcmd = appcmd;
    out
}
