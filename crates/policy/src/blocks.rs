//! The emulation blocks of a policy file as configured: Exchange's EWS
//! access and ActiveSync device access settings, IIS request filtering and
//! IP restrictions. Compiling turns them into rules; the emitters write them
//! back as the real mechanisms' configuration.

use ipnet::IpNet;

use crate::model::Header;

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
    /// Per-mailbox overrides (user key, settings as written).
    pub users: Vec<(String, EwsSettings)>,
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
    /// (user, allowed ids, blocked ids)
    pub personal: Vec<(String, Vec<String>, Vec<String>)>,
}

#[derive(Clone, Debug)]
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

#[derive(Clone, Debug)]
pub(crate) struct IpRestriction {
    pub path: String,
    pub allow_unlisted: bool,
    pub deny_action: DenyAction,
    pub enable_proxy_mode: bool,
    pub entries: Vec<(IpNet, bool)>,
}

/// The emulation blocks as configured, kept for the emitters.
#[derive(Clone, Debug, Default)]
pub(crate) struct Blocks {
    pub iis_filter: Vec<IisFilterRule>,
    pub ews: Option<EwsBlock>,
    pub device_access: Option<DeviceBlock>,
    pub ip_restrictions: Vec<IpRestriction>,
}
