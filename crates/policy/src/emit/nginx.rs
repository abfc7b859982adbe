//! nginx in front of Exchange: one `map` whose regular expressions are tried
//! in order, so the first matching rule decides as in the policy, and a
//! location block that answers with the decided status.

use crate::emit::{cond_kind, vdir_of, Output, Unexpressible};
use crate::model::{Action, Cond, Header, Policy, ScanTarget, TextMode};

fn esc(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#-&~/\"".contains(c) || c == '\'' {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

fn glob_re(p: &str) -> String {
    p.split('*').map(esc).collect::<Vec<_>>().join("[^|]*")
}

struct Parts {
    /// Indices of this rule's geo variables.
    nets: Vec<usize>,
    path: Option<String>,
    ua: Option<String>,
}

fn rule_parts(conds: &[Cond], geo: &mut Vec<String>) -> Result<Parts, String> {
    let mut p = Parts { nets: Vec::new(), path: None, ua: None };
    let mut path_alts: Option<Vec<String>> = None;
    let and_path = |alts: Vec<String>, p: &mut Option<Vec<String>>| -> Result<(), String> {
        if p.is_some() {
            return Err("both protocol and path cannot be combined in one nginx pattern".to_string());
        }
        *p = Some(alts);
        Ok(())
    };
    for c in conds {
        match c {
            Cond::Protocol(ps) => {
                let mut alts = Vec::new();
                for pr in ps {
                    let v = vdir_of(*pr).ok_or("protocol 'other' has no path")?;
                    alts.push(format!("{}[^|]*", esc(v)));
                }
                and_path(alts, &mut path_alts)?;
            }
            Cond::Path(ps) => {
                let alts = ps
                    .iter()
                    .map(|x| if x.has_wildcard() { glob_re(x.as_str()) } else { format!("{}[^|]*", esc(x.as_str())) })
                    .collect();
                and_path(alts, &mut path_alts)?;
            }
            Cond::UserAgent { case_sensitive, items } => {
                if p.ua.is_some() {
                    return Err("two user-agent conditions".into());
                }
                let alts: Vec<String> = items
                    .iter()
                    .map(|(m, v)| match m {
                        TextMode::Contains => format!(".*{}.*", esc(v)),
                        TextMode::Prefix => format!("{}.*", esc(v)),
                        TextMode::Exact => esc(v),
                    })
                    .collect();
                let flag = if *case_sensitive { "?" } else { "?i" };
                p.ua = Some(format!("({flag}:{})", alts.join("|")));
            }
            Cond::IisScan { targets, strings, applies_to } => {
                if !applies_to.is_empty() || targets.iter().any(|t| *t != ScanTarget::Header(Header::UserAgent)) {
                    return Err(
                        "nginx normalizes URLs and query strings differently from IIS; only User-Agent scans translate"
                            .into(),
                    );
                }
                if strings.iter().any(|s| s.contains(':')) {
                    return Err("a deny string with ':' could match across the header name in IIS".into());
                }
                if p.ua.is_some() {
                    return Err("two user-agent conditions".into());
                }
                let alts: Vec<String> = strings.iter().map(|s| format!(".*{}.*", esc(s))).collect();
                p.ua = Some(format!("(?i:{})", alts.join("|")));
            }
            Cond::Cidr { nets, .. } => {
                let var = format!("$casguard_net{}", geo.len() + 1);
                let mut g = format!("geo {var} {{\n    default 0;\n");
                for n in nets {
                    g.push_str(&format!("    {n} 1;\n"));
                }
                g.push('}');
                geo.push(g);
                p.nets.push(geo.len() - 1);
            }
            Cond::Command(_) | Cond::DeviceType(_) | Cond::DeviceId(_) => {
                return Err(format!(
                    "{}: base64-encoded ActiveSync queries carry it in binary, which nginx cannot read",
                    cond_kind(c)
                ))
            }
            Cond::User(_) => return Err("the user is known only after Exchange authenticates the request".into()),
            Cond::Auth(_) => {
                return Err("authentication type: this map does not look at the Authorization header".into())
            }
            Cond::Client(_) => {
                return Err("client ids come from the catalog, which also reads ActiveSync device types".into())
            }
            other => return Err(format!("{} conditions have no nginx equivalent", cond_kind(other))),
        }
    }
    p.path = path_alts.map(|a| format!("(?i:{})", a.join("|")));
    Ok(p)
}

/// Emit `policy` as an nginx `map` and `location` (`nginx.conf`).
pub fn emit(policy: &Policy) -> Output {
    let mut unexpressible = Vec::new();
    let mut geo: Vec<String> = Vec::new();
    let mut entries: Vec<(String, Parts, Action, u16)> = Vec::new();
    // A dropped allow rule changes what every later rule sees; a dropped deny
    // rule changes what later allow rules see.
    let (mut failed, mut failed_allow): (Option<String>, Option<String>) = (None, None);
    for r in policy.rules() {
        let broken = if r.action == Action::Allow { &failed } else { &failed_allow };
        let result = if let Some(b) = broken {
            Err(format!("the earlier rule '{b}' cannot be expressed, so first-match order would change"))
        } else if !r.unless.is_empty() {
            Err("exceptions (unless) cannot be expressed in one nginx pattern".to_string())
        } else {
            rule_parts(&r.conditions, &mut geo)
        };
        match result {
            Ok(p) => entries.push((r.name.clone(), p, r.action, r.status)),
            Err(reason) => {
                failed.get_or_insert_with(|| r.name.clone());
                if r.action == Action::Allow {
                    failed_allow.get_or_insert_with(|| r.name.clone());
                }
                unexpressible.push(Unexpressible { rule: r.name.clone(), reason });
            }
        }
    }
    let nets: Vec<String> = (1..=geo.len()).map(|i| format!("$casguard_net{i}")).collect();
    let mut s = format!(
        "# casguard: nginx configuration for {}\n# In http {{}}. Addresses are nginx's $remote_addr: set real_ip if another proxy is in front.\n",
        policy.origin()
    );
    for g in &geo {
        s.push_str(g);
        s.push('\n');
    }
    let mut key: Vec<&str> = nets.iter().map(String::as_str).collect();
    key.push("$uri");
    key.push("$http_user_agent");
    let default = match policy.default_action() {
        Action::Allow => "allow".to_string(),
        Action::Deny => policy.default_status.to_string(),
    };
    s.push_str(&format!("map \"{}\" $casguard_decision {{\n    default {default};\n", key.join("|")));
    let mut statuses: Vec<String> = Vec::new();
    for (name, p, action, status) in &entries {
        let e = compose(p, *action, *status, geo.len());
        s.push_str(&format!("    # {}\n    {e}\n", name.replace('\n', " ")));
        let v = e.rsplit(' ').next().unwrap_or("").trim_end_matches(';').to_string();
        if v != "allow" && !statuses.contains(&v) {
            statuses.push(v);
        }
    }
    if default != "allow" && !statuses.contains(&default) {
        statuses.push(default.clone());
    }
    s.push_str("}\n\n# In the server {} that proxies to Exchange:\nlocation / {\n");
    statuses.sort();
    for st in &statuses {
        let ret = if st == "abort" { "444".to_string() } else { st.clone() };
        s.push_str(&format!("    if ($casguard_decision = {st}) {{ return {ret}; }}\n"));
    }
    s.push_str("    proxy_pass https://exchange;\n}\n");
    Output { files: vec![("nginx.conf".into(), s)], unexpressible }
}

fn compose(p: &Parts, action: Action, status: u16, total_nets: usize) -> String {
    let mut re = String::from("~^");
    for i in 0..total_nets {
        re.push_str(if p.nets.contains(&i) { "1\\|" } else { "[01]\\|" });
    }
    re.push_str(p.path.as_deref().unwrap_or("[^|]*"));
    re.push_str("\\|");
    re.push_str(p.ua.as_deref().unwrap_or(".*"));
    re.push('$');
    let value = match (action, status) {
        (Action::Allow, _) => "allow".to_string(),
        (Action::Deny, 0) => "abort".to_string(),
        (Action::Deny, s) => s.to_string(),
    };
    format!("\"{}\" {value};", re.replace('"', "\\\""))
}
