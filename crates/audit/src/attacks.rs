//! Attacks, one detection rule and one source address at a time: how many
//! requests, what became of them (by status), and the evidence an admin
//! needs (paths, accounts, user agents, the smallest request seen).

use exchange::{AttackKind, NetworkId, Outcome, Request};

use crate::aggregate::Span;
use crate::capped::CappedCounts;

/// Evidence kept per attack source: distinct paths, users, user agents.
const MAX_ATTACK_PATHS: usize = 16;
const MAX_ATTACK_USERS: usize = 8;
const MAX_ATTACK_AGENTS: usize = 4;
const MAX_ATTACK_IMPERSONATED: usize = 8;

/// The requests of one detection rule from one address.
#[derive(Clone, Debug)]
pub struct AttackAgg {
    pub kind: AttackKind,
    pub requests: u64,
    pub span: Span,
    /// Requests per [`Outcome`], indexed as `Outcome::ALL`.
    pub outcomes: [u64; 4],
    /// The smallest `METHOD stem?query` seen, as evidence.
    pub sample: String,
    /// Distinct stems asked for.
    pub paths: CappedCounts<Box<str>>,
    /// Accounts named by the requests (cs-username or the ActiveSync user).
    pub users: CappedCounts<Box<str>>,
    pub user_agents: CappedCounts<Box<str>>,
    /// Accounts a forged CommonAccessToken named (ProxyShell's
    /// `X-Rps-CAT`), as `logon (SID)`: whom the attack ran PowerShell as.
    pub impersonated: CappedCounts<Box<str>>,
    pub network: NetworkId,
    /// Where an impersonated account is written before it is counted.
    scratch: String,
}

impl AttackAgg {
    pub(crate) fn new(kind: AttackKind, network: NetworkId) -> Self {
        AttackAgg {
            kind,
            requests: 0,
            span: Span::default(),
            outcomes: [0; 4],
            sample: String::new(),
            paths: CappedCounts::new(MAX_ATTACK_PATHS),
            users: CappedCounts::new(MAX_ATTACK_USERS),
            user_agents: CappedCounts::new(MAX_ATTACK_AGENTS),
            impersonated: CappedCounts::new(MAX_ATTACK_IMPERSONATED),
            network,
            scratch: String::new(),
        }
    }

    pub(crate) fn add(&mut self, req: &Request) {
        self.requests += 1;
        self.span.see(req.time);
        self.outcomes[outcome_index(req.outcome())] += 1;
        // Keep the smallest sample; compare before building it so that
        // a repeated attempt allocates nothing.
        let query = exchange::url::redact_secrets(&req.query);
        if self.sample.is_empty() || sample_bytes(req, &query).lt(self.sample.bytes()) {
            self.sample = sample_bytes(req, &query).map(char::from).collect();
        }
        let stem = req.stem.as_str();
        self.paths.add_with(stem, 1, || stem.into());
        let user = if req.user.is_empty() { req.username.as_str() } else { req.user.as_str() };
        if !user.is_empty() {
            self.users.add_with(user, 1, || user.into());
        }
        if !req.user_agent.is_empty() {
            let ua = req.user_agent.as_str();
            self.user_agents.add_with(ua, 1, || ua.into());
        }
        if exchange::exploits::cat::impersonated(&req.query, &mut self.scratch) {
            let who = self.scratch.as_str();
            self.impersonated.add_with(who, 1, || who.into());
        }
    }

    pub(crate) fn merge(&mut self, other: AttackAgg) {
        self.requests += other.requests;
        self.span.merge(other.span);
        for (mine, theirs) in self.outcomes.iter_mut().zip(other.outcomes) {
            *mine += theirs;
        }
        if self.sample.is_empty() || (!other.sample.is_empty() && other.sample < self.sample) {
            self.sample = other.sample;
        }
        self.paths.merge(other.paths);
        self.users.merge(other.users);
        self.user_agents.merge(other.user_agents);
        self.impersonated.merge(other.impersonated);
    }

    /// What became of the attempts, most telling first: succeeded when any
    /// did, else failed when any did, else blocked, else unknown.
    pub fn outcome(&self) -> Outcome {
        [Outcome::Succeeded, Outcome::Failed, Outcome::Blocked]
            .into_iter()
            .find(|o| self.outcomes[outcome_index(*o)] > 0)
            .unwrap_or(Outcome::Unknown)
    }
}

/// Index of an outcome in `Outcome::ALL`.
pub fn outcome_index(outcome: Outcome) -> usize {
    Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(3)
}

/// `METHOD stem?query`, cut to 512 bytes: the evidence kept for an exploit
/// attempt, `query` being the request's with its secrets redacted. Bytes
/// outside ASCII are replaced so the sample is always valid text.
fn sample_bytes<'a>(req: &'a Request, query: &'a str) -> impl Iterator<Item = u8> + 'a {
    let mark: &[u8] = if query.is_empty() { b"" } else { b"?" };
    req.method
        .bytes()
        .chain(*b" ")
        .chain(req.stem.bytes())
        .chain(mark.iter().copied())
        .chain(query.bytes())
        .map(|b| if b.is_ascii() { b } else { b'?' })
        .take(512)
}
