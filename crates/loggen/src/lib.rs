//! Generator of realistic Exchange Client Access IIS logs, and HttpProxy
//! logs of the same traffic ([`HttpProxyMode`]), together with the
//! [`Truth`]: what a correct `casguard audit --format json` must report for
//! them, under the definitions of the README ("How it decides", "JSON output").
//!
//! Deterministic: the same [`Options`] give the same bytes. The cast (users,
//! devices, servers) depends on the seed and counts only; `target_bytes`
//! scales the request volume, never the cast.

mod date;
mod events;
mod model;
mod output;
mod population;
mod proxy;
mod render;
mod rng;
mod truth;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};

pub use date::Date;
pub use truth::{
    BruteTruth, DeviceTruth, ExploitTruth, Findings, Policies, PolicyTruth, ProvisionTruth, SprayTruth, Summary, Truth,
    UserTruth,
};

use events::{DayGen, Event, BE, FE};
use output::{FileCtx, FilePlan, PlanOptions};
use population::Population;
use render::{Renderer, FE_FIELDS, PLAIN_FIELDS};
use truth::Acc;

/// Whether the front ends' HttpProxy logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpProxyMode {
    /// IIS logs only.
    None,
    /// IIS logs and the HttpProxy logs of the same requests: each front-end
    /// IIS line the HttpProxy module handled carries `cafeReqId=` with the
    /// HttpProxy line's `RequestId`, and counts as a duplicate.
    Also,
    /// HttpProxy logs only, no IIS log at all.
    Only,
}

impl FromStr for HttpProxyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(HttpProxyMode::None),
            "also" => Ok(HttpProxyMode::Also),
            "only" => Ok(HttpProxyMode::Only),
            _ => Err(format!("expected none, also or only, not {s:?}")),
        }
    }
}

/// The kind of traffic generated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// The mix of devices and hops of a typical organisation.
    #[default]
    Default,
    /// About half the lines are back-end hops (every signed-in request is
    /// proxied, ActiveSync ones to `/Microsoft-Server-ActiveSync/Proxy/` on
    /// port 444): mostly phones (about 3.5 devices a user, a third of them
    /// Android with base64 queries), and long `Log=` tokens on ActiveSync
    /// lines. For benchmarks of the back end's share.
    BackendHeavy,
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => Ok(Profile::Default),
            "backend-heavy" => Ok(Profile::BackendHeavy),
            _ => Err(format!("expected default or backend-heavy, not {s:?}")),
        }
    }
}

/// Which files are written gzip-compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GzipMode {
    None,
    /// About half the files; one of them has two gzip members.
    Some,
    All,
}

impl FromStr for GzipMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(GzipMode::None),
            "some" => Ok(GzipMode::Some),
            "all" => Ok(GzipMode::All),
            _ => Err(format!("expected none, some or all, not {s:?}")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub out: PathBuf,
    pub seed: u64,
    pub users: u32,
    pub servers: u32,
    pub days: u32,
    /// First day (UTC).
    pub start: Date,
    /// Approximate total size of the logs, uncompressed; `None` for the base volume.
    pub target_bytes: Option<u64>,
    pub gzip: GzipMode,
    /// Write the back-end site (W3SVC2) too.
    pub backend: bool,
    /// Write only the back-end site.
    pub only_backend: bool,
    /// Lines with a wrong field count.
    pub malformed: u32,
    /// Cut one gzip file short inside its second member.
    pub truncate_gzip: bool,
    /// One plain front-end log as a server that crashed leaves it: a line
    /// cut short, NUL bytes where the next lines were to be, then the
    /// directives of the restart and the lines after it.
    pub crash: bool,
    /// Write HttpProxy logs too, or instead of IIS logs.
    pub httpproxy: HttpProxyMode,
    /// The kind of traffic.
    pub profile: Profile,
}

impl Options {
    pub fn new(out: impl Into<PathBuf>) -> Options {
        Options {
            out: out.into(),
            seed: 1,
            users: 40,
            servers: 2,
            days: 3,
            start: Date { year: 2026, month: 11, day: 2 },
            target_bytes: None,
            gzip: GzipMode::Some,
            backend: true,
            only_backend: false,
            malformed: 3,
            truncate_gzip: false,
            crash: false,
            httpproxy: HttpProxyMode::None,
            profile: Profile::Default,
        }
    }
}

const DAY_SECS: i64 = 86_400;
/// Volume without `--target-bytes`: a few thousand lines for 40 users and 3 days.
const BASE_SCALE: f64 = 0.3;

/// Writes the log set under `opts.out` (plus `truth.json`) and returns the truth.
pub fn generate(opts: &Options) -> anyhow::Result<Truth> {
    if opts.users == 0 || opts.servers == 0 || opts.days == 0 {
        bail!("--users, --servers and --days must be at least 1");
    }
    if opts.servers > 99 || opts.days > 3660 {
        bail!("at most 99 servers and 3660 days");
    }
    if opts.only_backend && !opts.backend {
        bail!("--only-backend needs the back end (--backend true)");
    }
    if opts.only_backend && opts.httpproxy != HttpProxyMode::None {
        bail!("HttpProxy logs are the front ends' logs: not with --only-backend");
    }
    let heavy = opts.profile == Profile::BackendHeavy;
    let pop = Population::with_profile(opts.seed, opts.users as usize, opts.servers as usize, heavy);
    let iis = opts.httpproxy != HttpProxyMode::Only;
    let proxy = opts.httpproxy != HttpProxyMode::None;
    let write_fe = !opts.only_backend;
    let days: Vec<Date> = (0..opts.days).map(|d| opts.start.add_days(i64::from(d))).collect();
    // The same traffic whatever is written: events, malformed spots and the
    // random draws follow the IIS plan even when no IIS file is written.
    let all_plans = output::plan(&PlanOptions {
        days: opts.days,
        yymmdd: days.iter().map(|d| d.yymmdd()).collect(),
        servers: pop.servers.iter().map(|s| s.name.clone()).collect(),
        gzip: opts.gzip,
        write_fe,
        backend: opts.backend,
        truncate: opts.truncate_gzip,
        crash: opts.crash,
    });
    let spots = output::malformed_spots(&all_plans, opts.malformed);
    let plans = if iis { all_plans } else { Vec::new() };
    let scale = match opts.target_bytes {
        None => BASE_SCALE,
        Some(target) => {
            // Volume is affine in the scale: fixed lines plus scaled ones.
            let b1 = measure(&pop, opts, &spots, 1.0) as f64;
            let b2 = measure(&pop, opts, &spots, 2.0) as f64;
            let per = (b2 - b1).max(1.0);
            let fixed = (b1 - per).max(0.0);
            ((target as f64 - fixed) / per).clamp(0.02, 1.0e7)
        }
    };

    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let server_names: Vec<String> = pop.servers.iter().map(|s| s.name.clone()).collect();
    output::clean(&opts.out, &server_names).context("removing old log files")?;

    let mut acc = Acc::new(&pop);
    let mut events: Vec<Event> = Vec::new();
    for (d, date) in days.iter().enumerate() {
        let mut g = DayGen::new(&pop, opts.seed, scale, d as u32, opts.days, write_fe, opts.backend, 0);
        g.events = std::mem::take(&mut events);
        g.events.clear();
        g.generate(&spots);
        events = g.events;
        events.sort_unstable_by_key(|e| e.key);
        let iso = date.iso();
        let ctx = FileCtx {
            pop: &pop,
            root: &opts.out,
            date_iso: &iso,
            day_start: d as i64 * DAY_SECS,
            backend_only: opts.only_backend,
            beside_httpproxy: opts.httpproxy == HttpProxyMode::Also,
        };
        let slot_events = |slot: usize| {
            let lo = events.partition_point(|e| e.slot() < slot);
            let hi = events.partition_point(|e| e.slot() <= slot);
            &events[lo..hi]
        };
        let todays: Vec<&FilePlan> = plans.iter().filter(|p| p.day == d as u32).collect();
        let results: Vec<anyhow::Result<Acc>> = std::thread::scope(|s| {
            let mut handles: Vec<_> = todays
                .iter()
                .map(|plan| {
                    let slice = slot_events(plan.server * 2 + plan.site as usize);
                    let ctx = &ctx;
                    let pop = &pop;
                    s.spawn(move || -> anyhow::Result<Acc> {
                        let mut a = Acc::new(pop);
                        output::write_file(ctx, plan, slice, &mut a)
                            .with_context(|| format!("writing {}", plan.path.display()))?;
                        Ok(a)
                    })
                })
                .collect();
            if proxy {
                for server in 0..pop.servers.len() {
                    let slice = slot_events(server * 2 + usize::from(FE));
                    let ctx = &ctx;
                    let pop = &pop;
                    handles.push(s.spawn(move || -> anyhow::Result<Acc> {
                        let mut a = Acc::new(pop);
                        proxy::write_server_day(ctx, server, slice, opts.gzip, &mut a)
                            .with_context(|| format!("writing the HttpProxy logs of {}", pop.servers[server].name))?;
                        Ok(a)
                    }));
                }
            }
            handles.into_iter().map(|h| h.join().expect("writer thread panicked")).collect()
        });
        for r in results {
            acc.merge(&r?);
        }
    }
    let last = *days.last().expect("at least one day");
    let cutover = format!("{}T00:00:00Z", last.iso());
    let truth = acc.finish(&pop, cutover, (opts.days as i64 - 1) * DAY_SECS, opts.only_backend, proxy);
    let json = serde_json::to_string_pretty(&truth)?;
    std::fs::write(opts.out.join("truth.json"), json + "\n").context("writing truth.json")?;
    Ok(truth)
}

/// Uncompressed bytes of the data lines at a given scale, without writing.
fn measure(pop: &Population, opts: &Options, spots: &[(u32, usize, u8)], scale: f64) -> u64 {
    let iis = opts.httpproxy != HttpProxyMode::Only;
    let proxy = opts.httpproxy != HttpProxyMode::None;
    let mut r = Renderer::new(pop);
    r.set_date("2026-01-01");
    let layouts: Vec<proxy::Layout> = (0..pop.servers.len()).map(proxy::Layout::of_server).collect();
    let mut buf = Vec::with_capacity(4096);
    let mut total = 0u64;
    for d in 0..opts.days {
        let mut g = DayGen::new(pop, opts.seed, scale, d, opts.days, !opts.only_backend, opts.backend, 0);
        g.generate(spots);
        for e in &g.events {
            if iis {
                r.line(e, if e.site() == BE { PLAIN_FIELDS } else { FE_FIELDS }, &mut buf);
            }
            if proxy && e.site() == FE && e.logged_by_proxy(pop) {
                r.proxy_line(e, &layouts[e.server()], &mut buf);
            }
            total += buf.len() as u64;
            buf.clear();
        }
    }
    total
}

/// Total uncompressed size of the `.log` and `.log.gz` files under `dir`
/// (a truncated gzip counts up to its cut). For tests and tools.
pub fn log_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            let name = p.to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".log") {
                total += std::fs::metadata(&p)?.len();
            } else if name.ends_with(".log.gz") {
                let mut dec = flate2::read::MultiGzDecoder::new(std::fs::File::open(&p)?);
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    match dec.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => total += n as u64,
                    }
                }
            }
        }
    }
    Ok(total)
}
