//! Fixed-rate HTTP/1.1 latency probe for bench/gateway.sh: opens C keep-alive
//! connections, then sends R requests/s in total, spread evenly over them
//! (open loop, so a slow response does not slow the sender), and prints
//! latency percentiles. Flat-out load generators mostly measure queueing on
//! a small machine; a rate well below saturation measures what a proxy adds.
//!
//! Usage: latency URL [RATE=2000] [CONNS=1000] [SECONDS=10]
//! Prints one line: `requests N errors E late L p50 X p99 Y p999 Z max M`
//! (milliseconds). `late` counts sends that started more than 2 ms after
//! their slot (the previous response on that connection was still out, or
//! this process was starved); their latency is counted from the slot, so a
//! stall is not hidden (no coordinated omission).

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: u64,
    late: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: latency URL [RATE] [CONNS] [SECONDS]";
    let url: Uri = args.first().expect(usage).parse().expect("URL");
    let num = |i: usize, default: u64| args.get(i).map_or(default, |s| s.parse().expect(usage));
    let (rate, conns, secs) = (num(1, 2000).max(1), num(2, 1000).max(1), num(3, 10).max(1));
    // One thread: the generator must leave the other core to what it measures.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let tally = rt.block_on(run(url, rate, conns, Duration::from_secs(secs)));
    let mut l = tally.latencies;
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p).ceil() as usize).saturating_sub(1)).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "requests {} errors {} late {} p50 {:.3} p99 {:.3} p999 {:.3} max {:.3}",
        l.len(),
        tally.errors,
        tally.late,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
}

async fn run(url: Uri, rate: u64, conns: u64, length: Duration) -> Tally {
    let host = url.host().expect("URL host").to_string();
    let port = url.port_u16().unwrap_or(80);
    let authority = url.authority().expect("URL authority").to_string();
    let mut senders = Vec::new();
    for _ in 0..conns {
        let tcp = TcpStream::connect((host.as_str(), port)).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("handshake");
        tokio::spawn(conn);
        senders.push(sender);
    }
    let request = move || {
        Request::get(url.clone())
            .header("host", authority.as_str())
            .header("user-agent", "Microsoft Office/16.0 (Microsoft Outlook 16.0)")
            .body(Empty::<Bytes>::new())
            .expect("request")
    };
    // Warm up every connection (and the proxy's upstream connection for it).
    for s in &mut senders {
        if let Ok(resp) = s.send_request(request()).await {
            let _ = resp.into_body().collect().await;
        }
    }

    let period = Duration::from_secs_f64(conns as f64 / rate as f64);
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + length;
    let mut tasks = Vec::new();
    for (i, mut sender) in senders.into_iter().enumerate() {
        let request = request.clone();
        // Connection i sends at start + i/R + k*C/R: R per second in total, evenly spaced.
        let mut slot = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            while slot < end {
                tokio::time::sleep_until(slot.into()).await;
                let mut sent = Instant::now();
                // The timer wheel has 1 ms ticks; beyond 2 ms the send is late.
                if sent > slot + Duration::from_millis(2) {
                    t.late += 1;
                    sent = slot;
                }
                let ok = match sender.send_request(request()).await {
                    Ok(resp) => resp.status().is_success() && resp.into_body().collect().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    t.latencies.push(sent.elapsed());
                } else {
                    t.errors += 1;
                    if sender.ready().await.is_err() {
                        return t;
                    }
                }
                slot += period;
            }
            t
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await.expect("task");
        all.latencies.extend(t.latencies);
        all.errors += t.errors;
        all.late += t.late;
    }
    all
}
