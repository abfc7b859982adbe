//! Failed sign-ins per source address and per user, for password spraying
//! (one source, many users) and brute force (many failures, one user).
//!
//! Failures are counted in one-minute buckets per key, so sliding windows
//! of any length are judged at the end, whatever order the lines came in
//! (files and chunks are read in parallel). Memory grows with the distinct
//! sources and users that failed, never with the number of lines: each key
//! keeps at most [`MAX_BUCKETS`] minutes, and each minute at most
//! [`MAX_DISTINCT`] distinct users.
//!
//! Default thresholds come from Microsoft Sentinel's public detections:
//! "Password spray attack against Microsoft Entra ID application" (5
//! accounts from one address within 20 minutes;
//! `Solutions/Microsoft Entra ID/Analytic Rules/SigninPasswordSpray.yaml`)
//! and "High count of failed logons by a user" for IIS (100 failures by one
//! user in 10 minutes; `Detections/W3CIISLog/HighFailedLogonCountByUser.yaml`).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::OnceLock;

use exchange::{NetworkId, Request};

use crate::aggregate::{Map, Span};
use crate::capped::CappedCounts;

/// Minutes kept per source or user; past it the quietest minute goes.
pub const MAX_BUCKETS: usize = 4096;
/// Distinct users counted per minute of one source: the largest spray
/// threshold that can be set.
pub const MAX_DISTINCT: usize = 64;
/// Users (for a source) or sources (for a user) kept as evidence.
const MAX_EVIDENCE: usize = 16;

/// When failures make a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Distinct users one source failed as, within `spray_window`.
    pub spray_users: usize,
    /// Seconds.
    pub spray_window: i64,
    /// Failures against one user within `brute_force_window`.
    pub brute_force_failures: u64,
    /// Seconds.
    pub brute_force_window: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { spray_users: 5, spray_window: 20 * 60, brute_force_failures: 100, brute_force_window: 10 * 60 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ThresholdError {
    #[error("the spray threshold is {0} users: it must be 2 to {MAX_DISTINCT}")]
    SprayUsers(usize),
    #[error("the brute-force threshold must be at least 2 failures, not {0}")]
    Failures(u64),
    #[error("a window must be 1 minute to 7 days, not {0} seconds")]
    Window(i64),
}

impl Thresholds {
    pub fn check(&self) -> Result<(), ThresholdError> {
        if !(2..=MAX_DISTINCT).contains(&self.spray_users) {
            return Err(ThresholdError::SprayUsers(self.spray_users));
        }
        if self.brute_force_failures < 2 {
            return Err(ThresholdError::Failures(self.brute_force_failures));
        }
        for w in [self.spray_window, self.brute_force_window] {
            if !(60..=7 * 86_400).contains(&w) {
                return Err(ThresholdError::Window(w));
            }
        }
        Ok(())
    }
}

/// One minute of failures of one key.
#[derive(Clone, Debug, Default)]
struct Bucket {
    failures: u64,
    first: i64,
    last: i64,
    /// Hashes of the distinct users (for a source), sorted, at most `MAX_DISTINCT`.
    distinct: Vec<u64>,
}

impl Bucket {
    fn see(&mut self, time: i64, other: Option<u64>) {
        if self.failures == 0 {
            (self.first, self.last) = (time, time);
        }
        self.failures += 1;
        self.first = self.first.min(time);
        self.last = self.last.max(time);
        if let Some(h) = other {
            insert_capped(&mut self.distinct, h);
        }
    }

    fn merge(&mut self, other: Bucket) {
        if self.failures == 0 {
            *self = other;
            return;
        }
        self.failures += other.failures;
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        for h in other.distinct {
            insert_capped(&mut self.distinct, h);
        }
    }
}

/// Keep the smallest `MAX_DISTINCT` hashes: the same set in any order.
fn insert_capped(set: &mut Vec<u64>, h: u64) {
    if let Err(at) = set.binary_search(&h) {
        if set.len() < MAX_DISTINCT {
            set.insert(at, h);
        } else if at < set.len() {
            set.pop();
            set.insert(at, h);
        }
    }
}

/// The failures of one source or one user.
#[derive(Clone, Debug)]
pub struct KeyFailures<E: Ord> {
    pub failures: u64,
    pub span: Span,
    /// Minute since the epoch -> bucket.
    buckets: BTreeMap<i64, Bucket>,
    /// The quietest minutes were dropped to stay within `MAX_BUCKETS`.
    pub truncated: bool,
    /// Users (of a source) or sources (of a user), with their failures.
    pub evidence: CappedCounts<E>,
}

impl<E: Ord + Clone> KeyFailures<E> {
    fn new() -> Self {
        KeyFailures {
            failures: 0,
            span: Span::default(),
            buckets: BTreeMap::new(),
            truncated: false,
            evidence: CappedCounts::new(MAX_EVIDENCE),
        }
    }

    fn see(&mut self, time: i64, other: Option<u64>) {
        self.failures += 1;
        if time == 0 {
            return;
        }
        self.span.see(time);
        self.buckets.entry(time.div_euclid(60)).or_default().see(time, other);
        self.bound();
    }

    fn merge(&mut self, other: KeyFailures<E>) {
        self.failures += other.failures;
        self.span.merge(other.span);
        self.truncated |= other.truncated;
        for (minute, bucket) in other.buckets {
            self.buckets.entry(minute).or_default().merge(bucket);
        }
        self.evidence.merge(other.evidence);
        self.bound();
    }

    fn bound(&mut self) {
        while self.buckets.len() > MAX_BUCKETS {
            let quietest = self.buckets.iter().min_by_key(|(m, b)| (b.failures, **m)).map(|(m, _)| *m);
            if let Some(m) = quietest {
                self.buckets.remove(&m);
            }
            self.truncated = true;
        }
    }

    /// The windows of `window` seconds in which `breached` holds, as one
    /// burst: its span, the failures in them and the worst window's measure.
    fn bursts(&self, window: i64, measure: impl Fn(&[&Bucket]) -> u64, threshold: u64) -> Option<Burst> {
        let minutes = (window / 60).max(1);
        let buckets: Vec<(i64, &Bucket)> = self.buckets.iter().map(|(m, b)| (*m, b)).collect();
        let mut burst: Option<Burst> = None;
        let mut in_burst = vec![false; buckets.len()];
        let mut start = 0;
        for end in 0..buckets.len() {
            while buckets[end].0 - buckets[start].0 >= minutes {
                start += 1;
            }
            let window: Vec<&Bucket> = buckets[start..=end].iter().map(|(_, b)| *b).collect();
            let value = measure(&window);
            if value < threshold {
                continue;
            }
            in_burst[start..=end].iter_mut().for_each(|b| *b = true);
            let b = burst.get_or_insert(Burst { span: Span::default(), failures: 0, peak: 0, windows: 0 });
            b.peak = b.peak.max(value);
            b.windows += 1;
        }
        let mut burst = burst?;
        for ((_, bucket), _) in buckets.iter().zip(&in_burst).filter(|(_, inside)| **inside) {
            burst.failures += bucket.failures;
            burst.span.see(bucket.first);
            burst.span.see(bucket.last);
        }
        Some(burst)
    }
}

/// The windows over a threshold of one source or user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Burst {
    /// From the first to the last failure in any such window.
    pub span: Span,
    /// Failures inside those windows.
    pub failures: u64,
    /// The worst window: distinct users (spray) or failures (brute force).
    pub peak: u64,
    /// Windows (by their last minute) over the threshold.
    pub windows: u64,
}

/// A source that failed to sign in as many users.
#[derive(Clone, Debug)]
pub struct Spray<'a> {
    pub source: IpAddr,
    pub network: NetworkId,
    pub burst: Burst,
    pub failures: &'a KeyFailures<Box<str>>,
}

/// A user with many failed sign-ins.
#[derive(Clone, Debug)]
pub struct BruteForce<'a> {
    pub user: &'a str,
    pub burst: Burst,
    pub failures: &'a KeyFailures<(IpAddr, NetworkId)>,
}

/// Failed sign-ins by source and by user.
#[derive(Clone, Debug, Default)]
pub struct SignIns {
    /// Every failed sign-in seen, with or without a time, source or user.
    pub failures: u64,
    pub by_source: Map<IpAddr, (NetworkId, KeyFailures<Box<str>>)>,
    pub by_user: Map<Box<str>, KeyFailures<(IpAddr, NetworkId)>>,
}

/// One hasher for the process, so that per-minute user sets from different
/// threads agree; randomly seeded, so user names cannot be chosen to collide.
fn user_hash(user: &str) -> u64 {
    static STATE: OnceLock<ahash::RandomState> = OnceLock::new();
    let state = STATE.get_or_init(ahash::RandomState::new);
    let mut h = state.build_hasher();
    user.hash(&mut h);
    std::hash::Hasher::finish(&h)
}

impl SignIns {
    /// Count `req` when it is a failed sign-in.
    pub fn add(&mut self, req: &Request) {
        if !req.is_failed_sign_in() {
            return;
        }
        self.failures += 1;
        let user = (!req.user.is_empty()).then_some(req.user.as_str());
        if let Some(ip) = req.client_ip {
            let (_, source) = self.by_source.entry(ip).or_insert_with(|| (req.network, KeyFailures::new()));
            source.see(req.time, user.map(user_hash));
            if let Some(user) = user {
                source.evidence.add_with(user, 1, || user.into());
            }
        }
        if let Some(user) = user {
            let failures = match self.by_user.get_mut(user) {
                Some(f) => f,
                None => self.by_user.entry(user.into()).or_insert_with(KeyFailures::new),
            };
            failures.see(req.time, None);
            if let Some(ip) = req.client_ip {
                let key = (ip, req.network);
                failures.evidence.add_with(&key, 1, || key);
            }
        }
    }

    pub fn merge(&mut self, other: SignIns) {
        self.failures += other.failures;
        for (ip, (network, failures)) in other.by_source {
            match self.by_source.get_mut(&ip) {
                Some((_, mine)) => mine.merge(failures),
                None => {
                    self.by_source.insert(ip, (network, failures));
                }
            }
        }
        for (user, failures) in other.by_user {
            match self.by_user.get_mut(&user) {
                Some(mine) => mine.merge(failures),
                None => {
                    self.by_user.insert(user, failures);
                }
            }
        }
    }

    /// Sources over the spray threshold, by address.
    pub fn sprays(&self, t: &Thresholds) -> Vec<Spray<'_>> {
        let distinct = |window: &[&Bucket]| {
            let mut union: Vec<u64> = Vec::new();
            for b in window {
                for &h in &b.distinct {
                    insert_capped(&mut union, h);
                }
            }
            union.len() as u64
        };
        let mut out: Vec<Spray<'_>> = self
            .by_source
            .iter()
            .filter_map(|(ip, (network, f))| {
                let burst = f.bursts(t.spray_window, distinct, t.spray_users as u64)?;
                Some(Spray { source: *ip, network: *network, burst, failures: f })
            })
            .collect();
        out.sort_by_key(|s| s.source);
        out
    }

    /// Users over the brute-force threshold, by name.
    pub fn brute_forces(&self, t: &Thresholds) -> Vec<BruteForce<'_>> {
        let failures = |window: &[&Bucket]| window.iter().map(|b| b.failures).sum::<u64>();
        let mut out: Vec<BruteForce<'_>> = self
            .by_user
            .iter()
            .filter_map(|(user, f)| {
                let burst = f.bursts(t.brute_force_window, failures, t.brute_force_failures)?;
                Some(BruteForce { user, burst, failures: f })
            })
            .collect();
        out.sort_by(|a, b| a.user.cmp(b.user));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_392_000; // 2026-11-23T00:00:00Z

    fn failure(time: i64, ip: &str, user: &str) -> Request {
        Request {
            time,
            status: 401,
            substatus: 1,
            client_ip: Some(ip.parse().unwrap()),
            user: user.into(),
            ..Request::default()
        }
    }

    fn signins(requests: &[Request]) -> SignIns {
        let mut s = SignIns::default();
        requests.iter().for_each(|r| s.add(r));
        s
    }

    #[test]
    fn only_credential_failures_count() {
        let mut challenge = failure(T0, "192.0.2.1", "a");
        (challenge.substatus, challenge.win32_status) = (2, 5);
        let mut win32 = failure(T0, "192.0.2.1", "a");
        (win32.substatus, win32.win32_status) = (0, 1326);
        let mut ok = failure(T0, "192.0.2.1", "a");
        ok.status = 200;
        let s = signins(&[challenge, win32, ok]);
        assert_eq!(s.failures, 1);
    }

    #[test]
    fn spray_is_many_users_from_one_source_within_the_window() {
        let t = Thresholds::default();
        // Five users in 19 minutes: a spray. Five users over 25 minutes: not.
        let spray: Vec<Request> =
            (0..5).map(|i| failure(T0 + i * 19 * 60 / 4, "203.0.113.9", &format!("user{i}"))).collect();
        let slow: Vec<Request> =
            (0..5).map(|i| failure(T0 + i * 25 * 60 / 4, "198.51.100.7", &format!("user{i}"))).collect();
        let mut all = spray.clone();
        all.extend(slow);
        let s = signins(&all);
        let sprays = s.sprays(&t);
        assert_eq!(sprays.len(), 1);
        let found = &sprays[0];
        assert_eq!(found.source, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!((found.burst.peak, found.burst.failures), (5, 5));
        assert_eq!((found.burst.span.first, found.burst.span.last), (T0, T0 + 4 * 19 * 60 / 4));
        let users: Vec<&str> = found.failures.evidence.iter().map(|(u, _)| &**u).collect();
        assert_eq!(users, ["user0", "user1", "user2", "user3", "user4"]);
        // The same user five times is no spray.
        let one: Vec<Request> = (0..5).map(|i| failure(T0 + i, "203.0.113.9", "same")).collect();
        assert!(signins(&one).sprays(&t).is_empty());
    }

    #[test]
    fn brute_force_is_many_failures_against_one_user() {
        let t = Thresholds { brute_force_failures: 10, ..Thresholds::default() };
        let fast: Vec<Request> =
            (0..10).map(|i| failure(T0 + i * 50, if i % 2 == 0 { "192.0.2.1" } else { "192.0.2.2" }, "bob")).collect();
        let slow: Vec<Request> = (0..10).map(|i| failure(T0 + i * 120, "192.0.2.3", "carol")).collect();
        let mut all = fast;
        all.extend(slow);
        let s = signins(&all);
        let found = s.brute_forces(&t);
        assert_eq!(found.iter().map(|b| b.user).collect::<Vec<_>>(), ["bob"]);
        assert_eq!((found[0].burst.peak, found[0].burst.failures), (10, 10));
        assert_eq!(found[0].failures.evidence.len(), 2, "two sources");
    }

    #[test]
    fn any_order_and_any_split_give_the_same_result() {
        let t = Thresholds::default();
        let requests: Vec<Request> =
            (0..40).map(|i| failure(T0 + (i * 37 % 40) * 30, "203.0.113.9", &format!("u{}", i % 9))).collect();
        let whole = signins(&requests);
        let mut reversed = requests.clone();
        reversed.reverse();
        let mut left = signins(&reversed[..13]);
        left.merge(signins(&reversed[13..]));
        let key = |s: &SignIns| s.sprays(&t).iter().map(|s| (s.burst, s.failures.failures)).collect::<Vec<_>>();
        assert_eq!(key(&whole), key(&left));
        assert_eq!(key(&whole)[0].0.peak, 9);
    }

    #[test]
    fn memory_is_bounded_per_key() {
        let mut s = SignIns::default();
        for i in 0..(MAX_BUCKETS as i64 + 100) {
            s.add(&failure(T0 + i * 60, "203.0.113.9", "bob"));
        }
        for i in 0..(MAX_DISTINCT * 3) {
            s.add(&failure(T0, "203.0.113.9", &format!("user{i}")));
        }
        let (_, source) = &s.by_source[&"203.0.113.9".parse::<IpAddr>().unwrap()];
        assert!(source.buckets.len() <= MAX_BUCKETS && source.truncated);
        assert!(source.buckets.values().all(|b| b.distinct.len() <= MAX_DISTINCT));
        assert!(source.evidence.len() <= MAX_EVIDENCE);
    }

    #[test]
    fn thresholds_are_checked() {
        assert_eq!(Thresholds::default().check(), Ok(()));
        let t = Thresholds { spray_users: 65, ..Thresholds::default() };
        assert_eq!(t.check(), Err(ThresholdError::SprayUsers(65)));
        let t = Thresholds { brute_force_window: 30, ..Thresholds::default() };
        assert_eq!(t.check(), Err(ThresholdError::Window(30)));
    }
}
