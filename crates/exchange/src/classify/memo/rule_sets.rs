//! The memos of what a rule set made of a request: the exploit rules'
//! prefilter anchors by URI, and the catalog's client by user agent rules,
//! device and protocol. Each is emptied when the interpreter changes.

use super::{associative, memo_hash, memo_hash_two, ANCHOR_KEY_MAX, CLIENT_DEVICE_MAX, WAYS};
use crate::catalog::{ClientId, Device};
use crate::exploits::ANCHOR_WORDS;
use crate::request::Protocol;

/// What the exploit rules' prefilter found in a stem and query as they
/// reached the rules (not lower-cased), and whether the query names a
/// probe, for one rule set (see `Memo::slot`, which empties it when the
/// interpreter changes). A log repeats many URIs word for word (the same
/// EWS, MAPI and Autodiscover requests, a device's same ActiveSync
/// query): a URI seen before is neither lower-cased nor searched again.
pub(crate) struct AnchorMemo {
    slots: Vec<AnchorSlot>,
    /// The slot taken by the last `get` that found nothing.
    pending: Option<usize>,
}

/// What one stem and query hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Remembered {
    /// The anchors found, a bit each (needle numbers of the owner's rules).
    pub(crate) found: [u64; ANCHOR_WORDS],
    /// The query names a probe; `None` when the line did not ask.
    pub(crate) probe_query: Option<bool>,
}

#[derive(Default)]
struct AnchorSlot {
    filled: bool,
    hash: u64,
    /// The stem, then the query.
    uri: Vec<u8>,
    stem_len: usize,
    remembered: Remembered,
}

impl AnchorSlot {
    fn holds(&self, hash: u64, stem: &[u8], query: &[u8]) -> bool {
        self.filled
            && self.hash == hash
            && self.stem_len == stem.len()
            && self.uri.len() == stem.len() + query.len()
            && self.uri[..stem.len()] == *stem
            && self.uri[stem.len()..] == *query
    }
}

impl AnchorMemo {
    /// `slots`: a power of two, at least [`WAYS`].
    pub(crate) fn new(slots: usize) -> AnchorMemo {
        AnchorMemo { slots: std::iter::repeat_with(AnchorSlot::default).take(slots).collect(), pending: None }
    }

    pub(super) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| s.filled = false);
        self.pending = None;
    }

    /// What `stem` and `query` hold, when remembered. When not, and they
    /// are short enough to remember, a slot is taken for them: the next
    /// [`put`](Self::put) fills it.
    pub(crate) fn get(&mut self, stem: &str, query: &str) -> Option<Remembered> {
        self.pending = None;
        let (stem, query) = (stem.as_bytes(), query.as_bytes());
        if stem.len() + query.len() > ANCHOR_KEY_MAX {
            return None;
        }
        let hash = memo_hash_two(stem, query);
        let sets = self.slots.len() / WAYS;
        let (slot, hit) = associative(&mut self.slots, hash, |s| s.holds(hash, stem, query));
        if hit {
            return Some(slot.remembered);
        }
        slot.filled = false;
        slot.hash = hash;
        slot.uri.clear();
        slot.uri.extend_from_slice(stem);
        slot.uri.extend_from_slice(query);
        slot.stem_len = stem.len();
        // The set's front, where `associative` put the slot.
        self.pending = Some(hash.checked_shr(64 - sets.trailing_zeros()).unwrap_or(0) as usize * WAYS);
        None
    }

    /// Remember what the stem and query of the last [`get`](Self::get),
    /// which found nothing, hold. Nothing when they were too long to remember.
    pub(crate) fn put(&mut self, remembered: Remembered) {
        if let Some(at) = self.pending.take() {
            let slot = &mut self.slots[at];
            // The slot `get` emptied, at the set's front (as `associative` picks sets).
            debug_assert!(!slot.filled);
            slot.remembered = remembered;
            slot.filled = true;
        }
    }
}

/// The client the catalog names for a user agent's rules (see
/// [`UaClass::rules`](crate::catalog::UaClass::rules)), a device and a protocol, for one catalog (see
/// `Memo::slot`, which empties it when the interpreter changes): a
/// device sends the same user agent line after line, and the catalog's
/// rules compare its device type and id each time.
pub(crate) struct ClientMemo {
    slots: Vec<ClientSlot>,
    /// Scratch for the key.
    key: Vec<u8>,
}

#[derive(Default)]
struct ClientSlot {
    filled: bool,
    hash: u64,
    /// Rules, protocol, the device type's length, device type and device id.
    key: Vec<u8>,
    client: ClientId,
}

impl ClientMemo {
    /// `slots`: a power of two, at least [`WAYS`].
    pub(crate) fn new(slots: usize) -> ClientMemo {
        ClientMemo {
            slots: std::iter::repeat_with(ClientSlot::default).take(slots).collect(),
            key: Vec::with_capacity(32 + CLIENT_DEVICE_MAX),
        }
    }

    pub(super) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| s.filled = false);
    }

    /// The client of `rules`, `device` and `protocol`: remembered, or
    /// `classify`'s and remembered. A device type and id longer than
    /// [`CLIENT_DEVICE_MAX`] together are classified each time.
    pub(crate) fn client(
        &mut self,
        rules: u128,
        device: Device<'_>,
        protocol: Protocol,
        classify: impl FnOnce() -> ClientId,
    ) -> ClientId {
        let (device_type, device_id) = (device.device_type.as_bytes(), device.device_id.as_bytes());
        if device_type.len() + device_id.len() > CLIENT_DEVICE_MAX {
            return classify();
        }
        let key = &mut self.key;
        key.clear();
        key.extend_from_slice(&rules.to_le_bytes());
        key.push(protocol.index() as u8);
        key.push(device_type.len() as u8);
        key.extend_from_slice(device_type);
        key.extend_from_slice(device_id);
        let hash = memo_hash(key);
        let (slot, hit) = associative(&mut self.slots, hash, |s| s.filled && s.hash == hash && s.key == *key);
        if !hit {
            slot.client = classify();
            slot.filled = true;
            slot.hash = hash;
            slot.key.clear();
            slot.key.extend_from_slice(key);
        }
        slot.client
    }
}
