//! Prometheus metrics in the text exposition format, written by hand:
//! requests by protocol, client, decision and rule; upstream latency; open
//! connections; reloads; upstream health (in use, failures, health pages).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exchange::{Catalog, ClientId, Protocol};

use crate::lock;
use crate::upstream::{Upstream, Upstreams};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0];

/// The rule is known by the address of its name: hashing and comparing it
/// costs nothing, and the name is cloned (a contended atomic) only when a
/// row is new. The row keeps that name alive, so the address is not reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct RequestKey {
    protocol: Protocol,
    client: ClientId,
    deny: bool,
    rule: usize,
}

/// Requests so far, and the rule name the key points at.
type Count = (u64, Option<Arc<str>>);

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<ahash::AHashMap<RequestKey, Count>>,
    pub open_connections: AtomicI64,
    pub connections_total: AtomicU64,
    pub upstream_errors: AtomicU64,
    /// Requests sent again on a new upstream connection after the one they
    /// were sent on closed under them.
    pub upstream_retries: AtomicU64,
    /// Requests refused before the policy (see `screen`).
    pub refused: AtomicU64,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    pub fn request(&self, protocol: Protocol, client: ClientId, deny: bool, rule: Option<&Arc<str>>) {
        let key = RequestKey { protocol, client, deny, rule: rule.map_or(0, |r| Arc::as_ptr(r) as *const u8 as usize) };
        let mut map = lock(&self.requests);
        match map.get_mut(&key) {
            Some((n, _)) => *n += 1,
            None => {
                map.insert(key, (1, rule.cloned()));
            }
        }
    }

    /// Time from sending a request upstream to its response head.
    pub fn upstream_latency(&self, d: Duration) {
        // One bucket per request (made cumulative when rendered): fewer
        // contended atomics on the hot path.
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn render(&self, catalog: &Catalog, upstreams: &Upstreams, access_log_dropped: u64) -> String {
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "casguard_gateway_requests_total",
            "counter",
            "Requests by protocol, client, decision and rule.",
        );
        // A rule reloaded under the same name has a new address: one row.
        let mut rows: BTreeMap<String, u64> = BTreeMap::new();
        {
            let map = lock(&self.requests);
            for (k, (n, rule)) in map.iter() {
                let client = if k.client.index() < catalog.len() { catalog.get(k.client).id.as_str() } else { "" };
                let labels = format!(
                    "protocol=\"{}\",client=\"{}\",decision=\"{}\",rule=\"{}\"",
                    k.protocol.key(),
                    escape(client),
                    if k.deny { "deny" } else { "allow" },
                    escape(rule.as_deref().unwrap_or("")),
                );
                *rows.entry(labels).or_insert(0) += n;
            }
        }
        for (labels, n) in rows {
            let _ = writeln!(out, "casguard_gateway_requests_total{{{labels}}} {n}");
        }

        family(
            &mut out,
            "casguard_gateway_upstream_latency_seconds",
            "histogram",
            "Time to the upstream's response head.",
        );
        let mut n = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            n += self.latency_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "casguard_gateway_upstream_latency_seconds_bucket{{le=\"{b}\"}} {n}");
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "casguard_gateway_upstream_latency_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "casguard_gateway_upstream_latency_seconds_sum {sum}");
        let _ = writeln!(out, "casguard_gateway_upstream_latency_seconds_count {count}");

        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: String| {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {v}");
        };
        gauge(
            &mut out,
            "casguard_gateway_open_connections",
            "Client connections open now.",
            "gauge",
            self.open_connections.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "casguard_gateway_connections_total",
            "Client connections accepted.",
            "counter",
            self.connections_total.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "casguard_gateway_upstream_errors_total",
            "Requests answered 502/503 because no upstream connection could be had or it failed.",
            "counter",
            self.upstream_errors.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "casguard_gateway_upstream_retries_total",
            "Requests sent again on a new upstream connection after the one they were sent on closed under them.",
            "counter",
            self.upstream_retries.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "casguard_gateway_refused_total",
            "Requests refused before the policy: what IIS would refuse, or what could be read two ways.",
            "counter",
            self.refused.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "casguard_gateway_access_log_dropped_total",
            "Access log lines dropped because the writer fell behind (its queue full: 65,536 lines or 64 MiB).",
            "counter",
            access_log_dropped.to_string(),
        );
        family(&mut out, "casguard_gateway_policy_reloads_total", "counter", "Policy reloads by result.");
        let _ = writeln!(
            out,
            "casguard_gateway_policy_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "casguard_gateway_policy_reloads_total{{result=\"rejected\"}} {}",
            self.reloads_failed.load(Ordering::Relaxed)
        );
        let per_upstream = |out: &mut String, name: &str, kind: &str, help: &str, value: &dyn Fn(&Upstream) -> u64| {
            family(out, name, kind, help);
            for up in upstreams.list() {
                let _ = writeln!(out, "{name}{{upstream=\"{}\"}} {}", escape(&up.name), value(up));
            }
        };
        per_upstream(
            &mut out,
            "casguard_gateway_upstream_up",
            "gauge",
            "Whether the upstream is in use: 0 after health-fall failed checks or connections in a row, 1 again \
             after health-rise passed checks (a sole upstream stays 1).",
            &|up| u64::from(up.health.is_up()),
        );
        per_upstream(
            &mut out,
            "casguard_gateway_upstream_failures_total",
            "counter",
            "Failed health checks and failed connections, by upstream.",
            &|up| up.health.failures(),
        );
        if !upstreams.health.pages.is_empty() {
            family(
                &mut out,
                "casguard_gateway_upstream_health_page_up",
                "gauge",
                "Whether the upstream's Exchange health page for the protocol passes (health-fall and health-rise \
                 applied).",
            );
            for up in upstreams.list() {
                for protocol in &upstreams.health.pages {
                    let _ = writeln!(
                        out,
                        "casguard_gateway_upstream_health_page_up{{upstream=\"{}\",protocol=\"{}\"}} {}",
                        escape(&up.name),
                        protocol.key(),
                        u8::from(up.health.page_passes(*protocol))
                    );
                }
            }
        }
        out
    }
}

/// A metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        let catalog = Catalog::builtin();
        let ews = catalog.id_of("ews-app").unwrap();
        let rule: Arc<str> = Arc::from("no \"EWS\"");
        m.request(Protocol::Ews, ews, true, Some(&rule));
        m.request(Protocol::Ews, ews, true, Some(&rule));
        // The policy reloaded: the same rule name, a new allocation, one row.
        let reloaded: Arc<str> = Arc::from("no \"EWS\"");
        m.request(Protocol::Ews, ews, true, Some(&reloaded));
        m.upstream_latency(Duration::from_millis(3));
        m.upstream_latency(Duration::from_millis(30));
        let list = vec![crate::upstream::Upstream::parse("http://cas1:81").unwrap()];
        let ups = Upstreams::new(list, None, Duration::from_secs(1), Default::default(), crate::events::silent());
        let text = m.render(&catalog, &ups, 0);
        assert!(text.contains(
            "casguard_gateway_requests_total{protocol=\"ews\",client=\"ews-app\",decision=\"deny\",rule=\"no \\\"EWS\\\"\"} 3"
        ));
        assert!(text.contains("casguard_gateway_upstream_latency_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("casguard_gateway_upstream_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("casguard_gateway_upstream_latency_seconds_bucket{le=\"0.025\"} 1"));
        assert!(text.contains("casguard_gateway_upstream_latency_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("casguard_gateway_upstream_latency_seconds_bucket{le=\"600\"} 2"));
        assert!(text.contains("casguard_gateway_upstream_latency_seconds_count 2"));
        assert!(text.contains("casguard_gateway_upstream_up{upstream=\"http://cas1:81\"} 1"), "{text}");
        assert!(text.contains("casguard_gateway_upstream_failures_total{upstream=\"http://cas1:81\"} 0"), "{text}");
        assert!(text.contains(
            "casguard_gateway_upstream_health_page_up{upstream=\"http://cas1:81\",protocol=\"activesync\"} 1"
        ));
    }
}
