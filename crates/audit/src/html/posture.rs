//! The `posture` report as one HTML page.

use serde_json::Value;

use super::{card, notes_html, num, Page};
use crate::posture::PostureReport;

/// The posture as one HTML page: a users × protocols matrix, the backdoors,
/// the unused doors with their lines, Basic authentication.
pub fn posture_html(report: &PostureReport) -> String {
    let s = &report.summary;
    let mut cards = String::new();
    card(&mut cards, "people's requests", &num(s.requests), "");
    card(&mut cards, "users", &num(s.users as u64), "");
    card(&mut cards, "open backdoors", &num(s.backdoor_users as u64), if s.backdoor_users > 0 { "bad" } else { "ok" });
    card(&mut cards, "doors open, unused", &num(s.unused_doors as u64), if s.unused_doors > 0 { "warn" } else { "ok" });
    card(
        &mut cards,
        "users open to Outlook mobile with Basic",
        &num(s.outlook_mobile_basic_open as u64),
        if s.outlook_mobile_basic_used > 0 {
            "bad"
        } else if s.outlook_mobile_basic_open > 0 {
            "warn"
        } else {
            "ok"
        },
    );
    card(
        &mut cards,
        "Basic auth requests",
        &num(s.basic_auth_requests),
        if s.basic_auth_requests > 0 { "warn" } else { "ok" },
    );
    let mut page = Page::new(&cards);
    page.section(
        "matrix",
        "Doors",
        "Doors",
        "Each user's door per protocol under the settings in force: open, LAN only, gated (some requests or clients \
         refused, others through) or blocked; \u{2022} marks a door used in the logs. Hover a cell for the mechanism \
         and the clients.",
        "<div id=\"posture-matrix\"></div>",
    );
    page.section(
        "backdoors",
        "Backdoors",
        "Open backdoors",
        "Users gated on ActiveSync (or whose phone is refused) who still reach mail over EWS, OWA, MAPI or RPC from a \
         mobile or third-party client, riskiest first. Outlook for Windows or Mac and desktop browsers are context.",
        "<div id=\"posture-backdoors\"></div>",
    );
    page.section(
        "unused",
        "Unused",
        "Open and unused",
        "Doors open to users who never used them in the logs: closing them cuts nobody.",
        "<div id=\"posture-unused\"></div>",
    );
    page.section("basic", "Basic auth", "Basic authentication in use", "", "<div id=\"posture-basic\"></div>");
    page.section("notes", "Notes", "Notes", "", &notes_html(&report.notes));

    let data = serde_json::to_value(report).unwrap_or(Value::Null);
    let subtitle = format!("policy {}, {} line(s)", report.policy, num(s.lines));
    page.finish("posture", &subtitle, data)
}
