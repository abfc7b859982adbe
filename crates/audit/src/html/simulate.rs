//! The `simulate` report as one HTML page.

use std::fmt::Write as _;

use serde_json::Value;

use super::{card, escape, notes_html, num, Page, PALETTE};
use crate::simulate::SimReport;

/// The simulation as one HTML page.
pub fn simulate_html(report: &SimReport) -> String {
    let s = &report.summary;
    let mut cards = String::new();
    card(&mut cards, "people's requests", &num(s.requests), "");
    card(&mut cards, "would be denied", &num(s.denied_requests), if s.denied_requests > 0 { "bad" } else { "ok" });
    card(&mut cards, "allowed", &num(s.allowed_requests), "");
    card(&mut cards, "users affected", &num(s.affected_users as u64), if s.affected_users > 0 { "warn" } else { "ok" });
    let backdoors = report.backdoors.len() as u64;
    card(&mut cards, "backdoors", &num(backdoors), if backdoors > 0 { "bad" } else { "ok" });
    card(&mut cards, "Provision denied", &num(report.grandfathering.provision_denied), "");
    if let Some(known) = report.grandfathering.provision_from_known_devices {
        card(&mut cards, "from known devices", &num(known), if known > 0 { "warn" } else { "ok" });
    }
    card(
        &mut cards,
        "probes denied",
        &num(report.probes.denied_requests),
        if report.probes.denied_requests > 0 { "warn" } else { "ok" },
    );
    if report.machines.requests > 0 {
        card(
            &mut cards,
            "computer accounts denied",
            &num(report.machines.denied_requests),
            if report.machines.denied_requests > 0 { "warn" } else { "ok" },
        );
    }
    let mut page = Page::new(&cards);

    page.section(
        "impact",
        "Impact",
        "Impact by rule",
        "Requests each rule would deny (first matching rule wins; the default applies when none matches).",
        &rules_svg(report),
    );
    page.section("rules", "Rules", "Rules", "", "<div id=\"rules-table\"></div>");
    page.section(
        "denied",
        "Denied devices",
        "Denied devices",
        "Each user's device that a rule would deny, with the requests it would lose.",
        "<div id=\"denied-devices-table\"></div>",
    );
    page.section(
        "backdoors",
        "Backdoors",
        "Backdoors",
        "Users denied on one protocol who still reached mail through another with allowed, successful requests.",
        "<div id=\"backdoors-table\"></div>",
    );
    page.section("affected", "Affected users", "Affected users", "", "<div id=\"affected-list\"></div>");
    let mut notes = String::new();
    let g = &report.grandfathering;
    let _ = write!(
        notes,
        "<p>Cut-over: {}. Provision requests denied: {}; from devices that existed at the cut-over: {}.</p>",
        escape(g.cutover.as_deref().unwrap_or("none given")),
        num(g.provision_denied),
        g.provision_from_known_devices.map(num).unwrap_or_else(|| "unknown".into())
    );
    // What a rule would deny beside people's requests, with examples of each.
    let mut denied_by = |what: &str, rule: &str, denied: u64, examples: &[String]| {
        let (rule, examples) = (escape(rule), escape(&examples.join(", ")));
        let _ = write!(notes, "<p>{what} denied by <b>{rule}</b>: {} ({examples})</p>", num(denied));
    };
    for rule in &report.probes.rules {
        denied_by("Monitoring probes", &rule.name, rule.denied_requests, &rule.user_agents);
    }
    for rule in &report.machines.rules {
        denied_by("Requests of computer accounts", &rule.name, rule.denied_requests, &rule.accounts);
    }
    notes.push_str(&notes_html(&report.notes));
    page.section("notes", "Notes", "Grandfathering, probes and notes", "", &notes);

    let data = serde_json::to_value(report).unwrap_or(Value::Null);
    let subtitle = format!("policy {}, {} line(s)", report.policy, num(s.lines));
    page.finish("simulate", &subtitle, data)
}

/// Horizontal bars: denied requests per rule.
fn rules_svg(report: &SimReport) -> String {
    let rules: Vec<_> = report.rules.iter().filter(|r| r.denied_requests > 0).collect();
    if rules.is_empty() {
        return "<p class=\"empty\">The policy would deny nothing in these logs.</p>".into();
    }
    let max = rules.iter().map(|r| r.denied_requests).max().unwrap_or(1).max(1);
    let row = 26.0;
    let (w, label_w) = (960.0, 300.0);
    let h = row * rules.len() as f64 + 8.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-label=\"Denied requests by rule\">"
    );
    for (i, r) in rules.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let bw = (w - label_w - 120.0) * (r.denied_requests as f64 / max as f64);
        let mut name = r.name.clone();
        if name.chars().count() > 44 {
            name = name.chars().take(43).collect::<String>() + "\u{2026}";
        }
        let _ = write!(
            out,
            "<text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{bw:.2}\" height=\"{}\" fill=\"{}\"><title>{}: {} denied, {} user(s)</title></rect>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\">{} denied \u{b7} {} user(s)</text>",
            label_w - 8.0,
            y + 15.0,
            escape(&name),
            row - 8.0,
            PALETTE[1],
            escape(&r.name),
            num(r.denied_requests),
            r.users.len(),
            label_w + bw + 6.0,
            y + 15.0,
            num(r.denied_requests),
            r.users.len()
        );
    }
    out.push_str("</svg></div>");
    out
}
