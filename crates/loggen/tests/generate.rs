//! End-to-end tests of the generator: determinism, layout, gzip, scaling,
//! and an independent mini-audit that re-reads the written text with the
//! README's rules ("How it decides") and must arrive at the truth the generator counted
//! from its own labels.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use casguard_loggen::{generate, log_bytes, GzipMode, HttpProxyMode, Options, Profile, Truth};

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("casguard-loggen-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    p
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("u_ex") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Decompressed content; `true` when the gzip stream ended in an error.
fn content(p: &Path) -> (Vec<u8>, bool) {
    let raw = fs::read(p).unwrap();
    if !p.to_string_lossy().ends_with(".gz") {
        return (raw, false);
    }
    let mut out = Vec::new();
    let err = flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out).is_err();
    (out, err)
}

fn gzip_members(p: &Path) -> usize {
    let raw = fs::read(p).unwrap();
    let mut rest = &raw[..];
    let mut n = 0;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        let mut sink = Vec::new();
        if d.read_to_end(&mut sink).is_err() {
            break;
        }
        rest = d.into_inner();
        n += 1;
    }
    n
}

fn small(dir: &Path) -> Options {
    let mut o = Options::new(dir);
    o.users = 12;
    o
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, b, c) = (tmp("det-a"), tmp("det-b"), tmp("det-c"));
    let ta = generate(&small(&a)).unwrap();
    let tb = generate(&small(&b)).unwrap();
    let mut oc = small(&c);
    oc.seed = 2;
    generate(&oc).unwrap();
    assert_eq!(ta, tb);
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.len(), fb.len());
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x.strip_prefix(&a).unwrap(), y.strip_prefix(&b).unwrap());
        assert_eq!(fs::read(x).unwrap(), fs::read(y).unwrap(), "{}", x.display());
    }
    assert_eq!(fs::read(a.join("truth.json")).unwrap(), fs::read(b.join("truth.json")).unwrap());
    let first = fa.iter().find(|p| !p.to_string_lossy().ends_with(".gz")).unwrap();
    let other = c.join(first.strip_prefix(&a).unwrap());
    assert_ne!(fs::read(first).unwrap(), fs::read(other).unwrap());
    for d in [a, b, c] {
        fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn summary_adds_up() {
    let dir = tmp("sum");
    let t = generate(&small(&dir)).unwrap();
    let s = &t.summary;
    assert_eq!(s.lines, s.requests + s.backend_duplicates + s.probes + s.attacks + s.machine + s.malformed);
    assert_eq!(s.malformed, 3);
    assert!(s.requests > 0 && s.backend_duplicates > 0 && s.probes > 0 && s.exploit_attempts > 0 && s.machine > 0);
    assert!(s.attacks > s.exploit_attempts && s.failed_sign_ins > 0 && s.failed_sign_ins < s.requests);
    assert_eq!(t.protocols.values().sum::<u64>(), s.requests);
    assert_eq!(t.clients.values().sum::<u64>(), s.requests);
    assert!(t.protocols.values().all(|n| *n > 0) && t.clients.values().all(|n| *n > 0));
    let named: u64 = t.users.values().map(|u| u.requests).sum();
    assert!(named < s.requests, "anonymous requests belong to no user");
    for u in t.users.values() {
        assert_eq!(u.requests, u.devices.values().map(|d| d.requests).sum::<u64>());
    }
    let on_disk: Truth = serde_json::from_slice(&fs::read(dir.join("truth.json")).unwrap()).unwrap();
    assert_eq!(on_disk, t);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn layout_gzip_bom_and_directives() {
    let dir = tmp("layout");
    generate(&small(&dir)).unwrap();
    let all = files(&dir);
    let gz: Vec<_> = all.iter().filter(|p| p.to_string_lossy().ends_with(".gz")).collect();
    assert!(!gz.is_empty() && gz.len() < all.len(), "--gzip some mixes plain and gzip");
    assert!(gz.iter().any(|p| gzip_members(p) == 2), "one multi-member gzip");
    let mut boms = 0;
    let mut field_changes = 0;
    for p in &all {
        let name = p.to_string_lossy().into_owned();
        assert!(name.contains("W3SVC1/u_ex26110") && name.contains("_x.log") || name.contains("W3SVC2/u_ex26110"));
        let (text, err) = content(p);
        assert!(!err, "{name} is valid gzip");
        let body = match text.strip_prefix(b"\xEF\xBB\xBF") {
            Some(b) => {
                boms += 1;
                b
            }
            None => &text[..],
        };
        assert!(
            body.starts_with(b"#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n#Date: ")
        );
        let body = std::str::from_utf8(body).unwrap();
        assert!(body.ends_with("\r\n"));
        assert_eq!(body.matches('\n').count(), body.matches("\r\n").count(), "CRLF only");
        field_changes += body.matches("#Fields:").count() - 1;
        let mut last = String::new();
        for line in body.split("\r\n").filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let stamp = &line[..19];
            assert!(stamp >= last.as_str(), "{name}: time goes back at {line}");
            last = stamp.to_string();
        }
    }
    assert_eq!(boms, 1);
    assert!(field_changes >= 2, "fields change mid-file");
    fs::remove_dir_all(dir).unwrap();
}

fn cast(t: &Truth) -> BTreeMap<String, BTreeSet<String>> {
    t.users.iter().map(|(k, u)| (k.clone(), u.devices.keys().cloned().collect())).collect()
}

#[test]
fn target_bytes_scales_lines_not_people() {
    let (a, b) = (tmp("size-a"), tmp("size-b"));
    let mut oa = Options::new(&a);
    oa.target_bytes = Some(3_000_000);
    let mut ob = Options::new(&b);
    ob.target_bytes = Some(9_000_000);
    let ta = generate(&oa).unwrap();
    let tb = generate(&ob).unwrap();
    let (sa, sb) = (log_bytes(&a).unwrap(), log_bytes(&b).unwrap());
    assert!((2_400_000..3_600_000).contains(&sa), "{sa}");
    assert!((7_200_000..10_800_000).contains(&sb), "{sb}");
    assert!(tb.summary.lines > 2 * ta.summary.lines);
    assert_eq!(cast(&ta), cast(&tb), "same users and devices");
    for d in [a, b] {
        fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn full_set_text_agrees_with_truth() {
    let dir = tmp("audit");
    let t = generate(&Options::new(&dir)).unwrap();
    assert_same(&mini_audit(&dir, &t.cutover), &t);
    // 40 people, and the two accounts the spray tried that do not exist.
    assert!(t.users.len() == 42 && t.users.contains_key("administrator") && !t.findings.mobile_on_ews.is_empty());
    let f = &t.findings;
    assert_eq!(f.exploit_attempt.len(), 4);
    assert_eq!((f.web_shell.len(), f.data_theft.len(), f.scanner.len(), f.outside_vdirs.len()), (2, 1, 1, 1));
    assert_eq!(f.password_spray.len(), 1);
    assert_eq!((f.password_spray[0].users, f.brute_force.len(), f.brute_force[0].failures), (9, 1, 120));
    // The web shell from a Microsoft address: its Outlook mobile user agent names no user's client.
    assert_eq!(f.web_shell.iter().find(|e| e.source == "40.96.39.253").unwrap().outcome, "succeeded");
    let p = &t.policies;
    assert!(
        p.block_new_outlook_devices.denied_requests > 0 && p.block_outlook_provision.provision_from_known_devices > 0
    );
    fs::remove_dir_all(dir).unwrap();
}

/// HttpProxy's `AuthenticationType` of Outlook mobile's signed-in ActiveSync
/// lines: Basic with DeviceType `Outlook`, a Bearer token with hybrid modern
/// auth (`OutlookService`), as Exchange logs them.
#[test]
fn httpproxy_names_outlook_mobile_basic_and_hma_bearer() {
    let dir = tmp("hp-auth");
    let mut o = Options::new(&dir);
    (o.httpproxy, o.gzip, o.malformed) = (HttpProxyMode::Only, GzipMode::None, 0);
    let t = generate(&o).unwrap();
    let mut seen: BTreeMap<(&str, String), u64> = BTreeMap::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if !p.file_name().unwrap().to_string_lossy().starts_with("HttpProxy_") {
                continue;
            }
            let text = String::from_utf8(fs::read(&p).unwrap()).unwrap();
            let mut names: Vec<&str> = Vec::new();
            for line in text.lines() {
                if let Some(f) = line.strip_prefix("#Fields: ") {
                    names = f.split(',').collect();
                    continue;
                }
                if line.starts_with('#') || line.is_empty() {
                    continue;
                }
                let field = |n: &str| line.split(',').nth(names.iter().position(|x| *x == n).unwrap()).unwrap_or("");
                let query = field("UrlQuery");
                let dtype = match query.trim_start_matches('?').split('&').find_map(|p| p.strip_prefix("DeviceType=")) {
                    Some("Outlook") => "Outlook",
                    Some("OutlookService") => "OutlookService",
                    _ => continue,
                };
                if field("IsAuthenticated") == "true" {
                    *seen.entry((dtype, field("AuthenticationType").to_string())).or_default() += 1;
                }
            }
        }
    }
    let kinds: BTreeSet<_> = seen.keys().cloned().collect();
    assert_eq!(
        kinds,
        BTreeSet::from([("Outlook", "Basic".to_string()), ("OutlookService", "Bearer".to_string())]),
        "{seen:?}"
    );
    assert!(t.auth_types.get("bearer").is_some_and(|n| *n >= seen[&("OutlookService", "Bearer".to_string())]));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn only_backend() {
    let dir = tmp("be");
    let mut o = small(&dir);
    o.only_backend = true;
    let t = generate(&o).unwrap();
    assert!(files(&dir).iter().all(|p| p.to_string_lossy().contains("W3SVC2")));
    assert!(t.backend_only);
    assert_eq!(t.summary.backend_duplicates, 0);
    assert_eq!(t.summary.attacks + t.summary.failed_sign_ins + t.summary.machine, 0);
    assert!(t.summary.requests > 0 && t.summary.probes > 0);
    assert_same(&mini_audit(&dir, &t.cutover), &t);
    fs::remove_dir_all(dir).unwrap();
}

/// Exchange 2013+'s front end appends `&CorrelationID=<empty>;&cafeReqId=<GUID>;`
/// to the IIS line of every request its HttpProxy module handles, 401
/// challenges too, whether or not HttpProxy logs are on; the back end never
/// does (tests/data/iis: every port-443 line of 2013+, no port-444 line).
#[test]
fn front_end_lines_carry_cafe_req_id_with_or_without_httpproxy_logs() {
    let (a, b) = (tmp("cafe-none"), tmp("cafe-also"));
    generate(&small(&a)).unwrap();
    generate(&Options { httpproxy: HttpProxyMode::Also, ..small(&b) }).unwrap();
    // Exchange's virtual directories (and loggen's shell in /aspnet_client,
    // which it models as proxied); `/`, `/1/...`, `/.git/...` and the like are IIS's alone.
    let vdirs =
        ["owa", "ecp", "ews", "microsoft-server-activesync", "autodiscover", "mapi", "rpc", "oab", "powershell"];
    let (mut fe, mut challenges, mut ews_challenges, mut outside) = (0, 0, 0, 0);
    let mut ids = BTreeSet::new();
    for p in files(&a) {
        let text = String::from_utf8(content(&p).0).unwrap();
        let mut names: Vec<&str> = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(f) = line.strip_prefix("#Fields: ") {
                names = f.split(' ').collect();
            }
            let v: Vec<&str> = line.split(' ').collect();
            if line.starts_with('#') || v.len() != names.len() {
                continue; // a directive, or a malformed line
            }
            let get = |n: &str| v[names.iter().position(|x| *x == n).unwrap()];
            let (stem, query, port, status) =
                (get("cs-uri-stem"), get("cs-uri-query"), get("s-port"), get("sc-status"));
            let id = query.rsplit_once("&cafeReqId=").map(|(_, id)| id.trim_end_matches(';'));
            if port == "444" {
                assert_eq!(id, None, "a back-end line: {line}");
                continue;
            }
            let top = stem.trim_start_matches('/').split('/').next().unwrap().to_ascii_lowercase();
            if !vdirs.contains(&top.as_str()) && top != "aspnet_client" {
                assert_eq!(id, None, "IIS answers {stem} itself: {line}");
                outside += 1;
                continue;
            }
            let id = id.unwrap_or_else(|| panic!("a front-end line without cafeReqId: {line}"));
            assert!(query.contains("&CorrelationID=<empty>;"), "{line}");
            assert_eq!(id.len(), 36, "{line}");
            assert!(ids.insert(id.to_string()), "cafeReqId {id} twice");
            fe += 1;
            challenges += usize::from(status == "401");
            ews_challenges += usize::from(status == "401" && top == "ews");
        }
    }
    assert!(
        fe > 1000 && challenges > 0 && ews_challenges > 0 && outside > 0,
        "{fe} {challenges} {ews_challenges} {outside}"
    );
    // The IIS logs are the same whether or not HttpProxy logs are written beside.
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.len(), fb.len());
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(content(x).0, content(y).0, "{}", x.display());
    }
    for d in [a, b] {
        fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn backend_heavy_profile_is_half_hops_of_phones_and_agrees_with_truth() {
    let dir = tmp("heavy");
    let mut o = small(&dir);
    o.users = 60;
    o.gzip = GzipMode::None;
    o.profile = Profile::BackendHeavy;
    let t = generate(&o).unwrap();
    let s = &t.summary;
    let share = s.backend_duplicates as f64 / s.lines as f64;
    assert!((0.4..0.5).contains(&share), "back-end hops are {share:.2} of the lines");
    let devices: usize = t.users.values().map(|u| u.devices.len()).sum();
    assert!(devices as f64 / 60.0 > 3.0, "{devices} devices for 60 users");
    let (mut hops, mut proxied, mut long_log, mut b64) = (0, 0, 0, 0);
    for p in files(&dir) {
        for line in String::from_utf8(content(&p).0).unwrap().lines().filter(|l| !l.starts_with('#')) {
            let hop = line.contains(" 444 ");
            hops += usize::from(hop);
            proxied += usize::from(hop && line.contains(" /Microsoft-Server-ActiveSync/Proxy/default.eas "));
            long_log += usize::from(line.split("&Log=").nth(1).is_some_and(|l| l.len() > 400));
            b64 += usize::from(line.contains("/Microsoft-Server-ActiveSync") && !line.contains("Cmd="));
        }
    }
    assert!(proxied * 2 > hops, "{proxied} of {hops} hops are ActiveSync's /Proxy/");
    // Only hops carry `Log=` (the back end writes it).
    assert!(long_log * 10 > proxied * 9 && b64 > 0, "{long_log} long Log= tokens of {proxied}, {b64} base64 queries");
    assert_same(&mini_audit(&dir, &t.cutover), &t);
    // The default profile is another cast.
    let d = tmp("heavy-default");
    let default = generate(&small(&d)).unwrap();
    assert_ne!(cast(&default), cast(&generate(&Options { profile: Profile::BackendHeavy, ..small(&d) }).unwrap()));
    fs::remove_dir_all(dir).unwrap();
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn truncated_gzip_counts_only_surviving_lines() {
    let dir = tmp("trunc");
    let mut o = small(&dir);
    o.truncate_gzip = true;
    o.gzip = GzipMode::All;
    o.malformed = 2;
    let t = generate(&o).unwrap();
    assert_eq!(t.summary.malformed, 3);
    let broken: Vec<_> = files(&dir).into_iter().filter(|p| content(p).1).collect();
    assert_eq!(broken.len(), 1);
    assert_same(&mini_audit(&dir, &t.cutover), &t);
    let mut whole = small(&tmp("trunc-whole"));
    whole.gzip = GzipMode::All;
    whole.malformed = 2;
    let tw = generate(&whole).unwrap();
    assert!(tw.summary.lines > t.summary.lines, "the lost tail is not counted");
    fs::remove_dir_all(dir).unwrap();
    fs::remove_dir_all(&whole.out).unwrap();
}

#[test]
fn a_crashed_log_loses_its_lines_from_the_cut_to_the_restart() {
    let dir = tmp("crash");
    let mut o = small(&dir);
    o.crash = true;
    o.gzip = GzipMode::None;
    o.malformed = 0;
    let t = generate(&o).unwrap();
    assert_eq!(t.summary.malformed, 1, "the line cut short");
    let crashed: Vec<_> = files(&dir).into_iter().filter(|p| content(p).0.contains(&0)).collect();
    assert_eq!(crashed.len(), 1, "{crashed:?}");
    let text = content(&crashed[0]).0;
    let nul = text.iter().position(|&b| b == 0).unwrap();
    let line_start = text[..nul].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let after = nul + text[nul..].iter().take_while(|&&b| b == 0).count();
    assert_eq!(after - nul, 4096);
    assert!(text[after..].starts_with(b"#Software: "), "the restart's directives follow the NUL bytes");
    assert!(nul - line_start < 30, "the cut line keeps only its start");
    assert_same(&mini_audit(&dir, &t.cutover), &t);
    let mut whole = small(&tmp("crash-whole"));
    whole.gzip = GzipMode::None;
    whole.malformed = 0;
    let tw = generate(&whole).unwrap();
    assert_eq!(tw.summary.lines, t.summary.lines + 5, "six lines lost, one of them counted malformed");
    fs::remove_dir_all(dir).unwrap();
    fs::remove_dir_all(&whole.out).unwrap();
}

/// Section by section, so a failure names what differs.
fn assert_same(audit: &Truth, truth: &Truth) {
    assert_eq!(audit.summary, truth.summary, "summary");
    assert_eq!(audit.backend_only, truth.backend_only, "backend_only");
    assert_eq!(audit.protocols, truth.protocols, "protocols");
    assert_eq!(audit.clients, truth.clients, "clients");
    assert_eq!(audit.findings, truth.findings, "findings");
    assert_eq!(audit.policies, truth.policies, "policies");
    assert_eq!(audit.users.keys().collect::<Vec<_>>(), truth.users.keys().collect::<Vec<_>>(), "user keys");
    for (k, u) in &audit.users {
        assert_eq!(u, &truth.users[k], "user {k}");
    }
    assert_eq!(audit, truth);
}

// ---------------------------------------------------------------------------
// Mini-audit: the README's rules applied to the text, independently of the generator.

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn norm_user(raw: &str) -> String {
    let s = raw.rsplit('\\').next().unwrap();
    s.split('@').next().unwrap().to_lowercase()
}

fn is_health(user: &str) -> bool {
    let n = norm_user(user);
    n.len() == 13 + 32 && n.starts_with("healthmailbox") && n[13..].bytes().all(|c| c.is_ascii_hexdigit())
}

struct As {
    cmd: String,
    user: String,
    device: String,
    dtype: String,
}

fn parse_as(query: &str) -> Option<As> {
    // What the front end appends is not the client's query.
    let query = query.split_once("&CorrelationID=").map_or(query, |(q, _)| q);
    if query == "-" || query.is_empty() {
        return None;
    }
    let mut a = As { cmd: String::new(), user: String::new(), device: String::new(), dtype: String::new() };
    if query.contains("DeviceId=") {
        for kv in query.split('&') {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k.to_ascii_lowercase().as_str() {
                "cmd" => a.cmd = v.to_string(),
                "user" => a.user = pct_decode(v),
                "deviceid" => a.device = v.to_string(),
                "devicetype" => a.dtype = v.to_string(),
                _ => {}
            }
        }
        return Some(a);
    }
    let mut b64 = pct_decode(query.split('&').next().unwrap());
    let missing = (4 - b64.len() % 4) % 4;
    b64.push_str(&"=="[..missing.min(2)]);
    let b = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    const CMDS: &[(u8, &str)] = &[
        (0, "Sync"),
        (1, "SendMail"),
        (9, "FolderSync"),
        (17, "Settings"),
        (18, "Ping"),
        (19, "ItemOperations"),
        (20, "Provision"),
    ];
    a.cmd = CMDS.iter().find(|c| c.0 == b[1]).unwrap().1.to_string();
    let idlen = b[4] as usize;
    let id = &b[5..5 + idlen];
    a.device = if id.iter().all(|c| c.is_ascii_alphanumeric()) {
        String::from_utf8(id.to_vec()).unwrap()
    } else {
        id.iter().map(|c| format!("{c:02X}")).collect()
    };
    let mut i = 5 + idlen;
    i += 1 + b[i] as usize;
    let dl = b[i] as usize;
    a.dtype = String::from_utf8(b[i + 1..i + 1 + dl].to_vec()).unwrap();
    i += 1 + dl;
    while i < b.len() {
        let (tag, len) = (b[i], b[i + 1] as usize);
        if tag == 8 {
            a.user = String::from_utf8(b[i + 2..i + 2 + len].to_vec()).unwrap();
        }
        i += 2 + len;
    }
    Some(a)
}

fn protocol(stem: &str) -> &'static str {
    let s = stem.to_ascii_lowercase();
    for (p, k) in [
        ("/microsoft-server-activesync", "activesync"),
        ("/ews", "ews"),
        ("/owa", "owa"),
        ("/ecp", "ecp"),
        ("/mapi", "mapi"),
        ("/rpc", "rpc"),
        ("/autodiscover", "autodiscover"),
        ("/oab", "oab"),
        ("/powershell", "powershell"),
        ("/api", "rest"),
    ] {
        if s.starts_with(p) {
            return k;
        }
    }
    "other"
}

fn client(ua: &str, dtype: &str, proto: &str) -> &'static str {
    let dt = dtype.to_ascii_lowercase();
    let pre = |p: &[&str]| p.iter().any(|x| ua.starts_with(x));
    if dt == "outlookservice" {
        "outlook-mobile-hma"
    } else if pre(&["Outlook-iOS-Android/", "Outlook-iOS/", "Outlook-Android/"]) || dt == "outlook" {
        "outlook-mobile"
    } else if ua.starts_with("MacOutlook/") || (ua.contains("Macintosh") && ua.contains("Microsoft Outlook")) {
        "outlook-mac"
    } else if ua.contains("Microsoft Outlook") || ua.contains("Microsoft Office Outlook") || ua == "MSRPC" {
        "outlook-windows"
    } else if pre(&["Apple-iPhone", "Apple-iPad", "iOS/"]) || dt == "iphone" || dt == "ipad" {
        "ios-mail"
    } else if pre(&["Android-Mail/", "Android/"]) || dt == "android" {
        "android-mail"
    } else if ua.contains("ExchangeWebServices/") && ua.contains("Mac OS X") {
        "macos-mail"
    } else if ua == "Microsoft WinRM Client" {
        "remote-powershell"
    } else if ua.starts_with("Mozilla/") && ["iPhone", "iPad", "Android"].iter().any(|x| ua.contains(x)) {
        "mobile-browser"
    } else if ua.starts_with("Mozilla/") {
        "browser"
    } else if proto == "ews" {
        "ews-app"
    } else {
        "unknown"
    }
}

/// The status is the outcome, never a condition.
fn exploit_rule(method: &str, q: &str, ua: &str) -> Option<&'static str> {
    let q = q.to_ascii_lowercase();
    let has = |xs: &[&str]| xs.iter().any(|x| q.contains(x));
    if (q.contains("/autodiscover.json") && has(&["/powershell", "/mapi/nspi", "/ews", "x-rps-cat"]))
        || has(&[
            "autodiscover.json?@",
            "autodiscover.json%3f@",
            "%3f@foo.com",
            "email=autodiscover/autodiscover.json",
            "json?@foo.com",
        ])
    {
        return Some("proxyshell");
    }
    if method == "POST"
        && (q.contains("/owa/auth/current/")
            || (q.contains("/ecp/")
                && ["ExchangeServicesClient/0.0.0.0", "python-requests/2.19.1", "python-requests/2.25.1"]
                    .contains(&ua))
            || has(&["/ecp/default.flt", "/ecp/main.css"])
            || (q.contains("/ecp/") && q.contains(".js")))
    {
        return Some("proxylogon");
    }
    if method == "GET" && has(&["/ecp/", "/owa/"]) && q.contains("__viewstate=") {
        return Some("cve-2020-0688");
    }
    None
}

/// The rules without a CVE, as the generator writes their lines: (rule, kind).
fn other_rule(method: &str, stem: &str, q: &str, ua: &str, port: &str) -> Option<(&'static str, &'static str)> {
    let (stem_l, q_l) = (stem.to_ascii_lowercase(), q.to_ascii_lowercase());
    if method == "GET" && ["=whoami", "=ipconfig"].iter().any(|x| q_l.contains(x)) {
        return Some(("web-shell-command", "web-shell"));
    }
    // The only scripts of Exchange's the generator asks for.
    let shipped = ["/owa/auth/logon.aspx", "/ecp/default.aspx", "/owa/service.svc", "/ecp/ddi/ddiservice.svc/getlist"];
    let script = [".aspx", ".ashx", ".asmx", ".svc", ".php"].iter().any(|e| stem_l.contains(e));
    if script && !shipped.contains(&stem_l.as_str()) && !stem_l.starts_with("/ews/exchange.asmx") {
        return Some(("web-shell", "web-shell"));
    }
    if [".pst", ".dmp", ".rar", ".zip"].iter().any(|e| stem_l.ends_with(e)) {
        return Some(("data-theft", "data-theft"));
    }
    if ua.contains("zgrab/") || ua.contains("Nmap Scripting Engine") {
        return Some(("scanner", "scanner"));
    }
    let vdirs =
        ["owa", "ecp", "ews", "autodiscover", "microsoft-server-activesync", "oab", "mapi", "rpc", "powershell", "api"];
    let mut segments = stem_l.trim_start_matches('/').split('/');
    let first = segments.next().unwrap_or("");
    if port == "443" && segments.next().is_some() && !vdirs.contains(&first) {
        return Some(("outside-vdirs", "outside-vdirs"));
    }
    None
}

#[derive(Default)]
struct Dev {
    requests: u64,
    client: String,
    first: String,
    provisions: u64,
    /// Keyed by an ActiveSync device id.
    by_id: bool,
}

/// The catalog's `app`: Outlook mobile however it signs in.
fn app(client: &str) -> &str {
    if client == "outlook-mobile-hma" {
        "outlook-mobile"
    } else {
        client
    }
}

fn mini_audit(dir: &Path, cutover: &str) -> Truth {
    struct Req {
        line: Vec<String>,
        fields: Vec<String>,
        date: String,
    }
    let mut t = Truth { cutover: cutover.to_string(), ..Truth::default() };
    let mut reqs = Vec::new();
    for p in files(dir) {
        let (text, truncated) = content(&p);
        if truncated {
            t.summary.lines += 1;
            t.summary.malformed += 1;
        }
        let text = String::from_utf8(text).unwrap();
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut fields: Vec<String> = Vec::new();
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            if let Some(f) = line.strip_prefix("#Fields: ") {
                fields = f.split(' ').map(str::to_string).collect();
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            t.summary.lines += 1;
            let v: Vec<String> = line.split(' ').map(str::to_string).collect();
            if v.len() != fields.len() {
                t.summary.malformed += 1;
                continue;
            }
            reqs.push(Req { date: format!("{}T{}Z", v[0], v[1]), line: v, fields: fields.clone() });
        }
    }
    // Category per line.
    let mut person = Vec::new();
    let mut backend = Vec::new();
    // (kind, rule, source) -> (requests, succeeded, failed)
    // (kind, rule, source) -> requests, succeeded, failed, accounts impersonated.
    type Attack = (u64, u64, u64, BTreeSet<String>);
    let mut exploits: BTreeMap<(String, String, String), Attack> = BTreeMap::new();
    // Failed sign-ins: users per source, failures per (user, hour) and sources per user.
    let mut fail_sources: BTreeMap<String, (BTreeSet<String>, u64)> = BTreeMap::new();
    let mut fail_users: BTreeMap<String, (BTreeMap<String, u64>, BTreeSet<String>)> = BTreeMap::new();
    for r in &reqs {
        let get = |name: &str| -> &str { r.fields.iter().position(|f| f == name).map_or("-", |i| r.line[i].as_str()) };
        let (method, stem, query) = (get("cs-method"), get("cs-uri-stem"), get("cs-uri-query"));
        let ua = get("cs(User-Agent)").replace('+', " ");
        let user = get("cs-username");
        let q = if query == "-" { "" } else { query };
        let strict = exploit_rule(method, q, &ua);
        let loose = exploit_rule(method, &format!("{stem}?{q}"), &ua);
        assert_eq!(strict, loose, "rule reading matters for {:?}", r.line);
        let cip = get("c-ip");
        let xff = get("X-Forwarded-For").replace('+', " ");
        let private = |a: &str| a.starts_with("10.") || a.starts_with("127.") || a == "::1";
        let source = if private(cip) {
            xff.split(',').map(str::trim).rfind(|a| *a != "-" && !a.is_empty() && !private(a)).unwrap_or(cip)
        } else {
            cip
        };
        let port = get("s-port");
        let status: u16 = get("sc-status").parse().unwrap();
        let rule = strict.map(|r| (r, "exploit")).or_else(|| other_rule(method, stem, q, &ua, port));
        if let Some((rule, kind)) = rule {
            t.summary.attacks += 1;
            if kind == "exploit" {
                t.summary.exploit_attempts += 1;
            }
            let e = exploits.entry((kind.to_string(), rule.to_string(), source.to_string())).or_default();
            e.0 += 1;
            e.1 += u64::from((200..300).contains(&status));
            e.2 += u64::from(!(200..300).contains(&status) && status != 401 && status != 403);
            e.3.extend(rps_cat_account(q));
            continue;
        }
        if status == 401 && (get("sc-substatus") == "1" || get("sc-win32-status") == "1326") {
            t.summary.failed_sign_ins += 1;
            let key = norm_user(user);
            let s = fail_sources.entry(source.to_string()).or_default();
            s.0.insert(key.clone());
            s.1 += 1;
            let u = fail_users.entry(key).or_default();
            *u.0.entry(r.date[..13].to_string()).or_default() += 1;
            u.1.insert(source.to_string());
        }
        let asq = if protocol(stem) == "activesync" { parse_as(query) } else { None };
        let dtype = asq.as_ref().map_or("", |a| a.dtype.as_str());
        let probe_ua = ["AMProbe", "MSEXCHMON", "ACTIVEMONITORING", "TestActiveSyncConnectivity", "_Probe"];
        if probe_ua.iter().any(|m| ua.contains(m))
            || dtype.eq_ignore_ascii_case("EASProbeDeviceType")
            || is_health(user)
            || asq.as_ref().is_some_and(|a| is_health(&a.user))
        {
            t.summary.probes += 1;
            continue;
        }
        let hop =
            port == "444" || port == "81" || stem.contains("/Proxy") || (asq.is_some() && query.contains("PrxFrom"));
        let named = if user != "-" { user.to_string() } else { asq.as_ref().map_or(String::new(), |a| a.user.clone()) };
        if hop {
            backend.push((r, asq, ua, named));
            continue;
        }
        if named.ends_with('$') {
            t.summary.machine += 1;
            continue;
        }
        person.push((r, asq, ua, named));
    }
    if person.is_empty() {
        t.backend_only = true;
        person = backend;
    } else {
        t.summary.backend_duplicates = backend.len() as u64;
    }
    t.summary.requests = person.len() as u64;
    let mut devs: BTreeMap<(String, String), Dev> = BTreeMap::new();
    let mut aliases: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut ews, mut mobile) = (BTreeSet::new(), BTreeSet::new());
    let (mut iis, mut ewsp) = ((0, BTreeSet::new()), (0, BTreeSet::new()));
    for (r, asq, ua, named) in &person {
        let get = |name: &str| -> &str { r.fields.iter().position(|f| f == name).map_or("-", |i| r.line[i].as_str()) };
        let stem = get("cs-uri-stem");
        let proto = protocol(stem);
        let dtype = asq.as_ref().map_or("", |a| a.dtype.as_str());
        let c = client(ua, dtype, proto);
        *t.protocols.entry(proto.to_string()).or_default() += 1;
        *t.clients.entry(c.to_string()).or_default() += 1;
        let key = norm_user(named);
        if ua.to_ascii_lowercase().contains("outlook-ios-android/1.0")
            && stem.to_ascii_lowercase().starts_with("/microsoft-server-activesync")
        {
            iis.0 += 1;
            if !named.is_empty() {
                iis.1.insert(key.clone());
            }
        }
        let ews_ok = ["Microsoft Office Outlook", "Microsoft Outlook", "MacOutlook"].iter().any(|x| ua.contains(x));
        // Exchange judges the EWS caller once signed in: anonymous legs pass.
        if proto == "ews" && !ews_ok && !named.is_empty() {
            ewsp.0 += 1;
            if !named.is_empty() {
                ewsp.1.insert(key.clone());
            }
        }
        if named.is_empty() {
            continue;
        }
        aliases.entry(key.clone()).or_default().insert(named.clone());
        let device = asq.as_ref().map_or(ua.clone(), |a| a.device.clone());
        let d = devs.entry((key.clone(), device)).or_default();
        d.requests += 1;
        d.client = c.to_string();
        d.by_id = asq.is_some();
        if d.first.is_empty() || r.date < d.first {
            d.first = r.date.clone();
        }
        if app(c) == "outlook-mobile" && asq.as_ref().is_some_and(|a| a.cmd == "Provision") {
            d.provisions += 1;
        }
        if proto == "ews" && c != "outlook-windows" && c != "outlook-mac" {
            ews.insert(key.clone());
        }
        let mobile_client =
            ["outlook-mobile", "outlook-mobile-hma", "ios-mail", "android-mail", "mobile-browser"].contains(&c);
        if mobile_client && ["ews", "owa", "rpc", "mapi"].contains(&proto) {
            mobile.insert(key.clone());
        }
    }
    // One phone, one device: requests without a device id join the user's
    // one ActiveSync device of the same app.
    let keys: Vec<(String, String)> = devs.keys().cloned().collect();
    for (user, device) in keys {
        if devs[&(user.clone(), device.clone())].by_id {
            continue;
        }
        let wanted = app(&devs[&(user.clone(), device.clone())].client).to_string();
        let phones: Vec<(String, String)> = devs
            .iter()
            .filter(|((u, _), d)| *u == user && d.by_id && app(&d.client) == wanted)
            .map(|(k, _)| k.clone())
            .collect();
        if let [phone] = &phones[..] {
            let gone = devs.remove(&(user.clone(), device)).unwrap();
            let target = devs.get_mut(phone).unwrap();
            target.requests += gone.requests;
        }
    }
    let (mut cloud, mut token) = (BTreeSet::new(), BTreeSet::new());
    let (mut prov, mut known, mut prov_users, mut new_users) = (0, 0, BTreeSet::new(), BTreeSet::new());
    for ((user, device), d) in devs {
        let u = t.users.entry(user.clone()).or_default();
        u.requests += d.requests;
        if d.client == "outlook-mobile" {
            cloud.insert(user.clone());
        }
        if d.client == "outlook-mobile-hma" {
            token.insert(user.clone());
        }
        let e = u.devices.entry(device).or_default();
        e.requests = d.requests;
        e.client = d.client;
        prov += d.provisions;
        if d.provisions > 0 {
            prov_users.insert(user.clone());
        }
        if d.first.as_str() < cutover {
            known += d.provisions;
        } else if d.provisions > 0 {
            new_users.insert(user.clone());
        }
    }
    for (k, a) in aliases {
        t.users.get_mut(&k).unwrap().aliases = a.into_iter().collect();
    }
    let v = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
    t.findings.cloud_credentials = v(cloud);
    t.findings.ews_non_outlook = v(ews);
    t.findings.mobile_on_ews = v(mobile);
    t.findings.cloud_token = v(token);
    for ((kind, rule, source), (count, succeeded, failed, impersonated)) in exploits {
        let outcome = if succeeded > 0 {
            "succeeded"
        } else if failed > 0 {
            "failed"
        } else {
            "blocked"
        };
        let impersonated = impersonated.into_iter().collect();
        let e = casguard_loggen::ExploitTruth { rule, source, count, outcome: outcome.into(), impersonated };
        match kind.as_str() {
            "web-shell" => t.findings.web_shell.push(e),
            "data-theft" => t.findings.data_theft.push(e),
            "scanner" => t.findings.scanner.push(e),
            "outside-vdirs" => t.findings.outside_vdirs.push(e),
            _ => t.findings.exploit_attempt.push(e),
        }
    }
    // The generator's sign-in attacks each fall within an hour and a window.
    for (source, (users, failures)) in fail_sources {
        if users.len() >= 5 {
            let users = users.len() as u64;
            t.findings.password_spray.push(casguard_loggen::SprayTruth { source, users, failures });
        }
    }
    for (user, (hours, sources)) in fail_users {
        let worst = hours.values().copied().max().unwrap_or(0);
        if worst >= 100 {
            let sources = sources.len() as u64;
            t.findings.brute_force.push(casguard_loggen::BruteTruth { user, failures: worst, sources });
        }
    }
    let p = &mut t.policies;
    p.iis_block_outlook_ua = casguard_loggen::PolicyTruth { denied_requests: iis.0, affected_users: v(iis.1) };
    p.ews_allow_outlook_only = casguard_loggen::PolicyTruth { denied_requests: ewsp.0, affected_users: v(ewsp.1) };
    p.block_outlook_provision = casguard_loggen::ProvisionTruth {
        denied_requests: prov,
        affected_users: v(prov_users),
        provision_from_known_devices: known,
    };
    p.block_new_outlook_devices =
        casguard_loggen::PolicyTruth { denied_requests: prov - known, affected_users: v(new_users) };
    t
}

/// The `L` (logon) and `U` (SID) of a ProxyShell `X-Rps-CAT` token in
/// `query`, as `logon (SID)`: tagged fields after a three-byte version,
/// each text a length byte and its bytes, `C` one byte (the public tools'
/// `gen_token`).
fn rps_cat_account(query: &str) -> Option<String> {
    use base64::Engine;
    let token = query.split(['&', '?']).find_map(|p| p.strip_prefix("X-Rps-CAT="))?.replace("%3D", "=");
    let bytes = base64::engine::general_purpose::STANDARD.decode(token).ok()?;
    let (mut i, mut logon, mut sid) = (3, None, None);
    while i < bytes.len() {
        match bytes[i] {
            b'C' => i += 2,
            tag @ (b'T' | b'A' | b'L' | b'U') => {
                let len = usize::from(bytes[i + 1]);
                let text = String::from_utf8(bytes[i + 2..i + 2 + len].to_vec()).ok()?;
                match tag {
                    b'L' => logon = Some(text),
                    b'U' => sid = Some(text),
                    _ => {}
                }
                i += 2 + len;
            }
            _ => break,
        }
    }
    Some(format!("{} ({})", logon?, sid?))
}
