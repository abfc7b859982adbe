//! One client connection: requests become `exchange::Request`s, are decided
//! by `policy::evaluate`, and are either answered here or sent on the
//! connection's own upstream connection, bodies streaming both ways.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::client::conn::TrySendError;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, EXPECT, HOST, REFERER, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use policy::Action;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::access_log::push_field;
use crate::answer;
use crate::events::Level;
use crate::joint::{Drivers, Event, Joint};
use crate::lock;
use crate::model::{self, AuthUser, ConnInfo};
use crate::preface;
use crate::screen::{self, Refused};
use crate::server::Shared;
use crate::upstream::ConnectError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request the policy aborts (IIS `AbortRequest`): hyper drops the connection.
#[derive(Debug)]
struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request aborted by policy")
    }
}

impl std::error::Error for Aborted {}

/// Per-connection state shared by its requests (which hyper runs one at a time).
struct ConnState {
    info: ConnInfo,
    activity: Arc<Activity>,
    /// The one upstream connection of this client connection, made on the
    /// first allowed request; never shared with another client.
    /// A request sends on it in place, or takes it out while it connects or
    /// retries: hyper runs a connection's requests one at a time, so no
    /// request ever finds it gone.
    upstream: Mutex<Option<SendRequest<Incoming>>>,
    /// What drives it, polled by `serve_connection` in this connection's task.
    drivers: Mutex<Drivers>,
    /// The peer's address as an X-Forwarded-For value, made once.
    peer_xff: Option<HeaderValue>,
    /// The connection's access log fields, made once.
    log_fields: ConnFields,
    /// The user an NTLM/Negotiate handshake on this connection named and
    /// Exchange accepted; requests after the handshake carry no header.
    auth_user: Mutex<String>,
}

/// Serve one accepted client connection to its end.
pub(crate) async fn serve_connection<IO>(
    shared: Arc<Shared>,
    io: IO,
    info: ConnInfo,
    mut shutdown: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(io) = preface::screen(io, shared.header_timeout).await else { return };
    let activity = Arc::new(Activity::new());
    let peer_xff = HeaderValue::try_from(info.peer.to_string()).ok();
    let log_fields = ConnFields::new(&info);
    let state = Arc::new(ConnState {
        peer_xff,
        log_fields,
        info,
        activity: activity.clone(),
        upstream: Mutex::new(None),
        drivers: Mutex::new(Drivers::default()),
        auth_user: Mutex::new(String::new()),
    });
    let svc_shared = shared.clone();
    let svc_state = state.clone();
    let service = hyper::service::service_fn(move |req| handle(&svc_shared, &svc_state, req));
    let io = TokioIo::new(Watched { inner: io, activity: activity.clone() });
    let conn = shared.server.serve_connection(io, service);
    tokio::pin!(conn);
    let (header_ms, idle_ms) = (shared.header_timeout.as_millis() as u64, shared.idle_timeout.as_millis() as u64);
    let joint = Joint::new();
    let mut closing = false;
    loop {
        // Here only after an event: the timer, a shutdown, an upstream
        // connection ended. Have every side look.
        joint.wake_all();
        let (verdict, wait) = activity.check(header_ms, idle_ms);
        match verdict {
            Verdict::Busy => {}
            // Slow or absent request head: drop the connection (slowloris).
            Verdict::HeadTimeout => return,
            Verdict::Idle if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            Verdict::Idle => {}
        }
        let stop = !closing;
        let control = async {
            tokio::select! {
                _ = crate::server::stopped(&mut shutdown), if stop => true,
                _ = tokio::time::sleep(wait) => false,
            }
        };
        tokio::pin!(control);
        match std::future::poll_fn(|cx| joint.poll(conn.as_mut(), &state.drivers, control.as_mut(), cx)).await {
            Event::ClientDone => return,
            // The upstream closed its side, or the gateway stops: close ours
            // once idle, as Exchange would.
            Event::UpstreamEnded | Event::Control(true) if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            // The timer, or an event already acted on.
            _ => {}
        }
    }
}

thread_local! {
    /// The request model, reused for every request handled on this thread.
    static MODEL: std::cell::RefCell<exchange::Request> = std::cell::RefCell::new(exchange::Request::default());
}

/// Decide a request and, when it is allowed, send it to Exchange at once.
/// Not an `async fn`: hyper moves each request's future into the
/// connection's own (cold) memory, and an `async fn` here kept the request
/// three times over (1,312 bytes). This future holds only what is left to
/// wait for.
fn handle(
    shared: &Arc<Shared>,
    conn: &Arc<ConnState>,
    req: Request<Incoming>,
) -> Handled<impl Future<Output = Result<Response<Incoming>, TrySendError<Request<Incoming>>>> + Send> {
    let mut finish = Finish::new(shared, &conn.activity);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let loaded = shared.policy.current();
    let connection_auth = req.headers().get(AUTHORIZATION).is_some_and(|v| model::is_connection_auth(v.as_bytes()));
    let conn_user = if connection_auth {
        // A new handshake starts: the connection's old identity no longer holds.
        std::mem::take(&mut *lock(&conn.auth_user))
    } else {
        lock(&conn.auth_user).clone()
    };
    if let Err(refused) = screen::head(req.method(), req.uri(), req.version(), req.headers(), shared.max_head_bytes) {
        return refuse(finish, refused, req.method().as_str(), req.uri().path(), &conn.info);
    }
    // One model per thread, not per connection: it stays in cache from one
    // connection's request to the next one's, and idle connections hold none.
    let verdict = MODEL.with_borrow_mut(|m| {
        let filled = model::fill(m, req.method(), req.uri(), req.headers(), &conn.info, now, &conn_user);
        shared.interpreter.interpret(m);
        model::after_interpret(m, req.headers());
        if let Some(refused) = filled.refusal.map(Refused::from).or_else(|| screen::model(m).err()) {
            if shared.access_log.is_some() {
                finish.log = Some(LogLine::new(m, &conn.log_fields, now, true, None, req.headers()));
            }
            return Err((refused, m.method.clone(), m.stem.clone()));
        }
        let decision = policy::evaluate(&loaded, m);
        let rule = loaded.rule_name(decision.rule);
        let deny = decision.action == Action::Deny;
        shared.metrics.request(m.protocol, m.client, deny, rule);
        if shared.access_log.is_some() {
            finish.log = Some(LogLine::new(m, &conn.log_fields, now, deny, rule, req.headers()));
        }
        if deny {
            (shared.events)(
                Level::Info,
                &format!(
                    "deny {} {} user={} client={} rule={}",
                    m.method,
                    m.stem,
                    if m.user.is_empty() { "-" } else { &m.user },
                    shared.interpreter.catalog().get(m.client).id,
                    rule.map_or("(default)", |r| &**r)
                ),
            );
        }
        let pending = match filled.auth {
            Some(AuthUser::Named(u)) if connection_auth => Some(u),
            _ => None,
        };
        Ok((decision, pending))
    });
    let (decision, pending_user) = match verdict {
        Ok(v) => v,
        Err((refused, method, stem)) => return refuse(finish, refused, &method, &stem, &conn.info),
    };

    if decision.action == Action::Deny {
        if decision.status == 0 {
            finish.status(0, 0);
            finish.win32 = 64;
            return Handled::Answered { answer: Some(Err(Aborted)) };
        }
        let status = StatusCode::from_u16(decision.status).unwrap_or(StatusCode::FORBIDDEN);
        let rule = loaded.rule_name(decision.rule).map_or("default", |r| &**r);
        finish.status(decision.status, decision.substatus);
        let detail = format!("Denied by casguard policy rule: {rule}");
        return Handled::Answered { answer: Some(Ok(answer::own(status, &detail, false, finish))) };
    }

    let req = upstream_request(req, &conn.info, conn.peer_xff.as_ref());
    let forward = Forward { conn: conn.clone(), finish, pending_user, sent: Instant::now() };
    // The common case: the connection's upstream connection is idle and
    // open. Anything else (the first request, a reconnect) takes the slow path.
    let mut slot = lock(&conn.upstream);
    match slot.as_mut().filter(|s| s.is_ready()) {
        Some(sender) => Handled::Sending { sending: sender.try_send_request(req), forward: Some(forward) },
        None => {
            drop(slot);
            Handled::Slow { future: Box::pin(forward.slow(req, 0)) }
        }
    }
}

type Answer = Result<Response<Tracked>, Aborted>;

pin_project_lite::pin_project! {
    /// What hyper polls for one request.
    #[project = HandledProj]
    enum Handled<F> {
        /// Answered by the gateway, never sent.
        Answered { answer: Option<Answer> },
        /// Sent on the connection's upstream connection; the response is awaited.
        Sending { #[pin] sending: F, forward: Option<Forward> },
        /// Connecting or retrying first: rare, so boxed.
        Slow { future: Pin<Box<dyn Future<Output = Answer> + Send>> },
    }
}

impl<F> Future for Handled<F>
where
    F: Future<Output = Result<Response<Incoming>, TrySendError<Request<Incoming>>>>,
{
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        let (result, forward) = match self.as_mut().project() {
            HandledProj::Answered { answer } => return Poll::Ready(answer.take().expect("polled after completion")),
            HandledProj::Slow { future } => return future.as_mut().poll(cx),
            HandledProj::Sending { sending, forward } => match sending.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => (result, forward.take().expect("polled after completion")),
            },
        };
        match result {
            Ok(resp) => Poll::Ready(Ok(forward.respond(resp))),
            Err(mut e) => {
                *lock(&forward.conn.upstream) = None;
                match e.take_message() {
                    // Not sent (the connection closed under us): safe to retry once.
                    Some(req) => {
                        self.set(Handled::Slow { future: Box::pin(forward.slow(req, 1)) });
                        self.poll(cx)
                    }
                    None => Poll::Ready(Ok(forward.upstream_failed(e.error()))),
                }
            }
        }
    }
}

/// An allowed request on its way to Exchange.
struct Forward {
    conn: Arc<ConnState>,
    finish: Finish,
    /// The user an NTLM/Negotiate handshake names, kept once Exchange accepts it.
    pending_user: Option<String>,
    sent: Instant,
}

impl Forward {
    /// Connect (or reconnect) first, then send; `attempts` sends were already tried.
    async fn slow(mut self, mut req: Request<Incoming>, mut attempts: u32) -> Answer {
        let shared = self.finish.shared.clone();
        let mut upstream = lock(&self.conn.upstream).take();
        let response = loop {
            attempts += 1;
            if upstream.as_ref().is_none_or(SendRequest::is_closed) {
                // Boxed: it runs once a connection.
                match Box::pin(shared.upstreams.connect()).await {
                    Ok(c) => {
                        lock(&self.conn.drivers).add(c.driver);
                        upstream = Some(c.sender);
                    }
                    Err(e) => {
                        shared.metrics.upstream_errors.fetch_add(1, Ordering::Relaxed);
                        let status = match e {
                            ConnectError::NoneHealthy => shared.no_upstream_status,
                            ConnectError::Failed => StatusCode::BAD_GATEWAY,
                            ConnectError::Local => StatusCode::SERVICE_UNAVAILABLE,
                        };
                        self.finish.status(status.as_u16(), 0);
                        return Ok(answer::own(status, "No Exchange server is reachable.", false, self.finish));
                    }
                }
            }
            let sender = upstream.as_mut().expect("connected above");
            self.sent = Instant::now();
            let result = match sender.ready().await {
                Ok(()) => sender.try_send_request(req).await,
                Err(_) => {
                    // Closed between requests: nothing was sent, reconnect.
                    upstream = None;
                    if attempts < 2 {
                        continue;
                    }
                    return Ok(self.bad_gateway());
                }
            };
            match result {
                Ok(resp) => break resp,
                Err(mut e) => {
                    upstream = None;
                    match e.take_message() {
                        // Not sent (the connection closed under us): safe to retry once.
                        Some(back) if attempts < 2 => req = back,
                        _ => return Ok(self.upstream_failed(e.error())),
                    }
                }
            }
        };
        *lock(&self.conn.upstream) = upstream;
        Ok(self.respond(response))
    }

    /// Exchange's response, as the client gets it.
    fn respond(mut self, response: Response<Incoming>) -> Response<Tracked> {
        self.finish.shared.metrics.upstream_latency(self.sent.elapsed());
        let (mut parts, body) = response.into_parts();
        let upstream_close = strip_hop_by_hop(&mut parts.headers);
        if upstream_close {
            parts.headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(user) = self.pending_user {
            if parts.status != StatusCode::UNAUTHORIZED {
                *lock(&self.conn.auth_user) = user;
            }
        }
        self.finish.status(parts.status.as_u16(), 0);
        Response::from_parts(parts, Tracked { inner: Either::Left(body), finish: Some(self.finish) })
    }

    fn upstream_failed(self, error: &hyper::Error) -> Response<Tracked> {
        (self.finish.shared.events)(Level::Warn, &format!("upstream request failed: {error}"));
        self.bad_gateway()
    }

    fn bad_gateway(mut self) -> Response<Tracked> {
        self.finish.shared.metrics.upstream_errors.fetch_add(1, Ordering::Relaxed);
        self.finish.status(502, 0);
        answer::own(StatusCode::BAD_GATEWAY, "", false, self.finish)
    }
}

/// Answer a request the gateway refuses before the policy (see [`screen`]).
fn refuse<F>(mut finish: Finish, refused: Refused, method: &str, path: &str, conn: &ConnInfo) -> Handled<F> {
    let shared = &finish.shared;
    shared.metrics.refused.fetch_add(1, Ordering::Relaxed);
    (shared.events)(Level::Info, &format!("refuse {method} {path} from {}: {}", conn.peer, refused.reason));
    let status = StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST);
    finish.status(refused.status, refused.substatus);
    Handled::Answered { answer: Some(Ok(answer::own(status, refused.reason, true, finish))) }
}

/// The request as Exchange gets it: hop-by-hop headers dropped and the
/// client added to X-Forwarded-For; everything else, Authorization included,
/// unchanged.
fn upstream_request(req: Request<Incoming>, info: &ConnInfo, peer_xff: Option<&HeaderValue>) -> Request<Incoming> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host;
    // Exchange gets the origin form, as from any client.
    if let Some(authority) = parts.uri.authority() {
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            parts.headers.insert(HOST, host);
        }
        let origin = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        if let Ok(uri) = origin.parse() {
            parts.uri = uri;
        }
    }
    // HTTP/1.0 may leave Host out; the request goes on as HTTP/1.1, which
    // must have one: the address the client reached, as IIS would use.
    if !parts.headers.contains_key(HOST) {
        if let Ok(host) = HeaderValue::from_str(&std::net::SocketAddr::new(info.local, info.port).to_string()) {
            parts.headers.insert(HOST, host);
        }
    }
    // hyper answered `100 Continue` to the client when the body was first read.
    parts.headers.remove(EXPECT);
    let xff = model::X_FORWARDED_FOR;
    if info.trusted_peer && parts.headers.contains_key(&xff) {
        let mut value = String::new();
        for v in parts.headers.get_all(&xff) {
            if let Ok(s) = v.to_str() {
                value.push_str(s);
                value.push_str(", ");
            }
        }
        value.push_str(&info.peer.to_string());
        if let Ok(v) = HeaderValue::from_str(&value) {
            parts.headers.insert(xff, v);
        }
    } else if let Some(v) = peer_xff {
        // The common case: no allocation per request.
        parts.headers.insert(xff, v.clone());
    }
    parts.version = Version::HTTP_11;
    Request::from_parts(parts, body)
}

/// The fixed hop-by-hop set (RFC 9110 §7.6.1, plus the legacy `Keep-Alive`
/// and `Proxy-Connection`).
const HOP_BY_HOP: [HeaderName; 6] = [
    CONNECTION,
    TE,
    TRAILER,
    UPGRADE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// RFC 9110 §7.6.1: drop `Connection` and the headers it names, and the
/// fixed hop-by-hop set. Framing headers stay: hyper re-frames from them.
/// True when `Connection` said `close`.
fn strip_hop_by_hop(headers: &mut HeaderMap) -> bool {
    // One pass over the names finds which of the set are here; most requests
    // have none, and responses mostly just `Connection: keep-alive`.
    let mut present = 0u8;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return false;
    }
    let mut close = false;
    // Names other than `keep-alive` and `close` are rare: usually no allocation.
    let mut named = Vec::new();
    for value in headers.get_all(CONNECTION) {
        for token in value.as_bytes().split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                if let Ok(name) = HeaderName::from_bytes(token) {
                    if name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
                        named.push(name);
                    }
                }
            }
        }
    }
    for n in named {
        headers.remove(n);
    }
    for (i, n) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(n);
        }
    }
    close
}

// === impl Tracked ===

/// A response body (streamed from upstream, or the gateway's own text) that
/// finishes its request when it ends or is dropped: access log line,
/// connection activity.
pub(crate) struct Tracked {
    inner: Either<Incoming, Full<Bytes>>,
    finish: Option<Finish>,
}

impl Tracked {
    /// A body of the gateway's own (see [`crate::answer`]).
    pub(crate) fn text(text: Bytes, finish: Finish) -> Tracked {
        Tracked { inner: Either::Right(Full::new(text)), finish: Some(finish) }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.finish.take().map_or((), |f| f.done(0)),
            Poll::Ready(Some(Err(_))) => self.finish.take().map_or((), |f| f.done(64)),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.finish.take().map_or((), |f| f.done(0)),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // hyper may drop an empty body without polling it: that is complete.
        if let Some(f) = self.finish.take() {
            f.done(if self.inner.is_end_stream() { 0 } else { 64 });
        }
    }
}

/// What is left to do when a request ends. Dropped unfinished (the client
/// went away), it still logs, with win32 status 64 as IIS does.
pub(crate) struct Finish {
    shared: Arc<Shared>,
    activity: Arc<Activity>,
    started: Instant,
    log: Option<LogLine>,
    status: u16,
    substatus: u16,
    win32: u32,
}

impl Finish {
    fn new(shared: &Arc<Shared>, activity: &Arc<Activity>) -> Finish {
        activity.begin();
        Finish {
            shared: shared.clone(),
            activity: activity.clone(),
            started: Instant::now(),
            log: None,
            status: 0,
            substatus: 0,
            win32: 64,
        }
    }

    fn status(&mut self, status: u16, substatus: u16) {
        self.status = status;
        self.substatus = substatus;
    }

    fn done(mut self, win32: u32) {
        self.win32 = win32;
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.activity.end();
        if let (Some(log), Some(sink)) = (self.log.take(), &self.shared.access_log) {
            sink.send(log.finish(self.status, self.substatus, self.win32, self.started.elapsed()));
        }
    }
}

/// An access log line, written up to `cs(Referer)` when the request is
/// decided, completed with status and time taken when it ends.
struct LogLine {
    line: String,
    /// Usually empty, so no allocation.
    forwarded_for: String,
    deny: bool,
    rule: Option<Arc<str>>,
}

impl LogLine {
    fn new(
        m: &exchange::Request,
        conn: &ConnFields,
        now: i64,
        deny: bool,
        rule: Option<&Arc<str>>,
        headers: &HeaderMap,
    ) -> LogLine {
        let mut line = String::with_capacity(320);
        push_date_time(&mut line, now);
        line.push_str(&conn.server_ip);
        push_field(&mut line, &m.method);
        push_field(&mut line, &m.stem);
        push_field(&mut line, &m.query);
        line.push_str(&conn.port);
        push_field(&mut line, &m.username);
        line.push_str(&conn.peer_ip);
        push_field(&mut line, &m.user_agent);
        let referer = headers.get(REFERER).map(|v| String::from_utf8_lossy(v.as_bytes()));
        push_field(&mut line, referer.as_deref().unwrap_or(""));
        LogLine { line, forwarded_for: m.forwarded_for.clone(), deny, rule: rule.cloned() }
    }

    fn finish(mut self, status: u16, substatus: u16, win32: u32, taken: Duration) -> String {
        let line = &mut self.line;
        let mut digits = itoa::Buffer::new();
        for n in [u64::from(status), u64::from(substatus), u64::from(win32), taken.as_millis() as u64] {
            line.push(' ');
            line.push_str(digits.format(n));
        }
        push_field(line, &self.forwarded_for);
        push_field(line, if self.deny { "deny" } else { "allow" });
        push_field(line, self.rule.as_deref().unwrap_or(""));
        self.line
    }
}

/// The fields that are the same for every request of a connection, each
/// with its leading space: `s-ip`, `s-port` and `c-ip`.
struct ConnFields {
    server_ip: String,
    port: String,
    peer_ip: String,
}

impl ConnFields {
    fn new(info: &ConnInfo) -> ConnFields {
        ConnFields {
            server_ip: format!(" {}", info.local),
            port: format!(" {}", info.port),
            peer_ip: format!(" {}", info.peer),
        }
    }
}

/// `date time` (`2024-05-01 10:00:00`), formatted once a second per thread.
fn push_date_time(line: &mut String, now: i64) {
    thread_local! {
        static STAMP: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    STAMP.with_borrow_mut(|(secs, text)| {
        if *secs != now {
            text.clear();
            // `2024-05-01T10:00:00Z` becomes the `date` and `time` fields.
            w3c::time::write_rfc3339(now, text);
            text.truncate(19);
            text.replace_range(10..11, " ");
            *secs = now;
        }
        line.push_str(text);
    });
}

// === impl Activity ===

const NONE: u64 = u64::MAX;

/// What a connection is doing, for the idle and header-read timeouts:
/// hyper's own header timer also runs while a keep-alive connection waits,
/// so the two are told apart here.
struct Activity {
    epoch: Instant,
    in_flight: AtomicU32,
    /// When the last request ended (ms since `epoch`).
    idle_since: AtomicU64,
    /// When the first byte of a request head arrived, or `NONE`.
    head_since: AtomicU64,
}

enum Verdict {
    Busy,
    Idle,
    HeadTimeout,
}

impl Activity {
    fn new() -> Activity {
        // The first request's head is due from the moment of connecting.
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 && self.head_since.load(Ordering::Relaxed) == NONE {
            let _ = self.head_since.compare_exchange(NONE, self.now(), Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NONE, Ordering::Relaxed);
    }

    fn end(&self) {
        self.idle_since.store(self.now(), Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// The verdict now, and how long until it may change.
    fn check(&self, header_ms: u64, idle_ms: u64) -> (Verdict, Duration) {
        let now = self.now();
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return (Verdict::Busy, Duration::from_millis(idle_ms.min(header_ms)));
        }
        let head = self.head_since.load(Ordering::Relaxed);
        if head != NONE {
            let due = head + header_ms;
            return if now >= due {
                (Verdict::HeadTimeout, Duration::ZERO)
            } else {
                (Verdict::Busy, Duration::from_millis(due - now + 5))
            };
        }
        let due = self.idle_since.load(Ordering::Relaxed) + idle_ms;
        if now >= due {
            (Verdict::Idle, Duration::from_millis(header_ms.min(idle_ms)))
        } else {
            (Verdict::Busy, Duration::from_millis((due - now + 5).min(header_ms)))
        }
    }
}

/// The client's stream, noting when bytes of a new request arrive.
struct Watched<IO> {
    inner: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_go_and_end_to_end_ones_stay() {
        let mut h = headers(&[
            ("Connection", "Keep-Alive, X-Hop"),
            ("connection", " close ,te"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("content-length", "3"),
            ("x-end", "2"),
        ]);
        assert!(strip_hop_by_hop(&mut h), "Connection: close was said");
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["content-length", "x-end"]);

        // Connection may not name framing headers away.
        let mut h = headers(&[("connection", "content-length, transfer-encoding"), ("content-length", "3")]);
        assert!(!strip_hop_by_hop(&mut h));
        assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["content-length"]);

        let mut h = headers(&[("host", "mail"), ("x-hop", "1")]);
        assert!(!strip_hop_by_hop(&mut h));
        assert_eq!(h.len(), 2, "without Connection, nothing is hop-by-hop but the fixed set");
    }
}
