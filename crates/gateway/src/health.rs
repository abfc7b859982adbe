//! Upstream health, the way the proxies operators already trust do it.
//!
//! - Active checks: every `health-interval`, each upstream is asked for
//!   Exchange's own health pages, `/<vdir>/healthcheck.htm`, one per
//!   protocol. Exchange's Managed Availability serves each page (anonymously,
//!   "200 OK" and the server's name) only while that protocol's components
//!   are healthy, and load balancers are told to probe each virtual directory
//!   ("Scenario B" in Microsoft's "Load balancing in Exchange 2016",
//!   OfficeDocs-Exchange `Exchange/ExchangeServer/architecture/client-access/load-balancing.md`;
//!   the page list as load-balancer guides give it:
//!   frankysweb.de/en/exchange-2016-healthcheck-urls-for-loadbalancer,
//!   oddytee.wordpress.com/2015/03/21/… for /PowerShell).
//!   An upstream passes a round when it answers at least one page 200: a
//!   server in maintenance (ServerWideOffline) answers none.
//! - `fall` failures in a row take an upstream out of use and `rise` passed
//!   checks put it back (HAProxy's `fall`/`rise`, defaults 3 and 2). Failed
//!   connections from real requests count toward `fall` too (passive
//!   detection), so a dead server is out after a few clients, not after
//!   `fall` intervals.
//! - A sole upstream is never taken out (as nginx: "such a server will never
//!   be considered unavailable"), and when every upstream is out, all are
//!   tried (Envoy's panic routing): a health mark never refuses a request
//!   that a server could answer, and recovery is at the first request after
//!   the server is back.
//! - Optionally (`route-by-health`) each protocol goes only to upstreams
//!   whose page for it passes, while any does.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use exchange::Protocol;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HOST, USER_AGENT};
use hyper::{Request, StatusCode};

use crate::events::Level;
use crate::lock;
use crate::upstream::{OpenError, Upstream, Upstreams};

/// Each protocol's health page, with the virtual directory as Exchange
/// names it (IIS matches paths without regard to case).
pub const PAGES: [(Protocol, &str); 9] = [
    (Protocol::Owa, "/owa/healthcheck.htm"),
    (Protocol::Ews, "/EWS/healthcheck.htm"),
    (Protocol::ActiveSync, "/Microsoft-Server-ActiveSync/healthcheck.htm"),
    (Protocol::Mapi, "/mapi/healthcheck.htm"),
    (Protocol::Rpc, "/Rpc/healthcheck.htm"),
    (Protocol::Autodiscover, "/Autodiscover/healthcheck.htm"),
    (Protocol::Ecp, "/ecp/healthcheck.htm"),
    (Protocol::Oab, "/OAB/healthcheck.htm"),
    (Protocol::PowerShell, "/PowerShell/healthcheck.htm"),
];

/// The health page of `protocol`, if Exchange serves one.
pub fn page(protocol: Protocol) -> Option<&'static str> {
    PAGES.iter().find(|(p, _)| *p == protocol).map(|(_, path)| *path)
}

/// How checks run and what their results do.
#[derive(Clone, Debug)]
pub struct Settings {
    pub interval: Duration,
    pub fall: u32,
    pub rise: u32,
    /// Protocols whose page is checked; empty: a check only connects.
    pub pages: Vec<Protocol>,
    pub route_by_health: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interval: Duration::from_secs(5),
            fall: 3,
            rise: 2,
            pages: PAGES.iter().map(|(p, _)| *p).collect(),
            route_by_health: false,
        }
    }
}

/// The user agent of the gateway's checks, for Exchange's logs.
const AGENT: &str = concat!("casguard-gateway/", env!("CARGO_PKG_VERSION"), " health check");

/// A health page body is a line; more is not a health page.
const MAX_BODY: usize = 64 * 1024;

/// Results in a row, and the state they add up to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Streak {
    up: bool,
    fails: u32,
    passes: u32,
}

impl Streak {
    const UP: Streak = Streak { up: true, fails: 0, passes: 0 };

    /// Count one result; the new state when it changes.
    fn record(&mut self, ok: bool, fall: u32, rise: u32) -> Option<bool> {
        if ok {
            self.fails = 0;
            if !self.up {
                self.passes += 1;
                if self.passes >= rise {
                    *self = Streak::UP;
                    return Some(true);
                }
            }
        } else {
            self.passes = 0;
            if self.up {
                self.fails += 1;
                if self.fails >= fall {
                    *self = Streak { up: false, fails: 0, passes: 0 };
                    return Some(false);
                }
            }
        }
        None
    }
}

struct Streaks {
    server: Streak,
    pages: [Streak; Protocol::ALL.len()],
}

/// One upstream's health.
pub struct Health {
    /// In use; read for every new upstream connection.
    up: AtomicBool,
    /// One bit per protocol (`Protocol::index`) whose page passes; protocols
    /// without a checked page always pass.
    pages: AtomicU32,
    /// Failed checks and connections, for the metrics.
    failures: AtomicU64,
    streaks: Mutex<Streaks>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            up: AtomicBool::new(true),
            pages: AtomicU32::new(u32::MAX),
            failures: AtomicU64::new(0),
            streaks: Mutex::new(Streaks { server: Streak::UP, pages: [Streak::UP; Protocol::ALL.len()] }),
        }
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").field("up", &self.is_up()).field("failures", &self.failures()).finish()
    }
}

impl Health {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Whether the health page of `protocol` passes (true when not checked).
    pub fn page_passes(&self, protocol: Protocol) -> bool {
        self.pages.load(Ordering::Relaxed) & (1 << protocol.index()) != 0
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

// === impl Upstreams: results ===

impl Upstreams {
    /// Count a check or a connection for `up`; tell the event sink when its
    /// state changes.
    pub(crate) fn record(&self, up: &Upstream, ok: bool, why: &str) {
        let s = &self.health;
        if !ok {
            up.health.failures.fetch_add(1, Ordering::Relaxed);
        }
        let changed = lock(&up.health.streaks).server.record(ok, s.fall, s.rise);
        let events = &self.events;
        match changed {
            Some(false) if self.list().len() == 1 => events(
                Level::Warn,
                &format!(
                    "upstream {} failed {} time(s) in a row ({why}); it is the only upstream, so it stays in use",
                    up.name, s.fall
                ),
            ),
            Some(false) => {
                up.health.up.store(false, Ordering::Relaxed);
                events(
                    Level::Warn,
                    &format!("upstream {} is down after {} failure(s) in a row: {why}", up.name, s.fall),
                );
            }
            Some(true) => {
                up.health.up.store(true, Ordering::Relaxed);
                events(Level::Info, &format!("upstream {} is up: {} check(s) in a row passed", up.name, s.rise));
            }
            None => {}
        }
    }

    /// A real request connected to `up`: failures so far were not in a row.
    /// (Only checks bring a server that is out back in.)
    pub(crate) fn connected(&self, up: &Upstream) {
        let mut streaks = lock(&up.health.streaks);
        if streaks.server.up {
            streaks.server.fails = 0;
        }
    }

    fn record_page(&self, up: &Upstream, protocol: Protocol, path: &str, result: &Result<(), String>) {
        let s = &self.health;
        let changed = lock(&up.health.streaks).pages[protocol.index()].record(result.is_ok(), s.fall, s.rise);
        let bit = 1 << protocol.index();
        match (changed, result) {
            (Some(true), _) => {
                up.health.pages.fetch_or(bit, Ordering::Relaxed);
                (self.events)(Level::Info, &format!("upstream {}: {path} passes again", up.name));
            }
            (Some(false), Err(why)) => {
                up.health.pages.fetch_and(!bit, Ordering::Relaxed);
                (self.events)(Level::Warn, &format!("upstream {}: {path} fails: {why}", up.name));
            }
            _ => {}
        }
    }

    /// Whether a new connection for `protocol` goes to `up`, and in which
    /// turn: 0 first, 1 when no upstream of turn 0 connects.
    pub(crate) fn turn(&self, up: &Upstream, protocol: Protocol, any_up: bool) -> Option<u8> {
        if !any_up {
            // Every upstream is out: try them all rather than refuse.
            return Some(0);
        }
        if !up.health.is_up() {
            return None;
        }
        Some(u8::from(self.health.route_by_health && !up.health.page_passes(protocol)))
    }
}

// === Active checks ===

/// Check every upstream every interval, each on its own so that a slow one
/// does not hold the others up. Runs until dropped.
pub async fn check_loop(upstreams: Arc<Upstreams>) {
    let mut checks = tokio::task::JoinSet::new();
    for i in 0..upstreams.list().len() {
        let upstreams = upstreams.clone();
        checks.spawn(async move {
            loop {
                tokio::time::sleep(upstreams.health.interval).await;
                check(&upstreams, &upstreams.list()[i]).await;
            }
        });
    }
    // Dropping the set (when this task is aborted) stops the checks.
    while checks.join_next().await.is_some() {}
}

/// One round of checks of `up`: connect, then ask for each page.
async fn check(upstreams: &Upstreams, up: &Upstream) {
    let timeout = upstreams.connect_timeout().min(upstreams.health.interval).max(Duration::from_millis(500));
    let pages = &upstreams.health.pages;
    let mut sender = None;
    let mut passed = false;
    let mut first_failure = None;
    for (k, protocol) in pages.iter().copied().enumerate() {
        let path = page(protocol).unwrap_or("/");
        if sender.as_ref().is_none_or(SendRequest::is_closed) {
            match open(upstreams, up, timeout).await {
                Ok(s) => sender = Some(s),
                Err(None) => return,
                // Nothing answered: a failure of the server, not of its pages.
                Err(Some(why)) if k == 0 => return upstreams.record(up, false, &why),
                Err(Some(why)) => {
                    first_failure.get_or_insert(why);
                    break;
                }
            }
        }
        let Some(s) = sender.as_mut() else { break };
        let result = get(s, up, path, timeout).await;
        if result.is_err() {
            // Unread or cut off: the next page gets a new connection.
            sender = None;
        }
        upstreams.record_page(up, protocol, path, &result);
        match result {
            Ok(()) => passed = true,
            Err(why) => {
                first_failure.get_or_insert(format!("{path}: {why}"));
            }
        }
    }
    if pages.is_empty() {
        match open(upstreams, up, timeout).await {
            Ok(_) => passed = true,
            Err(None) => return,
            Err(Some(why)) => first_failure = Some(why),
        }
    }
    let why = first_failure.unwrap_or_default();
    upstreams.record(up, passed, if passed { "" } else { &why });
}

/// A connection for checks. `Err(None)`: the gateway's own trouble (out of
/// descriptors), which says nothing about the upstream.
async fn open(
    upstreams: &Upstreams,
    up: &Upstream,
    timeout: Duration,
) -> Result<SendRequest<Empty<Bytes>>, Option<String>> {
    match tokio::time::timeout(timeout, upstreams.open::<Empty<Bytes>>(up)).await {
        Err(_) => Err(Some("connect timed out".into())),
        Ok(Err(OpenError::Local(_))) => Err(None),
        Ok(Err(OpenError::Upstream(why))) => Err(Some(format!("connect: {why}"))),
        Ok(Ok((sender, driver))) => {
            // Ends when the sender is dropped.
            tokio::spawn(driver);
            Ok(sender)
        }
    }
}

/// `GET path`: passes on 200 with a health page's body.
async fn get(
    sender: &mut SendRequest<Empty<Bytes>>,
    up: &Upstream,
    path: &str,
    timeout: Duration,
) -> Result<(), String> {
    let request = Request::get(path)
        .header(HOST, up.authority.clone())
        .header(USER_AGENT, AGENT)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let answer = async {
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY).collect().await;
        match (status, body) {
            (StatusCode::OK, Ok(_)) => Ok(()),
            (StatusCode::OK, Err(e)) => Err(format!("200 but the body: {e}")),
            (status, _) => Err(status.to_string()),
        }
    };
    tokio::time::timeout(timeout, answer).await.map_err(|_| "no answer in time".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_failures_in_a_row_take_it_out_and_rise_passes_bring_it_back() {
        let mut s = Streak::UP;
        assert_eq!(s.record(false, 3, 2), None);
        assert_eq!(s.record(false, 3, 2), None);
        assert_eq!(s.record(true, 3, 2), None, "a pass breaks the row");
        assert_eq!(s.record(false, 3, 2), None);
        assert_eq!(s.record(false, 3, 2), None);
        assert_eq!(s.record(false, 3, 2), Some(false));
        assert_eq!(s.record(false, 3, 2), None, "already out");
        assert_eq!(s.record(true, 3, 2), None);
        assert_eq!(s.record(false, 3, 2), None, "a failure breaks the row of passes");
        assert_eq!(s.record(true, 3, 2), None);
        assert_eq!(s.record(true, 3, 2), Some(true));
        assert_eq!(s, Streak::UP);
        let mut s = Streak::UP;
        assert_eq!(s.record(false, 1, 1), Some(false));
        assert_eq!(s.record(true, 1, 1), Some(true));
    }

    #[test]
    fn every_page_is_under_its_protocols_virtual_directory() {
        for (protocol, path) in PAGES {
            let mut stem = String::new();
            exchange::url::decode_path(path, &mut stem).unwrap();
            let mut r = exchange::Request { stem, ..Default::default() };
            exchange::Interpreter::load(None, &[]).unwrap().interpret(&mut r);
            assert_eq!(r.protocol, protocol, "{path}");
        }
        assert_eq!(page(Protocol::Rest), None);
    }
}
