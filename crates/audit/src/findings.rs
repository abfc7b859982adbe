//! What makes a finding: its kinds, what each means, how serious it is, and
//! which requests count toward one. The aggregate counts them, the report,
//! its table and page list them, and watch alerts on them, all from here.

use std::fmt;

use exchange::{AttackKind, Catalog, Client, Protocol, Request, Traffic};
use serde::{Serialize, Serializer};

/// A kind of finding. Its [`key`](FindingKind::key) is what the JSON, CSV
/// and alerts say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// A script Exchange does not ship, or a web shell's command.
    WebShell,
    /// An archive, dump or mailbox export fetched from a web path.
    DataTheft,
    /// A request matching a public rule for a known Exchange vulnerability.
    ExploitAttempt,
    /// One source failing to sign in as many users.
    PasswordSpray,
    /// Many failed sign-ins against one user.
    BruteForce,
    /// A client that keeps the user's Exchange password in its vendor's cloud.
    CloudCredentials,
    /// EWS reached by a client other than Outlook for Windows or Mac.
    EwsNonOutlook,
    /// A mobile client on EWS, OWA, RPC or MAPI.
    MobileOnEws,
    /// A client whose vendor's cloud syncs the mailbox with an OAuth token.
    CloudToken,
    /// A folder that is none of Exchange's virtual directories.
    OutsideVdirs,
    /// A scanner's requests.
    Scanner,
}

/// How urgently a kind of finding wants an admin's eyes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn key(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [FindingKind; 11] = [
        FindingKind::WebShell,
        FindingKind::DataTheft,
        FindingKind::ExploitAttempt,
        FindingKind::PasswordSpray,
        FindingKind::BruteForce,
        FindingKind::CloudCredentials,
        FindingKind::EwsNonOutlook,
        FindingKind::MobileOnEws,
        FindingKind::CloudToken,
        FindingKind::OutsideVdirs,
        FindingKind::Scanner,
    ];

    /// The kinds about people (counted per device), in report order.
    pub const PERSON: [FindingKind; 4] =
        [FindingKind::CloudCredentials, FindingKind::EwsNonOutlook, FindingKind::MobileOnEws, FindingKind::CloudToken];

    /// The finding an attack of `kind` makes.
    pub fn of_attack(kind: AttackKind) -> FindingKind {
        match kind {
            AttackKind::Exploit => FindingKind::ExploitAttempt,
            AttackKind::WebShell => FindingKind::WebShell,
            AttackKind::DataTheft => FindingKind::DataTheft,
            AttackKind::OutsideVdirs => FindingKind::OutsideVdirs,
            AttackKind::Scanner => FindingKind::Scanner,
        }
    }

    /// Stable kebab-case name.
    pub fn key(self) -> &'static str {
        match self {
            FindingKind::WebShell => "web-shell",
            FindingKind::DataTheft => "data-theft",
            FindingKind::ExploitAttempt => "exploit-attempt",
            FindingKind::PasswordSpray => "password-spray",
            FindingKind::BruteForce => "brute-force",
            FindingKind::CloudCredentials => "cloud-credentials",
            FindingKind::EwsNonOutlook => "ews-non-outlook",
            FindingKind::MobileOnEws => "mobile-on-ews",
            FindingKind::CloudToken => "cloud-token",
            FindingKind::OutsideVdirs => "outside-vdirs",
            FindingKind::Scanner => "scanner",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            FindingKind::WebShell
            | FindingKind::DataTheft
            | FindingKind::ExploitAttempt
            | FindingKind::PasswordSpray => Severity::High,
            FindingKind::BruteForce | FindingKind::CloudCredentials | FindingKind::OutsideVdirs => Severity::Medium,
            FindingKind::EwsNonOutlook | FindingKind::MobileOnEws | FindingKind::CloudToken | FindingKind::Scanner => {
                Severity::Low
            }
        }
    }

    /// What the kind means, for a reader of the report.
    pub fn meaning(self) -> &'static str {
        match self {
            FindingKind::WebShell => "scripts Exchange does not ship, or web-shell commands: a web shell being planted or used",
            FindingKind::DataTheft => "archives, dumps or mailbox exports fetched from web paths: data being taken",
            FindingKind::ExploitAttempt => "requests matching public detection rules for Exchange exploits",
            FindingKind::PasswordSpray => "one source failing to sign in as many users",
            FindingKind::BruteForce => "many failed sign-ins against one user (account lockout risk)",
            FindingKind::CloudCredentials => "clients that keep the user's Exchange password in their vendor's cloud",
            FindingKind::EwsNonOutlook => "EWS reached by a client other than Outlook for Windows or Mac",
            FindingKind::MobileOnEws => {
                "mobile clients on EWS, OWA or Outlook Anywhere, around an ActiveSync-only gateway"
            }
            FindingKind::CloudToken => {
                "clients whose vendor's cloud syncs the mailbox with an OAuth token (no password held): Outlook mobile with hybrid modern auth"
            }
            FindingKind::OutsideVdirs => "folders that are none of Exchange's virtual directories",
            FindingKind::Scanner => "vulnerability and port scanners, by their user agents",
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
pub struct FindingCounts([u64; 4]);

impl FindingCounts {
    /// The person findings one request of a person makes (none for anything
    /// else: probes, machines, back-end hops beside people are not people's).
    /// A failed sign-in makes none: the client did not get in.
    /// `ews-non-outlook` leaves out the approved clients (see [`is_approved`]):
    /// Teams' and Skype for Business's calendar services use EWS for the
    /// user, and an EWS allow list without them breaks their calendars; so
    /// does Exchange's availability service (hybrid free/busy from Exchange
    /// Online, `ASProxy/CrossForest/...`), whose calls acting for a user are
    /// judged by that user's EWS settings in Exchange; and so do mailbox
    /// moves (`/EWS/MRSProxy.svc`, a migration endpoint's account), which
    /// Exchange routes to its Mailbox Replication Service, not to EWS.
    pub fn of(req: &Request, catalog: &Catalog) -> FindingCounts {
        if req.is_failed_sign_in() {
            return FindingCounts::default();
        }
        let client = catalog.get(req.client);
        let mobile_door = matches!(req.protocol, Protocol::Ews | Protocol::Owa | Protocol::Rpc | Protocol::Mapi);
        FindingCounts([
            u64::from(client.cloud_credentials),
            u64::from(req.protocol == Protocol::Ews && !client.outlook && !is_approved(client)),
            u64::from(client.mobile && mobile_door),
            u64::from(client.cloud_token),
        ])
    }

    /// These counts of `requests` requests, with the findings that come from
    /// the client alone made by `client`: requests that join a device of
    /// another client of the same app take that client's findings.
    pub fn as_client(self, requests: u64, client: &Client) -> FindingCounts {
        let mut counts = self;
        counts.0[0] = if client.cloud_credentials { requests } else { 0 };
        counts.0[3] = if client.cloud_token { requests } else { 0 };
        counts
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

/// Clients taken as approved on the mail doors besides Outlook for Windows
/// and Mac: Microsoft's desktop apps and services (Exchange's own
/// availability service and its Mailbox Replication Service's mailbox
/// moves among them), and desktop browsers on OWA.
const APPROVED: [&str; 7] =
    ["browser", "new-outlook", "teams", "skype-for-business", "lync-mac", "exchange-availability", "exchange-mrs"];

/// One of the [`APPROVED`] clients.
pub fn is_approved(client: &Client) -> bool {
    APPROVED.contains(&client.id.as_str())
}

/// The findings one request makes, as the audit counts them one request at
/// a time: an attack's, or the person findings of a person's request with a
/// user. (Password spraying and brute force need many requests: see
/// [`crate::signins`].)
pub fn findings_of(req: &Request, catalog: &Catalog) -> impl Iterator<Item = FindingKind> {
    let person = match req.traffic {
        Traffic::Person if !req.user.is_empty() => FindingCounts::of(req, catalog),
        _ => FindingCounts::default(),
    };
    let attack = req.attack.filter(|_| req.traffic == Traffic::Attack).map(|a| FindingKind::of_attack(a.kind));
    attack.into_iter().chain(FindingKind::PERSON.into_iter().zip(person.0).filter(|(_, n)| *n > 0).map(|(k, _)| k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange::Detection;

    #[test]
    fn keys_are_the_report_strings_and_serialize_as_such() {
        let keys: Vec<&str> = FindingKind::ALL.iter().map(|k| k.key()).collect();
        assert_eq!(
            keys,
            [
                "web-shell",
                "data-theft",
                "exploit-attempt",
                "password-spray",
                "brute-force",
                "cloud-credentials",
                "ews-non-outlook",
                "mobile-on-ews",
                "cloud-token",
                "outside-vdirs",
                "scanner"
            ]
        );
        assert_eq!(serde_json::to_string(&FindingKind::MobileOnEws).unwrap(), "\"mobile-on-ews\"");
        assert!(FindingKind::CloudToken.severity() > FindingKind::CloudCredentials.severity());
        let attacks: std::collections::BTreeSet<FindingKind> =
            AttackKind::ALL.into_iter().map(FindingKind::of_attack).collect();
        assert_eq!(attacks.len(), AttackKind::ALL.len(), "each kind of attack is a finding of its own");
    }

    /// `user`'s EWS request from the catalog's client `client`.
    fn ews(catalog: &Catalog, client: &str, user: &str) -> Request {
        Request {
            protocol: Protocol::Ews,
            client: catalog.id_of(client).unwrap(),
            user: user.into(),
            ..Request::default()
        }
    }

    #[test]
    fn a_request_makes_the_findings_the_audit_counts() {
        let catalog = Catalog::builtin();
        let mut req = ews(&catalog, "outlook-mobile", "alice");
        let kinds: Vec<_> = findings_of(&req, &catalog).collect();
        assert_eq!(kinds, [FindingKind::CloudCredentials, FindingKind::EwsNonOutlook, FindingKind::MobileOnEws]);
        assert_eq!(FindingCounts::of(&req, &catalog).get(FindingKind::MobileOnEws), 1);
        req.client = catalog.id_of("outlook-mobile-hma").unwrap();
        assert!(findings_of(&req, &catalog).any(|k| k == FindingKind::CloudToken));
        assert!(!findings_of(&req, &catalog).any(|k| k == FindingKind::CloudCredentials));
        (req.status, req.substatus) = (401, 1);
        assert_eq!(findings_of(&req, &catalog).count(), 0, "a failed sign-in makes no finding");
        req.status = 200;
        req.user.clear();
        assert_eq!(findings_of(&req, &catalog).count(), 0, "anonymous requests make no finding");
        req.traffic = Traffic::Attack;
        req.attack = Some(Detection { rule: "web-shell", kind: AttackKind::WebShell });
        assert_eq!(findings_of(&req, &catalog).collect::<Vec<_>>(), [FindingKind::WebShell]);
    }

    #[test]
    fn hybrid_free_busy_is_no_ews_backdoor() {
        // tests/apart (stop 36): Exchange Online's availability service
        // looking up an on-premises calendar for a cloud user, with an OAuth
        // token acting for her, is Exchange's free/busy, not a mail client.
        let catalog = Catalog::builtin();
        let mut req = ews(&catalog, "exchange-availability", "nina");
        assert_eq!(findings_of(&req, &catalog).count(), 0);
        req.client = catalog.id_of("ews-app").unwrap();
        assert_eq!(findings_of(&req, &catalog).collect::<Vec<_>>(), [FindingKind::EwsNonOutlook]);
    }

    #[test]
    fn joined_requests_take_their_devices_client() {
        let catalog = Catalog::builtin();
        let basic = FindingCounts([3, 0, 0, 0]);
        let hma = catalog.get(catalog.id_of("outlook-mobile-hma").unwrap());
        let joined = basic.as_client(3, hma);
        assert_eq!((joined.get(FindingKind::CloudCredentials), joined.get(FindingKind::CloudToken)), (0, 3));
    }
}
