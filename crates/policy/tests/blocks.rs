//! Known answers for the emulation blocks of what is in force: per-mailbox
//! protocol switches, authentication policies, request filtering sections
//! and URL Rewrite rules.

mod common;

use common::*;
use exchange::{AuthType, Protocol, Request};
use policy::{evaluate, Action, Policy, ReadyPolicy};

fn ready(text: &str) -> ReadyPolicy {
    ready_policy(policy(text))
}

fn at(protocol: Protocol, stem: &str, user: &str) -> Request {
    common::at(protocol, stem, user, "client/1.0")
}

/// (action, status, substatus) and the deciding rule's name.
fn decide(p: &ReadyPolicy, r: &Request) -> (Action, u16, u16, String) {
    let d = evaluate(p, r);
    (d.action, d.status, d.substatus, p.decided_by(&d).to_string())
}

const MAILBOXES: &str = r#"
[mailbox_protocols]
[[mailbox_protocols.mailbox]]
user = ["asmith", "alice.smith"]
activesync_enabled = false
[[mailbox_protocols.mailbox]]
user = "carol"
mapi_http_enabled = false
[[mailbox_protocols.mailbox]]
user = "dave"
mapi_http_enabled = false
mapi_block_outlook_rpc_http = true
[[mailbox_protocols.mailbox]]
user = "erin"
mapi_enabled = false
owa_enabled = false
pop_enabled = false
"#;

#[test]
fn mailbox_switches_block_what_each_switch_blocks() {
    let p = ready(MAILBOXES);
    let eas = "/Microsoft-Server-ActiveSync/default.eas";
    // ActiveSyncEnabled, under either of the mailbox's names.
    for user in ["asmith", "alice.smith"] {
        let (a, st, _, by) = decide(&p, &at(Protocol::ActiveSync, eas, user));
        assert_eq!((a, st, by.as_str()), (Action::Deny, 403, "mailbox_protocols: ActiveSyncEnabled=false"));
    }
    assert!(!denied(&p, &at(Protocol::ActiveSync, eas, "bob")));
    assert!(!denied(&p, &at(Protocol::Ews, "/EWS/Exchange.asmx", "asmith")));
    // MapiHttpEnabled alone leaves Outlook Anywhere open.
    assert!(denied(&p, &at(Protocol::Mapi, "/mapi/emsmdb/", "carol")));
    assert!(!denied(&p, &at(Protocol::Rpc, "/rpc/rpcproxy.dll", "carol")));
    // ... unless MAPIBlockOutlookRpcHttp closes it.
    assert!(denied(&p, &at(Protocol::Mapi, "/mapi/emsmdb/", "dave")));
    assert!(denied(&p, &at(Protocol::Rpc, "/rpc/rpcproxy.dll", "dave")));
    // MAPIEnabled closes both; OWAEnabled closes OWA; POP is not HTTP.
    let (_, _, _, by) = decide(&p, &at(Protocol::Rpc, "/rpc/rpcproxy.dll", "erin"));
    assert_eq!(by, "mailbox_protocols: MAPIEnabled=false");
    assert!(denied(&p, &at(Protocol::Mapi, "/mapi/emsmdb/", "erin")));
    assert!(denied(&p, &at(Protocol::Owa, "/owa/", "erin")));
    assert!(!denied(&p, &at(Protocol::Ews, "/EWS/Exchange.asmx", "erin")));
    assert!(!denied(&p, &at(Protocol::Mapi, "/mapi/emsmdb/", "bob")));
    // Thousands of mailboxes would still be a handful of rules: one per switch.
    assert_eq!(p.policy().rules().len(), 5);
}

#[test]
fn organization_mapi_http_holds_unless_the_mailbox_says_otherwise() {
    let p = ready(
        r#"
[mailbox_protocols]
mapi_http_enabled = false
[[mailbox_protocols.mailbox]]
user = "frank"
mapi_http_enabled = true
"#,
    );
    assert!(denied(&p, &at(Protocol::Mapi, "/mapi/emsmdb/", "bob")));
    assert!(!denied(&p, &at(Protocol::Mapi, "/mapi/emsmdb/", "frank")));
    assert!(!denied(&p, &at(Protocol::Rpc, "/rpc/rpcproxy.dll", "bob")));
}

/// Exchange applies a mailbox's settings, and the organisation's in their
/// stead, once IIS signed the request in (`CallContext.CallerAccessAllowed`
/// judges a caller; ActiveSync's access state starts at "authenticated?").
/// A request naming nobody is IIS's to answer: the anonymous first leg of
/// every NTLM sign-in gets its 401 challenge, a balancer's
/// `/EWS/healthcheck.htm` its page. Credentials that name nobody readable
/// (a Kerberos ticket at the gateway) still sign someone in: judged.
#[test]
fn organization_settings_leave_anonymous_requests_to_iis() {
    let p = ready(
        r#"
[mailbox_protocols]
mapi_http_enabled = false
[ews_access]
ews_enabled = true
application_access_policy = "EnforceAllowList"
list = ["Outlook-iOS/*"]
[[ews_access.user]]
user = "pilot"
ews_enabled = false
[device_access]
default_access_level = "Quarantine"
[[device_access.rule]]
characteristic = "DeviceType"
query_string = "Outlook"
access_level = "Block"
"#,
    );
    // ActiveSync's first step is "authenticated?": an anonymous request gets
    // IIS's 401, whatever its device, so a device the user's own list allows
    // is not refused before its credentials are sent.
    let outlook = eas("Sync", "ABC123", "Outlook", "Outlook-iOS-Android/1.0", "");
    let iphone = eas("Sync", "DEF456", "iPhone", "Apple-iPhone9C1/1402.72", "");
    assert!(outlook.is_anonymous());
    assert!(!denied(&p, &outlook) && !denied(&p, &iphone), "device access judges signed-in requests");
    for mut r in [outlook, iphone] {
        r.user = "bob".into();
        assert!(denied(&p, &r), "{} is judged once signed in", r.activesync.device_type);
    }
    let mapi = at(Protocol::Mapi, "/mapi/emsmdb/", "");
    assert!(mapi.is_anonymous());
    assert!(!denied(&p, &mapi), "a sign-in's first leg reaches IIS's challenge");
    let health = at(Protocol::Ews, "/EWS/healthcheck.htm", "");
    assert!(!denied(&p, &health), "a balancer's health check is no EWS call");
    assert!(!denied(&p, &at(Protocol::Ews, "/EWS/Exchange.asmx", "")));
    // Signed in: judged by the organisation's, or the mailbox's own.
    assert!(denied(&p, &at(Protocol::Mapi, "/mapi/emsmdb/", "bob")));
    assert!(denied(&p, &at(Protocol::Ews, "/EWS/Exchange.asmx", "bob")));
    assert!(denied(&p, &at(Protocol::Ews, "/EWS/Exchange.asmx", "pilot")));
    // Someone signed in whom the gateway cannot name: judged as the organisation's.
    let kerberos_phone = eas("Sync", "DEF456", "iPhone", "Apple-iPhone9C1/1402.72", "");
    for mut r in [mapi, health, kerberos_phone] {
        r.unnamed_credentials = true;
        assert!(!r.is_anonymous());
        assert!(denied(&p, &r), "{}", r.stem);
    }
    // Rules of the policy file itself still judge anonymous requests.
    let p = ready("[[rule]]\nname = \"no mapi\"\naction = \"deny\"\nprotocol = \"mapi\"\n");
    assert!(denied(&p, &at(Protocol::Mapi, "/mapi/emsmdb/", "")));
}

const AUTH: &str = r#"
[auth_policies]
default = "No legacy"
[[auth_policies.policy]]
name = "No legacy"
block_legacy = ["ActiveSync", "WebServices", "Imap"]
[[auth_policies.policy]]
name = "Legacy allowed"
[[auth_policies.policy]]
name = "Modern off"
block_modern = ["ActiveSync"]
[[auth_policies.user]]
user = "bob"
policy = "Legacy allowed"
[[auth_policies.user]]
user = ["svc", "svc.account"]
policy = "Modern off"
"#;

fn with_auth(mut r: Request, a: AuthType) -> Request {
    r.auth = a;
    r
}

#[test]
fn authentication_policies_refuse_legacy_or_modern_per_user() {
    let p = ready(AUTH);
    let eas = |user: &str, a| with_auth(at(Protocol::ActiveSync, "/Microsoft-Server-ActiveSync", user), a);
    // The default applies to everyone without a policy of their own.
    let (a, st, _, by) = decide(&p, &eas("alice", AuthType::Basic));
    assert_eq!((a, st, by.as_str()), (Action::Deny, 401, "auth_policies: No legacy blocks legacy authentication"));
    for legacy in [AuthType::Ntlm, AuthType::Negotiate, AuthType::Kerberos] {
        assert!(denied(&p, &eas("alice", legacy)), "{legacy:?}");
    }
    assert!(!denied(&p, &eas("alice", AuthType::OAuth)));
    // IIS logs do not say how a request authenticated: the policy cannot decide it.
    assert!(!denied(&p, &eas("alice", AuthType::Unknown)));
    assert!(denied(&p, &with_auth(at(Protocol::Ews, "/EWS/Exchange.asmx", "alice"), AuthType::Basic)));
    // Outlook on the web is not among the protocols a policy covers.
    assert!(!denied(&p, &with_auth(at(Protocol::Owa, "/owa/", "alice"), AuthType::Basic)));
    // A policy assigned with Set-User replaces the default.
    assert!(!denied(&p, &eas("bob", AuthType::Basic)));
    assert!(!denied(&p, &eas("svc.account", AuthType::Basic)));
    assert!(denied(&p, &eas("svc.account", AuthType::Bearer)));
    let text = p.policy().explain(&evaluate(&p, &eas("alice", AuthType::Basic)), &eas("alice", AuthType::Basic));
    assert!(text.contains("not recorded, as in IIS logs"), "{text}");
}

#[test]
fn authentication_policy_errors_name_the_line() {
    let e = compile("[auth_policies]\n[[auth_policies.user]]\nuser = \"bob\"\npolicy = \"Nope\"\n").unwrap_err();
    assert_eq!(e.line(), Some(4), "{e}");
    let e =
        compile("[auth_policies]\n[[auth_policies.policy]]\nname = \"x\"\nblock_legacy = [\"Smtp\"]\n").unwrap_err();
    assert!(e.to_string().contains("unknown protocol 'Smtp'"), "{e}");
}

const FILTERING: &str = r#"
[[request_filtering]]
path = "/"
file_extensions = [{ extension = ".config", allowed = false }, { extension = ".asax", allowed = false }]
hidden_segments = ["bin"]
deny_url_sequences = [".."]
deny_query_string_sequences = ["<script"]
[[request_filtering.rule]]
name = "no scanner"
scan_headers = ["User-Agent"]
deny_strings = ["zgrab"]

[[request_filtering]]
path = "/EWS"
enabled = false

[[request_filtering]]
path = "/ecp"
allow_unlisted_extensions = false
file_extensions = [{ extension = ".aspx", allowed = true }, { extension = ".", allowed = true }]
"#;

#[test]
fn request_filtering_sections_apply_at_the_most_specific_path() {
    let p = ready(FILTERING);
    let sub = |stem: &str, ua: &str, query: &str| {
        let mut r = req(Protocol::Other, stem, ua);
        r.query = query.into();
        let d = evaluate(&p, &r);
        (d.action == Action::Deny).then_some(d.substatus)
    };
    assert_eq!(sub("/owa/web.CONFIG", "", ""), Some(7));
    assert_eq!(sub("/owa/bin/x.dll", "", ""), Some(8));
    assert_eq!(sub("/owa/xbin", "", ""), None);
    assert_eq!(sub("/owa/a..b", "", ""), Some(5));
    assert_eq!(sub("/owa/", "", "a=<SCRIPT>"), Some(18));
    assert_eq!(sub("/owa/", "zgrab/0.x", ""), Some(19));
    // The module is removed under /EWS: nothing is filtered there, but
    // /EWSx is not under /EWS.
    assert_eq!(sub("/EWS/web.config", "zgrab/0.x", ""), None);
    assert_eq!(sub("/EWSx/web.config", "", ""), Some(7));
    // /ecp has its own section: only listed extensions, and none.
    assert_eq!(sub("/ecp/default.aspx", "", ""), None);
    assert_eq!(sub("/ecp/", "", ""), None);
    assert_eq!(sub("/ecp/x.php", "", ""), Some(7));
    assert_eq!(sub("/ecp/x.config", "zgrab", ""), Some(7));
    assert_eq!(sub("/ecp/x", "zgrab", ""), None);
}

/// One rule, set under `/` and again under the ActiveSync path with `base = "/"`.
const OLD_EWS: &str = r#"name = "old EWS clients"
url = "^ews/"
conditions = [{ input = "{HTTP_USER_AGENT}", pattern = "^ExchangeServicesClient/0\\." }]
action = "CustomResponse"
status = 403
substatus = 7"#;

fn rewrite() -> String {
    format!(
        r#"
[[url_rewrite]]
global = true
[[url_rewrite.rule]]
name = "no zgrab"
conditions = [{{ input = "{{HTTP_USER_AGENT}}", pattern = "zgrab" }}]
action = "AbortRequest"
stop_processing = true

[[url_rewrite]]
path = "/"
[[url_rewrite.rule]]
{OLD_EWS}

[[url_rewrite]]
path = "/Microsoft-Server-ActiveSync"
[[url_rewrite.rule]]
base = "/"
{OLD_EWS}
[[url_rewrite.rule]]
name = "pilot"
conditions = [{{ input = "{{QUERY_STRING}}", pattern = "DeviceId=PILOT" }}]
action = "None"
stop_processing = true
[[url_rewrite.rule]]
name = "outlook mobile"
logical_grouping = "MatchAny"
conditions = [
  {{ input = "{{HTTP_USER_AGENT}}", pattern = "^Outlook-(iOS|Android)/" }},
  {{ input = "{{QUERY_STRING}}", pattern = "DeviceType=Outlook(&|$)" }},
]
action = "CustomResponse"
status = 403
"#
    )
}

#[test]
fn url_rewrite_rules_run_in_order_with_stop_processing() {
    let p = ready(&rewrite());
    let eas = |ua: &str, query: &str| {
        let mut r = req(Protocol::ActiveSync, "/Microsoft-Server-ActiveSync/default.eas", ua);
        r.query = query.into();
        decide(&p, &r)
    };
    assert_eq!(eas("Outlook-iOS/2.0", "Cmd=Sync").0, Action::Deny);
    assert_eq!(eas("Apple-iPhone/1.0", "Cmd=Sync&DeviceType=Outlook").0, Action::Deny);
    assert_eq!(eas("Apple-iPhone/1.0", "Cmd=Sync&DeviceType=Outlookx").0, Action::Allow);
    // The pilot's None rule stops the rules after it.
    assert_eq!(eas("Outlook-iOS/2.0", "Cmd=Sync&DeviceId=PILOT1").0, Action::Allow);
    // Global rules first, everywhere, and abort without an answer.
    let (a, st, _, by) = eas("zgrab/0.x", "DeviceId=PILOT1");
    assert_eq!((a, st, by.as_str()), (Action::Deny, 0, "url_rewrite global: no zgrab"));
    let ews = |ua: &str| decide(&p, &req(Protocol::Ews, "/EWS/Exchange.asmx", ua));
    let (a, st, sub, _) = ews("ExchangeServicesClient/0.9");
    assert_eq!((a, st, sub), (Action::Deny, 403, 7));
    assert_eq!(ews("ExchangeServicesClient/15.0").0, Action::Allow);
    // The ActiveSync rules stay in their virtual directory.
    assert_eq!(ews("Outlook-iOS/2.0").0, Action::Allow);
    let e = compile(
        "[[url_rewrite]]\npath = \"/\"\n[[url_rewrite.rule]]\nname = \"c\"\naction = \"AbortRequest\"\nconditions = [{ input = \"{HTTP_COOKIE}\", pattern = \"x\" }]\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("{HTTP_USER_AGENT}"), "{e}");
}

#[test]
fn ip_restrictions_apply_by_whole_path_segments() {
    let p = ready(
        r#"
[[ip_restrictions]]
path = "/owa"
allow_unlisted = false
entries = [{ cidr = "10.0.0.0/8", allowed = true }]
"#,
    );
    let from = |stem: &str, ip: &str| {
        let mut r = req(Protocol::Other, stem, "");
        r.peer_ip = Some(ip.parse().unwrap());
        denied(&p, &r)
    };
    assert!(from("/owa/auth/logon.aspx", "192.0.2.1"));
    assert!(from("/OWA", "192.0.2.1"));
    assert!(!from("/owa/", "10.1.1.1"));
    assert!(!from("/owafoo", "192.0.2.1"));
}

#[test]
fn every_block_lists_in_policy_check_order() {
    let text = format!("{MAILBOXES}\n{AUTH}\n{FILTERING}\n{}", rewrite());
    let p: Policy = policy(&text);
    let origins: Vec<String> = p.rules().iter().map(|r| format!("{:?}", r.origin)).collect();
    let first = |o: &str| origins.iter().position(|x| x == o).unwrap();
    assert!(first("UrlRewrite") < first("RequestFiltering"));
    assert!(first("RequestFiltering") < first("AuthPolicies"));
    assert!(first("AuthPolicies") < first("MailboxProtocols"));
}

#[test]
fn thousands_of_mailboxes_make_a_handful_of_rules() {
    let mut text = String::from("[ews_access]\news_enabled = true\n[device_access]\n");
    for i in 0..3000 {
        // Two kinds of EWS settings, and every mailbox with its own phones.
        let policy = if i % 2 == 0 { "EnforceAllowList" } else { "EnforceBlockList" };
        text.push_str(&format!(
            "[[ews_access.user]]\nuser = [\"u{i}\", \"user.{i}@contoso.com\"]\napplication_access_policy = \"{policy}\"\nlist = [\"Outlook-iOS/*\"]\n"
        ));
        text.push_str(&format!(
            "[[device_access.personal]]\nuser = \"u{i}\"\nblocked_device_ids = [\"OLD{i}\"]\nallowed_device_ids = [\"NEW{i}\"]\n"
        ));
    }
    let p = ready(&text);
    assert!(p.policy().rules().len() <= 6, "{} rules", p.policy().rules().len());
    let ews = |u: &str, ua: &str| {
        let mut r = at(Protocol::Ews, "/EWS/Exchange.asmx", u);
        r.user_agent = ua.into();
        denied(&p, &r)
    };
    assert!(ews("u10", "Apple Mail") && !ews("u10", "Outlook-iOS/2.0"));
    assert!(!ews("user.11", "Apple Mail") && ews("user.11", "Outlook-iOS/2.0"));
    assert!(!ews("nobody", "Apple Mail"));
    let eas = |u: &str, id: &str| denied(&p, &eas("Sync", id, "iPhone", "Apple-iPhone/1.0", u));
    assert!(eas("u7", "OLD7") && eas("u7", "old7") && !eas("u7", "OLD8") && !eas("u8", "OLD7"));
    let names: Vec<&str> = p.policy().rules().iter().map(|r| r.name.as_str()).collect();
    assert!(names.iter().any(|n| n.starts_with("ews_access (u0 and 1499 more)")), "{names:?}");
}
