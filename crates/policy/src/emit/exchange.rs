//! Exchange Management Shell: EWS access (Set-OrganizationConfig,
//! Set-CASMailbox), ActiveSync device access rules and organization default,
//! per-mailbox device lists and protocol switches, and authentication
//! policies (New-AuthenticationPolicy, Set-User), and Client Access Rules for
//! the admin center and remote PowerShell (see `car`).

use crate::blocks::{AppPolicy, AuthBlock, AuthProtocol, EwsSettings, MailboxBlock};
use crate::emit::{car, common_blockers, cond_kind, is_user_rule, Output, Unexpressible};
use crate::model::{Action, Cond, Policy, TextMode};
use exchange::Protocol;

/// The `Set-CASMailbox` parameter and value that turn `protocol` off for
/// one mailbox, if there is one. MAPI over HTTP alone is `MapiHttpEnabled
/// $false`: `MAPIEnabled $false` would also cut Outlook on the LAN.
pub fn mailbox_switch(protocol: Protocol) -> Option<(&'static str, &'static str)> {
    Some(match protocol {
        Protocol::ActiveSync => ("ActiveSyncEnabled", "$false"),
        Protocol::Ews => ("EwsEnabled", "$false"),
        Protocol::Owa => ("OWAEnabled", "$false"),
        Protocol::Mapi => ("MapiHttpEnabled", "$false"),
        Protocol::Rpc => ("MAPIBlockOutlookRpcHttp", "$true"),
        _ => return None,
    })
}

/// A PowerShell single-quoted string.
pub fn quote(s: &str) -> String {
    q(s)
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn b(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "$true",
        Some(false) => "$false",
        None => "$null",
    }
}

/// Create an object if `get` finds none, else bring it to the same state,
/// so that the script can be run again: after editing the policy, or after
/// it stopped half-way. A `New-` of an object that exists is an error.
pub(crate) fn create_or_set(get: &str, new: &str, set: &str) -> String {
    format!("if (-not ({get} -ErrorAction SilentlyContinue)) {{\n    {new}\n}} else {{\n    {set}\n}}\n")
}

/// An ActiveSync device access rule, created or, when one for the same
/// characteristic and string exists (Exchange names it `QueryString
/// (Characteristic)`), given this access level (the only thing
/// `Set-ActiveSyncDeviceAccessRule` can change).
fn device_rule(characteristic: &str, query: &str, level: &str) -> String {
    let id = q(&format!("{query} ({characteristic})"));
    create_or_set(
        &format!("Get-ActiveSyncDeviceAccessRule -Identity {id}"),
        &format!(
            "New-ActiveSyncDeviceAccessRule -Characteristic {characteristic} -QueryString {} -AccessLevel {level}",
            q(query)
        ),
        &format!("Set-ActiveSyncDeviceAccessRule -Identity {id} -AccessLevel {level}"),
    )
}

fn list(v: &Option<Vec<String>>) -> String {
    match v {
        Some(l) if !l.is_empty() => format!("@({})", l.iter().map(|s| q(s)).collect::<Vec<_>>().join(",")),
        _ => "$null".into(),
    }
}

fn ews_params(s: &EwsSettings, all: bool) -> String {
    let mut p = String::new();
    for (name, v) in [
        ("EwsEnabled", s.ews_enabled),
        ("EwsAllowOutlook", s.allow_outlook),
        ("EwsAllowMacOutlook", s.allow_mac_outlook),
        ("EwsAllowEntourage", s.allow_entourage),
    ] {
        if all || v.is_some() {
            p.push_str(&format!(" -{name} {}", b(v)));
        }
    }
    if let Some(pol) = s.application_access_policy {
        p.push_str(&format!(" -EwsApplicationAccessPolicy {}", pol.name()));
        let param = match pol {
            AppPolicy::EnforceAllowList => "EwsAllowList",
            AppPolicy::EnforceBlockList => "EwsBlockList",
        };
        p.push_str(&format!(" -{param} {}", list(&s.list)));
    }
    p
}

/// A `[[rule]]` as shell commands, or why not.
fn from_rule(policy: &Policy, idx: usize) -> Result<String, String> {
    let r = &policy.rules()[idx];
    if let Some(why) = common_blockers(policy, idx, "Exchange") {
        return Err(why);
    }
    if !r.unless.is_empty() {
        return Err("Exchange mailbox and device settings have no exceptions (unless)".into());
    }
    let mut protocols: Option<&Vec<Protocol>> = None;
    let (mut users, mut ids, mut chars) = (None, None, Vec::new());
    for c in &r.conditions {
        match c {
            Cond::Protocol(p) => protocols = Some(p),
            Cond::User(set) => {
                users = Some(set.plain_names().ok_or("Exchange settings name mailboxes: user patterns and group files cannot be expressed")?)
            }
            Cond::DeviceId(v) => ids = Some(v),
            Cond::DeviceType(v) => chars.extend(v.iter().map(|s| ("DeviceType", s.clone()))),
            Cond::UserAgent { case_sensitive: false, items } if items.iter().all(|(m, _)| *m == TextMode::Exact) => {
                chars.extend(items.iter().map(|(_, s)| ("UserAgent", s.clone())))
            }
            Cond::UserAgent { .. } => {
                return Err("ActiveSync device access rules match exact strings only; a user-agent substring or prefix cannot be expressed".into())
            }
            Cond::Auth(_) => {
                return Err("authentication type: Exchange 2019 CU2 and later block Basic per protocol with \
                    authentication policies (New-AuthenticationPolicy -BlockLegacyAuth...), which casguard \
                    does not write"
                    .into())
            }
            other => return Err(format!("{} conditions have no Exchange equivalent", cond_kind(other))),
        }
    }
    let only_eas = protocols.is_some_and(|p| p == &[Protocol::ActiveSync]);
    let mut out = String::new();
    if let Some(ids) = ids {
        let users = users.ok_or("blocked device ids are per mailbox: the rule must name its users")?;
        if !only_eas || !chars.is_empty() {
            return Err("a device-id block needs protocol = \"activesync\" and no other device condition".into());
        }
        let ids = ids.iter().map(|s| q(s)).collect::<Vec<_>>().join(",");
        for u in users {
            out.push_str(&format!("Set-CASMailbox -Identity {} -ActiveSyncBlockedDeviceIDs @{{Add={ids}}}\n", q(u)));
        }
        return Ok(out);
    }
    if !chars.is_empty() {
        if !only_eas || users.is_some() {
            return Err(
                "device access rules apply to ActiveSync for every mailbox: use protocol = \"activesync\" and no user"
                    .into(),
            );
        }
        for (c, s) in chars {
            out.push_str(&device_rule(c, &s, "Block"));
        }
        return Ok(out);
    }
    if let (Some(users), Some(ps)) = (users, protocols) {
        let mut params = String::new();
        for p in ps {
            let Some((name, value)) = mailbox_switch(*p) else {
                return Err(format!("protocol '{}' cannot be turned off per mailbox", p.key()));
            };
            params.push_str(&format!(" -{name} {value}"));
        }
        for u in users {
            out.push_str(&format!("Set-CASMailbox -Identity {}{params}\n", q(u)));
        }
        return Ok(out);
    }
    Err("no Exchange setting denies exactly these requests".into())
}

fn mailbox_switches(s: &mut String, m: &MailboxBlock) {
    s.push_str("\n# Per-mailbox protocol switches (Set-CASMailbox); MapiHttpEnabled $false leaves Outlook Anywhere\n");
    if let Some(v) = m.mapi_http_enabled {
        s.push_str(&format!("Set-OrganizationConfig -MapiHttpEnabled {}\n", b(Some(v))));
    }
    for (user, switches) in &m.mailboxes {
        let params: String = switches.set().iter().map(|(n, v)| format!(" -{n} {}", b(Some(*v)))).collect();
        if !params.is_empty() {
            s.push_str(&format!("Set-CASMailbox -Identity {}{params}\n", q(&user[0])));
        }
    }
}

fn auth_policies(s: &mut String, a: &AuthBlock) {
    s.push_str(
        "\n# Authentication policies (Exchange 2019 CU2 and later; \"legacy\" is Basic, Digest, NTLM and Kerberos)\n",
    );
    for p in &a.policies {
        // New- takes the switches that are on; Set- says every one, on or
        // off, so that a policy edited since the last run loses what it
        // no longer blocks. BlockModernAuth* (CU13 and later) only when the
        // policy uses them, so that earlier CUs can run it.
        let (mut on, mut every) = (String::new(), String::new());
        let modern = !p.block_modern.is_empty();
        for (kind, blocked, write) in [("Legacy", &p.block_legacy, true), ("Modern", &p.block_modern, modern)] {
            for x in AuthProtocol::ALL {
                let b = blocked.contains(&x);
                if b {
                    on.push_str(&format!(" -Block{kind}Auth{}", x.name()));
                }
                if write {
                    every.push_str(&format!(" -Block{kind}Auth{}:{}", x.name(), if b { "$true" } else { "$false" }));
                }
            }
        }
        let name = q(&p.name);
        s.push_str(&create_or_set(
            &format!("Get-AuthenticationPolicy -Identity {name}"),
            &format!("New-AuthenticationPolicy -Name {name}{on}"),
            &format!("Set-AuthenticationPolicy -Identity {name}{every}"),
        ));
    }
    if let Some(d) = &a.default {
        s.push_str(&format!("Set-OrganizationConfig -DefaultAuthenticationPolicy {}\n", q(d)));
    }
    for (user, policy) in &a.users {
        s.push_str(&format!("Set-User -Identity {} -AuthenticationPolicy {}\n", q(&user[0]), q(policy)));
    }
}

/// Emit `policy` as Exchange Management Shell commands (`exchange.ps1`).
pub fn emit(policy: &Policy) -> Output {
    let mut s = format!("# casguard: Exchange Management Shell commands for {}\n", policy.origin());
    let mut unexpressible = Vec::new();
    let blocks = &policy.blocks;
    if let Some(ews) = &blocks.ews {
        s.push_str("\n# EWS application access (org-wide; mailbox settings override it)\n");
        s.push_str(&format!("Set-OrganizationConfig{}\n", ews_params(&ews.org, true)));
        for (user, settings) in &ews.users {
            s.push_str(&format!("Set-CASMailbox -Identity {}{}\n", q(&user[0]), ews_params(settings, false)));
        }
    }
    if let Some(d) = &blocks.device_access {
        s.push_str("\n# ActiveSync device access (QueryString is matched exactly)\n");
        if let Some(l) = d.default_access_level {
            s.push_str(&format!("Set-ActiveSyncOrganizationSettings -DefaultAccessLevel {}\n", l.name()));
        }
        for (c, qs, l) in &d.rules {
            s.push_str(&device_rule(c.name(), qs, l.name()));
        }
        for (user, allowed, blocked) in &d.personal {
            let mut p = String::new();
            if !allowed.is_empty() {
                p.push_str(&format!(
                    " -ActiveSyncAllowedDeviceIDs @{{Add={}}}",
                    allowed.iter().map(|x| q(x)).collect::<Vec<_>>().join(",")
                ));
            }
            if !blocked.is_empty() {
                p.push_str(&format!(
                    " -ActiveSyncBlockedDeviceIDs @{{Add={}}}",
                    blocked.iter().map(|x| q(x)).collect::<Vec<_>>().join(",")
                ));
            }
            if !p.is_empty() {
                s.push_str(&format!("Set-CASMailbox -Identity {}{p}\n", q(&user[0])));
            }
        }
    }
    if let Some(m) = &blocks.mailbox {
        mailbox_switches(&mut s, m);
    }
    if let Some(a) = &blocks.auth {
        auth_policies(&mut s, a);
    }
    // IIS settings, in this order: reported, not written.
    const FILTERING: &str = "IIS request filtering is an IIS setting; emit it with --target iis";
    let iis_only = (blocks.iis_filter.iter().map(|f| (format!("iis_filter: {}", f.name), FILTERING)))
        .chain(blocks.ip_restrictions.iter().map(|ip| {
            (format!("ip_restrictions {}", ip.path), "IP restrictions are an IIS setting; emit them with --target iis")
        }))
        .chain(blocks.request_filtering.iter().map(|r| (format!("request_filtering {}", r.path), FILTERING)))
        .chain(blocks.url_rewrite.iter().map(|r| {
            let path = r.path.as_deref().unwrap_or("global");
            (format!("url_rewrite {path}"), "URL Rewrite is an IIS setting; emit it with --target iis")
        }));
    for (rule, reason) in iis_only {
        unexpressible.push(Unexpressible { rule, reason: reason.into() });
    }
    let mut rules = String::new();
    let mut priority = 0;
    for (i, r) in policy.rules().iter().enumerate() {
        if !is_user_rule(r) || r.action == Action::Allow {
            continue;
        }
        let result = if car::touches_car_protocols(r) {
            let res = car::from_rule(policy, i, priority + 1);
            priority += u32::from(res.is_ok());
            res
        } else {
            from_rule(policy, i).map_err(|reason| {
                if car::tests_address(r) {
                    format!(
                        "{reason}; a Client Access Rule is not written either: Exchange 2019 on premises \
                         ignores them for every protocol but ExchangeAdminCenter and RemotePowerShell"
                    )
                } else {
                    reason
                }
            })
        };
        match result {
            Ok(cmds) => {
                rules.push_str(&format!("# rule '{}'\n{cmds}", r.name));
            }
            Err(reason) => unexpressible.push(Unexpressible { rule: r.name.clone(), reason }),
        }
    }
    if !rules.is_empty() {
        s.push('\n');
        s.push_str(&rules);
    }
    if policy.default_action() == Action::Deny {
        unexpressible.push(Unexpressible {
            rule: "default".into(),
            reason: "Exchange has no setting that denies every request not matched by a rule".into(),
        });
    }
    Output { files: vec![("exchange.ps1".into(), s)], unexpressible }
}
