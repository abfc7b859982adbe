//! The policy file as written: serde structures that mirror the TOML.
//! Every table rejects unknown keys; values that need resolving keep their
//! byte spans so semantic errors can name the line.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::blocks::{AppPolicy, EwsSettings};

/// A string or a list of strings; each item keeps its span when it has one.
#[derive(Debug, Default)]
pub(crate) struct List(pub Vec<Spanned<String>>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = List;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<List, E> {
                Ok(List(vec![Spanned::new(0..0, v.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    out.push(item);
                }
                Ok(List(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawAction {
    Allow,
    Deny,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawDevice {
    Known,
    New,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUserAgent {
    pub contains: Option<List>,
    pub prefix: Option<List>,
    pub exact: Option<List>,
    #[serde(default)]
    pub case_sensitive: bool,
}

/// `user = "pattern"`, `user = ["a", "*b*"]` or `user = { group_file = "f.txt" }`.
#[derive(Debug)]
pub(crate) enum RawUser {
    Patterns(List),
    GroupFile(Spanned<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroupFile {
    group_file: Spanned<String>,
}

impl<'de> Deserialize<'de> for RawUser {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawUser;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a user pattern, a list of patterns, or { group_file = \"path\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawUser, E> {
                Ok(RawUser::Patterns(List(vec![Spanned::new(0..0, v.to_string())])))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawUser, A::Error> {
                List::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(RawUser::Patterns)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RawUser, A::Error> {
                let g = RawGroupFile::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawUser::GroupFile(g.group_file))
            }
        }
        d.deserialize_any(V)
    }
}

macro_rules! conditions {
    ($(#[$m:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$m])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $($extra)*
            pub protocol: Option<Spanned<List>>,
            pub path: Option<Spanned<List>>,
            pub user_agent: Option<Spanned<RawUserAgent>>,
            pub client: Option<Spanned<List>>,
            pub command: Option<Spanned<List>>,
            pub device_type: Option<Spanned<List>>,
            pub device_id: Option<Spanned<List>>,
            pub user: Option<Spanned<RawUser>>,
            pub network: Option<Spanned<List>>,
            pub cidr: Option<Spanned<List>>,
            pub device: Option<Spanned<RawDevice>>,
            pub auth: Option<Spanned<List>>,
        }
    };
}

conditions!(
    /// Exceptions: each condition given is one exception.
    RawConds {}
);

conditions!(
    /// One `[[rule]]`.
    RawRule {
        pub name: Spanned<String>,
        pub action: RawAction,
        pub status: Option<Spanned<u16>>,
        pub substatus: Option<u16>,
        pub unless: Option<RawConds>,
    }
);

impl RawRule {
    pub fn split(self) -> (RawConds, Option<RawConds>) {
        let c = RawConds {
            protocol: self.protocol,
            path: self.path,
            user_agent: self.user_agent,
            client: self.client,
            command: self.command,
            device_type: self.device_type,
            device_id: self.device_id,
            user: self.user,
            network: self.network,
            cidr: self.cidr,
            device: self.device,
            auth: self.auth,
        };
        (c, self.unless)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIisRule {
    pub name: Spanned<String>,
    /// Virtual directory the rule is installed in (`/Microsoft-Server-ActiveSync`); none = whole site.
    pub path: Option<Spanned<String>>,
    pub scan_headers: Option<Spanned<List>>,
    #[serde(default)]
    pub scan_url: bool,
    #[serde(default)]
    pub scan_query_string: bool,
    pub deny_strings: Spanned<List>,
    pub applies_to: Option<Spanned<List>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIisFilter {
    #[serde(default)]
    pub rule: Vec<RawIisRule>,
}

/// Declares an enum of values Exchange's cmdlets take: PowerShell reads them
/// in any case (`-AccessLevel block` is `Block`), and so does the policy.
/// Each variant lists its spellings; an unknown value is refused naming the
/// first of each.
macro_rules! any_case_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident = [$($spelling:literal),+],)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($variant,)*
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                const NAMES: &[&str] = &[$(any_case_enum!(@first $($spelling),+)),*];
                let value = String::deserialize(d)?;
                $(
                    if [$($spelling),+].iter().any(|n| n.eq_ignore_ascii_case(&value)) {
                        return Ok($name::$variant);
                    }
                )*
                Err(de::Error::unknown_variant(&value, NAMES))
            }
        }
    };
    (@first $first:literal $(, $rest:literal)*) => {
        $first
    };
}

any_case_enum! {
    pub(crate) enum RawAppPolicy {
        AllowList = ["EnforceAllowList", "enforce_allow_list"],
        BlockList = ["EnforceBlockList", "enforce_block_list"],
    }
}

impl RawAppPolicy {
    pub(crate) fn compiled(self) -> AppPolicy {
        match self {
            RawAppPolicy::AllowList => AppPolicy::EnforceAllowList,
            RawAppPolicy::BlockList => AppPolicy::EnforceBlockList,
        }
    }
}

/// Declares a table that takes the EWS switches (the organization's and a
/// mailbox's are the same) beside its own fields, and `take_ews` to compile
/// them. A macro, as serde's `flatten` cannot go with `deny_unknown_fields`.
macro_rules! with_ews_switches {
    ($(#[$meta:meta])* struct $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            pub ews_enabled: Option<bool>,
            pub allow_outlook: Option<bool>,
            pub allow_mac_outlook: Option<bool>,
            pub allow_entourage: Option<bool>,
            pub application_access_policy: Option<RawAppPolicy>,
            pub list: Option<Vec<String>>,
        }

        impl $name {
            /// The EWS switches, compiled; the list is moved out.
            pub(crate) fn take_ews(&mut self) -> EwsSettings {
                EwsSettings {
                    ews_enabled: self.ews_enabled,
                    allow_outlook: self.allow_outlook,
                    allow_mac_outlook: self.allow_mac_outlook,
                    allow_entourage: self.allow_entourage,
                    application_access_policy: self.application_access_policy.map(RawAppPolicy::compiled),
                    list: self.list.take(),
                }
            }
        }
    };
}

with_ews_switches! {
    struct RawEwsUser {
        /// The mailbox's names: the first is its identity, the others its sign-in names.
        user: Spanned<List>,
    }
}

with_ews_switches! {
    struct RawEwsAccess {
        status: Option<Spanned<u16>>,
        #[serde(default)]
        user: Vec<RawEwsUser>,
    }
}

any_case_enum! {
    pub(crate) enum RawAccessLevel {
        Allow = ["Allow"],
        Block = ["Block"],
        Quarantine = ["Quarantine"],
    }
}

any_case_enum! {
    pub(crate) enum RawCharacteristic {
        DeviceType = ["DeviceType"],
        DeviceModel = ["DeviceModel"],
        DeviceOS = ["DeviceOS"],
        UserAgent = ["UserAgent"],
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDeviceRule {
    pub characteristic: RawCharacteristic,
    pub query_string: String,
    pub access_level: RawAccessLevel,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPersonal {
    pub user: Spanned<List>,
    #[serde(default)]
    pub allowed_device_ids: Vec<String>,
    #[serde(default)]
    pub blocked_device_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDeviceAccess {
    pub default_access_level: Option<RawAccessLevel>,
    pub status: Option<Spanned<u16>>,
    pub quarantine_status: Option<Spanned<u16>>,
    #[serde(default)]
    pub rule: Vec<Spanned<RawDeviceRule>>,
    #[serde(default)]
    pub personal: Vec<Spanned<RawPersonal>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawDenyAction {
    Forbidden,
    Unauthorized,
    NotFound,
    AbortRequest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIpEntry {
    pub cidr: Spanned<String>,
    pub allowed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIpRestrictions {
    pub path: Spanned<String>,
    #[serde(default = "yes")]
    pub allow_unlisted: bool,
    pub deny_action: Option<RawDenyAction>,
    #[serde(default)]
    pub enable_proxy_mode: bool,
    #[serde(default)]
    pub entries: Vec<RawIpEntry>,
}

fn yes() -> bool {
    true
}

/// `[mailbox_protocols]`: Set-CASMailbox protocol switches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMailboxProtocols {
    pub mapi_http_enabled: Option<bool>,
    pub status: Option<Spanned<u16>>,
    #[serde(default)]
    pub mailbox: Vec<RawMailbox>,
}

/// Declares a struct with one mailbox's protocol switches (`Set-CASMailbox`)
/// beside its own fields: [`MailboxSwitches`] itself, and the raw table
/// that takes them, which gets `switches` with `=> switches`.
macro_rules! mailbox_switches {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* } $(=> $switches:ident)?) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            pub activesync_enabled: Option<bool>,
            pub owa_enabled: Option<bool>,
            pub owa_for_devices_enabled: Option<bool>,
            pub mapi_enabled: Option<bool>,
            pub mapi_http_enabled: Option<bool>,
            pub mapi_block_outlook_rpc_http: Option<bool>,
            pub pop_enabled: Option<bool>,
            pub imap_enabled: Option<bool>,
        }

        $(impl $name {
            /// The protocol switches alone.
            pub(crate) fn $switches(&self) -> crate::blocks::MailboxSwitches {
                crate::blocks::MailboxSwitches {
                    activesync_enabled: self.activesync_enabled,
                    owa_enabled: self.owa_enabled,
                    owa_for_devices_enabled: self.owa_for_devices_enabled,
                    mapi_enabled: self.mapi_enabled,
                    mapi_http_enabled: self.mapi_http_enabled,
                    mapi_block_outlook_rpc_http: self.mapi_block_outlook_rpc_http,
                    pop_enabled: self.pop_enabled,
                    imap_enabled: self.imap_enabled,
                }
            }
        })?
    };
}
pub(crate) use mailbox_switches;

mailbox_switches! {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawMailbox {
        user: Spanned<List>,
    } => switches
}

/// `[auth_policies]`: Exchange 2019 authentication policies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthPolicies {
    pub default: Option<Spanned<String>>,
    pub status: Option<Spanned<u16>>,
    #[serde(default)]
    pub policy: Vec<RawAuthPolicy>,
    #[serde(default)]
    pub user: Vec<RawAuthUser>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthPolicy {
    pub name: Spanned<String>,
    pub block_legacy: Option<Spanned<List>>,
    pub block_modern: Option<Spanned<List>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthUser {
    pub user: Spanned<List>,
    pub policy: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExtension {
    pub extension: String,
    pub allowed: bool,
}

/// `[[request_filtering]]`: the request filtering in force at one path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequestFiltering {
    pub path: Spanned<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "yes")]
    pub allow_unlisted_extensions: bool,
    #[serde(default)]
    pub file_extensions: Vec<RawExtension>,
    #[serde(default)]
    pub hidden_segments: Vec<String>,
    #[serde(default)]
    pub deny_url_sequences: Vec<String>,
    #[serde(default)]
    pub deny_query_string_sequences: Vec<String>,
    #[serde(default)]
    pub rule: Vec<RawIisRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRewriteCondition {
    pub input: String,
    pub pattern: String,
    #[serde(default)]
    pub negate: bool,
    #[serde(default = "yes")]
    pub ignore_case: bool,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawRewriteAction {
    None,
    AbortRequest,
    CustomResponse,
    Redirect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRewriteRule {
    pub name: Spanned<String>,
    pub base: Option<String>,
    #[serde(default = "any_url")]
    pub url: String,
    pub syntax: Option<String>,
    #[serde(default = "yes")]
    pub ignore_case: bool,
    #[serde(default)]
    pub negate: bool,
    /// `MatchAll` (default) or `MatchAny`.
    pub logical_grouping: Option<String>,
    #[serde(default)]
    pub conditions: Vec<RawRewriteCondition>,
    pub action: RawRewriteAction,
    pub status: Option<Spanned<u16>>,
    pub substatus: Option<u16>,
    pub redirect_url: Option<String>,
    /// IIS `appendQueryString`, true unless said.
    #[serde(default = "yes")]
    pub append_query_string: bool,
    #[serde(default)]
    pub stop_processing: bool,
}

fn any_url() -> String {
    ".*".into()
}

/// `[[url_rewrite]]`: the URL Rewrite rules in force at one path, or the global rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUrlRewrite {
    pub path: Option<Spanned<String>>,
    #[serde(default)]
    pub global: bool,
    #[serde(default)]
    pub rule: Vec<Spanned<RawRewriteRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub default: Option<RawAction>,
    pub default_status: Option<Spanned<u16>>,
    #[serde(default)]
    pub ranges: BTreeMap<String, Spanned<List>>,
    #[serde(default)]
    pub rule: Vec<RawRule>,
    pub iis_filter: Option<RawIisFilter>,
    pub ews_access: Option<Spanned<RawEwsAccess>>,
    pub device_access: Option<Spanned<RawDeviceAccess>>,
    #[serde(default)]
    pub ip_restrictions: Vec<RawIpRestrictions>,
    #[serde(default)]
    pub request_filtering: Vec<RawRequestFiltering>,
    #[serde(default)]
    pub url_rewrite: Vec<RawUrlRewrite>,
    pub mailbox_protocols: Option<Spanned<RawMailboxProtocols>>,
    pub auth_policies: Option<Spanned<RawAuthPolicies>>,
}
