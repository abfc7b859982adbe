//! Gateway settings: one struct read from a TOML file (keys spelled like the
//! command-line flags) and then overridden by flags.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::GatewayError;

/// Everything `serve` needs. `Config::default()` is a valid base for flags.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The policy file (required).
    pub policy: Option<PathBuf>,
    /// Known devices, for `device = "new" | "known"` rules.
    pub inventory: Option<PathBuf>,
    /// Where the devices' models and OSes learnt from their Provision or
    /// Settings bodies are kept across restarts (see `crate::learn`).
    pub learnt_devices: Option<PathBuf>,
    /// Named network ranges, as for `simulate --ranges`.
    pub ranges: Vec<PathBuf>,
    /// Client catalog instead of the built-in one.
    pub catalog: Option<PathBuf>,
    /// Listeners: TLS when `tls-cert` and `tls-key` are given, plain otherwise.
    pub listen: Vec<SocketAddr>,
    /// Extra plain-HTTP listeners (for an offloading load balancer or tests).
    pub listen_plain: Vec<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `http://host[:port]` or `https://host[:port]`; new connections fail over in order.
    pub upstream: Vec<String>,
    /// CA certificates (PEM) that sign the upstream's certificate, instead of the system's.
    pub upstream_ca: Option<PathBuf>,
    /// Peers whose X-Forwarded-For is believed (addresses or CIDR prefixes).
    pub trusted_proxies: Vec<String>,
    /// Directory for W3C access logs (`u_exYYMMDD_x.log`, one per UTC day).
    pub access_log: Option<PathBuf>,
    /// Address for Prometheus metrics (`GET /metrics`).
    pub metrics: Option<SocketAddr>,
    pub max_connections: usize,
    /// Largest request head (request line plus headers) in bytes.
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Seconds a client has to send a complete request head.
    pub header_timeout: u64,
    /// Seconds an idle keep-alive connection is kept. Below Exchange's own
    /// (IIS `connectionTimeout`, 120 s by default), so that the gateway, not
    /// Exchange, closes an idle pair of connections: a request sent just as
    /// Exchange closes its side could otherwise fail with a 502 when it
    /// cannot be sent again (a POST; see `forward::Replay`).
    pub idle_timeout: u64,
    pub connect_timeout: u64,
    /// Seconds between upstream health checks.
    pub health_interval: u64,
    /// Failed checks in a row, or failed connections from real requests,
    /// that take an upstream out of use (HAProxy's `fall`).
    pub health_fall: u32,
    /// Passed checks in a row that put it back (HAProxy's `rise`).
    pub health_rise: u32,
    /// Protocols whose Exchange health page (`/<vdir>/healthcheck.htm`) is
    /// checked, by protocol key (`owa`, `ews`, `activesync`, ...); empty:
    /// checks only connect.
    pub health_checks: Vec<String>,
    /// Send each protocol only to upstreams whose health page for it
    /// passes, while any does.
    pub route_by_health: bool,
    /// Seconds to let requests in flight finish on shutdown.
    pub drain_timeout: u64,
    /// Seconds between checks of the policy and inventory files for changes.
    pub reload_interval: u64,
    /// Status when every upstream is out of use and none of them connects
    /// either (502 or 503); a failed connection to one in use is a 502.
    pub no_upstream_status: u16,
    /// Worker threads, each with its own connections; 0 or 1 serves on the
    /// caller's runtime.
    pub threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: None,
            inventory: None,
            learnt_devices: None,
            ranges: Vec::new(),
            catalog: None,
            listen: Vec::new(),
            listen_plain: Vec::new(),
            tls_cert: None,
            tls_key: None,
            upstream: Vec::new(),
            upstream_ca: None,
            trusted_proxies: Vec::new(),
            access_log: None,
            metrics: None,
            max_connections: 16_384,
            max_header_bytes: 65_536,
            max_headers: 100,
            header_timeout: 30,
            idle_timeout: 100,
            connect_timeout: 10,
            health_interval: 5,
            health_fall: 3,
            health_rise: 2,
            health_checks: crate::health::PAGES.iter().map(|(p, _)| p.key().to_string()).collect(),
            route_by_health: false,
            drain_timeout: 30,
            reload_interval: 2,
            no_upstream_status: 503,
            threads: 0,
        }
    }
}

impl Config {
    /// Read a TOML config file; unknown keys are an error, named
    /// `file:line: message` as the policy loader names its errors.
    pub fn from_file(path: &Path) -> Result<Config, GatewayError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| GatewayError::Io { what: format!("cannot read {}", path.display()), source })?;
        exchange::data_file::parse(&text).map_err(|(line, message)| {
            GatewayError::Config(match line {
                0 => format!("{}: {message}", path.display()),
                line => format!("{}:{line}: {message}", path.display()),
            })
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Check what flags and file cannot check alone.
    pub fn validate(&self) -> Result<(), GatewayError> {
        let bad = |m: String| Err(GatewayError::Config(m));
        if self.policy.is_none() {
            return bad("a policy is required (--policy)".into());
        }
        if self.listen.is_empty() && self.listen_plain.is_empty() {
            return bad("no listener (--listen)".into());
        }
        if self.upstream.is_empty() {
            return bad("no upstream (--upstream)".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("--tls-cert and --tls-key go together".into());
        }
        if self.max_header_bytes < 8192 {
            return bad("max-header-bytes must be at least 8192".into());
        }
        if self.max_connections == 0 || self.max_connections > u32::MAX as usize >> 3 {
            return bad("max-connections out of range".into());
        }
        if !matches!(self.no_upstream_status, 502 | 503) {
            return bad("no-upstream-status must be 502 or 503".into());
        }
        if self.header_timeout == 0 || self.idle_timeout == 0 || self.reload_interval == 0 || self.health_interval == 0
        {
            return bad("timeouts and intervals must be at least one second".into());
        }
        if self.health_fall == 0 || self.health_rise == 0 {
            return bad("health-fall and health-rise must be at least 1".into());
        }
        self.health_pages()?;
        self.trusted()?;
        Ok(())
    }

    /// The protocols of `health-checks`, each with its health page.
    pub(crate) fn health_pages(&self) -> Result<Vec<exchange::Protocol>, GatewayError> {
        let mut pages = Vec::new();
        for key in &self.health_checks {
            match exchange::Protocol::from_key(key).filter(|p| crate::health::page(*p).is_some()) {
                Some(p) if !pages.contains(&p) => pages.push(p),
                Some(_) => {}
                None => {
                    let known: Vec<&str> = crate::health::PAGES.iter().map(|(p, _)| p.key()).collect();
                    return Err(GatewayError::Config(format!(
                        "health-checks: '{key}' has no health page; use {}",
                        known.join(", ")
                    )));
                }
            }
        }
        Ok(pages)
    }

    pub(crate) fn trusted(&self) -> Result<Vec<IpNet>, GatewayError> {
        self.trusted_proxies
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| GatewayError::Config(format!("trusted proxy '{s}' is not an address or prefix")))
            })
            .collect()
    }

    pub(crate) fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway/gateway.toml");
        let c = Config::from_file(&path).unwrap();
        c.validate().unwrap();
        assert_eq!(c.health_pages().unwrap().len(), 9);
        assert!(c.tls_cert.is_some() && c.route_by_health);
    }

    #[test]
    fn toml_keys_are_flag_names() {
        let c = Config::from_toml(
            "policy = 'p.toml'\nlisten = ['127.0.0.1:8443']\nupstream = ['http://127.0.0.1:81']\n\
             trusted-proxies = ['10.0.0.0/8', '192.0.2.1']\nidle-timeout = 7\n",
        )
        .unwrap();
        assert_eq!(c.idle_timeout, 7);
        assert_eq!(c.header_timeout, 30);
        c.validate().unwrap();
        assert_eq!(c.trusted().unwrap().len(), 2);
        assert!(Config::from_toml("polcy = 'x'").is_err());
        assert_eq!(c.health_pages().unwrap().len(), 9, "every Exchange health page by default");
        let mut c = c;
        c.trusted_proxies.push("nonsense".into());
        assert!(c.validate().is_err());
        let c = Config::from_toml(
            "policy = 'p'\nlisten = ['127.0.0.1:1']\nupstream = ['http://a']\nhealth-checks = ['owa', 'rest']\n",
        )
        .unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("'rest' has no health page"));
        let c = Config::from_toml(
            "policy = 'p'\nlisten = ['127.0.0.1:1']\nupstream = ['http://a']\nhealth-checks = []\nhealth-fall = 1\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert!(c.health_pages().unwrap().is_empty());
    }

    #[test]
    fn a_file_error_is_one_line_naming_file_and_line() {
        let dir = std::env::temp_dir().join(format!("casguard-gw-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gw.toml");
        std::fs::write(&path, "policy = 'p.toml'\n\npolcy = 'x'\n").unwrap();
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(err.starts_with(&format!("configuration: {}:3: unknown field `polcy`", path.display())), "{err}");
        assert!(!err.contains('\n') && !err.contains('^'), "{err}");
        std::fs::write(&path, "idle-timeout = 'soon'\n").unwrap();
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("gw.toml:1: ") && !err.contains('\n'), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
