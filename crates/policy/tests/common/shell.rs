//! A stand-in for an Exchange organisation in tests: it runs the commands
//! `casguard emit --target exchange` writes (Set-OrganizationConfig,
//! Set-CASMailbox, New-ActiveSyncDeviceAccessRule, New-AuthenticationPolicy,
//! Set-User, ...) against an empty organisation, then writes what the Get-
//! cmdlets would export, as ConvertTo-Json does. It knows only the
//! parameters casguard writes and fails on anything else.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

/// One argument: a value after `-Name`, or a bare switch.
#[derive(Debug, Clone)]
enum Arg {
    Switch,
    Value(Value),
}

/// `s` cut at every `sep` outside single quotes and brackets, the quotes
/// kept (`''` inside quotes is one quote); empty pieces are dropped.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let (mut out, mut start, mut quote, mut depth) = (Vec::new(), 0, false, 0i32);
    for (i, c) in s.char_indices() {
        match c {
            // A doubled quote inside quotes closes and reopens them: the same state.
            '\'' => quote = !quote,
            '(' | '{' if !quote => depth += 1,
            ')' | '}' if !quote => depth -= 1,
            c if c == sep && !quote && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.retain(|t| !t.is_empty());
    out
}

/// A command line's words: `-Name`, values, `@(...)` and `@{...}` whole.
fn tokens(line: &str) -> Vec<&str> {
    split_unquoted(line, ' ')
}

fn unquote(s: &str) -> String {
    s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')).unwrap_or(s).replace("''", "'")
}

/// `'a','b'` as strings.
fn items(s: &str) -> Vec<Value> {
    split_unquoted(s, ',').into_iter().map(|t| Value::String(unquote(t.trim()))).collect()
}

fn value(s: &str) -> Value {
    match s {
        "$true" => Value::Bool(true),
        "$false" => Value::Bool(false),
        "$null" => Value::Null,
        _ if s.starts_with("@(") => Value::Array(items(&s[2..s.len() - 1])),
        _ if s.starts_with("@{Add=") => json!({ "Add": items(&s[6..s.len() - 1]) }),
        _ => Value::String(unquote(s)),
    }
}

fn parse(line: &str) -> (String, BTreeMap<String, Arg>) {
    let t = tokens(line);
    let mut args = BTreeMap::new();
    let mut i = 1;
    while i < t.len() {
        let name = t[i].strip_prefix('-').unwrap_or_else(|| panic!("not a parameter: {} in {line}", t[i])).to_string();
        if i + 1 < t.len() && !t[i + 1].starts_with('-') {
            args.insert(name, Arg::Value(value(t[i + 1])));
            i += 2;
        } else {
            args.insert(name, Arg::Switch);
            i += 1;
        }
    }
    (t[0].to_string(), args)
}

/// The organisation the commands build.
#[derive(Default)]
pub struct Organisation {
    org: Map<String, Value>,
    mailboxes: BTreeMap<String, Map<String, Value>>,
    users: BTreeMap<String, Map<String, Value>>,
    default_access: Option<Value>,
    rules: Vec<Value>,
    policies: Vec<Value>,
}

const MAILBOX_DEFAULTS: [(&str, Value); 17] = [
    ("ActiveSyncEnabled", Value::Bool(true)),
    ("OWAEnabled", Value::Bool(true)),
    ("OWAforDevicesEnabled", Value::Bool(true)),
    ("MAPIEnabled", Value::Bool(true)),
    ("MapiHttpEnabled", Value::Null),
    ("MAPIBlockOutlookRpcHttp", Value::Bool(false)),
    ("PopEnabled", Value::Bool(true)),
    ("ImapEnabled", Value::Bool(true)),
    ("EwsEnabled", Value::Null),
    ("EwsApplicationAccessPolicy", Value::Null),
    ("EwsAllowList", Value::Null),
    ("EwsBlockList", Value::Null),
    ("EwsAllowOutlook", Value::Null),
    ("EwsAllowMacOutlook", Value::Null),
    ("EwsAllowEntourage", Value::Null),
    ("ActiveSyncAllowedDeviceIDs", Value::Null),
    ("ActiveSyncBlockedDeviceIDs", Value::Null),
];

const SETTABLE: [&str; 16] = [
    "ActiveSyncEnabled",
    "OWAEnabled",
    "OWAforDevicesEnabled",
    "MAPIEnabled",
    "MapiHttpEnabled",
    "MAPIBlockOutlookRpcHttp",
    "PopEnabled",
    "ImapEnabled",
    "EwsEnabled",
    "EwsAllowOutlook",
    "EwsAllowMacOutlook",
    "EwsAllowEntourage",
    "EwsApplicationAccessPolicy",
    "EwsAllowList",
    "EwsBlockList",
    "DefaultAuthenticationPolicy",
];

impl Organisation {
    /// Run every command of an emitted `exchange.ps1`.
    pub fn run(&mut self, script: &str) {
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (cmd, args) = parse(line);
            let get = |k: &str| match args.get(k) {
                Some(Arg::Value(v)) => v.clone(),
                other => panic!("{k} in {line}: {other:?}"),
            };
            match cmd.as_str() {
                "Set-OrganizationConfig" => {
                    for (k, v) in &args {
                        assert!(SETTABLE.contains(&k.as_str()), "{k} in {line}");
                        if let Arg::Value(v) = v {
                            self.org.insert(k.clone(), v.clone());
                        }
                    }
                }
                "Set-CASMailbox" => {
                    let id = get("Identity").as_str().unwrap().to_string();
                    let m = self.mailboxes.entry(id.clone()).or_insert_with(|| {
                        let mut m = Map::new();
                        m.insert("SamAccountName".into(), Value::String(id.clone()));
                        for (k, v) in MAILBOX_DEFAULTS {
                            m.insert(k.into(), v);
                        }
                        m
                    });
                    for (k, v) in &args {
                        if k == "Identity" {
                            continue;
                        }
                        let Arg::Value(v) = v else { panic!("{k} in {line}") };
                        match v.get("Add") {
                            Some(Value::Array(add)) => {
                                let list = m.entry(k.clone()).or_insert(Value::Null);
                                if list.is_null() {
                                    *list = Value::Array(Vec::new());
                                }
                                list.as_array_mut().unwrap().extend(add.iter().cloned());
                            }
                            _ => {
                                assert!(SETTABLE.contains(&k.as_str()) || k.ends_with("DeviceIDs"), "{k} in {line}");
                                m.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                "Set-ActiveSyncOrganizationSettings" => self.default_access = Some(get("DefaultAccessLevel")),
                "New-ActiveSyncDeviceAccessRule" => self.rules.push(json!({
                    "Characteristic": get("Characteristic"),
                    "QueryString": get("QueryString"),
                    "AccessLevel": get("AccessLevel"),
                })),
                "New-AuthenticationPolicy" => {
                    let mut p = Map::new();
                    p.insert("Name".into(), get("Name"));
                    for a in [
                        "ActiveSync",
                        "Autodiscover",
                        "Imap",
                        "Mapi",
                        "OfflineAddressBook",
                        "Pop",
                        "Rpc",
                        "WebServices",
                    ] {
                        p.insert(format!("BlockLegacyAuth{a}"), Value::Bool(false));
                    }
                    for (k, v) in &args {
                        if k.starts_with("BlockLegacyAuth") || k.starts_with("BlockModernAuth") {
                            assert!(matches!(v, Arg::Switch), "{k} in {line}");
                            p.insert(k.clone(), Value::Bool(true));
                        }
                    }
                    self.policies.push(Value::Object(p));
                }
                "Set-User" => {
                    let id = get("Identity").as_str().unwrap().to_string();
                    let u = self.users.entry(id.clone()).or_default();
                    u.insert("SamAccountName".into(), Value::String(id));
                    u.insert("UserPrincipalName".into(), Value::Null);
                    u.insert("AuthenticationPolicy".into(), get("AuthenticationPolicy"));
                }
                other => panic!("the stand-in does not know {other}: {line}"),
            }
        }
    }

    /// What the Get- cmdlets export, one JSON file each, into `dir`.
    pub fn export(&self, dir: &Path) {
        let write =
            |name: &str, v: Value| std::fs::write(dir.join(name), serde_json::to_string_pretty(&v).unwrap()).unwrap();
        let mut org = self.org.clone();
        org.insert("Name".into(), Value::String("Contoso".into()));
        org.entry("MapiHttpEnabled").or_insert(Value::Bool(true));
        for k in SETTABLE.iter().filter(|k| k.starts_with("Ews") || **k == "DefaultAuthenticationPolicy") {
            org.entry(k.to_string()).or_insert(Value::Null);
        }
        write("Get-OrganizationConfig.json", Value::Object(org));
        if !self.mailboxes.is_empty() {
            write("Get-CASMailbox.json", Value::Array(self.mailboxes.values().cloned().map(Value::Object).collect()));
        }
        if let Some(d) = &self.default_access {
            write(
                "Get-ActiveSyncOrganizationSettings.json",
                json!({ "Name": "Mobile Mailbox Settings", "DefaultAccessLevel": d }),
            );
        }
        if !self.rules.is_empty() {
            write("Get-ActiveSyncDeviceAccessRule.json", Value::Array(self.rules.clone()));
        }
        if !self.policies.is_empty() {
            write("Get-AuthenticationPolicy.json", Value::Array(self.policies.clone()));
        }
        if !self.users.is_empty() {
            write("Get-User.json", Value::Array(self.users.values().cloned().map(Value::Object).collect()));
        }
    }
}
