//! `policy::import`: exports and IIS configuration in, a policy that decides
//! as they do out. Fixtures: `tests/data/import/` (cmdlet output as
//! documented) and `tests/data/exchange-config/` (real Exchange 2019 files).

mod common;

use std::path::{Path, PathBuf};

use common::traffic::{generated, people};
use common::*;
use exchange::{AuthType, Protocol, Request};
use policy::import::{import_folder, Imported};
use policy::{evaluate, Action, ReadyPolicy};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data").join(rel)
}

fn ready(imported: &Imported) -> ReadyPolicy {
    ready_policy(in_force(imported))
}

fn import(dir: &Path) -> (Imported, ReadyPolicy) {
    import_folder(dir, "Default Web Site")
        .map(|i| {
            let p = ready(&i);
            (i, p)
        })
        .unwrap_or_else(|e| panic!("{e}"))
}

/// (action, status, substatus)
fn decide(p: &ReadyPolicy, r: &Request) -> (Action, u16, u16) {
    let d = evaluate(p, r);
    (d.action, d.status, d.substatus)
}

const ALLOW: (Action, u16, u16) = (Action::Allow, 0, 0);

fn eas_req(user: &str, ua: &str, device_type: &str, device_id: &str) -> Request {
    let mut r = eas("Sync", device_id, device_type, ua, user);
    r.query = format!("Cmd=Sync&User={user}&DeviceId={device_id}&DeviceType={device_type}");
    r
}

#[test]
fn documented_exports_and_configuration_import_and_decide_as_set() {
    let (imported, p) = import(&data("import/contoso"));
    // Every file was read as what it is.
    let kinds: Vec<&str> = imported.sources.iter().map(|(_, w)| w.as_str()).collect();
    for want in [
        "Get-OrganizationConfig (JSON",
        "Get-CASMailbox (CSV, 8 records)",
        "Get-ActiveSyncOrganizationSettings (CSV",
        "Get-ActiveSyncDeviceAccessRule (JSON, 5 records)",
        "Get-AuthenticationPolicy (CSV, 3 records)",
        "Get-User (JSON, 4 records)",
        "web.config of Default Web Site/EWS",
        "applicationHost.config",
    ] {
        assert!(kinds.iter().any(|k| k.starts_with(want)), "{want} in {kinds:?}");
    }
    // One setting cannot be imported exactly, and it is named with its line.
    let inexact: Vec<String> = imported.inexact.iter().map(|n| format!("{} {}", n.source, n.what)).collect();
    assert_eq!(inexact, ["applicationHost.config:76 IP restriction for the domain 'scanner.example'"]);

    // Per-mailbox switches, under the sign-in names from Get-User.
    let eas_of = |u: &str| eas_req(u, "Apple-iPhone/1.0", "iPhone", "APPLE0001");
    assert_eq!(decide(&p, &eas_of("anna.smith")), (Action::Deny, 403, 0));
    assert_eq!(decide(&p, &eas_of("jdoe")), ALLOW);
    let mapi = |u: &str| at(Protocol::Mapi, "/mapi/emsmdb/", u, "Microsoft Office/16.0");
    let rpc = |u: &str| at(Protocol::Rpc, "/rpc/rpcproxy.dll", u, "MSRPC");
    assert_eq!((decide(&p, &mapi("mmiller")).0, decide(&p, &rpc("mmiller")).0), (Action::Deny, Action::Allow));
    assert_eq!((decide(&p, &mapi("pbrown")).0, decide(&p, &rpc("pbrown")).0), (Action::Deny, Action::Deny));
    assert_eq!(decide(&p, &at(Protocol::Owa, "/owa/", "sjones", "Mozilla/5.0")).0, Action::Deny);
    // EWS: the organization's allow list, Outlook's switch, a mailbox's own.
    let ews = |u: &str, ua: &str| decide(&p, &at(Protocol::Ews, "/EWS/Exchange.asmx", u, ua)).0;
    assert_eq!(ews("jdoe", "Microsoft Office Outlook 16.0"), Action::Allow);
    assert_eq!(ews("jdoe", "Outlook-iOS/2.0"), Action::Allow);
    assert_eq!(ews("jdoe", "Apple Mail"), Action::Deny);
    assert_eq!(ews("jdoe", "ExchangeServicesClient/0.0.0.0 MicrosoftNinja Teams"), Action::Allow);
    assert_eq!(ews("lgarcia", "Microsoft Office Outlook 16.0"), Action::Deny);
    assert_eq!(ews("mobilepilot", "ExchangeServicesClient/0.0.0.0 MicrosoftNinja Teams"), Action::Deny);
    // ActiveSync device access: Quarantine by default, allow and block rules, personal lists.
    assert_eq!(decide(&p, &eas_req("jdoe", "Android-SM-A515F/1.0", "SAMSUNG", "SAM0001")), (Action::Deny, 403, 0));
    assert_eq!(decide(&p, &eas_req("jdoe", "Outlook-iOS/2.0", "OutlookService", "OS0001")), ALLOW);
    assert_eq!(decide(&p, &eas_req("jdoe", "Outlook-iOS-Android/1.0", "Outlook", "OL0001")), (Action::Deny, 403, 0));
    assert_eq!(decide(&p, &eas_req("mobilepilot", "Outlook-iOS-Android/1.0", "Outlook", "PILOT0001")), ALLOW);
    assert_eq!(decide(&p, &eas_req("mobilepilot", "Apple-iPhone/1.0", "iPhone", "OLDPHONE0001")).0, Action::Deny);
    // IIS: the rewrite rule answers before device access does, and lets the pilot through.
    let d = evaluate(&p, &eas_req("jdoe", "Outlook-iOS-Android/1.0", "Outlook", "OL0001"));
    assert!(p.decided_by(&d).starts_with("url_rewrite /Microsoft-Server-ActiveSync"), "{}", p.decided_by(&d));
    let from = |stem: &str, ip: &str| {
        let mut r = at(Protocol::PowerShell, stem, "jdoe", "Microsoft WinRM Client");
        r.peer_ip = Some(ip.parse().unwrap());
        decide(&p, &r)
    };
    assert_eq!(from("/PowerShell", "10.20.1.5"), ALLOW);
    assert_eq!(from("/PowerShell", "192.0.2.9"), (Action::Deny, 403, 503));
    assert_eq!(decide(&p, &at(Protocol::Owa, "/owa/", "jdoe", "zgrab/0.x")), (Action::Deny, 0, 0));
    assert_eq!(decide(&p, &at(Protocol::Owa, "/owa/", "jdoe", "sqlmap/1.5")), (Action::Deny, 404, 19));
    assert_eq!(decide(&p, &at(Protocol::Owa, "/owa/bin/x.dll", "jdoe", "Mozilla/5.0")), (Action::Deny, 404, 8));
    assert_eq!(decide(&p, &at(Protocol::Ecp, "/ecp/web.config", "jdoe", "Mozilla/5.0")), (Action::Deny, 404, 7));
    // The real EWS web.config removes RequestFilteringModule: nothing is filtered there.
    assert_eq!(decide(&p, &at(Protocol::Ews, "/EWS/bin/x.config", "jdoe", "Microsoft Office Outlook 16.0")), ALLOW);
    // Authentication policies: legacy authentication refused for everyone but the exceptions.
    let auth = |u: &str, proto: Protocol, stem: &str, a: AuthType| {
        let mut r = at(proto, stem, u, "Microsoft Office Outlook 16.0");
        r.auth = a;
        decide(&p, &r)
    };
    assert_eq!(auth("jdoe", Protocol::Ews, "/EWS/Exchange.asmx", AuthType::Ntlm), (Action::Deny, 401, 0));
    assert_eq!(auth("jdoe", Protocol::Ews, "/EWS/Exchange.asmx", AuthType::OAuth), ALLOW);
    assert_eq!(auth("jdoe", Protocol::Ews, "/EWS/Exchange.asmx", AuthType::Unknown), ALLOW);
    let mut pilot = eas_req("mobilepilot", "Outlook-iOS/2.0", "OutlookService", "OS0002");
    pilot.auth = AuthType::Bearer;
    assert_eq!(decide(&p, &pilot), (Action::Deny, 401, 0));
    pilot.auth = AuthType::Basic;
    assert_eq!(decide(&p, &pilot), ALLOW);
}

#[test]
fn a_real_organization_config_export_imports() {
    let (imported, p) = import(&data("config/E19-GetOrganizationConfig.xml"));
    assert_eq!(imported.sources[0].1, "Get-OrganizationConfig (CliXML, 1 records)");
    // EWS settings all $null: Exchange checks nothing.
    assert!(imported.policy_text.contains("[ews_access]\n"));
    assert_eq!(decide(&p, &at(Protocol::Ews, "/EWS/Exchange.asmx", "jdoe", "Apple Mail")), ALLOW);
    // The default authentication policy is named, but its settings were not exported.
    assert_eq!(imported.inexact.len(), 1, "{:?}", imported.inexact);
    assert!(imported.inexact[0].what.contains("OrgWideDefault"));
}

fn copy(files: &[&str], names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (f, n) in files.iter().zip(names) {
        std::fs::copy(data(f), dir.path().join(n)).unwrap();
    }
    dir
}

#[test]
fn real_exchange_2019_iis_configuration_imports() {
    let dir = copy(
        &[
            "exchange-config/E19-applicationHost.config",
            "exchange-config/E19-DefaultWebSite_web.config",
            "exchange-config/E19-DefaultWebSite-EAS_web.config",
            "exchange-config/E19-DefaultWebSite-EWS_web.config",
            "exchange-config/E19-ExchangeBackEnd-EAS_web.config",
        ],
        &[
            "applicationHost.config",
            "E19-DefaultWebSite_web.config",
            "E19-DefaultWebSite-EAS_web.config",
            "E19-DefaultWebSite-EWS_web.config",
            "E19-ExchangeBackEnd-EAS_web.config",
        ],
    );
    let (imported, p) = import(dir.path());
    assert!(imported.inexact.is_empty(), "{:?}", imported.inexact);
    let get = |stem: &str| {
        let r = at(exchange::protocol::protocol_of(stem), stem, "jdoe", "Mozilla/5.0");
        decide(&p, &r)
    };
    // Server-level request filtering holds in the applications that keep the module.
    assert_eq!(get("/owa/auth/web.config"), (Action::Deny, 404, 7));
    assert_eq!(get("/ecp/bin/Microsoft.Exchange.dll"), (Action::Deny, 404, 8));
    assert_eq!(get("/Autodiscover/x.cs"), (Action::Deny, 404, 7));
    assert_eq!(get("/owa/auth/logon.aspx"), ALLOW);
    // The site root, ActiveSync and EWS remove RequestFilteringModule in their web.config.
    assert_eq!(get("/web.config"), ALLOW);
    assert_eq!(get("/Microsoft-Server-ActiveSync/web.config"), ALLOW);
    assert_eq!(get("/EWS/bin/x.config"), ALLOW);
    // The back end's web.config is another site's.
    assert!(imported.info.iter().all(|n| !n.what.contains("Back End") || n.what.contains("not imported")));
}

#[test]
fn a_real_ip_filter_in_another_site_or_without_its_module_decides_nothing() {
    let dir = copy(&["exchange-config/E19-IPFilter-applicationHost.config"], &["applicationHost.config"]);
    let (front, p) = import(dir.path());
    assert!(front.info.iter().any(|n| n.what.contains("other sites than 'Default Web Site'")), "{:?}", front.info);
    assert!(!front.policy_text.contains("[[ip_restrictions]]"));
    let mut r = at(Protocol::Ews, "/EWS/Exchange.asmx", "jdoe", "x");
    r.peer_ip = Some("192.0.2.1".parse().unwrap());
    assert_eq!(decide(&p, &r), ALLOW);
    // Read for the back end, the filter is there, but IIS has no IpRestrictionModule to run it.
    let back = import_folder(dir.path(), "Exchange Back End").unwrap();
    assert!(back.info.iter().any(|n| n.what.contains("IpRestrictionModule is not installed")), "{:?}", back.info);
    let pb = ready(&back);
    assert_eq!(decide(&pb, &r), ALLOW);
    // Two servers' files in one folder are read as one, and said so.
    std::fs::copy(data("exchange-config/E19-applicationHost.config"), dir.path().join("applicationHost2.config"))
        .unwrap();
    let both = import_folder(dir.path(), "Default Web Site").unwrap();
    assert!(both.inexact.iter().any(|n| n.what == "several applicationHost.config files"), "{:?}", both.inexact);
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
fn what_cannot_be_imported_exactly_is_named_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Export-Csv of a list without -join writes its type name.
    write(
        d,
        "cas.csv",
        b"\"SamAccountName\",\"ActiveSyncEnabled\",\"OWAEnabled\",\"ActiveSyncBlockedDeviceIDs\",\"MAPIBlockOutlookExternalConnectivity\"\n\
          \"jdoe\",\"True\",\"True\",\"System.Collections.ArrayList\",\"True\"\n\
          \"asmith\",\"Ture\",\"True\",\"\",\"False\"\n",
    );
    // ConvertTo-Json in Windows PowerShell writes enums as numbers.
    write(d, "org.json", br#"{"EwsEnabled": true, "EwsApplicationAccessPolicy": 1, "MapiHttpEnabled": true}"#);
    write(
        d,
        "Contoso-owa_web.config",
        br#"<configuration><system.webServer><rewrite><rules>
<rule name="cookie"><match url=".*"/><conditions><add input="{HTTP_COOKIE}" pattern="x"/></conditions><action type="AbortRequest"/></rule>
<rule name="move"><match url="^old/(.*)"/><action type="Rewrite" url="new/{R:1}"/></rule>
</rules></rewrite></system.webServer></configuration>"#,
    );
    write(d, "unplaced.config", b"<configuration><system.webServer/></configuration>");
    let imported = import_folder(d, "Contoso").unwrap();
    let said: Vec<String> =
        imported.inexact.iter().map(|n| format!("{}: {}: {}", n.source, n.what, n.reason)).collect();
    let has = |needle: &str| said.iter().any(|s| s.contains(needle));
    assert!(has("cas.csv:2: ActiveSyncBlockedDeviceIDs of jdoe: the export holds the list's type name"), "{said:#?}");
    assert!(has("MAPIBlockOutlookExternalConnectivity of jdoe"), "{said:#?}");
    // A value that is no boolean: named as the export holds it, and what is assumed.
    assert!(
        has("cas.csv:3: ActiveSyncEnabled of asmith: 'Ture' is not True, False or empty: taken as not set"),
        "{said:#?}"
    );
    assert!(has("org.json: EwsApplicationAccessPolicy of the record: written as the number 1"), "{said:#?}");
    assert!(has("URL Rewrite rule 'cookie': condition input '{HTTP_COOKIE}'"), "{said:#?}");
    assert!(has("URL Rewrite rule 'move': it rewrites the URL"), "{said:#?}");
    assert!(has("unplaced.config: this web.config: casguard cannot tell which virtual directory"), "{said:#?}");
    // What could be read still decides.
    let p = ready(&imported);
    assert_eq!(decide(&p, &at(Protocol::Ews, "/EWS/Exchange.asmx", "jdoe", "Apple Mail")), ALLOW);
    // Malformed input is an error naming the file and line.
    write(d, "bad.json", b"[\n{\"Name\": }\n]");
    let e = import_folder(d, "Contoso").unwrap_err();
    assert_eq!((e.to_string().starts_with("bad.json:2:"), e.line()), (true, Some(2)), "{e}");
}

#[test]
fn csv_lists_json_shapes_and_encodings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.Management.CASMailbox\r\n\
               \"Name\",\"SamAccountName\",\"ActiveSyncEnabled\",\"OWAEnabled\",\"ActiveSyncBlockedDeviceIDs\"\r\n\
               \"A\",\"a1\",\"True\",\"True\",\"DEV1;DEV2\"\r\n\"B\",\"b1\",\"True\",\"True\",\"DEV3\r\nDEV4\"\r\n";
    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(csv.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    write(d, "cas.csv", &utf16);
    write(
        d,
        "rules.json",
        br#"{"value":[{"Characteristic":"DeviceType","QueryString":"Outlook","AccessLevel":"Block"}],"Count":1}"#,
    );
    // Logs beside the exports are left to audit, unread.
    write(d, "u_ex261102.log", b"#Software: Microsoft Internet Information Services 10.0\n");
    write(d, "HttpProxy_2026110200-1.LOG", b"#Software: Microsoft Exchange Server\n");
    let (imported, p) = import(d);
    // The properties this export left out are named, once.
    let [missing] = imported.inexact.as_slice() else { panic!("{:?}", imported.inexact) };
    assert!(
        missing.what.starts_with("EwsEnabled, EwsApplicationAccessPolicy")
            && missing.what.ends_with("(Get-CASMailbox)")
    );
    assert!(!missing.what.contains("ActiveSyncBlockedDeviceIDs"), "{}", missing.what);
    assert!(imported.info.iter().any(|n| n.what == "2 log files left to audit and simulate"), "{:?}", imported.info);
    for (user, id) in [("a1", "DEV2"), ("b1", "DEV4")] {
        assert_eq!(decide(&p, &eas_req(user, "Apple-iPhone/1.0", "iPhone", id)).0, Action::Deny, "{user} {id}");
    }
    assert_eq!(decide(&p, &eas_req("a1", "Apple-iPhone/1.0", "iPhone", "DEV4")), ALLOW);
    assert_eq!(decide(&p, &eas_req("a1", "x", "Outlook", "X1")).0, Action::Deny);
}

/// Exports of the settings loggen's truth knows the answer for, written the
/// way the cmdlets write them, decide its traffic as the truth says.
#[test]
fn imported_settings_decide_generated_traffic_as_the_truth_says() {
    let g = generated();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Set-OrganizationConfig -EwsApplicationAccessPolicy EnforceAllowList -EwsAllowOutlook $true -EwsAllowMacOutlook $true
    write(
        d,
        "Get-OrganizationConfig.json",
        br#"{"Name":"Contoso","EwsEnabled":true,"EwsApplicationAccessPolicy":"EnforceAllowList","EwsAllowList":[],
            "EwsBlockList":null,"EwsAllowOutlook":true,"EwsAllowMacOutlook":true,"EwsAllowEntourage":null,"MapiHttpEnabled":true}"#,
    );
    // A filtering rule in ActiveSync's web.config, as `casguard emit --target iis` writes it.
    write(
        d,
        "DefaultWebSite-EAS_web.config",
        br#"<?xml version="1.0" encoding="UTF-8"?>
<configuration><system.webServer><security><requestFiltering><filteringRules>
<filteringRule name="Outlook mobile" scanUrl="false" scanQueryString="false"><scanHeaders><add requestHeader="User-Agent"/></scanHeaders>
<denyStrings><add string="Outlook-iOS-Android/1.0"/></denyStrings></filteringRule>
</filteringRules></requestFiltering></security></system.webServer></configuration>"#,
    );
    // Two mailboxes of the generated cast with switches off: one that syncs a
    // phone, one that runs Outlook.
    let user_of = |f: &dyn Fn(&Request) -> bool, not: &str| {
        let r = people(&g.requests).find(|r| f(r) && !r.user.is_empty() && r.user != not).expect("such a user");
        r.user.clone()
    };
    let no_eas = user_of(&|r| r.protocol == Protocol::ActiveSync, "");
    let no_mapi = user_of(&|r| matches!(r.protocol, Protocol::Mapi | Protocol::Rpc), &no_eas);
    let (no_eas, no_mapi) = (no_eas.as_str(), no_mapi.as_str());
    let csv = format!(
        "\"SamAccountName\",\"ActiveSyncEnabled\",\"OWAEnabled\",\"MAPIEnabled\",\"MapiHttpEnabled\",\"MAPIBlockOutlookRpcHttp\"\n\
         \"{no_eas}\",\"False\",\"True\",\"True\",\"\",\"False\"\n\"{no_mapi}\",\"True\",\"True\",\"True\",\"False\",\"True\"\n"
    );
    write(d, "Get-CASMailbox.csv", csv.as_bytes());
    let (imported, p) = import(d);
    // These exports hold only what the test sets: the rest is named as not exported.
    assert!(
        imported.inexact.iter().all(|n| n.reason.contains("does not have these properties")),
        "{:?}",
        imported.inexact
    );

    let mut ews_denied = 0;
    let mut iis_denied = 0;
    let mut switched_off = [0u64; 2];
    for r in people(&g.requests) {
        let d = evaluate(&p, r);
        let by = p.decided_by(&d);
        if by.starts_with("ews_access") {
            ews_denied += 1;
        }
        if by.starts_with("request_filtering /Microsoft-Server-ActiveSync") {
            iis_denied += 1;
        }
        // The switches deny exactly their mailbox's requests of their protocols.
        let switched = (r.user == no_eas && r.protocol == Protocol::ActiveSync)
            || (r.user == no_mapi && matches!(r.protocol, Protocol::Mapi | Protocol::Rpc));
        assert_eq!(by.starts_with("mailbox_protocols"), switched, "{} {:?} {}", r.user, r.protocol, by);
        if switched {
            switched_off[usize::from(r.user == no_mapi)] += 1;
        }
    }
    assert!(switched_off[0] > 0 && switched_off[1] > 0, "{switched_off:?}");
    let truth = &g.truth.policies;
    assert!(truth.ews_allow_outlook_only.denied_requests > 0 && truth.iis_block_outlook_ua.denied_requests > 0);
    assert_eq!(ews_denied, truth.ews_allow_outlook_only.denied_requests);
    assert_eq!(iis_denied, truth.iis_block_outlook_ua.denied_requests);
}

/// Damaged files are imported or refused with an error, never a panic, and
/// what is imported always compiles (the `policy_import` fuzz target does
/// the same with any bytes).
#[test]
fn damaged_exports_are_refused_or_read_never_a_crash() {
    let dir = data("import/contoso");
    let mut originals: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x != "md"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    originals.sort();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut refused = 0;
    for round in 0..240 {
        let (name, bytes) = &originals[round % originals.len()];
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % b.len().max(1);
            match next() % 4 {
                0 => b.truncate(at),
                1 if !b.is_empty() => b[at] = next() as u8,
                2 if !b.is_empty() => {
                    b.remove(at);
                }
                _ => b.insert(at.min(b.len()), b"<\",\n{[&%'\\"[(next() % 9) as usize]),
            }
        }
        match policy::import::import_files("damaged", vec![(name.clone(), b)], "Default Web Site") {
            Ok(i) => {
                ready(&i);
            }
            Err(e) => {
                assert!(!e.to_string().contains("does not compile"), "{name}: {e}");
                refused += 1;
            }
        }
    }
    assert!(refused > 0);
}

/// The exports, or their folder, given where the policy they import to goes
/// (`posture --policy`, `simulate --policy`): said as such, not as an I/O or
/// TOML error.
#[test]
fn exports_given_as_a_policy_say_what_reads_them() {
    let contoso = data("import/contoso");
    for (path, what) in [
        (contoso.clone(), "a folder"),
        (contoso.join("Get-CASMailbox.csv"), "not UTF-8 text (an export in UTF-16?)"),
        (contoso.join("Get-OrganizationConfig.json"), "XML or JSON"),
        (contoso.join("applicationHost.config"), "XML or JSON"),
    ] {
        let e = policy::Policy::load(&path).unwrap_err().to_string();
        let want = format!("{}: {what}, not a policy file: `casguard policy import FOLDER", path.display());
        assert!(e.starts_with(&want), "{e}");
    }
}
