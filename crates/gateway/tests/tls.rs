//! TLS on both sides: the gateway terminates TLS with a given certificate
//! and talks TLS to an upstream whose CA is given.

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A gateway that allows everything, serving TLS with the certificate and
/// key files given on a free loopback port, in front of `upstream`.
fn tls_config(
    dir: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
    upstream: String,
) -> gateway::Config {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, ALLOW).unwrap();
    gateway::Config {
        policy: Some(policy),
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        tls_cert: Some(cert.to_path_buf()),
        tls_key: Some(key.to_path_buf()),
        upstream: vec![upstream],
        ..gateway::Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_and_tls_upstream() {
    within(30, async {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert_pem, key_pem) = (ck.cert.pem(), ck.signing_key.serialize_pem());
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, &cert_pem).unwrap();
        std::fs::write(&key_path, &key_pem).unwrap();

        // An HTTPS upstream with the same certificate (SSL bridging, as Exchange's Extended Protection wants).
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_port = upstream.local_addr().unwrap().port();
        let checks = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let checks_seen = checks.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = upstream.accept().await else { return };
                let acceptor = acceptor.clone();
                let checks = checks_seen.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let checks = checks.clone();
                        async move {
                            if req.uri().path().ends_with("/healthcheck.htm")
                                && req.headers()["host"] == format!("localhost:{up_port}").as_str()
                            {
                                checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            let auth = req.headers().get("authorization").cloned();
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let text = format!("tls upstream got {} bytes, auth={:?}", body.len(), auth);
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
                });
            }
        });

        let config = gateway::Config {
            upstream_ca: Some(cert_path.clone()),
            health_interval: 1,
            ..tls_config(dir.path(), &cert_path, &key_path, format!("https://localhost:{up_port}"))
        };
        let gw = gateway::Gateway::bind(config, gateway::events::silent()).await.unwrap();
        let addr = gw.listen_addrs()[0];
        let handle = gw.handle();
        let task = tokio::spawn(gw.run());

        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), None);
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        let req = Request::builder()
            .method("POST")
            .uri("/EWS/Exchange.asmx")
            .header("host", "localhost")
            .header("authorization", "Negotiate YIIGkw==")
            .body(Full::new(Bytes::from_static(b"<soap/>")))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"tls upstream got 7 bytes, auth=Some(\"Negotiate YIIGkw==\")");

        // Health checks speak TLS to the upstream too, with its name.
        within(10, async {
            while checks.load(std::sync::atomic::Ordering::SeqCst) < 9 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(handle.metrics().contains(&format!(
            "casguard_gateway_upstream_failures_total{{upstream=\"https://localhost:{up_port}\"}} 0"
        )));

        handle.shutdown();
        drop(send);
        within(10, task).await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, ALLOW).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    let config = gateway::Config {
        policy: Some(policy),
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        tls_cert: Some(dir.path().join("junk.pem")),
        tls_key: Some(dir.path().join("junk.pem")),
        upstream: vec!["http://127.0.0.1:9".into()],
        ..gateway::Config::default()
    };
    let err = gateway::Gateway::bind(config, gateway::events::silent()).await.err().unwrap();
    assert!(matches!(err, gateway::GatewayError::Tls(_)), "{err}");
}

/// A self-signed certificate for localhost: PEM chain, PEM key, DER.
fn self_signed() -> (String, String, CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = CertificateDer::from(ck.cert.der().to_vec());
    (ck.cert.pem(), ck.signing_key.serialize_pem(), der)
}

/// As certificate tools do: write beside, then rename into place.
fn replace(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A new TLS connection to the gateway: the certificate it was given, and
/// an HTTP sender on it.
async fn connect(addr: std::net::SocketAddr, trusted: &[CertificateDer<'static>]) -> (CertificateDer<'static>, Sender) {
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add(c.clone()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let served = tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    (served, send)
}

async fn owa(send: &mut Sender) -> StatusCode {
    send.ready().await.expect("the connection is still open");
    let req = Request::get("/owa/").header("host", "localhost").body(Full::new(Bytes::new())).unwrap();
    send.send_request(req).await.expect("the connection is still open").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_reaches_new_handshakes_without_dropping_open_connections() {
    within(60, async {
        let dir = tempfile::tempdir().unwrap();
        let (_mock, up) = start_mock().await;
        let (a_cert, a_key, a_der) = self_signed();
        let (b_cert, b_key, b_der) = self_signed();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, &a_cert).unwrap();
        std::fs::write(&key_path, &a_key).unwrap();
        let config = gateway::Config {
            reload_interval: 1,
            ..tls_config(dir.path(), &cert_path, &key_path, format!("http://{up}"))
        };
        let events = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink_events = events.clone();
        let sink: gateway::EventSink =
            Arc::new(move |level, msg: &str| sink_events.lock().unwrap().push(format!("{level}: {msg}")));
        let gw = gateway::Gateway::bind(config, sink).await.unwrap();
        let (addr, handle) = (gw.listen_addrs()[0], gw.handle());
        let task = tokio::spawn(gw.run());
        let trusted = [a_der.clone(), b_der.clone()];
        let events_with = |what: &str| events.lock().unwrap().iter().filter(|e| e.contains(what)).count();
        let until = |what: &'static str, n: usize| {
            let events = events.clone();
            within(15, async move {
                while events.lock().unwrap().iter().filter(|e| e.contains(what)).count() < n {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            })
        };

        let (served, mut open) = connect(addr, &trusted).await;
        assert_eq!(served, a_der);
        assert_eq!(owa(&mut open).await, StatusCode::OK);

        // Renewed on disk: picked up without a signal.
        replace(&cert_path, &b_cert);
        replace(&key_path, &b_key);
        until("TLS certificate reloaded", 1).await;
        let (served, mut new) = connect(addr, &trusted).await;
        assert_eq!(served, b_der, "a new handshake gets the new certificate");
        assert_eq!(owa(&mut new).await, StatusCode::OK);
        assert_eq!(owa(&mut open).await, StatusCode::OK, "the connection made before the reload still works");

        // A broken file is refused and says why; the current pair stays.
        let rejected = events_with("TLS certificate reload rejected");
        replace(&cert_path, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
        until("TLS certificate reload rejected", rejected + 1).await;
        assert_eq!(connect(addr, &trusted).await.0, b_der);

        // A certificate with another's key: refused, on SIGHUP's path too.
        replace(&cert_path, &a_cert);
        let err = handle.reload_all().unwrap_err().to_string();
        assert!(err.contains("the key does not belong to the certificate"), "{err}");
        assert!(
            events
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.contains("keeping the current one") && e.contains("does not belong")),
            "{:?}",
            events.lock().unwrap()
        );
        assert_eq!(connect(addr, &trusted).await.0, b_der);
        assert_eq!(owa(&mut open).await, StatusCode::OK);

        // Fixed: SIGHUP's path loads it.
        replace(&key_path, &a_key);
        handle.reload_all().unwrap();
        assert_eq!(connect(addr, &trusted).await.0, a_der);

        handle.shutdown();
        drop((open, new));
        within(10, task).await.unwrap().unwrap();
    })
    .await;
}
