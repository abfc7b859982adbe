mod common;

use std::sync::Arc;

use common::*;
use exchange::{Interpreter, Protocol};
use policy::{evaluate, Action, Inventory, ReadyPolicy};

fn policy(text: &str) -> ReadyPolicy {
    ready_policy(common::policy(text))
}

fn example(name: &str) -> ReadyPolicy {
    ready_policy(common::example(name))
}

#[test]
fn first_match_wins_and_default_applies() {
    let p = policy(
        r#"
default = "deny"
default_status = 401
[[rule]]
name = "allow admins"
action = "allow"
user = ["admin", "*ops*"]
[[rule]]
name = "deny ews"
action = "deny"
status = 418
protocol = "ews"
[[rule]]
name = "allow everyone"
action = "allow"
"#,
    );
    let d = evaluate(&p, &ews("x", "admin"));
    assert_eq!((d.action, by(p.policy(), &d)), (Action::Allow, "allow admins".into()));
    let d = evaluate(&p, &ews("x", "devops1"));
    assert_eq!(by(p.policy(), &d), "allow admins");
    let d = evaluate(&p, &ews("x", "bob"));
    assert_eq!((d.action, d.status, by(p.policy(), &d)), (Action::Deny, 418, "deny ews".into()));
    let d = evaluate(&p, &req(Protocol::Owa, "/owa/", "x"));
    assert_eq!((d.action, by(p.policy(), &d)), (Action::Allow, "allow everyone".into()));

    let p = policy("default = \"deny\"\ndefault_status = 401\n");
    let d = evaluate(&p, &req(Protocol::Owa, "/owa/", "x"));
    assert_eq!((d.action, d.rule, d.status), (Action::Deny, None, 401));
    assert!(p.policy().explain(&d, &req(Protocol::Owa, "/owa/", "x")).contains("default denies"));
}

#[test]
fn conditions_and_values_or_and_unless() {
    let p = policy(
        r#"
[ranges]
branch = ["10.1.0.0/16"]
[[rule]]
name = "r"
action = "deny"
protocol = ["activesync", "ews"]
user_agent = { contains = "outlook", case_sensitive = false }
unless = { user = "DOMAIN\\Boss", network = "branch" }
"#,
    );
    let mut r = ews("Microsoft Outlook 16", "alice");
    assert!(denied(&p, &r));
    r.protocol = Protocol::Owa;
    assert!(!denied(&p, &r), "protocol values are ORed, conditions ANDed");
    let mut r = ews("Microsoft Outlook 16", "boss");
    assert!(!denied(&p, &r), "user exception (DOMAIN\\ stripped)");
    r.user = "alice".into();
    r.client_ip = Some("10.1.2.3".parse().unwrap());
    assert!(!denied(&p, &r), "network exception");
    r.client_ip = Some("10.2.2.3".parse().unwrap());
    assert!(denied(&p, &r));
    r.user_agent = "Thunderbird".into();
    assert!(!denied(&p, &r));
}

#[test]
fn user_agent_modes_and_case() {
    let p = policy(
        r#"
[[rule]]
name = "prefix cs"
action = "deny"
user_agent = { prefix = "Outlook-iOS/", case_sensitive = true }
[[rule]]
name = "exact"
action = "deny"
user_agent = { exact = "MSRPC" }
"#,
    );
    assert!(denied(&p, &req(Protocol::Ews, "/EWS/", "Outlook-iOS/2.0")));
    assert!(!denied(&p, &req(Protocol::Ews, "/EWS/", "outlook-ios/2.0")));
    assert!(!denied(&p, &req(Protocol::Ews, "/EWS/", "x Outlook-iOS/2.0")));
    assert!(denied(&p, &req(Protocol::Rpc, "/rpc/", "msrpc")));
    assert!(!denied(&p, &req(Protocol::Rpc, "/rpc/", "MSRPC2")));
}

#[test]
fn paths_prefix_and_glob() {
    let p = policy(
        r#"
[[rule]]
name = "g"
action = "deny"
path = ["/owa/auth/*.aspx", "/ECP"]
"#,
    );
    assert!(denied(&p, &req(Protocol::Owa, "/OWA/auth/logon.aspx", "")));
    assert!(!denied(&p, &req(Protocol::Owa, "/owa/auth/logon.js", "")));
    assert!(denied(&p, &req(Protocol::Ecp, "/ecp/default.aspx", "")));
}

#[test]
fn user_group_file_is_relative_to_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vip.txt"), "# VIPs\nCONTOSO\\Alice\n\nbob@contoso.com\n").unwrap();
    let f = dir.path().join("p.toml");
    std::fs::write(&f, "[[rule]]\nname = \"vip\"\naction = \"deny\"\nuser = { group_file = \"vip.txt\" }\n").unwrap();
    let p = ready_policy(policy::Policy::load(&f).unwrap());
    assert!(denied(&p, &ews("x", "alice")));
    assert!(denied(&p, &ews("x", "bob")));
    assert!(!denied(&p, &ews("x", "carol")));
    assert!(!denied(&p, &ews("x", "")), "anonymous is nobody");
}

#[test]
fn iis_filter_is_a_case_insensitive_substring_on_the_header_line() {
    let p = example("iis-block-outlook-ua.toml");
    let d = evaluate(&p, &eas("Sync", "D1", "Outlook", "Outlook-iOS-Android/1.0", "u"));
    assert_eq!((d.action, d.status, d.substatus), (Action::Deny, 404, 19));
    assert!(denied(&p, &eas("Sync", "D1", "Outlook", "xx outlook-ios-android/1.0 yy", "u")));
    let mut r = eas("Sync", "D1", "Outlook", "Outlook-iOS-Android/1.0", "u");
    r.stem = "/microsoft-server-activesync/Proxy/default.eas".into();
    assert!(denied(&p, &r), "path prefix is case-insensitive");
    assert!(!denied(&p, &ews("Outlook-iOS-Android/1.0", "u")), "EWS is a backdoor");
    assert!(!denied(&p, &eas("Sync", "D1", "Outlook", "Outlook-iOS-Android/2.0", "u")));

    // The whole header line is scanned: a deny string may straddle the name.
    let p = policy(
        r#"
[[iis_filter.rule]]
name = "x"
scan_headers = "User-Agent"
scan_query_string = true
deny_strings = ["Agent: Foo", "Insert"]
applies_to = ".asmx"
"#,
    );
    assert!(denied(&p, &req(Protocol::Ews, "/EWS/Exchange.asmx", "foo-bar")));
    let mut r = req(Protocol::Ews, "/EWS/Exchange.asmx", "bar");
    r.query = "Query=InsertData".into();
    assert!(denied(&p, &r));
    r.stem = "/EWS/other.svc".into();
    assert!(!denied(&p, &r), "appliesTo limits by extension");
}

#[test]
fn a_query_string_is_scanned_raw_and_unescaped() {
    // IIS's unescapeQueryString is on by default: `%49nsert` is scanned as `Insert`.
    let p = policy(
        "[[iis_filter.rule]]\nname = \"x\"\nscan_query_string = true\ndeny_strings = [\"Insert\", \"a b\"]\n\n\
         [[request_filtering]]\npath = \"/EWS\"\ndeny_query_string_sequences = [\"evil\"]\n",
    );
    let mut r = req(Protocol::Ews, "/EWS/Exchange.asmx", "ua");
    for q in
        ["Query=%49nsertData", "Query=%u0049nsert", "Query=%69NSERT", "x=a+b", "x=a%20b", "x=%65vil", "x=%u0065vil"]
    {
        r.query = q.into();
        assert!(denied(&p, &r), "{q}");
    }
    for q in ["Query=%49nser", "x=ab", "x=%2565vil", ""] {
        r.query = q.into();
        assert!(!denied(&p, &r), "{q}");
    }
}

/// An IIS line logs more than the client sent: Exchange's front end adds
/// `&CorrelationID=<empty>;&cafeReqId=<GUID>;` to its own log line after
/// the request, OWA `&encoding=;`, ActiveSync's back end `&Log=...`. IIS
/// filtered (and URL Rewrite read) the client's query, as the gateway sees
/// it: a `<` sequence, a common hardening, must not deny every logged line.
#[test]
fn request_filtering_reads_the_query_the_client_sent() {
    let p = policy(
        "[[request_filtering]]\npath = \"/\"\ndeny_query_string_sequences = [\"<\"]\n\n\
         [[iis_filter.rule]]\nname = \"semicolon\"\nscan_query_string = true\ndeny_strings = [\"=;\"]\n\n\
         [[url_rewrite]]\npath = \"/\"\n[[url_rewrite.rule]]\nname = \"prxfrom\"\n\
         conditions = [{ input = \"{QUERY_STRING}\", pattern = \"PrxFrom|cafeReqId\" }]\n\
         action = \"AbortRequest\"\n",
    );
    let cafe = "&CorrelationID=<empty>;&cafeReqId=eba3262a-2abd-4152-a955-c3a7ea13398a;";
    let eas = "/Microsoft-Server-ActiveSync/default.eas";
    let line = |protocol, stem: &str, query: String, source| {
        let mut r = req(protocol, stem, "ua");
        r.query = query;
        r.source = source;
        r
    };
    let logged = [
        line(Protocol::Ews, "/EWS/Exchange.asmx", cafe.to_string(), exchange::Source::Iis),
        line(Protocol::Owa, "/owa/auth.owa", format!("{cafe}&encoding=;"), exchange::Source::Iis),
        line(Protocol::ActiveSync, eas, format!("Cmd=Ping&User=u{cafe}"), exchange::Source::Iis),
        line(Protocol::ActiveSync, eas, "Cmd=Ping&User=u&Log=PrxFrom:10.0.0.1_V161_".into(), exchange::Source::Iis),
    ];
    for r in &logged {
        let d = evaluate(&p, r);
        assert_eq!(d.action, Action::Allow, "{} {}: {}", r.stem, r.query, p.decided_by(&d));
    }
    // What the client sent is still judged, beside Exchange's additions.
    for (q, by) in [("a=<b>", "query string sequences"), ("a=;", "semicolon"), ("PrxFrom=1", "prxfrom")] {
        let r = line(Protocol::Ews, "/EWS/Exchange.asmx", format!("{q}{cafe}"), exchange::Source::Iis);
        let d = evaluate(&p, &r);
        assert!(d.action == Action::Deny && p.decided_by(&d).contains(by), "{q}: {}", p.decided_by(&d));
    }
    // A request the gateway sees, or HttpProxy's `UrlQuery`, is the client's: all of it is judged.
    for source in [exchange::Source::Gateway, exchange::Source::HttpProxy] {
        assert!(denied(&p, &line(Protocol::Ews, "/EWS/Exchange.asmx", cafe.to_string(), source)));
    }
}

#[test]
fn ews_allow_outlook_only_example() {
    let p = example("ews-allow-outlook-only.toml");
    for ua in [
        "Microsoft Office Outlook 16.0",
        "Mozilla/4.0 (compatible; MSIE 7.0; Microsoft Outlook 16.0.1)",
        "MacOutlook/16.78 (Intel Mac OS X 14.0)",
    ] {
        assert!(!denied(&p, &ews(ua, "u")), "{ua}");
    }
    for ua in ["microsoft outlook 16", "Outlook-iOS/2.0", "Mac OS X/14.0 (23A344); ExchangeWebServices/1.3", ""] {
        let d = evaluate(&p, &ews(ua, "u"));
        assert_eq!((d.action, d.status), (Action::Deny, 403), "{ua}");
    }
    assert!(!denied(&p, &req(Protocol::ActiveSync, "/Microsoft-Server-ActiveSync", "Outlook-iOS/2.0")));
    let r = ews("Apple Mail", "u");
    let d = evaluate(&p, &r);
    let why = p.policy().explain(&d, &r);
    assert!(why.contains("EnforceAllowList"), "{why}");
}

#[test]
fn ews_wildcards_follow_exchange() {
    use policy::ews_pattern_matches as m;
    assert!(m("*", "") && m("**", "anything"));
    assert!(m("*Foo*", "xFooy") && !m("*Foo*", "xfooy"), "contains is case-sensitive");
    assert!(m("*Foo", "xFoo") && !m("*Foo", "Foox"));
    assert!(m("OWA/*", "OWA/1.0") && !m("OWA/*", "owa/1.0") && !m("OWA/*", "xOWA/1"));
    assert!(m("Exact-App", "EXACT-APP"), "exact is case-insensitive");
    assert!(!m("Ex*ct", "Exact") && m("Ex*ct", "EX*CT"), "a middle * is literal");
    assert!(!m("*x*", "") && !m("x*", ""));
}

/// Exchange tests `X*` and `*X` culture-sensitively, skipping characters of
/// no weight: a block list meets `Soft\u{AD}ware` as `Software`, and an
/// allow list is still read as written (never more open than Exchange).
#[test]
fn ews_block_lists_see_through_characters_of_no_weight() {
    let list = |policy_kind: &str| {
        policy(&format!(
            "[ews_access]\news_enabled = true\napplication_access_policy = \"{policy_kind}\"\nlist = [\"Software*\", \"*Tool/1.0\"]\n"
        ))
    };
    let block = list("EnforceBlockList");
    for ua in ["Soft\u{AD}ware/2.0", "Soft\u{200B}ware", "\u{FEFF}Software", "S\u{FFFD}oftware", "My\u{200E}Tool/1.0"] {
        assert!(denied(&block, &ews(ua, "u")), "{ua:?}");
    }
    assert!(!denied(&block, &ews("Soft-ware", "u")) && !denied(&block, &ews("Softw\u{e4}re", "u")));
    let allow = list("EnforceAllowList");
    assert!(!denied(&allow, &ews("Software/2.0", "u")));
    assert!(denied(&allow, &ews("Soft\u{AD}ware/2.0", "u")), "an allow list matches only as written");
}

#[test]
fn ews_null_enabled_allows_everything_and_false_denies() {
    let p =
        policy("[ews_access]\napplication_access_policy = \"EnforceAllowList\"\nlist = []\nallow_outlook = false\n");
    assert!(!denied(&p, &ews("Microsoft Outlook", "u")), "EwsEnabled null: nothing else checked");
    assert!(!denied(&p, &ews("curl", "u")));
    let p = policy("[ews_access]\news_enabled = false\nallow_outlook = true\n");
    assert!(denied(&p, &ews("Microsoft Outlook", "u")));
}

#[test]
fn ews_switches_take_precedence_over_lists() {
    // Block list names Outlook, but EwsAllowOutlook = true wins.
    let p = policy(
        r#"
[ews_access]
ews_enabled = true
allow_outlook = true
allow_mac_outlook = false
application_access_policy = "EnforceBlockList"
list = ["*Outlook*", "BadApp*"]
"#,
    );
    assert!(!denied(&p, &ews("Microsoft Outlook 16", "u")));
    assert!(denied(&p, &ews("MacOutlook/16", "u")), "switch false denies even if unlisted");
    assert!(denied(&p, &ews("BadApp/1", "u")));
    assert!(!denied(&p, &ews("GoodApp/1", "u")));
    // Outlook UA that also says MacOutlook: only the Outlook switch applies; null falls to the list.
    let p = policy(
        r#"
[ews_access]
ews_enabled = true
allow_mac_outlook = true
application_access_policy = "EnforceAllowList"
list = ["Only/*"]
"#,
    );
    assert!(denied(&p, &ews("Microsoft Outlook MacOutlook", "u")));
    assert!(!denied(&p, &ews("MacOutlook/16", "u")));
    assert!(!denied(&p, &ews("Only/1", "u")));
}

#[test]
fn ews_mailbox_policy_replaces_org_policy() {
    let p = policy(
        r#"
[ews_access]
ews_enabled = true
application_access_policy = "EnforceAllowList"
list = ["OrgApp/*"]
[[ews_access.user]]
user = "CONTOSO\\Pilot"
application_access_policy = "EnforceBlockList"
list = ["BadApp/*"]
[[ews_access.user]]
user = "off"
ews_enabled = false
"#,
    );
    assert!(!denied(&p, &ews("OrgApp/1", "alice")));
    assert!(denied(&p, &ews("Other/1", "alice")));
    assert!(!denied(&p, &ews("Other/1", "pilot")), "lists are not merged");
    assert!(denied(&p, &ews("BadApp/1", "pilot")));
    assert!(denied(&p, &ews("OrgApp/1", "off")));
}

#[test]
fn device_access_follows_exchange_order() {
    let p = policy(
        r#"
[device_access]
default_access_level = "Quarantine"
quarantine_status = 449
[[device_access.rule]]
characteristic = "DeviceType"
query_string = "iPhone"
access_level = "Allow"
[[device_access.rule]]
characteristic = "DeviceModel"
query_string = "iPhone15,2"
access_level = "Block"
[[device_access.rule]]
characteristic = "UserAgent"
query_string = "Apple-iPhone15C65/2102.100"
access_level = "Quarantine"
[[device_access.personal]]
user = "alice"
allowed_device_ids = ["ALICE1"]
blocked_device_ids = ["STOLEN"]
"#,
    );
    let phone = |id: &str, model: &str, ua: &str, user: &str| {
        let mut r = eas("Sync", id, "iPhone", ua, user);
        r.activesync.log.device_model = model.into();
        r
    };
    // personal block beats personal allow and rules
    let d = evaluate(&p, &phone("STOLEN", "", "", "alice"));
    assert_eq!((d.action, d.status), (Action::Deny, 403));
    // personal allow beats block rule
    assert!(!denied(&p, &phone("ALICE1", "iPhone15,2", "", "alice")));
    // block rule beats quarantine and allow rules
    let d = evaluate(&p, &phone("X", "iPhone15,2", "Apple-iPhone15C65/2102.100", "bob"));
    assert!(by(p.policy(), &d).contains("Block DeviceModel"), "{}", by(p.policy(), &d));
    // quarantine rule beats allow rule
    let d = evaluate(&p, &phone("X", "", "apple-iphone15c65/2102.100", "bob"));
    assert_eq!((d.action, d.status), (Action::Deny, 449));
    assert!(p.policy().rules()[d.rule.unwrap()].quarantine);
    // allow rule beats the default
    assert!(!denied(&p, &phone("X", "", "Apple-iPhone14", "bob")));
    // default quarantine
    let mut r = eas("Sync", "X", "Android", "Android-Mail/1", "bob");
    r.activesync.log.device_model = "Pixel".into();
    let d = evaluate(&p, &r);
    assert_eq!((d.action, d.status), (Action::Deny, 449));
    assert!(p.policy().explain(&d, &r).contains("quarantined"));
    // not ActiveSync: untouched
    assert!(!denied(&p, &ews("Android-Mail/1", "bob")));
    // an ActiveSync request naming no device (`OPTIONS`, a sign-in's first
    // leg): Exchange judges a device's access by its DeviceId, so no rule
    // here does, not even the default; with a device, the default does
    let options = eas("", "", "", "Android-Mail/1", "bob");
    assert!(!denied(&p, &options), "{}", by(p.policy(), &evaluate(&p, &options)));
    assert!(denied(&p, &eas("", "X", "", "Android-Mail/1", "bob")));
    // "OPTIONS is always allowed" by Exchange's device access, naming a
    // device or not (iOS names one): the method read in any case
    for (method, command) in [("OPTIONS", ""), ("options", ""), ("OPTIONS", "Options"), ("Options", "options")] {
        let mut options = eas(command, "X", "Android", "Android-Mail/1", "bob");
        options.method = method.into();
        assert!(!denied(&p, &options), "{method} {command}: {}", by(p.policy(), &evaluate(&p, &options)));
    }
    // An OPTIONS naming another command may be dispatched by it: judged.
    for command in ["Sync", "Provision", "Foo"] {
        let mut odd = eas(command, "X", "Android", "Android-Mail/1", "bob");
        odd.method = "OPTIONS".into();
        assert!(denied(&p, &odd), "OPTIONS {command}");
    }
    let mut post = eas("Sync", "X", "Android", "Android-Mail/1", "bob");
    post.method = "POST".into();
    assert!(denied(&p, &post));
}

/// Exchange's cmdlets take their values in any case (`-AccessLevel block`,
/// `-Characteristic devicetype`, `-ApplicationAccessPolicy enforceallowlist`),
/// and so does the policy: the same settings, however they are written.
#[test]
fn powershell_values_are_taken_in_any_case() {
    let text = |level: &str, characteristic: &str, app: &str| {
        format!(
            "[device_access]\ndefault_access_level = \"{level}\"\n[[device_access.rule]]\ncharacteristic = \"{characteristic}\"\n\
             query_string = \"iPhone\"\naccess_level = \"{level}\"\n[ews_access]\nlist = []\n\
             application_access_policy = \"{app}\"\n"
        )
    };
    let canonical = policy(&text("Block", "DeviceType", "EnforceAllowList"));
    for (level, characteristic, app) in
        [("block", "devicetype", "enforceallowlist"), ("BLOCK", "DEVICETYPE", "ENFORCE_ALLOW_LIST")]
    {
        let p = policy(&text(level, characteristic, app));
        for r in [eas("Sync", "X", "iPhone", "Apple-iPhone/1", "bob"), ews("AnyApp/1", "bob")] {
            assert_eq!(evaluate(&p, &r), evaluate(&canonical, &r), "{level} {characteristic} {app}");
        }
        assert!(denied(&p, &eas("Sync", "X", "iPhone", "Apple-iPhone/1", "bob")));
    }
}

/// A device access rule on the model judges a device by what its
/// partnership holds, whatever the case its id is sent in: Exchange keeps
/// one partnership for `SEC1A2B3` and `sec1a2b3`. Simulate's facts (from
/// the logs' `Log=`) and the gateway's (an export) are looked up alike.
#[test]
fn a_device_model_rule_holds_for_the_device_id_in_any_case() {
    let p = common::policy(
        "[device_access]\n[[device_access.rule]]\ncharacteristic = \"DeviceModel\"\nquery_string = \"SM-S911B\"\naccess_level = \"Block\"\n",
    );
    let mut facts = Inventory::facts_only();
    facts.insert_device_facts("SEC1A2B3C4D5E6F7", "SM-S911B", "Android 14");
    facts.insert_device_facts("androidc99887766", "Pixel 8", "Android 14");
    let p = ReadyPolicy::new(p, Some(Arc::new(facts)), Arc::new(Interpreter::builtin())).unwrap();
    for id in ["SEC1A2B3C4D5E6F7", "sec1a2b3c4d5e6f7", "Sec1A2b3C4d5E6f7"] {
        assert!(denied(&p, &eas("Sync", id, "SAMSUNGSMS911B", "Android-SAMSUNG-SM-S911B/101", "cwhite")), "{id}");
    }
    for id in ["androidc99887766", "ANDROIDC99887766"] {
        assert!(!denied(&p, &eas("Sync", id, "Android", "Android-Mail/1", "mallory")), "{id}");
    }
}

#[test]
fn ip_restrictions_first_entry_wins_and_most_specific_path_applies() {
    let p = policy(
        r#"
[[ip_restrictions]]
path = "/"
allow_unlisted = true
entries = [{ cidr = "192.0.2.0/24", allowed = false }]
[[ip_restrictions]]
path = "/EWS"
allow_unlisted = false
deny_action = "NotFound"
entries = [
  { cidr = "10.0.0.5", allowed = true },
  { cidr = "10.0.0.0/8", allowed = false },
  { cidr = "10.0.0.0/8", allowed = true },
]
"#,
    );
    let at = |stem: &str, ip: &str| {
        let mut r = req(Protocol::Other, stem, "");
        r.peer_ip = Some(ip.parse().unwrap());
        r.client_ip = Some("203.0.113.9".parse().unwrap());
        evaluate(&p, &r)
    };
    assert_eq!(at("/owa/", "192.0.2.7").status, 403);
    assert_eq!(at("/owa/", "10.9.9.9").action, Action::Allow);
    assert_eq!(at("/EWS/x", "10.0.0.5").action, Action::Allow);
    let d = at("/EWS/x", "10.0.0.6");
    assert_eq!((d.action, d.status), (Action::Deny, 404), "first listed entry (deny) wins");
    assert_eq!(at("/EWS/x", "172.16.0.1").status, 404, "allowUnlisted=false");
    assert_eq!(at("/EWS/x", "192.0.2.7").status, 404, "only the /EWS section applies there");
}

/// A dual-stack listener or proxy writes an IPv4 client as
/// `::ffff:203.0.113.5`: an IPv4 `cidr` or IP restriction must see it, as
/// `network` already did, or the mapped spelling passed a deny.
#[test]
fn an_ipv4_mapped_ipv6_address_is_its_ipv4_address_to_cidr_conditions() {
    let p = policy(
        r#"
default = "allow"
[[rule]]
name = "no bad net"
action = "deny"
cidr = "203.0.113.0/24"
[[rule]]
name = "mapped written out"
action = "deny"
status = 418
cidr = "::ffff:198.51.100.0/120"
[[ip_restrictions]]
path = "/EWS"
allow_unlisted = true
entries = [{ cidr = "192.0.2.0/24", allowed = false }]
"#,
    );
    let at = |stem: &str, peer: &str, client: &str| {
        let mut r = req(Protocol::Other, stem, "");
        r.peer_ip = Some(peer.parse().unwrap());
        r.client_ip = Some(client.parse().unwrap());
        evaluate(&p, &r)
    };
    for client in ["203.0.113.5", "::ffff:203.0.113.5", "::ffff:cb00:7105"] {
        assert_eq!(at("/owa/", "10.0.0.1", client).action, Action::Deny, "{client}");
    }
    assert_eq!(at("/owa/", "10.0.0.1", "2001:db8::cb00:7105").action, Action::Allow, "not a mapped address");
    // A prefix written in the mapped form still matches both spellings.
    assert_eq!(at("/owa/", "10.0.0.1", "::ffff:198.51.100.7").status, 418);
    assert_eq!(at("/owa/", "10.0.0.1", "198.51.100.7").status, 418);
    // IP restrictions judge the connection's address, mapped or not.
    assert_eq!(at("/EWS/x", "::ffff:192.0.2.7", "10.0.0.1").status, 403);
    assert_eq!(at("/EWS/x", "::ffff:192.0.3.7", "10.0.0.1").action, Action::Allow);
}

#[test]
fn block_outlook_provision_example() {
    let p = example("block-outlook-provision.toml");
    let mut r = eas("Provision", "D1", "Outlook", "Outlook-iOS-Android/1.0", "u");
    r.client = client("outlook-mobile");
    assert!(denied(&p, &r));
    r.activesync.command = "Sync".into();
    assert!(!denied(&p, &r));
    let mut r = eas("Provision", "D1", "iPhone", "Apple-iPhone/1", "u");
    r.client = client("ios-mail");
    assert!(!denied(&p, &r));
    assert!(!p.policy().requires_inventory());
}

#[test]
fn block_new_outlook_devices_example_needs_and_uses_the_inventory() {
    let p = common::example("block-new-outlook-devices.toml");
    assert!(p.requires_inventory());
    let interpreter = Arc::new(Interpreter::builtin());
    let err = ReadyPolicy::new(p.clone(), None, interpreter.clone()).unwrap_err();
    assert!(err.to_string().contains("give the devices known before the cut-over"), "{err}");
    // Device facts alone (simulate's, from the logs' Log=) know no device.
    let mut facts = Inventory::facts_only();
    facts.insert_device_facts("OLD1", "iPhone15C2", "iOS 17");
    let err = ReadyPolicy::new(p.clone(), Some(Arc::new(facts)), interpreter.clone()).unwrap_err();
    assert!(err.to_string().contains("give the devices known before the cut-over"), "{err}");
    let mut inv = Inventory::new("2024-06-01T00:00:00Z");
    inv.insert("u", "OLD1", "2024-05-01T00:00:00Z");
    let inv = Inventory::from_json(&inv.to_json(), "inv.json").unwrap();
    let p = ReadyPolicy::new(p, Some(Arc::new(inv)), interpreter).unwrap();
    let mut r = eas("Provision", "OLD1", "Outlook", "Outlook-iOS-Android/1.0", "u");
    r.client = client("outlook-mobile");
    assert!(!denied(&p, &r), "known device re-provisions");
    r.activesync.device_id = "NEW1".into();
    assert!(denied(&p, &r));
    r.user = "v".into();
    r.activesync.device_id = "OLD1".into();
    assert!(denied(&p, &r), "known means known for this user");
}

/// A device is someone's, and ActiveSync names it: a balancer's anonymous
/// health page, a sign-in's first leg, or an ActiveSync request without a
/// DeviceId is neither a new device nor a known one (apart35 found a
/// `device = "new"` rule denying every health check of a balancer).
#[test]
fn a_request_with_no_one_or_no_device_is_no_new_device() {
    let p = common::policy(
        r#"
[[rule]]
name = "no new devices"
action = "deny"
protocol = "activesync"
device = "new"
"#,
    );
    let mut inv = Inventory::new("2024-06-01T00:00:00Z");
    inv.insert("u", "OLD1", "2024-05-01T00:00:00Z");
    let p = ReadyPolicy::new(p, Some(Arc::new(inv)), Arc::new(Interpreter::builtin())).unwrap();
    let mut health = req(Protocol::ActiveSync, "/Microsoft-Server-ActiveSync/healthcheck.htm", "KEMP 1.0");
    health.method = "HEAD".into();
    assert!(!denied(&p, &health), "anonymous, no device");
    assert!(!denied(&p, &eas("", "", "", "Apple-iPhone/1.0", "u")), "OPTIONS without a DeviceId");
    assert!(!denied(&p, &eas("Sync", "OLD1", "iPhone", "Apple-iPhone/1.0", "u")));
    assert!(denied(&p, &eas("Sync", "NEW1", "iPhone", "Apple-iPhone/1.0", "u")));
    let mut first_leg = eas("Sync", "NEW1", "iPhone", "Apple-iPhone/1.0", "");
    assert!(!denied(&p, &first_leg), "a sign-in's first leg names no one");
    first_leg.unnamed_credentials = true;
    assert!(denied(&p, &first_leg), "credentials naming nobody readable still sign someone in");
}

#[test]
fn lockdown_example_combines_blocks() {
    let p = example("outlook-mobile-lockdown.toml");
    let mut r = ews("Outlook-iOS/2.0", "pilot2");
    assert!(denied(&p, &r));
    r.user = "mobilepilot".into();
    assert!(!denied(&p, &r), "mailbox allow list and rule exception");
    assert!(denied(&p, &eas("Sync", "X", "Outlook", "Outlook-iOS-Android/1.0", "mobilepilot")));
    assert!(!denied(&p, &eas("Sync", "PILOT0001", "Outlook", "Outlook-iOS-Android/1.0", "mobilepilot")));
    let mut ps = req(Protocol::PowerShell, "/PowerShell", "Microsoft WinRM Client");
    ps.peer_ip = Some("10.20.1.1".parse().unwrap());
    assert!(!denied(&p, &ps));
    ps.peer_ip = Some("10.30.1.1".parse().unwrap());
    assert!(denied(&p, &ps));
}

#[test]
fn every_example_loads_and_prints() {
    let mut n = 0;
    for (path, p) in example_policies() {
        assert!(!p.rules().is_empty(), "{}", path.display());
        for r in p.rules() {
            assert!(r.to_string().starts_with(&r.name));
        }
        n += 1;
    }
    assert!(n >= 5);
}

#[test]
fn errors_name_their_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("default = \"allow\"\n\n[[rule]]\nname = \"a\"\naction = \"deny\"\nprotocl = \"ews\"\n", 6, "protocl"),
        ("[[rule]]\nname = \"a\"\naction = \"block\"\n", 3, "block"),
        ("[[rule]]\nname = \"a\"\naction = \"deny\"\nprotocol = [\"ews\",\n  \"imap\"]\n", 5, "imap"),
        ("[[rule]]\nname = \"a\"\naction = \"deny\"\nclient = \"outlook-mobil\"\n", 4, "outlook-mobil"),
        ("[[rule]]\nname = \"a\"\naction = \"deny\"\ncidr = \"10.0.0.0/33\"\n", 4, "CIDR"),
        ("[[rule]]\nname = \"a\"\naction = \"deny\"\nnetwork = \"nowhere\"\n", 4, "nowhere"),
        ("[[rule]]\nname = \"a\"\naction = \"deny\"\ncommand = \"Provison\"\n", 4, "Provison"),
        ("[[rule]]\nname = \"a\"\naction = \"deny\"\nunless = { usr = \"x\" }\n", 4, "usr"),
        ("[ews_access]\napplication_access_policy = \"AllowAll\"\n", 2, "AllowAll"),
        ("[[iis_filter.rule]]\nname = \"x\"\nscan_headers = \"Cookie\"\ndeny_strings = \"a\"\n", 3, "Cookie"),
        ("[[rule]]\nname = \"a\"\naction = \"deny\"\n[[rule]]\nname = \"a\"\naction = \"deny\"\n", 5, "two rules"),
        ("[[rule]]\nname = \"a\"\naction = \"deny\"\nuser = { group_file = \"missing.txt\" }\n", 4, "missing.txt"),
        ("[[rule]]\nname = \"a\"\naction = \"deny\"\npath = \"/ews\"\nstatus = 700\n", 5, "rule 'a': status 700"),
        ("default = \"deny\"\ndefault_status = 0\n", 2, "default_status 0 is not an HTTP status"),
        ("[ews_access]\news_enabled = false\nstatus = 1000\n", 3, "ews_access status 1000"),
        ("[device_access]\ndefault_access_level = \"Block\"\nstatus = 99\n", 3, "device_access status 99"),
        ("[device_access]\ndefault_access_level = \"Quarantine\"\nquarantine_status = 0\n", 3, "quarantine_status 0"),
        ("[mailbox_protocols]\nmapi_http_enabled = false\nstatus = 600\n", 3, "mailbox_protocols status 600"),
        // A URL Rewrite CustomResponse or Redirect: the gateway answered 1000 as 403, and 0 aborted.
        (
            "[[url_rewrite]]\npath = \"/\"\n[[url_rewrite.rule]]\nname = \"x\"\naction = \"CustomResponse\"\nstatus = 1000\n",
            6,
            "url_rewrite status 1000 is not an HTTP status",
        ),
        (
            "[[url_rewrite]]\npath = \"/\"\n[[url_rewrite.rule]]\nname = \"x\"\naction = \"CustomResponse\"\nstatus = 0\n",
            6,
            "url_rewrite status 0",
        ),
        (
            "[[url_rewrite]]\npath = \"/\"\n[[url_rewrite.rule]]\nname = \"x\"\naction = \"Redirect\"\nredirect_url = \"/\"\n\
             status = 99\n",
            7,
            "url_rewrite status 99",
        ),
        ("[auth_policies]\nstatus = 0\n[[auth_policies.policy]]\nname = \"p\"\nblock_legacy = \"Pop\"\n", 2, "auth_policies status 0"),
        ("[device_access]\n[[device_access.rule]]\ncharacteristic = \"DeviceType\"\nquery_string = \"x\"\naccess_level = \"Blok\"\n", 5, "Blok"),
        ("[device_access]\n[[device_access.rule]]\ncharacteristic = \"DeviceTyp\"\nquery_string = \"x\"\naccess_level = \"Block\"\n", 3, "DeviceTyp"),
    ];
    for (text, line, needle) in cases {
        let e = compile(text).expect_err(text);
        assert_eq!(e.line(), Some(*line), "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("test.toml:{line}: ")), "{msg}");
        assert!(msg.contains(needle), "{msg}");
    }
}

#[test]
fn explain_names_rule_and_reason() {
    let p = example("block-outlook-provision.toml");
    let mut r = eas("Provision", "D1", "Outlook", "Outlook-iOS-Android/1.0", "u");
    r.client = client("outlook-mobile");
    let d = evaluate(&p, &r);
    let s = p.policy().explain(&d, &r);
    assert!(
        s.contains("'block Outlook mobile provisioning' denied (403)") && s.contains("command is 'Provision'"),
        "{s}"
    );
}

#[test]
fn block_rules_carry_their_lines() {
    let p = example("outlook-mobile-lockdown.toml");
    let text = std::fs::read_to_string(examples_dir().join("outlook-mobile-lockdown.toml")).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for r in p.policy().rules() {
        assert!(r.line > 0, "{}", r.name);
    }
    let find = |prefix: &str| p.policy().rules().iter().find(|r| r.name.starts_with(prefix)).unwrap().line;
    assert_eq!(find("device_access: Block"), line_of("[[device_access.rule]]"));
    assert_eq!(find("ews_access (mobilepilot)"), line_of("user = \"mobilepilot\""));
    assert_eq!(find("no Outlook"), line_of("name = \"no Outlook mobile user agents\""));
}

/// An attack names no client in reports, but a policy judges the client it
/// claims: the web shell reached with Outlook mobile's user agent and
/// device type (tests/data/iis/winterfell-webshell-exfiltration.log) is
/// denied by a rule against Outlook mobile.
#[test]
fn an_attack_is_judged_by_the_client_it_claims() {
    let p = policy("[[rule]]\nname = \"no outlook mobile\"\naction = \"deny\"\nclient = \"outlook-mobile\"\n");
    let interpreter = Interpreter::builtin();
    let mut r = exchange::Request {
        method: "POST".into(),
        stem: "/Microsoft-Server-ActiveSync/error.aspx".into(),
        query: "cmd=whomai&User=vvvvv&DeviceId=7f5c3228efb748deb692dd060fd3c3fa&DeviceType=Outlook".into(),
        user_agent: "Outlook-iOS-Android/1.0".into(),
        server_port: 443,
        ..exchange::Request::default()
    };
    interpreter.interpret(&mut r);
    assert_eq!(r.traffic, exchange::Traffic::Attack);
    assert_eq!(r.client, exchange::ClientId::UNKNOWN);
    assert_eq!(r.claimed_client(), client("outlook-mobile"));
    assert!(denied(&p, &r));
}

#[test]
fn auth_condition_matches_the_scheme_and_never_an_unknown_one() {
    use exchange::AuthType;
    let p = policy(
        r#"
[[rule]]
name = "no basic on activesync"
action = "deny"
protocol = "activesync"
auth = ["basic"]
unless = { auth = "ntlm" }
[[rule]]
name = "no oauth"
action = "deny"
auth = "bearer"
"#,
    );
    let mut r = eas("Sync", "ABC", "Outlook", "Outlook-iOS-Android/1.0", "alice");
    assert!(!denied(&p, &r), "IIS lines have no authentication type: no auth rule matches them");
    r.auth = AuthType::Basic;
    let d = evaluate(&p, &r);
    assert_eq!(by(p.policy(), &d), "no basic on activesync");
    assert!(p.policy().explain(&d, &r).contains("authentication 'basic'"), "{}", p.policy().explain(&d, &r));
    r.auth = AuthType::Ntlm;
    assert!(!denied(&p, &r));
    // `bearer` and `oauth` name one thing: an OAuth token.
    for a in [AuthType::OAuth, AuthType::Bearer] {
        r.auth = a;
        assert_eq!(by(p.policy(), &evaluate(&p, &r)), "no oauth");
    }
    assert_eq!(p.policy().rules()[1].to_string(), "no oauth deny 403 if authentication is any of ['oauth', 'bearer']");
    let err = common::compile("[[rule]]\nname = \"x\"\naction = \"deny\"\nauth = [\"basic\", \"digestive\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("test.toml:4:") && err.contains("unknown authentication type 'digestive'"), "{err}");
    assert!(common::compile("[[rule]]\nname = \"x\"\naction = \"deny\"\nauth = []\n").is_err());
}

/// Exchange reads any device type starting `IMEI` as `IMEI`
/// (`DeviceClassCache.NormalizeDeviceClass`): a rule on it holds for them all.
#[test]
fn a_device_type_rule_on_imei_holds_for_every_imei_type() {
    let p = policy("[[rule]]\nname = \"no IMEI\"\naction = \"deny\"\ndevice_type = \"IMEI\"\n");
    for sent in ["IMEI", "IMEI352099001761481", "imei35"] {
        assert!(denied(&p, &eas("Sync", "ABC", sent, "Nokia/1.0", "alice")), "{sent}");
    }
    assert!(!denied(&p, &eas("Sync", "ABC", "IME", "Nokia/1.0", "alice")));
    let exact = policy("[[rule]]\nname = \"one\"\naction = \"deny\"\ndevice_type = \"IMEI352099\"\n");
    assert!(denied(&exact, &eas("Sync", "ABC", "IMEI352099", "Nokia/1.0", "alice")), "as sent, too");
}

#[test]
fn an_auth_condition_sees_the_mechanism_inside_negotiate() {
    use exchange::AuthType;
    let p = policy(
        "[[rule]]\nname = \"no ntlm\"\naction = \"deny\"\nauth = \"ntlm\"\n[[rule]]\nname = \"no unknown\"\naction \
         = \"deny\"\nauth = \"unknown\"\n",
    );
    let mut r = eas("Sync", "ABC", "iPhone", "Apple-iPhone/1.0", "alice");
    r.auth = AuthType::Negotiate;
    r.auth_mechanism = AuthType::Ntlm;
    assert_eq!(by(p.policy(), &evaluate(&p, &r)), "no ntlm", "NTLM in Negotiate is NTLM");
    r.auth_mechanism = AuthType::Kerberos;
    assert!(!denied(&p, &r));
    r.auth_mechanism = AuthType::Unknown;
    assert!(!denied(&p, &r), "a mechanism not told is not the unknown scheme");
}

/// What Exchange could read another way than the model is refused (400)
/// before any rule, even an allow-all one: the gateway and a simulation of
/// logged lines both decide through `evaluate`, so both refuse it.
#[test]
fn ambiguous_requests_are_refused_before_any_rule() {
    let p = policy("default = \"allow\"\n[[rule]]\nname = \"allow all\"\naction = \"allow\"\n");
    let rules = p.policy().rules().len();
    let mut proxyshell = req(Protocol::Autodiscover, "/autodiscover/autodiscover.json", "python-requests/2.31.0");
    proxyshell.query = "@evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@evil.com".into();
    let mut repeated = req(Protocol::ActiveSync, "/Microsoft-Server-ActiveSync", "Apple-iPhone15C3/2104.100");
    repeated.activesync.repeated = true;
    let mut nul = req(Protocol::Owa, "/owa/", "Mozilla/5.0");
    nul.username = "baduser\0".into();
    for r in [&proxyshell, &repeated, &nul] {
        let d = evaluate(&p, r);
        assert_eq!((d.action, d.status, d.rule), (Action::Deny, 400, None), "{}", r.stem);
        assert_eq!(p.decided_by(&d), d.refused.unwrap());
        assert_eq!(p.slot(&d), rules + 1);
        assert!(p.slot_name(p.slot(&d)).starts_with("refused"));
    }
    assert_eq!(p.decided_by(&evaluate(&p, &proxyshell)), exchange::ROUTED_PAST_ITS_PATH);

    // The same outer path with an ordinary query is the rule's to decide.
    proxyshell.query = "Email=jdoe%40contoso.com&Protocol=ActiveSync".into();
    let d = evaluate(&p, &proxyshell);
    assert_eq!((d.action, d.refused, p.decided_by(&d)), (Action::Allow, None, "allow all"));
    assert_eq!((p.slot(&d), p.slot_name(rules)), (0, "default"));
}

#[test]
fn a_request_naming_no_one_may_be_allowed_once_it_names_a_user_a_rule_lets_through() {
    use policy::may_allow_once_signed_in;
    let anonymous = ews("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)", "");
    let may = |text: &str| {
        let p = policy(text);
        assert_eq!(evaluate(&p, &anonymous).action, Action::Deny, "{text}");
        may_allow_once_signed_in(&p, &anonymous)
    };
    // A deny rule's exception on users, an allow rule on users before a deny.
    assert!(may("[[rule]]\nname = 'e'\naction = 'deny'\nprotocol = 'ews'\nunless = { user = 'boss' }\n"));
    assert!(may("default = 'deny'\n[[rule]]\nname = 'a'\naction = 'allow'\nuser = ['svc*']\n"));
    // No user passes, or the rule that denies does not look at users.
    assert!(!may("[[rule]]\nname = 'e'\naction = 'deny'\nprotocol = 'ews'\n"));
    assert!(!may("[[rule]]\nname = 'e'\naction = 'deny'\nprotocol = 'ews'\nunless = { network = 'internal' }\n"));
    assert!(!may(
        "[[rule]]\nname = 'n'\naction = 'deny'\nprotocol = 'ews'\n[[rule]]\nname = 'a'\naction = 'allow'\nuser = 'boss'\n"
    ));
    assert!(!may("default = 'deny'\n[[rule]]\nname = 'a'\naction = 'allow'\nuser = 'boss'\nprotocol = 'mapi'\n"));
    // Past a deny rule on users, the next rules decide.
    assert!(may("default = 'deny'\n[[rule]]\nname = 'b'\naction = 'deny'\nuser = 'bad'\n[[rule]]\nname = 'a'\naction = 'allow'\nuser = 'boss'\n"));
}

#[test]
fn the_opening_of_a_windows_sign_in_is_denied_with_its_challenge() {
    let p = policy("[[rule]]\nname = 'e'\naction = 'deny'\npath = ['/EWS', '/owa']\nunless = { user = 'boss' }\n");
    let outlook = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)";
    let d = evaluate(&p, &ews(outlook, ""));
    assert_eq!((d.action, d.status, d.substatus, d.challenge), (Action::Deny, 401, 2, true));
    // Once named: boss passes, eve is denied as the rule says.
    assert_eq!(evaluate(&p, &ews(outlook, "boss")).action, Action::Allow);
    let d = evaluate(&p, &ews(outlook, "eve"));
    assert_eq!((d.action, d.status, d.challenge), (Action::Deny, 403, false));
    // Outlook on the web's front end runs no Windows sign-in: denied as the rule says.
    let d = evaluate(&p, &common::at(Protocol::Owa, "/owa/", "", "Mozilla/5.0"));
    assert_eq!((d.action, d.status, d.challenge), (Action::Deny, 403, false));
    // A rule hiding the page keeps its answer, which a challenge would give away.
    let hidden =
        policy("[[rule]]\nname = 'h'\naction = 'deny'\nstatus = 404\npath = '/EWS'\nunless = { user = 'boss' }\n");
    let d = evaluate(&hidden, &ews(outlook, ""));
    assert_eq!((d.action, d.status, d.challenge), (Action::Deny, 404, false));
}
