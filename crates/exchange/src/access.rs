//! ActiveSync's own verdict on a device: the `As` token Exchange writes in
//! the `&Log=` diagnostics of an ActiveSync request.
//!
//! Decompiled Exchange 2013-2019 (AirSync `Command`) writes it as the
//! device access state's name followed by the first letter of its reason,
//! with `AB` between for the reasons of ActiveSync's auto-block
//! (`UserAgentsChanges` to `CommandFrequency`): `AllowedG`, `QuarantinedD`,
//! `BlockedABO`. The states and reasons are those of
//! `Get-MobileDeviceStatistics` (`DeviceAccessState`, `DeviceAccessStateReason`).

use serde::Serialize;

/// `DeviceAccessState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessState {
    Allowed,
    Blocked,
    Quarantined,
    DeviceDiscovery,
    Unknown,
}

impl AccessState {
    const NAMES: [(&'static str, AccessState); 5] = [
        ("Allowed", AccessState::Allowed),
        ("Blocked", AccessState::Blocked),
        ("Quarantined", AccessState::Quarantined),
        ("DeviceDiscovery", AccessState::DeviceDiscovery),
        ("Unknown", AccessState::Unknown),
    ];

    pub fn key(self) -> &'static str {
        match self {
            AccessState::Allowed => "allowed",
            AccessState::Blocked => "blocked",
            AccessState::Quarantined => "quarantined",
            AccessState::DeviceDiscovery => "device-discovery",
            AccessState::Unknown => "unknown",
        }
    }
}

/// A device access state and the reason Exchange gave for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccessVerdict {
    pub state: AccessState,
    /// `DeviceAccessStateReason` by name; where one letter stands for two
    /// reasons both are named (`Unknown or Upgrade`).
    pub reason: &'static str,
}

/// Reasons written with their first letter alone.
const REASONS: [(u8, &str); 6] = [
    (b'G', "Global"),
    (b'I', "Individual"),
    (b'D', "DeviceRule"),
    (b'P', "Policy"),
    (b'U', "Unknown or Upgrade"),
    (b'E', "ExternallyManaged, ExternalCompliance or ExternalEnrollment"),
];

/// Reasons of the auto-block, written after `AB`.
const AUTO_BLOCK: [(u8, &str); 7] = [
    (b'U', "UserAgentsChanges"),
    (b'R', "RecentCommands"),
    (b'W', "Watsons"),
    (b'O', "OutOfBudgets"),
    (b'S', "SyncCommands"),
    (b'E', "EnableNotificationEmail"),
    (b'C', "CommandFrequency"),
];

/// Read an `As` token such as `AllowedG`; `None` for anything else.
pub fn parse_access_state(token: &str) -> Option<AccessVerdict> {
    let (name, state) = AccessState::NAMES.into_iter().find(|(name, _)| token.starts_with(name))?;
    let rest = &token.as_bytes()[name.len()..];
    let reason = match rest {
        [b'A', b'B', letter] => AUTO_BLOCK.iter().find(|(l, _)| l == letter)?.1,
        [letter] => REASONS.iter().find(|(l, _)| l == letter)?.1,
        [] => "",
        _ => return None,
    };
    Some(AccessVerdict { state, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_as_exchange_writes_them() {
        let v = |t| parse_access_state(t).map(|v| (v.state, v.reason));
        // `AllowedG`: Microsoft's support article on the iOS 9 MeetingResponse loop (a real line).
        assert_eq!(v("AllowedG"), Some((AccessState::Allowed, "Global")));
        assert_eq!(v("QuarantinedD"), Some((AccessState::Quarantined, "DeviceRule")));
        assert_eq!(v("BlockedI"), Some((AccessState::Blocked, "Individual")));
        // Written by Exchange itself when a device runs out of budget.
        assert_eq!(v("BlockedABO"), Some((AccessState::Blocked, "OutOfBudgets")));
        assert_eq!(v("BlockedABU"), Some((AccessState::Blocked, "UserAgentsChanges")));
        assert_eq!(v("DeviceDiscoveryG"), Some((AccessState::DeviceDiscovery, "Global")));
        assert_eq!(v("Allowed"), Some((AccessState::Allowed, "")));
        for bad in ["", "Allowedx", "AllowedGG", "BlockedABZ", "allowedg", "Permitted"] {
            assert_eq!(v(bad), None, "{bad:?}");
        }
    }
}
