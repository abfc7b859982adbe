//! Who a request belongs to: the account key behind `DOMAIN\user`,
//! `user@domain` or a bare name, and what kind of account it is.

/// What kind of account a user name denotes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UserKind {
    /// No user: empty or `-`.
    #[default]
    None,
    Person,
    /// A computer account (`EX04$`).
    Machine,
    /// A Managed Availability health mailbox (`HealthMailbox` + 32 hex digits).
    HealthMailbox,
}

/// Write the identity key of `raw` into `out` (cleared first) and say what
/// kind of account it is. `DOMAIN\user` and `user@domain` both give `user`,
/// lower-cased. Allocates only if `out` must grow.
pub fn account_key(raw: &str, out: &mut String) -> UserKind {
    out.clear();
    let mut name = raw.trim();
    // Byte searches: both separators are ASCII, so the cuts fall on char boundaries.
    if let Some(i) = memchr::memrchr(b'\\', name.as_bytes()) {
        name = &name[i + 1..];
    }
    if let Some(i) = memchr::memchr(b'@', name.as_bytes()) {
        name = &name[..i];
    }
    let name = name.trim();
    if name.is_empty() || name == "-" || is_anonymous_name(name) {
        return UserKind::None;
    }
    if name.is_ascii() {
        out.push_str(name);
        out.make_ascii_lowercase();
    } else {
        out.extend(name.chars().flat_map(char::to_lowercase));
    }
    if is_health_mailbox(name) {
        UserKind::HealthMailbox
    } else if name.ends_with('$') {
        UserKind::Machine
    } else {
        UserKind::Person
    }
}

/// A name that means nobody signed in: IIS writes `Anonymous` for some
/// anonymous requests (a real Exchange back-end MAPI line in Elastic's IIS
/// test data, `... 444 Anonymous fe80::...`, and public scripts that parse
/// `- 443 Anonymous <c-ip>`), and Windows names the anonymous token
/// `NT AUTHORITY\ANONYMOUS LOGON`.
fn is_anonymous_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("anonymous") || name.eq_ignore_ascii_case("anonymous logon")
}

/// `HealthMailbox` followed by exactly 32 hex digits (a GUID without dashes).
pub fn is_health_mailbox(name: &str) -> bool {
    const PREFIX: &str = "healthmailbox";
    let b = name.as_bytes();
    b.len() == PREFIX.len() + 32
        && b[..PREFIX.len()].eq_ignore_ascii_case(PREFIX.as_bytes())
        && b[PREFIX.len()..].iter().all(u8::is_ascii_hexdigit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> (String, UserKind) {
        let mut out = String::from("stale");
        let kind = account_key(raw, &mut out);
        (out, kind)
    }

    #[test]
    fn forms() {
        let cases = [
            ("CONTOSO\\JDoe", "jdoe", UserKind::Person),
            ("ranDom\\Ran.User", "ran.user", UserKind::Person),
            ("JDoe@Contoso.com", "jdoe", UserKind::Person),
            ("jdoe", "jdoe", UserKind::Person),
            ("  jdoe ", "jdoe", UserKind::Person),
            ("RanDomain\\EX04$", "ex04$", UserKind::Machine),
            ("EX04$", "ex04$", UserKind::Machine),
            (
                "HealthMailboxdf8b87828ab0427cb91e985bbdfcec62@yourdomain.com",
                "healthmailboxdf8b87828ab0427cb91e985bbdfcec62",
                UserKind::HealthMailbox,
            ),
            (
                "CONTOSO\\HealthMailboxDF8B87828AB0427CB91E985BBDFCEC62",
                "healthmailboxdf8b87828ab0427cb91e985bbdfcec62",
                UserKind::HealthMailbox,
            ),
            // Not 32 hex digits: an ordinary person named like that.
            ("HealthMailboxdf8b", "healthmailboxdf8b", UserKind::Person),
            ("Ünal@contoso.com", "ünal", UserKind::Person),
            ("-", "", UserKind::None),
            ("", "", UserKind::None),
            ("CONTOSO\\", "", UserKind::None),
            ("@contoso.com", "", UserKind::None),
            ("Anonymous", "", UserKind::None),
            ("NT AUTHORITY\\ANONYMOUS LOGON", "", UserKind::None),
            // A person whose name only starts so is one.
            ("CONTOSO\\anonymous.coward", "anonymous.coward", UserKind::Person),
        ];
        for (raw, want, kind) in cases {
            assert_eq!(key(raw), (want.to_string(), kind), "{raw}");
        }
    }
}
