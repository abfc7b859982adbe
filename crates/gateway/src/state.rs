//! What the connections share: the policy in force and its reloading, the
//! upstreams, metrics, logs and limits. Requests take an `Arc` of the
//! current policy and keep it to the end, so a reload never changes a
//! request in flight; a policy that fails to load or check is rejected and
//! the old one stays.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use exchange::Interpreter;
use hyper::server::conn::http1;
use hyper::StatusCode;
use ipnet::IpNet;
use policy::{PolicyError, ReadyPolicy};
use tokio::sync::watch;

use crate::access_log::AccessLog;
use crate::events::{EventSink, Level};
use crate::lock;
use crate::metrics::Metrics;
use crate::tls::CertStore;
use crate::upstream::Upstreams;
use crate::GatewayError;

/// Everything the connections share.
pub(crate) struct Shared {
    pub interpreter: Arc<Interpreter>,
    pub policy: PolicyStore,
    pub upstreams: Arc<Upstreams>,
    /// The TLS listeners' certificate, when there are TLS listeners.
    pub certs: Option<Arc<CertStore>>,
    pub metrics: Metrics,
    pub access_log: Option<AccessLog>,
    pub events: EventSink,
    pub server: http1::Builder,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub no_upstream_status: StatusCode,
    /// Largest request head accepted, exactly (hyper's buffer limit is looser).
    pub max_head_bytes: usize,
    pub trusted: Vec<IpNet>,
    pub shutdown: watch::Sender<bool>,
    /// Devices' models and OSes as they said them (see [`crate::learn`]).
    pub learned: Arc<crate::learn::Learned>,
}

impl Shared {
    pub fn reload(&self) -> Result<(), GatewayError> {
        self.policy.reload(&self.interpreter, &self.events, &self.metrics).map_err(GatewayError::Policy)
    }

    /// Reload the TLS certificate and key, if any; on error the current
    /// pair stays.
    pub fn reload_tls(&self) -> Result<(), GatewayError> {
        match &self.certs {
            Some(store) => store.reload(&self.events),
            None => Ok(()),
        }
    }

    pub fn metrics_text(&self) -> String {
        let dropped = self.access_log.as_ref().map_or(0, AccessLog::dropped);
        self.metrics.render(self.interpreter.catalog(), &self.upstreams, dropped)
    }
}

/// File identity used to notice changes: modification time and length.
pub type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

pub(crate) fn stamped<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<(PathBuf, Stamp)> {
    paths.map(|p| (p.to_path_buf(), stamp(p))).collect()
}

pub struct PolicyStore {
    current: RwLock<Arc<ReadyPolicy>>,
    policy_path: PathBuf,
    inventory_path: Option<PathBuf>,
    /// The policy file, the inventory and the policy's group files, each
    /// with its stamp when last loaded.
    watched: Mutex<Vec<(PathBuf, Stamp)>>,
    /// Serialises reloads (signal and poll may race).
    reloading: Mutex<()>,
    /// Counts the policies put in force; see [`PolicyStore::generation`].
    generation: AtomicU64,
}

/// The policy and inventory, refused when a rule could not be enforced on
/// live traffic (fail closed): one on a device's model or OS needs a device
/// export that holds them.
fn load(path: &Path, inventory: Option<&Path>, interpreter: &Arc<Interpreter>) -> Result<ReadyPolicy, PolicyError> {
    let loaded = ReadyPolicy::load(path, inventory, interpreter.clone())?;
    if let Some(rule) = loaded.rule_without_device_facts() {
        return Err(PolicyError::Invalid {
            file: path.display().to_string(),
            line: Some(rule.line),
            message: format!(
                "rule '{}' reads a device's model or OS, which a request does not carry: give --devices with a \
                 device export (Get-MobileDevice) that has DeviceModel and DeviceOS, or the gateway could not \
                 enforce it",
                rule.name
            ),
        });
    }
    Ok(loaded)
}

impl PolicyStore {
    /// Load at start; an error here must stop the gateway (fail closed).
    pub fn open(
        path: &Path,
        inventory: Option<&Path>,
        interpreter: &Arc<Interpreter>,
    ) -> Result<PolicyStore, PolicyError> {
        let mut watched = stamped([Some(path), inventory].into_iter().flatten());
        let loaded = load(path, inventory, interpreter)?;
        watched.extend(stamped(loaded.policy().group_files().iter().map(PathBuf::as_path)));
        Ok(PolicyStore {
            current: RwLock::new(Arc::new(loaded)),
            policy_path: path.to_path_buf(),
            inventory_path: inventory.map(Path::to_path_buf),
            watched: Mutex::new(watched),
            reloading: Mutex::new(()),
            generation: AtomicU64::new(0),
        })
    }

    /// Which policy is in force, as a number that grows with each reload.
    /// Read it before [`PolicyStore::current`]: a reload in between then
    /// looks like one after, never the other way round (see `crate::rejudge`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn current(&self) -> Arc<ReadyPolicy> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reload now. On error the old policy stays and the error is returned.
    pub fn reload(
        &self,
        interpreter: &Arc<Interpreter>,
        events: &EventSink,
        metrics: &Metrics,
    ) -> Result<(), PolicyError> {
        let _guard = lock(&self.reloading);
        // Stamps first: a file changed while loading is seen again next poll.
        let mut watched =
            stamped([Some(self.policy_path.as_path()), self.inventory_path.as_deref()].into_iter().flatten());
        let old_groups = self.current().policy().group_files().to_vec();
        let result = load(&self.policy_path, self.inventory_path.as_deref(), interpreter);
        // A rejected policy names no group files we can trust: keep watching the old ones.
        let groups = result.as_ref().map_or(&old_groups[..], |l| l.policy().group_files());
        watched.extend(stamped(groups.iter().map(PathBuf::as_path)));
        *lock(&self.watched) = watched;
        match result {
            Ok(loaded) => {
                let rules = loaded.policy().rules().len();
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
                self.generation.fetch_add(1, Ordering::Release);
                metrics.reloads_ok.fetch_add(1, Ordering::Relaxed);
                let rules = crate::load::rules(rules);
                events(Level::Info, &format!("policy reloaded from {} ({rules})", self.policy_path.display()));
                Ok(())
            }
            Err(e) => {
                metrics.reloads_failed.fetch_add(1, Ordering::Relaxed);
                events(Level::Error, &format!("policy reload rejected, keeping the previous policy: {e}"));
                Err(e)
            }
        }
    }

    /// The watched files' stamps now, when one changed since the last load.
    pub fn changed(&self) -> Option<Vec<Stamp>> {
        changed(&lock(&self.watched))
    }
}

/// The stamps of `watched` files now, when one differs from its stamp then.
pub(crate) fn changed(watched: &[(PathBuf, Stamp)]) -> Option<Vec<Stamp>> {
    let now: Vec<Stamp> = watched.iter().map(|(path, _)| stamp(path)).collect();
    watched.iter().zip(&now).any(|((_, was), is)| was != is).then_some(now)
}
