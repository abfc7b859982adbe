//! What the gateway loads before it serves: settings, catalog and networks,
//! the policy (failing closed), the upstreams and their TLS roots, and the
//! listener's certificate and key. [`check`] loads the same and stops there
//! (`casguard gateway --check`): nothing is bound, served or written.

use std::path::Path;
use std::sync::Arc;

use exchange::Interpreter;
use rustls::ClientConfig;

use crate::config::Config;
use crate::health;
use crate::learn::Learned;
use crate::state::PolicyStore;
use crate::tls::{self, CertStore};
use crate::upstream::Upstream;
use crate::GatewayError;

pub(crate) struct Loaded {
    pub interpreter: Arc<Interpreter>,
    pub policy: PolicyStore,
    pub upstreams: Vec<Upstream>,
    /// For `https://` upstreams.
    pub client_tls: Option<Arc<ClientConfig>>,
    pub health: health::Settings,
    /// For the TLS listeners.
    pub certs: Option<Arc<CertStore>>,
    /// Devices' models and OSes learnt before (`learnt-devices`).
    pub learned: Learned,
}

impl Loaded {
    pub fn load(config: &Config) -> Result<Loaded, GatewayError> {
        config.validate()?;
        let interpreter = Interpreter::load(config.catalog.as_deref(), &config.ranges)
            .map_err(|e| GatewayError::Config(e.to_string()))?;
        let interpreter = Arc::new(interpreter);
        let policy_path = config.policy.as_deref().unwrap_or(Path::new(""));
        let policy = PolicyStore::open(policy_path, config.inventory.as_deref(), &interpreter)?;
        let upstreams = config.upstream.iter().map(|u| Upstream::parse(u)).collect::<Result<Vec<_>, _>>()?;
        let client_tls = if config.upstream.iter().any(|u| u.starts_with("https:")) {
            Some(tls::client_config(config.upstream_ca.as_deref())?)
        } else {
            None
        };
        let health = health::Settings {
            interval: Config::secs(config.health_interval),
            fall: config.health_fall,
            rise: config.health_rise,
            pages: config.health_pages()?,
            route_by_health: config.route_by_health,
        };
        let certs = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(CertStore::open(cert, key)?),
            _ => None,
        };
        let learned = Learned::open(config.learnt_devices.as_deref())?;
        Ok(Loaded { interpreter, policy, upstreams, client_tls, health, certs, learned })
    }
}

/// Load everything the gateway would load at start, then stop. On success,
/// what was loaded, a line each; on failure, why (the same error the
/// gateway would stop with).
pub fn check(config: &Config) -> Result<Vec<String>, GatewayError> {
    let loaded = Loaded::load(config)?;
    if let Some(dir) = &config.access_log {
        if dir.exists() && !dir.is_dir() {
            return Err(GatewayError::Config(format!("access log: {} is not a directory", dir.display())));
        }
    }
    let mut lines = Vec::new();
    let current = loaded.policy.current();
    let policy = config.policy.as_deref().unwrap_or(Path::new(""));
    lines.push(format!("policy {} ({})", policy.display(), rules(current.policy().rules().len())));
    lines.extend(policy_warnings(&current, &loaded.learned).into_iter().map(|w| format!("warning: {w}")));
    if let Some(inventory) = &config.inventory {
        lines.push(format!("inventory {}", inventory.display()));
    }
    if let Some(file) = loaded.learned.file() {
        lines.push(format!("learnt devices {} ({} devices)", file.display(), loaded.learned.len()));
    }
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        lines.push(format!("TLS certificate {} with key {}", cert.display(), key.display()));
    }
    for up in &loaded.upstreams {
        lines.push(format!("upstream {}", up.name));
    }
    let h = &loaded.health;
    let pages: Vec<&str> = h.pages.iter().map(|p| p.key()).collect();
    lines.push(format!(
        "health checks every {} s ({}), fall {}, rise {}{}",
        h.interval.as_secs(),
        if pages.is_empty() { "connect only".to_string() } else { format!("health pages of {}", pages.join(", ")) },
        h.fall,
        h.rise,
        if h.route_by_health { ", routing by protocol health" } else { "" }
    ));
    for addr in &config.listen {
        let kind = if loaded.certs.is_some() { "https" } else { "http" };
        lines.push(format!("listen {kind}://{addr}"));
    }
    for addr in &config.listen_plain {
        lines.push(format!("listen http://{addr}"));
    }
    Ok(lines)
}

/// `1 rule`, `2 rules`.
pub(crate) fn rules(n: usize) -> String {
    format!("{n} rule{}", if n == 1 { "" } else { "s" })
}

/// What the gateway cannot do that the policy asks of it, said at start and
/// by `--check`: a deny rule on users does not see a request signed in with
/// Kerberos or an opaque bearer token, nor an AD FS sign-in to Outlook on
/// the web (a SAML token POSTed in `wresult`, not read) and its session,
/// nor a browser session signed in before the rule (its requests carry
/// Exchange's encrypted `cadata` cookies; the forms sign-in itself is
/// judged, see `crate::forms`); and a
/// rule on a device's model or OS sees a device the export does not hold
/// only once its body told this gateway (`crate::learn`: in memory, or in
/// the `learnt-devices` file across restarts, but never shared).
pub(crate) fn policy_warnings(policy: &policy::ReadyPolicy, learned: &Learned) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rule) = policy.policy().deny_rule_on_users() {
        out.push(format!(
            "rule '{}' (line {}) denies by user: a request signed in with Kerberos or an opaque bearer token, an \
             AD FS sign-in to Outlook on the web (its SAML token, POSTed as wresult) and that session, or a browser \
             session of Outlook on the web signed in before the rule (its cookies), names no user the gateway can \
             read, and this rule does not see it (its exceptions are safe; Exchange's own per-user \
             settings still apply)",
            rule.name, rule.line
        ));
    }
    if let Some(rule) = policy.policy().device_facts_rule() {
        let kept = match learned.file() {
            Some(file) => format!("kept in {} across restarts, but not shared with another gateway", file.display()),
            None => "kept in memory only (not across a restart, nor shared with another gateway; see \
                     learnt-devices)"
                .to_string(),
        };
        out.push(format!(
            "rule '{}' (line {}) reads a device's model or OS: a device the export does not hold is judged by what \
             its Provision or Settings request told this gateway, {kept}; until the device sends one again \
             through this gateway, this rule does not see its requests (simulate does, from the logs' Log=): \
             refresh the export after devices set up",
            rule.name, rule.line
        ));
    }
    out
}
