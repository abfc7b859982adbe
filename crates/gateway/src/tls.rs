//! rustls (ring only) for both sides: the listener's certificate, which
//! reloads without a restart, and the roots that upstream certificates are
//! checked against.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::crypto::ring;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::events::{EventSink, Level};
use crate::lock;
use crate::state::{stamped, Stamp};
use crate::GatewayError;

/// CA bundles of the common distributions: "the system's CAs" without a
/// platform crate. webpki-roots is added too.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, GatewayError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(GatewayError::Tls(format!("{}: no certificate", path.display())));
    }
    Ok(certs)
}

/// The listener's certificate chain and key, replaced in place on reload
/// (certificates are renewed every few months): each new handshake takes
/// the pair current then; established connections keep theirs. A pair that
/// fails to load (unreadable, not PEM, key not matching the certificate) is
/// refused and the current one stays.
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
    cert: PathBuf,
    key: PathBuf,
    /// The two files, each with its stamp when last loaded.
    watched: Mutex<Vec<(PathBuf, Stamp)>>,
    /// Serialises reloads (signal and poll may race).
    reloading: Mutex<()>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore").field("cert", &self.cert).field("key", &self.key).finish()
    }
}

impl CertStore {
    /// Load at start; an error here stops the gateway.
    pub fn open(cert: &Path, key: &Path) -> Result<Arc<CertStore>, GatewayError> {
        let watched = stamped([cert, key].into_iter());
        let loaded = certified_key(cert, key)?;
        Ok(Arc::new(CertStore {
            current: RwLock::new(loaded),
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            watched: Mutex::new(watched),
            reloading: Mutex::new(()),
        }))
    }

    /// Load the files again; on error the current pair stays, and the error
    /// is logged and returned.
    pub fn reload(&self, events: &EventSink) -> Result<(), GatewayError> {
        let _guard = lock(&self.reloading);
        // Stamps first: a file changed while loading is seen again next poll.
        *lock(&self.watched) = stamped([self.cert.as_path(), self.key.as_path()].into_iter());
        match certified_key(&self.cert, &self.key) {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded;
                events(Level::Info, &format!("TLS certificate reloaded from {}", self.cert.display()));
                Ok(())
            }
            Err(e) => {
                events(Level::Error, &format!("TLS certificate reload rejected, keeping the current one: {e}"));
                Err(e)
            }
        }
    }

    /// The files' stamps now, when one changed since the last load.
    pub fn changed(&self) -> Option<Vec<Stamp>> {
        crate::state::changed(&lock(&self.watched))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// The chain and key, checked to belong together.
fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, GatewayError> {
    let chain = certs(cert)?;
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| GatewayError::Tls(format!("{}: {e}", key.display())))?;
    let certified = CertifiedKey::from_der(chain, der, &ring::default_provider()).map_err(|e| {
        let why = match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                "the key does not belong to the certificate".to_string()
            }
            e => e.to_string(),
        };
        GatewayError::Tls(format!("{} and {}: {why}", cert.display(), key.display()))
    })?;
    Ok(Arc::new(certified))
}

/// Server side: the certificate store's current pair, HTTP/1.1 only.
pub fn server_config(store: Arc<CertStore>) -> Result<Arc<ServerConfig>, GatewayError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Client side: the given CA file only, else the system bundle plus webpki-roots.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, GatewayError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for c in certs(path)? {
                roots.add(c).map_err(|e| GatewayError::Tls(format!("{}: {e}", path.display())))?;
            }
        }
        None => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(bundle) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.exists()) {
                if let Ok(list) = certs(bundle) {
                    // Odd certificates in a system bundle are skipped, not fatal.
                    let _ = roots.add_parsable_certificates(list);
                }
            }
        }
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
