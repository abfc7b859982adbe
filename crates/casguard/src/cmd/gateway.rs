//! `casguard gateway`: enforce a policy inline, as a reverse proxy in front
//! of Exchange. Flags override the same keys from `--config FILE`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use gateway::{Config, Level};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// TOML file with the keys of these flags (`tls-cert = "..."`; `trusted-proxies = [...]`; `inventory` also
    /// takes a device export; not --log-level or --log-format); flags win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The policy file. If it cannot be loaded, the gateway does not start (exit 2).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Known devices from `casguard inventory build`, for `device` rules.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Known devices from a device export (Get-MobileDevice | Get-MobileDeviceStatistics, CSV or JSON):
    /// every partnership in it is known; reloaded when it changes, like an inventory.
    #[arg(long, value_name = "FILE", conflicts_with = "inventory")]
    pub devices: Option<PathBuf>,
    /// Where the model and OS a device gave in its Provision or Settings request are kept across restarts, for
    /// model and OS rules: written as they change, read at start (a file that cannot be read stops the gateway).
    #[arg(long, value_name = "FILE")]
    pub learnt_devices: Option<PathBuf>,
    /// Named network ranges, as for `simulate --ranges`.
    #[arg(long = "ranges", value_name = "FILE")]
    pub ranges: Vec<PathBuf>,
    /// Client catalog to use instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Address to listen on; TLS when --tls-cert and --tls-key are given. Repeatable.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// Extra plain-HTTP listener (TLS terminated elsewhere). Repeatable.
    #[arg(long, value_name = "ADDR")]
    pub listen_plain: Vec<SocketAddr>,
    /// Certificate chain (PEM) for the TLS listeners.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for the TLS listeners.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Exchange server, `https://cas1.contoso.local` or `http://host:port`. Repeatable; failover in order.
    #[arg(long, value_name = "URL")]
    pub upstream: Vec<String>,
    /// CA certificates (PEM) for upstream TLS, instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// Peer whose X-Forwarded-For is trusted (address or CIDR). Repeatable.
    #[arg(long, value_name = "CIDR")]
    pub trusted_proxy: Vec<String>,
    /// Directory for W3C access logs (u_exYYMMDD_x.log, daily).
    #[arg(long, value_name = "DIR")]
    pub access_log: Option<PathBuf>,
    /// Serve Prometheus metrics on ADDR at /metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Most client connections at once [default: 16384].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Largest request head in bytes [default: 65536].
    #[arg(long, value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Most request headers [default: 100].
    #[arg(long, value_name = "N")]
    pub max_headers: Option<usize>,
    /// Seconds to receive a whole request head [default: 30].
    #[arg(long, value_name = "SECS")]
    pub header_timeout: Option<u64>,
    /// Seconds an idle keep-alive connection stays open; keep it below
    /// Exchange's own (IIS connectionTimeout, 120 s by default) [default: 100].
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<u64>,
    /// Seconds to connect to an upstream [default: 10].
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<u64>,
    /// Seconds between upstream health checks [default: 5].
    #[arg(long, value_name = "SECS")]
    pub health_interval: Option<u64>,
    /// Failed checks or connections in a row that take an upstream out of use [default: 3].
    #[arg(long, value_name = "N")]
    pub health_fall: Option<u32>,
    /// Passed checks in a row that put it back [default: 2].
    #[arg(long, value_name = "N")]
    pub health_rise: Option<u32>,
    /// Protocols whose Exchange health page (/<vdir>/healthcheck.htm) is checked, comma-separated, or `none` to
    /// check by connecting only [default: owa,ews,activesync,mapi,rpc,autodiscover,ecp,oab,powershell].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub health_checks: Option<Vec<String>>,
    /// Send each protocol only to upstreams whose health page for it passes, while any does.
    #[arg(long)]
    pub route_by_health: bool,
    /// Seconds to let requests in flight finish on SIGINT/SIGTERM [default: 30].
    #[arg(long, value_name = "SECS")]
    pub drain_timeout: Option<u64>,
    /// Seconds between checks of the policy and inventory files for changes [default: 2].
    #[arg(long, value_name = "SECS")]
    pub reload_interval: Option<u64>,
    /// Status when every upstream is out of use and none connects: 502 or 503 [default: 503].
    #[arg(long, value_name = "STATUS")]
    pub no_upstream_status: Option<u16>,
    /// Messages on stderr from this level up.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// Messages on stderr as text lines or as JSON objects, one per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Load the configuration, policy, inventory, TLS certificate and key as at start, say what was loaded, and
    /// exit: 0 when the gateway would start, 2 with the reason when it would not. Binds nothing, and writes
    /// nothing but a file it removes at once, to check the access-log folder can be written.
    #[arg(long)]
    pub check: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl Args {
    /// The config file (if any) with the flags laid over it.
    pub fn config(self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        fn set<T>(slot: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *slot = v;
            }
        }
        fn set_list<T>(slot: &mut Vec<T>, v: Vec<T>) {
            if !v.is_empty() {
                *slot = v;
            }
        }
        c.policy = self.policy.or(c.policy);
        // An inventory and a device export load alike (`policy::Inventory::load` tells them apart).
        c.inventory = self.inventory.or(self.devices).or(c.inventory);
        c.learnt_devices = self.learnt_devices.or(c.learnt_devices);
        c.catalog = self.catalog.or(c.catalog);
        c.tls_cert = self.tls_cert.or(c.tls_cert);
        c.tls_key = self.tls_key.or(c.tls_key);
        c.upstream_ca = self.upstream_ca.or(c.upstream_ca);
        c.access_log = self.access_log.or(c.access_log);
        c.metrics = self.metrics.or(c.metrics);
        set_list(&mut c.ranges, self.ranges);
        set_list(&mut c.listen, self.listen);
        set_list(&mut c.listen_plain, self.listen_plain);
        set_list(&mut c.upstream, self.upstream);
        set_list(&mut c.trusted_proxies, self.trusted_proxy);
        set(&mut c.max_connections, self.max_connections);
        set(&mut c.max_header_bytes, self.max_header_bytes);
        set(&mut c.max_headers, self.max_headers);
        set(&mut c.header_timeout, self.header_timeout);
        set(&mut c.idle_timeout, self.idle_timeout);
        set(&mut c.connect_timeout, self.connect_timeout);
        set(&mut c.health_interval, self.health_interval);
        set(&mut c.health_fall, self.health_fall);
        set(&mut c.health_rise, self.health_rise);
        if let Some(list) = self.health_checks {
            c.health_checks = list.into_iter().filter(|p| p != "none").collect();
        }
        c.route_by_health |= self.route_by_health;
        set(&mut c.drain_timeout, self.drain_timeout);
        set(&mut c.reload_interval, self.reload_interval);
        set(&mut c.no_upstream_status, self.no_upstream_status);
        c.validate()?;
        Ok(c)
    }
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let max = match args.log_level {
        LogLevel::Error => Level::Error,
        LogLevel::Warn => Level::Warn,
        LogLevel::Info => Level::Info,
        LogLevel::Debug => Level::Debug,
    };
    let format = match args.log_format {
        LogFormat::Text => gateway::events::Format::Text,
        LogFormat::Json => gateway::events::Format::Json,
    };
    let check = args.check;
    let mut config = args.config()?;
    // A start refuses an access-log folder it cannot create, but would serve
    // unlogged (an error per request) from one it cannot write in: both are
    // refused here, and by --check, which said OK to both.
    if let Some(dir) = &config.access_log {
        super::check_folder_writable(dir, "--access-log")?;
    }
    if check {
        for line in gateway::check(&config)? {
            println!("{line}");
        }
        println!("configuration OK");
        return Ok(ExitCode::SUCCESS);
    }
    // `--threads` is a global flag; else the config file's `threads`; else all cores.
    if let Some(n) = global.threads {
        config.threads = n;
    } else if config.threads == 0 {
        config.threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    }
    let events: gateway::EventSink = Arc::new(move |level, msg: &str| {
        if level <= max {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let time = w3c::time::format_rfc3339(now as i64);
            eprintln!("{}", gateway::events::line(format, &time, level, msg));
        }
    });
    ensure_open_files(config.max_connections, &events);
    // This runtime runs the background tasks (health checks, reloads,
    // metrics, signals), and with one thread the connections too; with more,
    // each worker thread runs its own (see `gateway::Config::threads`).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("casguard-gateway")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(gateway::serve(config, events))?;
    // Connections still open after the drain timeout are dropped here.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

/// Each client holds two descriptors (its own and its upstream's). Raise the
/// soft limit as far as the hard limit allows, and say so if that is too
/// little: past it, clients get 503 instead of service.
#[cfg(unix)]
fn ensure_open_files(max_connections: usize, events: &gateway::EventSink) {
    const HEADROOM: u64 = 64; // listeners, access log, metrics, policy reads
    let want = (max_connections as u64).saturating_mul(2).saturating_add(HEADROOM);
    match rlimit::increase_nofile_limit(want) {
        Ok(got) if got < want => events(
            Level::Warn,
            &format!(
                "the open-files limit is {got}, below the {want} that --max-connections {max_connections} needs: \
                 about {} clients can be served at once; raise the hard limit (ulimit -Hn, LimitNOFILE=)",
                got.saturating_sub(HEADROOM) / 2
            ),
        ),
        Ok(_) => {}
        Err(e) => events(Level::Warn, &format!("cannot read or raise the open-files limit: {e}")),
    }
}

#[cfg(not(unix))]
fn ensure_open_files(_max_connections: usize, _events: &gateway::EventSink) {}
