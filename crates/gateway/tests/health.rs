//! Upstream health: a blip in the only upstream costs the requests made
//! during the blip and no more; checks of Exchange's health pages, `fall`
//! and `rise`, passive detection from real requests, and routing by
//! protocol. Recovery is asserted as behaviour (every request made after
//! the upstream is back succeeds), never as a timing.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use hyper::StatusCode;

/// A new connection and one request: its status.
async fn status(gw: SocketAddr, path: &str) -> StatusCode {
    let mut c = client(gw).await;
    c.get(path, &[]).await.status
}

/// A gateway on ALLOW in front of `a` then `b`, taking one out after one
/// failure and asking the health pages every `interval` seconds.
async fn in_front_of(a: SocketAddr, b: SocketAddr, interval: u64, tweak: impl FnOnce(&mut gateway::Config)) -> Running {
    start_gateway_with(ALLOW, a, |c| {
        c.upstream = upstreams(&[a, b]);
        c.health_fall = 1;
        c.health_interval = interval;
        tweak(c);
    })
    .await
}

/// Requests every 100 ms for `total`, each on a new connection, each with
/// when it was sent; `during` runs alongside and says when the upstream
/// came back (and hands the restarted upstream over, to keep it serving).
async fn probe_while<F>(gw: SocketAddr, total: Duration, during: F) -> (Vec<(Duration, StatusCode)>, Duration, Mock)
where
    F: std::future::Future<Output = (Duration, Mock)> + Send + 'static,
{
    let start = Instant::now();
    let back = tokio::spawn(during);
    let mut seen = Vec::new();
    while start.elapsed() < total {
        let sent = start.elapsed();
        seen.push((sent, status(gw, "/owa/").await));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (back, mock) = back.await.unwrap();
    (seen, back, mock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sole_upstream_down_at_start_serves_every_request_made_once_it_is_up() {
    within(30, async {
        let addr = free_addr();
        let gw = start_gateway(ALLOW, addr).await;
        let t0 = Instant::now();
        let (seen, back, _mock) = probe_while(gw.addr, Duration::from_millis(2500), async move {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let (mock, _) = start_mock_at(addr).await;
            (t0.elapsed(), mock)
        })
        .await;
        let before: Vec<_> = seen.iter().filter(|(t, _)| *t + Duration::from_millis(50) < back).collect();
        let after: Vec<_> = seen.iter().filter(|(t, _)| *t > back).collect();
        assert!(!before.is_empty() && after.len() >= 5, "{seen:?}");
        assert!(before.iter().all(|(_, s)| *s == StatusCode::BAD_GATEWAY), "down: 502, never 503: {seen:?}");
        assert!(after.iter().all(|(_, s)| *s == StatusCode::OK), "up at {back:?}: {seen:?}");
        assert!(!gw.logged("is down"), "{:?}", gw.events());
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sole_upstream_killed_and_back_within_half_a_second_serves_at_once() {
    within(30, async {
        let (mock, addr) = start_mock().await;
        let gw = start_gateway(ALLOW, addr).await;
        assert_eq!(status(gw.addr, "/owa/").await, StatusCode::OK);
        let t0 = Instant::now();
        let (seen, back, _mock) = probe_while(gw.addr, Duration::from_millis(2000), async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            mock.stop().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (mock, _) = start_mock_at(addr).await;
            (t0.elapsed(), mock)
        })
        .await;
        let after: Vec<_> = seen.iter().filter(|(t, _)| *t > back).collect();
        assert!(after.len() >= 5, "{seen:?}");
        assert!(after.iter().all(|(_, s)| *s == StatusCode::OK), "back at {back:?}: {seen:?}");
        assert!(seen.iter().all(|(_, s)| *s != StatusCode::SERVICE_UNAVAILABLE), "{seen:?}");
        assert!(seen.iter().any(|(_, s)| *s == StatusCode::BAD_GATEWAY), "the blip was seen: {seen:?}");
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_upstream_is_down_all_are_tried() {
    within(30, async {
        let (a, a_addr) = start_mock().await;
        let (b, b_addr) = start_mock().await;
        let gw = in_front_of(a_addr, b_addr, 3600, |_| {}).await;
        a.stop().await;
        b.stop().await;
        // Both in use, both fail: 502; and now both are out.
        assert_eq!(status(gw.addr, "/owa/").await, StatusCode::BAD_GATEWAY);
        assert!(gw.events().iter().filter(|e| e.contains("is down after 1 failure")).count() == 2, "{:?}", gw.events());
        // Every upstream out and none connects: the configured status.
        assert_eq!(status(gw.addr, "/owa/").await, StatusCode::SERVICE_UNAVAILABLE);
        // One is back though still marked out: tried, and it serves.
        let (b, _) = start_mock_at(b_addr).await;
        for _ in 0..4 {
            assert_eq!(status(gw.addr, "/owa/").await, StatusCode::OK);
        }
        assert_eq!(b.seen().len(), 4);
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_connections_count_toward_fall_and_passed_checks_bring_it_back() {
    within(40, async {
        let a_addr = free_addr();
        let (b, b_addr) = start_mock().await;
        let gw = start_gateway_with(ALLOW, b_addr, |c| {
            c.upstream = upstreams(&[a_addr, b_addr]);
            c.health_fall = 2;
            c.health_rise = 2;
            c.health_interval = 1;
        })
        .await;
        // Each request that tries the dead one first fails over to the other.
        for _ in 0..4 {
            assert_eq!(status(gw.addr, "/owa/").await, StatusCode::OK);
        }
        assert_eq!(b.seen().len(), 4);
        // Down after two failed connects: the requests' own, or, when a busy
        // machine let fewer of them try it first, the next round of checks'.
        until_event(&gw, &format!("upstream http://{a_addr} is down after 2 failure(s) in a row: connect")).await;

        let (a, _) = start_mock_at(a_addr).await;
        until_event(&gw, &format!("upstream http://{a_addr} is up: 2 check(s) in a row passed")).await;
        assert!(a.checks.load(std::sync::atomic::Ordering::SeqCst) >= 2 * 9, "each round asks every health page");
        for _ in 0..4 {
            assert_eq!(status(gw.addr, "/owa/").await, StatusCode::OK);
        }
        assert_eq!(a.seen().len(), 2, "back in turn");
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_in_maintenance_is_taken_out_by_its_health_pages() {
    within(30, async {
        let (a, a_addr) = start_mock().await;
        let (b, b_addr) = start_mock().await;
        // Set-ServerComponentState ServerWideOffline: IIS still answers, every health page fails.
        for (_, path) in PAGES {
            a.fail_page(path, StatusCode::SERVICE_UNAVAILABLE);
        }
        let gw = in_front_of(a_addr, b_addr, 1, |_| {}).await;
        until_event(
            &gw,
            &format!("upstream http://{a_addr} is down after 1 failure(s) in a row: /owa/healthcheck.htm: 503"),
        )
        .await;
        for _ in 0..6 {
            assert_eq!(status(gw.addr, "/owa/").await, StatusCode::OK);
        }
        assert!(a.seen().is_empty(), "{:?}", a.seen());
        assert_eq!(b.seen().len(), 6);
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_by_health_keeps_a_protocol_off_upstreams_whose_page_fails() {
    within(30, async {
        let (a, a_addr) = start_mock().await;
        let (b, b_addr) = start_mock().await;
        a.fail_page("/ews/healthcheck.htm", StatusCode::SERVICE_UNAVAILABLE);
        let gw = in_front_of(a_addr, b_addr, 1, |c| c.route_by_health = true).await;
        until_event(&gw, &format!("upstream http://{a_addr}: /EWS/healthcheck.htm fails: 503")).await;
        // Each new connection starts the round-robin one further.
        for _ in 0..6 {
            assert_eq!(status(gw.addr, "/EWS/Exchange.asmx").await, StatusCode::OK);
        }
        for _ in 0..6 {
            assert_eq!(status(gw.addr, "/owa/").await, StatusCode::OK);
        }
        let paths = |m: &Mock| m.seen().iter().map(|s| s.uri.clone()).collect::<Vec<_>>();
        assert!(paths(&a).iter().all(|p| p == "/owa/"), "no EWS to a: {:?}", paths(&a));
        assert_eq!(paths(&a).len(), 3, "OWA still goes to a in turn");
        assert_eq!(paths(&b).iter().filter(|p| p.starts_with("/EWS/")).count(), 6);
        let metrics = gw.handle.metrics();
        let a_name = format!("http://{a_addr}");
        assert!(metrics.contains(&format!("casguard_gateway_upstream_up{{upstream=\"{a_name}\"}} 1")), "{metrics}");
        assert!(metrics.contains(&format!(
            "casguard_gateway_upstream_health_page_up{{upstream=\"{a_name}\",protocol=\"ews\"}} 0"
        )));
        assert!(metrics.contains(&format!(
            "casguard_gateway_upstream_health_page_up{{upstream=\"{a_name}\",protocol=\"owa\"}} 1"
        )));
        gw.stop().await;
    })
    .await;
}

/// Every Exchange health page, as the gateway asks for them.
const PAGES: [(&str, &str); 9] = [
    ("owa", "/owa/healthcheck.htm"),
    ("ews", "/EWS/healthcheck.htm"),
    ("activesync", "/Microsoft-Server-ActiveSync/healthcheck.htm"),
    ("mapi", "/mapi/healthcheck.htm"),
    ("rpc", "/Rpc/healthcheck.htm"),
    ("autodiscover", "/Autodiscover/healthcheck.htm"),
    ("ecp", "/ecp/healthcheck.htm"),
    ("oab", "/OAB/healthcheck.htm"),
    ("powershell", "/PowerShell/healthcheck.htm"),
];
