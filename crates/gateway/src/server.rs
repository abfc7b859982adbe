//! Binding, accepting, background tasks (health checks, reload polling of
//! the policy and the TLS certificate, metrics), signals and graceful shutdown.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::events::{EventSink, Level};
use crate::load::Loaded;
use crate::metrics::Metrics;
use crate::model::ConnInfo;
use crate::state::Shared;
use crate::upstream::Upstreams;
use crate::{health, tls, GatewayError};

/// A bound gateway, ready to [`run`](Gateway::run).
pub struct Gateway {
    shared: Arc<Shared>,
    listeners: Vec<(TcpListener, Option<TlsAcceptor>)>,
    metrics: Option<TcpListener>,
    max_connections: usize,
    threads: usize,
    drain_timeout: Duration,
    reload_interval: Duration,
}

/// Control of a running gateway from outside (signals, tests).
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Reload policy and inventory now; on error the old policy stays.
    pub fn reload(&self) -> Result<(), GatewayError> {
        self.shared.reload()
    }

    /// Reload the TLS certificate and key now; on error the current pair
    /// stays. Connections already open are not touched.
    pub fn reload_tls(&self) -> Result<(), GatewayError> {
        self.shared.reload_tls()
    }

    /// What SIGHUP does: reload the policy and the TLS certificate, each
    /// keeping its current state on error. The first error is returned.
    pub fn reload_all(&self) -> Result<(), GatewayError> {
        let policy = self.reload();
        let tls = self.reload_tls();
        policy.and(tls)
    }

    /// Stop accepting and drain.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// The metrics text, as served on the metrics address.
    pub fn metrics(&self) -> String {
        self.shared.metrics_text()
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr).await.map_err(GatewayError::io(format!("cannot listen on {addr}")))
}

impl Gateway {
    /// Load the policy (failing closed), open the listeners and the access
    /// log. Nothing is served until [`run`](Gateway::run).
    pub async fn bind(config: Config, events: EventSink) -> Result<Gateway, GatewayError> {
        let Loaded { interpreter, policy, upstreams, client_tls, health, certs, learned } = Loaded::load(&config)?;
        let upstreams = Arc::new(Upstreams::new(
            upstreams,
            client_tls,
            Config::secs(config.connect_timeout),
            health,
            events.clone(),
        ));
        let acceptor = match &certs {
            Some(store) => Some(TlsAcceptor::from(tls::server_config(store.clone())?)),
            None => None,
        };
        let mut listeners = Vec::new();
        for addr in &config.listen {
            listeners.push((bind(*addr).await?, acceptor.clone()));
        }
        for addr in &config.listen_plain {
            listeners.push((bind(*addr).await?, None));
        }
        let metrics = match config.metrics {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let access_log = match &config.access_log {
            Some(dir) => Some(AccessLog::start(dir, events.clone())?),
            None => None,
        };

        let header_timeout = Config::secs(config.header_timeout);
        let idle_timeout = Config::secs(config.idle_timeout);
        let mut server = http1::Builder::new();
        server
            .timer(TokioTimer::new())
            // The connection task enforces the header-read and idle limits
            // (slow heads, trickled bytes, idle keep-alive; tested); hyper's
            // own timer would add one timer per request to that.
            .header_read_timeout(None)
            .max_buf_size(config.max_header_bytes)
            .max_headers(config.max_headers)
            .keep_alive(true)
            // Request header names reach Exchange lower-cased, as they do
            // over HTTP/2, which IIS serves too: recording each request's
            // case cost about 2,800 instructions a request. Responses still
            // carry Exchange's case (the upstream connection records it), for
            // mobile clients that match header names exactly.
            .preserve_header_case(false);
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            interpreter,
            policy,
            upstreams,
            certs,
            metrics: Metrics::default(),
            access_log,
            events,
            server,
            header_timeout,
            idle_timeout,
            no_upstream_status: StatusCode::from_u16(config.no_upstream_status).unwrap_or(StatusCode::BAD_GATEWAY),
            max_head_bytes: config.max_header_bytes,
            trusted: config.trusted()?,
            shutdown,
            learned: Arc::new(learned),
        });
        Ok(Gateway {
            shared,
            listeners,
            metrics,
            max_connections: config.max_connections,
            threads: config.threads,
            drain_timeout: Config::secs(config.drain_timeout),
            reload_interval: Config::secs(config.reload_interval),
        })
    }

    /// The client listeners' addresses: `listen` first, then `listen-plain`.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|(l, _)| l.local_addr().ok()).collect()
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn handle(&self) -> Handle {
        Handle { shared: self.shared.clone() }
    }

    /// Serve until [`Handle::shutdown`], then drain up to the drain timeout.
    pub async fn run(self) -> Result<(), GatewayError> {
        let shared = self.shared;
        let events = shared.events.clone();
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let workers = if self.threads > 1 { Some(Workers::start(self.threads)?) } else { None };
        let mut accepting = Vec::new();
        for (listener, tls) in self.listeners {
            let addr = listener.local_addr().map_err(GatewayError::io("listener address"))?;
            let kind = if tls.is_some() { "https" } else { "http" };
            events(Level::Info, &format!("listening on {kind}://{addr}"));
            let Some(workers) = &workers else {
                accepting.push(tokio::spawn(accept_loop(shared.clone(), listener, tls, limit.clone())));
                continue;
            };
            // Every worker accepts on the same socket.
            let listener = listener.into_std().map_err(GatewayError::io(format!("cannot share {addr}")))?;
            for worker in &workers.runtimes {
                let listener = listener.try_clone().map_err(GatewayError::io(format!("cannot share {addr}")))?;
                let (shared, tls, limit) = (shared.clone(), tls.clone(), limit.clone());
                accepting.push(worker.spawn(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => accept_loop(shared, listener, tls, limit).await,
                        Err(e) => (shared.events)(Level::Error, &format!("cannot listen on {addr}: {e}")),
                    }
                }));
            }
        }
        for warning in crate::load::policy_warnings(&shared.policy.current(), &shared.learned) {
            events(Level::Warn, &warning);
        }
        let mut background: Vec<JoinHandle<()>> = vec![
            tokio::spawn(health::check_loop(shared.upstreams.clone())),
            tokio::spawn(poll_reload(shared.clone(), self.reload_interval)),
            tokio::spawn(shared.learned.clone().keep(events.clone())),
        ];
        if let Some(listener) = self.metrics {
            background.push(tokio::spawn(metrics_loop(shared.clone(), listener)));
        }

        let mut stop = shared.shutdown.subscribe();
        let _ = crate::server::stopped(&mut stop).await;
        events(Level::Info, "shutting down: no new connections; draining requests in flight");
        for a in accepting {
            let _ = a.await;
        }
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        match tokio::time::timeout(self.drain_timeout, limit.acquire_many(all)).await {
            Ok(_) => events(Level::Info, "drained"),
            Err(_) => events(
                Level::Warn,
                &format!(
                    "drain timeout: closing {} connection(s) still open",
                    shared.metrics.open_connections.load(Ordering::Relaxed)
                ),
            ),
        }
        for b in background {
            b.abort();
        }
        if let Some(workers) = workers {
            workers.stop().await;
        }
        if let Err(e) = shared.learned.save() {
            events(Level::Error, &e);
        }
        if let Some(log) = &shared.access_log {
            log.close();
        }
        Ok(())
    }
}

/// Single-threaded runtimes on threads of their own, each accepting on the
/// same listeners. A connection stays on the thread that accepted it, as in
/// nginx's workers and pingora's no-steal runtime: no task is stolen or
/// woken across threads, and a busy thread serves its connections in turn.
struct Workers {
    runtimes: Vec<tokio::runtime::Handle>,
    threads: Vec<std::thread::JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Workers {
    fn start(n: usize) -> Result<Workers, GatewayError> {
        let (stop, _) = watch::channel(false);
        let mut workers = Workers { runtimes: Vec::new(), threads: Vec::new(), stop };
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(GatewayError::io("cannot start a worker's runtime"))?;
            workers.runtimes.push(runtime.handle().clone());
            let mut stop = workers.stop.subscribe();
            let thread = std::thread::Builder::new()
                .name(format!("casguard-worker-{i}"))
                .spawn(move || {
                    // Runs the worker's tasks until told to stop; what is
                    // still open then (past the drain timeout) is dropped.
                    runtime.block_on(stopped(&mut stop));
                    runtime.shutdown_timeout(Duration::from_secs(1));
                })
                .map_err(GatewayError::io("cannot start a worker thread"))?;
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
    }
}

/// Resolves once shutdown is requested (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Bind, then run until SIGINT or SIGTERM; SIGHUP reloads the policy and
/// the TLS certificate.
pub async fn serve(config: Config, events: EventSink) -> Result<(), GatewayError> {
    let gateway = Gateway::bind(config, events.clone()).await?;
    let handle = gateway.handle();
    spawn_signals(handle, events)?;
    gateway.run().await
}

#[cfg(unix)]
fn spawn_signals(handle: Handle, events: EventSink) -> Result<(), GatewayError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).map_err(GatewayError::io("cannot watch SIGHUP"))?;
    let mut term = signal(SignalKind::terminate()).map_err(GatewayError::io("cannot watch SIGTERM"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(GatewayError::io("cannot watch SIGINT"))?;
    let h = handle.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            events(Level::Info, "SIGHUP: reloading the policy and the TLS certificate");
            let h = h.clone();
            let _ = tokio::task::spawn_blocking(move || h.reload_all()).await;
        }
    });
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        handle.shutdown();
    });
    Ok(())
}

#[cfg(not(unix))]
fn spawn_signals(handle: Handle, _events: EventSink) -> Result<(), GatewayError> {
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        handle.shutdown();
    });
    Ok(())
}

/// How long a changed file must hold still before it is loaded.
const SETTLE: Duration = Duration::from_millis(300);

async fn poll_reload(shared: Arc<Shared>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let policy = shared.policy.changed();
        let certs = shared.certs.as_ref().and_then(|c| c.changed());
        if policy.is_none() && certs.is_none() {
            continue;
        }
        // A file written in place (not renamed into place) may be caught
        // half-written: load it only once it holds still. What it then
        // holds is checked like any policy (an empty one is refused) or
        // certificate (a key must match its certificate).
        tokio::time::sleep(SETTLE).await;
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if policy.is_some() && s.policy.changed() == policy {
                let _ = s.reload();
            }
            if certs.is_some() && s.certs.as_ref().and_then(|c| c.changed()) == certs {
                let _ = s.reload_tls();
            }
        })
        .await;
    }
}

/// Accept while a connection slot is free: at the limit, new clients wait
/// in the kernel's backlog instead of being served badly.
async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, tls: Option<TlsAcceptor>, limit: Arc<Semaphore>) {
    let mut stop = shared.shutdown.subscribe();
    let port = listener.local_addr().map_or(0, |a| a.port());
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = crate::server::stopped(&mut stop) => return,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = crate::server::stopped(&mut stop) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: back off, keep serving.
                (shared.events)(Level::Warn, &format!("accept: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip().to_canonical());
        let peer_ip = peer.ip().to_canonical();
        let info =
            ConnInfo { peer: peer_ip, local, port, trusted_peer: shared.trusted.iter().any(|n| n.contains(&peer_ip)) };
        let shared = shared.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            shared.metrics.open_connections.fetch_add(1, Ordering::Relaxed);
            shared.metrics.connections_total.fetch_add(1, Ordering::Relaxed);
            match tls {
                // Boxed: the TLS branch's future is several times the plain
                // one's (6.9 KB against 1.3 KB), and a task is as large as
                // its largest branch.
                Some(acceptor) => {
                    Box::pin(async {
                        // Failed or slow handshakes are the client's problem; not logged to avoid noise.
                        let handshake = tokio::time::timeout(shared.header_timeout, acceptor.accept(tcp)).await;
                        if let Ok(Ok(stream)) = handshake {
                            crate::connection::serve_connection(shared.clone(), stream, info, stop).await;
                        }
                    })
                    .await
                }
                None => crate::connection::serve_connection(shared.clone(), tcp, info, stop).await,
            }
            shared.metrics.open_connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn metrics_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move {
                    if req.uri().path() == "/metrics" {
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                            .body(Full::new(Bytes::from(shared.metrics_text())))
                    } else {
                        Response::builder().status(StatusCode::NOT_FOUND).body(Full::new(Bytes::from_static(b"")))
                    }
                }
            });
            let mut b = http1::Builder::new();
            b.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
            let _ = b.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}
