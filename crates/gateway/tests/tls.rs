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

        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, "default = 'allow'\n").unwrap();
        let config = gateway::Config {
            policy: Some(policy),
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            tls_cert: Some(cert_path.clone()),
            tls_key: Some(key_path),
            upstream: vec![format!("https://localhost:{up_port}")],
            upstream_ca: Some(cert_path),
            health_interval: 1,
            ..gateway::Config::default()
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
            .header("authorization", "Negotiate YIIabc")
            .body(Full::new(Bytes::from_static(b"<soap/>")))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"tls upstream got 7 bytes, auth=Some(\"Negotiate YIIabc\")");

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
    std::fs::write(&policy, "default = 'allow'\n").unwrap();
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
