//! `casguard-loggen`: writes a realistic Exchange CAS IIS log set (and its
//! HttpProxy logs, on request) and its truth.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use casguard_loggen::{generate, Date, GzipMode, HttpProxyMode, Options, Profile};
use clap::{ArgAction, Parser, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum HttpProxy {
    None,
    Also,
    Only,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TrafficProfile {
    Default,
    BackendHeavy,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Gzip {
    None,
    Some,
    All,
}

/// Generate Exchange front-end and back-end IIS logs (and HttpProxy logs) plus truth.json.
#[derive(Debug, Parser)]
#[command(name = "casguard-loggen", version)]
struct Args {
    /// Output directory (EX01/W3SVC1/..., truth.json).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 40)]
    users: u32,
    #[arg(long, default_value_t = 2)]
    servers: u32,
    #[arg(long, default_value_t = 3)]
    days: u32,
    /// First day, YYYY-MM-DD (UTC).
    #[arg(long, default_value = "2026-11-02")]
    start: String,
    /// Approximate total uncompressed size; scales lines per device, not users or devices.
    #[arg(long)]
    target_bytes: Option<u64>,
    #[arg(long, value_enum, default_value_t = Gzip::Some)]
    gzip: Gzip,
    /// Write the back-end site (W3SVC2).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    backend: bool,
    /// Write only the back-end site.
    #[arg(long)]
    only_backend: bool,
    /// Number of lines with a wrong field count.
    #[arg(long, default_value_t = 3)]
    malformed: u32,
    /// Cut one .gz file short inside its second member.
    #[arg(long)]
    truncate_gzip: bool,
    /// One plain front-end log as a crashed server leaves it: a line cut
    /// short, NUL bytes where the lines after it were to be, then the
    /// directives of the restart.
    #[arg(long)]
    crash: bool,
    /// Exchange HttpProxy logs of the same requests: none, also (beside the
    /// IIS logs, joined by cafeReqId), or only (no IIS log).
    #[arg(long, value_enum, default_value_t = HttpProxy::None)]
    httpproxy: HttpProxy,
    /// The kind of traffic: default, or backend-heavy (about half the lines
    /// back-end hops, mostly ActiveSync phones, long `Log=` tokens).
    #[arg(long, value_enum, default_value_t = TrafficProfile::Default)]
    profile: TrafficProfile,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let start = Date::parse(&a.start).with_context(|| format!("--start {:?} is not YYYY-MM-DD", a.start))?;
    let opts = Options {
        out: a.out,
        seed: a.seed,
        users: a.users,
        servers: a.servers,
        days: a.days,
        start,
        target_bytes: a.target_bytes,
        gzip: match a.gzip {
            Gzip::None => GzipMode::None,
            Gzip::Some => GzipMode::Some,
            Gzip::All => GzipMode::All,
        },
        backend: a.backend,
        only_backend: a.only_backend,
        malformed: a.malformed,
        truncate_gzip: a.truncate_gzip,
        crash: a.crash,
        httpproxy: match a.httpproxy {
            HttpProxy::None => HttpProxyMode::None,
            HttpProxy::Also => HttpProxyMode::Also,
            HttpProxy::Only => HttpProxyMode::Only,
        },
        profile: match a.profile {
            TrafficProfile::Default => Profile::Default,
            TrafficProfile::BackendHeavy => Profile::BackendHeavy,
        },
    };
    let t0 = Instant::now();
    let truth = generate(&opts)?;
    let s = &truth.summary;
    eprintln!(
        "wrote {} lines ({} person requests, {} users) to {} in {:.2}s",
        s.lines,
        s.requests,
        truth.users.len(),
        opts.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
