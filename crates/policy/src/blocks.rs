//! The emulation blocks of a policy file as configured: Exchange's EWS
//! access, ActiveSync device access, per-mailbox protocol switches and
//! authentication policies; IIS request filtering, IP restrictions and URL
//! Rewrite. Compiling turns them into rules; the emitters write them back
//! as the real mechanisms' configuration.

use exchange::Protocol;
use ipnet::IpNet;

use crate::model::Header;
use crate::pattern::PatternSyntax;

/// Exchange's EWS application access policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppPolicy {
    EnforceAllowList,
    EnforceBlockList,
}

impl AppPolicy {
    pub fn name(self) -> &'static str {
        match self {
            AppPolicy::EnforceAllowList => "EnforceAllowList",
            AppPolicy::EnforceBlockList => "EnforceBlockList",
        }
    }
}

/// EWS settings at one level (organization or mailbox); `None` = `$null`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EwsSettings {
    pub ews_enabled: Option<bool>,
    pub allow_outlook: Option<bool>,
    pub allow_mac_outlook: Option<bool>,
    pub allow_entourage: Option<bool>,
    pub application_access_policy: Option<AppPolicy>,
    pub list: Option<Vec<String>>,
}

impl EwsSettings {
    /// The mailbox's settings over the organization's, as Exchange combines
    /// them: each switch falls back on its own; the access policy and its
    /// list are taken together from the mailbox when it has a policy.
    pub(crate) fn over(&self, org: &EwsSettings) -> EwsSettings {
        let (policy, list) = if self.application_access_policy.is_some() {
            (self.application_access_policy, self.list.clone())
        } else {
            (org.application_access_policy, org.list.clone())
        };
        EwsSettings {
            ews_enabled: self.ews_enabled.or(org.ews_enabled),
            allow_outlook: self.allow_outlook.or(org.allow_outlook),
            allow_mac_outlook: self.allow_mac_outlook.or(org.allow_mac_outlook),
            allow_entourage: self.allow_entourage.or(org.allow_entourage),
            application_access_policy: policy,
            list,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct EwsBlock {
    pub org: EwsSettings,
    /// Per-mailbox overrides (the mailbox's names, the first its identity; settings as written).
    pub users: Vec<(Vec<String>, EwsSettings)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLevel {
    Allow,
    Block,
    Quarantine,
}

impl AccessLevel {
    pub fn name(self) -> &'static str {
        match self {
            AccessLevel::Allow => "Allow",
            AccessLevel::Block => "Block",
            AccessLevel::Quarantine => "Quarantine",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Characteristic {
    DeviceType,
    DeviceModel,
    DeviceOS,
    UserAgent,
}

impl Characteristic {
    pub fn name(self) -> &'static str {
        match self {
            Characteristic::DeviceType => "DeviceType",
            Characteristic::DeviceModel => "DeviceModel",
            Characteristic::DeviceOS => "DeviceOS",
            Characteristic::UserAgent => "UserAgent",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceBlock {
    pub default_access_level: Option<AccessLevel>,
    pub rules: Vec<(Characteristic, String, AccessLevel)>,
    /// (the mailbox's names, the first its identity; allowed ids, blocked ids)
    pub personal: Vec<(Vec<String>, Vec<String>, Vec<String>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IisFilterRule {
    pub name: String,
    /// Virtual directory as written (`/Microsoft-Server-ActiveSync`), if any.
    pub path: Option<String>,
    pub headers: Vec<Header>,
    pub scan_url: bool,
    pub scan_query_string: bool,
    pub deny_strings: Vec<String>,
    pub applies_to: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyAction {
    Forbidden,
    Unauthorized,
    NotFound,
    AbortRequest,
}

impl DenyAction {
    pub fn name(self) -> &'static str {
        match self {
            DenyAction::Forbidden => "Forbidden",
            DenyAction::Unauthorized => "Unauthorized",
            DenyAction::NotFound => "NotFound",
            DenyAction::AbortRequest => "AbortRequest",
        }
    }
    pub(crate) fn status(self) -> u16 {
        match self {
            DenyAction::Forbidden => 403,
            DenyAction::Unauthorized => 401,
            DenyAction::NotFound => 404,
            DenyAction::AbortRequest => 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IpRestriction {
    pub path: String,
    pub allow_unlisted: bool,
    pub deny_action: DenyAction,
    pub enable_proxy_mode: bool,
    pub entries: Vec<(IpNet, bool)>,
}

crate::raw::mailbox_switches! {
    /// One mailbox's protocol switches (`Set-CASMailbox`); `None` = not set.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct MailboxSwitches {}
}

impl MailboxSwitches {
    /// (Set-CASMailbox parameter, value) of the switches that are set.
    pub fn set(&self) -> Vec<(&'static str, bool)> {
        [
            ("ActiveSyncEnabled", self.activesync_enabled),
            ("OWAEnabled", self.owa_enabled),
            ("OWAforDevicesEnabled", self.owa_for_devices_enabled),
            ("MAPIEnabled", self.mapi_enabled),
            ("MapiHttpEnabled", self.mapi_http_enabled),
            ("MAPIBlockOutlookRpcHttp", self.mapi_block_outlook_rpc_http),
            ("PopEnabled", self.pop_enabled),
            ("ImapEnabled", self.imap_enabled),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect()
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct MailboxBlock {
    /// `Set-OrganizationConfig -MapiHttpEnabled`; a mailbox's own value wins.
    pub mapi_http_enabled: Option<bool>,
    /// (the mailbox's names, the first its identity; its switches)
    pub mailboxes: Vec<(Vec<String>, MailboxSwitches)>,
}

/// A protocol an authentication policy names (`-BlockLegacyAuth<Name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    ActiveSync,
    Autodiscover,
    Imap,
    Mapi,
    OfflineAddressBook,
    Pop,
    Rpc,
    WebServices,
}

impl AuthProtocol {
    pub const ALL: [AuthProtocol; 8] = [
        AuthProtocol::ActiveSync,
        AuthProtocol::Autodiscover,
        AuthProtocol::Imap,
        AuthProtocol::Mapi,
        AuthProtocol::OfflineAddressBook,
        AuthProtocol::Pop,
        AuthProtocol::Rpc,
        AuthProtocol::WebServices,
    ];

    /// The name in the cmdlets' parameters (`BlockLegacyAuth` + name).
    pub fn name(self) -> &'static str {
        match self {
            AuthProtocol::ActiveSync => "ActiveSync",
            AuthProtocol::Autodiscover => "Autodiscover",
            AuthProtocol::Imap => "Imap",
            AuthProtocol::Mapi => "Mapi",
            AuthProtocol::OfflineAddressBook => "OfflineAddressBook",
            AuthProtocol::Pop => "Pop",
            AuthProtocol::Rpc => "Rpc",
            AuthProtocol::WebServices => "WebServices",
        }
    }

    pub fn from_name(s: &str) -> Option<AuthProtocol> {
        AuthProtocol::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }

    /// The HTTP protocol it covers; POP and IMAP are not HTTP.
    pub fn protocol(self) -> Option<Protocol> {
        Some(match self {
            AuthProtocol::ActiveSync => Protocol::ActiveSync,
            AuthProtocol::Autodiscover => Protocol::Autodiscover,
            AuthProtocol::Mapi => Protocol::Mapi,
            AuthProtocol::OfflineAddressBook => Protocol::Oab,
            AuthProtocol::Rpc => Protocol::Rpc,
            AuthProtocol::WebServices => Protocol::Ews,
            AuthProtocol::Imap | AuthProtocol::Pop => return None,
        })
    }
}

/// One authentication policy (`New-AuthenticationPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthPolicy {
    pub name: String,
    pub block_legacy: Vec<AuthProtocol>,
    pub block_modern: Vec<AuthProtocol>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct AuthBlock {
    /// `Set-OrganizationConfig -DefaultAuthenticationPolicy`.
    pub default: Option<String>,
    pub policies: Vec<AuthPolicy>,
    /// (the user's names, the first its identity; policy name) from `Set-User -AuthenticationPolicy`.
    pub users: Vec<(Vec<String>, String)>,
}

/// IIS request filtering in force at one path (a whole section, after IIS
/// merged the levels above it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RequestFiltering {
    pub path: String,
    /// False where the web.config removes `RequestFilteringModule`.
    pub enabled: bool,
    pub allow_unlisted_extensions: bool,
    /// (extension with its dot, allowed)
    pub extensions: Vec<(String, bool)>,
    pub hidden_segments: Vec<String>,
    pub deny_url_sequences: Vec<String>,
    pub deny_query_string_sequences: Vec<String>,
    pub rules: Vec<IisFilterRule>,
}

/// What a URL Rewrite rule does when it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewriteAction {
    /// Nothing; with `stop_processing`, later rules are skipped.
    None,
    AbortRequest,
    CustomResponse {
        status: u16,
        substatus: u16,
    },
    Redirect {
        url: String,
        status: u16,
        /// `appendQueryString` (IIS's default: true): the request's query
        /// string is added to `url`.
        append_query: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteCondition {
    /// The server variable as written, `{HTTP_USER_AGENT}`.
    pub input: String,
    pub pattern: String,
    pub negate: bool,
    pub ignore_case: bool,
}

/// One URL Rewrite inbound rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteRule {
    pub name: String,
    /// Where the rule is defined: its URL pattern sees the path below it.
    pub base: String,
    pub url: String,
    pub syntax: PatternSyntax,
    pub ignore_case: bool,
    pub negate: bool,
    pub match_any: bool,
    pub conditions: Vec<RewriteCondition>,
    pub action: RewriteAction,
    pub stop_processing: bool,
}

/// The URL Rewrite rules in force at one path (`None`: the server's global rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RewriteSet {
    pub path: Option<String>,
    pub rules: Vec<RewriteRule>,
}

/// The emulation blocks as configured, kept for the emitters.
#[derive(Clone, Debug, Default)]
pub(crate) struct Blocks {
    pub iis_filter: Vec<IisFilterRule>,
    pub ews: Option<EwsBlock>,
    pub device_access: Option<DeviceBlock>,
    pub ip_restrictions: Vec<IpRestriction>,
    pub request_filtering: Vec<RequestFiltering>,
    pub url_rewrite: Vec<RewriteSet>,
    pub mailbox: Option<MailboxBlock>,
    pub auth: Option<AuthBlock>,
}
