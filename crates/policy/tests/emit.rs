mod common;

use common::*;
use policy::emit::{self, iis, merge_web_config, Target};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/exchange-config");

fn parse(xml: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(xml.trim_start_matches('\u{feff}')).unwrap_or_else(|e| panic!("{e}\n{xml}"))
}

fn names_of(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants().filter(|n| n.is_element()).map(|n| n.tag_name().name().to_string()).collect()
}

fn unexpressible(p: &policy::Policy, t: Target) -> Vec<String> {
    emit::emit(p, t).unexpressible.into_iter().map(|u| u.rule).collect()
}

#[test]
fn iis_xml_parses_and_says_what_the_policy_says() {
    let p = example("iis-block-outlook-ua.toml");
    let out = iis::emit(&p, iis::DEFAULT_SITE);
    assert!(out.unexpressible.is_empty(), "{:?}", out.unexpressible);
    assert_eq!(out.sections.len(), 1);
    assert_eq!(out.sections[0].path, "Default Web Site/Microsoft-Server-ActiveSync");
    let xml = out.sections[0].web_config();
    let doc = parse(&xml);
    let rule = doc.descendants().find(|n| n.has_tag_name("filteringRule")).expect("filteringRule");
    assert_eq!(rule.attribute("name"), Some("Block Outlook mobile UA"));
    let path: Vec<&str> = rule.ancestors().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
    assert_eq!(
        path,
        ["filteringRule", "filteringRules", "requestFiltering", "security", "system.webServer", "configuration"]
    );
    let header = rule.descendants().find(|n| n.has_tag_name("add") && n.attribute("requestHeader").is_some()).unwrap();
    assert_eq!(header.attribute("requestHeader"), Some("User-Agent"));
    let deny = rule.descendants().find(|n| n.attribute("string").is_some()).unwrap();
    assert_eq!(deny.attribute("string"), Some("Outlook-iOS-Android/1.0"));
    assert!(out.appcmd.contains(
        "set config \"Default Web Site/Microsoft-Server-ActiveSync\" -section:system.webServer/security/requestFiltering /+\"filteringRules.[name='Block Outlook mobile UA'"
    ));
    assert!(out.appcmd.contains(
        "/+\"filteringRules.[name='Block Outlook mobile UA'].denyStrings.[string='Outlook-iOS-Android/1.0']\""
    ));
    assert_removed_before_added(&out.appcmd);
}

/// Every appcmd add (`/+"coll.[key='v',...]"`) of a filtering rule or IP
/// entry follows the removal of the element it adds (`/-"coll.[key='v']"`,
/// its error hidden): appcmd fails to add an element that exists, so a
/// script run twice, or after the policy was edited, would keep the old one.
fn assert_removed_before_added(appcmd: &str) {
    let lines: Vec<&str> = appcmd.lines().collect();
    let mut adds = 0;
    for (i, l) in lines.iter().enumerate() {
        let Some((head, add)) = l.split_once(" /+\"") else { continue };
        if add.contains("].") {
            continue; // a string or header of the rule added just before
        }
        let (coll, keys) = add.split_once('[').unwrap();
        adds += 1;
        // The key attributes: a rule's name, an entry's address and mask.
        let keys = &keys[..keys.find(']').unwrap()];
        let key: Vec<&str> = keys
            .split(',')
            .filter(|k| ["name=", "ipAddress=", "subnetMask="].iter().any(|n| k.starts_with(n)))
            .collect();
        let key = key.join(",");
        let removal = format!("{head} /-\"{coll}[{key}]\"");
        assert!(
            i > 0 && lines[i - 1].starts_with(&removal) && lines[i - 1].ends_with(">nul 2>&1"),
            "{removal}\n{appcmd}"
        );
    }
    assert!(adds > 0, "{appcmd}");
    assert!(appcmd.starts_with("rem Each filtering rule and IP entry is removed before it is added"), "{appcmd}");
}

#[test]
fn iis_escapes_xml_and_emits_generic_rules() {
    let p = policy(
        r#"
[[rule]]
name = "odd <&> ua"
action = "deny"
protocol = ["ews", "activesync"]
user_agent = { contains = ["A&B<C>"] }
"#,
    );
    let out = iis::emit(&p, "Site");
    assert!(out.unexpressible.is_empty(), "{:?}", out.unexpressible);
    assert_eq!(out.sections.len(), 2);
    for s in &out.sections {
        let xml = s.web_config();
        let doc = parse(&xml);
        let d = doc.descendants().find(|n| n.attribute("string").is_some()).unwrap();
        assert_eq!(d.attribute("string"), Some("A&B<C>"));
        let r = doc.descendants().find(|n| n.has_tag_name("filteringRule")).unwrap();
        assert_eq!(r.attribute("name"), Some("casguard: odd <&> ua"));
    }
}

/// An XML comment may not hold `--` nor end with `-`: a path or site that
/// does is still a well-formed web.config, and the comment still names it.
#[test]
fn a_double_dash_in_a_path_or_site_keeps_the_xml_well_formed() {
    let p = policy(
        "[[iis_filter.rule]]\nname = \"r\"\npath = \"/a--b-\"\nscan_headers = [\"User-Agent\"]\ndeny_strings = [\"x\"]\n",
    );
    let out = iis::emit(&p, "My--Site-");
    assert_eq!(out.sections.len(), 1, "{:?}", out.unexpressible);
    let xml = out.sections[0].web_config();
    let doc = parse(&xml);
    let comment = doc.root().children().find(|n| n.is_comment()).and_then(|n| n.text()).unwrap();
    assert_eq!(comment, " casguard: filtering rules for My-%2DSite-/a-%2Db%2D ");
    assert!(doc.descendants().any(|n| n.attribute("string") == Some("x")));
    // The files as one text, each under a comment naming it.
    let text = out.into_output().text();
    assert!(!text.lines().any(|l| l.starts_with("<!--") && l[4..l.len() - 3].contains("--")), "{text}");
}

#[test]
fn ip_security_goes_to_application_host_locations() {
    let p = example("outlook-mobile-lockdown.toml");
    let out = iis::emit(&p, iis::DEFAULT_SITE);
    let xml = out.application_host().expect("ipSecurity");
    let doc = parse(&xml);
    let loc = doc.descendants().find(|n| n.has_tag_name("location")).unwrap();
    assert_eq!(loc.attribute("path"), Some("Default Web Site/PowerShell"));
    let ips = loc.descendants().find(|n| n.has_tag_name("ipSecurity")).unwrap();
    assert_eq!(ips.attribute("allowUnlisted"), Some("false"));
    let adds: Vec<_> = ips.children().filter(|n| n.has_tag_name("add")).collect();
    assert_eq!(adds[0].attribute("ipAddress"), Some("10.20.0.0"));
    assert_eq!(adds[0].attribute("subnetMask"), Some("255.255.0.0"));
    assert_eq!(adds[1].attribute("subnetMask"), Some("255.255.255.255"));
    assert!(out.appcmd.contains("/commit:apphost"));
    // Each entry is removed before it is added: run again with an entry
    // now denied, the add would fail on the allowed one and leave it.
    assert_removed_before_added(&out.appcmd);
    // appcmd adds to the entries in force, which the XML's <clear /> drops: the commands say so.
    assert!(ips.children().find(|n| n.is_element()).is_some_and(|n| n.has_tag_name("clear")), "{xml}");
    assert!(
        out.appcmd.contains(
            "rem These add to the entries Default Web Site/PowerShell already has or inherits, \
             where applicationHost.xml clears them:\nrem remove any other entry first"
        ),
        "{}",
        out.appcmd
    );
    // EWS and device access are Exchange settings, and the user-agent rule has an exception.
    let u: Vec<String> = out.unexpressible.iter().map(|u| u.rule.clone()).collect();
    assert!(u.contains(&"ews_access".to_string()) && u.contains(&"device_access".to_string()), "{u:?}");
    assert!(u.contains(&"no Outlook mobile user agents".to_string()), "{u:?}");
}

#[test]
fn merges_into_every_real_exchange_web_config() {
    let p = example("iis-block-outlook-ua.toml");
    let out = iis::emit(&p, iis::DEFAULT_SITE);
    let rules = &out.sections[0].filtering_rules;
    let mut n = 0;
    for e in std::fs::read_dir(SAMPLES).unwrap() {
        let path = e.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().ends_with("web.config") {
            continue;
        }
        n += 1;
        let original = std::fs::read_to_string(&path).unwrap();
        let merged = merge_web_config(&original, rules).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(original.starts_with('\u{feff}'), merged.starts_with('\u{feff}'), "BOM kept");
        let before = parse(&original);
        let after = parse(&merged);
        // Everything that was there is still there, plus exactly our elements.
        let (b, a) = (names_of(&before), names_of(&after));
        let mut rest = a.clone();
        for name in &b {
            let i = rest.iter().position(|x| x == name).unwrap_or_else(|| panic!("{name} lost in {}", path.display()));
            rest.remove(i);
        }
        for extra in &rest {
            assert!(
                [
                    "system.webServer",
                    "security",
                    "requestFiltering",
                    "filteringRules",
                    "filteringRule",
                    "scanHeaders",
                    "appliesTo",
                    "denyStrings",
                    "add"
                ]
                .contains(&extra.as_str()),
                "{extra}"
            );
        }
        let rule = after.descendants().find(|n| n.has_tag_name("filteringRule")).expect("our rule");
        let chain: Vec<&str> = rule.ancestors().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
        assert_eq!(
            chain,
            ["filteringRule", "filteringRules", "requestFiltering", "security", "system.webServer", "configuration"],
            "{}",
            path.display()
        );
        // The existing requestFiltering attributes survive (EWS has allowDoubleEscaping).
        if let Some(old) = before.descendants().find(|n| n.has_tag_name("requestFiltering")) {
            let new = rule.ancestors().find(|n| n.has_tag_name("requestFiltering")).unwrap();
            for a in old.attributes() {
                assert_eq!(new.attribute(a.name()), Some(a.value()));
            }
        }
        // Merging again replaces rather than duplicates.
        let again = merge_web_config(&merged, rules).unwrap();
        assert_eq!(again, merged, "idempotent for {}", path.display());
    }
    assert!(n >= 4, "found {n} sample web.config files");
}

#[test]
fn exchange_commands_for_ews_and_device_access() {
    let p = example("ews-allow-outlook-only.toml");
    let out = emit::emit(&p, Target::Exchange);
    let ps = &out.files[0].1;
    assert!(ps.contains("Set-OrganizationConfig -EwsEnabled $true -EwsAllowOutlook $true -EwsAllowMacOutlook $true -EwsAllowEntourage $null -EwsApplicationAccessPolicy EnforceAllowList -EwsAllowList $null"), "{ps}");
    assert!(out.unexpressible.is_empty());

    let p = example("outlook-mobile-lockdown.toml");
    let out = emit::emit(&p, Target::Exchange);
    let ps = &out.files[0].1;
    assert!(ps.contains("Set-CASMailbox -Identity 'mobilepilot' -EwsApplicationAccessPolicy EnforceAllowList -EwsAllowList @('Outlook-iOS/*','Outlook-Android/*')"), "{ps}");
    assert!(ps.contains(
        "New-ActiveSyncDeviceAccessRule -Characteristic DeviceType -QueryString 'Outlook' -AccessLevel Block"
    ));
    assert!(ps.contains("Set-ActiveSyncOrganizationSettings -DefaultAccessLevel Allow"));
    assert!(ps.contains("-ActiveSyncAllowedDeviceIDs @{Add='PILOT0001'}"));
}

#[test]
fn exchange_generic_rules_exact_or_reported() {
    let p = policy(
        r#"
[[rule]]
name = "stolen phone"
action = "deny"
protocol = "activesync"
user = ["alice", "CONTOSO\\Bob"]
device_id = "ABC123"
[[rule]]
name = "no ews for contractors"
action = "deny"
protocol = "ews"
user = "carol"
[[rule]]
name = "exact ua"
action = "deny"
protocol = "activesync"
user_agent = { exact = "Outlook-iOS-Android/1.0" }
[[rule]]
name = "substring ua"
action = "deny"
protocol = "activesync"
user_agent = { contains = "Outlook" }
"#,
    );
    let out = emit::emit(&p, Target::Exchange);
    let ps = &out.files[0].1;
    assert!(ps.contains("Set-CASMailbox -Identity 'alice' -ActiveSyncBlockedDeviceIDs @{Add='ABC123'}"), "{ps}");
    assert!(ps.contains("Set-CASMailbox -Identity 'bob' -ActiveSyncBlockedDeviceIDs @{Add='ABC123'}"));
    assert!(ps.contains("Set-CASMailbox -Identity 'carol' -EwsEnabled $false"));
    assert!(ps.contains("-Characteristic UserAgent -QueryString 'Outlook-iOS-Android/1.0' -AccessLevel Block"));
    assert_eq!(out.unexpressible.len(), 1);
    assert_eq!(out.unexpressible[0].rule, "substring ua");
    assert!(out.unexpressible[0].reason.contains("exact strings only"));
}

#[test]
fn unexpressible_is_never_silent() {
    let p = example("block-new-outlook-devices.toml");
    for t in [Target::Iis, Target::Exchange, Target::Nginx] {
        assert_eq!(unexpressible(&p, t), ["block new Outlook mobile devices"], "{t}");
    }
    let p = example("block-outlook-provision.toml");
    for t in [Target::Iis, Target::Exchange, Target::Nginx] {
        assert_eq!(unexpressible(&p, t), ["block Outlook mobile provisioning"], "{t}");
    }
    let p =
        policy("[[rule]]\nname = \"per user\"\naction = \"deny\"\nuser = \"x\"\nuser_agent = { contains = \"a\" }\n");
    let out = emit::emit(&p, Target::Iis);
    assert!(out.unexpressible[0].reason.contains("user"), "{:?}", out.unexpressible);
    // An allow rule IIS cannot honour makes later denies inexact.
    let p = policy("[[rule]]\nname = \"ok\"\naction = \"allow\"\nuser = \"x\"\n[[rule]]\nname = \"d\"\naction = \"deny\"\nuser_agent = { contains = \"a\" }\n");
    assert_eq!(unexpressible(&p, Target::Iis), ["d"]);
    assert_eq!(unexpressible(&p, Target::Nginx), ["ok", "d"]);
}

#[test]
fn nginx_map_keeps_first_match_order() {
    let p = policy(
        &(LAN_OK_THEN_NO_OUTLOOK_MOBILE_ON_EWS.to_owned()
            + r#"
[[iis_filter.rule]]
name = "ua"
scan_headers = "User-Agent"
deny_strings = "BadBot"
"#),
    );
    let out = emit::emit(&p, Target::Nginx);
    assert!(out.unexpressible.is_empty(), "{:?}", out.unexpressible);
    let conf = &out.files[0].1;
    // One variable a condition, in the order the rules first use them.
    assert!(
        conf.contains("map $http_user_agent $casguard_ua1 {\n    default 0;\n    \"~(?si)^(?:.*BadBot.*)\\z\" 1;\n}"),
        "{conf}"
    );
    assert!(conf.contains("geo $casguard_net2 {\n    default 0;\n    10.0.0.0/8 1;\n}"), "{conf}");
    assert!(
        conf.contains("map $uri $casguard_path3 {\n    default 0;\n    \"~(?si)^(?:/ews(?:(?:/).*)?)\\z\" 1;\n}"),
        "{conf}"
    );
    assert!(conf.contains("\"~(?s)^(?:Outlook-iOS/.*|Outlook-Android/.*)\\z\" 1;"), "{conf}");
    assert!(
        conf.contains(
            "map \"-$casguard_ua1$casguard_net2$casguard_path3$casguard_ua4$casguard_path5\" $casguard_decision {"
        ),
        "{conf}"
    );
    // A path IIS reads otherwise than nginx is refused before any rule reads a path.
    let odd = conf.find("\"~^-....1$\" 400;").expect("odd path entry");
    let iis = conf.find("\"~^-1....$\" 404;").expect("iis filter entry");
    let lan = conf.find("\"~^-.1...$\" allow;").expect("lan allow entry");
    let ews = conf.find("\"~^-..11.$\" 403;").expect("ews entry");
    assert!(odd < iis && iis < lan && lan < ews, "policy order kept");
    assert!(conf.contains("if ($casguard_decision = 403) { return 403; }"));
    assert!(conf.contains("if ($casguard_decision = 404) { return 404; }"));
}

#[test]
fn an_auth_condition_is_named_unexpressible_with_its_reason() {
    let p = policy("[[rule]]\nname = \"no basic\"\naction = \"deny\"\nprotocol = \"activesync\"\nauth = \"basic\"\n");
    for (t, says) in [
        (Target::Iis, "request filtering"),
        (Target::Exchange, "New-AuthenticationPolicy"),
        (Target::Nginx, "Authorization"),
    ] {
        let out = emit::emit(&p, t);
        assert_eq!(out.unexpressible.len(), 1, "{t}");
        assert_eq!(out.unexpressible[0].rule, "no basic");
        let reason = &out.unexpressible[0].reason;
        assert!(reason.starts_with("authentication type") && reason.contains(says), "{t}: {reason}");
    }
}

/// The arguments of a PowerShell list parameter (`-Name 'a','b'`), unquoted.
fn ps_list(line: &str, param: &str) -> Vec<String> {
    let rest = line.split(&format!(" -{param} ")).nth(1).unwrap_or_else(|| panic!("no -{param} in {line}"));
    let arg = rest.split(" -").next().unwrap();
    arg.split(',').map(|s| s.trim().trim_matches('\'').to_string()).collect()
}

#[test]
fn client_access_rule_for_ecp_from_outside_the_internal_network() {
    let p = policy(
        r#"
[[rule]]
name = "admin center from inside only"
action = "deny"
protocol = "ecp"
unless = { network = "internal", cidr = "198.51.100.0/24" }  # each is one exception
"#,
    );
    let out = emit::emit(&p, Target::Exchange);
    let ps = &out.files[0].1;
    assert!(out.unexpressible.is_empty(), "{:?}", out.unexpressible);
    let lines: Vec<&str> = ps.lines().map(str::trim_start).filter(|l| l.starts_with("New-ClientAccessRule")).collect();
    assert_eq!(lines.len(), 1, "{ps}");
    let l = lines[0];
    assert!(l.contains(" -Name 'casguard: admin center from inside only' "), "{l}");
    assert_eq!(ps_list(l, "Action"), ["DenyAccess"]);
    assert_eq!(ps_list(l, "AnyOfProtocols"), ["ExchangeAdminCenter"]);
    assert!(!l.contains("-AnyOfClientIPAddressesOrRanges"), "{l}");
    let except = ps_list(l, "ExceptAnyOfClientIPAddressesOrRanges");
    for net in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "198.51.100.0/24"] {
        assert!(except.iter().any(|e| e == net), "{net} missing from {except:?}");
    }
    assert_eq!(ps_list(l, "Priority"), ["1"]);
    // Run again, the rule that exists is set to the same, and a list the
    // rule does not have is emptied.
    let set = ps.lines().map(str::trim_start).find(|l| l.starts_with("Set-ClientAccessRule")).expect(ps);
    assert!(set.starts_with("Set-ClientAccessRule -Identity 'casguard: admin center from inside only' "), "{set}");
    assert_eq!(ps_list(set, "AnyOfClientIPAddressesOrRanges"), ["$null"]);
    assert_eq!(ps_list(set, "ExceptAnyOfClientIPAddressesOrRanges"), except);
    assert_eq!(ps_list(set, "Priority"), ["1"]);
    assert!(!ps.contains("WARNING"), "{ps}");
    // The built-in network was written out, and the output says so.
    assert!(ps.contains("# note: network 'internal' written as its built-in prefixes"), "{ps}");
}

#[test]
fn client_access_rule_with_positive_addresses_and_both_protocols() {
    let p = policy(
        "[[rule]]\nname = \"no admin from the lab\"\naction = \"deny\"\nprotocol = [\"ecp\", \"powershell\"]\ncidr = [\"203.0.113.0/24\", \"2001:db8::/32\"]\n",
    );
    let out = emit::emit(&p, Target::Exchange);
    assert!(out.unexpressible.is_empty(), "{:?}", out.unexpressible);
    let ps = &out.files[0].1;
    let l = ps.lines().map(str::trim_start).find(|l| l.starts_with("New-ClientAccessRule")).expect(ps);
    assert_eq!(ps_list(l, "AnyOfProtocols"), ["ExchangeAdminCenter", "RemotePowerShell"]);
    assert_eq!(ps_list(l, "AnyOfClientIPAddressesOrRanges"), ["203.0.113.0/24", "2001:db8::/32"]);
    // Restricted to addresses: no lock-out warning.
    assert!(!ps.contains("WARNING"), "{ps}");

    // Priorities follow the file, counting only the rules written.
    let p = policy(
        "[[rule]]\nname = \"a\"\naction = \"deny\"\nprotocol = \"ecp\"\ncidr = \"203.0.113.7\"\n\
         [[rule]]\nname = \"b\"\naction = \"deny\"\nprotocol = \"ecp\"\nuser = \"x\"\n\
         [[rule]]\nname = \"c\"\naction = \"deny\"\nprotocol = \"powershell\"\ncidr = \"203.0.113.8\"\n",
    );
    let out = emit::emit(&p, Target::Exchange);
    let prio: Vec<Vec<String>> = out.files[0]
        .1
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("New-ClientAccessRule"))
        .map(|l| ps_list(l, "Priority"))
        .collect();
    assert_eq!(prio, [["1"], ["2"]]);
    assert_eq!(unexpressible(&p, Target::Exchange), ["b"]);
}

#[test]
fn no_client_access_rule_for_ews() {
    let p = policy(
        "[[rule]]\nname = \"ews from outside\"\naction = \"deny\"\nprotocol = \"ews\"\nunless = { network = \"internal\" }\n",
    );
    let out = emit::emit(&p, Target::Exchange);
    assert!(!out.files[0].1.contains("ClientAccessRule"), "{}", out.files[0].1);
    assert_eq!(out.unexpressible.len(), 1, "{:?}", out.unexpressible);
    assert_eq!(out.unexpressible[0].rule, "ews from outside");
    assert!(
        out.unexpressible[0].reason.contains("ExchangeAdminCenter and RemotePowerShell"),
        "{:?}",
        out.unexpressible
    );
    // Mixing EWS into an ECP rule is reported too, never half-written.
    let p = policy(
        "[[rule]]\nname = \"mixed\"\naction = \"deny\"\nprotocol = [\"ecp\", \"ews\"]\nnetwork = \"external\"\n",
    );
    let out = emit::emit(&p, Target::Exchange);
    assert!(!out.files[0].1.contains("New-ClientAccessRule"));
    assert_eq!(unexpressible(&p, Target::Exchange), ["mixed"]);
    assert!(out.unexpressible[0].reason.contains("split the rule"), "{:?}", out.unexpressible);
}

#[test]
fn client_access_rule_limits_are_reported() {
    let cases = [
        ("user = \"alice\"", "Exchange Online"),
        ("network = \"external\"", "no fixed address list"),
        ("user_agent = { contains = \"curl\" }", "protocol and client address"),
    ];
    for (cond, why) in cases {
        let p = policy(&format!("[[rule]]\nname = \"r\"\naction = \"deny\"\nprotocol = \"powershell\"\n{cond}\n"));
        let out = emit::emit(&p, Target::Exchange);
        assert!(!out.files[0].1.contains("New-ClientAccessRule"), "{cond}");
        assert_eq!(out.unexpressible.len(), 1, "{cond}: {:?}", out.unexpressible);
        assert!(out.unexpressible[0].reason.contains(why), "{cond}: {:?}", out.unexpressible);
    }
}

#[test]
fn powershell_for_everyone_carries_the_lockout_warning() {
    let p = policy("[[rule]]\nname = \"no remote shell\"\naction = \"deny\"\nprotocol = \"powershell\"\n");
    let out = emit::emit(&p, Target::Exchange);
    assert!(out.unexpressible.is_empty(), "{:?}", out.unexpressible);
    let ps = &out.files[0].1;
    let lines: Vec<&str> = ps.lines().map(str::trim_start).collect();
    let at = lines.iter().position(|l| l.starts_with("New-ClientAccessRule")).expect(ps);
    // Above the `if` that creates the rule or sets it.
    assert!(lines[at - 1].starts_with("if (-not (Get-ClientAccessRule"), "{ps}");
    assert!(lines[at - 2].starts_with("# WARNING:") && lines[at - 2].contains("locks administrators out"), "{ps}");
    assert_eq!(ps_list(lines[at], "AnyOfProtocols"), ["RemotePowerShell"]);
    // No allow rule is invented.
    assert!(!ps.contains("AllowAccess"), "{ps}");
}

/// A request filtering section is written whole, each collection cleared:
/// the file says that this drops what IIS's defaults put there.
#[test]
fn whole_request_filtering_sections_say_they_replace_the_defaults() {
    let text = |name: &str| {
        let out = emit::emit(&example(name), Target::Iis);
        out.files.iter().find(|(n, _)| n == "applicationHost.xml").map(|(_, t)| t.clone()).unwrap()
    };
    let host = text("mailbox-and-iis-settings.toml");
    assert!(host.contains("<fileExtensions allowUnlisted=\"true\">\n            <clear />"), "{host}");
    assert!(host.contains("IIS's default denied extensions and hidden segments included"), "{host}");
    assert!(!text("outlook-mobile-lockdown.toml").contains("<requestFiltering>"));
    assert!(!text("outlook-mobile-lockdown.toml").contains("default denied extensions"));
}

#[test]
fn a_built_in_network_in_nginx_says_how_to_write_it() {
    let p = policy("[[rule]]\nname = \"outside\"\naction = \"deny\"\nprotocol = \"ecp\"\nnetwork = \"external\"\n");
    let out = emit::emit(&p, Target::Nginx);
    assert_eq!(out.unexpressible.len(), 1);
    assert!(
        out.unexpressible[0].reason.ends_with("name the addresses with cidr or [ranges]"),
        "{:?}",
        out.unexpressible
    );
}
