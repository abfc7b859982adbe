//! What is in force, written as a policy file: one block per mechanism, in
//! the words of the cmdlets and configuration it came from.

use std::fmt::Write;

use super::iis::IisInForce;
use super::{InForce, Notes};
use crate::blocks::{RewriteAction, RewriteRule};

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(v: &[String]) -> String {
    format!("[{}]", v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "))
}

fn opt_bool(out: &mut String, key: &str, v: Option<bool>) {
    if let Some(v) = v {
        let _ = writeln!(out, "{key} = {v}");
    }
}

pub(crate) fn policy_text(
    f: &InForce,
    iis: &IisInForce,
    folder: &str,
    sources: &[(String, String)],
    notes: &Notes,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# What is in force, as read by `casguard policy import` from {folder}:");
    for (file, what) in sources {
        let _ = writeln!(s, "#   {file}: {what}");
    }
    if !notes.inexact.is_empty() {
        let _ = writeln!(s, "# Not imported exactly ({}; also listed on stderr):", notes.inexact.len());
        for n in &notes.inexact {
            let _ = writeln!(s, "#   {}: {}: {}", n.source, n.what, n.reason.replace('\n', " "));
        }
    }
    s.push_str("\ndefault = \"allow\"\n");
    ews(&mut s, f);
    devices(&mut s, f);
    mailboxes(&mut s, f);
    auth(&mut s, f);
    iis_blocks(&mut s, iis);
    s
}

fn ews(s: &mut String, f: &InForce) {
    let users: Vec<_> = f.mailboxes.iter().filter(|m| m.ews != Default::default()).collect();
    if f.ews_org.is_none() && users.is_empty() {
        return;
    }
    s.push_str(
        "\n# EWS application access: Get-OrganizationConfig, then each mailbox's own (Get-CASMailbox)\n[ews_access]\n",
    );
    let settings = |s: &mut String, e: &crate::blocks::EwsSettings| {
        opt_bool(s, "ews_enabled", e.ews_enabled);
        opt_bool(s, "allow_outlook", e.allow_outlook);
        opt_bool(s, "allow_mac_outlook", e.allow_mac_outlook);
        opt_bool(s, "allow_entourage", e.allow_entourage);
        if let Some(p) = e.application_access_policy {
            let _ = writeln!(s, "application_access_policy = {}", q(p.name()));
            let _ = writeln!(s, "list = {}", list(e.list.as_deref().unwrap_or_default()));
        }
    };
    if let Some(org) = &f.ews_org {
        settings(s, org);
    }
    for m in users {
        let _ = writeln!(s, "[[ews_access.user]]\nuser = {}", list(&m.names));
        settings(s, &m.ews);
    }
}

fn devices(s: &mut String, f: &InForce) {
    let personal: Vec<_> = f.mailboxes.iter().filter(|m| !m.allowed.is_empty() || !m.blocked.is_empty()).collect();
    if f.device_default.is_none() && f.device_rules.is_empty() && personal.is_empty() {
        return;
    }
    s.push_str("\n# ActiveSync device access: Get-ActiveSyncOrganizationSettings, Get-ActiveSyncDeviceAccessRule, Get-CASMailbox\n[device_access]\n");
    if let Some(d) = f.device_default {
        let _ = writeln!(s, "default_access_level = {}", q(d.name()));
    }
    for (c, qs, l) in &f.device_rules {
        let _ = writeln!(
            s,
            "[[device_access.rule]]\ncharacteristic = {}\nquery_string = {}\naccess_level = {}",
            q(c.name()),
            q(qs),
            q(l.name())
        );
    }
    for m in personal {
        let _ = writeln!(s, "[[device_access.personal]]\nuser = {}", list(&m.names));
        if !m.allowed.is_empty() {
            let _ = writeln!(s, "allowed_device_ids = {}", list(&m.allowed));
        }
        if !m.blocked.is_empty() {
            let _ = writeln!(s, "blocked_device_ids = {}", list(&m.blocked));
        }
    }
}

fn mailboxes(s: &mut String, f: &InForce) {
    if f.mailboxes.is_empty() && f.mapi_http_org.is_none() {
        return;
    }
    s.push_str("\n# Protocol switches of every mailbox (Get-CASMailbox), and the organization's MapiHttpEnabled\n[mailbox_protocols]\n");
    opt_bool(s, "mapi_http_enabled", f.mapi_http_org);
    s.push_str("mailbox = [\n");
    for m in &f.mailboxes {
        let w = &m.switches;
        let mut parts = vec![format!("user = {}", list(&m.names))];
        for (k, v) in [
            ("activesync_enabled", w.activesync_enabled),
            ("owa_enabled", w.owa_enabled),
            ("owa_for_devices_enabled", w.owa_for_devices_enabled),
            ("mapi_enabled", w.mapi_enabled),
            ("mapi_http_enabled", w.mapi_http_enabled),
            ("mapi_block_outlook_rpc_http", w.mapi_block_outlook_rpc_http),
            ("pop_enabled", w.pop_enabled),
            ("imap_enabled", w.imap_enabled),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k} = {v}"));
            }
        }
        let _ = writeln!(s, "  {{ {} }},", parts.join(", "));
    }
    s.push_str("]\n");
}

fn auth(s: &mut String, f: &InForce) {
    if f.auth_policies.is_empty() {
        return;
    }
    s.push_str("\n# Authentication policies: Get-AuthenticationPolicy, Get-OrganizationConfig (default), Get-User\n[auth_policies]\n");
    if let Some(d) = &f.default_auth_policy {
        let _ = writeln!(s, "default = {}", q(d));
    }
    for p in &f.auth_policies {
        let names = |v: &[crate::blocks::AuthProtocol]| v.iter().map(|a| a.name().to_string()).collect::<Vec<_>>();
        let _ = writeln!(s, "[[auth_policies.policy]]\nname = {}", q(&p.name));
        let _ = writeln!(
            s,
            "block_legacy = {}\nblock_modern = {}",
            list(&names(&p.block_legacy)),
            list(&names(&p.block_modern))
        );
    }
    for (user, policy) in &f.auth_users {
        let _ = writeln!(s, "[[auth_policies.user]]\nuser = {}\npolicy = {}", list(user), q(policy));
    }
}

fn rewrite_rule(s: &mut String, table: &str, r: &RewriteRule) {
    let _ = writeln!(s, "[[{table}.rule]]\nname = {}\nbase = {}\nurl = {}", q(&r.name), q(&r.base), q(&r.url));
    let _ = writeln!(s, "syntax = {}\nignore_case = {}\nnegate = {}", q(r.syntax.name()), r.ignore_case, r.negate);
    if r.match_any {
        s.push_str("logical_grouping = \"MatchAny\"\n");
    }
    if !r.conditions.is_empty() {
        s.push_str("conditions = [\n");
        for c in &r.conditions {
            let _ = writeln!(
                s,
                "  {{ input = {}, pattern = {}, negate = {}, ignore_case = {} }},",
                q(&c.input),
                q(&c.pattern),
                c.negate,
                c.ignore_case
            );
        }
        s.push_str("]\n");
    }
    match &r.action {
        RewriteAction::None => s.push_str("action = \"None\"\n"),
        RewriteAction::AbortRequest => s.push_str("action = \"AbortRequest\"\n"),
        RewriteAction::CustomResponse { status, substatus } => {
            let _ = writeln!(s, "action = \"CustomResponse\"\nstatus = {status}\nsubstatus = {substatus}");
        }
        RewriteAction::Redirect { url, status, append_query } => {
            let _ = writeln!(s, "action = \"Redirect\"\nredirect_url = {}\nstatus = {status}", q(url));
            if !append_query {
                s.push_str("append_query_string = false\n");
            }
        }
    }
    let _ = writeln!(s, "stop_processing = {}", r.stop_processing);
}

fn iis_blocks(s: &mut String, iis: &IisInForce) {
    for ip in &iis.ip {
        let _ = writeln!(s, "\n# IP and domain restrictions in force at {}\n[[ip_restrictions]]", ip.path);
        let _ = writeln!(s, "path = {}\nallow_unlisted = {}", q(&ip.path), ip.allow_unlisted);
        let _ = writeln!(s, "deny_action = {}\nenable_proxy_mode = {}", q(ip.deny_action.name()), ip.enable_proxy_mode);
        let e: Vec<String> =
            ip.entries.iter().map(|(n, a)| format!("{{ cidr = {}, allowed = {a} }}", q(&n.to_string()))).collect();
        let _ = writeln!(s, "entries = [{}]", e.join(", "));
    }
    for r in &iis.filtering {
        let _ = writeln!(s, "\n# Request filtering in force at {}\n[[request_filtering]]", r.path);
        let _ = writeln!(s, "path = {}\nenabled = {}", q(&r.path), r.enabled);
        if !r.enabled {
            continue;
        }
        let _ = writeln!(s, "allow_unlisted_extensions = {}", r.allow_unlisted_extensions);
        let e: Vec<String> =
            r.extensions.iter().map(|(x, a)| format!("{{ extension = {}, allowed = {a} }}", q(x))).collect();
        let _ = writeln!(s, "file_extensions = [{}]", e.join(", "));
        let _ = writeln!(s, "hidden_segments = {}", list(&r.hidden_segments));
        let _ = writeln!(s, "deny_url_sequences = {}", list(&r.deny_url_sequences));
        let _ = writeln!(s, "deny_query_string_sequences = {}", list(&r.deny_query_string_sequences));
        for f in &r.rules {
            let headers: Vec<String> = f.headers.iter().map(|h| h.name().to_string()).collect();
            let _ = writeln!(s, "[[request_filtering.rule]]\nname = {}\nscan_headers = {}", q(&f.name), list(&headers));
            let _ = writeln!(s, "scan_url = {}\nscan_query_string = {}", f.scan_url, f.scan_query_string);
            let _ = writeln!(s, "deny_strings = {}\napplies_to = {}", list(&f.deny_strings), list(&f.applies_to));
        }
    }
    for set in &iis.rewrite {
        match &set.path {
            None => {
                s.push_str("\n# URL Rewrite global rules (applicationHost.config)\n[[url_rewrite]]\nglobal = true\n")
            }
            Some(p) => {
                let _ = writeln!(s, "\n# URL Rewrite rules in force at {p}\n[[url_rewrite]]\npath = {}", q(p));
            }
        }
        for r in &set.rules {
            rewrite_rule(s, "url_rewrite", r);
        }
    }
}
