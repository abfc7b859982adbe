//! `posture`: what the settings in force leave open, user by user. The logs
//! are replayed through the policy that `policy import` wrote, with the same
//! tally as [`crate::simulate`]; each user's doors are also tried with a
//! standard client from the LAN and from outside. Findings: open backdoors
//! (a user gated on ActiveSync who still reaches mail from a phone or a
//! third-party client), doors open but unused (with the `Set-CASMailbox`
//! lines that close them) and Basic authentication in use.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use exchange::{AuthType, Client, ClientId, NetworkId, Protocol, Request, Traffic};
use policy::emit::exchange::{mailbox_switch, quote};
use policy::{evaluate, Action, ReadyPolicy, Slot};
use serde::Serialize;
use w3c::FileStats;

use crate::findings::is_approved;
use crate::scan::{Accumulate, Accumulator};
use crate::simulate::{slot_name, Simulation, UserDoors};

mod table;

pub use table::render_table;

/// The protocols a posture reports, in its columns' order.
pub const PROTOCOLS: [Protocol; 7] = [
    Protocol::ActiveSync,
    Protocol::Ews,
    Protocol::Owa,
    Protocol::Mapi,
    Protocol::Rpc,
    Protocol::Autodiscover,
    Protocol::PowerShell,
];

/// Protocols through which a backdoor reaches mail.
const MAIL_DOORS: [Protocol; 4] = [Protocol::Ews, Protocol::Owa, Protocol::Mapi, Protocol::Rpc];

/// The address of the LAN probe and of the probe from outside (TEST-NET-3).
const LAN_PROBE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10));
const OUTSIDE_PROBE: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
/// Outlook for iOS and Android syncs from Microsoft's cloud, not from the
/// phone: its probe comes from Exchange Online's 40.96.0.0/13 (endpoint set 1).
const CLOUD_PROBE: IpAddr = IpAddr::V4(Ipv4Addr::new(40, 96, 0, 10));

/// How Outlook for iOS and Android signs in: the name a posture gives it,
/// the ActiveSync DeviceType, the user agent and the authentication it
/// sends. With Basic (`Outlook`, `Outlook-iOS-Android/1.0`) Microsoft's cloud
/// holds the user's password; with hybrid modern auth (`OutlookService`,
/// `Outlook-iOS/2.0` or `Outlook-Android/2.0`) it holds tokens.
const OUTLOOK_MOBILE: [(&str, &str, &str, AuthType); 2] = [
    ("basic", "Outlook", "Outlook-iOS-Android/1.0", AuthType::Basic),
    ("hma", "OutlookService", "Outlook-iOS/2.0", AuthType::Bearer),
];

/// Basic authentication per (protocol index, client): requests and users.
pub type BasicUse = BTreeMap<(usize, u16), (u64, BTreeSet<Box<str>>)>;

/// The simulation's tally plus Basic authentication per (protocol, client).
#[derive(Clone, Debug, Default)]
pub struct Posture {
    pub sim: Simulation,
    pub basic: BasicUse,
    /// People's requests whose authentication type is known (HttpProxy lines).
    pub auth_known: u64,
}

impl Posture {
    pub fn add(&mut self, req: &Request, policy: &ReadyPolicy) {
        self.sim.add(req, policy);
        let person = matches!(req.traffic, Traffic::Person | Traffic::Backend) && !req.is_machine_account();
        if !person || req.user.is_empty() {
            return;
        }
        if req.auth != AuthType::Unknown {
            self.auth_known += 1;
        }
        if req.auth == AuthType::Basic {
            let entry = self.basic.entry((req.protocol.index(), req.client.0)).or_default();
            entry.0 += 1;
            if !entry.1.contains(req.user.as_str()) {
                entry.1.insert(req.user.as_str().into());
            }
        }
    }

    pub fn merge(&mut self, other: Posture) {
        self.sim.merge(other.sim);
        self.auth_known += other.auth_known;
        for (key, (n, users)) in other.basic {
            let entry = self.basic.entry(key).or_default();
            entry.0 += n;
            entry.1.extend(users);
        }
    }
}

impl Accumulate<ReadyPolicy> for Posture {
    #[inline]
    fn add(&mut self, request: &Request, policy: &ReadyPolicy) {
        Posture::add(self, request, policy);
    }
}

/// The posture's sink: every request evaluated and tallied.
pub type PostureCollector<'a> = Accumulator<'a, ReadyPolicy, Posture>;

#[derive(Debug, Serialize)]
pub struct PostureReport {
    pub policy: String,
    /// The protocols of each user's `doors`, in order.
    pub protocols: Vec<&'static str>,
    pub summary: PostureSummary,
    pub users: Vec<UserPosture>,
    /// Riskiest first.
    pub backdoors: Vec<PostureBackdoor>,
    /// Users gated on ActiveSync whose other mail doors serve only approved clients.
    pub gated_without_backdoor: Vec<String>,
    pub unused: Unused,
    pub basic_auth: Vec<BasicAuthUse>,
    pub malformed: u64,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PostureSummary {
    pub lines: u64,
    /// Users for whom a new Outlook for iOS and Android device with Basic
    /// authentication could sync, and those who reached mail with it.
    pub outlook_mobile_basic_open: usize,
    pub outlook_mobile_basic_used: usize,
    pub requests: u64,
    pub users: usize,
    pub backdoor_users: usize,
    pub unused_doors: usize,
    pub basic_auth_requests: u64,
    /// People's requests with a known authentication type (HttpProxy logs only).
    pub auth_known_requests: u64,
}

#[derive(Debug, Serialize)]
pub struct UserPosture {
    pub user: String,
    pub requests: u64,
    pub doors: Vec<Door>,
    /// Outlook for iOS and Android, by how it signs in (`basic`, then `hma`).
    pub outlook_mobile: Vec<OutlookMobileDoor>,
}

/// One user's ActiveSync door for Outlook for iOS and Android signing in one way.
#[derive(Debug, Serialize)]
pub struct OutlookMobileDoor {
    /// `basic` (DeviceType `Outlook`: the password held in Microsoft's cloud)
    /// or `hma` (hybrid modern auth, DeviceType `OutlookService`: tokens).
    pub sign_in: &'static str,
    /// The client this is in the catalog and in the other tables.
    pub client: String,
    /// `open` or `blocked`: whether a new device of the user, syncing from
    /// Microsoft 365's addresses, gets through the settings in force.
    pub state: &'static str,
    pub blocked_by: Option<String>,
    /// The user's own ActiveSync requests from this client: allowed and
    /// answered below 400, and denied.
    pub reached: u64,
    pub denied: u64,
}

/// One user's door on one protocol.
#[derive(Debug, Serialize)]
pub struct Door {
    pub protocol: &'static str,
    /// `open`, `lan-only`, `gated` (some requests or clients refused, others through) or `blocked`.
    pub state: &'static str,
    /// The rule that refused the standard client (from outside, else from the LAN), if one did.
    pub blocked_by: Option<String>,
    /// The rules that denied the user's own requests, with their counts.
    pub denied_by: BTreeMap<String, u64>,
    pub used: bool,
    pub requests: u64,
    /// Allowed requests that succeeded.
    pub reached: u64,
    pub denied: u64,
    /// Clients of the allowed successful requests.
    pub clients: BTreeMap<String, u64>,
    /// Networks of the allowed successful requests.
    pub networks: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct PostureBackdoor {
    pub user: String,
    /// The highest risk of its evidence (see README).
    pub risk: u32,
    /// `high` (a mobile, cloud or third-party client from outside the LAN) or `medium`.
    pub level: &'static str,
    /// The denied requests that gate the user: ActiveSync, and mobile clients anywhere.
    pub gated_by: Vec<Gate>,
    /// Mobile and third-party clients that still reach mail, riskiest first.
    pub evidence: Vec<Evidence>,
    /// Approved clients (Outlook for Windows or Mac, desktop browsers) on the mail doors.
    pub context: Vec<Evidence>,
}

#[derive(Debug, Serialize)]
pub struct Gate {
    pub protocol: &'static str,
    pub client: String,
    pub rule: String,
    pub requests: u64,
}

#[derive(Debug, Serialize)]
pub struct Evidence {
    pub protocol: &'static str,
    pub client: String,
    /// `cloud`, `mobile`, `third-party` or `approved`.
    pub kind: &'static str,
    pub mobile: bool,
    pub network: String,
    pub requests: u64,
    pub risk: u32,
}

#[derive(Debug, Serialize)]
pub struct Unused {
    /// Doors open but unused, per protocol key.
    pub per_protocol: BTreeMap<&'static str, u64>,
    pub doors: Vec<UnusedDoor>,
    /// One line per user: the switches that close the user's unused doors.
    pub commands: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct UnusedDoor {
    pub user: String,
    pub protocol: &'static str,
    /// The cmdlet parameter that closes it, `None` when there is no per-user switch.
    pub switch: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BasicAuthUse {
    pub protocol: &'static str,
    pub client: String,
    pub requests: u64,
    pub users: Vec<String>,
}

/// How much a client on a mail door weighs: 0 for approved clients.
fn client_kind(client: &Client) -> (&'static str, u32) {
    if client.cloud_credentials || client.cloud_token {
        ("cloud", 3)
    } else if client.mobile {
        ("mobile", 2)
    } else if (client.outlook && !client.mobile) || is_approved(client) {
        ("approved", 0)
    } else {
        ("third-party", 2)
    }
}

/// How much a network weighs: named cloud ranges 2, the internet 1, the LAN 0.
fn network_weight(network: NetworkId) -> u32 {
    match network {
        NetworkId::LOOPBACK | NetworkId::INTERNAL => 0,
        NetworkId::EXTERNAL => 1,
        _ => 2,
    }
}

/// Evidence is never an approved client, so its risk is at least 6: a
/// mobile or third-party client on the LAN.
fn level(risk: u32) -> &'static str {
    match risk {
        7.. => "high",
        _ => "medium",
    }
}

/// A request from a standard client of `protocol` for `user`, from `ip`.
fn probe(policy: &ReadyPolicy, user: &str, protocol: Protocol, ip: IpAddr) -> Request {
    const OUTLOOK: &str = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)";
    const BROWSER: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    let (method, stem, ua) = match protocol {
        Protocol::ActiveSync => ("POST", "/Microsoft-Server-ActiveSync/default.eas", "Apple-iPhone14C2/2008.100"),
        Protocol::Ews => ("POST", "/EWS/Exchange.asmx", OUTLOOK),
        Protocol::Owa => ("GET", "/owa/", BROWSER),
        Protocol::Mapi => ("POST", "/mapi/emsmdb/", OUTLOOK),
        Protocol::Rpc => ("RPC_IN_DATA", "/rpc/rpcproxy.dll", "MSRPC"),
        Protocol::Autodiscover => ("POST", "/Autodiscover/Autodiscover.xml", OUTLOOK),
        Protocol::PowerShell => ("POST", "/PowerShell", "Microsoft WinRM Client"),
        _ => ("GET", "/", BROWSER),
    };
    let query = match protocol {
        Protocol::ActiveSync => format!("Cmd=Sync&User={user}&DeviceId=CASGUARDPOSTURE01&DeviceType=iPhone"),
        _ => String::new(),
    };
    tried(policy, user, ip, (method, stem, query, ua, AuthType::Unknown))
}

/// `user`'s request from `ip` (method, stem, query, user agent, sign-in),
/// answered 200, as the interpreter reads it and a person's.
fn tried(
    policy: &ReadyPolicy,
    user: &str,
    ip: IpAddr,
    (method, stem, query, ua, auth): (&str, &str, String, &str, AuthType),
) -> Request {
    let mut req = Request {
        method: method.into(),
        stem: stem.into(),
        query,
        user_agent: ua.into(),
        username: user.into(),
        auth,
        status: 200,
        server_port: 443,
        peer_ip: Some(ip),
        ..Request::default()
    };
    policy.interpreter().interpret(&mut req);
    req.user = user.into();
    req.traffic = Traffic::Person;
    req
}

/// Whether an unused door's command closes remote PowerShell, which is also
/// how the Exchange Management Shell connects, on the Exchange server too.
pub fn closes_the_shell(command: &str) -> bool {
    command.starts_with("Set-User ") && command.contains(" -RemotePowerShellEnabled $false")
}

/// What the script says above the `Set-User -RemotePowerShellEnabled $false`
/// lines, which it writes commented out.
pub const SHELL_WARNING: &str =
    "\n# WARNING: -RemotePowerShellEnabled $false also closes the Exchange Management Shell to the\n\
# account, on the Exchange server itself too: an administrator who sent no /PowerShell request\n\
# in these logs is listed here. Uncomment the lines of accounts that never administer Exchange.\n";

impl PostureReport {
    pub fn build(posture: &Posture, policy: &ReadyPolicy, files: &[FileStats]) -> PostureReport {
        let sim = &posture.sim;
        let tally = if sim.backend_only() { &sim.backend } else { &sim.people };
        let catalog = policy.interpreter().catalog();
        let networks = policy.interpreter().networks();
        let client = |id: u16| catalog.get(ClientId(id));
        let mut users: Vec<(&str, &UserDoors)> = tally.users.iter().map(|(u, d)| (&**u, d)).collect();
        users.sort_by(|a, b| a.0.cmp(b.0));

        let mut user_reports = Vec::new();
        let mut backdoors = Vec::new();
        let mut gated_only = Vec::new();
        let mut unused_doors = Vec::new();
        let mut per_protocol: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut commands = Vec::new();
        for (user, doors) in users {
            let mut report_doors = Vec::new();
            let mut switches = Vec::new();
            let mut powershell_off = false;
            for protocol in PROTOCOLS {
                let door = door(policy, user, protocol, doors);
                if door.requests == 0 && matches!(door.state, "open" | "lan-only") && protocol != Protocol::Autodiscover
                {
                    *per_protocol.entry(protocol.key()).or_default() += 1;
                    let switch = if protocol == Protocol::PowerShell {
                        powershell_off = true;
                        Some("RemotePowerShellEnabled".to_string())
                    } else {
                        mailbox_switch(protocol).map(|(name, value)| {
                            switches.push(format!("-{name} {value}"));
                            name.to_string()
                        })
                    };
                    unused_doors.push(UnusedDoor { user: user.to_string(), protocol: protocol.key(), switch });
                }
                report_doors.push(door);
            }
            if !switches.is_empty() {
                commands.push(format!("Set-CASMailbox -Identity {} {}", quote(user), switches.join(" ")));
            }
            if powershell_off {
                commands.push(format!("Set-User -Identity {} -RemotePowerShellEnabled $false", quote(user)));
            }
            let requests = report_doors.iter().map(|d| d.requests).sum::<u64>();
            let outlook_mobile = OUTLOOK_MOBILE.map(|how| outlook_mobile_door(policy, user, how, doors)).into();
            user_reports.push(UserPosture { user: user.to_string(), requests, doors: report_doors, outlook_mobile });

            // Gated: ActiveSync refused, or a mobile client refused anywhere.
            let gates: Vec<Gate> = doors
                .denied_clients
                .iter()
                .filter(|((p, c, _), _)| *p == Protocol::ActiveSync.index() || client(*c).mobile)
                .map(|((p, c, slot), n)| Gate {
                    protocol: Protocol::ALL[*p].key(),
                    client: client(*c).id.clone(),
                    rule: slot_name(policy, *slot),
                    requests: *n,
                })
                .collect();
            if gates.is_empty() {
                continue;
            }
            let mut evidence = Vec::new();
            let mut context = Vec::new();
            for ((p, c, net), n) in &doors.reached_clients {
                let protocol = Protocol::ALL[*p];
                if !MAIL_DOORS.contains(&protocol) {
                    continue;
                }
                let c = client(*c);
                let (kind, weight) = client_kind(c);
                let network = NetworkId(*net);
                let e = Evidence {
                    protocol: protocol.key(),
                    client: c.id.clone(),
                    kind,
                    mobile: c.mobile,
                    network: networks.name(network).to_string(),
                    requests: *n,
                    risk: weight * 3 + network_weight(network),
                };
                if kind == "approved" {
                    context.push(e);
                } else {
                    evidence.push(e);
                }
            }
            if evidence.is_empty() {
                gated_only.push(user.to_string());
                continue;
            }
            evidence.sort_by(|a, b| b.risk.cmp(&a.risk).then(b.requests.cmp(&a.requests)));
            let risk = evidence[0].risk;
            backdoors.push(PostureBackdoor {
                user: user.to_string(),
                risk,
                level: level(risk),
                gated_by: gates,
                evidence,
                context,
            });
        }
        let weight = |b: &PostureBackdoor| b.evidence.iter().map(|e| e.requests).sum::<u64>();
        backdoors.sort_by(|a, b| b.risk.cmp(&a.risk).then(weight(b).cmp(&weight(a))).then(a.user.cmp(&b.user)));

        let basic_auth: Vec<BasicAuthUse> = posture
            .basic
            .iter()
            .map(|((p, c), (n, users))| BasicAuthUse {
                protocol: Protocol::ALL[*p].key(),
                client: client(*c).id.clone(),
                requests: *n,
                users: users.iter().map(|u| u.to_string()).collect(),
            })
            .collect();

        let mut notes =
            vec!["POP and IMAP are not in IIS or HttpProxy logs: their use cannot be seen, and they are not reported"
                .to_string()];
        if posture.auth_known == 0 {
            notes.push(
                "no request has an authentication type (IIS logs do not record it): Basic authentication in use \
                 is known only from HttpProxy logs"
                    .to_string(),
            );
        }
        if sim.backend_only() {
            notes.push("only back-end lines were found: their hops are counted as people's requests".to_string());
        }

        PostureReport {
            policy: policy.policy().origin().to_string(),
            protocols: PROTOCOLS.iter().map(|p| p.key()).collect(),
            summary: PostureSummary {
                lines: files.iter().map(|f| f.lines).sum(),
                outlook_mobile_basic_open: basic_door(&user_reports).filter(|d| d.state == "open").count(),
                outlook_mobile_basic_used: basic_door(&user_reports).filter(|d| d.reached > 0).count(),
                requests: tally.requests,
                users: user_reports.len(),
                backdoor_users: backdoors.len(),
                unused_doors: unused_doors.len(),
                basic_auth_requests: basic_auth.iter().map(|b| b.requests).sum(),
                auth_known_requests: posture.auth_known,
            },
            users: user_reports,
            backdoors,
            gated_without_backdoor: gated_only,
            unused: Unused { per_protocol, doors: unused_doors, commands },
            basic_auth,
            malformed: files.iter().map(|f| f.malformed_total()).sum(),
            notes,
        }
    }
}

/// Each user's Outlook for iOS and Android door with Basic authentication.
fn basic_door(users: &[UserPosture]) -> impl Iterator<Item = &OutlookMobileDoor> {
    users.iter().flat_map(|u| u.outlook_mobile.iter().filter(|d| d.sign_in == "basic"))
}

/// One user's ActiveSync door for Outlook for iOS and Android signing in as
/// `how` says: a new device tried from Microsoft 365, and what the user's own
/// requests from that client met.
fn outlook_mobile_door(
    policy: &ReadyPolicy,
    user: &str,
    (sign_in, device_type, ua, auth): (&'static str, &str, &str, AuthType),
    doors: &UserDoors,
) -> OutlookMobileDoor {
    let query = format!("Cmd=Sync&User={user}&DeviceId=CASGUARDPOSTURE02&DeviceType={device_type}");
    let stem = "/Microsoft-Server-ActiveSync/default.eas";
    let req = tried(policy, user, CLOUD_PROBE, ("POST", stem, query, ua, auth));
    let decision = evaluate(policy, &req);
    let (p, client) = (Protocol::ActiveSync.index(), req.client.0);
    let reached: u64 =
        doors.reached_clients.iter().filter(|((q, c, _), _)| (*q, *c) == (p, client)).map(|(_, n)| n).sum();
    let denied: u64 =
        doors.denied_clients.iter().filter(|((q, c, _), _)| (*q, *c) == (p, client)).map(|(_, n)| n).sum();
    let open = decision.action != Action::Deny;
    OutlookMobileDoor {
        sign_in,
        client: policy.interpreter().catalog().get(req.client).id.clone(),
        state: if open { "open" } else { "blocked" },
        blocked_by: (!open).then(|| policy.decided_by(&decision).to_string()),
        reached,
        denied,
    }
}

/// One user's door on `protocol`: the standard client tried from the LAN and
/// from outside, and what the user's own requests met.
fn door(policy: &ReadyPolicy, user: &str, protocol: Protocol, doors: &UserDoors) -> Door {
    let p = protocol.index();
    let catalog = policy.interpreter().catalog();
    let networks = policy.interpreter().networks();
    let outside = evaluate(policy, &probe(policy, user, protocol, OUTSIDE_PROBE));
    let lan = evaluate(policy, &probe(policy, user, protocol, LAN_PROBE));
    let (requests, reached, denied) = (doors.requests[p], doors.reached[p], doors.denied[p]);
    let probe_open = outside.action != Action::Deny || lan.action != Action::Deny;
    // Refusals all by the rule that refuses the outside try, or by rules on
    // the client's address, have the network as their cause, which
    // `lan-only` names; any other makes the door `gated`.
    let lan_only = lan.action != Action::Deny && outside.action == Action::Deny;
    let outside_slot = policy.slot(&outside);
    let by_network = |slot: usize| {
        slot == outside_slot || matches!(policy.slot_kind(slot), Slot::Rule(rule) if rule.reads_address())
    };
    let refused_otherwise = doors.denied_clients.iter().any(|((q, _, slot), _)| *q == p && !by_network(*slot));
    let some_refused = !probe_open || (denied > 0 && (!lan_only || refused_otherwise));
    let some_through = reached > 0 || probe_open;
    let state = if some_refused && some_through {
        "gated"
    } else if !some_through {
        "blocked"
    } else if lan_only {
        "lan-only"
    } else {
        "open"
    };
    let blocked_by =
        [&outside, &lan].into_iter().find(|d| d.action == Action::Deny).map(|d| policy.decided_by(d).to_string());
    let mut denied_by = BTreeMap::new();
    for ((q, _, slot), n) in &doors.denied_clients {
        if *q == p {
            *denied_by.entry(slot_name(policy, *slot)).or_default() += n;
        }
    }
    let mut clients = BTreeMap::new();
    let mut nets = BTreeMap::new();
    for ((q, c, net), n) in &doors.reached_clients {
        if *q == p {
            *clients.entry(catalog.get(ClientId(*c)).id.clone()).or_default() += n;
            *nets.entry(networks.name(NetworkId(*net)).to_string()).or_default() += n;
        }
    }
    Door {
        protocol: protocol.key(),
        state,
        blocked_by,
        denied_by,
        used: requests > 0,
        requests,
        reached,
        denied,
        clients,
        networks: nets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ready;

    const IN_FORCE: &str = r#"
default = "allow"

[mailbox_protocols]
[[mailbox_protocols.mailbox]]
user = "alice"
activesync_enabled = false
mapi_http_enabled = false

[[ip_restrictions]]
path = "/PowerShell"
allow_unlisted = false
deny_action = "Forbidden"
entries = [{ cidr = "10.0.0.0/8", allowed = true }]
"#;

    fn request(policy: &ReadyPolicy, user: &str, stem: &str, ua: &str, ip: [u8; 4]) -> Request {
        let mut req = Request {
            method: "POST".into(),
            stem: stem.into(),
            user_agent: ua.into(),
            username: user.into(),
            status: 200,
            server_port: 443,
            peer_ip: Some(IpAddr::V4(Ipv4Addr::from(ip))),
            ..Request::default()
        };
        policy.interpreter().interpret(&mut req);
        req
    }

    #[test]
    fn doors_name_the_switch_that_closes_them_and_unused_open_doors_get_their_lines() {
        let policy = ready(IN_FORCE, "in-force.toml", None);
        let outlook = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)";
        let mut posture = Posture::default();
        for user in ["alice", "bob"] {
            posture.add(&request(&policy, user, "/EWS/Exchange.asmx", outlook, [10, 1, 2, 3]), &policy);
        }
        // Alice's Outlook tries MAPI over HTTP from outside: refused by her switch.
        posture.add(&request(&policy, "alice", "/mapi/emsmdb/", outlook, [198, 51, 100, 7]), &policy);
        let report = PostureReport::build(&posture, &policy, &[]);
        let door = |user: &str, protocol: &str| {
            let u = report.users.iter().find(|u| u.user == user).unwrap();
            u.doors.iter().find(|d| d.protocol == protocol).unwrap()
        };

        let mapi = door("alice", "mapi");
        assert_eq!(mapi.state, "blocked");
        assert!(mapi.blocked_by.as_deref().unwrap().contains("MapiHttpEnabled=false"), "{mapi:?}");
        assert_eq!((mapi.used, mapi.denied), (true, 1));
        assert!(mapi.denied_by.keys().any(|r| r.contains("MapiHttpEnabled=false")));
        assert!(door("alice", "activesync").blocked_by.as_deref().unwrap().contains("ActiveSyncEnabled=false"));
        // MapiHttpEnabled leaves Outlook Anywhere open.
        assert_eq!(door("alice", "rpc").state, "open");
        assert_eq!(door("bob", "mapi").state, "open");
        let ews = door("bob", "ews");
        assert_eq!((ews.state, ews.used, ews.reached), ("open", true, 1));
        assert_eq!(ews.networks.get("internal"), Some(&1));
        // Remote PowerShell is open from the LAN only.
        let ps = door("bob", "powershell");
        assert_eq!(ps.state, "lan-only");
        assert!(ps.blocked_by.as_deref().unwrap().contains("ip_restrictions"), "{ps:?}");

        // Closed doors get no line; used ones neither.
        let alice =
            report.unused.commands.iter().find(|c| c.contains("'alice'") && c.starts_with("Set-CASMailbox")).unwrap();
        assert_eq!(alice, "Set-CASMailbox -Identity 'alice' -OWAEnabled $false -MAPIBlockOutlookRpcHttp $true");
        let bob =
            report.unused.commands.iter().find(|c| c.contains("'bob'") && c.starts_with("Set-CASMailbox")).unwrap();
        assert_eq!(
            bob,
            "Set-CASMailbox -Identity 'bob' -ActiveSyncEnabled $false -OWAEnabled $false -MapiHttpEnabled $false \
             -MAPIBlockOutlookRpcHttp $true"
        );
        assert_eq!(report.unused.per_protocol.get("mapi"), Some(&1));
        // Nobody was gated: no backdoor.
        assert!(report.backdoors.is_empty() && report.gated_without_backdoor.is_empty());
    }

    /// A door kept to the LAN is `lan-only` when what refused the user's
    /// own requests is the network, and `gated` when another rule did.
    #[test]
    fn a_lan_only_door_is_gated_only_by_refusals_the_network_does_not_explain() {
        let text = format!(
            "{IN_FORCE}\n[[rule]]\nname = \"no curl\"\naction = \"deny\"\nuser_agent = {{ contains = [\"curl\"] }}\n"
        );
        let policy = ready(&text, "in-force.toml", None);
        let mut posture = Posture::default();
        posture.add(&request(&policy, "bob", "/PowerShell", "Microsoft WinRM Client", [198, 51, 100, 7]), &policy);
        posture.add(&request(&policy, "carol", "/PowerShell", "curl/8.5.0", [10, 1, 2, 3]), &policy);
        let report = PostureReport::build(&posture, &policy, &[]);
        let powershell = |user: &str| {
            let u = report.users.iter().find(|u| u.user == user).unwrap();
            let d = u.doors.iter().find(|d| d.protocol == "powershell").unwrap();
            (d.state, d.denied)
        };
        assert_eq!(powershell("bob"), ("lan-only", 1), "refused from outside by the IP restriction");
        assert_eq!(powershell("carol"), ("gated", 1), "refused on the LAN by a rule on the client");
    }
}
