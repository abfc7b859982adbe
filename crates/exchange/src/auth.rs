//! How a request authenticated: the scheme HttpProxy logs name in
//! `AuthenticationType`, or the one a live request's `Authorization` header
//! starts with. IIS logs do not record it; their requests say [`AuthType::Unknown`].

/// An authentication scheme. Only the scheme is ever kept, never a credential.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthType {
    /// Not recorded: IIS logs, an empty HttpProxy field, no `Authorization` header.
    #[default]
    Unknown,
    /// User name and password in every request: what Exchange's
    /// authentication policies call legacy authentication.
    Basic,
    Ntlm,
    /// SPNEGO: Kerberos, or NTLM inside it.
    Negotiate,
    Kerberos,
    OAuth,
    /// A bearer token (OAuth, as sent in `Authorization: Bearer`).
    Bearer,
    /// Forms-based authentication (the OWA and ECP sign-in page).
    Fba,
    /// Another scheme named (`Digest`, `LiveIdBasic`, a certificate, ...).
    Other,
}

impl AuthType {
    pub const COUNT: usize = 9;

    pub const ALL: [AuthType; AuthType::COUNT] = [
        AuthType::Unknown,
        AuthType::Basic,
        AuthType::Ntlm,
        AuthType::Negotiate,
        AuthType::Kerberos,
        AuthType::OAuth,
        AuthType::Bearer,
        AuthType::Fba,
        AuthType::Other,
    ];

    /// Stable lower-case key used in reports, exports and policy files.
    pub fn key(self) -> &'static str {
        match self {
            AuthType::Unknown => "unknown",
            AuthType::Basic => "basic",
            AuthType::Ntlm => "ntlm",
            AuthType::Negotiate => "negotiate",
            AuthType::Kerberos => "kerberos",
            AuthType::OAuth => "oauth",
            AuthType::Bearer => "bearer",
            AuthType::Fba => "fba",
            AuthType::Other => "other",
        }
    }

    pub fn from_key(key: &str) -> Option<AuthType> {
        AuthType::ALL.into_iter().find(|a| a.key().eq_ignore_ascii_case(key))
    }

    /// Index into arrays of per-scheme counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A scheme as HttpProxy logs it or as an `Authorization` header starts
    /// (any case); empty is [`AuthType::Unknown`], a name not listed here
    /// [`AuthType::Other`].
    pub fn from_name(name: &[u8]) -> AuthType {
        let name = name.trim_ascii();
        if name.is_empty() {
            return AuthType::Unknown;
        }
        // Each scheme named here is spelled as its key, any case: all but the
        // first (`unknown`) and the last (`other`).
        let named = &AuthType::ALL[1..AuthType::COUNT - 1];
        named.iter().copied().find(|a| name.eq_ignore_ascii_case(a.key().as_bytes())).unwrap_or(AuthType::Other)
    }

    /// The scheme of an `Authorization` header value: its first word only,
    /// so the credentials after it are never read.
    pub fn of_authorization(value: &[u8]) -> AuthType {
        let value = value.trim_ascii_start();
        let end = value.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(value.len());
        AuthType::from_name(&value[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_names_and_headers() {
        for (i, a) in AuthType::ALL.iter().enumerate() {
            assert_eq!(a.index(), i);
            assert_eq!(AuthType::from_key(a.key()), Some(*a));
        }
        assert_eq!(AuthType::from_name(b"NTLM"), AuthType::Ntlm);
        assert_eq!(AuthType::from_name(b" fba "), AuthType::Fba);
        assert_eq!(AuthType::from_name(b""), AuthType::Unknown);
        assert_eq!(AuthType::from_name(b"LiveIdBasic"), AuthType::Other);
        assert_eq!(AuthType::from_name(b"Unknown"), AuthType::Other, "a name, not the absence of one");
        assert_eq!(AuthType::of_authorization(b"Basic Q09OVE9TT1xqZG9lOnNlY3JldA=="), AuthType::Basic);
        assert_eq!(AuthType::of_authorization(b"  bearer eyJ0eXAi"), AuthType::Bearer);
        assert_eq!(AuthType::of_authorization(b"Negotiate"), AuthType::Negotiate);
        assert_eq!(AuthType::of_authorization(b""), AuthType::Unknown);
    }
}
