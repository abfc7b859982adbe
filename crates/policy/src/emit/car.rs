//! Client Access Rules (`New-ClientAccessRule`) for the deny rules Exchange
//! 2019 on premises can enforce with them.
//!
//! Sources (MicrosoftDocs/office-docs-powershell,
//! `exchange/exchange-ps/ExchangePowerShell/New-ClientAccessRule.md` and
//! `Set-ClientAccessRule.md`, online at
//! <https://learn.microsoft.com/powershell/module/exchangepowershell/new-clientaccessrule>):
//! - `-AnyOfProtocols`: "In Exchange 2019, the only supported values are
//!   ExchangeAdminCenter and RemotePowerShell". A rule for any other protocol
//!   is accepted by the cmdlet and ignored on premises, so none is written.
//! - `-AnyOfClientIPAddressesOrRanges` / `-ExceptAnyOfClientIPAddressesOrRanges`
//!   (single address, `a-b` range or CIDR, IPv4 or IPv6) apply to Exchange 2019.
//! - `-UsernameMatchesAnyOfPatterns`, `-ExceptUsernameMatchesAnyOfPatterns`,
//!   `-UserRecipientFilter`, `-AnyOfAuthenticationTypes`: "functional only in
//!   the cloud-based service", so a rule naming users is not expressible here.
//! - `-Action AllowAccess|DenyAccess`; `-Priority`: lower value first.
//! - Evaluation (OfficeDocs-Exchange `client-access-rules.md`): conditions
//!   AND, values in one condition OR, exceptions OR and skip the rule.

use ::exchange::networks::builtin_prefixes;
use ::exchange::Protocol;

use crate::emit::exchange::create_or_set;
use crate::emit::{common_blockers, cond_kind};
use crate::model::{Cond, Policy, Rule};

/// The Client Access Rule protocol name of ours, if Exchange 2019 honours it.
pub(crate) fn car_protocol(p: Protocol) -> Option<&'static str> {
    match p {
        Protocol::Ecp => Some("ExchangeAdminCenter"),
        Protocol::PowerShell => Some("RemotePowerShell"),
        _ => None,
    }
}

/// True when the rule's protocol condition names ECP or PowerShell.
pub(crate) fn touches_car_protocols(r: &Rule) -> bool {
    r.conditions.iter().any(|c| matches!(c, Cond::Protocol(ps) if ps.iter().any(|p| car_protocol(*p).is_some())))
}

/// True when the rule tests the client address (what a Client Access Rule
/// could test, were the protocol one Exchange 2019 honours).
pub(crate) fn tests_address(r: &Rule) -> bool {
    let addr = |c: &Cond| matches!(c, Cond::Cidr { .. } | Cond::Network(_));
    r.conditions.iter().any(addr) || r.unless.iter().flatten().any(addr)
}

/// Addresses of one address condition, and a note when a built-in network
/// was written out as its fixed prefixes.
fn addresses(c: &Cond, notes: &mut Vec<String>) -> Result<Vec<String>, String> {
    match c {
        Cond::Cidr { nets, .. } => Ok(nets.iter().map(|n| n.to_string()).collect()),
        Cond::Network(ids) => {
            let mut v = Vec::new();
            for (_, name) in ids {
                let fixed = builtin_prefixes(name).ok_or_else(|| {
                    format!(
                        "network '{name}' has no fixed address list a Client Access Rule could carry \
                         (for 'external', write the internal ranges as an unless exception)"
                    )
                })?;
                notes.push(format!(
                    "network '{name}' written as its built-in prefixes; a site of yours inside them \
                     (--networks) counts here too"
                ));
                v.extend(fixed.iter().map(|s| s.to_string()));
            }
            Ok(v)
        }
        _ => Err(format!("{} is not an address condition", cond_kind(c))),
    }
}

const USERS_CLOUD_ONLY: &str = "Client Access Rules on Exchange 2019 cannot test the user: \
    UsernameMatchesAnyOfPatterns and UserRecipientFilter are functional only in Exchange Online";

/// One deny rule as a `New-ClientAccessRule` command (with leading comment
/// lines), or why not. `priority` orders the emitted rules.
pub(crate) fn from_rule(policy: &Policy, idx: usize, priority: u32) -> Result<String, String> {
    let r = &policy.rules()[idx];
    if let Some(why) = common_blockers(policy, idx, "Exchange") {
        return Err(why);
    }
    let mut notes = Vec::new();
    let mut protocols: Vec<&'static str> = Vec::new();
    let mut ips: Option<Vec<String>> = None;
    for c in &r.conditions {
        match c {
            Cond::Protocol(ps) => {
                for p in ps {
                    let name = car_protocol(*p).ok_or_else(|| {
                        format!(
                            "protocol '{}' in the same rule as ECP/PowerShell: Exchange 2019 on premises applies \
                             Client Access Rules to ExchangeAdminCenter and RemotePowerShell only; split the rule",
                            p.key()
                        )
                    })?;
                    if !protocols.contains(&name) {
                        protocols.push(name);
                    }
                }
            }
            Cond::Cidr { .. } | Cond::Network(_) => {
                if ips.is_some() {
                    return Err("two address conditions (ANDed): a Client Access Rule has one address list".into());
                }
                ips = Some(addresses(c, &mut notes)?);
            }
            Cond::User(_) => return Err(USERS_CLOUD_ONLY.into()),
            other => {
                return Err(format!(
                    "{} conditions: a Client Access Rule on Exchange 2019 tests only protocol and client address",
                    cond_kind(other)
                ))
            }
        }
    }
    // Exceptions OR, as `unless` groups do; each group must be one address test
    // (a protocol test on a protocol the rule already names is always true).
    let mut except: Vec<String> = Vec::new();
    for g in &r.unless {
        let mut addr = None;
        for c in g {
            match c {
                Cond::Cidr { .. } | Cond::Network(_) if addr.is_none() => addr = Some(addresses(c, &mut notes)?),
                Cond::Protocol(ps) if protocols.iter().all(|n| ps.iter().any(|p| car_protocol(*p) == Some(n))) => {}
                Cond::User(_) => return Err(format!("unless: {USERS_CLOUD_ONLY}")),
                other => {
                    return Err(format!(
                        "unless with a {} condition: Client Access Rule exceptions on Exchange 2019 test the client address only",
                        cond_kind(other)
                    ))
                }
            }
        }
        except.extend(addr.ok_or("an unless group without an address test would except every request")?);
    }
    let mut out = String::new();
    for n in &notes {
        out.push_str(&format!("# note: {n}\n"));
    }
    if protocols.contains(&"RemotePowerShell") && ips.is_none() && except.is_empty() {
        out.push_str(
            "# WARNING: this denies Remote PowerShell to every user from every address, you included: \
             it locks administrators out of the Exchange Management Shell. Add an address exception for \
             your admin network before running it.\n",
        );
    }
    let list = |v: &[String]| v.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(",");
    let name = format!("'{}'", format!("casguard: {}", r.name).replace('\'', "''"));
    // New- names only the lists the rule has; Set- also empties ($null)
    // the ones it has not, so that a rule edited since the last run loses
    // what it no longer lists.
    let (mut new, mut set) = (String::new(), String::new());
    for (param, v) in [
        ("AnyOfClientIPAddressesOrRanges", ips.as_deref()),
        ("ExceptAnyOfClientIPAddressesOrRanges", Some(&except[..])),
    ] {
        match v {
            Some(v) if !v.is_empty() => {
                new.push_str(&format!(" -{param} {}", list(v)));
                set.push_str(&format!(" -{param} {}", list(v)));
            }
            _ => set.push_str(&format!(" -{param} $null")),
        }
    }
    let common = format!("-Action DenyAccess -AnyOfProtocols {}", protocols.join(","));
    out.push_str(&create_or_set(
        &format!("Get-ClientAccessRule -Identity {name}"),
        &format!("New-ClientAccessRule -Name {name} {common}{new} -Priority {priority}"),
        &format!("Set-ClientAccessRule -Identity {name} {common}{set} -Priority {priority}"),
    ));
    Ok(out)
}
