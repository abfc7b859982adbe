//! One request: made into an `exchange::Request`, decided by
//! `policy::evaluate`, then either answered here (see [`crate::answer`]) or
//! sent on the client connection's own upstream connection, the response
//! body streaming back. The request ends (access log line, connection
//! activity) when its response body does.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use exchange::Protocol;
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::client::conn::TrySendError;
use hyper::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use policy::Action;

use crate::access_log::LogLine;
use crate::answer::{self, Answer};
use crate::connection::ConnState;
use crate::events::Level;
use crate::finish::{Finish, Tracked};
use crate::forms;
use crate::headers::{strip_hop_by_hop, upstream_request, UpstreamBody};
use crate::learn::{self, ClientBody};
use crate::lock;
use crate::model::{self, AuthUser, ConnInfo};
use crate::opening::{self, Opening};
use crate::rejudge::Rejudge;
use crate::screen::{self, Refused};
use crate::state::Shared;
use crate::unchecked;
use crate::upstream::ConnectError;

thread_local! {
    /// The request model, reused for every request handled on this thread.
    static MODEL: std::cell::RefCell<exchange::Request> = std::cell::RefCell::new(exchange::Request::default());
}

/// Handle a request: decided at once from its head, or, for the forms
/// sign-in, once its form is read (see [`crate::forms`]).
/// Not an `async fn`: hyper moves each request's future into the
/// connection's own (cold) memory, and an `async fn` here kept the request
/// three times over (1,312 bytes). This future holds only what is left to
/// wait for.
pub(crate) fn handle(
    shared: &Arc<Shared>,
    conn: &Arc<ConnState>,
    req: Request<Incoming>,
) -> Handled<impl Future<Output = Result<Response<Incoming>, TrySendError<Request<UpstreamBody>>>> + Send> {
    if !forms::is_sign_in(req.method(), req.uri().path()) {
        return decide(shared, conn, req.map(ClientBody::Stream), None);
    }
    // The forms sign-in: its form is read first, to judge the user it names.
    let (shared, conn) = (shared.clone(), conn.clone());
    Handled::Reading {
        future: Box::pin(async move {
            let (parts, body) = req.into_parts();
            let types: Vec<&[u8]> = parts.headers.get_all(CONTENT_TYPE).iter().map(|v| v.as_bytes()).collect();
            // A form in another charset is refused unread (see `screen::charset`).
            let read = match screen::charset(&parts.headers) {
                Err(refused) => Err(refused),
                Ok(()) => forms::read(body).await,
            }
            .and_then(|form| Ok((forms::sign_in_user(parts.uri.query(), &types, &form)?, form)));
            match read {
                Ok((user, form)) => {
                    let req = Request::from_parts(parts, ClientBody::Read(Some(form)));
                    decide(&shared, &conn, req, user).await
                }
                Err(refused) => {
                    let finish = Finish::new(&shared, &conn.activity);
                    refused_answer(finish, refused, parts.method.as_str(), parts.uri.path(), &conn.info)
                }
            }
        }),
    }
}

/// Decide a request and, when it is allowed, send it to Exchange at once.
/// `form_user` is the user a forms sign-in's form (or query) names.
fn decide(
    shared: &Arc<Shared>,
    conn: &Arc<ConnState>,
    req: Request<ClientBody>,
    form_user: Option<String>,
) -> Handled<impl Future<Output = Result<Response<Incoming>, TrySendError<Request<UpstreamBody>>>> + Send> {
    let mut finish = Finish::new(shared, &conn.activity);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    // The generation first: see `PolicyStore::generation`.
    let generation = shared.policy.generation();
    let loaded = shared.policy.current();
    let authorization = req.headers().get(AUTHORIZATION);
    let connection_auth = authorization.is_some_and(|v| model::is_connection_auth(v.as_bytes()));
    let conn_user = if connection_auth {
        if let Some(v) = authorization {
            *lock(&conn.auth_scheme) = model::schemes(v.as_bytes());
        }
        // A new handshake starts: the connection's old identity no longer
        // holds, and the new one is unread until Exchange accepts a user
        // the gateway read (see `Forward::respond`).
        conn.auth_unread.store(true, Ordering::Relaxed);
        // And on a new upstream connection once Exchange may have signed the
        // old one in: a page that runs no Windows authentication (an
        // anonymous one, or one IIS refuses first) answers 200 to any
        // AUTHENTICATE message, which would name the connection's user here
        // while Exchange kept the one it signed in before.
        if conn.signed_in.swap(false, Ordering::Relaxed) {
            *lock(&conn.upstream) = None;
            lock(&conn.drivers).let_go();
        }
        std::mem::take(&mut *lock(&conn.auth_user))
    } else {
        // Credentials of another scheme (Basic, Bearer, one nobody reads)
        // after Exchange may have signed the connection in: judged by what
        // they name, they must not ride on that sign-in, which Windows keeps
        // for the connection and a page that does not run their scheme
        // (Basic is off on EWS and MAPI by default) would serve them as.
        // On a new upstream connection only they can sign the request in.
        // A load first: Basic clients send credentials on every request.
        if authorization.is_some()
            && conn.signed_in.load(Ordering::Relaxed)
            && conn.signed_in.swap(false, Ordering::Relaxed)
        {
            *lock(&conn.upstream) = None;
            lock(&conn.drivers).let_go();
        }
        lock(&conn.auth_user).clone()
    };
    // An AUTHENTICATE message is read in the character set the NEGOTIATE
    // Exchange got offered, as Windows reads it (see `screen::NTLM_CHARSET`);
    // a NEGOTIATE's is kept once it is sent on (below).
    // (Not decoded again for a Kerberos ticket, read above as one.)
    let leg = authorization
        .filter(|_| connection_auth && lock(&conn.auth_scheme).1 != exchange::AuthType::Kerberos)
        .and_then(|v| model::ntlm_leg(v.as_bytes()));
    let charset_refused = match leg {
        Some((3, unicode)) => match conn.ntlm_charset.load(Ordering::Relaxed) {
            0 => None,
            negotiated => ((negotiated == 2) != unicode).then_some(screen::NTLM_CHARSET),
        },
        _ => None,
    };
    // No header on a connection Windows may have signed in as someone the
    // gateway did not read: judged as credentials that name nobody.
    let unread = (!connection_auth && conn_user.is_empty() && conn.auth_unread.load(Ordering::Relaxed))
        .then_some(AuthUser::Unknown);
    // And signed in by that handshake's scheme: after an NTLM handshake on
    // `/owa`, a header-less EWS request is an NTLM sign-in to Exchange, which
    // a rule on `auth = "ntlm"` (or a policy blocking legacy authentication
    // for EWS) must see, or the handshake on an allowed page carried it past.
    let conn_scheme =
        (authorization.is_none() && (!conn_user.is_empty() || unread.is_some())).then(|| *lock(&conn.auth_scheme));
    let unlisted = !conn.info.trusted_peer && exchange::networks::is_private_addr(conn.info.peer);
    if let Err(refused) =
        screen::head(req.method(), req.uri(), req.version(), req.headers(), shared.max_head_bytes, unlisted)
    {
        return refuse(finish, refused, req.method().as_str(), req.uri().path(), &conn.info);
    }
    // One model per thread, not per connection: it stays in cache from one
    // connection's request to the next one's, and idle connections hold none.
    let verdict = MODEL.with_borrow_mut(|m| {
        let filled =
            model::fill(m, req.method(), req.uri(), req.headers(), &conn.info, &shared.trusted, now, &conn_user);
        let peer = conn.peer_xff.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
        model::forwarded_header(m, req.headers(), &conn.info, peer);
        if let Some(schemes) = conn_scheme {
            (m.auth, m.auth_mechanism) = schemes;
        }
        // The forms sign-in signs in whom its form names, whatever a header says.
        let form_refused = form_user.as_deref().and_then(|user| forms::sign_in_as(m, user, filled.auth.as_ref()));
        shared.interpreter.interpret(m);
        model::after_interpret(m, req.headers(), filled.auth.as_ref().or(unread.as_ref()));
        let refused = filled
            .refusal
            .map(Refused::from)
            .or(charset_refused)
            .or(form_refused)
            .or(filled.token_refused)
            .or_else(|| {
                let signed_in = !conn_user.is_empty() || unread.is_some();
                (filled.query_token && signed_in).then_some(screen::TOKEN_BESIDE_CREDENTIALS)
            })
            .or_else(|| (form_user.is_some() && m.user.is_empty()).then_some(forms::NOBODY))
            .or_else(|| filled.forwarded_for_ambiguous.then_some(screen::FORWARDED_FOR_AMBIGUOUS))
            .or_else(|| screen::cookie_routing(m, req.headers()).err())
            .or_else(|| screen::credentials(m, filled.auth.as_ref(), req.headers()).err());
        let mut refuse_logged = |refused: Refused, m: &exchange::Request| {
            if shared.access_log.is_some() {
                let reason = Arc::<str>::from(refused.reason);
                finish.log = Some(LogLine::new(m, &conn.log_fields, now, true, Some(&reason), req.headers()));
            }
            Err((refused, m.method.clone(), m.stem.clone()))
        };
        if let Some(refused) = refused {
            return refuse_logged(refused, m);
        }
        let reads_device_facts = loaded.reads_device_facts();
        if reads_device_facts {
            shared.learned.fill(m, loaded.inventory());
        }
        let mut decision = policy::evaluate(&loaded, m);
        // A user named by credentials Exchange may not check on this page is
        // allowed only if the request is also allowed as Exchange would serve
        // it then: anonymously (see `crate::unchecked`).
        let unchecked = unchecked::credentials(m, authorization, conn_scheme.is_some(), req.headers());
        if unchecked {
            decision = unchecked::also_anonymous(&loaded, m, decision);
        }
        if let Some(reason) = decision.refused {
            return refuse_logged(Refused { status: decision.status, substatus: decision.substatus, reason }, m);
        }
        // Denied for naming no one, where a Windows sign-in opens: it may go on.
        let opening = opening::of(m, &decision, authorization.is_some(), filled.auth.as_ref());
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
        // Nor does a handshake there sign its user in for the connection.
        let pending = match filled.auth {
            Some(AuthUser::Named(u)) if connection_auth && !unchecked => Some(u),
            _ => None,
        };
        let informs = reads_device_facts && learn::may_inform(m);
        let informing = informs.then(|| learn::informing(m, &shared.learned));
        let streams = !deny && req.body().streams();
        let rejudge = streams
            .then(|| Rejudge::new(shared, generation, req.body().is_long().then(|| Box::new(m.clone())), unchecked));
        Ok((decision, pending, m.protocol, informing, rejudge, opening))
    });
    let (decision, pending_user, protocol, informing, rejudge, opening) = match verdict {
        Ok(v) => v,
        Err((refused, method, stem)) => return refuse(finish, refused, &method, &stem, &conn.info),
    };

    // Only a NEGOTIATE Exchange gets sets the character set it reads in.
    let set_charset = || {
        if let Some((1, unicode)) = leg {
            conn.ntlm_charset.store(if unicode { 2 } else { 1 }, Ordering::Relaxed);
        }
    };
    if decision.action == Action::Deny {
        let rule = loaded.rule_name(decision.rule).map_or("default", |r| &**r);
        let answer = match opening {
            Some(Opening::Challenge) => opening::challenge(protocol, req.headers().get(hyper::header::HOST), finish),
            Some(Opening::Negotiate(page)) => {
                set_charset();
                let rule = Arc::<str>::from(rule);
                let forward = Forward {
                    conn: conn.clone(),
                    finish,
                    handshake: true,
                    pending_user: None,
                    protocol,
                    sent: Instant::now(),
                    replay: None,
                    informed: None,
                };
                return Handled::Reading { future: Box::pin(opening::negotiate(req, page, rule, forward)) };
            }
            None => {
                // A URL Rewrite `Redirect` tells the client where, as IIS does.
                let location = loaded.redirect(decision.rule).map(|r| r.location(req.uri().query()));
                answer::denied(decision.status, decision.substatus, rule, location.as_deref(), finish)
            }
        };
        return Handled::Answered { answer: Some(answer) };
    }
    set_charset();

    // Boxed: rare, and `Forward` travels with every request.
    let (tee, informed) = informing.map(|(tee, informed)| (tee, Box::new(informed))).unzip();
    let req = upstream_request(req, &conn.info, conn.peer_xff.as_ref(), tee, rejudge);
    let mut forward = Forward {
        conn: conn.clone(),
        finish,
        handshake: connection_auth,
        pending_user,
        protocol,
        sent: Instant::now(),
        replay: None,
        informed,
    };
    // The common case: the connection's upstream connection is idle and
    // open. Anything else (the first request, a reconnect) is connected first (`Handled::Connecting`).
    let mut slot = lock(&conn.upstream);
    match slot.as_mut().filter(|s| s.is_ready()) {
        Some(sender) => {
            if conn.activity.waited() >= Replay::AFTER_WAITING {
                forward.replay = Replay::of(&req);
            }
            Handled::Sending { sending: sender.try_send_request(req), forward: Some(forward) }
        }
        None => {
            drop(slot);
            Handled::Connecting {
                future: Box::pin(async move {
                    let (mut sender, forward) = forward.connect().await?;
                    // Sent here, where the future's type is the fast path's.
                    let sending = sender.try_send_request(req);
                    *lock(&forward.conn.upstream) = Some(sender);
                    Ok((sending, forward))
                }),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// What hyper polls for one request.
    #[project = HandledProj]
    pub(crate) enum Handled<F> {
        /// Answered by the gateway, never sent.
        Answered { answer: Option<Answer> },
        /// Sent on the connection's upstream connection; the response is awaited.
        Sending { #[pin] sending: F, forward: Option<Forward> },
        /// No idle upstream connection: made or awaited first, then the
        /// request is sent as above. Boxed, as it is rarer; the box goes
        /// once sent, so a long-poll does not hold it.
        Connecting { future: Pin<Box<dyn Future<Output = Result<(F, Forward), Answer>> + Send>> },
        /// Sent again after a send failed: rare, so boxed.
        Retrying { future: Pin<Box<dyn Future<Output = Answer> + Send>> },
        /// A forms sign-in, its form read before it is decided, or the
        /// opening of a Windows sign-in (see [`crate::opening`]): rare, so boxed.
        Reading { future: Pin<Box<dyn Future<Output = Answer> + Send>> },
    }
}

impl<F> Future for Handled<F>
where
    F: Future<Output = Result<Response<Incoming>, TrySendError<Request<UpstreamBody>>>>,
{
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        let (result, mut forward) = match self.as_mut().project() {
            HandledProj::Answered { answer } => return Poll::Ready(answer.take().expect("polled after completion")),
            HandledProj::Retrying { future } | HandledProj::Reading { future } => return future.as_mut().poll(cx),
            HandledProj::Connecting { future } => match future.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(answer)) => return Poll::Ready(answer),
                Poll::Ready(Ok((sending, forward))) => {
                    self.set(Handled::Sending { sending, forward: Some(forward) });
                    return self.poll(cx);
                }
            },
            HandledProj::Sending { sending, forward } => match sending.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => (result, forward.take().expect("polled after completion")),
            },
        };
        match result {
            Ok(resp) => Poll::Ready(Ok(forward.respond(resp))),
            Err(mut e) => {
                *lock(&forward.conn.upstream) = None;
                // Not sent (the connection closed under us), or sent on a
                // reused connection the upstream was closing and safe to
                // send again: once more, on a new connection.
                match e.take_message().or_else(|| forward.replay.take().map(Replay::request)) {
                    Some(req) => {
                        forward.finish.shared.metrics.upstream_retries.fetch_add(1, Ordering::Relaxed);
                        self.set(Handled::Retrying { future: Box::pin(forward.retry(req)) });
                        self.poll(cx)
                    }
                    None => Poll::Ready(forward.upstream_failed(e.error())),
                }
            }
        }
    }
}

/// An allowed request on its way to Exchange.
pub(crate) struct Forward {
    pub(crate) conn: Arc<ConnState>,
    pub(crate) finish: Finish,
    /// An NTLM/Negotiate request: a leg of a handshake.
    handshake: bool,
    /// The user an NTLM/Negotiate handshake names, kept once Exchange accepts it.
    pending_user: Option<String>,
    /// Picks the upstream when a connection must be made (`route-by-health`).
    protocol: Protocol,
    sent: Instant,
    /// The request again, when it may be sent twice (see [`Replay`]).
    replay: Option<Replay>,
    /// What its body says of its device, kept if Exchange accepts it.
    informed: Option<Box<learn::Informed>>,
}

/// A copy of a request that can be sent again after it failed on a reused
/// upstream connection: an idempotent method (RFC 9110 §9.2.2) and no body.
/// The upstream, or a load balancer in between, may close an idle
/// keep-alive connection (an idle timeout shorter than the gateway's, a
/// restart) just as the gateway sends on it; the request then fails with no
/// response, and nothing tells whether Exchange read it. Like nginx on a
/// cached connection, the gateway sends such a request once more on a new
/// connection; a POST (ActiveSync, EWS) is answered 502, as a replay of its
/// body could apply it twice.
struct Replay(Box<hyper::http::request::Parts>);

impl Replay {
    /// Copied only on a connection that has waited this long: closes race
    /// requests on connections that wait, and the copy (about 2,000
    /// instructions) would otherwise cost every request of a busy one.
    const AFTER_WAITING: Duration = Duration::from_millis(200);

    fn of(req: &Request<UpstreamBody>) -> Option<Replay> {
        let bodiless = matches!(req.body(), Either::Right(_));
        (bodiless && req.method().is_idempotent()).then(|| {
            let mut head = Request::new(());
            *head.method_mut() = req.method().clone();
            *head.uri_mut() = req.uri().clone();
            *head.version_mut() = req.version();
            *head.headers_mut() = req.headers().clone();
            // hyper's record of the header names' case, among others.
            *head.extensions_mut() = req.extensions().clone();
            Replay(Box::new(head.into_parts().0))
        })
    }

    fn request(self) -> Request<UpstreamBody> {
        Request::from_parts(*self.0, Either::Right(http_body_util::Empty::new()))
    }
}

impl Forward {
    /// Connect when the client connection has no open upstream connection,
    /// and wait until it can take a request.
    pub(crate) async fn connect(self) -> Result<(SendRequest<UpstreamBody>, Forward), Answer> {
        let shared = self.finish.shared.clone();
        let mut upstream = lock(&self.conn.upstream).take();
        let mut attempts = 0;
        loop {
            attempts += 1;
            if upstream.as_ref().is_none_or(SendRequest::is_closed) {
                match Box::pin(shared.upstreams.connect(self.protocol)).await {
                    Ok(c) => {
                        lock(&self.conn.drivers).add(c.driver);
                        upstream = Some(c.sender);
                    }
                    Err(e) => return Err(self.unreachable(e)),
                }
            }
            let sender = upstream.as_mut().expect("connected above");
            match sender.ready().await {
                Ok(()) => break,
                // Closed before a request was sent: reconnect.
                Err(_) if attempts < 2 => upstream = None,
                Err(_) => return Err(self.bad_gateway()),
            }
        }
        let mut forward = self;
        forward.sent = Instant::now();
        Ok((upstream.expect("ready above"), forward))
    }

    fn unreachable(self, e: ConnectError) -> Answer {
        let shared = &self.finish.shared;
        shared.metrics.upstream_errors.fetch_add(1, Ordering::Relaxed);
        let status = match e {
            ConnectError::NoneHealthy => shared.no_upstream_status,
            ConnectError::Failed => StatusCode::BAD_GATEWAY,
            ConnectError::Local => StatusCode::SERVICE_UNAVAILABLE,
        };
        answer::unreachable(status, self.finish)
    }

    /// Send once more on a new connection, after a send found the
    /// connection closed before the request went out, or after a request
    /// that may be sent twice ([`Replay`]) failed on a reused one.
    async fn retry(self, req: Request<UpstreamBody>) -> Answer {
        let (mut sender, forward) = match self.connect().await {
            Ok(ready) => ready,
            Err(answer) => return answer,
        };
        match sender.try_send_request(req).await {
            Ok(response) => {
                *lock(&forward.conn.upstream) = Some(sender);
                Ok(forward.respond(response))
            }
            Err(e) => forward.upstream_failed(e.error()),
        }
    }

    /// Exchange's response, as the client gets it.
    pub(crate) fn respond(mut self, response: Response<Incoming>) -> Response<Tracked> {
        self.finish.shared.metrics.upstream_latency(self.sent.elapsed());
        let (mut parts, body) = response.into_parts();
        let upstream_close = strip_hop_by_hop(&mut parts.headers);
        if upstream_close {
            parts.headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if self.handshake && parts.status != StatusCode::UNAUTHORIZED {
            self.conn.signed_in.store(true, Ordering::Relaxed);
        }
        if let Some(user) = self.pending_user {
            if parts.status != StatusCode::UNAUTHORIZED {
                *lock(&self.conn.auth_user) = user;
                self.conn.auth_unread.store(false, Ordering::Relaxed);
            }
        }
        if let Some(informed) = self.informed.take() {
            informed.answered(parts.status.as_u16(), &self.finish.shared.events);
        }
        self.finish.status(parts.status.as_u16(), 0);
        Response::from_parts(parts, Tracked::upstream(body, self.finish))
    }

    pub(crate) fn upstream_failed(self, error: &hyper::Error) -> Answer {
        (self.finish.shared.events)(Level::Warn, &format!("upstream request failed: {error}"));
        self.bad_gateway()
    }

    fn bad_gateway(self) -> Answer {
        self.finish.shared.metrics.upstream_errors.fetch_add(1, Ordering::Relaxed);
        answer::bad_gateway(self.finish)
    }
}

/// Answer a request the gateway refuses before the policy (see [`screen`]).
fn refuse<F>(finish: Finish, refused: Refused, method: &str, path: &str, conn: &ConnInfo) -> Handled<F> {
    Handled::Answered { answer: Some(refused_answer(finish, refused, method, path, conn)) }
}

fn refused_answer(finish: Finish, refused: Refused, method: &str, path: &str, conn: &ConnInfo) -> Answer {
    let shared = &finish.shared;
    shared.metrics.refused.fetch_add(1, Ordering::Relaxed);
    (shared.events)(Level::Info, &format!("refuse {method} {path} from {}: {}", conn.peer, refused.reason));
    answer::refused(refused, finish)
}
