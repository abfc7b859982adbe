//! People's traffic in real public IIS lines (tests/data/iis, with their
//! sources and what each line shows in tests/data/SOURCES-real.md): users,
//! clients and protocols as an Exchange admin reads them, sign-ins that
//! failed and the ones that only look as if they had, servers that failed
//! people. (The real attacks are in `attacks.rs`.)

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{audit, casguard, counts, ok, strings, summary, text, workspace};

fn sample(name: &str) -> String {
    workspace().join("tests/data/iis").join(name).display().to_string()
}

/// The samples of this module that hold people only.
const PEOPLE_SAMPLES: [&str; 9] = [
    "plaso-iis7-owa.log",
    "msqa-1631357-exchange-2010-emc-powershell-500.log",
    "msqa-1248327-outlook-autodiscover-challenge-then-200.log",
    "msqa-430572-eas-front-end-no-log.log",
    "ipban-owa-auth-invalid-credentials.log",
    "msqa-228014-owa-sign-in-errorfe.log",
    "msqa-1022693-mac-outlook-ews-401.log",
    "kb2832198-outlook-anywhere-503.log",
    "crowdsec-2063-autodiscover-1326-behind-proxy.log",
];

fn tally(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn finding_kinds(report: &Value) -> Vec<String> {
    report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap().to_string()).collect()
}

/// The one user of a report.
fn only_user(report: &Value) -> &Value {
    let users = report["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    &users[0]
}

/// A device as the tests compare it: (client, requests, [(source, network)]).
type Device = (String, u64, Vec<(String, String)>);

/// Each device of `user`.
fn devices(user: &Value) -> Vec<Device> {
    user["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let sources = d["sources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["ip"].as_str().unwrap().to_string(), s["network"].as_str().unwrap().to_string()))
                .collect();
            (d["client"].as_str().unwrap().to_string(), d["requests"].as_u64().unwrap(), sources)
        })
        .collect()
}

/// plaso's Exchange 2010 sample (IIS 7.0, no `cs(Referer)`): one person on
/// OWA in Chrome, on EWS with Outlook 2010 (its out-of-office call) and on
/// ActiveSync with an iPhone's own mail app; the ActiveSync `User=johndoe`
/// is the same person as the logged `domain.localjohndoe`.
#[test]
fn plaso_exchange_2010_person_on_owa_ews_and_activesync() {
    let report = audit(&[&sample("plaso-iis7-owa.log")], &[]);
    assert_eq!(summary(&report, "lines malformed requests"), [3, 0, 3]);
    assert_eq!(summary(&report, "failed_sign_ins attacks probes"), [0, 0, 0]);
    assert_eq!(counts(&report["protocols"]), tally(&[("activesync", 1), ("ews", 1), ("owa", 1)]));
    assert_eq!(counts(&report["clients"]), tally(&[("browser", 1), ("ios-mail", 1), ("outlook-windows", 1)]));
    let user = only_user(&report);
    assert_eq!(user["user"], "domain.localjohndoe");
    assert!(strings(&user["aliases"]).contains(&"johndoe".to_string()), "{}", user["aliases"]);
    let iphone = user["devices"].as_array().unwrap().iter().find(|d| d["client"] == "ios-mail").expect("the iPhone");
    assert_eq!((iphone["id"].as_str(), iphone["type"].as_str()), (Some("Appl2312SDKJ2313"), Some("iPhone")));
    assert_eq!(counts(&iphone["commands"]), tally(&[("Ping", 1)]));
    let mut devs = devices(user);
    devs.sort();
    assert_eq!(
        devs,
        [
            ("browser".into(), 1, vec![("77.123.22.98".into(), "external".into())]),
            ("ios-mail".into(), 1, vec![("77.123.22.98".into(), "external".into())]),
            ("outlook-windows".into(), 1, vec![("10.10.5.2".into(), "internal".into())]),
        ]
    );
    assert!(finding_kinds(&report).is_empty(), "{:?}", finding_kinds(&report));
}

/// A successful OWA sign-in (`POST /owa/auth.owa` answered 302 with no
/// `LogoffReason`), then OWA failing on the server: the browser is sent to
/// Exchange's own `errorfe.aspx` with a 500. One person, no failed sign-in,
/// and Exchange's error page is no web shell.
#[test]
fn owa_sign_in_then_server_error_is_one_person_and_no_attack() {
    let report = audit(&[&sample("msqa-228014-owa-sign-in-errorfe.log")], &[]);
    let s = &report["summary"];
    assert_eq!(summary(&report, "requests anonymous"), [4, 1], "the error page is anonymous");
    assert_eq!(summary(&report, "failed_sign_ins attacks"), [0, 0]);
    assert!(counts(&s["attack_kinds"]).is_empty());
    assert_eq!(counts(&report["protocols"]), tally(&[("owa", 4)]));
    let user = only_user(&report);
    assert_eq!((user["user"].as_str(), user["requests"].as_u64()), (Some("joergs"), Some(3)));
    assert_eq!(devices(user), [("browser".into(), 3, vec![("172.16.48.212".into(), "internal".into())])]);
    assert!(finding_kinds(&report).is_empty(), "{:?}", finding_kinds(&report));
}

/// Outlook Anywhere refused with 503 when ASP.NET's request queue is full
/// (IIS 7.5, no `cs(Referer)`): a person on RPC over HTTP with Outlook whom
/// the server could not serve, not a failed sign-in.
#[test]
fn outlook_anywhere_503_is_a_person_the_server_could_not_serve() {
    let report = audit(&[&sample("kb2832198-outlook-anywhere-503.log")], &[]);
    assert_eq!(summary(&report, "lines malformed requests"), [2, 0, 2]);
    assert_eq!(summary(&report, "failed_sign_ins attacks"), [0, 0]);
    assert_eq!(counts(&report["protocols"]), tally(&[("rpc", 2)]));
    let user = only_user(&report);
    assert!(strings(&user["aliases"]).contains(&"CONTOSO\\user".to_string()), "{}", user["aliases"]);
    assert_eq!(devices(user), [("outlook-windows".into(), 2, vec![("10.0.0.10".into(), "internal".into())])]);
    assert!(finding_kinds(&report).is_empty(), "{:?}", finding_kinds(&report));
}

/// Apple's EWS client answered `401 1 2148074254` (no credentials): a leg
/// of the challenge that the asker sees thousands of a minute while "all of
/// these mac outlook users can logon normaly". Not a failed sign-in; beside
/// a flood of them, a password NTLM turns down (1326) is the one failure.
/// The masked s-ip is reported with its file and line, and the line read.
#[test]
fn no_credentials_challenge_leg_is_not_a_failed_sign_in() {
    let file = sample("msqa-1022693-mac-outlook-ews-401.log");
    let out = ok(casguard(&["audit", "--format", "json", &file]));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("msqa-1022693-mac-outlook-ews-401.log:5") && stderr.contains("10.7x.xx.2x"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary(&report, "requests anonymous malformed"), [1, 1, 0]);
    assert_eq!(summary(&report, "failed_sign_ins"), [0]);
    assert_eq!(counts(&report["protocols"]), tally(&[("ews", 1)]));

    let published = std::fs::read_to_string(&file).unwrap();
    let (header, line) = published.trim_end().rsplit_once('\n').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut body = format!("{header}\n");
    for second in 0..60 {
        for _ in 0..50 {
            let l = line.replace("10.7x.xx.2x", "10.7.1.20").replace("02:43:29", &format!("02:43:{second:02}"));
            body.push_str(&l);
            body.push('\n');
        }
    }
    body.push_str(
        &line
            .replace("10.7x.xx.2x", "10.7.1.20")
            .replace(" - 172.20.1.1 ", " CONTOSO\\jdoe 172.20.1.1 ")
            .replace("401 1 2148074254", "401 1 1326"),
    );
    body.push('\n');
    let flood = dir.path().join("u_ex220902.log");
    std::fs::write(&flood, body).unwrap();
    let report = audit(&[flood.to_str().unwrap()], &[]);
    assert_eq!(summary(&report, "requests malformed"), [3001, 0]);
    assert_eq!(summary(&report, "failed_sign_ins"), [1], "only the password turned down");
    assert!(finding_kinds(&report).iter().all(|k| k != "password-spray" && k != "brute-force"));
}

/// IPBan's OWA line: IIS logged 302, but Exchange's forms authentication
/// turned the password down (`&LogoffReason=NoCookiesGetOrE14AuthPost`, and
/// the browser sent back to `logon.aspx?...&reason=2`). A failed sign-in of
/// the user it names, which makes no person finding; and the line's 16th
/// field, past IIS's defaults, is no reason to call it malformed.
#[test]
fn owa_forms_sign_in_turned_down_is_a_failed_sign_in() {
    let report = audit(&[&sample("ipban-owa-auth-invalid-credentials.log")], &[]);
    assert_eq!(summary(&report, "lines malformed requests"), [1, 0, 1]);
    assert_eq!(summary(&report, "failed_sign_ins attacks"), [1, 0]);
    let user = only_user(&report);
    assert_eq!(strings(&user["aliases"]), ["a@b.net"]);
    assert_eq!(devices(user), [("mobile-browser".into(), 1, vec![("5.6.7.8".into(), "external".into())])]);
    assert!(finding_kinds(&report).is_empty(), "a failed sign-in got no one in: {:?}", finding_kinds(&report));

    // The sign-in of Microsoft Q&A 228014, which got in, stays a success.
    let report = audit(&[&sample("msqa-228014-owa-sign-in-errorfe.log")], &[]);
    assert_eq!(report["summary"]["failed_sign_ins"], 0);
}

/// Every people's sample together, in both formats: no attack, and the
/// table names each user the JSON does.
#[test]
fn real_people_samples_make_no_attack_in_json_or_table() {
    let files: Vec<String> = PEOPLE_SAMPLES.iter().map(|f| sample(f)).collect();
    let paths: Vec<&str> = files.iter().map(String::as_str).collect();
    let report = audit(&paths, &[]);
    assert_eq!(report["summary"]["attacks"], 0);
    assert_eq!(report["summary"]["malformed"], 0);
    let mut args = vec!["audit", "--format", "table"];
    args.extend(&paths);
    let table = text(&ok(casguard(&args)).stdout);
    for user in report["users"].as_array().unwrap() {
        assert!(table.contains(user["user"].as_str().unwrap()), "{} in\n{table}", user["user"]);
    }
    assert!(table.contains("Requests by protocol"), "{table}");
}

#[test]
fn exchange_2019_front_end_activesync_lines_have_no_log_and_a_hop_fills_the_device() {
    // Exchange 2019's front end (Microsoft Q&A 430572): an iPad's Search and
    // SendMail, each line published twice; no `&Log=` on any of them.
    let file = sample("msqa-430572-eas-front-end-no-log.log");
    let published = std::fs::read_to_string(&file).unwrap();
    assert!(!published.contains("&Log="));
    let report = audit(&[&file], &[]);
    assert_eq!(report["summary"]["requests"], 4);
    assert_eq!(
        (report["summary"]["failed_sign_ins"].as_u64(), report["summary"]["attacks"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(report["findings"].as_array().unwrap().is_empty(), "{}", report["findings"]);
    let user = only_user(&report);
    assert_eq!(user["user"], "seanryan");
    let device = &user["devices"][0];
    assert_eq!(
        (device["id"].as_str(), device["client"].as_str()),
        (Some("N273TC3QE567H90G6LH4LTK89G"), Some("ios-mail"))
    );
    assert_eq!(counts(&device["commands"]), tally(&[("Search", 2), ("SendMail", 2)]));
    assert_eq!(device["sources"][0]["network"], "internal");
    assert!(device["model"].is_null() && device["os"].is_null() && device["access"].is_null(), "{device}");

    // Beside it, the back end's hop of the same request (ours, shaped as the
    // public back-end lines of the reference notes: `/Proxy/`, port 444,
    // `PrxFrom`): the device gets what only the back end logged.
    let dir = tempfile::tempdir().unwrap();
    let hop = "#Software: Microsoft Internet Information Services 10.0\n#Fields: date time s-ip cs-method cs-uri-stem \
               cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status \
               time-taken\n2021-06-11 13:58:41 192.168.113.42 POST /Microsoft-Server-ActiveSync/Proxy/default.eas \
               User=seanryan&DeviceId=N273TC3QE567H90G6LH4LTK89G&DeviceType=iPad&Cmd=Search&Log=SC1:1_PrxFrom:192.168.113.41_\
               Ver1:161_DevModel:iPad7C2_DevOS:iOS+14.6_As:AllowedG_Mbx:EX2.contoso.local 444 XXXXXXX\\seanryan \
               192.168.113.41 Apple-iPad7C2/1805.212 - 200 0 0 50\n";
    std::fs::create_dir_all(dir.path().join("W3SVC2")).unwrap();
    std::fs::write(dir.path().join("W3SVC2/u_ex210611.log"), hop).unwrap();
    let both = audit(&[&file, dir.path().to_str().unwrap()], &[]);
    assert_eq!(
        (both["summary"]["requests"].as_u64(), both["summary"]["backend_duplicates"].as_u64()),
        (Some(4), Some(1))
    );
    let device = &only_user(&both)["devices"][0];
    assert_eq!((device["model"].as_str(), device["os"].as_str()), (Some("iPad7C2"), Some("iOS 14.6")), "{device}");
    assert_eq!(device["access"]["state"], "allowed");
}

/// Q&A 1248327 (Exchange 2013 CU23): Outlook 2016's Autodiscover challenged
/// anonymously (`401 1 2148074254`), then signed in the same second. One
/// person on an internal address, the challenge leg anonymous and no failed
/// sign-in.
#[test]
fn outlook_autodiscover_challenge_then_sign_in_is_one_person() {
    let report = audit(&[&sample("msqa-1248327-outlook-autodiscover-challenge-then-200.log")], &[]);
    assert_eq!(summary(&report, "requests anonymous malformed"), [2, 1, 0]);
    assert_eq!(summary(&report, "failed_sign_ins attacks"), [0, 0]);
    assert_eq!(counts(&report["protocols"]), tally(&[("autodiscover", 2)]));
    let user = only_user(&report);
    assert_eq!(user["user"], "test.onpremise");
    assert_eq!(strings(&user["aliases"]), ["CUSTOMER\\test.onpremise"]);
    let internal = vec![("192.168.20.38".to_string(), "internal".to_string())];
    assert_eq!(devices(user), vec![("outlook-windows".to_string(), 1, internal)]);
}

/// A real back-end ActiveSync Ping pair (vscode-xp's test data, published
/// without its `#Fields` line): without one every line is malformed and
/// named; with the fields given, two iPhones of one person, back end only,
/// each from the client address its X-Forwarded-For or c-ip gives.
#[test]
fn headerless_backend_ping_lines_need_fields_and_then_are_one_person() {
    let file = sample("vscode-xp-eas-backend-ping-xff.log");
    let out = ok(casguard(&["audit", "--format", "json", &file]));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["summary"]["malformed"].as_u64(), report["summary"]["requests"].as_u64()), (Some(2), Some(0)));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("vscode-xp-eas-backend-ping-xff.log:1") && stderr.contains("--fields"), "{stderr}");

    let fields = "date time s-sitename s-computername s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username \
                  c-ip cs-version cs(User-Agent) cs(Cookie) cs(Referer) cs-host sc-status sc-substatus \
                  sc-win32-status time-taken X-Forwarded-For";
    let report = audit(&[&file], &["--fields", fields]);
    let s = &report["summary"];
    assert_eq!(summary(&report, "requests malformed attacks"), [2, 0, 0]);
    assert_eq!(s["backend_only"], true);
    assert_eq!(counts(&report["protocols"]), tally(&[("activesync", 2)]));
    let user = only_user(&report);
    assert_eq!(user["user"], "user");
    let mut got = devices(user);
    got.sort();
    let from = |ip: &str| vec![(ip.to_string(), "external".to_string())];
    assert_eq!(
        got,
        vec![("ios-mail".to_string(), 1, from("23.12.22.38")), ("ios-mail".to_string(), 1, from("9.9.5.1"))]
    );
}

/// The one finding of a report.
fn only_finding(report: &Value) -> &Value {
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    &findings[0]
}

/// A real ProxyShell run (Nextron's APTSimulator, from its lab): Exchange's
/// back-end PowerShell reached through `autodiscover.json` with an
/// `X-Rps-CAT` token, by pypsrp (`Python PSRP Client`), and answered 200.
/// An attack that got through, from the address that sent it, and no
/// person: no user, no client, no device.
#[test]
fn proxyshell_powershell_that_got_through_is_an_attack_and_no_person() {
    let file = sample("aptsimulator-proxyshell-powershell.log");
    let report = audit(&[&file], &[]);
    let s = &report["summary"];
    assert_eq!(summary(&report, "lines malformed requests"), [1, 0, 0]);
    assert_eq!(summary(&report, "attacks exploit_attempts"), [1, 1]);
    assert_eq!(counts(&s["attack_kinds"]), tally(&[("exploit", 1)]));
    assert_eq!(summary(&report, "users failed_sign_ins"), [0, 0]);
    assert!(counts(&report["clients"]).is_empty(), "{}", report["clients"]);
    let f = only_finding(&report);
    assert_eq!((f["kind"].as_str(), f["rule"].as_str()), (Some("exploit-attempt"), Some("proxyshell")));
    assert_eq!((f["outcome"].as_str(), f["severity"].as_str()), (Some("succeeded"), Some("high")));
    assert!(f["user"].is_null(), "the token's identity is not a user of this server's traffic: {f}");
    assert_eq!(
        (f["source"]["ip"].as_str(), f["source"]["network"].as_str()),
        (Some("10.255.249.78"), Some("internal"))
    );
    assert_eq!(strings(&f["user_agents"]), ["Python PSRP Client"]);
    assert_eq!(strings(&f["paths"]), ["/autodiscover/autodiscover.json"]);
    // Its forged X-Rps-CAT names the account it ran PowerShell as: RID 500,
    // the built-in Administrator, in the Administrators group (S-1-5-32-544).
    let whom = r"rt-testing.nextron\whatever (S-1-5-21-395643343-2694467620-1557806748-500)";
    assert_eq!(strings(&f["impersonated"]), [whom]);
    assert!(f["summary"].as_str().is_some_and(|s| s.contains(&format!(" as {whom}:"))), "{f}");

    let table = text(&ok(casguard(&["audit", "--format", "table", &file])).stdout);
    assert!(table.contains("proxyshell") && table.contains("10.255.249.78"), "{table}");
    assert!(table.contains(r"as: rt-testing.nextron\whatever"), "{table}");
}

/// CrowdSec's Exchange line (pull request 2063): behind a reverse proxy
/// (c-ip 192.168.2.1) that logs `X-Forwarded-For` `222.222.222.222,
/// 111.111.111.111`, Autodiscover turned down `fba\USER1`'s password
/// (`401 1 1326`). One failed sign-in of that user, from the right-most
/// public address: the one the proxy saw connect; the first one is only
/// what that peer claims. Neither the proxy nor the claim is the source.
#[test]
fn autodiscover_password_turned_down_behind_a_proxy_is_a_failed_sign_in_from_the_proxys_peer() {
    let report = audit(&[&sample("crowdsec-2063-autodiscover-1326-behind-proxy.log")], &[]);
    assert_eq!(summary(&report, "lines malformed requests"), [1, 0, 1]);
    assert_eq!(summary(&report, "failed_sign_ins attacks anonymous"), [1, 0, 0]);
    assert_eq!(counts(&report["protocols"]), tally(&[("autodiscover", 1)]));
    let user = only_user(&report);
    assert_eq!((user["user"].as_str(), strings(&user["aliases"])), (Some("user1"), vec!["fba\\USER1".to_string()]));
    assert_eq!(devices(user), [("mobile-browser".into(), 1, vec![("111.111.111.111".into(), "external".into())])]);
    assert!(finding_kinds(&report).is_empty(), "one failure is no spray: {:?}", finding_kinds(&report));
}

/// ProxyLogon in an HttpProxy log (Neo23x0/signature-base pull request 125,
/// Exchange 2013 CU21, published without its header and with four values
/// redacted): `GET /owa/auth/x.js`, not signed in, `AnchorMailbox`
/// `ServerInfo~localhost/ecp/default.flt?`, `RoutingHint`
/// `X-AnonResource-Backend-Cookie`, `TargetServer` `localhost`, 500. The
/// front end took its back end and path from the cookie (CVE-2021-26855), as
/// Microsoft's `Test-ProxyLogon.ps1` reads such an anchor. Its first 28
/// values are written here in the 2016 CU23 header of the artefacts.help
/// sample, which names those columns as 2013 does; the redacted host and
/// addresses are documentation values. An attack, not a person.
#[test]
fn httpproxy_anchor_naming_a_backend_path_is_proxylogon_not_a_person() {
    let header_file = workspace().join("tests/data/httpproxy/artefacts-help/Owa/HttpProxy_2023010602-1.LOG");
    let published = std::fs::read_to_string(header_file).unwrap();
    let header: Vec<&str> = published.lines().take_while(|l| l.starts_with('#')).collect();
    let names: Vec<&str> = header.last().unwrap().trim_start_matches("#Fields: ").split(',').collect();
    let values = "2021-03-07T15:04:04.546Z,1a51fb75-2f6f-4a40-8129-ff80098494a0,15,0,1395,0,,Owa,mail.example.org,\
                  /owa/auth/x.js,,FBA,false,,,ServerInfo~localhost/ecp/default.flt?,Mozilla/5.0 (Macintosh; Intel Mac \
                  OS X 10_13_6) AppleWebKit/537.36 (KHTML  like Gecko) Chrome/69.0.3497.81 Safari/537.36,203.0.113.9,\
                  EX01,500,500,,GET,Proxy,localhost,0.00.0003.000,CrossRegion,X-AnonResource-Backend-Cookie";
    let values: Vec<&str> = values.split(',').collect();
    assert_eq!(values.len(), 28);
    assert_eq!((names[15], names[27]), ("AnchorMailbox", "RoutingHint"));
    let mut row = vec![""; names.len()];
    row[..28].copy_from_slice(&values);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("HttpProxy_2021030715-1.LOG");
    std::fs::write(&log, format!("{}\n{}\n", header.join("\n"), row.join(","))).unwrap();

    let report = audit(&[log.to_str().unwrap()], &[]);
    assert_eq!(summary(&report, "lines malformed requests"), [1, 0, 0]);
    assert_eq!(summary(&report, "attacks anonymous"), [1, 0]);
    let f = only_finding(&report);
    assert_eq!((f["kind"].as_str(), f["rule"].as_str()), (Some("exploit-attempt"), Some("proxylogon")));
    assert_eq!(f["outcome"], "failed", "500: the status is the outcome");
    assert_eq!(f["source"]["ip"], "203.0.113.9");

    // Its IIS line (ours: the cookie is not logged there, and the front end
    // appends `cafeReqId`, the HttpProxy `RequestId`) is an anonymous
    // request of a .js file alone; beside the HttpProxy line, the same attack.
    let iis = "#Software: Microsoft Internet Information Services 10.0\n#Fields: date time s-ip cs-method cs-uri-stem \
               cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status \
               time-taken\n2021-03-07 15:04:04 10.0.0.5 GET /owa/auth/x.js \
               &CorrelationID=<empty>;&cafeReqId=1a51fb75-2f6f-4a40-8129-ff80098494a0; 443 - 203.0.113.9 \
               Mozilla/5.0+(Macintosh;+Intel+Mac+OS+X+10_13_6)+AppleWebKit/537.36+(KHTML,+like+Gecko)+\
               Chrome/69.0.3497.81+Safari/537.36 - 500 0 0 382\n";
    let iis_log = dir.path().join("u_ex210307.log");
    std::fs::write(&iis_log, iis).unwrap();
    let alone = audit(&[iis_log.to_str().unwrap()], &[]);
    assert_eq!(summary(&alone, "requests attacks"), [1, 0]);
    let both = audit(&[dir.path().to_str().unwrap()], &[]);
    assert_eq!(summary(&both, "requests iis_duplicates attacks"), [0, 1, 1]);
    assert_eq!(only_finding(&both)["rule"], "proxylogon");

    // The same line with the anchor of a signed-in person's request stays a person's.
    let person = row.iter().enumerate().map(|(i, v)| if i == 15 { "ServerInfo~EX01.contoso.com" } else { v });
    std::fs::write(&log, format!("{}\n{}\n", header.join("\n"), person.collect::<Vec<_>>().join(","))).unwrap();
    let report = audit(&[log.to_str().unwrap()], &[]);
    assert_eq!(summary(&report, "requests attacks"), [1, 0]);
}

/// Microsoft Q&A 1631357: Exchange 2010 SP1's management console
/// (`clientApplication=EMC;ExchClientVer=14.1.218.6`) reaching `/PowerShell`
/// on port 80 as `CONTOSO\Administrator` with `Microsoft WinRM Client`,
/// answered 500 after three minutes each (IIS 7.5, 14 fields). The asker put
/// `ip_address` for both addresses. An administrator on remote PowerShell
/// whom the server failed: signed in (IIS logged the user), so no failed
/// sign-in, and no attack (ProxyShell reaches PowerShell through
/// `autodiscover.json` without signing in). The placeholders are named with
/// their lines, and no source address is made up for them.
#[test]
fn exchange_2010_console_on_remote_powershell_is_an_administrator_the_server_failed() {
    let file = sample("msqa-1631357-exchange-2010-emc-powershell-500.log");
    let out = ok(casguard(&["audit", "--format", "json", &file]));
    let stderr = text(&out.stderr);
    for line in 5..=8 {
        let at = format!("msqa-1631357-exchange-2010-emc-powershell-500.log:{line}");
        assert!(stderr.contains(&at), "{at} in {stderr}");
    }
    assert!(stderr.contains("c-ip \"ip_address\""), "the source, which the report reads: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary(&report, "lines malformed requests anonymous"), [4, 0, 4, 0]);
    assert_eq!(summary(&report, "failed_sign_ins attacks exploit_attempts probes machine"), [0, 0, 0, 0, 0]);
    assert_eq!(counts(&report["protocols"]), tally(&[("powershell", 4)]));
    assert_eq!(counts(&report["clients"]), tally(&[("remote-powershell", 4)]));
    let user = only_user(&report);
    assert_eq!(
        (user["user"].as_str(), strings(&user["aliases"])),
        (Some("administrator"), vec!["CONTOSO\\Administrator".to_string()])
    );
    assert_eq!(devices(user), [("remote-powershell".into(), 4, vec![])], "no address for `ip_address`");
    assert!(finding_kinds(&report).is_empty(), "{:?}", finding_kinds(&report));
}

/// The Exchange team's hybrid agent troubleshooting post (Japanese
/// translation, jpmessaging/blog): Exchange Online's mailbox moves reach
/// `POST /EWS/mrsproxy.svc` as the migration endpoint's account
/// `miry\administrator` and get `503 0 0`. The server failed a signed-in
/// caller: no failed sign-in, and Exchange's own MRS proxy handler is no web
/// shell. One EWS request of that account, from the address logged.
#[test]
fn mrs_proxy_503_is_a_signed_in_migration_the_server_failed() {
    let file = sample("jpmessaging-hybrid-agent-mrsproxy-503.log");
    let report = audit(&[&file], &[]);
    assert_eq!(summary(&report, "lines malformed requests anonymous"), [1, 0, 1, 0]);
    assert_eq!(summary(&report, "failed_sign_ins attacks probes machine"), [0, 0, 0, 0]);
    assert_eq!(counts(&report["protocols"]), tally(&[("ews", 1)]));
    let user = only_user(&report);
    assert_eq!(
        (user["user"].as_str(), strings(&user["aliases"])),
        (Some("administrator"), vec!["miry\\administrator".to_string()])
    );
    let sources: Vec<(String, String)> = devices(user).into_iter().flat_map(|(_, _, s)| s).collect();
    assert_eq!(sources, [("4.43.0.1".to_string(), "external".to_string())]);
    // Known by its page: Exchange's Mailbox Replication Service, not an
    // "Other EWS application" of the administrator's, so no ews-non-outlook.
    assert_eq!(counts(&report["clients"]), tally(&[("exchange-mrs", 1)]));
    let kinds = finding_kinds(&report);
    assert!(kinds.is_empty(), "{kinds:?}");
}

/// Microsoft Q&A 108027 (Exchange 2019 CU7, hybrid): Exchange Online's
/// `Test-OrganizationRelationship` reaching the on-premises Autodiscover
/// WS-Security endpoint from Microsoft's own address, anonymous in IIS (the
/// token is in the SOAP body), answered `401 0 0`. A cloud service Exchange
/// turned down: its client is named, and it is no person, no failed sign-in
/// and no attack.
#[test]
fn exchange_online_organization_relationship_test_401_is_a_service_not_a_failed_sign_in() {
    let file = sample("msqa-108027-exo-test-organization-relationship-401.log");
    let report = audit(&[&file], &[]);
    assert_eq!(summary(&report, "lines malformed requests anonymous"), [1, 0, 1, 1]);
    assert_eq!(summary(&report, "users failed_sign_ins attacks probes exploit_attempts"), [0, 0, 0, 0, 0]);
    assert_eq!(counts(&report["protocols"]), tally(&[("autodiscover", 1)]));
    assert_eq!(counts(&report["clients"]), tally(&[("exchange-online-org-test", 1)]));
    assert!(finding_kinds(&report).is_empty(), "{:?}", finding_kinds(&report));

    let table = text(&ok(casguard(&["audit", "--format", "table", &file])).stdout);
    assert!(table.contains("exchange-online-org-test"), "{table}");

    // The HttpProxy line the same answer quotes (09:55, another request; no
    // header published, its 74 values written here in the 2016 CU23 header,
    // which has as many; `AnchorMailbox` edited as published). Not signed in,
    // 401 from the back end, routed by `WSSecurityRequest-SMTP`: the anchor is
    // the mailbox Exchange Online asks about, not a user of this server, so
    // the line is as anonymous as the IIS one.
    let header_file = workspace().join("tests/data/httpproxy/artefacts-help/Autodiscover/HttpProxy_2023010919-1.LOG");
    let published = std::fs::read_to_string(header_file).unwrap();
    let header: Vec<&str> = published.lines().take_while(|l| l.starts_with('#')).collect();
    let line = "2020-10-01T09:55:24.651Z,69c0c712-85ed-458b-a815-44bd17ca06fe,15,2,659,4,,Autodiscover,\
                autodiscover.contoso.ru,/autodiscover/autodiscover.svc/WSSecurity,,,false,,contoso.ru,\
                Smtp~tester3@Company portal   .ru,TestOrganizationRelationship/1.1,52.97.244.45,MXM,401,401,\
                ProtocolError,POST,Proxy,mxm.contoso.local,15.02.0659.000,IntraForest,WSSecurityRequest-SMTP,,,,7637,,,,\
                0,6,,0,,0,,0,0,,0,12,0,0,0,1,5,0,,,,0,12,0,5,6,6,6,12,,,,BeginRequest=2020-10-01T09:55:24.639Z;\
                CorrelationID=<empty>;ProxyState-Run=None;FEAuth=BEVersion-1942127251;RoutingEntry=DatabaseGuid:\
                1ddd6ccf-be67-4cff-8809-6fe9619d437f%40contoso.local%40contoso.local \
                Server:mxm.contoso.local+1942127251@637364095730545592;\
                BeginGetRequestStream=2020-10-01T09:55:24.645Z;OnRequestStreamReady=2020-10-01T09:55:24.646Z;\
                BeginGetResponse=2020-10-01T09:55:24.646Z;OnResponseReady=2020-10-01T09:55:24.651Z;\
                EndGetResponse=2020-10-01T09:55:24.651Z;ProxyState-Complete=WaitForServerResponse;\
                SharedCacheGuard=0;EndRequest=2020-10-01T09:55:24.651Z;S:ServiceLatencyMetadata.AuthModuleLatency=0,\
                WebExceptionStatus=ProtocolError;ResponseStatusCode=401;WebException=System.Net.WebException: \
                The remote server returned an error: (401) Unauthorized    \
                System.Net.HttpWebRequest.EndGetResponse(IAsyncResult asyncResult)    \
                в Microsoft.Exchange.HttpProxy.ProxyRequestHandler.<>c__DisplayClass199_0.<OnResponseReady>b__0();,,\
                |RoutingDB:1ddd6ccf-be67-4cff-8809-6fe9619d437f,,,CafeV1";
    assert_eq!(line.split(',').count(), header.last().unwrap().split(',').count());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("HttpProxy_2020100109-1.LOG");
    std::fs::write(&log, format!("{}\n{line}\n", header.join("\n"))).unwrap();
    let proxy = audit(&[log.to_str().unwrap()], &[]);
    assert_eq!(summary(&proxy, "lines malformed requests anonymous users failed_sign_ins"), [1, 0, 1, 1, 0, 0]);
    assert_eq!(counts(&proxy["clients"]), tally(&[("exchange-online-org-test", 1)]));
    // Beside an IIS log, an HttpProxy 401 is left out for the IIS line (see
    // `exchange::join`): still no user.
    let both = audit(&[&file, log.to_str().unwrap()], &[]);
    assert_eq!(summary(&both, "requests anonymous users iis_duplicates attacks"), [1, 1, 0, 1, 0]);
}
