//! Emit what import reads: for a policy P, `import(emit(P))` decides every
//! request as P does, for all that emit can express. The IIS files are
//! imported as written; the Exchange commands are run against a stand-in
//! organisation whose Get- cmdlets' exports are imported.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::shell::Organisation;
use common::traffic::{example_logs, generated};
use common::*;
use exchange::{AuthType, Request};
use policy::emit::{self, Target};
use policy::{evaluate, Policy, ReadyPolicy, RuleOrigin};

struct Trip {
    imported: ReadyPolicy,
    /// Names of rules neither target could express.
    dropped: HashSet<String>,
    iis_unexpressible: HashSet<String>,
}

fn round_trip(p: &Policy) -> Trip {
    let dir = tempfile::tempdir().unwrap();
    let iis = emit::emit(p, Target::Iis);
    for (name, text) in &iis.files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let exchange = emit::emit(p, Target::Exchange);
    let mut org = Organisation::default();
    // Twice: admins run a script again, and it must end where one run does.
    org.run(&exchange.files[0].1);
    org.run(&exchange.files[0].1);
    org.export(dir.path());
    let back = import_exact(dir.path());
    let iis_u: HashSet<String> = iis.unexpressible.iter().map(|u| u.rule.clone()).collect();
    let ex_u: HashSet<String> = exchange.unexpressible.iter().map(|u| u.rule.clone()).collect();
    Trip {
        imported: ready_policy(back),
        dropped: iis_u.intersection(&ex_u).cloned().collect(),
        iis_unexpressible: iis_u,
    }
}

/// Whether the rule that decided under P was left out by emit.
fn left_out(p: &Policy, trip: &Trip, rule: Option<usize>) -> bool {
    let Some(i) = rule else { return trip.dropped.contains("default") };
    let r = &p.rules()[i];
    match r.origin {
        RuleOrigin::Rule(_) => trip.dropped.contains(&r.name),
        RuleOrigin::IisFilter | RuleOrigin::UrlRewrite => trip.iis_unexpressible.contains(&r.name),
        _ => false,
    }
}

/// Decide `requests` under P and under import(emit(P)); return how many
/// were compared and how many P decided with a rule emit left out.
///
/// One difference is allowed, and counted: a `[[rule]]` emitted as a URL
/// Rewrite global rule runs in IIS before Exchange's own checks, so where
/// both deny a request, the rewrite rule's status answers.
fn compare(name: &str, p: &Policy, ready: &ReadyPolicy, trip: &Trip, requests: &[Request]) -> (usize, usize) {
    let (mut same, mut skipped) = (0, 0);
    for r in requests {
        let a = evaluate(ready, r);
        if left_out(p, trip, a.rule) {
            skipped += 1;
            continue;
        }
        let b = evaluate(&trip.imported, r);
        let rewritten_first = trip.imported.decided_by(&b).starts_with("url_rewrite global: casguard: ")
            && a.rule.is_some_and(|i| !matches!(p.rules()[i].origin, RuleOrigin::Rule(_)));
        if a.action == b.action && rewritten_first {
            same += 1;
            continue;
        }
        assert_eq!(
            (a.action, a.status, a.substatus),
            (b.action, b.status, b.substatus),
            "{name}: {} {} ua '{}' user '{}': P says {} ({}), imported says {} ({})",
            r.method,
            r.stem,
            r.user_agent,
            r.user,
            ready.decided_by(&a),
            p.explain(&a, r),
            trip.imported.decided_by(&b),
            trip.imported.policy().explain(&b, r),
        );
        same += 1;
    }
    (same, skipped)
}

/// The generated requests, and each again as if signed in with Basic and with OAuth.
fn with_auth(requests: &[Request]) -> Vec<Request> {
    let mut out = requests.to_vec();
    for a in [AuthType::Basic, AuthType::OAuth] {
        out.extend(requests.iter().step_by(7).map(|r| Request { auth: a, ..r.clone() }));
    }
    out
}

#[test]
fn every_example_policy_survives_emit_then_import() {
    let g = generated();
    let requests = with_auth(&g.requests);
    let mut n = 0;
    for (path, p) in example_policies() {
        if p.requires_inventory() {
            // `device = "new"` needs the inventory: emit names the rule, nothing else is in the file.
            let trip = round_trip(&p);
            assert!(p.rules().iter().all(|r| trip.dropped.contains(&r.name)));
            continue;
        }
        let ready = ready_policy(p.clone());
        let trip = round_trip(&p);
        let (same, skipped) = compare(&path.display().to_string(), &p, &ready, &trip, &requests);
        assert!(same > requests.len() / 2, "{}: {same} compared, {skipped} left out", path.display());
        n += 1;
    }
    assert!(n >= 4);
}

/// The same over the example logs' requests, as `simulate` reads them.
#[test]
fn every_example_policy_survives_emit_then_import_on_the_example_logs() {
    let requests = with_auth(&example_logs());
    for (path, p) in example_policies() {
        if p.requires_inventory() {
            continue;
        }
        let trip = round_trip(&p);
        let (same, skipped) = compare(&path.display().to_string(), &p, &ready_policy(p.clone()), &trip, &requests);
        assert!(same > requests.len() / 2, "{}: {same} compared, {skipped} left out", path.display());
    }
}

/// Every mechanism at once, for users of the generated traffic.
#[test]
fn every_mechanism_survives_emit_then_import() {
    let g = generated();
    let users: Vec<&String> = g.truth.users.keys().collect();
    let (a, b, c, d) = (users[0], users[1], users[2], users[3]);
    let text = format!(
        r#"
[ews_access]
ews_enabled = true
application_access_policy = "EnforceBlockList"
list = ["*Thunderbird*", "eM Client*"]
allow_mac_outlook = false
[[ews_access.user]]
user = "{a}"
application_access_policy = "EnforceAllowList"
list = ["Outlook-iOS/*"]

[device_access]
default_access_level = "Allow"
[[device_access.rule]]
characteristic = "DeviceType"
query_string = "Outlook"
access_level = "Block"
[[device_access.rule]]
characteristic = "UserAgent"
query_string = "Apple-iPhone13C1/1905.1"
access_level = "Quarantine"
[[device_access.personal]]
user = "{b}"
allowed_device_ids = ["NOSUCHDEVICE"]

[mailbox_protocols]
[[mailbox_protocols.mailbox]]
user = "{c}"
activesync_enabled = false
mapi_http_enabled = false
[[mailbox_protocols.mailbox]]
user = "{d}"
mapi_block_outlook_rpc_http = true
owa_enabled = false

[auth_policies]
default = "No legacy"
[[auth_policies.policy]]
name = "No legacy"
block_legacy = ["ActiveSync", "WebServices", "Mapi", "Rpc"]
[[auth_policies.policy]]
name = "Legacy"
block_modern = ["Autodiscover"]
[[auth_policies.user]]
user = "{a}"
policy = "Legacy"

[[ip_restrictions]]
path = "/PowerShell"
allow_unlisted = false
entries = [{{ cidr = "10.0.1.0/24", allowed = true }}]

[[request_filtering]]
path = "/"
file_extensions = [{{ extension = ".config", allowed = false }}]
hidden_segments = ["bin"]
deny_url_sequences = ["/autodiscover.json"]
[[request_filtering]]
path = "/EWS"
enabled = false

[[url_rewrite]]
path = "/Microsoft-Server-ActiveSync"
[[url_rewrite.rule]]
name = "old iOS"
conditions = [{{ input = "{{HTTP_USER_AGENT}}", pattern = "^Apple-iPhone15" }}]
action = "CustomResponse"
status = 403
substatus = 2

[[rule]]
name = "no Outlook mobile UA"
action = "deny"
user_agent = {{ prefix = ["Outlook-iOS-Android/"] }}
[[rule]]
name = "no Office on the OAB"
action = "deny"
status = 451
protocol = "oab"
user_agent = {{ prefix = ["Microsoft Office/"], case_sensitive = true }}
[[rule]]
name = "no MAPI over HTTP for {b}"
action = "deny"
protocol = "mapi"
user = "{b}"
[[rule]]
name = "who is it"
action = "deny"
client = "macos-mail"
"#
    );
    let p = policy(&text);
    let ready = ready_policy(p.clone());
    let trip = round_trip(&p);
    assert_eq!(trip.dropped, HashSet::from(["who is it".to_string()]), "only the client rule is left out");
    let requests = with_auth(&g.requests);
    let (same, skipped) = compare("every mechanism", &p, &ready, &trip, &requests);
    // The generated traffic meets every mechanism: count the rules that decided something.
    let mut decided: HashSet<String> = HashSet::new();
    for r in &requests {
        let d = evaluate(&ready, r);
        decided.insert(ready.decided_by(&d).split([':', ' ']).next().unwrap().to_string());
    }
    for m in [
        "ews_access",
        "device_access",
        "mailbox_protocols",
        "auth_policies",
        "url_rewrite",
        "request_filtering",
        "ip_restrictions",
        "no",
    ] {
        assert!(decided.contains(m), "{m} decided nothing: {decided:?}");
    }
    assert!(same > 1000 && skipped > 0, "{same} compared, {skipped} left out");
}

/// The rules `emit --merge` writes into Exchange 2019's own ActiveSync
/// web.config, beside the real applicationHost.config, are in force.
#[test]
fn rules_merged_into_a_real_web_config_are_in_force() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/exchange-config");
    let p = example("iis-block-outlook-ua.toml");
    let out = emit::iis::emit(&p, emit::iis::DEFAULT_SITE);
    let original = std::fs::read_to_string(data.join("E19-DefaultWebSite-EAS_web.config")).unwrap();
    let merged = emit::merge_web_config(&original, &out.sections[0].filtering_rules).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("DefaultWebSite-EAS_web.config"), merged).unwrap();
    std::fs::copy(data.join("E19-applicationHost.config"), dir.path().join("applicationHost.config")).unwrap();
    let back = import_exact(dir.path());
    let back = ready_policy(back);
    let ready = ready_policy(p.clone());
    let g = generated();
    let mut denied = 0;
    for r in g.requests.iter().filter(|r| r.protocol == exchange::Protocol::ActiveSync) {
        let (a, b) = (evaluate(&ready, r), evaluate(&back, r));
        assert_eq!((a.action, a.status, a.substatus), (b.action, b.status, b.substatus), "{} {}", r.stem, r.user_agent);
        denied += usize::from(a.action == policy::Action::Deny);
    }
    assert!(denied > 0);
}

/// A rule on a protocol reaches every virtual directory of it: Outlook
/// Anywhere answers at `/rpc` and at `/RpcWithCert`.
#[test]
fn a_protocol_rule_covers_every_directory_of_its_protocol() {
    let p = policy(
        "[[rule]]\nname = \"no bad rpc\"\naction = \"deny\"\nstatus = 404\nprotocol = \"rpc\"\nuser_agent = { contains = \"BadAgent\" }\n",
    );
    let trip = round_trip(&p);
    assert!(trip.iis_unexpressible.is_empty(), "{:?}", trip.iis_unexpressible);
    for stem in ["/rpc/rpcproxy.dll", "/RpcWithCert/rpcproxy.dll"] {
        let r = req(exchange::Protocol::Rpc, stem, "BadAgent/1.0");
        assert!(denied(&ready_policy(p.clone()), &r), "{stem}");
        assert!(denied(&trip.imported, &r), "import(emit(P)) lets {stem} through");
    }
}

/// IIS scans `User-Agent: value`: a `contains` string that matches across
/// the header's name (`agent`, a leading space) is no deny string, or IIS
/// would refuse every user agent; URL Rewrite tests the value alone.
#[test]
fn a_user_agent_string_that_spans_the_header_name_is_no_deny_string() {
    let p =
        policy("[[rule]]\nname = \"agents\"\naction = \"deny\"\nuser_agent = { contains = [\"agent\", \" bot\"] }\n");
    let trip = round_trip(&p);
    let ready = ready_policy(p.clone());
    for (ua, want) in [("Mozilla/5.0", false), ("UserAgent/1", true), ("a bot", true), ("bot", false)] {
        let r = req(exchange::Protocol::Ews, "/EWS/Exchange.asmx", ua);
        assert_eq!(denied(&ready, &r), want, "P: {ua}");
        assert_eq!(denied(&trip.imported, &r), want, "import(emit(P)): {ua}");
    }
}

/// What the Get- cmdlets export after running `scripts` in turn on one
/// organisation, file name and text.
fn exported(scripts: &[&str]) -> Vec<(String, String)> {
    let mut org = Organisation::default();
    for s in scripts {
        org.run(s);
    }
    let dir = tempfile::tempdir().unwrap();
    org.export(dir.path());
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// An admin edits the policy and runs the new script where the old one ran:
/// the authentication policy and device access rule that exist are changed
/// (a block taken out is turned off), not created again, and the
/// organisation ends as the new script alone would leave it.
#[test]
fn an_edited_policy_run_over_the_old_one_ends_as_the_new_one() {
    // The same rule and policy, by name, before and after the edit.
    let edition = |access_level: &str, block_legacy: &str, block_modern: &str| {
        policy(&format!(
            r#"
[device_access]
[[device_access.rule]]
characteristic = "DeviceType"
query_string = "Outlook"
access_level = "{access_level}"
[auth_policies]
[[auth_policies.policy]]
name = "No Basic"
block_legacy = {block_legacy}
block_modern = {block_modern}
"#
        ))
    };
    let before = edition("Block", r#"["ActiveSync", "WebServices"]"#, r#"["Pop"]"#);
    let after = edition("Quarantine", r#"["Imap"]"#, r#"["Pop", "Imap"]"#);
    let script = |p: &Policy| emit::emit(p, Target::Exchange).files[0].1.clone();
    let (old, new) = (script(&before), script(&after));
    assert!(new.contains("Set-AuthenticationPolicy -Identity 'No Basic' -BlockLegacyAuthActiveSync:$false"), "{new}");
    assert!(new.contains("Set-ActiveSyncDeviceAccessRule -Identity 'Outlook (DeviceType)' -AccessLevel Quarantine"));
    let edited = exported(&[&old, &new]);
    assert_eq!(edited, exported(&[&new]));
    let policies = &edited.iter().find(|(n, _)| n == "Get-AuthenticationPolicy.json").unwrap().1;
    let v: serde_json::Value = serde_json::from_str(policies).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{policies}");
    assert_eq!(v[0]["BlockLegacyAuthActiveSync"], false, "{policies}");
    assert_eq!(v[0]["BlockLegacyAuthImap"], true, "{policies}");
    assert_eq!(v[0]["BlockModernAuthImap"], true, "{policies}");
}

/// A URL Rewrite `Redirect` keeps where it sends the client, and whether
/// the query string goes along (IIS `appendQueryString`), through emit and
/// import; a url with a back-reference gives no `Location`.
#[test]
fn a_redirect_keeps_its_target_through_emit_and_import() {
    let p = policy(
        r#"
[[url_rewrite]]
path = "/owa"
[[url_rewrite.rule]]
name = "old"
url = "^legacy"
action = "Redirect"
redirect_url = "https://mail.contoso.com/owa/"
status = 302
[[url_rewrite.rule]]
name = "bare"
url = "^bare"
action = "Redirect"
redirect_url = "/owa/?x=1"
append_query_string = false
[[url_rewrite.rule]]
name = "ref"
url = "^ref/(.*)"
action = "Redirect"
redirect_url = "/{R:1}"
"#,
    );
    let targets = |p: &Policy| {
        let mut v: Vec<(String, bool)> =
            p.rules().iter().filter_map(|r| r.redirect.as_ref()).map(|r| (r.url.clone(), r.append_query)).collect();
        v.sort();
        v
    };
    let want = [("/owa/?x=1".to_string(), false), ("https://mail.contoso.com/owa/".to_string(), true)];
    assert_eq!(targets(&p), want);
    assert_eq!(targets(round_trip(&p).imported.policy()), want);
    let r = p.rules().iter().find(|r| r.redirect.as_ref().is_some_and(|r| !r.append_query)).unwrap();
    assert_eq!(r.redirect.as_ref().unwrap().location(Some("a=1")), "/owa/?x=1");
    let r = p.rules().iter().find(|r| r.redirect.as_ref().is_some_and(|r| r.append_query)).unwrap();
    assert_eq!(r.redirect.as_ref().unwrap().location(Some("a=1")), "https://mail.contoso.com/owa/?a=1");
    assert_eq!(r.redirect.as_ref().unwrap().location(Some("")), "https://mail.contoso.com/owa/");
}
