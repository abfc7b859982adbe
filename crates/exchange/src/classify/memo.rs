//! The per-thread memo of [`Interpreter`](super::Interpreter): what it made
//! of user agents, user names, request paths, ActiveSync queries and client
//! addresses, in direct-mapped or set-associative slots, plus the URI buffer of the exploit
//! rules. A log has few distinct values of each and many lines.

use std::cell::RefCell;
use std::net::IpAddr;

use super::Interpreter;
use crate::activesync;
use crate::catalog::UaClass;
use crate::exploits::URI_BUFFER;
use crate::identity::{account_key, UserKind};
use crate::matching::contains_ci;
use crate::networks::NetworkId;
use crate::protocol::protocol_of;
use crate::request::{ActiveSync, LogTokens, LogWanted, Protocol, QueryEncoding};
use crate::url;
use crate::vdirs::PathFacts;

/// What the catalog, the probe markers and the exploit rules make of one
/// user agent. A log has few distinct user agents and many lines, so each
/// thread remembers these per user agent.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct UaFacts {
    pub(super) class: UaClass,
    pub(super) probe: bool,
    /// Exploit `when` tables whose user-agent conditions hold.
    pub(super) exploit: Option<u64>,
}

/// Slots of the per-thread memo (a power of two). Direct-mapped: a user
/// agent evicts whatever shared its slot, so crafted user agents can only
/// cost a recomputation, never a long probe sequence.
const MEMO_SLOTS: usize = 4096;
/// Slots of the per-thread memo of user names (a power of two), four-way
/// (see [`associative`]): a server's users under their several spellings
/// (a megabyte or two). Direct-mapped, the plain bench slice's 3,175 names
/// missed 28,132 times.
const USER_SLOTS: usize = 8192;
/// Slots of the per-thread memo of request paths (a power of two), direct-mapped too.
const STEM_SLOTS: usize = 1024;
/// Slots of the per-thread memo of ActiveSync queries (a power of two),
/// four-way too: about one per device and command of a busy server
/// (2,000 users' phones send some 11,000 distinct queries; 8,192 slots
/// missed one line in three).
const QUERY_SLOTS: usize = 16384;
/// Longest ActiveSync query remembered, its `Log=` value left out: longer
/// ones are parsed each time, so the memo holds at most about 8 MB a
/// thread (a slot and its text of under 400 bytes), typically 1 or 2.
const QUERY_KEY_MAX: usize = 192;

/// Slots of the per-thread memo of client addresses (a power of two),
/// four-way too: tens of thousands of c-ip and X-Forwarded-For pairs a
/// day on a busy server (about a megabyte).
const ADDRESS_SLOTS: usize = 8192;
/// Longest c-ip and X-Forwarded-For remembered, together.
const ADDRESS_KEY_MAX: usize = 128;

/// A line's peer address, and the client and network it stands for.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Address {
    pub(super) peer: Option<IpAddr>,
    pub(super) client: Option<IpAddr>,
    pub(super) network: NetworkId,
}

/// c-ip as logged and X-Forwarded-For decoded, and what they make.
#[derive(Default)]
struct AddressSlot {
    filled: bool,
    hash: u64,
    key: Vec<u8>,
    address: Address,
}

/// An ActiveSync query without its `Log=` value, and what it says, packed
/// so that a hit reads one slot and one buffer: a busy server's devices send
/// tens of thousands of distinct queries, and a slot of separate strings
/// cost more cache misses than parsing saved.
#[derive(Default)]
pub(super) struct QuerySlot {
    filled: bool,
    /// Parsed without log tokens (else the query is parsed each time).
    usable: bool,
    hash: u64,
    /// The key, then command, device id, device type, user and protocol
    /// version, end to end; `ends` holds where each ends.
    text: String,
    ends: [u16; 6],
    encoding: QueryEncoding,
    policy_key: Option<u32>,
    locale: Option<u16>,
    repeated: bool,
    undecoded: bool,
}

impl QuerySlot {
    /// Remember `parsed`, the parse of `key`.
    fn fill(&mut self, hash: u64, key: &str, parsed: &ActiveSync) {
        self.filled = true;
        self.hash = hash;
        self.text.clear();
        let mut ends = [0u16; 6];
        let fields =
            [key, &parsed.command, &parsed.device_id, &parsed.device_type, &parsed.user, &parsed.protocol_version];
        let mut fits = true;
        for (end, field) in ends.iter_mut().zip(fields) {
            self.text.push_str(field);
            match u16::try_from(self.text.len()) {
                Ok(n) => *end = n,
                Err(_) => fits = false,
            }
        }
        self.ends = ends;
        self.usable = fits && parsed.log == LogTokens::default();
        (self.encoding, self.policy_key, self.locale, self.repeated, self.undecoded) =
            (parsed.encoding, parsed.policy_key, parsed.locale, parsed.repeated, parsed.undecoded);
    }

    fn holds(&self, hash: u64, key: &str) -> bool {
        self.filled && self.hash == hash && self.text.get(..usize::from(self.ends[0])) == Some(key)
    }

    /// Its fields into `out`, log tokens cleared.
    fn copy_to(&self, out: &mut ActiveSync) {
        let field = |i: usize| &self.text[usize::from(self.ends[i - 1])..usize::from(self.ends[i])];
        for (i, to) in
            [&mut out.command, &mut out.device_id, &mut out.device_type, &mut out.user, &mut out.protocol_version]
                .into_iter()
                .enumerate()
        {
            to.clear();
            to.push_str(field(i + 1));
        }
        (out.encoding, out.policy_key, out.locale, out.repeated, out.undecoded) =
            (self.encoding, self.policy_key, self.locale, self.repeated, self.undecoded);
        out.log.clear();
    }
}

/// `&cafeReqId=`, its GUID and `;`: what Exchange 2013+'s front end appends
/// to each query it logs (see [`url::is_cafe_req_id`]).
const CAFE_ID: &str = "&cafeReqId=";
const CAFE_ID_LEN: usize = CAFE_ID.len() + 36 + 1;

/// Cut the front end's per-request `&cafeReqId=<GUID>;` out of a query
/// memo key: left in, no two front-end lines of a device would share a slot.
/// The parse is the same without it, as it names no parameter that is read,
/// does not look like base64, and is cut only when a part stands before it
/// (the first part is read apart from the others).
fn drop_cafe_id(key: &mut String) {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(CAFE_ID.as_bytes()));
    let bytes = key.as_bytes();
    let Some(at) = FINDER.find(bytes) else {
        return;
    };
    let end = at + CAFE_ID_LEN;
    let is_cafe_id = bytes[..at].iter().any(|&b| b != b'&')
        && key.get(at + CAFE_ID.len()..end).is_some_and(url::is_cafe_req_id)
        && bytes.get(end).is_none_or(|&b| b == b'&');
    if is_cafe_id {
        key.replace_range(at..end, "");
    }
}

/// [`activesync::parse_query_with`] the `log` tokens, remembered by the
/// query without its `Log=` value: a device sends the same few queries all
/// day, and only `Log=` changes from line to line. `key` is scratch space.
pub(super) fn activesync_query(
    slots: &mut [QuerySlot],
    key: &mut String,
    query: &str,
    out: &mut ActiveSync,
    log: LogWanted,
) {
    let parse = |out: &mut ActiveSync| activesync::parse_query_with(query, out, log);
    let (before, value, after) = match activesync::split_log(query) {
        Some((before, value, after)) => (before, Some(value), after),
        None => (query, None, ""),
    };
    if before.len() + after.len() > QUERY_KEY_MAX + CAFE_ID_LEN {
        return parse(out);
    }
    key.clear();
    key.push_str(before);
    key.push_str(after);
    drop_cafe_id(key);
    if key.len() > QUERY_KEY_MAX {
        return parse(out);
    }
    let hash = memo_hash(key.as_bytes());
    let (slot, hit) = associative(slots, hash, |slot| slot.holds(hash, key));
    if hit {
        if !slot.usable {
            return parse(out);
        }
        slot.copy_to(out);
    } else {
        activesync::parse_query(key, out);
        slot.fill(hash, key, out);
        if !slot.usable {
            // Log tokens outside the `Log=` cut out (a second `Log=`, or
            // the only one): read the query as it is, in order.
            return parse(out);
        }
    }
    if let Some(value) = value.filter(|_| log != LogWanted::NONE) {
        activesync::parse_log_only(value, &mut out.log, log);
    }
}

#[derive(Default)]
struct Slot {
    filled: bool,
    /// `key` is the user agent as logged (`+` for space), not decoded.
    raw: bool,
    hash: u64,
    key: Vec<u8>,
    /// The decoded user agent, when `raw`.
    ua: String,
    facts: UaFacts,
}

/// Per-thread scratch kept across lines: the user-agent memo and the URI
/// buffer of the exploit rules. `Interpreter` stays shared and immutable.
pub(super) struct Memo {
    /// `Interpreter::id` the slots were filled for.
    owner: u64,
    slots: Vec<Slot>,
    pub(super) uri: Box<[u8; URI_BUFFER]>,
    /// User names as logged; they do not depend on the interpreter.
    users: Vec<UserSlot>,
    /// Canonical request paths and what they are, for `owner`'s rules.
    pub(super) stems: Vec<StemSlot>,
    /// ActiveSync queries; they do not depend on the interpreter.
    pub(super) queries: Vec<QuerySlot>,
    /// Scratch for the key of `queries`.
    pub(super) query_key: String,
    /// Client addresses and networks, for `owner`'s networks.
    addresses: Vec<AddressSlot>,
    /// Scratch for the key of `addresses`.
    address_key: Vec<u8>,
    /// The last s-ip as logged, and its address: a file has one or a few.
    server_ip: (Vec<u8>, Option<IpAddr>),
}

/// A canonical request path (see [`url::is_canonical`]) and what it is:
/// its protocol, whether it names `/Proxy`, and its facts for the owner's
/// rules, on the front end and on the back end, once asked. A log asks for
/// few distinct paths, so each line skips the checks and the scans.
#[derive(Default)]
pub(super) struct StemSlot {
    filled: bool,
    hash: u64,
    stem: Vec<u8>,
    pub(super) protocol: Protocol,
    /// `/Proxy` in the path, in any case (an ActiveSync back-end hop).
    pub(super) proxy: bool,
    /// A health page (see [`super::is_health_page`]).
    pub(super) health: bool,
    /// Indexed by "reached the back end".
    facts: [Option<PathFacts>; 2],
}

impl StemSlot {
    /// The facts of this slot's path, `stem`, remembered.
    pub(super) fn facts(&mut self, files: &crate::vdirs::ExchangeFiles, stem: &str, backend: bool) -> PathFacts {
        *self.facts[usize::from(backend)].get_or_insert_with(|| files.facts(stem, backend))
    }
}

/// The slot of `stem` when it is canonical (filled on first sight), `None` when it is not.
pub(super) fn canonical_stem<'s>(slots: &'s mut [StemSlot], stem: &str) -> Option<&'s mut StemSlot> {
    let hash = memo_hash(stem.as_bytes());
    let slot = direct_mapped(slots, hash);
    if !(slot.filled && slot.hash == hash && slot.stem == stem.as_bytes()) {
        if !url::is_canonical(stem) {
            return None;
        }
        slot.filled = true;
        slot.hash = hash;
        slot.stem.clear();
        slot.stem.extend_from_slice(stem.as_bytes());
        slot.protocol = protocol_of(stem);
        slot.proxy = contains_ci(stem, "/Proxy");
        slot.health = super::is_health_page(stem);
        slot.facts = [None; 2];
    }
    Some(slot)
}

/// A user name as logged, decoded, and its account key.
#[derive(Default)]
struct UserSlot {
    filled: bool,
    hash: u64,
    raw: Vec<u8>,
    name: String,
    key: String,
    kind: UserKind,
}

thread_local! {
    pub(super) static MEMO: RefCell<Option<Memo>> = const { RefCell::new(None) };
}

impl Memo {
    pub(super) fn new() -> Memo {
        Memo {
            owner: 0,
            slots: std::iter::repeat_with(Slot::default).take(MEMO_SLOTS).collect(),
            uri: Box::new([0; URI_BUFFER]),
            users: std::iter::repeat_with(UserSlot::default).take(USER_SLOTS).collect(),
            stems: std::iter::repeat_with(StemSlot::default).take(STEM_SLOTS).collect(),
            queries: std::iter::repeat_with(QuerySlot::default).take(QUERY_SLOTS).collect(),
            query_key: String::with_capacity(QUERY_KEY_MAX),
            addresses: std::iter::repeat_with(AddressSlot::default).take(ADDRESS_SLOTS).collect(),
            address_key: Vec::with_capacity(ADDRESS_KEY_MAX),
            server_ip: (Vec::new(), None),
        }
    }

    /// Decode a user name as logged into `name` and its account key into
    /// `key` (both cleared first); give the kind of account.
    pub(super) fn user(&mut self, raw: &[u8], name: &mut String, key: &mut String) -> UserKind {
        let hash = memo_hash(raw);
        let (slot, hit) = associative(&mut self.users, hash, |s| s.filled && s.hash == hash && s.raw == raw);
        if !hit {
            slot.filled = true;
            slot.hash = hash;
            slot.raw.clear();
            slot.raw.extend_from_slice(raw);
            slot.name.clear();
            w3c::decode_name_into(raw, &mut slot.name);
            slot.kind = account_key(&slot.name, &mut slot.key);
        }
        name.clear();
        name.push_str(&slot.name);
        key.clear();
        key.push_str(&slot.key);
        slot.kind
    }

    /// The slot for `key`, emptied of another interpreter's facts, and whether it holds `key`.
    fn slot(&mut self, it: &Interpreter, key: &[u8], raw: bool) -> (&mut Slot, bool) {
        if self.owner != it.id {
            self.owner = it.id;
            self.slots.iter_mut().for_each(|s| s.filled = false);
            self.stems.iter_mut().for_each(|s| s.filled = false);
            self.addresses.iter_mut().for_each(|s| s.filled = false);
        }
        let hash = memo_hash(key) ^ u64::from(raw);
        let slot = direct_mapped(&mut self.slots, hash);
        let hit = slot.filled && slot.hash == hash && slot.raw == raw && slot.key == key;
        if !hit {
            slot.filled = false;
            slot.raw = raw;
            slot.hash = hash;
            slot.key.clear();
            slot.key.extend_from_slice(key);
        }
        (slot, hit)
    }

    /// s-ip as logged, parsed.
    pub(super) fn server_ip(&mut self, raw: Option<&[u8]>) -> Option<IpAddr> {
        let raw = raw?;
        if self.server_ip.0 != raw {
            self.server_ip.0.clear();
            self.server_ip.0.extend_from_slice(raw);
            self.server_ip.1 = w3c::parse_ip(raw);
        }
        self.server_ip.1
    }

    /// The address of c-ip as logged (`raw`), and the client and network it
    /// stands for with `forwarded_for`, remembered: a log has few distinct
    /// pairs. Call after [`Memo::slot`] has made `it` the owner.
    pub(super) fn address(&mut self, it: &Interpreter, raw: Option<&[u8]>, forwarded_for: &str) -> Address {
        let compute = || {
            let peer = raw.and_then(w3c::parse_ip);
            let (client, network) = it.client_and_network(peer, forwarded_for, false);
            Address { peer, client, network }
        };
        let raw = raw.unwrap_or(b"");
        if self.owner != it.id || raw.len() + 1 + forwarded_for.len() > ADDRESS_KEY_MAX {
            return compute();
        }
        let key = &mut self.address_key;
        key.clear();
        key.extend_from_slice(raw);
        // c-ip holds no space: the first one ends it.
        key.push(b' ');
        key.extend_from_slice(forwarded_for.as_bytes());
        let hash = memo_hash(key);
        let (slot, hit) = associative(&mut self.addresses, hash, |s| s.filled && s.hash == hash && s.key == *key);
        if !hit {
            slot.address = compute();
            slot.filled = true;
            slot.hash = hash;
            slot.key.clear();
            slot.key.extend_from_slice(key);
        }
        slot.address
    }

    /// The facts of a decoded user agent.
    pub(super) fn facts(&mut self, it: &Interpreter, ua: &str) -> UaFacts {
        let (slot, hit) = self.slot(it, ua.as_bytes(), false);
        if !hit {
            slot.facts = it.ua_facts(ua);
            slot.filled = true;
        }
        slot.facts
    }

    /// Decode a user agent as logged into `out` (cleared first) and give its facts.
    pub(super) fn raw_facts(&mut self, it: &Interpreter, raw: &[u8], out: &mut String) -> UaFacts {
        let (slot, hit) = self.slot(it, raw, true);
        if !hit {
            slot.ua.clear();
            w3c::decode_into(raw, &mut slot.ua);
            slot.facts = it.ua_facts(&slot.ua);
            slot.filled = true;
        }
        out.clear();
        out.push_str(&slot.ua);
        slot.facts
    }
}

/// The slot of `hash` in a direct-mapped memo of a power-of-two size: its top bits.
fn direct_mapped<T>(slots: &mut [T], hash: u64) -> &mut T {
    debug_assert!(slots.len().is_power_of_two() && slots.len() > 1);
    &mut slots[(hash >> (64 - slots.len().trailing_zeros())) as usize]
}

/// Slots a key may take in the set-associative memos (see [`associative`]).
const WAYS: usize = 4;

/// The slot of `hash` in a set-associative memo of a power-of-two size
/// (sets of [`WAYS`] neighbouring slots, chosen by the hash's top bits),
/// and whether it holds what `holds` accepts. A set is kept in order of
/// last use: a hit moves to the set's front, and on a miss the slot used
/// least recently moves there, to be filled. Values that share a set no
/// longer evict each other line after line, as in a direct-mapped memo,
/// and crafted keys still cost at most [`WAYS`] comparisons and a recomputation.
fn associative<T>(slots: &mut [T], hash: u64, holds: impl Fn(&T) -> bool) -> (&mut T, bool) {
    debug_assert!(slots.len().is_power_of_two() && slots.len() >= WAYS);
    let sets = slots.len() / WAYS;
    // One set: shifting by 64 is no shift.
    let start = hash.checked_shr(64 - sets.trailing_zeros()).unwrap_or(0) as usize * WAYS;
    let set = &mut slots[start..start + WAYS];
    let (way, hit) = match set.iter().position(holds) {
        Some(way) => (way, true),
        None => (WAYS - 1, false),
    };
    set[..=way].rotate_right(1);
    (&mut set[0], hit)
}

/// A fast multiplicative hash (FxHash-like), 8 bytes at a time, for the memos.
fn memo_hash(s: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let step = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(K);
    let mut chunks = s.chunks_exact(8);
    let mut h = step(0, s.len() as u64);
    for c in &mut chunks {
        h = step(h, u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
    }
    let mut tail = [0; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    step(h, u64::from_le_bytes(tail))
}

#[cfg(test)]
mod tests {
    use super::{associative, drop_cafe_id, WAYS};

    /// Front-end lines of one device differ only in their `cafeReqId`: they
    /// share a key. What is not exactly the front end's suffix stays.
    #[test]
    fn a_key_leaves_out_the_front_end_s_request_id() {
        let cut = |query: &str| {
            let mut key = query.to_owned();
            drop_cafe_id(&mut key);
            key
        };
        let eas = "User=a&DeviceId=X1&DeviceType=iPhone&Cmd=Sync&CorrelationID=<empty>;";
        for guid in ["fffa581c-de62-4a3b-a609-8e99f9882d63", "7DA0922C-354C-4CC4-963F-E3F6EE34C8DA"] {
            assert_eq!(cut(&format!("{eas}&cafeReqId={guid};")), eas);
            assert_eq!(cut(&format!("{eas}&cafeReqId={guid};&x=1")), format!("{eas}&x=1"));
        }
        for kept in [
            "&cafeReqId=fffa581c-de62-4a3b-a609-8e99f9882d63;",
            "&&cafeReqId=fffa581c-de62-4a3b-a609-8e99f9882d63;",
            "Cmd=Sync&cafeReqId=fffa581c-de62-4a3b-a609-8e99f9882d6;",
            "Cmd=Sync&cafeReqId=fffa581c-de62-4a3b-a609-8e99f9882d63",
            "Cmd=Sync&cafeReqId=fffa581c-de62-4a3b-a609-8e99f9882d63;x",
            "Cmd=Sync&cafeReqId=fffa581c-de62-4a3b-a609-8e99f9882dzz;",
        ] {
            assert_eq!(cut(kept), kept);
        }
    }

    /// Up to `WAYS` keys of one set are all kept, whatever order they come
    /// in, and one more evicts the one used least recently; other sets are
    /// not touched.
    #[test]
    fn a_set_keeps_its_keys_and_drops_the_least_recently_used() {
        let mut slots = vec![0u32; 4 * WAYS];
        // The top bits pick the set: the second of four.
        let hash = 0x4000_0000_0000_0000u64;
        let get = |slots: &mut [u32], key: u32| {
            let (slot, hit) = associative(slots, hash, |&s| s == key);
            if !hit {
                *slot = key;
            }
            hit
        };
        let keys: Vec<u32> = (1..=WAYS as u32).collect();
        for &k in &keys {
            assert!(!get(&mut slots, k));
        }
        for _ in 0..3 {
            for &k in keys.iter().rev() {
                assert!(get(&mut slots, k), "{k}");
            }
        }
        // The last pass used `WAYS` last: one more key takes its slot.
        let last = WAYS as u32;
        assert!(!get(&mut slots, 100));
        for &k in &keys[..WAYS - 1] {
            assert!(get(&mut slots, k), "{k}");
        }
        assert!(get(&mut slots, 100));
        assert!(!get(&mut slots, last));
        assert!(slots[..WAYS].iter().chain(&slots[2 * WAYS..]).all(|&s| s == 0));
        assert_eq!(slots[WAYS..2 * WAYS].iter().filter(|&&s| s != 0).count(), WAYS);
    }
}
