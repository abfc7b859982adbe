//! One client connection, served to its end: hyper reads its requests
//! (each decided and forwarded by [`crate::forward`]), and one task polls
//! the client side, the connection's upstream connections and its timers
//! together (see [`crate::joint`]). The header-read and idle timeouts are
//! kept here.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::access_log::ConnFields;
use crate::headers::UpstreamBody;
use crate::joint::{Drivers, Event, Joint};
use crate::model::ConnInfo;
use crate::preface;
use crate::state::Shared;

/// Per-connection state shared by its requests (which hyper runs one at a time).
pub(crate) struct ConnState {
    pub(crate) info: ConnInfo,
    pub(crate) activity: Arc<Activity>,
    /// The one upstream connection of this client connection, made on the
    /// first allowed request; never shared with another client.
    /// A request sends on it in place, or takes it out while it connects or
    /// retries: hyper runs a connection's requests one at a time, so no
    /// request ever finds it gone.
    pub(crate) upstream: Mutex<Option<SendRequest<UpstreamBody>>>,
    /// What drives it, polled by `serve_connection` in this connection's task.
    pub(crate) drivers: Mutex<Drivers>,
    /// The peer's address as an X-Forwarded-For value, made once.
    pub(crate) peer_xff: Option<HeaderValue>,
    /// The connection's access log fields, made once.
    pub(crate) log_fields: ConnFields,
    /// The user an NTLM/Negotiate handshake on this connection named and
    /// Exchange accepted; requests after the handshake carry no header.
    pub(crate) auth_user: Mutex<String>,
    /// The scheme of the connection's last NTLM/Negotiate handshake: the
    /// requests after it, which carry no header, are signed in by it, so an
    /// `auth` rule or an authentication policy judges them by it too.
    /// With, for Negotiate, the mechanism inside it (`model::schemes`).
    pub(crate) auth_scheme: Mutex<(exchange::AuthType, exchange::AuthType)>,
    /// An NTLM/Negotiate handshake began on this connection and did not end
    /// in one `auth_user` Exchange accepted (a Kerberos ticket, or one not
    /// yet finished): Windows may hold a user for the connection the gateway
    /// did not read, so a request after it without a header names nobody,
    /// never the one ActiveSync's `User=` names.
    pub(crate) auth_unread: AtomicBool,
    /// Exchange answered an NTLM/Negotiate request on the upstream
    /// connection with something other than 401: it may hold a sign-in,
    /// which a later handshake must not be able to outlive (see
    /// `forward::handle`).
    pub(crate) signed_in: AtomicBool,
    /// The character set the connection's last NTLM NEGOTIATE message
    /// offered, which Windows reads the AUTHENTICATE message's names in:
    /// 0 none seen, 1 OEM, 2 Unicode (see `model::ntlm_leg`).
    pub(crate) ntlm_charset: AtomicU8,
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
        auth_scheme: Mutex::new((exchange::AuthType::Unknown, exchange::AuthType::Unknown)),
        auth_unread: AtomicBool::new(false),
        signed_in: AtomicBool::new(false),
        ntlm_charset: AtomicU8::new(0),
    });
    let svc_shared = shared.clone();
    let svc_state = state.clone();
    let service = hyper::service::service_fn(move |req| crate::forward::handle(&svc_shared, &svc_state, req));
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

// === impl Activity ===

const NONE: u64 = u64::MAX;

/// What a connection is doing, for the idle and header-read timeouts:
/// hyper's own header timer also runs while a keep-alive connection waits,
/// so the two are told apart here.
pub(crate) struct Activity {
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

    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NONE, Ordering::Relaxed);
    }

    pub(crate) fn end(&self) {
        self.idle_since.store(self.now(), Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// How long the connection waited since its last request ended.
    pub(crate) fn waited(&self) -> Duration {
        Duration::from_millis(self.now().saturating_sub(self.idle_since.load(Ordering::Relaxed)))
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

crate::passthrough::write_through!(Watched);
