//! The report as text for an 80-column terminal.

use std::fmt::Write as _;

use crate::findings::FindingKind;
use crate::report::{Finding, Report};

const WIDTH: usize = 80;

/// Cut `text` to `width` characters, marking the cut with `…`.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Cut `text` to `width` characters from the front, keeping its end (for paths).
pub fn fit_tail(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_string();
    }
    let mut out = String::from("…");
    out.extend(text.chars().skip(count - width.saturating_sub(1)));
    out
}

/// Break `text` into lines of at most `width` characters, at spaces where possible.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let needed =
            if line.is_empty() { word.chars().count() } else { line.chars().count() + 1 + word.chars().count() };
        if needed > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > width {
            let head: String = line.chars().take(width).collect();
            let rest: String = line.chars().skip(width).collect();
            lines.push(head);
            line = rest;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Each note after a blank line, wrapped to 72 columns under `note: `.
pub(crate) fn notes(out: &mut String, notes: &[String]) {
    for note in notes {
        let _ = writeln!(out);
        for (i, line) in wrap(note, 72).iter().enumerate() {
            let _ = writeln!(out, "{}{line}", if i == 0 { "note: " } else { "      " });
        }
    }
}

pub(crate) fn heading(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n{title}\n{}", "─".repeat(title.chars().count()));
}

fn percent(n: u64, total: u64) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / total as f64)
    }
}

/// Two tables side by side would not fit 80 columns with long names; one
/// column of `name count share` rows does.
fn counts(out: &mut String, rows: &[(String, u64)], total: u64) {
    for (name, n) in rows {
        let _ = writeln!(out, "  {:<40} {:>14} {:>8}", fit(name, 40), n, percent(*n, total));
    }
}

fn finding_lines(out: &mut String, finding: &Finding) {
    let _ = writeln!(out, "    {}", fit(&finding.summary, WIDTH - 4));
    if let (Some(first), Some(last)) = (&finding.first_seen, &finding.last_seen) {
        let _ = writeln!(out, "      seen {first} .. {last}");
    }
    for device in finding.devices.iter().take(3) {
        let mut label =
            if device.device_type.is_empty() { String::new() } else { format!(" ({})", device.device_type) };
        if let Some(access) = &device.access {
            label += &format!(" ActiveSync: {}", access.state);
        }
        let _ = writeln!(out, "      device {}", fit(&format!("{}{label}", device.id), WIDTH - 13));
        let mut networks: Vec<&str> = device.sources.iter().map(|s| s.network.as_str()).collect();
        networks.sort_unstable();
        networks.dedup();
        let ips: Vec<&str> = device.sources.iter().take(2).map(|s| s.ip.as_str()).collect();
        let more = if device.sources.len() > 2 { format!(" +{}", device.sources.len() - 2) } else { String::new() };
        let _ = writeln!(
            out,
            "        {}",
            fit(&format!("from {}{more} [{}]", ips.join(", "), networks.join(", ")), WIDTH - 8)
        );
    }
    if finding.devices.len() > 3 {
        let _ = writeln!(out, "      … and {} more device(s)", finding.devices.len() - 3);
    }
    if let (Some(source), Some(sample)) = (&finding.source, &finding.sample) {
        let _ = writeln!(out, "      from {} [{}]", source.ip, source.network);
        let _ = writeln!(out, "      {}", fit(sample, WIDTH - 6));
    }
    if !finding.outcomes.is_empty() {
        let outcomes: Vec<String> = finding.outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "      outcome: {}", fit(&outcomes.join(", "), WIDTH - 15));
    }
    let list = |out: &mut String, label: &str, items: &[String]| {
        if !items.is_empty() {
            let _ = writeln!(out, "      {label}: {}", fit(&items.join(", "), WIDTH - 8 - label.len()));
        }
    };
    if finding.paths.len() > 1 {
        list(out, "paths", &finding.paths);
    }
    list(out, "users", &finding.users);
    list(out, "as", &finding.impersonated);
    if finding.source.is_none() {
        let sources: Vec<String> = finding.sources.iter().map(|s| format!("{} [{}]", s.ip, s.network)).collect();
        list(out, "from", &sources);
    }
}

pub fn render(report: &Report, top_users: usize) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let _ = writeln!(out, "casguard audit: {} file(s), {} lines", s.files, s.lines);
    if let (Some(first), Some(last)) = (&s.first_seen, &s.last_seen) {
        let _ = writeln!(out, "from {first} to {last}");
    }

    heading(&mut out, "Summary");
    let rows = [
        ("people's requests", s.requests),
        ("  of which anonymous", s.anonymous),
        ("back-end duplicates (not counted)", s.backend_duplicates),
        ("IIS lines in HttpProxy too (not counted)", s.iis_duplicates),
        ("monitoring probes", s.probes),
        ("machine accounts", s.machine),
        ("attacks (detection rules)", s.attacks),
        ("failed sign-ins", s.failed_sign_ins),
        ("malformed lines (skipped)", s.malformed),
    ];
    for (name, n) in rows {
        let _ = writeln!(out, "  {name:<40} {n:>14}");
        if name.starts_with("attacks") {
            for (kind, n) in &s.attack_kinds {
                let _ = writeln!(out, "    {:<38} {n:>14}", format!("of which {kind}"));
            }
        }
    }
    let _ = writeln!(out, "  {:<40} {:>14}", "users", s.users);
    let _ = writeln!(out, "  {:<40} {:>14}", "devices and user agents", s.devices);
    for note in &report.notes {
        for (i, line) in wrap(note, WIDTH - 8).iter().enumerate() {
            let _ = writeln!(out, "  {}{line}", if i == 0 { "note: " } else { "      " });
        }
    }

    heading(&mut out, "Requests by protocol");
    let mut protocols: Vec<(String, u64)> = report.protocols.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    protocols.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts(&mut out, &protocols, s.requests);

    heading(&mut out, "Requests by client");
    let mut clients: Vec<(String, u64)> = report.clients.iter().map(|(k, n)| (k.clone(), *n)).collect();
    clients.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts(&mut out, &clients, s.requests);

    heading(&mut out, &format!("Findings ({})", report.findings.len()));
    if report.findings.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for kind in FindingKind::ALL {
        let findings: Vec<_> = report.findings.iter().filter(|f| f.kind == kind).collect();
        if findings.is_empty() {
            continue;
        }
        let head = format!("  {kind} ({}, {}): ", findings.len(), kind.severity().key());
        let _ = writeln!(out, "{head}{}", fit(kind.meaning(), WIDTH - head.chars().count()));
        for finding in findings {
            finding_lines(&mut out, finding);
        }
    }

    heading(&mut out, &format!("Top users (of {})", report.users.len()));
    let mut users: Vec<_> = report.users.iter().collect();
    users.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.user.cmp(&b.user)));
    let _ = writeln!(out, "  {:<24} {:>10} {:>5}  protocols", "user", "requests", "devs");
    for user in users.iter().take(top_users) {
        let protocols: Vec<&str> = user.protocols.keys().copied().collect();
        let _ = writeln!(
            out,
            "  {:<24} {:>10} {:>5}  {}",
            fit(&user.user, 24),
            user.requests,
            user.devices.len(),
            fit(&protocols.join(","), WIDTH - 46)
        );
    }

    if let Some(partnerships) = &report.partnerships {
        crate::partnerships::render_table(&mut out, partnerships, top_users);
    }

    if !report.malformed.is_empty() {
        heading(&mut out, "Malformed lines");
        for file in &report.malformed {
            let counts: Vec<String> = file.counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(out, "  {}", fit(&format!("{}: {}", file.file, counts.join(", ")), WIDTH - 2));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn wrap_keeps_every_word_within_width() {
        let text = "Provision requests would be denied; give --known-before or --inventory to see more";
        let lines = super::wrap(text, 20);
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        assert_eq!(super::wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn fit_tail_keeps_the_file_name() {
        assert_eq!(super::fit_tail("/a/very/long/path/policy.toml", 12), "…policy.toml");
        assert_eq!(super::fit_tail("short.toml", 12), "short.toml");
    }

    #[test]
    fn fit_cuts_on_characters() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("ab", 4), "ab");
        assert_eq!(fit("ééééé", 3).chars().count(), 3);
    }
}
