//! The Exchange servers behind the gateway: parsing, choosing one by
//! health (see [`crate::health`]), and opening one dedicated HTTP/1.1
//! connection for one client connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use exchange::Protocol;
use hyper::body::Body;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::HeaderValue;
use hyper::Uri;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::events::{EventSink, Level};
use crate::health::{self, Health};
use crate::GatewayError;

/// One upstream server.
#[derive(Debug)]
pub struct Upstream {
    /// As given, for messages and metrics.
    pub name: String,
    host: String,
    port: u16,
    tls: Option<ServerName<'static>>,
    /// `host[:port]`, the Host of health checks.
    pub(crate) authority: HeaderValue,
    pub(crate) health: Health,
}

impl Upstream {
    pub fn parse(text: &str) -> Result<Upstream, GatewayError> {
        let bad = |why: &str| GatewayError::Config(format!("upstream '{text}': {why}"));
        let uri: Uri = text.parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("use http:// or https://")),
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("give no path; requests keep theirs"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(bad("give no user name"));
        }
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            Some(ServerName::try_from(host.clone()).map_err(|_| bad("not a valid TLS server name"))?)
        } else {
            None
        };
        let authority =
            HeaderValue::from_str(uri.authority().map_or("", |a| a.as_str())).map_err(|_| bad("not a valid host"))?;
        Ok(Upstream {
            name: text.trim_end_matches('/').to_string(),
            host,
            port,
            tls,
            authority,
            health: Health::default(),
        })
    }

    async fn tcp(&self, timeout: Duration) -> std::io::Result<TcpStream> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// A dedicated upstream connection.
pub struct Connection {
    pub sender: SendRequest<crate::headers::UpstreamBody>,
    /// Does the connection's reading and writing: its owner polls it (in the
    /// client connection's own task) for as long as the connection is in use.
    /// It ends when the connection does.
    pub driver: Driver,
}

/// The future that drives one upstream connection.
pub type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// Why no upstream connection could be had.
pub enum ConnectError {
    /// Every upstream was out of use, and none of them connected either.
    NoneHealthy,
    /// Those in use refused or failed.
    Failed,
    /// The gateway itself is out of descriptors, memory or local ports: not
    /// the upstream's fault, so no upstream is marked down for it.
    Local,
}

/// Why one connection attempt failed.
pub(crate) enum OpenError {
    Local(String),
    Upstream(String),
}

/// Errors of this host rather than of the upstream: descriptor limits
/// (EMFILE, ENFILE), memory, ephemeral ports.
fn is_local(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::AddrNotAvailable | ErrorKind::OutOfMemory)
        || (cfg!(unix) && matches!(e.raw_os_error(), Some(23 | 24)))
}

/// All upstreams, with round-robin choice among those in use.
pub struct Upstreams {
    list: Vec<Upstream>,
    next: AtomicUsize,
    tls: Option<TlsConnector>,
    connect_timeout: Duration,
    pub(crate) health: health::Settings,
    pub(crate) events: EventSink,
}

impl Upstreams {
    pub fn new(
        list: Vec<Upstream>,
        tls: Option<Arc<ClientConfig>>,
        connect_timeout: Duration,
        health: health::Settings,
        events: EventSink,
    ) -> Upstreams {
        Upstreams { list, next: AtomicUsize::new(0), tls: tls.map(TlsConnector::from), connect_timeout, health, events }
    }

    pub fn list(&self) -> &[Upstream] {
        &self.list
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Open a new connection for one client connection whose first request
    /// is of `protocol`: the next upstream in use, in turn, failing over to
    /// the others (see [`Upstreams::turn`]). A failure counts toward the
    /// upstream's `fall`.
    pub async fn connect(&self, protocol: Protocol) -> Result<Connection, ConnectError> {
        let n = self.list.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let any_up = self.list.iter().any(|u| u.health.is_up());
        for turn in 0..2 {
            for k in 0..n {
                let up = &self.list[(start + k) % n];
                if self.turn(up, protocol, any_up) != Some(turn) {
                    continue;
                }
                match self.open(up).await {
                    Ok((sender, driver)) => {
                        self.connected(up);
                        return Ok(Connection { sender, driver });
                    }
                    // Another upstream would fail the same way.
                    Err(OpenError::Local(e)) => {
                        (self.events)(Level::Warn, &format!("cannot connect to upstream {}: {e}", up.name));
                        return Err(ConnectError::Local);
                    }
                    Err(OpenError::Upstream(e)) => self.record(up, false, &format!("connect: {e}")),
                }
            }
        }
        Err(if any_up { ConnectError::Failed } else { ConnectError::NoneHealthy })
    }

    /// A new HTTP/1.1 connection to `up`, and the future that drives it.
    pub(crate) async fn open<B>(&self, up: &Upstream) -> Result<(SendRequest<B>, Driver), OpenError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tcp = up.tcp(self.connect_timeout).await.map_err(|e| {
            if is_local(&e) {
                OpenError::Local(e.to_string())
            } else {
                OpenError::Upstream(e.to_string())
            }
        })?;
        self.handshake(up, tcp).await.map_err(OpenError::Upstream)
    }

    async fn handshake<B>(&self, up: &Upstream, tcp: TcpStream) -> Result<(SendRequest<B>, Driver), String>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut builder = http1::Builder::new();
        // Records the case of Exchange's response headers, which the client
        // connection then writes back unchanged: Outlook 2016 (16.0.4266)
        // fails on lower-cased ones behind HAProxy (haproxy/haproxy#561), as
        // the Nokia N900's ActiveSync client did behind mitmproxy
        // (mitmproxy/mitmproxy#5).
        builder.preserve_header_case(true).title_case_headers(false);
        let (sender, driver): (_, Driver) = match (&up.tls, &self.tls) {
            (Some(name), Some(connector)) => {
                let tls = tokio::time::timeout(self.connect_timeout, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| "TLS handshake timed out".to_string())?
                    .map_err(|e| format!("TLS: {e}"))?;
                let (sender, conn) = builder.handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
                (sender, Box::pin(conn))
            }
            (Some(_), None) => return Err("no TLS client configuration".into()),
            (None, _) => {
                let (sender, conn) = builder.handshake(TokioIo::new(tcp)).await.map_err(|e| e.to_string())?;
                (sender, Box::pin(conn))
            }
        };
        Ok((sender, driver))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_urls() {
        let u = Upstream::parse("https://cas1.contoso.local").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls.is_some()), ("cas1.contoso.local", 443, true));
        let u = Upstream::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls.is_some()), ("127.0.0.1", 8080, false));
        let u = Upstream::parse("https://[::1]:444").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 444));
        assert!(Upstream::parse("ftp://x").is_err());
        assert!(Upstream::parse("http://x/owa").is_err());
        assert!(Upstream::parse("cas1").is_err());
        assert!(Upstream::parse("https://user:pw@cas1").is_err());
        assert_eq!(Upstream::parse("https://[::1]:444").unwrap().authority, "[::1]:444");
    }

    #[test]
    fn descriptor_exhaustion_is_not_the_upstreams_fault() {
        use std::io::{Error, ErrorKind};
        assert!(is_local(&Error::from_raw_os_error(24)));
        assert!(is_local(&Error::from(ErrorKind::AddrNotAvailable)));
        assert!(!is_local(&Error::from(ErrorKind::ConnectionRefused)));
        assert!(!is_local(&Error::from(ErrorKind::TimedOut)));
    }
}
