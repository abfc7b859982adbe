//! A stand-in for an Exchange organisation in tests: it runs the commands
//! `casguard emit --target exchange` writes (Set-OrganizationConfig,
//! Set-CASMailbox, New-ActiveSyncDeviceAccessRule, New-AuthenticationPolicy,
//! Set-User, ...) against an empty organisation, then writes what the Get-
//! cmdlets would export, as ConvertTo-Json does. It knows only the
//! parameters casguard writes and fails on anything else, and on a `New-`
//! of an object that exists, as Exchange does.

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
    /// Client Access Rules by name (import does not read them).
    client_access_rules: Vec<String>,
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
    /// Whether a `Get-` by `-Identity` finds the object.
    fn exists(&self, get: &str) -> bool {
        let (cmd, args) = parse(get);
        let Some(Arg::Value(Value::String(id))) = args.get("Identity") else { panic!("no identity: {get}") };
        self.find(&cmd, id).is_some()
    }

    /// The object `Get-`/`Set-` `cmd` names by `id`, compared as Active
    /// Directory compares names (without case). A device access rule is
    /// named `QueryString (Characteristic)`.
    fn find(&self, cmd: &str, id: &str) -> Option<usize> {
        let name = |v: &Value| -> String {
            match cmd.split_once('-').map(|(_, noun)| noun) {
                Some("AuthenticationPolicy") => v["Name"].as_str().unwrap().to_string(),
                Some("ActiveSyncDeviceAccessRule") => {
                    format!("{} ({})", v["QueryString"].as_str().unwrap(), v["Characteristic"].as_str().unwrap())
                }
                _ => panic!("the stand-in cannot find objects of {cmd}"),
            }
        };
        if cmd.ends_with("ClientAccessRule") {
            return self.client_access_rules.iter().position(|n| n.eq_ignore_ascii_case(id));
        }
        let list = if cmd.ends_with("AuthenticationPolicy") { &self.policies } else { &self.rules };
        list.iter().position(|v| name(v).eq_ignore_ascii_case(id))
    }

    /// Run every command of an emitted `exchange.ps1`. Of the language it
    /// knows only the one `if` shape emit writes: `if (-not (Get-X
    /// -Identity I -ErrorAction SilentlyContinue)) {`, `} else {`, `}`, each
    /// on its own line. A `New-` of an object that exists fails, as in
    /// Exchange.
    pub fn run(&mut self, script: &str) {
        // Inside an `if`: whether the branch we are in runs.
        let mut branch: Option<bool> = None;
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if let Some(get) =
                line.strip_prefix("if (-not (").and_then(|l| l.strip_suffix(" -ErrorAction SilentlyContinue)) {"))
            {
                assert!(branch.is_none(), "nested if: {line}");
                branch = Some(!self.exists(get));
                continue;
            }
            match line {
                "} else {" => {
                    branch = Some(!branch.expect("else outside an if"));
                    continue;
                }
                "}" => {
                    branch.take().expect("} outside an if");
                    continue;
                }
                _ if branch == Some(false) => continue,
                _ => {}
            }
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
                                // A multivalued property holds each value once.
                                let list = list.as_array_mut().unwrap();
                                for v in add {
                                    if !list.contains(v) {
                                        list.push(v.clone());
                                    }
                                }
                            }
                            _ => {
                                assert!(SETTABLE.contains(&k.as_str()) || k.ends_with("DeviceIDs"), "{k} in {line}");
                                m.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                "Set-ActiveSyncOrganizationSettings" => self.default_access = Some(get("DefaultAccessLevel")),
                "New-ActiveSyncDeviceAccessRule" => {
                    let rule = json!({
                        "Characteristic": get("Characteristic"),
                        "QueryString": get("QueryString"),
                        "AccessLevel": get("AccessLevel"),
                    });
                    let id = format!(
                        "{} ({})",
                        rule["QueryString"].as_str().unwrap(),
                        rule["Characteristic"].as_str().unwrap()
                    );
                    assert!(self.find(&cmd, &id).is_none(), "the rule exists: {line}");
                    self.rules.push(rule);
                }
                "Set-ActiveSyncDeviceAccessRule" => {
                    let id = get("Identity");
                    let at = self.find(&cmd, id.as_str().unwrap()).unwrap_or_else(|| panic!("no such rule: {line}"));
                    for k in args.keys() {
                        assert!(k == "Identity" || k == "AccessLevel", "Set- cannot change {k}: {line}");
                    }
                    self.rules[at]["AccessLevel"] = get("AccessLevel");
                }
                "Set-AuthenticationPolicy" => {
                    let id = get("Identity");
                    let at = self.find(&cmd, id.as_str().unwrap()).unwrap_or_else(|| panic!("no such policy: {line}"));
                    let p = self.policies[at].as_object_mut().unwrap();
                    for (k, v) in &args {
                        if k == "Identity" {
                            continue;
                        }
                        let (name, on) =
                            k.split_once(':').unwrap_or_else(|| panic!("{k} without :$true/:$false in {line}"));
                        assert!(matches!(v, Arg::Switch), "{k} in {line}");
                        assert!(
                            name.starts_with("BlockLegacyAuth") || name.starts_with("BlockModernAuth"),
                            "{k} in {line}"
                        );
                        p.insert(name.to_string(), value(on));
                    }
                }
                "New-AuthenticationPolicy" => {
                    let mut p = Map::new();
                    let name = get("Name");
                    assert!(self.find(&cmd, name.as_str().unwrap()).is_none(), "the policy exists: {line}");
                    p.insert("Name".into(), name);
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
                        // As Exchange 2019 CU13 and later export them.
                        p.insert(format!("BlockLegacyAuth{a}"), Value::Bool(false));
                        p.insert(format!("BlockModernAuth{a}"), Value::Bool(false));
                    }
                    for (k, v) in &args {
                        if k.starts_with("BlockLegacyAuth") || k.starts_with("BlockModernAuth") {
                            assert!(matches!(v, Arg::Switch), "{k} in {line}");
                            p.insert(k.clone(), Value::Bool(true));
                        }
                    }
                    self.policies.push(Value::Object(p));
                }
                "New-ClientAccessRule" => {
                    let name = get("Name").as_str().unwrap().to_string();
                    assert!(self.find(&cmd, &name).is_none(), "the rule exists: {line}");
                    self.client_access_rules.push(name);
                }
                "Set-ClientAccessRule" => {
                    let id = get("Identity");
                    assert!(self.find(&cmd, id.as_str().unwrap()).is_some(), "no such rule: {line}");
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
