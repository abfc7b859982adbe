//! nginx in front of Exchange. Each condition of a rule is one variable,
//! 1 when it holds: a `geo` block on the client address, a `map` on `$uri`
//! or on `$http_user_agent`. A last `map` reads those digits, one a
//! variable, and its regular expressions are tried in order, so the first
//! rule whose conditions all hold decides as in the policy; a location
//! block answers with the decided status. The digits cannot be forged:
//! a `|` or a line break in a path or a user agent only ever reaches the
//! `map` of its own variable.

use ::exchange::protocol::prefixes_of;
use ::exchange::text::{contains_ci, ends_with_ci};

use crate::emit::{cond_kind, Output, Unexpressible};
use crate::model::{Action, Cond, Header, Policy, ScanTarget, TextMode};

/// `s` as a literal in a PCRE pattern written in nginx's configuration:
/// PCRE's special characters behind a backslash, the backslash, the quote,
/// white space and control characters as `\xHH` (nginx's quoting would
/// read `\\`, `\"`, `\t`), other characters as they are (non-ASCII ones
/// as UTF-8 bytes, which PCRE without UTF mode matches byte by byte).
fn esc(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if ".*+?()[]{}|^$".contains(c) {
            o.push('\\');
            o.push(c);
        } else if c.is_ascii() && (c.is_ascii_control() || c.is_ascii_whitespace() || c == '\\' || c == '"') {
            o.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            o.push(c);
        }
    }
    o
}

/// A path glob as casguard matches it: without `*` a prefix, else the
/// whole path, `*` matching anything.
fn glob_re(p: &str) -> String {
    if p.contains('*') {
        p.split('*').map(esc).collect::<Vec<_>>().join(".*")
    } else {
        format!("{}.*", esc(p))
    }
}

/// `$uri` spellings IIS reads as another path (exchange::url's `resolve`):
/// a backslash (a separator), a segment ending in a dot or a space (dropped),
/// an empty segment (skipped; nginx merges them unless told not to), and
/// the letters whose case mapping leads into ASCII (ſ ı İ K), as UTF-8 bytes.
const IIS_READS_OTHERWISE: &str = r"(?s)\x5c|[.\x20](?:/|\z)|//|\xc5\xbf|\xc4\xb1|\xc4\xb0|\xe2\x84\xaa";

/// What a variable tests.
#[derive(Clone, PartialEq, Eq)]
enum Test {
    /// The client address, in any of these networks.
    Net(Vec<String>),
    /// `$uri` against this pattern.
    Uri(String),
    /// `$http_user_agent` against this pattern.
    UserAgent(String),
}

impl Test {
    fn kind(&self) -> &'static str {
        match self {
            Test::Net(_) => "net",
            Test::Uri(_) => "path",
            Test::UserAgent(_) => "ua",
        }
    }

    fn block(&self, var: &str) -> String {
        match self {
            Test::Net(nets) => {
                let mut g = format!("geo {var} {{\n    default 0;\n");
                for n in nets {
                    g.push_str(&format!("    {n} 1;\n"));
                }
                g.push('}');
                g
            }
            Test::Uri(re) => format!("map $uri {var} {{\n    default 0;\n    \"~{re}\" 1;\n}}"),
            Test::UserAgent(re) => format!("map $http_user_agent {var} {{\n    default 0;\n    \"~{re}\" 1;\n}}"),
        }
    }
}

/// Alternatives matched against the whole value: `(?s)` so that `.` also
/// matches a line break a decoded `%0A` puts in `$uri`.
fn whole(alts: &[String], case_sensitive: bool) -> String {
    let flags = if case_sensitive { "(?s)" } else { "(?si)" };
    format!("{flags}^(?:{})\\z", alts.join("|"))
}

/// An IIS deny string scanned in the `User-Agent: value` line, as casguard
/// scans it: also across the header's name, for a user agent that is not
/// empty.
fn iis_scan_alts(s: &str) -> Vec<String> {
    let line = Header::UserAgent.line_prefix();
    if contains_ci(line, s) {
        return vec![".+".into()];
    }
    let mut alts = vec![format!(".*{}.*", esc(s))];
    for k in 1..s.len() {
        if s.is_char_boundary(k) && ends_with_ci(line, &s[..k]) {
            alts.push(format!("{}.*", esc(&s[k..])));
        }
    }
    alts
}

fn test_of(c: &Cond) -> Result<Test, String> {
    Ok(match c {
        Cond::Protocol(ps) => {
            let mut alts = Vec::new();
            for pr in ps {
                let before = alts.len();
                for (prefix, boundary) in prefixes_of(*pr) {
                    let after: Vec<String> = boundary.iter().map(|b| esc(&(*b as char).to_string())).collect();
                    alts.push(format!("{}(?:(?:{}).*)?", esc(prefix), after.join("|")));
                }
                if alts.len() == before {
                    return Err(format!("protocol '{}' has no path of its own", pr.key()));
                }
            }
            Test::Uri(whole(&alts, false))
        }
        Cond::Path(ps) => Test::Uri(whole(&ps.iter().map(|x| glob_re(x.as_str())).collect::<Vec<_>>(), false)),
        Cond::UserAgent { case_sensitive, items } => {
            let alts: Vec<String> = items
                .iter()
                .map(|(m, v)| match m {
                    TextMode::Contains => format!(".*{}.*", esc(v)),
                    TextMode::Prefix => format!("{}.*", esc(v)),
                    TextMode::Exact => esc(v),
                })
                .collect();
            Test::UserAgent(whole(&alts, *case_sensitive))
        }
        Cond::IisScan { targets, strings, applies_to } => {
            if !applies_to.is_empty() || targets.iter().any(|t| *t != ScanTarget::Header(Header::UserAgent)) {
                return Err(
                    "nginx normalizes URLs and query strings differently from IIS; only User-Agent scans translate"
                        .into(),
                );
            }
            Test::UserAgent(whole(&strings.iter().flat_map(|s| iis_scan_alts(s)).collect::<Vec<_>>(), false))
        }
        Cond::Cidr { nets, .. } => Test::Net(nets.iter().map(|n| n.to_string()).collect()),
        Cond::Network(_) => {
            return Err("a built-in network (internal, microsoft365, ...) is casguard's classification of \
                        the address, which a geo block does not repeat: name the addresses with cidr or [ranges]"
                .into())
        }
        Cond::Command(_) | Cond::DeviceType(_) | Cond::DeviceId(_) => {
            return Err(format!(
                "{}: base64-encoded ActiveSync queries carry it in binary, which nginx cannot read",
                cond_kind(c)
            ))
        }
        Cond::User(_) => return Err("the user is known only after Exchange authenticates the request".into()),
        Cond::Auth(_) => return Err("authentication type: this map does not look at the Authorization header".into()),
        Cond::Client(_) => {
            return Err("client ids come from the catalog, which also reads ActiveSync device types".into())
        }
        other => return Err(format!("{} conditions have no nginx equivalent", cond_kind(other))),
    })
}

/// The variables (indices into `tests`) a rule needs all to be 1.
fn rule_tests(conds: &[Cond], tests: &mut Vec<Test>) -> Result<Vec<usize>, String> {
    let mine: Vec<Test> = conds.iter().map(test_of).collect::<Result<_, _>>()?;
    Ok(mine
        .into_iter()
        .map(|t| match tests.iter().position(|x| *x == t) {
            Some(i) => i,
            None => {
                tests.push(t);
                tests.len() - 1
            }
        })
        .collect())
}

/// Emit `policy` as nginx `geo` and `map` blocks and a `location` (`nginx.conf`).
pub fn emit(policy: &Policy) -> Output {
    let mut unexpressible = Vec::new();
    let mut tests: Vec<Test> = Vec::new();
    let mut entries: Vec<(String, Vec<usize>, Action, u16)> = Vec::new();
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
            rule_tests(&r.conditions, &mut tests)
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
    // nginx passes the path on as the client wrote it, and IIS reads some
    // spellings as another path than `$uri`: refuse those before any rule
    // on a path reads them.
    let guarded = tests.iter().any(|t| matches!(t, Test::Uri(_)));
    if guarded {
        tests.push(Test::Uri(IIS_READS_OTHERWISE.into()));
        let odd = tests.len() - 1;
        entries.insert(0, ("a path IIS reads otherwise than nginx (see above)".into(), vec![odd], Action::Deny, 400));
    }
    let vars: Vec<String> = tests.iter().enumerate().map(|(i, t)| format!("$casguard_{}{}", t.kind(), i + 1)).collect();
    let mut s = format!(
        "# casguard: nginx configuration for {}\n# In http {{}}. Addresses are nginx's $remote_addr: set real_ip if another proxy is in front.\n\
         # Not here: casguard's own refusal (400) of ambiguous requests, which simulate and the gateway make.\n",
        policy.origin()
    );
    if guarded {
        s.push_str(
            "# Refused (400) before any rule: a path IIS reads as another than nginx's $uri (a \\, a segment\n\
             # ending in a dot or space, the letters \u{17f} \u{131} \u{130} \u{212a} that IIS folds into ASCII), since nginx passes\n\
             # the path on as the client wrote it. No mail client writes one; the gateway reads them as IIS does.\n",
        );
    }
    for (t, var) in tests.iter().zip(&vars) {
        s.push_str(&t.block(var));
        s.push('\n');
    }
    let default = match policy.default_action() {
        Action::Allow => "allow".to_string(),
        Action::Deny => policy.default_status.to_string(),
    };
    // One digit a test, after a dash (a map's key is never empty).
    s.push_str(&format!("map \"-{}\" $casguard_decision {{\n    default {default};\n", vars.concat()));
    let mut statuses: Vec<String> = Vec::new();
    for (name, needs, action, status) in &entries {
        let digits: String = (0..tests.len()).map(|i| if needs.contains(&i) { '1' } else { '.' }).collect();
        let value = match (action, status) {
            (Action::Allow, _) => "allow".to_string(),
            (Action::Deny, 0) => "abort".to_string(),
            (Action::Deny, s) => s.to_string(),
        };
        s.push_str(&format!("    # {}\n    \"~^-{digits}$\" {value};\n", name.replace(['\n', '\r'], " ")));
        if value != "allow" && !statuses.contains(&value) {
            statuses.push(value);
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
    if tests.iter().any(|t| matches!(t, Test::UserAgent(_))) {
        // nginx reads the first of repeated User-Agent headers (1.22; 1.23 joins them) and would
        // pass them all on: Exchange must get the one that was judged.
        s.push_str(
            "    # Exchange gets the User-Agent judged above, not a second one the map never read.\n    \
             # A proxy_set_header here replaces those of the server {}: repeat yours (Host, ...) here.\n    \
             proxy_set_header User-Agent $http_user_agent;\n",
        );
    }
    s.push_str("    proxy_pass https://exchange;    # an upstream {} naming your Exchange servers\n}\n");
    Output { files: vec![("nginx.conf".into(), s)], unexpressible }
}
