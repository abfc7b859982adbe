//! Devices known before a cut-over time: the set of (user, device key)
//! pairs seen in the logs up to then. `device = "new"` means "not in here".

use std::collections::{HashMap, HashSet};
use std::path::Path;

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
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    #[serde(default)]
    cutover: String,
    devices: Vec<KnownDevice>,
}

/// The inventory. Lookups take `&str` and do not allocate.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    cutover: String,
    devices: Vec<KnownDevice>,
    by_user: HashMap<String, HashSet<String>>,
}

impl Inventory {
    pub fn new(cutover: impl Into<String>) -> Inventory {
        Inventory { cutover: cutover.into(), ..Inventory::default() }
    }

    /// Record a device; the first sighting wins. User keys are compared as given
    /// (the request model already lower-cases them).
    pub fn insert(&mut self, user: &str, device: &str, first_seen: &str) {
        let set = self.by_user.entry(user.to_string()).or_default();
        if set.insert(device.to_string()) {
            self.devices.push(KnownDevice {
                user: user.to_string(),
                device: device.to_string(),
                first_seen: first_seen.to_string(),
            });
        }
    }

    pub fn contains(&self, user: &str, device: &str) -> bool {
        self.by_user.get(user).is_some_and(|s| s.contains(device))
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

    pub fn from_json(text: &str, origin: &str) -> Result<Inventory, PolicyError> {
        let file: InventoryFile = serde_json::from_str(text).map_err(|e| PolicyError::Invalid {
            file: origin.to_string(),
            line: Some(e.line()),
            message: e.to_string(),
        })?;
        let mut inv = Inventory::new(file.cutover);
        for d in file.devices {
            inv.insert(&d.user, &d.device, &d.first_seen);
        }
        Ok(inv)
    }

    pub fn to_json(&self) -> String {
        let file = InventoryFile { cutover: self.cutover.clone(), devices: self.devices.clone() };
        serde_json::to_string_pretty(&file).expect("inventory serializes")
    }

    pub fn load(path: &Path) -> Result<Inventory, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| PolicyError::Io { file: path.display().to_string(), source })?;
        Inventory::from_json(&text, &path.display().to_string())
    }

    pub fn save(&self, path: &Path) -> Result<(), PolicyError> {
        std::fs::write(path, self.to_json())
            .map_err(|source| PolicyError::Io { file: path.display().to_string(), source })
    }
}
