//! Exchange Management Shell exports: which cmdlet wrote a file (by its
//! type names, else by its properties), and what each record sets. Values
//! are read as PowerShell writes them: `True`/`False` or JSON booleans,
//! empty or `null` for `$null`, enum names, and lists as JSON arrays or, in
//! CSV, one value per line.

use serde_json::Value;

use super::table::{Record, Table};
use super::{InForce, Mailbox, Notes};
use crate::blocks::{AccessLevel, AppPolicy, AuthPolicy, AuthProtocol, Characteristic, EwsSettings, MailboxSwitches};

/// The cmdlet that wrote a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmdlet {
    OrganizationConfig,
    CasMailbox,
    ActiveSyncOrganizationSettings,
    ActiveSyncDeviceAccessRule,
    AuthenticationPolicy,
    User,
    MobileDeviceStatistics,
}

impl Cmdlet {
    pub fn name(self) -> &'static str {
        match self {
            Cmdlet::OrganizationConfig => "Get-OrganizationConfig",
            Cmdlet::CasMailbox => "Get-CASMailbox",
            Cmdlet::ActiveSyncOrganizationSettings => "Get-ActiveSyncOrganizationSettings",
            Cmdlet::ActiveSyncDeviceAccessRule => "Get-ActiveSyncDeviceAccessRule",
            Cmdlet::AuthenticationPolicy => "Get-AuthenticationPolicy",
            Cmdlet::User => "Get-User",
            Cmdlet::MobileDeviceStatistics => "Get-MobileDeviceStatistics",
        }
    }
}

/// Which cmdlet wrote `t`: the .NET type it names, else its properties.
pub(crate) fn recognise(t: &Table) -> Option<Cmdlet> {
    const BY_TYPE: [(&str, Cmdlet); 7] = [
        (".OrganizationConfig", Cmdlet::OrganizationConfig),
        (".CASMailbox", Cmdlet::CasMailbox),
        (".ActiveSyncOrganizationSettings", Cmdlet::ActiveSyncOrganizationSettings),
        (".ActiveSyncDeviceAccessRule", Cmdlet::ActiveSyncDeviceAccessRule),
        (".AuthPolicy", Cmdlet::AuthenticationPolicy),
        (".User", Cmdlet::User),
        (".MobileDeviceConfiguration", Cmdlet::MobileDeviceStatistics),
    ];
    for ty in &t.types {
        if let Some((_, c)) = BY_TYPE.iter().find(|(suffix, _)| ty.ends_with(suffix)) {
            return Some(*c);
        }
    }
    let f = |n: &str| t.has_field(n);
    Some(if f("ActiveSyncEnabled") && (f("OWAEnabled") || f("EwsEnabled")) {
        Cmdlet::CasMailbox
    } else if f("Characteristic") && f("QueryString") && f("AccessLevel") {
        Cmdlet::ActiveSyncDeviceAccessRule
    } else if f("DefaultAccessLevel") {
        Cmdlet::ActiveSyncOrganizationSettings
    } else if t.has_field_prefix("BlockLegacyAuth") || t.has_field_prefix("AllowBasicAuth") {
        Cmdlet::AuthenticationPolicy
    } else if f("DeviceAccessState") && f("DeviceId") {
        Cmdlet::MobileDeviceStatistics
    } else if f("AuthenticationPolicy") && (f("UserPrincipalName") || f("SamAccountName")) {
        Cmdlet::User
    } else if f("DefaultAuthenticationPolicy") || f("EwsApplicationAccessPolicy") || f("MapiHttpEnabled") {
        Cmdlet::OrganizationConfig
    } else {
        return None;
    })
}

/// Where a record is, for messages.
fn at(file: &str, r: &Record) -> String {
    match r.line {
        Some(l) => format!("{file}:{l}"),
        None => file.to_string(),
    }
}

/// Reads typed properties of one record; a value it cannot read is named
/// in the notes and taken as not set.
struct Fields<'a> {
    file: &'a str,
    rec: &'a Record,
    notes: &'a mut Notes,
}

impl Fields<'_> {
    fn bad(&mut self, name: &str, why: String) {
        let at = at(self.file, self.rec);
        self.notes.inexact(at, format!("{name} of {}", who(self.rec)), why);
    }

    fn text(&self, name: &str) -> Option<String> {
        text_of(self.rec.get(name)?)
    }

    fn bool(&mut self, name: &str) -> Option<bool> {
        match self.rec.get(name)? {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
            other => {
                let shown = match other {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                self.bad(name, format!("'{shown}' is not True, False or empty: taken as not set"));
                None
            }
        }
    }

    /// An enum by name; a number is refused: the numbers behind Exchange's
    /// enums are not documented.
    fn name(&mut self, name: &str) -> Option<String> {
        match self.rec.get(name)? {
            Value::Number(n) => {
                self.bad(
                    name,
                    format!(
                        "written as the number {n}; casguard does not guess which name it stands for: export with \
                         Export-Csv, or select the property as a string (\"$($_.{name})\")"
                    ),
                );
                None
            }
            v => text_of(v),
        }
    }

    /// A multi-valued property. In CSV, one value per line (`-join "`n"`);
    /// device ids may also be separated by `;` or `,`, which they cannot contain.
    fn list(&mut self, name: &str, ids: bool) -> Option<Vec<String>> {
        let v = self.rec.get(name)?;
        let items: Vec<String> = match v {
            Value::Null => return None,
            Value::Array(a) => a.iter().filter_map(text_of).collect(),
            Value::Object(o) if o.get("value").is_some_and(Value::is_array) => {
                o["value"].as_array().map(|a| a.iter().filter_map(text_of).collect()).unwrap_or_default()
            }
            Value::String(s) if is_type_name(s) => {
                self.bad(
                    name,
                    format!(
                        "the export holds the list's type name ('{}'), not its values: Export-Csv writes that for a \
                         list; export with ConvertTo-Json, or join the values (-join \"`n\")",
                        s.trim()
                    ),
                );
                return None;
            }
            Value::String(s) => {
                let seps: &[char] = if ids { &['\n', '\r', ';', ','] } else { &['\n', '\r'] };
                s.split(seps).map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
            }
            other => match text_of(other) {
                Some(t) => vec![t],
                None => return None,
            },
        };
        Some(items)
    }
}

/// A scalar as text: strings, numbers, and Exchange ids (objects with a name).
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => ["Name", "ToString", "DisplayName"]
            .iter()
            .find_map(|k| o.get(*k).and_then(text_of))
            .or_else(|| o.get("DistinguishedName").and_then(text_of).map(|dn| first_cn(&dn))),
        Value::Array(_) => None,
    }
}

fn first_cn(dn: &str) -> String {
    dn.split(',').next().and_then(|p| p.trim().strip_prefix("CN=")).unwrap_or(dn).to_string()
}

/// What Export-Csv writes for a list: `System.Collections.ArrayList`,
/// `Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]`.
fn is_type_name(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix("Deserialized.").unwrap_or(s);
    (s.starts_with("System.") || s.starts_with("Microsoft.")) && !s.contains(' ') && s.contains('.')
}

/// A record's name for messages.
fn who(r: &Record) -> String {
    ["Name", "SamAccountName", "Identity", "PrimarySmtpAddress", "UserPrincipalName"]
        .iter()
        .find_map(|k| r.get(k).and_then(text_of))
        .unwrap_or_else(|| "the record".into())
}

/// The names a person signs in with: SamAccountName first (an identity the
/// cmdlets accept), then the UPN and primary address, whose local parts
/// are what IIS logs key (`DOMAIN\user`, `user@domain`).
fn sign_in_names(r: &Record) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in ["SamAccountName", "UserPrincipalName", "PrimarySmtpAddress", "WindowsEmailAddress", "Alias", "Name"] {
        if let Some(v) = r.get(k).and_then(text_of) {
            let key = crate::compile::user_key(&v);
            if !key.is_empty() && !key.contains('*') && !out.iter().any(|o| crate::compile::user_key(o) == key) {
                out.push(v);
            }
        }
        // Alias and Name only when nothing better was exported.
        if k == "WindowsEmailAddress" && !out.is_empty() {
            break;
        }
    }
    out
}

fn ews_settings(f: &mut Fields) -> EwsSettings {
    let policy = match f.name("EwsApplicationAccessPolicy").as_deref() {
        None => None,
        Some(p) if p.eq_ignore_ascii_case("EnforceAllowList") => Some(AppPolicy::EnforceAllowList),
        Some(p) if p.eq_ignore_ascii_case("EnforceBlockList") => Some(AppPolicy::EnforceBlockList),
        Some(p) => {
            f.bad("EwsApplicationAccessPolicy", format!("'{p}' is not EnforceAllowList or EnforceBlockList"));
            None
        }
    };
    // The list that goes with the policy; a list without a policy at its level is not used.
    let list = match policy {
        Some(AppPolicy::EnforceAllowList) => Some(f.list("EwsAllowList", false).unwrap_or_default()),
        Some(AppPolicy::EnforceBlockList) => Some(f.list("EwsBlockList", false).unwrap_or_default()),
        None => None,
    };
    EwsSettings {
        ews_enabled: f.bool("EwsEnabled"),
        allow_outlook: f.bool("EwsAllowOutlook"),
        allow_mac_outlook: f.bool("EwsAllowMacOutlook"),
        allow_entourage: f.bool("EwsAllowEntourage"),
        application_access_policy: policy,
        list,
    }
}

fn access_level(f: &mut Fields, name: &str) -> Option<AccessLevel> {
    let v = f.name(name)?;
    let level = [AccessLevel::Allow, AccessLevel::Block, AccessLevel::Quarantine]
        .into_iter()
        .find(|l| l.name().eq_ignore_ascii_case(&v));
    if level.is_none() {
        f.bad(name, format!("'{v}' is not Allow, Block or Quarantine"));
    }
    level
}

/// The properties each cmdlet writes that casguard reads: one missing from
/// an export (not selected, or an older Exchange) is taken as not set, and
/// said.
fn expected(cmdlet: Cmdlet) -> &'static [&'static str] {
    const EWS: [&str; 7] = [
        "EwsEnabled",
        "EwsApplicationAccessPolicy",
        "EwsAllowList",
        "EwsBlockList",
        "EwsAllowOutlook",
        "EwsAllowMacOutlook",
        "EwsAllowEntourage",
    ];
    const ORG: [&str; 9] =
        [EWS[0], EWS[1], EWS[2], EWS[3], EWS[4], EWS[5], EWS[6], "MapiHttpEnabled", "DefaultAuthenticationPolicy"];
    const CAS: [&str; 17] = [
        EWS[0],
        EWS[1],
        EWS[2],
        EWS[3],
        EWS[4],
        EWS[5],
        EWS[6],
        "ActiveSyncEnabled",
        "OWAEnabled",
        "OWAforDevicesEnabled",
        "MAPIEnabled",
        "MapiHttpEnabled",
        "MAPIBlockOutlookRpcHttp",
        "PopEnabled",
        "ImapEnabled",
        "ActiveSyncAllowedDeviceIDs",
        "ActiveSyncBlockedDeviceIDs",
    ];
    const AUTH: [&str; 8] = [
        "BlockLegacyAuthActiveSync",
        "BlockLegacyAuthAutodiscover",
        "BlockLegacyAuthImap",
        "BlockLegacyAuthMapi",
        "BlockLegacyAuthOfflineAddressBook",
        "BlockLegacyAuthPop",
        "BlockLegacyAuthRpc",
        "BlockLegacyAuthWebServices",
    ];
    match cmdlet {
        Cmdlet::OrganizationConfig => &ORG,
        Cmdlet::CasMailbox => &CAS,
        Cmdlet::AuthenticationPolicy => &AUTH,
        _ => &[],
    }
}

/// Fold one recognised table into what is in force.
pub(crate) fn read(cmdlet: Cmdlet, file: &str, t: &Table, out: &mut InForce, notes: &mut Notes) {
    if !t.records.is_empty() {
        let missing: Vec<&str> = expected(cmdlet).iter().copied().filter(|c| !t.has_field(c)).collect();
        if !missing.is_empty() {
            notes.inexact(
                file.to_string(),
                format!("{} ({})", missing.join(", "), cmdlet.name()),
                "the export does not have these properties: they are taken as not set".into(),
            );
        }
    }
    for rec in &t.records {
        let mut f = Fields { file, rec, notes };
        match cmdlet {
            Cmdlet::OrganizationConfig => {
                out.ews_org = Some(ews_settings(&mut f));
                out.mapi_http_org = f.bool("MapiHttpEnabled");
                out.default_auth_policy = f.text("DefaultAuthenticationPolicy");
                out.org_read = true;
            }
            Cmdlet::CasMailbox => {
                let names = sign_in_names(rec);
                if names.is_empty() {
                    f.bad(
                        "SamAccountName",
                        "the record names no mailbox (SamAccountName, PrimarySmtpAddress, Name)".into(),
                    );
                    continue;
                }
                let switches = MailboxSwitches {
                    activesync_enabled: f.bool("ActiveSyncEnabled"),
                    owa_enabled: f.bool("OWAEnabled"),
                    owa_for_devices_enabled: f.bool("OWAforDevicesEnabled"),
                    mapi_enabled: f.bool("MAPIEnabled"),
                    mapi_http_enabled: f.bool("MapiHttpEnabled"),
                    mapi_block_outlook_rpc_http: f.bool("MAPIBlockOutlookRpcHttp"),
                    pop_enabled: f.bool("PopEnabled"),
                    imap_enabled: f.bool("ImapEnabled"),
                };
                for unsupported in ["MAPIBlockOutlookNonCachedMode", "MAPIBlockOutlookExternalConnectivity"] {
                    if f.bool(unsupported) == Some(true) {
                        f.bad(
                            unsupported,
                            "is true: it depends on Outlook's mode or on which Autodiscover URLs the client gets, \
                             which requests do not show"
                                .into(),
                        );
                    }
                }
                if f.text("MAPIBlockOutlookVersions").is_some() {
                    f.bad("MAPIBlockOutlookVersions", "Outlook versions are not in the request model".into());
                }
                let ews = ews_settings(&mut f);
                let allowed = f.list("ActiveSyncAllowedDeviceIDs", true).unwrap_or_default();
                let blocked = f.list("ActiveSyncBlockedDeviceIDs", true).unwrap_or_default();
                out.mailboxes.push(Mailbox { names, switches, ews, allowed, blocked });
            }
            Cmdlet::ActiveSyncOrganizationSettings => out.device_default = access_level(&mut f, "DefaultAccessLevel"),
            Cmdlet::ActiveSyncDeviceAccessRule => {
                let ch = f.name("Characteristic");
                let c = match ch.as_deref() {
                    Some(c) if c.eq_ignore_ascii_case("DeviceType") => Some(Characteristic::DeviceType),
                    Some(c) if c.eq_ignore_ascii_case("DeviceModel") => Some(Characteristic::DeviceModel),
                    Some(c) if c.eq_ignore_ascii_case("DeviceOS") => Some(Characteristic::DeviceOS),
                    Some(c) if c.eq_ignore_ascii_case("UserAgent") => Some(Characteristic::UserAgent),
                    other => {
                        let why = match other {
                            Some(c) if c.eq_ignore_ascii_case("XMSWLHeader") => {
                                "the X-MS-WL header is not in the request model".to_string()
                            }
                            Some(c) => format!("'{c}' is not a characteristic casguard knows"),
                            None => "the rule has no characteristic".to_string(),
                        };
                        f.bad("Characteristic", why);
                        None
                    }
                };
                let level = access_level(&mut f, "AccessLevel");
                let q = f.text("QueryString");
                match (c, q, level) {
                    (Some(c), Some(q), Some(l)) => out.device_rules.push((c, q, l)),
                    (Some(_), None, _) => f.bad("QueryString", "is empty".into()),
                    _ => {}
                }
            }
            Cmdlet::AuthenticationPolicy => {
                let Some(name) = f.text("Name") else {
                    f.bad("Name", "the policy has no name".into());
                    continue;
                };
                let mut p = AuthPolicy { name, ..AuthPolicy::default() };
                for a in AuthProtocol::ALL {
                    if f.bool(&format!("BlockLegacyAuth{}", a.name())) == Some(true) {
                        p.block_legacy.push(a);
                    }
                    if f.bool(&format!("BlockModernAuth{}", a.name())) == Some(true) {
                        p.block_modern.push(a);
                    }
                }
                out.auth_policies.push(p);
            }
            Cmdlet::User => {
                if let Some(policy) = f.text("AuthenticationPolicy") {
                    let names = sign_in_names(rec);
                    if names.is_empty() {
                        f.bad("AuthenticationPolicy", "the user record names no account".into());
                    } else {
                        out.auth_users.push((names, first_cn(&policy)));
                    }
                }
                let names = sign_in_names(rec);
                if !names.is_empty() {
                    out.users.push(names);
                }
            }
            Cmdlet::MobileDeviceStatistics => {}
        }
    }
}
