//! What makes a finding: its kinds, what each means, and which requests
//! count toward one. The aggregate counts them, the report, its table and
//! page list them, and watch alerts on them, all from here.

use std::fmt;

use exchange::{Catalog, Protocol, Request, Traffic};
use serde::{Serialize, Serializer};

/// A kind of finding. Its [`key`](FindingKind::key) is what the JSON, CSV
/// and alerts say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// A client that keeps the user's Exchange password in its vendor's cloud.
    CloudCredentials,
    /// EWS reached by a client other than Outlook for Windows or Mac.
    EwsNonOutlook,
    /// A mobile client on EWS, OWA, RPC or MAPI.
    MobileOnEws,
    /// A request matching a public detection rule.
    ExploitAttempt,
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [FindingKind; 4] = [
        FindingKind::CloudCredentials,
        FindingKind::EwsNonOutlook,
        FindingKind::MobileOnEws,
        FindingKind::ExploitAttempt,
    ];

    /// The kinds about people (counted per device), in report order.
    pub const PERSON: [FindingKind; 3] =
        [FindingKind::CloudCredentials, FindingKind::EwsNonOutlook, FindingKind::MobileOnEws];

    /// Stable kebab-case name.
    pub fn key(self) -> &'static str {
        match self {
            FindingKind::CloudCredentials => "cloud-credentials",
            FindingKind::EwsNonOutlook => "ews-non-outlook",
            FindingKind::MobileOnEws => "mobile-on-ews",
            FindingKind::ExploitAttempt => "exploit-attempt",
        }
    }

    /// What the kind means, for a reader of the report.
    pub fn meaning(self) -> &'static str {
        match self {
            FindingKind::CloudCredentials => "clients that keep the user's Exchange password in their vendor's cloud",
            FindingKind::EwsNonOutlook => "EWS reached by a client other than Outlook for Windows or Mac",
            FindingKind::MobileOnEws => {
                "mobile clients on EWS, OWA or Outlook Anywhere, around an ActiveSync-only gateway"
            }
            FindingKind::ExploitAttempt => "requests matching public detection rules for Exchange exploits",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl Serialize for FindingKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.key())
    }
}

/// Requests toward each person finding, indexed as [`FindingKind::PERSON`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FindingCounts([u64; 3]);

impl FindingCounts {
    /// The person findings one request of a person makes (none for anything
    /// else: probes, machines, back-end hops beside people are not people's).
    pub fn of(req: &Request, catalog: &Catalog) -> FindingCounts {
        let client = catalog.get(req.client);
        let mobile_door = matches!(req.protocol, Protocol::Ews | Protocol::Owa | Protocol::Rpc | Protocol::Mapi);
        FindingCounts([
            u64::from(client.cloud_credentials),
            u64::from(req.protocol == Protocol::Ews && !client.outlook),
            u64::from(client.mobile && mobile_door),
        ])
    }

    /// Requests toward `kind`; 0 for kinds that are not about people.
    pub fn get(&self, kind: FindingKind) -> u64 {
        FindingKind::PERSON.iter().position(|k| *k == kind).map_or(0, |i| self.0[i])
    }

    /// The kinds with at least one request.
    pub fn kinds(&self) -> impl Iterator<Item = FindingKind> + '_ {
        FindingKind::PERSON.into_iter().zip(self.0).filter(|(_, n)| *n > 0).map(|(k, _)| k)
    }

    pub fn merge(&mut self, other: FindingCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }
}

/// The findings one request makes, as the audit counts them: an exploit
/// attempt, or the person findings of a person's request with a user.
pub fn findings_of(req: &Request, catalog: &Catalog) -> impl Iterator<Item = FindingKind> {
    let person = match req.traffic {
        Traffic::Person if !req.user.is_empty() => FindingCounts::of(req, catalog),
        _ => FindingCounts::default(),
    };
    let exploit = (req.traffic == Traffic::Exploit).then_some(FindingKind::ExploitAttempt);
    exploit.into_iter().chain(FindingKind::PERSON.into_iter().zip(person.0).filter(|(_, n)| *n > 0).map(|(k, _)| k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_report_strings_and_serialize_as_such() {
        let keys: Vec<&str> = FindingKind::ALL.iter().map(|k| k.key()).collect();
        assert_eq!(keys, ["cloud-credentials", "ews-non-outlook", "mobile-on-ews", "exploit-attempt"]);
        assert_eq!(serde_json::to_string(&FindingKind::MobileOnEws).unwrap(), "\"mobile-on-ews\"");
    }

    #[test]
    fn a_request_makes_the_findings_the_audit_counts() {
        let catalog = Catalog::builtin();
        let mut req = Request {
            protocol: Protocol::Ews,
            client: catalog.id_of("outlook-mobile").unwrap(),
            user: "alice".into(),
            ..Request::default()
        };
        let kinds: Vec<_> = findings_of(&req, &catalog).collect();
        assert_eq!(kinds, FindingKind::PERSON);
        assert_eq!(FindingCounts::of(&req, &catalog).get(FindingKind::MobileOnEws), 1);
        req.user.clear();
        assert_eq!(findings_of(&req, &catalog).count(), 0, "anonymous requests make no finding");
        req.traffic = Traffic::Exploit;
        assert_eq!(findings_of(&req, &catalog).collect::<Vec<_>>(), [FindingKind::ExploitAttempt]);
    }
}
