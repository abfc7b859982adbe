//! Regression tests for the ways past the gateway and the protocol slips
//! found in issue 21, each named after what it stops.

mod common;

use std::time::Duration;

use common::*;
use hyper::StatusCode;

const DENY_EVIL_UA: &str =
    "default = 'allow'\n[[rule]]\nname = 'evil client'\naction = 'deny'\nuser_agent = { contains = ['Evil Client'] }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_user_agent_header_cannot_pass_a_user_agent_rule() {
    against(DENY_EVIL_UA, async |mock, gw| {
        for (first, second) in [("Mozilla/5.0", "Evil Client/1.0"), ("Evil Client/1.0", "Mozilla/5.0")] {
            let raw =
                format!("GET /owa/ HTTP/1.1\r\nHost: mail\r\nUser-Agent: {first}\r\nUser-Agent: {second}\r\n\r\n");
            let answer = send_raw(gw.addr, raw.as_bytes()).await;
            assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
            assert!(answer.contains("repeated User-Agent header"), "{answer}");
        }
        // One value of each is served as before.
        let answer = send_raw(
            gw.addr,
            b"GET /owa/ HTTP/1.1\r\nHost: mail\r\nUser-Agent: Evil Client/1.0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
        let answer = send_raw(
            gw.addr,
            b"GET /owa/ HTTP/1.1\r\nHost: mail\r\nUser-Agent: Mozilla/5.0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        assert_eq!(mock.seen().len(), 1, "only the one-valued allowed request arrives");
    })
    .await;
}

/// (Two Content-Length headers: hyper refuses different values and merges
/// equal ones, so Exchange gets one; `tests/proxy.rs` tests the framing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_host_or_authorization_is_refused() {
    against(ALLOW, async |mock, gw| {
        let auth = basic("CONTOSO\\jdoe", "pw");
        for raw in [
            "GET /owa/ HTTP/1.1\r\nHost: mail\r\nHost: evil\r\n\r\n".to_string(),
            format!("GET /owa/ HTTP/1.1\r\nHost: mail\r\nAuthorization: {auth}\r\nAuthorization: {auth}\r\n\r\n"),
        ] {
            let answer = send_raw(gw.addr, raw.as_bytes()).await;
            assert!(answer.starts_with("HTTP/1.1 400 "), "{raw:?} -> {answer}");
        }
        assert!(mock.seen().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_cut_policy_is_refused_at_start_and_on_reload() {
    within(30, async {
        let (mock, up) = start_mock().await;
        // At start: an empty file, comments only, and a file cut before its rules.
        for text in ["", "# nothing yet\n\n", "[ranges]\nadmin = ['10.0.0.0/8']\n"] {
            let err = refused_at_start(text, up).await;
            assert!(err.to_string().contains("would allow everything"), "{err}");
        }
        // On reload, by signal or by the poller: the old policy stays.
        let gw = start_gateway_with(DENY_EVIL_UA, up, |c| c.reload_interval = 1).await;
        let evil = |gw: std::net::SocketAddr| async move {
            client(gw).await.get("/owa/", &[("user-agent", "Evil Client/1.0")]).await.status
        };
        assert_eq!(evil(gw.addr).await, StatusCode::FORBIDDEN);
        std::fs::write(gw.policy_path(), "").unwrap();
        assert!(gw.handle.reload().is_err(), "an empty policy must not load");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(evil(gw.addr).await, StatusCode::FORBIDDEN, "the old policy still holds");
        assert!(gw.events().iter().any(|e| e.contains("reload rejected") && e.contains("empty")), "{:?}", gw.events());
        assert!(!gw.logged("(0 rules)"), "{:?}", gw.events());
        assert!(mock.seen().is_empty());
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_caught_half_written_is_not_loaded() {
    against_with(
        DENY_EVIL_UA,
        |c| c.reload_interval = 1,
        async |_mock, gw| {
            // Written in place, slowly: a first part that parses (and decides
            // nothing new), then the rest. Only the whole file may take effect.
            let path = gw.policy_path();
            let whole = format!(
                "{DENY_EVIL_UA}[[rule]]\nname = 'other'\naction = 'deny'\nuser_agent = {{ contains = ['Other'] }}\n"
            );
            for cut in [DENY_EVIL_UA.len() / 2, DENY_EVIL_UA.len() + 10, whole.len()] {
                std::fs::write(&path, &whole[..cut]).unwrap();
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            let other = async || client(gw.addr).await.get("/owa/", &[("user-agent", "Other/1")]).await.status;
            until_status(StatusCode::FORBIDDEN, "the whole policy", other).await;
            let reloads: Vec<String> = gw.events().into_iter().filter(|e| e.contains("reload")).collect();
            assert!(reloads.iter().all(|e| e.contains("(2 rules)")), "{reloads:?}");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_limit_is_exact() {
    against_with(
        ALLOW,
        |c| c.max_header_bytes = 65_536,
        async |mock, gw| {
            let head = |pad: usize| {
                let mut h = String::from("GET /owa/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ");
                let fixed = h.len() + 4;
                h.push_str(&"a".repeat(pad - fixed));
                h.push_str("\r\n\r\n");
                assert_eq!(h.len(), pad);
                h
            };
            let answer = send_raw(gw.addr, head(65_536).as_bytes()).await;
            assert!(answer.starts_with("HTTP/1.1 200 "), "{}", &answer[..answer.len().min(200)]);
            for size in [65_537, 80_000, 112_000] {
                let answer = send_raw(gw.addr, head(size).as_bytes()).await;
                assert!(answer.starts_with("HTTP/1.1 431 "), "{size}: {}", &answer[..answer.len().min(200)]);
            }
            assert_eq!(mock.seen().len(), 1);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_without_host_and_absolute_targets_reach_exchange_as_valid_http11() {
    within(20, async {
        let (up, mut heads) =
            one_shot_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
        let gw = start_gateway(ALLOW, up).await;

        let answer = send_raw(gw.addr, b"GET /owa/healthcheck.htm HTTP/1.0\r\n\r\n").await;
        assert!(answer.contains(" 200 "), "{answer}");
        let head = String::from_utf8_lossy(&heads.recv().await.unwrap()).to_ascii_lowercase();
        assert!(head.starts_with("get /owa/healthcheck.htm http/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nhost: {}\r\n", gw.addr)), "Host is the address reached: {head}");

        let answer = send_raw(
            gw.addr,
            b"GET http://mail.contoso.com/owa/?a=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.contains(" 200 "), "{answer}");
        let head = String::from_utf8_lossy(&heads.recv().await.unwrap()).to_ascii_lowercase();
        assert!(head.starts_with("get /owa/?a=1 http/1.1\r\n"), "origin form: {head}");
        assert!(head.contains("\r\nhost: mail.contoso.com\r\n") && !head.contains("other.example"), "{head}");

        // HTTP/1.1 without Host is not valid HTTP/1.1 (RFC 9112 §3.2).
        let answer = send_raw(gw.addr, b"GET /owa/ HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_http2_are_answered_not_forwarded() {
    against(ALLOW, async |mock, gw| {
        let answer =
            send_raw(gw.addr, b"CONNECT mail.contoso.com:443 HTTP/1.1\r\nHost: mail.contoso.com:443\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
        let answer = send_raw(gw.addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 400 ") && answer.contains("HTTP/2"), "{answer:?}");
        assert!(mock.seen().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_logged_with_status_and_counted() {
    let dir = against(ALLOW, async |_mock, gw| {
        let answer = send_raw(gw.addr, b"GET /EWS%252FExchange.asmx HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 404 ") && answer.contains("404.11"), "{answer}");
        let answer = send_raw(gw.addr, b"GET /owa%0A/x HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(gw.handle.metrics().contains("casguard_gateway_refused_total 2"), "{}", gw.handle.metrics());
        let events = gw.events();
        assert!(events.iter().any(|e| e.contains("refuse GET /EWS%2FExchange.asmx")), "{events:?}");
    })
    .await;
    let log = access_logs(&dir);
    assert!(log.lines().any(|l| l.contains(" 404 11 ")), "{log}");
    assert!(!log.lines().any(|l| !l.starts_with('#') && l.contains('\n')), "{log}");
}
