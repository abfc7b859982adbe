//! The posture as text for an 80-column terminal.

use std::collections::{BTreeMap, BTreeSet};

use super::{Door, PostureReport};

/// Users gated without a backdoor the table names.
const NAMES_SHOWN: usize = 20;

/// Commands of the unused doors the table shows.
const COMMANDS_SHOWN: usize = 12;

/// The short mark of a door in the table's matrix.
fn mark(door: &Door) -> String {
    let state = match door.state {
        "open" => "o",
        "lan-only" => "l",
        "gated" => "g",
        _ => "x",
    };
    if door.used {
        format!("{state}*")
    } else {
        state.to_string()
    }
}

/// The posture as text for an 80-column terminal.
pub fn render_table(report: &PostureReport) -> String {
    use crate::table::{fit, heading};
    use std::fmt::Write as _;
    let mut out = String::new();
    let s = &report.summary;
    let _ = writeln!(out, "casguard posture");
    let _ = writeln!(out, "policy {}", crate::table::fit_tail(&report.policy, 73));
    let _ = writeln!(
        out,
        "{} people's requests of {} user(s)\n{} open backdoor(s), {} door(s) open but unused",
        s.requests, s.users, s.backdoor_users, s.unused_doors
    );

    heading(&mut out, "Doors");
    let _ = writeln!(out, "  o open, l LAN only, g gated, x blocked; * used in the logs");
    let short = ["eas", "ews", "owa", "mapi", "rpc", "autod", "ps"];
    let mut head = format!("  {:<24}", "user");
    for name in short {
        let _ = write!(head, " {name:>6}");
    }
    let _ = writeln!(out, "{}", head.trim_end());
    for u in &report.users {
        let mut line = format!("  {:<24}", fit(&u.user, 24));
        for d in &u.doors {
            let _ = write!(line, " {:>6}", mark(d));
        }
        let _ = writeln!(out, "{line}");
    }

    // The mechanisms that close doors, with how many users' doors each closes.
    let mut mechanisms: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for u in &report.users {
        for d in &u.doors {
            if let Some(rule) = &d.blocked_by {
                mechanisms.entry(rule).or_default().insert(&u.user);
            }
            for rule in d.denied_by.keys() {
                mechanisms.entry(rule).or_default().insert(&u.user);
            }
        }
    }
    heading(&mut out, "Mechanisms that refuse");
    if mechanisms.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for (rule, users) in &mechanisms {
        let _ = writeln!(out, "  {:<62} {:>6} user(s)", fit(rule, 62), users.len());
    }

    outlook_mobile(&mut out, report);

    heading(&mut out, &format!("Open backdoors ({})", report.backdoors.len()));
    if report.backdoors.is_empty() {
        let _ = writeln!(out, "  none: no gated user reaches mail from a phone or a third-party client");
    }
    for b in &report.backdoors {
        let gate = &b.gated_by[0];
        let line = format!("{} ({}): {} {} denied by {}", b.user, b.level, gate.client, gate.protocol, gate.rule);
        let _ = writeln!(out, "  {}", fit(&line, 76));
        for e in b.evidence.iter().take(3) {
            let line = format!("reaches {} by {} from {} ({})", e.protocol, e.client, e.network, e.requests);
            let _ = writeln!(out, "      {}", fit(&line, 72));
        }
        if b.evidence.len() > 3 {
            let _ = writeln!(out, "      and {} more", b.evidence.len() - 3);
        }
    }
    if !report.gated_without_backdoor.is_empty() {
        let names = &report.gated_without_backdoor;
        let mut line = format!(
            "gated, only approved clients on other doors ({}): {}",
            names.len(),
            names.iter().take(NAMES_SHOWN).cloned().collect::<Vec<_>>().join(", ")
        );
        if names.len() > NAMES_SHOWN {
            line += ", …";
        }
        for (i, l) in crate::table::wrap(&line, 74).iter().enumerate() {
            let _ = writeln!(out, "{}{l}", if i == 0 { "  " } else { "    " });
        }
    }

    heading(&mut out, &format!("Open and unused ({})", report.unused.doors.len()));
    for (protocol, n) in &report.unused.per_protocol {
        let _ = writeln!(out, "  {protocol:<14} {n:>6} user(s)");
    }
    // A few lines as they are (never cut); all of them in json and csv (disable-unused.ps1).
    let shown: Vec<&String> =
        report.unused.commands.iter().filter(|c| c.chars().count() <= 78).take(COMMANDS_SHOWN).collect();
    for command in &shown {
        let _ = writeln!(out, "  {command}");
    }
    if report.unused.commands.len() > shown.len() {
        let more = report.unused.commands.len() - shown.len();
        let _ = writeln!(out, "  {more} more line(s): --format json, or csv (disable-unused.ps1)");
    }
    if report.unused.commands.iter().any(|c| crate::posture::closes_the_shell(c)) {
        let note = "note: Set-User -RemotePowerShellEnabled $false also closes the Exchange Management \
                    Shell, on the server too: keep remote PowerShell for every account that administers \
                    Exchange (disable-unused.ps1 writes those lines commented out)";
        for (i, l) in crate::table::wrap(note, 74).iter().enumerate() {
            let _ = writeln!(out, "{}{l}", if i == 0 { "  " } else { "        " });
        }
    }

    heading(&mut out, &format!("Basic authentication in use ({})", report.summary.basic_auth_requests));
    if report.basic_auth.is_empty() {
        let _ = writeln!(out, "  none seen");
    }
    for b in &report.basic_auth {
        let line = format!("{} by {}: {} request(s), {} user(s)", b.protocol, b.client, b.requests, b.users.len());
        let _ = writeln!(out, "  {}", fit(&line, 76));
    }
    crate::table::notes(&mut out, &report.notes);
    out
}

/// Outlook for iOS and Android by how it signs in: for how many users a new
/// device could sync from Microsoft's cloud, and who synced.
fn outlook_mobile(out: &mut String, report: &PostureReport) {
    use crate::table::heading;
    use std::fmt::Write as _;
    heading(out, "Outlook for iOS and Android (syncs from Microsoft's cloud)");
    for (sign_in, what) in [("basic", "Basic (password in the cloud)"), ("hma", "modern auth (tokens)")] {
        let doors: Vec<(&str, &super::OutlookMobileDoor)> = report
            .users
            .iter()
            .flat_map(|u| u.outlook_mobile.iter().filter(|d| d.sign_in == sign_in).map(|d| (u.user.as_str(), d)))
            .collect();
        let open = doors.iter().filter(|(_, d)| d.state == "open").count();
        let synced: Vec<&str> = doors.iter().filter(|(_, d)| d.reached > 0).map(|(u, _)| *u).collect();
        let refused = doors.iter().filter(|(_, d)| d.denied > 0).count();
        let _ = writeln!(
            out,
            "  {what:<30} open to {open}/{} users, synced {}, refused {refused}",
            doors.len(),
            synced.len()
        );
        if sign_in == "basic" && !synced.is_empty() {
            let mut line = format!(
                "synced with Basic: {}",
                synced.iter().take(NAMES_SHOWN).copied().collect::<Vec<_>>().join(", ")
            );
            if synced.len() > NAMES_SHOWN {
                line += ", …";
            }
            for (i, l) in crate::table::wrap(&line, 74).iter().enumerate() {
                let _ = writeln!(out, "{}{l}", if i == 0 { "    " } else { "      " });
            }
        }
        let mut blockers: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, d) in &doors {
            if let Some(rule) = &d.blocked_by {
                *blockers.entry(rule).or_default() += 1;
            }
        }
        for (rule, n) in blockers {
            let _ = writeln!(out, "    blocked by {} ({n})", crate::table::fit(rule, 60));
        }
    }
}
