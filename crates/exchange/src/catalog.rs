//! The client catalog: which software sent a request, from its user agent,
//! ActiveSync device type and device id, and protocol. Rules are data
//! (`data/clients.toml`), compiled once so that classifying a request
//! allocates nothing.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

use crate::data_file;
use crate::request::Protocol;

/// Index of a client in its [`Catalog`]. The default, 0, is always `unknown`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u16);

impl ClientId {
    pub const UNKNOWN: ClientId = ClientId(0);

    /// Index into arrays of per-client counters (`0..catalog.len()`).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A kind of client software.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Client {
    /// Stable key, e.g. `outlook-mobile`.
    pub id: String,
    pub name: String,
    pub vendor: String,
    /// The app this client is a way of running: clients of one app (Outlook
    /// mobile with Basic or with hybrid modern auth) are one device on one
    /// phone. The client's own id unless the catalog says otherwise.
    pub app: String,
    /// Keeps the user's credentials in a vendor's cloud.
    pub cloud_credentials: bool,
    /// A vendor's cloud syncs the mailbox with an OAuth token on the user's
    /// behalf: no password is held, but the mail is in that cloud.
    pub cloud_token: bool,
    pub mobile: bool,
    /// Microsoft Outlook for Windows or Mac (what EWS `EwsAllowOutlook` admits).
    pub outlook: bool,
}

/// Why a catalog is refused. Displayed, the message alone: whoever read
/// the file puts its name and [`CatalogError::line`] before it.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{message}")]
    Toml { line: usize, message: String },
    #[error("duplicate client id `{id}`")]
    DuplicateId { line: usize, id: String },
    #[error("unknown protocol `{value}`")]
    UnknownProtocol { line: usize, value: String },
    #[error("client id is empty")]
    EmptyId { line: usize },
    #[error("more than {max} distinct ua_contains strings")]
    TooManyPatterns { max: usize },
    #[error("more than {max} clients")]
    TooManyClients { max: usize },
}

impl CatalogError {
    /// The 1-based line the error is about, when it is about one.
    pub fn line(&self) -> Option<usize> {
        match *self {
            CatalogError::Toml { line, .. }
            | CatalogError::DuplicateId { line, .. }
            | CatalogError::UnknownProtocol { line, .. }
            | CatalogError::EmptyId { line } => (line > 0).then_some(line),
            CatalogError::TooManyPatterns { .. } | CatalogError::TooManyClients { .. } => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    #[serde(default)]
    client: Vec<ClientDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientDef {
    id: toml::Spanned<String>,
    name: String,
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    cloud_credentials: bool,
    #[serde(default)]
    cloud_token: bool,
    #[serde(default)]
    mobile: bool,
    #[serde(default)]
    outlook: bool,
    #[serde(default)]
    when: Vec<WhenDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhenDef {
    #[serde(default)]
    ua_prefix: Vec<String>,
    #[serde(default)]
    ua_exact: Vec<String>,
    #[serde(default)]
    ua_contains_any: Vec<String>,
    #[serde(default)]
    ua_contains_all: Vec<String>,
    #[serde(default)]
    device_type: Vec<String>,
    #[serde(default)]
    device_id_prefix: Vec<String>,
    #[serde(default)]
    protocol: Vec<toml::Spanned<String>>,
    #[serde(default)]
    stem: Vec<String>,
}

/// Bit set of `ua_contains` patterns found in one user agent.
type Mask = u128;
/// Bit set of rules, in rule order.
type RuleBits = u128;
const MAX_PATTERNS: usize = Mask::BITS as usize;

/// One compiled `[[client.when]]`: every non-empty condition must hold.
#[derive(Debug, Clone)]
struct Rule {
    client: ClientId,
    prefixes: Vec<Box<str>>,
    exact: Vec<Box<str>>,
    any_mask: Mask,
    all_mask: Mask,
    device_types: Vec<Box<str>>,
    /// Compared without regard to ASCII case.
    device_id_prefixes: Vec<Box<str>>,
    /// Bit `Protocol::index()`; 0 = any protocol.
    protocols: u16,
    /// Whole URI stems, any ASCII case, a trailing `/` aside.
    stems: Vec<Box<str>>,
}

impl Rule {
    /// The conditions on the user agent alone.
    fn ua_matches(&self, ua: &str, found: Mask) -> bool {
        (self.prefixes.is_empty() || self.prefixes.iter().any(|p| ua.starts_with(&**p)))
            && (self.exact.is_empty() || self.exact.iter().any(|e| ua == &**e))
            && (self.any_mask == 0 || found & self.any_mask != 0)
            && found & self.all_mask == self.all_mask
    }

    /// The conditions on everything but the user agent.
    fn rest_matches(&self, device: &Device, protocol: Protocol, stem: &str) -> bool {
        (self.device_types.is_empty()
            || (!device.device_type.is_empty()
                && self.device_types.iter().any(|d| d.eq_ignore_ascii_case(device.device_type))))
            && (self.device_id_prefixes.is_empty()
                || self.device_id_prefixes.iter().any(|p| starts_with_ignore_case(device.device_id, p)))
            && (self.protocols == 0 || self.protocols & (1 << protocol.index()) != 0)
            && (self.stems.is_empty() || {
                let stem = stem.strip_suffix('/').unwrap_or(stem);
                self.stems.iter().any(|s| s.eq_ignore_ascii_case(stem))
            })
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len() && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// What an ActiveSync request says of its device (both empty for other requests).
#[derive(Clone, Copy, Debug, Default)]
pub struct Device<'a> {
    pub device_type: &'a str,
    pub device_id: &'a str,
}

/// What the catalog makes of one user agent, whatever the device type and
/// protocol: worth remembering, since a log has few distinct user agents.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct UaClass {
    /// Rules whose user-agent conditions hold, a bit each (rule order);
    /// `None` when the catalog has too many rules for the bit set.
    rules: Option<RuleBits>,
    /// The `ua_contains` patterns found.
    found: Mask,
}

/// The client catalog, compiled for matching.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Index = `ClientId`; 0 is `unknown`.
    clients: Vec<Client>,
    /// Ids in the order of the file (match order).
    order: Vec<ClientId>,
    rules: Vec<Rule>,
    contains: Option<AhoCorasick>,
}

const BUILTIN: &str = include_str!("../../../data/clients.toml");

impl Catalog {
    /// The catalog shipped in `data/clients.toml`.
    pub fn builtin() -> Catalog {
        Catalog::from_toml(BUILTIN).expect("built-in client catalog is valid")
    }

    /// Parse and compile a catalog. Errors carry the 1-based line number.
    pub fn from_toml(text: &str) -> Result<Catalog, CatalogError> {
        let line_of = |offset: usize| data_file::line_of(text, offset);
        let file: FileDef = data_file::parse(text).map_err(|(line, message)| CatalogError::Toml { line, message })?;

        let unknown = Client {
            id: "unknown".into(),
            name: "Unknown client".into(),
            vendor: String::new(),
            app: "unknown".into(),
            cloud_credentials: false,
            cloud_token: false,
            mobile: false,
            outlook: false,
        };
        let mut clients = vec![unknown];
        let mut order = Vec::new();
        let mut rules = Vec::new();
        let mut ids: HashMap<String, ClientId> = HashMap::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_index: HashMap<String, usize> = HashMap::new();
        let mut unknown_listed = false;

        for def in file.client {
            let line = line_of(def.id.span().start);
            let id_text = def.id.get_ref().trim().to_string();
            if id_text.is_empty() {
                return Err(CatalogError::EmptyId { line });
            }
            if ids.contains_key(&id_text) {
                return Err(CatalogError::DuplicateId { line, id: id_text });
            }
            let client = Client {
                app: def.app.unwrap_or_else(|| id_text.clone()),
                id: id_text.clone(),
                name: def.name,
                vendor: def.vendor,
                cloud_credentials: def.cloud_credentials,
                cloud_token: def.cloud_token,
                mobile: def.mobile,
                outlook: def.outlook,
            };
            let id = if id_text == "unknown" {
                unknown_listed = true;
                clients[0] = client;
                ClientId::UNKNOWN
            } else {
                let id = u16::try_from(clients.len())
                    .map(ClientId)
                    .map_err(|_| CatalogError::TooManyClients { max: u16::MAX as usize })?;
                clients.push(client);
                id
            };
            ids.insert(id_text, id);
            order.push(id);

            for when in def.when {
                let mut mask_of = |list: Vec<String>| -> Result<Mask, CatalogError> {
                    let mut mask = 0;
                    for p in list {
                        let next = patterns.len();
                        let i = *pattern_index.entry(p.clone()).or_insert(next);
                        if i == next {
                            if next >= MAX_PATTERNS {
                                return Err(CatalogError::TooManyPatterns { max: MAX_PATTERNS });
                            }
                            patterns.push(p);
                        }
                        mask |= 1 << i;
                    }
                    Ok(mask)
                };
                let any_mask = mask_of(when.ua_contains_any)?;
                let all_mask = mask_of(when.ua_contains_all)?;
                let mut protocols = 0u16;
                for p in when.protocol {
                    let proto = Protocol::from_key(p.get_ref().trim()).ok_or_else(|| {
                        CatalogError::UnknownProtocol { line: line_of(p.span().start), value: p.get_ref().clone() }
                    })?;
                    protocols |= 1 << proto.index();
                }
                let boxed = |v: Vec<String>| v.into_iter().map(String::into_boxed_str).collect::<Vec<_>>();
                rules.push(Rule {
                    client: id,
                    prefixes: boxed(when.ua_prefix),
                    exact: boxed(when.ua_exact),
                    any_mask,
                    all_mask,
                    device_types: boxed(when.device_type),
                    device_id_prefixes: boxed(when.device_id_prefix),
                    protocols,
                    stems: boxed(when.stem),
                });
            }
        }
        if !unknown_listed {
            order.push(ClientId::UNKNOWN);
        }
        let contains = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .expect("a few short literal patterns always build"),
            )
        };
        Ok(Catalog { clients, order, rules, contains })
    }

    /// The client that sent a request: the first client in catalog order with
    /// a matching rule, else `unknown`. `user_agent` is the decoded user agent
    /// (`+` as space); `device_type` the ActiveSync DeviceType or empty.
    pub fn classify(&self, user_agent: &str, device_type: &str, protocol: Protocol) -> ClientId {
        self.classify_device(user_agent, Device { device_type, device_id: "" }, protocol)
    }

    /// [`classify`](Self::classify) with the ActiveSync device id too, which a
    /// few clients are known by (`device_id_prefix`).
    pub fn classify_device(&self, user_agent: &str, device: Device, protocol: Protocol) -> ClientId {
        self.classify_at(user_agent, device, protocol, "")
    }

    /// [`classify_device`](Self::classify_device) of a request to the URI
    /// `stem`, which a few clients are known by (`stem`).
    pub fn classify_at(&self, user_agent: &str, device: Device, protocol: Protocol, stem: &str) -> ClientId {
        self.classify_ua(user_agent, &self.ua_class(user_agent), device, protocol, stem)
    }

    /// The facts about `user_agent` that [`classify_ua`](Self::classify_ua) needs.
    pub(crate) fn ua_class(&self, user_agent: &str) -> UaClass {
        let mut found: Mask = 0;
        if let Some(ac) = self.contains.as_ref().filter(|ac| ac.is_match(user_agent)) {
            for m in ac.find_overlapping_iter(user_agent) {
                found |= 1 << m.pattern().as_usize();
            }
        }
        let rules = (self.rules.len() <= RuleBits::BITS as usize).then(|| {
            self.rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.ua_matches(user_agent, found))
                .fold(0, |b: RuleBits, (i, _)| b | 1 << i)
        });
        UaClass { rules, found }
    }

    /// [`classify`](Self::classify) with the user agent's facts already known.
    pub(crate) fn classify_ua(
        &self,
        user_agent: &str,
        class: &UaClass,
        device: Device,
        protocol: Protocol,
        stem: &str,
    ) -> ClientId {
        let rule = match class.rules {
            // The rules whose user-agent conditions hold, in order: a bit each, lowest first.
            Some(mut bits) => loop {
                if bits == 0 {
                    break None;
                }
                let rule = &self.rules[bits.trailing_zeros() as usize];
                bits &= bits - 1;
                if rule.rest_matches(&device, protocol, stem) {
                    break Some(rule);
                }
            },
            None => self
                .rules
                .iter()
                .find(|r| r.ua_matches(user_agent, class.found) && r.rest_matches(&device, protocol, stem)),
        };
        rule.map_or(ClientId::UNKNOWN, |r| r.client)
    }

    /// The client for an id; `unknown` for an id not from this catalog.
    pub fn get(&self, id: ClientId) -> &Client {
        self.clients.get(id.index()).unwrap_or(&self.clients[0])
    }

    /// The id for a client key such as `outlook-mobile`.
    pub fn id_of(&self, key: &str) -> Option<ClientId> {
        self.clients.iter().position(|c| c.id == key).map(|i| ClientId(i as u16))
    }

    /// All clients in catalog (match) order, `unknown` last unless the file
    /// placed it elsewhere.
    pub fn iter(&self) -> impl Iterator<Item = (ClientId, &Client)> + '_ {
        self.order.iter().map(|&id| (id, &self.clients[id.index()]))
    }

    /// Number of clients, including `unknown`; ids are `0..len()`.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Never true: `unknown` is always there.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clients of the first catalog: policies and reports name them, so
    /// they stay (the catalog has grown around them).
    const FIRST_CLIENTS: [&str; 11] = [
        "outlook-mobile",
        "outlook-mac",
        "outlook-windows",
        "ios-mail",
        "android-mail",
        "macos-mail",
        "remote-powershell",
        "mobile-browser",
        "browser",
        "ews-app",
        "unknown",
    ];

    #[test]
    fn builtin_keeps_first_clients_and_ends_generic() {
        let c = Catalog::builtin();
        let ids: Vec<&str> = c.iter().map(|(_, cl)| cl.id.as_str()).collect();
        for id in FIRST_CLIENTS {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        // Generic clients last, so that every named client is tried before them.
        assert_eq!(ids[ids.len() - 4..], ["mobile-browser", "browser", "ews-app", "unknown"]);
        assert_eq!(c.len(), ids.len());
        assert_eq!(c.get(ClientId::default()).id, "unknown");
        assert_eq!(c.id_of("unknown"), Some(ClientId::UNKNOWN));
        for (id, client) in c.iter() {
            assert_eq!(c.id_of(&client.id), Some(id));
            assert!(!client.name.is_empty(), "{}", client.id);
        }
        let om = c.get(c.id_of("outlook-mobile").unwrap());
        assert!(om.cloud_credentials && om.mobile && !om.outlook);
        let flags = |k: &str| {
            let cl = c.get(c.id_of(k).unwrap());
            (cl.cloud_credentials, cl.mobile, cl.outlook)
        };
        assert_eq!(flags("outlook-mac"), (false, false, true));
        assert_eq!(flags("outlook-windows"), (false, false, true));
        assert_eq!(flags("ios-mail"), (false, true, false));
        assert_eq!(flags("android-mail"), (false, true, false));
        assert_eq!(flags("mobile-browser"), (false, true, false));
        assert_eq!(flags("browser"), (false, false, false));
        assert_eq!(c.get(ClientId(999)).id, "unknown");
    }

    #[test]
    fn classify_table() {
        let c = Catalog::builtin();
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0";
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        let cases: &[(&str, &str, Protocol, &str)] = &[
            ("Outlook-iOS-Android/1.0", "", Protocol::ActiveSync, "outlook-mobile"),
            ("Outlook-iOS/2.0", "", Protocol::ActiveSync, "outlook-mobile"),
            ("Outlook-Android/2.0", "", Protocol::ActiveSync, "outlook-mobile"),
            ("", "Outlook", Protocol::ActiveSync, "outlook-mobile"),
            ("", "outlookservice", Protocol::ActiveSync, "outlook-mobile-hma"),
            ("Outlook-iOS/2.0", "OutlookService", Protocol::ActiveSync, "outlook-mobile-hma"),
            ("Apple-iPhone15C3/2104.100", "iPhone", Protocol::ActiveSync, "ios-mail"),
            ("Apple-iPhone15C3/2104.100", "", Protocol::ActiveSync, "ios-mail"),
            ("Android-Mail/2024.01.14.599093187.Release", "Android", Protocol::ActiveSync, "android-mail"),
            ("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)", "", Protocol::Ews, "outlook-windows"),
            ("MSRPC", "", Protocol::Rpc, "outlook-windows"),
            ("msrpc", "", Protocol::Rpc, "unknown"),
            ("MacOutlook/16.89.24091630 (Intelx64 Mac OS X 14.6.1 (Build 23G93))", "", Protocol::Ews, "outlook-mac"),
            ("Mac OS X/14.6.1 (23G93); ExchangeWebServices/14.0 (343); Mail/16.0 (3776.700.51)", "", Protocol::Ews, "macos-mail"),
            (edge, "", Protocol::Owa, "browser"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "", Protocol::Owa, "browser"),
            (iphone, "", Protocol::Owa, "mobile-browser"),
            ("eM Client/9.2.2157.0", "", Protocol::Ews, "ews-app"),
            ("eM Client/9.2.2157.0", "", Protocol::Owa, "unknown"),
            ("Microsoft WinRM Client", "", Protocol::PowerShell, "remote-powershell"),
            ("", "", Protocol::ActiveSync, "unknown"),
            ("", "", Protocol::Ews, "ews-app"),
        ];
        for &(ua, dt, proto, want) in cases {
            assert_eq!(c.get(c.classify(ua, dt, proto)).id, want, "{ua:?} {dt:?} {proto:?}");
        }
    }

    #[test]
    fn errors_have_line_numbers() {
        let bad_field = "[[client]]\nid = \"x\"\nname = \"X\"\ncolour = \"red\"\n";
        match Catalog::from_toml(bad_field) {
            Err(CatalogError::Toml { line, message }) => {
                assert_eq!(line, 4, "{message}");
                assert!(message.contains("colour"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let dup = "[[client]]\nid = \"a\"\nname = \"A\"\n\n[[client]]\nid = \"a\"\nname = \"B\"\n";
        assert!(matches!(Catalog::from_toml(dup), Err(CatalogError::DuplicateId { line: 6, .. })));
        let proto = "[[client]]\nid = \"a\"\nname = \"A\"\n[[client.when]]\nprotocol = [\"smtp\"]\n";
        assert!(matches!(Catalog::from_toml(proto), Err(CatalogError::UnknownProtocol { line: 5, .. })));
        let syntax = "[[client]]\nid = \"a\"\nname = \n";
        assert!(matches!(Catalog::from_toml(syntax), Err(CatalogError::Toml { line: 3, .. })));
    }

    #[test]
    fn device_id_prefix_ignores_case_and_needs_the_start() {
        let text = "[[client]]\nid = \"nine\"\nname = \"Nine\"\n[[client.when]]\ndevice_id_prefix = [\"Nine\"]\n";
        let c = Catalog::from_toml(text).unwrap();
        let nine = c.id_of("nine").unwrap();
        let with_id =
            |id| c.classify_device("", Device { device_type: "Android", device_id: id }, Protocol::ActiveSync);
        assert_eq!(with_id("Nine342BA3F3E6C6"), nine);
        assert_eq!(with_id("NINE342BA3F3E6C6"), nine);
        assert_eq!(with_id("Nin"), ClientId::UNKNOWN);
        assert_eq!(with_id("xNine342BA3F3E6C6"), ClientId::UNKNOWN);
        // `classify` knows no device id.
        assert_eq!(c.classify("", "Android", Protocol::ActiveSync), ClientId::UNKNOWN);
    }

    /// Up to 128 rules the user agent's rules are remembered as a bit set;
    /// past that every rule is tried each time. Both give the first match.
    #[test]
    fn many_rules_keep_first_match_order() {
        for clients in [100, 130] {
            let mut text = String::new();
            for i in 0..clients {
                text.push_str(&format!(
                    "[[client]]\nid = \"c{i}\"\nname = \"C{i}\"\n[[client.when]]\nua_prefix = [\"App{i}/\"]\n"
                ));
            }
            text.push_str("[[client]]\nid = \"any\"\nname = \"Any\"\n[[client.when]]\nua_prefix = [\"App\"]\n");
            let c = Catalog::from_toml(&text).unwrap();
            assert_eq!(c.ua_class("App7/1").rules.is_some(), clients < 128, "{clients}");
            for i in [0, 7, clients - 1] {
                let ua = format!("App{i}/1.0");
                assert_eq!(c.get(c.classify(&ua, "", Protocol::Ews)).id, format!("c{i}"));
            }
            assert_eq!(c.get(c.classify("App/1", "", Protocol::Ews)).id, "any");
            assert_eq!(c.classify("Other/1", "", Protocol::Ews), ClientId::UNKNOWN);
        }
    }

    #[test]
    fn custom_catalog_without_unknown() {
        let text = "[[client]]\nid = \"spark\"\nname = \"Spark\"\nvendor = \"Readdle\"\ncloud_credentials = true\n[[client.when]]\nua_contains_all = [\"Spark\", \"Readdle\"]\n";
        let c = Catalog::from_toml(text).unwrap();
        assert_eq!(c.len(), 2);
        let spark = c.id_of("spark").unwrap();
        assert_eq!(c.classify("Spark/3 (Readdle)", "", Protocol::Ews), spark);
        assert_eq!(c.classify("Spark/3", "", Protocol::Ews), ClientId::UNKNOWN);
        assert!(c.get(spark).cloud_credentials);
        let ids: Vec<&str> = c.iter().map(|(_, cl)| cl.id.as_str()).collect();
        assert_eq!(ids, ["spark", "unknown"]);
    }
}
