//! The `posture` report as one HTML page.

use serde_json::Value;

use super::{card, notes_html, num, page, section};
use crate::posture::PostureReport;

/// The posture as one HTML page: a users × protocols matrix, the backdoors,
/// the unused doors with their lines, Basic authentication.
pub fn posture_html(report: &PostureReport) -> String {
    let s = &report.summary;
    let mut body = String::new();
    body.push_str("<section id=\"summary\" class=\"cards\">");
    card(&mut body, "people's requests", &num(s.requests), "");
    card(&mut body, "users", &num(s.users as u64), "");
    card(&mut body, "open backdoors", &num(s.backdoor_users as u64), if s.backdoor_users > 0 { "bad" } else { "ok" });
    card(&mut body, "doors open, unused", &num(s.unused_doors as u64), if s.unused_doors > 0 { "warn" } else { "ok" });
    card(
        &mut body,
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
        &mut body,
        "Basic auth requests",
        &num(s.basic_auth_requests),
        if s.basic_auth_requests > 0 { "warn" } else { "ok" },
    );
    body.push_str("</section>\n");
    section(
        &mut body,
        "matrix",
        "Doors",
        "Each user's door per protocol under the settings in force: open, LAN only, gated (some requests or clients \
         refused, others through) or blocked; \u{2022} marks a door used in the logs. Hover a cell for the mechanism \
         and the clients.",
        "<div id=\"posture-matrix\"></div>",
    );
    section(
        &mut body,
        "backdoors",
        "Open backdoors",
        "Users gated on ActiveSync (or whose phone is refused) who still reach mail over EWS, OWA, MAPI or RPC from a \
         mobile or third-party client, riskiest first. Outlook for Windows or Mac and desktop browsers are context.",
        "<div id=\"posture-backdoors\"></div>",
    );
    section(
        &mut body,
        "unused",
        "Open and unused",
        "Doors open to users who never used them in the logs: closing them cuts nobody.",
        "<div id=\"posture-unused\"></div>",
    );
    section(&mut body, "basic", "Basic authentication in use", "", "<div id=\"posture-basic\"></div>");
    section(&mut body, "notes", "Notes", "", &notes_html(&report.notes));

    let mut data = serde_json::to_value(report).unwrap_or(Value::Null);
    data["kind"] = Value::from("posture");
    let subtitle = format!("policy {}, {} line(s)", report.policy, num(s.lines));
    let nav = [
        ("summary", "Summary"),
        ("matrix", "Doors"),
        ("backdoors", "Backdoors"),
        ("unused", "Unused"),
        ("basic", "Basic auth"),
        ("notes", "Notes"),
    ];
    page("posture", "casguard posture", &subtitle, &nav, &body, &data)
}
