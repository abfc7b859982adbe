//! Devices known before a cut-over time: the set of (user, device key)
//! pairs seen in the logs up to then, or with a mobile-device partnership
//! that first synced before it (`Get-MobileDeviceStatistics`' FirstSyncTime,
//! which goes back further than any log). `device = "new"` means "not in here".

use std::collections::{HashMap, HashSet};
use std::path::Path;

use exchange::devices::{DevicesError, Partnership};
use serde::{Deserialize, Serialize};

use crate::PolicyError;

/// One known device, as stored in the JSON file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDevice {
    pub user: String,
    pub device: String,
    /// When it was first seen (RFC 3339 text, as the builder wrote it).
    #[serde(default)]
    pub first_seen: String,
    /// Model and OS as the device reported them to Exchange (a device
    /// export's DeviceModel and DeviceOS), when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    #[serde(default)]
    cutover: String,
    devices: Vec<KnownDevice>,
}

/// A device id upper-cased letter by letter, for comparing ids in any case
/// (as `OrdinalIgnoreCase`; this also takes `ſ` for `S` and `ı` for `I`,
/// as ICU does and Windows does not, which only lets an id the device
/// chose name the facts of one it could name anyway): the key of a
/// device's model and OS (see [`Inventory::device_facts`]). Borrowed when
/// it is one already, as nearly every id is.
pub fn device_key(id: &str) -> std::borrow::Cow<'_, str> {
    if id.is_ascii() {
        if id.bytes().any(|b| b.is_ascii_lowercase()) {
            std::borrow::Cow::Owned(id.to_ascii_uppercase())
        } else {
            std::borrow::Cow::Borrowed(id)
        }
    } else {
        // A simple (one-character) upper case, as .NET's: `ß` stays `ß`.
        let upper = |c: char| {
            let mut u = c.to_uppercase();
            match (u.next(), u.next()) {
                (Some(one), None) => one,
                _ => c,
            }
        };
        std::borrow::Cow::Owned(id.chars().map(upper).collect())
    }
}

/// The inventory. Lookups take `&str` and do not allocate.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    cutover: String,
    devices: Vec<KnownDevice>,
    by_user: HashMap<String, HashSet<String>>,
    /// Device id -> model and OS: of every partnership of an export, known
    /// at the cut-over or not, of the devices of an inventory file, and of
    /// what the logs' `Log=` said ([`Inventory::insert_device_facts`]).
    facts: HashMap<String, (String, String)>,
    /// Holds device facts only: says nothing of which devices are known.
    facts_only: bool,
    /// Devices seen with a health mailbox: known for every health mailbox
    /// (see [`Inventory::contains`]).
    health_devices: HashSet<String>,
}

impl Inventory {
    pub fn new(cutover: impl Into<String>) -> Inventory {
        Inventory { cutover: cutover.into(), ..Inventory::default() }
    }

    /// An inventory of devices' models and OSes only: `device` rules cannot
    /// run on it (every device would be new).
    pub fn facts_only() -> Inventory {
        Inventory { facts_only: true, ..Inventory::default() }
    }

    /// Whether it holds device facts only (see [`Inventory::facts_only`]).
    pub fn is_facts_only(&self) -> bool {
        self.facts_only
    }

    /// Record a device; the first sighting wins. User keys are compared as given
    /// (the request model already lower-cases them).
    pub fn insert(&mut self, user: &str, device: &str, first_seen: &str) {
        self.insert_with(KnownDevice {
            user: user.to_string(),
            device: device.to_string(),
            first_seen: first_seen.to_string(),
            model: String::new(),
            os: String::new(),
        });
    }

    /// Record a device with what is known of it; the first sighting wins.
    pub fn insert_with(&mut self, known: KnownDevice) {
        self.insert_facts(&known.device, &known.model, &known.os);
        if exchange::identity::is_health_mailbox(&known.user) && !self.health_devices.contains(&known.device) {
            self.health_devices.insert(known.device.clone());
        }
        let set = self.by_user.entry(known.user.clone()).or_default();
        if set.insert(known.device.clone()) {
            self.devices.push(known);
        }
    }

    /// Record what a device reported of itself; the first report wins.
    pub fn insert_device_facts(&mut self, device: &str, model: &str, os: &str) {
        self.insert_facts(device, model, os);
    }

    fn insert_facts(&mut self, device: &str, model: &str, os: &str) {
        let key = device_key(device).into_owned();
        if (!model.is_empty() || !os.is_empty()) && !self.facts.contains_key(&key) {
            self.facts.insert(key, (model.to_string(), os.to_string()));
        }
    }

    /// The model and OS a device reported, by its ActiveSync device id in
    /// any letter case: Exchange keeps one partnership for `SEC1A2B3` and
    /// `sec1a2b3` (as `audit` matches an export's ids to the logs'), so a
    /// client that sends its id in another case is still the device whose
    /// model a rule blocks. Exchange judges a device access rule on
    /// DeviceModel or DeviceOS by what the partnership holds, and a request
    /// does not carry them.
    pub fn device_facts(&self, device_id: &str) -> Option<(&str, &str)> {
        let found = if !device_id.is_ascii() {
            self.facts.get(device_key(device_id).as_ref())
        } else if !device_id.bytes().any(|b| b.is_ascii_lowercase()) {
            self.facts.get(device_id)
        } else {
            // Folded on the stack: device ids are short (MS-ASHTTP: up to 32 characters).
            let mut buf = [0u8; 64];
            match buf.get_mut(..device_id.len()) {
                Some(folded) => {
                    folded.copy_from_slice(device_id.as_bytes());
                    folded.make_ascii_uppercase();
                    // ASCII letters changed case only: still UTF-8.
                    std::str::from_utf8(folded).ok().and_then(|k| self.facts.get(k))
                }
                None => self.facts.get(&device_id.to_ascii_uppercase()),
            }
        };
        found.map(|(model, os)| (model.as_str(), os.as_str()))
    }

    /// Whether any device has a model or OS.
    pub fn has_device_facts(&self) -> bool {
        !self.facts.is_empty()
    }

    /// Whether `user`'s `device` is known. Managed Availability's probes
    /// sign in with a health mailbox (one of several per server and
    /// database, not always the same) and Exchange's own test device
    /// (`EASProbeDeviceId…`): a device seen with one health mailbox is known
    /// for all of them, so that the probe's next mailbox is not a new device.
    pub fn contains(&self, user: &str, device: &str) -> bool {
        self.by_user.get(user).is_some_and(|s| s.contains(device))
            || (!self.health_devices.is_empty()
                && self.health_devices.contains(device)
                && exchange::identity::is_health_mailbox(user))
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    pub fn cutover(&self) -> &str {
        &self.cutover
    }

    pub fn devices(&self) -> &[KnownDevice] {
        &self.devices
    }

    /// Add the partnerships that first synced before `cutover` (Unix
    /// seconds), or all of them without a cut-over: the partnership exists,
    /// so its device is known. Each is added under every user key it answers
    /// to (see [`exchange::devices`]). Returns how many partnerships were
    /// added; one with no FirstSyncTime is left out when there is a cut-over.
    pub fn insert_partnerships(&mut self, partnerships: &[Partnership], cutover: Option<i64>) -> usize {
        let mut added = 0;
        for p in partnerships {
            // What a device is does not depend on when it first synced.
            self.insert_facts(&p.device_id, &p.device_model, &p.device_os);
            let known = match (p.first_sync, cutover) {
                (_, None) => true,
                (Some(first), Some(cutover)) => first < cutover,
                (None, Some(_)) => false,
            };
            if known {
                let first_seen = p.first_sync.map(w3c::time::format_rfc3339).unwrap_or_default();
                for user in &p.user_keys {
                    self.insert_with(KnownDevice {
                        user: user.clone(),
                        device: p.device_id.clone(),
                        first_seen: first_seen.clone(),
                        model: p.device_model.clone(),
                        os: p.device_os.clone(),
                    });
                }
                added += 1;
            }
        }
        added
    }

    /// An inventory file, or a device export (see [`exchange::devices::read`]):
    /// every partnership in it is known. A bad row in an export is an error,
    /// since its device would be taken for new.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Inventory, PolicyError> {
        let head = &bytes[..bytes.len().min(exchange::devices::SNIFF_BYTES)];
        if !exchange::devices::looks_like_export(head) {
            // Not JSON, so no inventory: what it lacks as a device export (the
            // columns it has) says more than a JSON parser's "expected value".
            let start = String::from_utf8_lossy(head);
            if !start.trim_start_matches('\u{feff}').trim_start().starts_with(['{', '[']) {
                match exchange::devices::read(bytes, origin) {
                    Err(DevicesError::MissingColumns { missing, found, .. }) => {
                        return Err(PolicyError::Invalid {
                            file: origin.to_string(),
                            line: None,
                            message: format!("{NEITHER}: missing column(s) {missing} (found {found})"),
                        })
                    }
                    Err(e) => return Err(export_error(e, origin)),
                    Ok(_) => {}
                }
            }
            let text = std::str::from_utf8(bytes).map_err(|e| PolicyError::Invalid {
                file: origin.to_string(),
                line: None,
                message: format!("not UTF-8: {e}"),
            })?;
            return Inventory::from_json(text, origin);
        }
        let invalid =
            |line: Option<usize>, message: String| PolicyError::Invalid { file: origin.to_string(), line, message };
        let export = exchange::devices::read(bytes, origin).map_err(|e| export_error(e, origin))?;
        if let Some(bad) = export.first_bad.first() {
            return Err(invalid(
                Some(bad.line as usize),
                format!(
                    "{} ({} bad row(s) in this device export: each would make its device new; fix or remove them)",
                    bad.reason, export.bad_rows
                ),
            ));
        }
        let mut inventory = Inventory::new(export.newest_time().map(w3c::time::format_rfc3339).unwrap_or_default());
        inventory.insert_partnerships(&export.partnerships, None);
        Ok(inventory)
    }

    pub fn from_json(text: &str, origin: &str) -> Result<Inventory, PolicyError> {
        let file: InventoryFile = serde_json::from_str(text).map_err(|e| PolicyError::Invalid {
            file: origin.to_string(),
            line: Some(e.line()),
            message: format!("{NEITHER}: {e}"),
        })?;
        let mut inv = Inventory::new(file.cutover);
        for d in file.devices {
            inv.insert_with(d);
        }
        Ok(inv)
    }

    pub fn to_json(&self) -> String {
        let file = InventoryFile { cutover: self.cutover.clone(), devices: self.devices.clone() };
        serde_json::to_string_pretty(&file).expect("inventory serializes")
    }

    /// Read an inventory file or a device export (see [`Inventory::from_bytes`]).
    pub fn load(path: &Path) -> Result<Inventory, PolicyError> {
        let bytes =
            std::fs::read(path).map_err(|source| PolicyError::Io { file: path.display().to_string(), source })?;
        Inventory::from_bytes(&bytes, &path.display().to_string())
    }

    pub fn save(&self, path: &Path) -> Result<(), PolicyError> {
        std::fs::write(path, self.to_json())
            .map_err(|source| PolicyError::Io { file: path.display().to_string(), source })
    }
}

/// What a file given as an inventory that is neither is told.
const NEITHER: &str = "neither an inventory (`casguard inventory build`) nor a device export \
                       (`Get-MobileDevice | Get-MobileDeviceStatistics`, CSV or JSON)";

/// A device export's error naming its file once (`e` names it too, which
/// [`PolicyError`] would repeat).
fn export_error(e: DevicesError, origin: &str) -> PolicyError {
    let (line, message) = match e {
        DevicesError::Syntax { line, message, .. } => (Some(line as usize), message),
        other => {
            let text = other.to_string();
            let message = text.strip_prefix(origin).and_then(|m| m.strip_prefix(": ")).map(str::to_string);
            (None, message.unwrap_or(text))
        }
    };
    PolicyError::Invalid { file: origin.to_string(), line, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &[u8] = include_bytes!("../../../tests/data/devices/ps51-convertto-json.json");
    const JANE_OUTLOOK: &str = "4A1E5C7D9B2F40E8A6C3D1B0F9E8D7C6";

    #[test]
    fn a_device_export_is_an_inventory_of_every_partnership() {
        let inventory = Inventory::from_bytes(EXPORT, "devices.json").unwrap();
        // Six partnerships, each under its logon name, mail name and owner name.
        assert_eq!(inventory.len(), 18);
        for user in ["jdoe", "jane.doe", "jane doe"] {
            assert!(inventory.contains(user, JANE_OUTLOOK), "{user}");
        }
        assert!(!inventory.contains("bsmith", JANE_OUTLOOK), "a partnership is one user's");
        assert_eq!(inventory.cutover(), "2026-11-02T08:15:30Z", "the export's newest time");
        // The same file through `load`, and an inventory file still reads as before.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devices.json");
        std::fs::write(&path, EXPORT).unwrap();
        assert_eq!(Inventory::load(&path).unwrap().len(), 18);
        std::fs::write(&path, inventory.to_json()).unwrap();
        assert_eq!(Inventory::load(&path).unwrap().devices(), inventory.devices());
    }

    #[test]
    fn a_device_export_gives_each_device_its_model_and_os() {
        let inventory = Inventory::from_bytes(EXPORT, "devices.json").unwrap();
        assert!(inventory.has_device_facts());
        assert_eq!(inventory.device_facts("SEC1A2B3C4D5E6F7"), Some(("SM-S911B", "Android 14.0.0")));
        assert_eq!(inventory.device_facts("ApplF17LTTCGFFG8"), Some(("iPhone15C2", "iOS 17.5.1 21F90")));
        assert_eq!(inventory.device_facts("NOSUCHDEVICE"), None);
        // In any letter case, as Exchange finds the partnership.
        assert_eq!(inventory.device_facts("sec1a2b3c4d5e6f7"), Some(("SM-S911B", "Android 14.0.0")));
        assert_eq!(inventory.device_facts("APPLF17LTTCGFFG8"), Some(("iPhone15C2", "iOS 17.5.1 21F90")));
        let long = "a".repeat(70);
        let mut facts = Inventory::facts_only();
        facts.insert_device_facts(&long, "Model", "OS");
        assert_eq!(facts.device_facts(&long.to_ascii_uppercase()), Some(("Model", "OS")));
        assert_eq!(facts.device_facts(&long), Some(("Model", "OS")), "past the stack buffer too");
        // `ſ` and `ı` upper-case to `S` and `I` (as ICU's upper case does).
        assert_eq!(inventory.device_facts("\u{17f}ec1a2b3c4d5e6f7"), Some(("SM-S911B", "Android 14.0.0")));
        assert_eq!(inventory.device_facts("Sec1a2b3c4d5e6f7\u{131}"), None);
        assert_eq!(device_key("ApplF17\u{131}"), "APPLF17I");
        assert_eq!(device_key("STRA\u{df}E"), "STRA\u{df}E", "no two-letter upper case");
        // An inventory file keeps them; one without them (older files) has none.
        let again = Inventory::from_json(&inventory.to_json(), "inventory.json").unwrap();
        assert_eq!(again.device_facts("SEC1A2B3C4D5E6F7"), Some(("SM-S911B", "Android 14.0.0")));
        let mut bare = Inventory::new("");
        bare.insert("cwhite", "SEC1A2B3C4D5E6F7", "");
        assert!(!bare.has_device_facts() && !bare.to_json().contains("model"));
    }

    #[test]
    fn first_sync_decides_known_at_a_cut_over() {
        let export = exchange::devices::read(EXPORT, "devices.json").unwrap();
        let mut inventory = Inventory::new("2026-01-01T00:00:00Z");
        let cutover = w3c::time::parse_rfc3339("2026-01-01T00:00:00Z");
        // Jane's two, Bob's and Ünal's first synced before 2026; Carol's and Dave's after.
        assert_eq!(inventory.insert_partnerships(&export.partnerships, cutover), 4);
        assert!(inventory.contains("jdoe", JANE_OUTLOOK));
        assert!(inventory.contains("uyilmaz", "0A1B2C3D4E5F60718293A4B5C6D7E8F9"));
        assert!(!inventory.contains("dking", "D4E5F60718293A4B5C6D7E8F90A1B2C3"));
        // New at the cut-over, its model and OS still known.
        assert_eq!(
            inventory.device_facts("D4E5F60718293A4B5C6D7E8F90A1B2C3"),
            Some(("Outlook for iOS and Android", "iOS 18.0"))
        );
        let first = inventory.devices().iter().find(|d| d.device == JANE_OUTLOOK).unwrap();
        assert_eq!(first.first_seen, "2025-03-14T09:02:11Z");
    }

    #[test]
    fn a_file_that_is_neither_is_told_by_its_columns_and_named_once() {
        // Not JSON: the JSON parser's "expected value" would say nothing to an admin.
        let err = Inventory::from_bytes(b"a,b,c\r\n1,2,3\r\n", "devices.csv").unwrap_err().to_string();
        assert!(
            err.starts_with("devices.csv: neither an inventory (`casguard inventory build`) nor a device export"),
            "{err}"
        );
        assert!(err.ends_with("missing column(s) DeviceId, DeviceType, FirstSyncTime, LastSuccessSync, LastSyncAttemptTime, DeviceAccessState, Identity (or UserDisplayName) (found a, b, c)"), "{err}");
        // An export short of a column is named once, not as "thin.csv: thin.csv: ...".
        let err = Inventory::from_bytes(b"\"DeviceId\",\"FirstSyncTime\"\r\n\"A1\",\"\"\r\n", "thin.csv").unwrap_err();
        let err = err.to_string();
        assert!(
            err.starts_with("thin.csv: not the output of Get-MobileDevice | Get-MobileDeviceStatistics: missing"),
            "{err}"
        );
        // JSON that is neither still says what the parser found, with its line.
        let err = Inventory::from_bytes(b"{\n\"devicez\": []}", "inventory.json").unwrap_err();
        assert_eq!(err.line(), Some(2));
        assert!(
            err.to_string().contains("nor a device export") && err.to_string().contains("unknown field `devicez`"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_row_in_an_export_fails_the_inventory() {
        let text = "\"Identity\",\"DeviceId\",\"DeviceType\",\"FirstSyncTime\",\"LastSuccessSync\",\"LastSyncAttemptTime\",\"DeviceAccessState\"\r\n\
                    \"contoso.com/Users/a/ExchangeActiveSyncDevices/x\",\"A1\",\"iPhone\",\"\",\"\",\"\",\"Allowed\"\r\n\
                    \"contoso.com/Users/b/ExchangeActiveSyncDevices/x\",\"B1\",\"iPhone\",\"someday\",\"\",\"\",\"Allowed\"\r\n";
        let err = Inventory::from_bytes(text.as_bytes(), "devices.csv").unwrap_err();
        assert_eq!(err.line(), Some(3));
        let message = err.to_string();
        assert!(message.starts_with("devices.csv:3: FirstSyncTime: cannot read \"someday\""), "{message}");
        assert!(message.contains("1 bad row(s)"), "{message}");
    }

    /// The probe's test device, seen with one health mailbox before the
    /// cut-over, is known with the next one; a person's device stays theirs.
    #[test]
    fn a_device_seen_with_a_health_mailbox_is_known_for_every_health_mailbox() {
        let (first, next) =
            ("healthmailboxe5efb86c43516e316e25c2b2cc2a0ba3", "healthmailboxe0043de12e92cdbdcbb11a30865ef12f");
        let mut inventory = Inventory::new("2026-11-09T06:30:00Z");
        inventory.insert(first, "EASProbeDeviceId161", "2026-11-09T00:05:11Z");
        inventory.insert("jdoe", "JDOEPHONE", "2026-11-09T00:10:00Z");
        // As `inventory build` writes it and the gateway reads it.
        let inventory = Inventory::from_json(&inventory.to_json(), "inventory.json").unwrap();
        assert!(inventory.contains(first, "EASProbeDeviceId161"));
        assert!(inventory.contains(next, "EASProbeDeviceId161"));
        assert!(!inventory.contains("jdoe", "EASProbeDeviceId161"), "a person is not a health mailbox");
        assert!(!inventory.contains("healthmailboxe004", "EASProbeDeviceId161"), "nor a name only starting so");
        assert!(!inventory.contains(next, "JDOEPHONE"));
        assert!(!inventory.contains(next, "EASProbeDeviceIdOther"));
    }
}
