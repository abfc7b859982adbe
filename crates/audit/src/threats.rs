//! The report's findings about attackers rather than people: one per
//! detection rule and source address, with what became of the requests, and
//! one per spraying source or brute-forced user.

use std::collections::BTreeMap;

use exchange::{Networks, Outcome};

use crate::aggregate::Aggregate;
use crate::attacks::outcome_index;
use crate::findings::FindingKind;
use crate::report::{Finding, Source};
use crate::signins::{SignIns, Thresholds};

/// One finding per rule and source, by rule then address.
pub(crate) fn attack_findings(agg: &Aggregate, networks: &Networks) -> Vec<Finding> {
    let mut attacks: Vec<_> = agg.attacks.iter().collect();
    attacks.sort_by(|a, b| a.0.cmp(b.0));
    attacks
        .into_iter()
        .map(|((rule, ip), a)| {
            let ip_text = ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into());
            let outcome = a.outcome();
            let kind = FindingKind::of_attack(a.kind);
            let impersonated: Vec<String> = a.impersonated.iter().map(|(who, _)| who.to_string()).collect();
            let as_whom = match impersonated.as_slice() {
                [] => String::new(),
                [one] => format!(" as {one}"),
                [first, rest @ ..] => format!(" as {first} and {} other account(s)", rest.len()),
            };
            let summary = format!("{rule} from {ip_text}{as_whom}: {} ({} requests)", outcome.key(), a.requests);
            let mut f = Finding::new(kind, summary, a.requests, a.span);
            f.rule = Some(rule);
            f.source =
                Some(Source { ip: ip_text, network: networks.name(a.network).to_string(), requests: a.requests });
            f.sample = Some(a.sample.clone());
            f.outcome = Some(outcome.key());
            f.outcomes = outcome_counts(&a.outcomes);
            f.paths = a.paths.iter().map(|(p, _)| p.to_string()).collect();
            f.users = a.users.iter().map(|(u, _)| u.to_string()).collect();
            f.user_agents = a.user_agents.iter().map(|(u, _)| u.to_string()).collect();
            f.impersonated = impersonated;
            f
        })
        .collect()
}

fn outcome_counts(counts: &[u64; 4]) -> BTreeMap<&'static str, u64> {
    Outcome::ALL.iter().map(|o| (o.key(), counts[outcome_index(*o)])).filter(|(_, n)| *n > 0).collect()
}

/// Password sprays by source, then brute forces by user.
pub(crate) fn signin_findings(signins: &SignIns, t: &Thresholds, networks: &Networks) -> Vec<Finding> {
    let mut findings = Vec::new();
    for spray in signins.sprays(t) {
        let b = spray.burst;
        let ip = spray.source.to_string();
        let summary = format!(
            "{ip} failed to sign in as {} users within {} minutes ({} failures)",
            b.peak,
            t.spray_window / 60,
            b.failures
        );
        let mut f = Finding::new(FindingKind::PasswordSpray, summary, b.failures, b.span);
        f.source = Some(Source { ip, network: networks.name(spray.network).to_string(), requests: b.failures });
        f.users = spray.failures.evidence.iter().map(|(u, _)| u.to_string()).collect();
        (f.peak, f.window_seconds, f.threshold) = (Some(b.peak), Some(t.spray_window), Some(t.spray_users as u64));
        findings.push(f);
    }
    for brute in signins.brute_forces(t) {
        let b = brute.burst;
        let sources = brute.failures.evidence.len();
        let summary = format!(
            "{}: {} failed sign-ins within {} minutes from {sources} source(s) ({} in all)",
            brute.user,
            b.peak,
            t.brute_force_window / 60,
            b.failures
        );
        let mut f = Finding::new(FindingKind::BruteForce, summary, b.failures, b.span);
        f.user = Some(brute.user.to_string());
        f.sources = brute
            .failures
            .evidence
            .iter()
            .map(|((ip, network), n)| Source {
                ip: ip.to_string(),
                network: networks.name(*network).to_string(),
                requests: n,
            })
            .collect();
        (f.peak, f.window_seconds, f.threshold) =
            (Some(b.peak), Some(t.brute_force_window), Some(t.brute_force_failures));
        findings.push(f);
    }
    findings
}
