//! How a request authenticated. Exchange's HttpProxy logs name it
//! (`AuthenticationType`) and a gateway sees the Authorization header; IIS
//! W3C logs do not carry it, so a request read from them is `Unknown`.

/// The authentication type of a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// Not recorded (IIS logs), or not yet known.
    #[default]
    Unknown,
    Anonymous,
    Basic,
    Digest,
    Ntlm,
    /// SPNEGO: Kerberos or NTLM inside.
    Negotiate,
    Kerberos,
    /// OAuth bearer tokens (hybrid modern authentication).
    OAuth,
    Bearer,
    /// Outlook on the web's forms-based sign-in.
    Fba,
    Certificate,
    Other,
}

impl AuthType {
    pub const ALL: [AuthType; 12] = [
        AuthType::Unknown,
        AuthType::Anonymous,
        AuthType::Basic,
        AuthType::Digest,
        AuthType::Ntlm,
        AuthType::Negotiate,
        AuthType::Kerberos,
        AuthType::OAuth,
        AuthType::Bearer,
        AuthType::Fba,
        AuthType::Certificate,
        AuthType::Other,
    ];

    /// Stable lower-case key used in policy files and reports.
    pub fn key(self) -> &'static str {
        match self {
            AuthType::Unknown => "unknown",
            AuthType::Anonymous => "anonymous",
            AuthType::Basic => "basic",
            AuthType::Digest => "digest",
            AuthType::Ntlm => "ntlm",
            AuthType::Negotiate => "negotiate",
            AuthType::Kerberos => "kerberos",
            AuthType::OAuth => "oauth",
            AuthType::Bearer => "bearer",
            AuthType::Fba => "fba",
            AuthType::Certificate => "certificate",
            AuthType::Other => "other",
        }
    }

    pub fn from_key(key: &str) -> Option<AuthType> {
        AuthType::ALL.into_iter().find(|a| a.key().eq_ignore_ascii_case(key))
    }

    /// What Exchange's authentication policies call legacy authentication:
    /// Basic, Digest and Windows authentication (NTLM, Kerberos, and
    /// Negotiate, which carries one of them). Source: New-AuthenticationPolicy,
    /// `-BlockLegacyAuth*` ("Basic authentication, Digest authentication,
    /// Windows authentication (NTLM and Kerberos)").
    pub fn is_legacy(self) -> bool {
        matches!(self, AuthType::Basic | AuthType::Digest | AuthType::Ntlm | AuthType::Negotiate | AuthType::Kerberos)
    }

    /// Modern authentication: OAuth bearer tokens.
    pub fn is_modern(self) -> bool {
        matches!(self, AuthType::OAuth | AuthType::Bearer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_classes() {
        for a in AuthType::ALL {
            assert_eq!(AuthType::from_key(a.key()), Some(a));
            assert!(!(a.is_legacy() && a.is_modern()), "{a:?}");
        }
        assert_eq!(AuthType::from_key("NTLM"), Some(AuthType::Ntlm));
        assert!(AuthType::Basic.is_legacy() && AuthType::Negotiate.is_legacy());
        assert!(AuthType::OAuth.is_modern() && !AuthType::Unknown.is_legacy() && !AuthType::Unknown.is_modern());
    }
}
