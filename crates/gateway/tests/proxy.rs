//! The gateway in front of a loopback mock Exchange.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IIS_EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies/iis-block-outlook-ua.toml");
const EWS_EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies/ews-allow-outlook-only.toml");

const EAS: &str = "/Microsoft-Server-ActiveSync/default.eas?Cmd=Sync&User=jdoe&DeviceId=ABC123&DeviceType=iPhone";
const OUTLOOK_MOBILE: &str = "Outlook-iOS-Android/1.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_never_reach_exchange_and_allowed_arrive_intact() {
    against(&std::fs::read_to_string(IIS_EXAMPLE).unwrap(), async |mock, gw| {
        let mut c = client(gw.addr).await;
        let auth = basic("CONTOSO\\jdoe", "s3cret");

        // Denied by the IIS filter emulation: 404 (.19), named rule, not forwarded.
        let a = c.send_body("POST", EAS, &[("user-agent", OUTLOOK_MOBILE)], Bytes::from_static(b"wbxml")).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert!(a.body.contains("Block Outlook mobile UA"), "{}", a.body);
        // A spelling of the path that IIS would decode is decided the same way.
        let mut c2 = client(gw.addr).await;
        let a = c2
            .get(
                "/Microsoft-Server-Active%53ync/./default.eas?Cmd=Sync",
                &[("user-agent", "x Outlook-iOS-Android/1.0")],
            )
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert!(mock.seen().is_empty(), "denied requests reached the upstream");

        // Allowed: method, URI, headers (Authorization too) and body arrive unchanged.
        let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut c3 = client(gw.addr).await;
        let a = c3
            .send_body(
                "POST",
                EAS,
                &[
                    ("user-agent", "Apple-iPhone15C3/2104.100"),
                    ("authorization", &auth),
                    ("ms-asprotocolversion", "16.1"),
                    ("x-custom", "kept"),
                    ("content-type", "application/vnd.ms-sync.wbxml"),
                    ("connection", "keep-alive, x-hop"),
                    ("x-hop", "dropped"),
                ],
                Bytes::from(body.clone()),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let seen = mock.seen();
        assert_eq!(seen.len(), 1);
        let s = &seen[0];
        assert_eq!((s.method.as_str(), s.uri.as_str()), ("POST", EAS));
        assert_eq!(s.body, body);
        let h = |n: &str| s.headers.get(n).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(h("authorization"), Some(auth.clone()));
        assert_eq!(h("host").as_deref(), Some("mail.contoso.com"));
        assert_eq!(h("x-custom").as_deref(), Some("kept"));
        assert_eq!(h("ms-asprotocolversion").as_deref(), Some("16.1"));
        assert_eq!(h("content-length"), Some(body.len().to_string()));
        assert_eq!(h("x-forwarded-for").as_deref(), Some("127.0.0.1"));
        assert_eq!(h("x-hop"), None, "headers named by Connection are hop-by-hop");
        assert_eq!(h("connection"), None);
        // The answer comes back with the upstream's headers.
        assert_eq!(a.conn(), s.conn);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_policy_example_decides_like_exchange() {
    against(&std::fs::read_to_string(EWS_EXAMPLE).unwrap(), async |mock, gw| {
        let mut c = client(gw.addr).await;
        // Exchange judges the signed-in caller (an anonymous request is
        // IIS's to challenge, below).
        let auth = basic("CONTOSO\\jdoe", "s3cret");
        let outlook = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)";
        let a = c
            .send_body(
                "POST",
                "/EWS/Exchange.asmx",
                &[("user-agent", outlook), ("authorization", &auth)],
                Bytes::from_static(b"<x/>"),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
        let mac = [("user-agent", "MacOutlook/16.80"), ("authorization", &auth)];
        let a = c.send_body("POST", "/EWS/Exchange.asmx", &mac, Bytes::new()).await;
        assert_eq!(a.status, StatusCode::OK);
        let mut c = client(gw.addr).await;
        let app = "ExchangeServicesClient/15.0";
        let a = c
            .send_body("POST", "/EWS/Exchange.asmx", &[("user-agent", app), ("authorization", &auth)], Bytes::new())
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        // The same application without credentials reaches Exchange's challenge.
        let mut c = client(gw.addr).await;
        let a = c.send_body("POST", "/EWS/Exchange.asmx", &[("user-agent", app)], Bytes::new()).await;
        assert_eq!(a.status, StatusCode::OK);
        // Other protocols are not this policy's business.
        let mut c = client(gw.addr).await;
        assert_eq!(c.get("/owa/", &[("user-agent", app)]).await.status, StatusCode::OK);
        assert_eq!(mock.seen().len(), 4);
        let metrics = gw.handle.metrics();
        assert!(metrics.contains("protocol=\"ews\",client=\"ews-app\",decision=\"deny\""), "{metrics}");
        assert!(metrics.contains("protocol=\"ews\",client=\"outlook-windows\",decision=\"allow\",rule=\"\"} 1"));
        assert!(metrics.contains("casguard_gateway_upstream_latency_seconds_count 4"), "{metrics}");
    })
    .await;
}

/// An `Authorization` header value: NTLM naming `domain\user`.
fn ntlm_header(domain: &str, user: &str) -> String {
    use base64::Engine;
    format!("NTLM {}", B64.encode(ntlm_type3(domain, user)))
}

const NTLM_TYPE1: &str = "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntlm_handshake_stays_on_one_upstream_connection() {
    ntlm_handshake(0).await;
}

/// With worker threads, each accepting clients of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntlm_handshake_stays_on_one_upstream_connection_with_workers() {
    ntlm_handshake(3).await;
}

async fn ntlm_handshake(threads: usize) {
    within(30, async {
        let (mock, up) = start_mock().await;
        let policy = "default = 'allow'\n[[rule]]\nname = 'no mallory'\naction = 'deny'\nuser = 'mallory'\n";
        let gw = start_gateway_with(policy, up, |c| c.threads = threads).await;
        let ua = [("user-agent", "Microsoft Office/16.0 (Microsoft Outlook 16.0)")];

        let mut a = client(gw.addr).await;
        let mut b = client(gw.addr).await;
        let a1 = a.get("/ntlm", &[ua[0], ("authorization", NTLM_TYPE1)]).await;
        assert_eq!(a1.status, StatusCode::UNAUTHORIZED);
        assert!(a1.headers.get("www-authenticate").unwrap().to_str().unwrap().starts_with("NTLM TlRMTVNTUAAC"));
        // Another client in between: it gets its own upstream connection,
        // and its type 3 fails there because its connection got no challenge.
        let b1 = b.get("/ntlm", &[ua[0], ("authorization", &ntlm_header("CONTOSO", "bob"))]).await;
        assert_eq!(b1.status, StatusCode::UNAUTHORIZED);
        assert_ne!(b1.conn(), a1.conn());
        let a2 = a.get("/ntlm", &[ua[0], ("authorization", &ntlm_header("CONTOSO", "alice"))]).await;
        assert_eq!(a2.status, StatusCode::OK, "{}", a2.body);
        assert_eq!(a2.conn(), a1.conn());
        // Later requests on the connection carry no header but belong to alice.
        let a3 = a.get("/ews/exchange.asmx", &ua).await;
        assert_eq!((a3.status, a3.conn()), (StatusCode::OK, a1.conn()));

        // The policy sees the NTLM user: mallory's connection is cut after the handshake.
        let mut m = client(gw.addr).await;
        let m1 = m.get("/ntlm", &[ua[0], ("authorization", NTLM_TYPE1)]).await;
        assert_eq!(m1.status, StatusCode::UNAUTHORIZED);
        let m2 = m.get("/ntlm", &[ua[0], ("authorization", &ntlm_header("CONTOSO", "mallory"))]).await;
        assert_eq!(m2.status, StatusCode::FORBIDDEN);

        let conns: std::collections::BTreeSet<u64> = mock.seen().iter().map(|s| s.conn).collect();
        assert_eq!(conns.len(), 3, "one upstream connection per client connection");
        let dir = gw.stop().await;
        let log = access_logs(&dir);
        assert!(log.contains(" /ews/exchange.asmx - ") && log.contains("CONTOSO\\alice"), "{log}");
    })
    .await;
}

/// The organisation's mailbox settings judge a mailbox once IIS signed the
/// request in: a request naming nobody (the first leg of every NTLM
/// sign-in, a balancer's health page) must reach Exchange, or nobody could
/// sign in and the balancer would take EWS out of service. Credentials the
/// gateway cannot name (a Kerberos ticket, an opaque token) sign someone
/// in: judged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_settings_let_anonymous_first_legs_reach_exchange() {
    use base64::Engine;
    within(30, async {
        let (mock, up) = start_mock().await;
        let policy = "[mailbox_protocols]\nmapi_http_enabled = false\n[ews_access]\news_enabled = true\n\
                      application_access_policy = 'EnforceAllowList'\nlist = ['Outlook-iOS/*']\n";
        let gw = start_gateway(policy, up).await;
        let ua = ("user-agent", "Microsoft Office/16.0 (Microsoft Outlook 16.0)");
        let kerberos = format!("Negotiate {}", B64.encode(b"\x60\x82\x01\x0a\x06\x06\x2b\x06\x01\x05\x05\x02ticket"));
        let bob = ntlm_header("CONTOSO", "bob");
        // Path, headers, and the answer: Exchange's (the mock's 200) or the gateway's 403.
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, StatusCode);
        let cases: [Case; 7] = [
            ("/mapi/emsmdb/?MailboxId=x", vec![ua, ("authorization", NTLM_TYPE1)], StatusCode::OK),
            ("/mapi/emsmdb/?MailboxId=x", vec![ua], StatusCode::OK),
            ("/EWS/healthcheck.htm", vec![("user-agent", "KEMP/1.0")], StatusCode::OK),
            ("/EWS/Exchange.asmx", vec![("user-agent", "curl/8"), ("authorization", NTLM_TYPE1)], StatusCode::OK),
            ("/mapi/emsmdb/?MailboxId=x", vec![ua, ("authorization", &bob)], StatusCode::FORBIDDEN),
            ("/mapi/emsmdb/?MailboxId=x", vec![ua, ("authorization", &kerberos)], StatusCode::FORBIDDEN),
            (
                "/EWS/Exchange.asmx",
                vec![("user-agent", "curl/8"), ("authorization", "Bearer opaque")],
                StatusCode::FORBIDDEN,
            ),
        ];
        for (path, headers, want) in &cases {
            let mut c = client(gw.addr).await;
            let before = mock.seen().len();
            let a = c.get(path, headers).await;
            assert_eq!(a.status, *want, "{path} {headers:?}: {}", a.body);
            assert_eq!(mock.seen().len() - before, usize::from(*want == StatusCode::OK), "{path} {headers:?}");
        }
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_reads_back_as_an_iis_log() {
    within(30, async {
        let (_mock, up) = start_mock().await;
        let mut policy = std::fs::read_to_string(IIS_EXAMPLE).unwrap();
        policy.push_str("\n[[rule]]\nname = 'no legacy'\naction = 'deny'\nuser_agent = { prefix = ['Legacy'] }\n");
        let gw = start_gateway_with(&policy, up, trust_loopback).await;
        let port = gw.addr.port();
        let mut c = client(gw.addr).await;
        let auth = basic("CONTOSO\\jdoe", "s3cret-pa55");
        let ua = "Apple-iPhone15C3/2104.100 (iPhone; iOS 17)";
        let a = c
            .send_body(
                "POST",
                EAS,
                &[("user-agent", ua), ("authorization", &auth), ("x-forwarded-for", "52.96.1.1"), ("referer", "")],
                Bytes::from_static(b"x"),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
        // A password in the query is judged as sent and never written out.
        let referer = "https://mail.contoso.com/owa/auth.owa?password=s3cret-pa55";
        let a =
            c.get("/owa/?a=1&password=s3cret-pa55", &[("user-agent", "Legacy Client 1.0"), ("referer", referer)]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        let mut c = client(gw.addr).await;
        let a = c.get(EAS, &[("user-agent", OUTLOOK_MOBILE)]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        let dir = gw.stop().await;

        let logs = dir.path().join("logs");
        let files: Vec<_> = std::fs::read_dir(&logs).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files.len(), 1);
        let name = files[0].to_string_lossy().into_owned();
        assert!(name.starts_with("u_ex") && name.ends_with("_x.log") && name.len() == 16, "{name}");
        let data = std::fs::read(logs.join(&name)).unwrap();
        let text = String::from_utf8_lossy(&data);
        assert!(!text.contains("s3cret") && !text.contains(&auth[6..]), "credentials in the log");

        let it = exchange::Interpreter::builtin();
        let mut reqs = Vec::new();
        let mut extra = Vec::new();
        let mut req = exchange::Request::default();
        let stats = w3c::scan_bytes(&data, &w3c::ScanOptions::default(), &mut |r: &w3c::Record<'_>| {
            it.read_record(r, &mut req);
            reqs.push(req.clone());
            // `-` (empty) reads back as absent.
            let named =
                |n: &str| r.get_named(n).map_or("(none)".to_string(), |v| String::from_utf8_lossy(v).into_owned());
            extra.push((
                named("x-casguard-decision"),
                named("x-casguard-rule"),
                named("time-taken"),
                named("sc-win32-status"),
            ));
        });
        assert_eq!(stats.malformed_total(), 0, "{text}");
        assert_eq!(reqs.len(), 3, "{text}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;

        let r = &reqs[0];
        assert!((now - r.time).abs() < 120, "{}", r.time);
        assert_eq!((r.method.as_str(), r.stem.as_str()), ("POST", "/Microsoft-Server-ActiveSync/default.eas"));
        assert_eq!(r.query, "Cmd=Sync&User=jdoe&DeviceId=ABC123&DeviceType=iPhone");
        assert_eq!((r.username.as_str(), r.user.as_str()), ("CONTOSO\\jdoe", "jdoe"));
        assert_eq!(r.user_agent, ua);
        assert_eq!((r.status, r.substatus, r.server_port), (200, 0, port));
        assert_eq!(r.peer_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(r.server_ip, Some("127.0.0.1".parse().unwrap()));
        // Trusted peer: its X-Forwarded-For is logged and read back as the client.
        assert_eq!(r.forwarded_for, "52.96.1.1");
        assert_eq!(it.networks().name(r.network), "microsoft365");
        assert_eq!(r.activesync.command, "Sync");
        assert_eq!(it.catalog().get(r.client).id, "ios-mail");
        assert_eq!(extra[0].0, "allow");
        assert_eq!(extra[0].1, "(none)");
        assert!(extra[0].2.parse::<u64>().is_ok());
        assert_eq!(extra[0].3, "0", "a completed request has win32 status 0");

        let r = &reqs[1];
        assert_eq!((r.stem.as_str(), r.query.as_str(), r.status), ("/owa/", "a=1&password=REDACTED", 403));
        assert_eq!(r.user_agent, "Legacy Client 1.0");
        assert_eq!((extra[1].0.as_str(), extra[1].1.as_str()), ("deny", "no+legacy"));

        let r = &reqs[2];
        assert_eq!((r.status, r.substatus), (404, 19));
        assert_eq!((extra[2].0.as_str(), extra[2].1.as_str()), ("deny", "iis_filter:+Block+Outlook+mobile+UA"));
        assert_eq!(it.catalog().get(r.client).id, "outlook-mobile");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_forwarded_for_is_ignored() {
    let dir = against(ALLOW, async |mock, gw| {
        let mut c = client(gw.addr).await;
        // (A public one from this internal peer is refused: see redteam.rs.)
        c.get("/owa/", &[("x-forwarded-for", "192.168.7.7")]).await;
        // Exchange gets the real peer only, not the client's claim.
        assert_eq!(mock.seen()[0].headers.get("x-forwarded-for").unwrap(), "127.0.0.1");
    })
    .await;
    let log = access_logs(&dir);
    assert!(!log.contains("192.168.7.7"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reload_keeps_the_old_policy_and_good_changes_apply() {
    within(40, async {
        let (mock, up) = start_mock().await;
        let deny = |ua: &str| format!("default = 'allow'\n[[rule]]\nname = 'deny {ua}'\naction = 'deny'\nuser_agent = {{ prefix = ['{ua}'] }}\n");
        let gw = start_gateway_with(&deny("BadClient"), up, |c| c.reload_interval = 1).await;
        let mut c = client(gw.addr).await;
        assert_eq!(c.get("/owa/", &[("user-agent", "BadClient/1")]).await.status, StatusCode::FORBIDDEN);

        // A broken file: rejected on explicit reload (SIGHUP's path) and by the poller.
        std::fs::write(gw.policy_path(), "default = 'allow'\n[[rule]]\nname = \n").unwrap();
        assert!(gw.handle.reload().is_err());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(c.get("/owa/", &[("user-agent", "BadClient/1")]).await.status, StatusCode::FORBIDDEN);
        assert_eq!(c.get("/owa/", &[("user-agent", "OtherClient/1")]).await.status, StatusCode::OK);
        assert!(gw.logged("reload rejected"), "{:?}", gw.events());

        // A good change is picked up by the file poller, no signal needed.
        std::fs::write(gw.policy_path(), deny("OtherClient")).unwrap();
        let other = async || c.get("/owa/", &[("user-agent", "OtherClient/1")]).await.status;
        until_status(StatusCode::FORBIDDEN, "new policy", other).await;
        assert_eq!(c.get("/owa/", &[("user-agent", "BadClient/1")]).await.status, StatusCode::OK);
        assert!(mock.seen().iter().all(|s| s.headers.get("user-agent").unwrap() != "BadClient/1" || s.uri == "/owa/"));
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_group_file_is_picked_up_without_a_signal() {
    within(40, async {
        let (_mock, up) = start_mock().await;
        let policy = "default = 'allow'\n[[rule]]\nname = 'blocked people'\naction = 'deny'\nuser = { group_file = 'blocked.txt' }\n";
        let gw = start_gateway_with(policy, up, |c| {
            c.reload_interval = 1;
            let dir = c.policy.as_ref().unwrap().parent().unwrap();
            std::fs::write(dir.join("blocked.txt"), "# people we block\nCONTOSO\\alice\n").unwrap();
        })
        .await;
        let status = |user: &str| {
            let auth = basic(user, "pw");
            async move { client(gw.addr).await.get("/owa/", &[("authorization", &auth)]).await.status }
        };
        assert_eq!(status("CONTOSO\\alice").await, StatusCode::FORBIDDEN);
        assert_eq!(status("CONTOSO\\bob").await, StatusCode::OK);

        // Only the group file changes; the poller sees it.
        let group = gw.policy_path().parent().unwrap().join("blocked.txt");
        std::fs::write(&group, "# people we block\nCONTOSO\\alice\nbob@contoso.com\n").unwrap();
        until_status(StatusCode::FORBIDDEN, "the group file's change", async || status("CONTOSO\\bob").await).await;
        assert!(gw.logged("policy reloaded"), "{:?}", gw.events());
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_closed_when_the_policy_cannot_load() {
    within(10, async {
        let (_mock, up) = start_mock().await;
        let err = refused_at_start("default = 'allow'\n[[rule]]\nname = 'x'\naction = 'maybe'\n", up).await;
        assert!(matches!(err, gateway::GatewayError::Policy(_)), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config(dir.path(), ALLOW, up);
        config.policy = Some(dir.path().join("missing.toml"));
        assert!(matches!(
            gateway::Gateway::bind(config, gateway::events::silent()).await,
            Err(gateway::GatewayError::Policy(_))
        ));
        // A device rule without an inventory cannot be evaluated: also refused.
        let policy = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/policies/block-new-outlook-devices.toml"
        ))
        .unwrap();
        let err = refused_at_start(&policy, up).await;
        assert!(matches!(err, gateway::GatewayError::Policy(_)), "{err}");
    })
    .await;
}

/// A Ping held `hold_ms` through a gateway whose idle and header timeouts are
/// `timeout` seconds: the answer, and how long it took.
async fn ping_held(timeout: u64, hold_ms: u64) -> (Answer, Duration) {
    let (_mock, up) = start_mock().await;
    let gw = start_gateway_with(ALLOW, up, |c| {
        c.idle_timeout = timeout;
        c.header_timeout = timeout;
    })
    .await;
    let mut c = client(gw.addr).await;
    let t = Instant::now();
    let path = format!("/Microsoft-Server-ActiveSync?Cmd=Ping&User=jdoe&DeviceId=P1&DeviceType=iPhone&ms={hold_ms}");
    let a = c.send_body("POST", &path, &[("user-agent", "Apple-iPhone/1")], Bytes::from_static(b"ping")).await;
    let took = t.elapsed();
    gw.stop().await;
    (a, took)
}

/// A Ping held longer than the idle and header timeouts is not cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_held_5s_passes() {
    let (a, took) = within(30, ping_held(1, 5000)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.starts_with("held"), "{}", a.body);
    assert!(took >= Duration::from_millis(4900), "{took:?}");
}

/// The 60 s Ping. Ignored in the normal run for time; run with --ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes 60 s"]
async fn ping_held_60s_passes() {
    let (a, took) = within(90, ping_held(5, 60_000)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(took >= Duration::from_secs(60), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_request_drops_the_connection() {
    let policy = "default = 'allow'\n[[ip_restrictions]]\npath = '/abortme'\nallow_unlisted = false\n\
                      deny_action = 'AbortRequest'\nentries = []\n";
    against(policy, async |mock, gw| {
        let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
        tcp.write_all(b"GET /abortme HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        let n = tcp.read_to_end(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0, "aborted requests get no answer: {}", String::from_utf8_lossy(&buf));
        assert!(mock.seen().is_empty());
    })
    .await;
}

/// Read until the peer closes; how long that took.
async fn closed_after(tcp: &mut TcpStream) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return t.elapsed(),
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_idle_connections_are_closed() {
    against_with(
        ALLOW,
        |c| {
            c.header_timeout = 1;
            c.idle_timeout = 3;
        },
        async |_mock, gw| {
            // Slowloris: a head that never completes.
            let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
            tcp.write_all(b"GET /owa/ HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            let took = closed_after(&mut tcp).await;
            assert!(took < Duration::from_millis(2500), "{took:?}");
            // Connected, never a byte: same limit.
            let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
            assert!(closed_after(&mut tcp).await < Duration::from_millis(2500));
            // A byte every 200 ms, on a keep-alive connection's second request:
            // trickling does not reset the clock.
            let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
            tcp.write_all(b"GET /owa/ HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
            let mut buf = [0u8; 4096];
            assert!(tcp.read(&mut buf).await.unwrap() > 0, "first request answered");
            let trickled = Instant::now();
            let (mut read, mut write) = tcp.into_split();
            let trickle = tokio::spawn(async move {
                for b in b"GET /owa/ HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle() {
                    if write.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            while read.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            let took = trickled.elapsed();
            trickle.abort();
            assert!(took < Duration::from_millis(2500), "{took:?}");
            // Idle keep-alive: kept past the header timeout, closed at the idle timeout.
            let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
            tcp.write_all(b"GET /owa/ HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
            let took = closed_after(&mut tcp).await;
            assert!(took > Duration::from_millis(2500) && took < Duration::from_millis(4500), "{took:?}");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_header_names_keep_exchanges_case() {
    within(20, async {
        let (up, mut heads) = one_shot_upstream(
            b"HTTP/1.1 200 OK\r\nMS-Server-ActiveSync: 15.1\r\nMS-ASProtocolVersions: 14.1,16.1\r\n\
              X-MS-Diagnostics: 4\r\nrequest-id: abc\r\nContent-Length: 2\r\n\r\nok",
        )
        .await;
        let gw = start_gateway(ALLOW, up).await;
        let text = send_raw(
            gw.addr,
            b"OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: x\r\nMS-ASProtocolVersion: 16.1\r\n\r\n",
        )
        .await;
        for line in
            ["MS-Server-ActiveSync: 15.1", "MS-ASProtocolVersions: 14.1,16.1", "X-MS-Diagnostics: 4", "request-id: abc"]
        {
            assert!(text.contains(&format!("\r\n{line}\r\n")), "{line:?} not in {text}");
        }
        // The request reached Exchange; its header names may be lower-cased,
        // as over HTTP/2, which IIS reads alike.
        let head = String::from_utf8(heads.recv().await.unwrap()).unwrap().to_ascii_lowercase();
        assert!(head.contains("\r\nms-asprotocolversion: 16.1\r\n"), "{head}");
        gw.stop().await;
    })
    .await;
}

/// Request smuggling: what the gateway and Exchange could read differently
/// is either rejected or sent on in one reading only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_is_never_forwarded_ambiguously() {
    within(20, async {
        let (up, mut heads) = one_shot_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        let gw = start_gateway(ALLOW, up).await;
        // Content-Length and chunked: chunked wins, the length is dropped, and
        // the connection closes, so the bytes after the chunked body are not
        // read as a second request.
        let answer = send_raw(
            gw.addr,
            b"POST /owa/ HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n\
              0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await;
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
        let head = String::from_utf8(heads.recv().await.unwrap()).unwrap().to_ascii_lowercase();
        assert!(head.contains("transfer-encoding: chunked") && !head.contains("content-length"), "{head}");
        // Two different lengths, or chunked not last: 400, nothing forwarded.
        for raw in [
            &b"POST /owa/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello"[..],
            b"POST /owa/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        ] {
            let answer = send_raw(gw.addr, raw).await;
            assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(heads.try_recv().is_err(), "a second request reached the upstream");
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_closing_its_side_closes_the_client_connection_once_idle() {
    within(20, async {
        let (up, _heads) = one_shot_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        let gw = start_gateway(ALLOW, up).await;
        for _ in 0..2 {
            // Nothing here says close: not the response, not the idle timeout (100 s).
            let text = send_raw(gw.addr, b"GET /owa/ HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\nok"), "{text}");
        }
        gw.stop().await;
    })
    .await;
}

/// One response of `Content-Length: 2` read off `tcp`, or `None` when the
/// connection closes first.
async fn read_short_response(tcp: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            if got.len() >= end + 4 + 2 {
                return Some(String::from_utf8_lossy(&got).into_owned());
            }
        }
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// An upstream that answers each connection's first request with a short
/// 200 and no `Connection: close`, then closes it after `pause` plus up to
/// 1.5 ms that differ from one connection to the next, as an idle timeout
/// shorter than the gateway's would. Every request head it reads comes out
/// of the receiver.
async fn closing_upstream(pause: Duration) -> (std::net::SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok((mut tcp, _)) = listener.accept().await {
            n += 1;
            let pause = pause + Duration::from_micros(n * 397 % 1500);
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = heads.send(got);
                let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                tokio::time::sleep(pause).await;
            });
        }
    });
    (addr, seen)
}

/// What one client saw: requests answered 200, POSTs answered 502, and
/// requests that met a closed client connection.
#[derive(Default)]
struct Raced {
    answered: usize,
    post_502: usize,
    closed: usize,
}

/// `rounds` requests on one keep-alive connection (a new one when it
/// closes), every third a POST, each sent `wait` plus up to 1.5 ms after the
/// last answer: about when the upstream closes its side.
async fn race_closes(gw: std::net::SocketAddr, rounds: usize, wait: Duration, seed: u64) -> Raced {
    let mut seen = Raced::default();
    let mut tcp = TcpStream::connect(gw).await.unwrap();
    for round in 0..rounds as u64 {
        let post = round % 3 == 0;
        let request: &[u8] = if post {
            b"POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        } else {
            b"GET /owa/ HTTP/1.1\r\nHost: x\r\n\r\n"
        };
        let text = match tcp.write_all(request).await {
            Ok(()) => read_short_response(&mut tcp).await,
            Err(_) => None,
        };
        match text {
            None => seen.closed += 1,
            Some(text) if post && text.starts_with("HTTP/1.1 502 ") => seen.post_502 += 1,
            Some(text) => {
                let what = if post { "POST" } else { "GET" };
                assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("ok"), "{what}: {text}");
                seen.answered += 1;
                tokio::time::sleep(wait + Duration::from_micros((seed + round) * 641 % 1500)).await;
                continue;
            }
        }
        tcp = TcpStream::connect(gw).await.unwrap();
    }
    seen
}

/// The upstream closes every keep-alive connection after its first response
/// (with no `Connection: close` to say so), just as the client's next
/// request comes: the gateway either sees the close first and closes the
/// client connection (the client sends again, as on any keep-alive close),
/// or sends the request on the closing connection. A GET found unsent, or
/// sent but unanswered, goes once more on a new connection: it is never
/// answered 502. A POST that may have been read is answered 502, never sent
/// twice. No request is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_close_racing_the_next_request_loses_or_doubles_nothing() {
    within(60, async {
        let wait = Duration::from_millis(210);
        let (up, mut heads) = closing_upstream(wait).await;
        let gw = start_gateway(ALLOW, up).await;
        let clients: Vec<_> = (0..8).map(|seed| tokio::spawn(race_closes(gw.addr, 15, wait, seed * 7))).collect();
        let mut all = Raced::default();
        for c in clients {
            let seen = c.await.unwrap();
            all.answered += seen.answered;
            all.post_502 += seen.post_502;
            all.closed += seen.closed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut forwarded = 0;
        while heads.try_recv().is_ok() {
            forwarded += 1;
        }
        let metrics = gw.handle.metrics();
        let retries = metrics.lines().find(|l| l.starts_with("casguard_gateway_upstream_retries_total ")).unwrap();
        let (answered, post_502, closed) = (all.answered, all.post_502, all.closed);
        let counts =
            format!("{answered} answered, {post_502} POSTs answered 502, {closed} met a closed connection, {retries}");
        // A request sent on a closing connection is never read there: the
        // upstream reads one request a connection.
        assert_eq!(forwarded, answered, "every answered request reached the upstream once, and no other did: {counts}");
        eprintln!("{counts}");
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_limits() {
    against_with(
        ALLOW,
        |c| {
            c.max_headers = 20;
            c.max_header_bytes = 8192;
        },
        async |mock, gw| {
            let mut many = String::from("GET /owa/ HTTP/1.1\r\nHost: x\r\n");
            for i in 0..40 {
                many.push_str(&format!("X-H{i}: v\r\n"));
            }
            many.push_str("\r\n");
            let mut big = String::from("GET /owa/ HTTP/1.1\r\nHost: x\r\nX-Big: ");
            big.push_str(&"a".repeat(20_000));
            big.push_str("\r\n\r\n");
            for req in [many, big] {
                let (_, head) = exchange_raw(gw.addr, req.as_bytes()).await;
                assert!(head.starts_with("HTTP/1.1 431"), "{head}");
            }
            assert!(mock.seen().is_empty());
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_healthy_upstream_and_a_sole_dead_one_gets_502() {
    within(30, async {
        let (mock, up) = start_mock().await;
        let dead = free_addr();
        let gw = start_gateway_with(ALLOW, up, |c| {
            c.upstream = upstreams(&[dead, up]);
            c.health_fall = 1;
        })
        .await;
        for _ in 0..3 {
            let mut c = client(gw.addr).await;
            assert_eq!(c.get("/owa/", &[]).await.status, StatusCode::OK);
        }
        assert_eq!(mock.seen().len(), 3);
        assert!(gw.logged(&format!("upstream http://{dead} is down")), "{:?}", gw.events());
        assert!(gw.handle.metrics().contains(&format!("casguard_gateway_upstream_up{{upstream=\"http://{dead}\"}} 0")));
        gw.stop().await;

        // A sole upstream is never taken out: each request tries it.
        let gw = start_gateway_with(ALLOW, up, |c| {
            c.upstream = upstreams(&[dead]);
            c.health_fall = 1;
        })
        .await;
        for _ in 0..3 {
            let mut c = client(gw.addr).await;
            assert_eq!(c.get("/owa/", &[]).await.status, StatusCode::BAD_GATEWAY);
        }
        assert!(gw.handle.metrics().contains(&format!("casguard_gateway_upstream_up{{upstream=\"http://{dead}\"}} 1")));
        assert!(gw.logged("it is the only upstream, so it stays in use"), "{:?}", gw.events());
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_serves_prometheus_text() {
    within(20, async {
        let (_mock, up) = start_mock().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config(dir.path(), ALLOW, up);
        config.metrics = Some("127.0.0.1:0".parse().unwrap());
        let gw = gateway::Gateway::bind(config, gateway::events::silent()).await.unwrap();
        let (addr, maddr, handle) = (gw.listen_addrs()[0], gw.metrics_addr().unwrap(), gw.handle());
        let task = tokio::spawn(gw.run());
        let mut c = client(addr).await;
        c.get("/mapi/emsmdb/", &[("user-agent", "Microsoft Office/16.0 (Microsoft Outlook 16.0)")]).await;
        let mut m = client(maddr).await;
        let a = m.get("/metrics", &[]).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.body.contains("casguard_gateway_requests_total{protocol=\"mapi\",client=\"outlook-windows\",decision=\"allow\",rule=\"\"} 1"), "{}", a.body);
        assert!(a.body.contains("casguard_gateway_open_connections 1"), "{}", a.body);
        assert!(a.body.contains("# TYPE casguard_gateway_upstream_latency_seconds histogram"));
        handle.shutdown();
        drop(c);
        within(10, task).await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_requests_in_flight() {
    shutdown_drains(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_requests_in_flight_with_workers() {
    shutdown_drains(2).await;
}

async fn shutdown_drains(threads: usize) {
    within(30, async {
        let (_mock, up) = start_mock().await;
        let gw = start_gateway_with(ALLOW, up, |c| c.threads = threads).await;
        let addr = gw.addr;
        let in_flight = tokio::spawn(async move {
            let mut c = client(addr).await;
            c.get("/hold?ms=1500", &[]).await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        gw.handle.shutdown();
        let a = in_flight.await.unwrap();
        assert_eq!(a.status, StatusCode::OK);
        // New connections are refused once shut down.
        within(10, gw.task).await.unwrap().unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    })
    .await;
}
