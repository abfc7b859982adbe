//! Exchange mechanisms as rules: EWS access (organization and per-mailbox
//! settings), then ActiveSync device access in the order Exchange decides.

use std::collections::HashMap;
use std::sync::Arc;

use ::exchange::text::EwsPattern;
use ::exchange::Protocol;

use super::{add_user, names, rule, user_key, Ctx};
use crate::blocks::{AccessLevel, AppPolicy, Blocks, Characteristic, DeviceBlock, EwsBlock, EwsSettings};
use crate::model::{Action, Cond, Rule, RuleOrigin, TextMode, UserSet};
use crate::raw::*;
use crate::PolicyError;

const OUTLOOK_UA: [&str; 2] = ["Microsoft Office Outlook", "Microsoft Outlook"];

fn ua_contains_cs(values: &[&str]) -> Cond {
    Cond::UserAgent {
        case_sensitive: true,
        items: values.iter().map(|v| (TextMode::Contains, v.to_string())).collect(),
    }
}

pub(super) fn compile_ews(
    ctx: &Ctx,
    mut raw: RawEwsAccess,
    line: usize,
    rules: &mut Vec<Rule>,
    blocks: &mut Blocks,
) -> Result<(), PolicyError> {
    let status = ctx.status("ews_access status", &raw.status, 403)?;
    let org = raw.take_ews();
    let mut users = Vec::new();
    for mut u in raw.user {
        let s = u.take_ews();
        users.push((names(ctx, &u.user)?, s, ctx.line(&u.user.span()).unwrap_or(line)));
    }
    // Mailboxes with their own settings first, those with the same settings
    // under one rule; the organization's apply to everyone else.
    let mut groups: Vec<(&EwsSettings, Vec<&Vec<String>>, usize)> = Vec::new();
    for (user, s, uline) in &users {
        match groups.iter_mut().find(|(g, _, _)| *g == s) {
            Some(g) => g.1.push(user),
            None => groups.push((s, vec![user], *uline)),
        }
    }
    for (s, members, gline) in groups {
        let eff = s.over(&org);
        let label = match members.len() {
            1 => format!("ews_access ({})", members[0][0]),
            n => format!("ews_access ({} and {} more)", members[0][0], n - 1),
        };
        let mut set = UserSet::default();
        for names in &members {
            for n in names.iter() {
                add_user(&mut set, n);
            }
            set.shown.push(names[0].clone());
        }
        ews_scope(&eff, &label, vec![Cond::User(Arc::new(set))], Vec::new(), status, gline, rules);
    }
    let except: Vec<Vec<Cond>> = if users.is_empty() {
        Vec::new()
    } else {
        let mut set = UserSet::default();
        for (u, _, _) in &users {
            for n in u {
                add_user(&mut set, n);
            }
            set.shown.push(u[0].clone());
        }
        vec![vec![Cond::User(Arc::new(set))]]
    };
    ews_scope(&org, "ews_access", Vec::new(), except, status, line, rules);
    blocks.ews = Some(EwsBlock { org, users: users.into_iter().map(|(u, s, _)| (u, s)).collect() });
    Ok(())
}

/// Exchange's `CallerAccessAllowed` (exchange.md §3a) as deny rules, for
/// the requests EWS itself serves: a mailbox move's call to
/// `/EWS/MRSProxy.svc` goes to the Mailbox Replication Service, which
/// checks none of EWS's settings (only its admin roles).
fn ews_scope(
    s: &EwsSettings,
    label: &str,
    scope: Vec<Cond>,
    except: Vec<Vec<Cond>>,
    status: u16,
    line: usize,
    rules: &mut Vec<Rule>,
) {
    let mut base = vec![Cond::Protocol(vec![Protocol::Ews]), Cond::Not(Box::new(Cond::MrsProxy))];
    base.extend(scope);
    let mk = |name: String, conds: Vec<Cond>, unless: Vec<Vec<Cond>>, note: String| {
        let mut u = except.clone();
        u.extend(unless);
        rule(name, Action::Deny, status, 0, conds, u, RuleOrigin::EwsAccess, Some(note), line)
    };
    match s.ews_enabled {
        // Not configured: Exchange checks nothing else.
        None => return,
        Some(false) => {
            rules.push(mk(
                format!("{label}: EwsEnabled=false"),
                base,
                Vec::new(),
                "EwsEnabled is false: every EWS request is denied".into(),
            ));
            return;
        }
        Some(true) => {}
    }
    let outlook = ua_contains_cs(&OUTLOOK_UA);
    let mac = ua_contains_cs(&["MacOutlook"]);
    let ent = ua_contains_cs(&["Microsoft-Entourage"]);
    // Which switch applies is decided by the first user-agent test that matches.
    let branches: [(Option<bool>, &str, Vec<Cond>, &str); 3] = [
        (
            s.allow_outlook,
            "EwsAllowOutlook",
            vec![outlook.clone()],
            "'Microsoft Outlook' or 'Microsoft Office Outlook'",
        ),
        (
            s.allow_mac_outlook,
            "EwsAllowMacOutlook",
            vec![mac.clone(), Cond::Not(Box::new(outlook.clone()))],
            "'MacOutlook'",
        ),
        (
            s.allow_entourage,
            "EwsAllowEntourage",
            vec![ent, Cond::Not(Box::new(outlook)), Cond::Not(Box::new(mac))],
            "'Microsoft-Entourage'",
        ),
    ];
    let mut allowed_by_switch = Vec::new();
    for (value, name, branch, what) in &branches {
        match value {
            Some(false) => {
                let mut c = base.clone();
                c.extend(branch.iter().cloned());
                rules.push(mk(
                    format!("{label}: {name}=false"),
                    c,
                    Vec::new(),
                    format!("user agent contains {what} and {name} is false"),
                ));
            }
            Some(true) => allowed_by_switch.push(branch.clone()),
            None => {}
        }
    }
    let list = s.list.clone().unwrap_or_default();
    match s.application_access_policy {
        None => {}
        Some(AppPolicy::EnforceAllowList) => {
            let mut unless = allowed_by_switch;
            if !list.is_empty() {
                unless.push(vec![Cond::UserAgentEws(list.iter().map(|p| EwsPattern::new(p)).collect())]);
            }
            let note = if list.is_empty() {
                "EnforceAllowList with an empty list denies every EWS client not allowed by a switch".to_string()
            } else {
                format!("user agent matches none of the allow list [{}]", list.join(", "))
            };
            rules.push(mk(format!("{label}: EnforceAllowList"), base, unless, note));
        }
        Some(AppPolicy::EnforceBlockList) if !list.is_empty() => {
            let mut c = base;
            c.push(Cond::UserAgentEws(list.iter().map(|p| EwsPattern::blocking(p)).collect()));
            rules.push(mk(
                format!("{label}: EnforceBlockList"),
                c,
                allowed_by_switch,
                format!("user agent matches the block list [{}]", list.join(", ")),
            ));
        }
        // An empty block list blocks nothing.
        Some(AppPolicy::EnforceBlockList) => {}
    }
}

pub(super) fn compile_device_access(
    ctx: &Ctx,
    raw: RawDeviceAccess,
    line: usize,
    rules: &mut Vec<Rule>,
    blocks: &mut Blocks,
) -> Result<(), PolicyError> {
    let rule_lines: Vec<usize> = raw.rule.iter().map(|r| ctx.line(&r.span()).unwrap_or(line)).collect();
    let personal_lines: Vec<usize> = raw.personal.iter().map(|p| ctx.line(&p.span()).unwrap_or(line)).collect();
    let status = ctx.status("device_access status", &raw.status, 403)?;
    let q_status = ctx.status("device_access quarantine_status", &raw.quarantine_status, 403)?;
    let level = |l: RawAccessLevel| match l {
        RawAccessLevel::Allow => AccessLevel::Allow,
        RawAccessLevel::Block => AccessLevel::Block,
        RawAccessLevel::Quarantine => AccessLevel::Quarantine,
    };
    let mut personal = Vec::new();
    for p in &raw.personal {
        let p = p.get_ref();
        personal.push((names(ctx, &p.user)?, p.allowed_device_ids.clone(), p.blocked_device_ids.clone()));
    }
    let block = DeviceBlock {
        default_access_level: raw.default_access_level.map(level),
        rules: raw
            .rule
            .iter()
            .map(|r| {
                let r = r.get_ref();
                let c = match r.characteristic {
                    RawCharacteristic::DeviceType => Characteristic::DeviceType,
                    RawCharacteristic::DeviceModel => Characteristic::DeviceModel,
                    RawCharacteristic::DeviceOS => Characteristic::DeviceOS,
                    RawCharacteristic::UserAgent => Characteristic::UserAgent,
                };
                (c, r.query_string.clone(), level(r.access_level))
            })
            .collect(),
        personal,
    };
    // Exchange works out a device's access state from its DeviceId: a
    // request naming none (a sign-in's first leg) is no device's, and it
    // allows every `OPTIONS`, naming one or not.
    let base = vec![Cond::Protocol(vec![Protocol::ActiveSync]), Cond::NamesDevice];
    let ch = |c: Characteristic, q: &str| match c {
        Characteristic::DeviceType => Cond::DeviceType(vec![q.to_string()]),
        Characteristic::DeviceModel => Cond::DeviceModel(vec![q.to_string()]),
        Characteristic::DeviceOS => Cond::DeviceOs(vec![q.to_string()]),
        Characteristic::UserAgent => {
            Cond::UserAgent { case_sensitive: false, items: vec![(TextMode::Exact, q.to_string())] }
        }
    };
    let mk = |name: String, c: Vec<Cond>, u: Vec<Vec<Cond>>, st: u16, note: String, line: usize| {
        rule(name, Action::Deny, st, 0, c, u, RuleOrigin::DeviceAccess, Some(note), line)
    };
    // 4. personal block list, 5. personal allow list (an exception to
    // everything below): one condition each, over every mailbox's own list.
    type Personal = (Vec<String>, Vec<String>, Vec<String>);
    let own = |pick: fn(&Personal) -> &Vec<String>, list: &'static str| {
        let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
        for p in block.personal.iter().filter(|p| !pick(p).is_empty()) {
            for n in &p.0 {
                by_user.entry(user_key(n)).or_default().extend(pick(p).iter().cloned());
            }
        }
        (!by_user.is_empty()).then(|| Cond::OwnDevices { list, by_user: Arc::new(by_user) })
    };
    if let Some(blocked) = own(|p| &p.2, "ActiveSyncBlockedDeviceIDs") {
        let mut c = base.clone();
        c.push(blocked);
        let first = block.personal.iter().position(|p| !p.2.is_empty()).unwrap_or(0);
        rules.push(mk(
            "device_access: personal blocked devices".into(),
            c,
            Vec::new(),
            status,
            "device id is on the mailbox's ActiveSyncBlockedDeviceIDs".into(),
            personal_lines.get(first).copied().unwrap_or(line),
        ));
    }
    let personal_allow: Vec<Vec<Cond>> =
        own(|p| &p.1, "ActiveSyncAllowedDeviceIDs").map(|c| vec![c]).into_iter().collect();
    // 6, 7. block rules, then quarantine rules.
    for want in [AccessLevel::Block, AccessLevel::Quarantine] {
        for ((c, q, l), rline) in block.rules.iter().zip(&rule_lines).filter(|((_, _, l), _)| *l == want) {
            let mut conds = base.clone();
            conds.push(ch(*c, q));
            let st = if want == AccessLevel::Block { status } else { q_status };
            let mut r = mk(
                format!("device_access: {} {} '{q}'", l.name(), c.name()),
                conds,
                personal_allow.clone(),
                st,
                format!("{} is '{q}', which a device access rule sets to {}", c.name(), l.name()),
                *rline,
            );
            r.quarantine = want == AccessLevel::Quarantine;
            rules.push(r);
        }
    }
    // 8, 9. allow rules only matter against a default that is not Allow.
    if let Some(d @ (AccessLevel::Block | AccessLevel::Quarantine)) = block.default_access_level {
        let mut unless = personal_allow;
        for (c, q, _) in block.rules.iter().filter(|(_, _, l)| *l == AccessLevel::Allow) {
            unless.push(vec![ch(*c, q)]);
        }
        let mut r = mk(
            format!("device_access: DefaultAccessLevel={}", d.name()),
            base,
            unless,
            if d == AccessLevel::Block { status } else { q_status },
            format!("no personal list or device access rule allows the device; DefaultAccessLevel is {}", d.name()),
            line,
        );
        r.quarantine = d == AccessLevel::Quarantine;
        rules.push(r);
    }
    blocks.device_access = Some(block);
    Ok(())
}
