//! `emit --target nginx` run in a real nginx: the emitted `geo` and `map`
//! blocks in front of a stand-in Exchange on loopback, the example logs'
//! requests and hand-made ones sent through it, each answered as the policy
//! decides it (every request whose deciding rule emit could express).
//! Needs nginx (scripts/test installs it); without it the test says
//! "skipped", and fails under CI=true.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::traffic::example_logs;
use common::*;
use exchange::Request;
use policy::emit::{self, Target};
use policy::{evaluate, Action, Policy};

fn nginx_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates.into_iter().chain([PathBuf::from("/usr/sbin/nginx")]).find(|p| p.is_file())
}

fn skip(why: &str) {
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI cannot skip: {why} (run scripts/test)");
    eprintln!("skipped: {why} (scripts/test installs it)");
}

/// The stand-in Exchange: answers every request 200 with the User-Agent
/// header lines it got, one a line.
fn upstream() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let agents: Vec<&str> =
                    head.lines().filter(|l| l.to_ascii_lowercase().starts_with("user-agent:")).collect();
                let body = agents.join("\n");
                let answer =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(answer.as_bytes());
            });
        }
    });
    port
}

struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx with the emitted configuration, its `exchange` upstream the stand-in,
/// the client address taken from X-Forwarded-For as the emitted file's
/// header asks when another proxy is in front.
fn start(bin: &Path, emitted: &str, upstream: u16) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let (http, server) = emitted.split_once("# In the server {} that proxies to Exchange:").expect(emitted);
    let server = server.replace("proxy_pass https://exchange;", &format!("proxy_pass http://127.0.0.1:{upstream};"));
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 256; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/t;\n  \
         proxy_temp_path {d}/t;\n  fastcgi_temp_path {d}/t;\n  uwsgi_temp_path {d}/t;\n  scgi_temp_path {d}/t;\n  \
         set_real_ip_from 127.0.0.1;\n  real_ip_header X-Forwarded-For;\n{http}\n  server {{\n    listen 127.0.0.1:{port};\n\
         {server}\n  }}\n}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, &conf).unwrap();
    let child = Command::new(bin)
        .args(["-p", &d, "-c", &path.display().to_string(), "-e", &format!("{d}/error.log")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut n = Nginx { child, port, _dir: dir };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = n.child.try_wait() {
            let mut e = String::new();
            n.child.stderr.take().unwrap().read_to_string(&mut e).unwrap();
            let log = std::fs::read_to_string(n._dir.path().join("error.log")).unwrap_or_default();
            panic!("nginx exited ({status}): {e}{log}\n{conf}");
        }
        assert!(start.elapsed() < Duration::from_secs(10), "nginx did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    n
}

/// A request target as a client sends it: the path percent-encoded where
/// HTTP asks, so that nginx's `$uri` is the stem again.
fn target(r: &Request) -> String {
    let mut t = String::new();
    for b in r.stem.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            t.push(b as char);
        } else {
            t.push_str(&format!("%{b:02X}"));
        }
    }
    if !r.query.is_empty() {
        t.push('?');
        t.push_str(&r.query.replace([' ', '#'], "+"));
    }
    t
}

/// What nginx answers: its status, or `None` when it closed without one (444).
fn send(port: u16, r: &Request) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let method = if r.method.is_empty() { "GET" } else { r.method.as_str() };
    let mut head = format!("{method} {} HTTP/1.1\r\nHost: mail.contoso.com\r\n", target(r));
    if !r.user_agent.is_empty() {
        head.push_str(&format!("User-Agent: {}\r\n", r.user_agent));
    }
    if let Some(ip) = r.client_ip.or(r.peer_ip) {
        head.push_str(&format!("X-Forwarded-For: {ip}\r\n"));
    }
    head.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let line = String::from_utf8_lossy(&answer);
    line.split(' ').nth(1).map(|code| code.parse().unwrap_or_else(|_| panic!("answer: {line}")))
}

/// Sends a request head as it is: nginx's status and the body after it.
fn send_raw(port: u16, head: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// Sends `requests` through nginx running `p` as emitted; returns how many
/// were compared (decided by a rule or default that emit expressed).
fn replay(bin: &Path, up: u16, p: &Policy, requests: &[Request]) -> usize {
    let out = emit::emit(p, Target::Nginx);
    let left_out: HashSet<&str> = out.unexpressible.iter().map(|u| u.rule.as_str()).collect();
    let nginx = start(bin, &out.files[0].1, up);
    let ready = ready_policy(p.clone());
    let mut compared = 0;
    let mut wrong = Vec::new();
    for r in requests {
        let d = evaluate(&ready, r);
        let rule = d.rule.map(|i| p.rules()[i].name.as_str());
        // Left out by emit; casguard's own refusal of an ambiguous request
        // (ProxyShell's routing past Autodiscover's path), which no emitted
        // configuration holds; a 401 challenge only the gateway answers.
        if rule.is_some_and(|n| left_out.contains(n)) || d.refused.is_some() || d.challenge {
            continue;
        }
        let want = match d.action {
            Action::Allow => Some(200),
            Action::Deny if d.status == 0 => None,
            Action::Deny => Some(d.status),
        };
        let got = send(nginx.port, r);
        compared += 1;
        if got != want {
            wrong.push(format!(
                "{} {} ua '{}' from {:?}: policy {want:?} by {}, nginx {got:?}",
                r.method,
                target(r),
                r.user_agent,
                r.client_ip.or(r.peer_ip),
                rule.unwrap_or("default")
            ));
        }
    }
    assert!(wrong.is_empty(), "{}: {} of {compared} differ:\n{}", p.origin(), wrong.len(), wrong.join("\n"));
    compared
}

fn hand_made(method: &str, stem: &str, ua: &str, ip: &str) -> Request {
    let ip: IpAddr = ip.parse().unwrap();
    let mut r = Request { method: method.into(), stem: stem.into(), user_agent: ua.into(), ..Request::default() };
    r.peer_ip = Some(ip);
    r.client_ip = Some(ip);
    r.protocol = exchange::protocol::protocol_of(stem);
    r
}

#[test]
fn nginx_answers_as_the_policy_decides() {
    let Some(bin) = nginx_binary() else { return skip("nginx is not installed") };
    let up = upstream();
    let logs = example_logs();
    assert!(logs.len() > 3000, "{} requests", logs.len());
    for (path, p) in example_policies() {
        if p.requires_inventory() {
            // `device = "new"`: emit names every rule, so nginx decides nothing.
            let out = emit::emit(&p, Target::Nginx);
            assert_eq!(out.unexpressible.len(), p.rules().len(), "{}", path.display());
            continue;
        }
        replay(&bin, up, &p, &logs);
    }
    let p = policy(
        &(LAN_OK_THEN_NO_OUTLOOK_MOBILE_ON_EWS.to_owned()
            + r#"
[[rule]]
name = "no bad bot"
action = "deny"
status = 451
user_agent = { exact = ["BadBot", "a|b\\d \"q\""] }
[[rule]]
name = "no powershell or rpc"
action = "deny"
status = 418
protocol = ["powershell", "rpc"]
[[rule]]
name = "no aspx under owa auth"
action = "deny"
path = "/owa/auth/*.aspx"
"#),
    );
    replay(&bin, up, &p, &logs);
    let requests: Vec<Request> = [
        ("POST", "/EWS/Exchange.asmx", "Outlook-iOS/2.0", "203.0.113.5"),
        ("POST", "/ews/exchange.asmx", "Outlook-iOS/2.0", "203.0.113.5"),
        ("POST", "/EWS/Exchange.asmx", "Outlook-iOS/2.0", "10.1.2.3"),
        ("POST", "/EWS/Exchange.asmx", "outlook-ios/2.0", "203.0.113.5"),
        // A '|' or a line break in the path must not shift what the map reads.
        ("POST", "/EWS/a|b", "Outlook-iOS/2.0", "203.0.113.5"),
        ("POST", "/EWS/a\nb", "Outlook-Android/2.0", "203.0.113.5"),
        ("GET", "/x|", "BadBot", "203.0.113.5"),
        ("GET", "/owa/|", "badbot", "203.0.113.5"),
        ("GET", "/x", "a|b\\d \"q\"", "203.0.113.5"),
        ("GET", "/x", "a|b7 \"q\"", "203.0.113.5"),
        ("GET", "/x", "BadBot2", "203.0.113.5"),
        // Protocols end at a segment, as casguard reads a path.
        ("GET", "/EWSx", "Outlook-iOS/2.0", "203.0.113.5"),
        ("GET", "/PowerShell", "x", "203.0.113.5"),
        ("GET", "/powershell-proxy", "x", "203.0.113.5"),
        ("GET", "/powershellx", "x", "203.0.113.5"),
        ("GET", "/rpc/rpcproxy.dll", "x", "203.0.113.5"),
        ("GET", "/RpcWithCert/rpcproxy.dll", "x", "203.0.113.5"),
        ("GET", "/rpcx", "x", "203.0.113.5"),
        ("GET", "/owa/auth/logon.aspx", "Mozilla/5.0", "203.0.113.5"),
        ("GET", "/owa/auth/x/y.ASPX", "Mozilla/5.0", "203.0.113.5"),
        ("GET", "/owa/auth/logon.aspx.js", "Mozilla/5.0", "203.0.113.5"),
    ]
    .into_iter()
    .map(|(m, stem, ua, ip)| hand_made(m, stem, ua, ip))
    .collect();
    assert_eq!(replay(&bin, up, &p, &requests), requests.len());
    // IIS scans the `User-Agent: value` line, the header's name included.
    let p = policy(
        r#"
[[iis_filter.rule]]
name = "agent"
scan_headers = "User-Agent"
deny_strings = ["nt: Evil", "Scanner"]
"#,
    );
    let requests: Vec<Request> = ["EvilBot", "Mozilla EvilBot", "my scanner", "Evi", ""]
        .into_iter()
        .map(|ua| hand_made("GET", "/x", ua, "203.0.113.5"))
        .collect();
    assert_eq!(replay(&bin, up, &p, &requests), requests.len());
}

/// A second User-Agent header: nginx reads the first, and Exchange must get
/// only that one, or `Mozilla/5.0` then `Outlook-iOS-Android/1.0` passes a
/// rule on the second (the gateway refuses such a request).
#[test]
fn exchange_gets_only_the_user_agent_nginx_judged() {
    let Some(bin) = nginx_binary() else { return skip("nginx is not installed") };
    let up = upstream();
    let out = emit::emit(&example("iis-block-outlook-ua.toml"), Target::Nginx);
    let nginx = start(&bin, &out.files[0].1, up);
    let head = |first: &str, second: &str| {
        format!(
            "GET /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: mail.contoso.com\r\nUser-Agent: {first}\r\n\
             User-Agent: {second}\r\nConnection: close\r\n\r\n"
        )
    };
    let (status, _) = send_raw(nginx.port, &head("Outlook-iOS-Android/1.0", "Mozilla/5.0"));
    assert_eq!(status, 404);
    let (status, seen) = send_raw(nginx.port, &head("Mozilla/5.0", "Outlook-iOS-Android/1.0"));
    assert!(status != 200 || seen == "User-Agent: Mozilla/5.0", "{status}: Exchange got {seen:?}");
}

/// nginx passes the path on as the client wrote it, and IIS reads some
/// spellings as another path than nginx's `$uri` (`\` as `/`, a segment's
/// trailing dots and spaces dropped, `ſ` as `s`): a rule on EWS must not be
/// passed by spelling EWS so.
#[test]
fn a_path_iis_reads_otherwise_than_nginx_is_not_passed() {
    let Some(bin) = nginx_binary() else { return skip("nginx is not installed") };
    let up = upstream();
    let p = policy(
        "[[rule]]\nname = \"no outlook mobile on ews\"\naction = \"deny\"\nprotocol = \"ews\"\n\
         user_agent = { prefix = [\"Outlook-iOS/\"] }\n",
    );
    let nginx = start(&bin, &emit::emit(&p, Target::Nginx).files[0].1, up);
    let get = |target: &str, ua: &str| {
        send_raw(
            nginx.port,
            &format!(
                "GET {target} HTTP/1.1\r\nHost: mail.contoso.com\r\nUser-Agent: {ua}\r\nConnection: close\r\n\r\n"
            ),
        )
        .0
    };
    for target in [
        "/EWS/Exchange.asmx",
        "/EWS\\Exchange.asmx",
        "/EWS%5CExchange.asmx",
        "/EWS./Exchange.asmx",
        "/EWS%20/Exchange.asmx",
        "/EW%C5%BF/Exchange.asmx",
        "/owa/..%5CEWS/Exchange.asmx",
        "/EW%u0053/Exchange.asmx",
        "/EWS.%20./Exchange.asmx",
        "/%E2%84%AAx/../EWS/Exchange.asmx",
    ] {
        let mut stem = String::new();
        exchange::url::decode_path(target, &mut stem).unwrap_or_else(|e| panic!("{target}: {e}"));
        let r = hand_made("GET", &stem, "Outlook-iOS/2.0", "203.0.113.5");
        assert_eq!(r.protocol, exchange::Protocol::Ews, "{target} is EWS to IIS ({stem})");
        assert!(denied(&ready_policy(p.clone()), &r), "{target}");
        let status = get(target, "Outlook-iOS/2.0");
        assert!((400..500).contains(&status), "{target}: nginx answered {status}, the policy denies it");
    }
    assert_eq!(get("/EWS/Exchange.asmx", "Mozilla/5.0"), 200);
    assert_eq!(get("/owa/auth/logon.aspx", "Outlook-iOS/2.0"), 200);
}
