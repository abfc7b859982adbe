//! Self-contained HTML reports for `audit`, `simulate` and `posture`.
//!
//! One file with inline CSS, JS and SVG that loads nothing from the network
//! (a Content-Security-Policy forbids it). The report data is embedded once
//! as JSON and the tables are built by the script with `textContent`, so
//! user agents and user names from the logs, which attackers choose, are
//! never parsed as markup. What is rendered here in Rust goes through
//! [`escape`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use exchange::{Catalog, ClientId};
use serde_json::Value;

use crate::aggregate::Aggregate;
use crate::findings::FindingKind;
use crate::report::Report;

mod posture;
mod simulate;

pub use posture::posture_html;
pub use simulate::simulate_html;

const CSS: &str = include_str!("../../assets/report.css");
const JS: &str = include_str!("../../assets/report.js");
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; \
                   base-uri 'none'; form-action 'none'";
/// Series in the chart; the rest is summed as "other".
const MAX_SERIES: usize = 7;
/// Bars in the chart at most; the bucket widens (hour, day, week) to fit.
const MAX_BARS: i64 = 170;
const PALETTE: [&str; 8] = ["#2457c5", "#e4572e", "#17a398", "#f3a712", "#8e44ad", "#6c8ead", "#c2185b", "#9aa3ad"];

/// `text` with each character that `table` names replaced by its string.
fn replace_chars(text: &str, table: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match table.iter().find(|(from, _)| *from == c) {
            Some((_, to)) => out.push_str(to),
            None => out.push(c),
        }
    }
    out
}

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    replace_chars(text, &[('&', "&amp;"), ('<', "&lt;"), ('>', "&gt;"), ('"', "&quot;"), ('\'', "&#39;")])
}

/// JSON safe inside `<script type="application/json">`: no `<`, `>` or `&`
/// can close the element or open a comment. Those characters only occur
/// inside JSON strings, where the `\u` escapes mean the same.
pub fn script_json(value: &Value) -> String {
    let table =
        [('<', "\\u003c"), ('>', "\\u003e"), ('&', "\\u0026"), ('\u{2028}', "\\u2028"), ('\u{2029}', "\\u2029")];
    replace_chars(&value.to_string(), &table)
}

fn num(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    // Digits before the first comma, then groups of three.
    let head = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    out.push_str(&digits[..head.min(digits.len())]);
    for group in digits.as_bytes()[head.min(digits.len())..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).unwrap_or_default());
    }
    out
}

fn short_time(t: Option<&str>) -> String {
    t.map(|t| t.replace('T', " ").trim_end_matches('Z').to_string()).unwrap_or_else(|| "-".into())
}

/// A page being written: its sections in order and the table of contents
/// that links them, kept together so that the two cannot disagree.
struct Page {
    body: String,
    nav: Vec<(&'static str, &'static str)>,
}

impl Page {
    /// A page that opens with the summary `cards`.
    fn new(cards: &str) -> Page {
        let body = format!("<section id=\"summary\" class=\"cards\">{cards}</section>\n");
        Page { body, nav: vec![("summary", "Summary")] }
    }

    /// The section `id` under `title`, `nav` in the table of contents.
    fn section(&mut self, id: &'static str, nav: &'static str, title: &str, intro: &str, inner: &str) {
        self.nav.push((id, nav));
        let out = &mut self.body;
        let _ = write!(out, "<section id=\"{id}\"><h2>{}</h2>", escape(title));
        if !intro.is_empty() {
            let _ = write!(out, "<p class=\"meaning\">{}</p>", escape(intro));
        }
        out.push_str(inner);
        out.push_str("</section>\n");
    }

    /// The document of the `casguard {kind}` report, with `data` (marked
    /// with its kind) embedded for the script.
    fn finish(self, kind: &str, subtitle: &str, mut data: Value) -> String {
        data["kind"] = Value::from(kind);
        let title = format!("casguard {kind}");
        let mut out = String::with_capacity(self.body.len() + CSS.len() + JS.len() + 4096);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"generator\" content=\"casguard {}\">\n<title>{}</title>\n<style>\n{CSS}</style>\n</head>\n\
             <body data-kind=\"{kind}\">\n<header class=\"top\"><h1>{}</h1><p>{}</p></header>\n<nav class=\"toc\">",
            env!("CARGO_PKG_VERSION"),
            escape(&title),
            escape(&title),
            escape(subtitle),
        );
        for (id, label) in &self.nav {
            let _ = write!(out, "<a href=\"#{id}\">{}</a>", escape(label));
        }
        out.push_str("</nav>\n<main>\n<noscript><p>The tables need JavaScript; the data is in the JSON block of this file.</p></noscript>\n");
        out.push_str(&self.body);
        out.push_str("</main>\n<footer>casguard ");
        out.push_str(env!("CARGO_PKG_VERSION"));
        out.push_str(" &middot; self-contained report: nothing is loaded from the network.</footer>\n");
        out.push_str("<script type=\"application/json\" id=\"casguard-data\">");
        out.push_str(&script_json(&data));
        out.push_str("</script>\n<script>\n");
        out.push_str(JS);
        out.push_str("</script>\n</body>\n</html>\n");
        out
    }
}

fn card(out: &mut String, label: &str, value: &str, class: &str) {
    let _ = write!(
        out,
        "<div class=\"card {class}\"><div class=\"v\">{}</div><div class=\"k\">{}</div></div>",
        escape(value),
        escape(label)
    );
}

fn notes_html(notes: &[String]) -> String {
    if notes.is_empty() {
        return "<p class=\"empty\">No notes.</p>".into();
    }
    let mut out = String::from("<ul class=\"notes\">");
    for note in notes {
        let _ = write!(out, "<li>{}</li>", escape(note));
    }
    out.push_str("</ul>");
    out
}

/// The audit report as one HTML page. `agg` gives the timeline of the chart.
pub fn audit_html(report: &Report, agg: &Aggregate, catalog: &Catalog) -> String {
    let s = &report.summary;
    let mut cards = String::new();
    let count = |kind: FindingKind| report.findings.iter().filter(|f| f.kind == kind).count() as u64;
    card(&mut cards, "people's requests", &num(s.requests), "");
    card(&mut cards, "users", &num(s.users as u64), "");
    card(&mut cards, "devices", &num(s.devices as u64), "");
    for kind in FindingKind::PERSON {
        let n = count(kind);
        card(&mut cards, kind.key(), &num(n), if n > 0 { "warn" } else { "ok" });
    }
    for kind in [
        FindingKind::WebShell,
        FindingKind::DataTheft,
        FindingKind::ExploitAttempt,
        FindingKind::PasswordSpray,
        FindingKind::BruteForce,
    ] {
        let n = count(kind);
        card(&mut cards, kind.key(), &num(n), if n > 0 { "bad" } else { "ok" });
    }
    card(&mut cards, "attack requests", &num(s.attacks), if s.attacks > 0 { "bad" } else { "ok" });
    card(&mut cards, "probes", &num(s.probes), "");
    card(&mut cards, "back-end hops", &num(s.backend_duplicates), "");
    card(&mut cards, "machine accounts", &num(s.machine), "");
    card(&mut cards, "anonymous", &num(s.anonymous), "");
    card(&mut cards, "malformed lines", &num(s.malformed), if s.malformed > 0 { "warn" } else { "" });
    let mut page = Page::new(&cards);

    let timeline = agg.people_tally().timeline();
    let points: Vec<(i64, u16, u64)> = timeline.iter().map(|((h, c), n)| (*h, *c, n)).collect();
    let mut chart = timeline_svg(&points, catalog);
    if timeline.truncated {
        chart.push_str(
            "<p class=\"muted\">The logs span more hours than the chart keeps: only the earliest are shown.</p>",
        );
    }
    page.section(
        "timeline",
        "Over time",
        "Requests over time by client",
        "People's requests, stacked by client.",
        &chart,
    );
    page.section("findings", "Findings", "Findings", "", "<div id=\"findings-list\"></div>");
    page.section(
        "protocols",
        "Protocols by user",
        "Protocols by user",
        "People's requests per protocol; darker cells carry more of that protocol's traffic.",
        "<div id=\"protocols-table\"></div>",
    );
    page.section(
        "devices",
        "Users and devices",
        "Users and devices",
        "One row per device: an ActiveSync device id, or a user agent for other protocols. Click a column to sort.",
        "<div id=\"devices-table\"></div>",
    );
    if let Some(p) = &report.partnerships {
        let s = &p.summary;
        let mut inner = String::from("<div class=\"cards\">");
        card(&mut inner, "partnerships", &num(s.partnerships as u64), "");
        card(&mut inner, "Outlook for iOS and Android", &num(s.outlook_mobile as u64), "");
        let quiet = s.outlook_mobile_without_traffic as u64;
        card(&mut inner, "of them without traffic", &num(quiet), if quiet > 0 { "warn" } else { "ok" });
        card(
            &mut inner,
            &format!("idle > {} days", p.stale_days),
            &num(s.stale as u64),
            if s.stale > 0 { "warn" } else { "ok" },
        );
        let lone = s.without_partnership as u64;
        card(&mut inner, "in the logs without one", &num(lone), if lone > 0 { "warn" } else { "ok" });
        inner.push_str("</div><div id=\"partnerships-table\"></div>");
        inner.push_str(
            "<h3>ActiveSync devices in the logs without a partnership</h3><div id=\"unpartnered-table\"></div>",
        );
        let intro = format!(
            "From Get-MobileDeviceStatistics: every partnership, with its traffic in these logs. Idle days are counted \
             to {}, the latest time in the export and the logs.",
            p.measured_at.as_deref().unwrap_or("-")
        );
        page.section("partnerships", "Partnerships", "Mobile-device partnerships", &intro, &inner);
    }
    page.section("probes", "Probes", "Monitoring probes", "", "<div id=\"probes-table\"></div>");
    let mut notes = notes_html(&report.notes);
    notes.push_str("<h3>Malformed lines</h3><div id=\"malformed-table\"></div>");
    page.section("notes", "Notes", "Notes", "", &notes);

    let mut data = serde_json::to_value(report).unwrap_or(Value::Null);
    if let Some(findings) = data.get_mut("findings").and_then(Value::as_array_mut) {
        // The devices are in `users` already: refer to them by id.
        for f in findings {
            if let Some(devices) = f.get_mut("devices").and_then(Value::as_array_mut) {
                for d in devices.iter_mut() {
                    *d = d.get("id").cloned().unwrap_or(Value::Null);
                }
            }
            keep_top_sources(f, "cloud_sources");
        }
    }
    if let Some(users) = data.get_mut("users").and_then(Value::as_array_mut) {
        for u in users {
            for d in u.get_mut("devices").and_then(Value::as_array_mut).into_iter().flatten() {
                keep_top_sources(d, "sources");
            }
        }
    }
    let kinds = FindingKind::ALL
        .iter()
        .map(|k| serde_json::json!({"kind": k.key(), "meaning": k.meaning(), "severity": k.severity().key()}));
    data["finding_kinds"] = Value::Array(kinds.collect());

    let subtitle = format!(
        "{} file(s), {} line(s), {} to {}",
        s.files,
        num(s.lines),
        short_time(s.first_seen.as_deref()),
        short_time(s.last_seen.as_deref())
    );
    page.finish("audit", &subtitle, data)
}

/// Source addresses shown per device or finding; the JSON report has them all.
const MAX_SOURCES_SHOWN: usize = 8;

/// Keep the busiest sources of `obj[key]` and count the others in `{key}_more`,
/// so the page stays small for thousands of users.
fn keep_top_sources(obj: &mut Value, key: &str) {
    let Some(list) = obj.get_mut(key).and_then(Value::as_array_mut) else { return };
    if list.len() <= MAX_SOURCES_SHOWN {
        return;
    }
    list.sort_by(|a, b| b["requests"].as_u64().cmp(&a["requests"].as_u64()));
    let more = list.len() - MAX_SOURCES_SHOWN;
    list.truncate(MAX_SOURCES_SHOWN);
    obj[format!("{key}_more")] = Value::from(more);
}

/// Bucket width in hours so that the range fits in [`MAX_BARS`].
fn bucket_hours(first: i64, last: i64) -> i64 {
    let span = last - first + 1;
    [1, 24, 168, 24 * 28].into_iter().find(|w| (span + w - 1) / w <= MAX_BARS).unwrap_or(24 * 365)
}

fn bucket_label(hour: i64, width: i64) -> String {
    let t = w3c::time::format_rfc3339(hour * 3600);
    // 2026-11-02T13:00:00Z
    if width < 24 {
        format!("{} {}", &t[5..10], &t[11..16])
    } else {
        t[..10].to_string()
    }
}

/// Stacked bars of requests per time bucket, one colour per client.
fn timeline_svg(points: &[(i64, u16, u64)], catalog: &Catalog) -> String {
    let (Some(first), Some(last)) = (points.iter().map(|p| p.0).min(), points.iter().map(|p| p.0).max()) else {
        return "<p class=\"empty\">No timestamps in the logs.</p>".into();
    };
    let width = bucket_hours(first, last);
    let start = first.div_euclid(width);
    let buckets = (last.div_euclid(width) - start + 1) as usize;

    let mut totals: BTreeMap<u16, u64> = BTreeMap::new();
    for (_, c, n) in points {
        *totals.entry(*c).or_default() += n;
    }
    let mut ranked: Vec<(u16, u64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let shown: Vec<u16> = ranked.iter().take(MAX_SERIES).map(|r| r.0).collect();
    let series = shown.len() + usize::from(ranked.len() > MAX_SERIES);
    let mut grid = vec![vec![0u64; series]; buckets];
    for (h, c, n) in points {
        let b = (h.div_euclid(width) - start) as usize;
        let s = shown.iter().position(|x| x == c).unwrap_or(MAX_SERIES);
        grid[b][s] += n;
    }
    let names: Vec<String> = (0..series)
        .map(|s| match shown.get(s) {
            Some(c) => catalog.get(ClientId(*c)).name.clone(),
            None => "other clients".to_string(),
        })
        .collect();
    let max = grid.iter().map(|b| b.iter().sum::<u64>()).max().unwrap_or(0).max(1);
    let top = nice_ceiling(max);

    let (w, h, left, right, top_pad, bottom) = (960.0, 280.0, 60.0, 12.0, 12.0, 36.0);
    let plot_w = w - left - right;
    let plot_h = h - top_pad - bottom;
    let bar_w = plot_w / buckets as f64;
    let gap = if bar_w > 4.0 { 1.0 } else { 0.0 };
    let unit = match width {
        1 => "hour",
        24 => "day",
        168 => "week",
        _ => "period",
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-label=\"Requests per {unit} by client\">"
    );
    for i in 0..=4 {
        let v = top * i / 4;
        let y = top_pad + plot_h - plot_h * (v as f64 / top as f64);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 6.0,
            y + 4.0,
            num(v)
        );
    }
    for (b, stack) in grid.iter().enumerate() {
        let x = left + bar_w * b as f64;
        let label = bucket_label((start + b as i64) * width, width);
        let mut y = top_pad + plot_h;
        for (s, n) in stack.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let bh = plot_h * (*n as f64 / top as f64);
            y -= bh;
            let _ = write!(
                out,
                "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{bh:.2}\" fill=\"{}\"><title>{} \u{b7} {}: {}</title></rect>",
                (bar_w - gap).max(0.5),
                PALETTE[s.min(PALETTE.len() - 1)],
                escape(&label),
                escape(&names[s]),
                num(*n)
            );
        }
    }
    let every = buckets.div_ceil(8).max(1);
    for b in (0..buckets).step_by(every) {
        let x = left + bar_w * b as f64;
        let label = bucket_label((start + b as i64) * width, width);
        let _ = write!(out, "<text class=\"axis\" x=\"{x:.1}\" y=\"{}\">{}</text>", h - bottom + 16.0, escape(&label));
    }
    out.push_str("</svg><div class=\"legend\">");
    for (s, name) in names.iter().enumerate() {
        let total: u64 = grid.iter().map(|b| b[s]).sum();
        let _ = write!(
            out,
            "<span><span class=\"sw\" style=\"background:{}\"></span>{} ({})</span>",
            PALETTE[s.min(PALETTE.len() - 1)],
            escape(name),
            num(total)
        );
    }
    let _ = write!(out, "<span class=\"muted\">one bar per {unit}, UTC</span></div></div>");
    out
}

fn nice_ceiling(n: u64) -> u64 {
    let mut step = 1u64;
    while step * 10 < n {
        step *= 10;
    }
    for m in [1, 2, 4, 5, 10] {
        if step * m >= n {
            return step * m;
        }
    }
    step * 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(escape("<a href=\"x\" b='y'>&</a>"), "&lt;a href=&quot;x&quot; b=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
    }

    #[test]
    fn script_json_cannot_close_the_element() {
        let v = serde_json::json!({"ua": "</script><script>alert(1)</script>", "x": "<!--"});
        let text = script_json(&v);
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }

    #[test]
    fn bucket_width_fits_the_range() {
        assert_eq!(bucket_hours(0, 71), 1);
        assert_eq!(bucket_hours(0, 24 * 30), 24);
        assert_eq!(bucket_hours(0, 24 * 400), 168);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(1234), 2000);
        assert_eq!(nice_ceiling(400), 400);
    }

    #[test]
    fn numbers_group_thousands() {
        assert_eq!(num(0), "0");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(num(100), "100");
    }
}
