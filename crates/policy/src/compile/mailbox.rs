//! Per-user Exchange settings as rules: authentication policies (which
//! protocols refuse legacy or modern authentication for whom), then the
//! per-mailbox protocol switches of `Set-CASMailbox`. Mailboxes that share a
//! switch share one rule, so thousands of mailboxes make a handful of rules.

use std::collections::HashMap;
use std::sync::Arc;

use ::exchange::{AuthType, Protocol};

use super::{add_user, names, rule, Ctx};
use crate::blocks::{AuthBlock, AuthPolicy, AuthProtocol, Blocks, MailboxBlock, MailboxSwitches};
use crate::model::{Action, Cond, Rule, RuleOrigin, UserSet};
use crate::raw::{List, RawAuthPolicies, RawMailboxProtocols};
use crate::PolicyError;

/// One user set over many mailboxes, each shown by its first name.
fn user_set<'a>(mailboxes: impl IntoIterator<Item = &'a Vec<String>>) -> Option<Cond> {
    let mut set = UserSet::default();
    for names in mailboxes {
        for n in names {
            add_user(&mut set, n);
        }
        set.shown.push(names[0].clone());
    }
    (!set.exact.is_empty()).then(|| Cond::User(Arc::new(set)))
}

pub(super) fn compile_mailbox_protocols(
    ctx: &Ctx,
    raw: RawMailboxProtocols,
    line: usize,
    rules: &mut Vec<Rule>,
    blocks: &mut Blocks,
) -> Result<(), PolicyError> {
    let status = ctx.status("mailbox_protocols status", &raw.status, 403)?;
    let mut mailboxes = Vec::new();
    for m in raw.mailbox {
        mailboxes.push((names(ctx, &m.user)?, m.switches()));
    }
    let block = MailboxBlock { mapi_http_enabled: raw.mapi_http_enabled, mailboxes };
    let with =
        |f: &dyn Fn(&MailboxSwitches) -> bool| user_set(block.mailboxes.iter().filter(|(_, s)| f(s)).map(|(n, _)| n));
    let deny = |name: &str, protocols: Vec<Protocol>, who: Option<Cond>, unless: Vec<Vec<Cond>>, note: &str| {
        let mut c = vec![Cond::Protocol(protocols)];
        c.extend(who);
        rule(
            format!("mailbox_protocols: {name}"),
            Action::Deny,
            status,
            0,
            c,
            unless,
            RuleOrigin::MailboxProtocols,
            Some(note.to_string()),
            line,
        )
    };
    // The rule for the mailboxes whose switches `set` picks, if any.
    let per_mailbox = |set: &dyn Fn(&MailboxSwitches) -> bool, name: &str, protocols: Vec<Protocol>, note: &str| {
        with(set).map(|u| deny(name, protocols, Some(u), Vec::new(), note))
    };
    rules.extend(per_mailbox(
        &|s| s.activesync_enabled == Some(false),
        "ActiveSyncEnabled=false",
        vec![Protocol::ActiveSync],
        "ActiveSyncEnabled is false for this mailbox: Exchange refuses ActiveSync",
    ));
    rules.extend(per_mailbox(
        &|s| s.owa_enabled == Some(false),
        "OWAEnabled=false",
        vec![Protocol::Owa],
        "OWAEnabled is false for this mailbox: Outlook on the web is refused",
    ));
    rules.extend(per_mailbox(
        &|s| s.mapi_enabled == Some(false),
        "MAPIEnabled=false",
        vec![Protocol::Mapi, Protocol::Rpc],
        "MAPIEnabled is false for this mailbox: every MAPI client is refused, over MAPI over HTTP and Outlook Anywhere, on the LAN too",
    ));
    let http_note = "MapiHttpEnabled is false for this mailbox: MAPI over HTTP is refused, and Outlook falls back to Outlook Anywhere (RPC over HTTP) unless MAPIBlockOutlookRpcHttp is set";
    if block.mapi_http_enabled == Some(false) {
        // The organization's value holds for every mailbox that does not set its own.
        let unless: Vec<Vec<Cond>> =
            with(&|s| s.mapi_http_enabled == Some(true)).into_iter().map(|c| vec![c]).collect();
        rules.push(deny("MapiHttpEnabled=false (organization)", vec![Protocol::Mapi], None, unless, http_note));
    } else {
        rules.extend(per_mailbox(
            &|s| s.mapi_http_enabled == Some(false),
            "MapiHttpEnabled=false",
            vec![Protocol::Mapi],
            http_note,
        ));
    }
    rules.extend(per_mailbox(
        &|s| s.mapi_block_outlook_rpc_http == Some(true),
        "MAPIBlockOutlookRpcHttp=true",
        vec![Protocol::Rpc],
        "MAPIBlockOutlookRpcHttp is true for this mailbox: Outlook Anywhere (RPC over HTTP) is refused",
    ));
    blocks.mailbox = Some(block);
    Ok(())
}

fn auth_protocols(ctx: &Ctx, l: &Option<toml::Spanned<List>>) -> Result<Vec<AuthProtocol>, PolicyError> {
    let mut out = Vec::new();
    if let Some(l) = l {
        for p in ctx.named(l, "protocol", &AuthProtocol::ALL, AuthProtocol::name, AuthProtocol::from_name)? {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Basic, Digest and Windows authentication (New-AuthenticationPolicy); the
/// request model names Digest `other`, with the schemes it does not tell apart.
const LEGACY: [AuthType; 4] = [AuthType::Basic, AuthType::Ntlm, AuthType::Negotiate, AuthType::Kerberos];
const MODERN: [AuthType; 2] = [AuthType::OAuth, AuthType::Bearer];

pub(super) fn compile_auth_policies(
    ctx: &Ctx,
    raw: RawAuthPolicies,
    line: usize,
    rules: &mut Vec<Rule>,
    blocks: &mut Blocks,
) -> Result<(), PolicyError> {
    let status = ctx.status("auth_policies status", &raw.status, 401)?;
    let mut policies: Vec<AuthPolicy> = Vec::new();
    for p in &raw.policy {
        let name = p.name.get_ref().trim().to_string();
        if name.is_empty() || policies.iter().any(|q| q.name.eq_ignore_ascii_case(&name)) {
            return Err(ctx.err(&p.name.span(), format!("authentication policy name '{name}' is empty or repeated")));
        }
        let block_legacy = auth_protocols(ctx, &p.block_legacy)?;
        let block_modern = auth_protocols(ctx, &p.block_modern)?;
        policies.push(AuthPolicy { name, block_legacy, block_modern });
    }
    let known = |n: &str| policies.iter().any(|p| p.name.eq_ignore_ascii_case(n));
    let default = match &raw.default {
        Some(d) if !known(d.get_ref()) => {
            return Err(
                ctx.err(&d.span(), format!("default policy '{}' is not among [[auth_policies.policy]]", d.get_ref()))
            )
        }
        Some(d) => Some(d.get_ref().trim().to_string()),
        None => None,
    };
    let mut users = Vec::new();
    for u in &raw.user {
        if !known(u.policy.get_ref()) {
            return Err(ctx.err(
                &u.policy.span(),
                format!("policy '{}' is not among [[auth_policies.policy]]", u.policy.get_ref()),
            ));
        }
        users.push((names(ctx, &u.user)?, u.policy.get_ref().trim().to_string()));
    }
    let mut by_policy: HashMap<String, Vec<&Vec<String>>> = HashMap::new();
    for (n, p) in &users {
        by_policy.entry(p.to_lowercase()).or_default().push(n);
    }
    for p in &policies {
        let key = p.name.to_lowercase();
        let is_default = default.as_deref().is_some_and(|d| d.eq_ignore_ascii_case(&p.name));
        // Who has this policy: those assigned it, and with the default everyone not assigned another.
        let (who, unless) = if is_default {
            let others = user_set(users.iter().filter(|(_, q)| !q.eq_ignore_ascii_case(&p.name)).map(|(n, _)| n));
            (None, others.into_iter().map(|c| vec![c]).collect::<Vec<_>>())
        } else {
            match by_policy.get(&key).and_then(|v| user_set(v.iter().copied())) {
                Some(u) => (Some(u), Vec::new()),
                None => continue,
            }
        };
        for (kind, protocols, types) in
            [("legacy", &p.block_legacy, &LEGACY[..]), ("modern", &p.block_modern, &MODERN[..])]
        {
            let http: Vec<Protocol> = protocols.iter().filter_map(|a| a.protocol()).collect();
            if http.is_empty() {
                continue;
            }
            let shown: Vec<&str> = protocols.iter().filter(|a| a.protocol().is_some()).map(|a| a.name()).collect();
            let mut c = vec![Cond::Protocol(http), Cond::Auth(types.to_vec())];
            c.extend(who.clone());
            let scope = if is_default { "the organization's default policy" } else { "assigned with Set-User" };
            rules.push(rule(
                format!("auth_policies: {} blocks {kind} authentication", p.name),
                Action::Deny,
                status,
                0,
                c,
                unless.clone(),
                RuleOrigin::AuthPolicies,
                Some(format!(
                    "authentication policy '{}' ({scope}) blocks {kind} authentication for {}; a request whose \
                     authentication type is not recorded, as in IIS logs, is not decided by it",
                    p.name,
                    shown.join(", ")
                )),
                line,
            ));
        }
    }
    blocks.auth = Some(AuthBlock { default, policies, users });
    Ok(())
}
