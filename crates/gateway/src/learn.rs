//! Device facts the gateway learns from traffic, as Exchange does: the model
//! and OS an ActiveSync device sends in the `DeviceInformation` of its
//! `Provision` or `Settings` request (see [`exchange::device_information`]),
//! read from the body as it streams on to Exchange and kept for the device's
//! later requests. A device export gives the devices that set up before the
//! gateway ran; this gives the ones that set up since. Only done when the
//! policy has a rule on a device's model or OS.
//!
//! A body says what its sender wants: what it says is kept only for the
//! user the request named and once Exchange answered it 200 (so it signed
//! in), and never over what the export says of the device. A user can
//! misname only their own device's model, as they can to Exchange. Nor can
//! one user crowd out the others: each keeps at most [`MAX_PER_USER`]
//! devices, their oldest giving way, and a device whose file line would be
//! longer than its share of the file ([`MAX_ROW`]) is not kept, so the
//! whole table always fits in the file and in bounded memory.
//!
//! With `learnt-devices FILE` they are kept across restarts: written there
//! (one JSON object a line: user, device, model, OS; no credentials) a
//! second after they change and at shutdown, through a temporary file
//! renamed over it, and read back at start. A file that cannot be read
//! stops the gateway, naming its line, rather than being ignored (which
//! would let those devices pass a model rule).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use exchange::device_information::DeviceInformation;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use policy::device_key;

use crate::lock;
use crate::rejudge::{DeniedInFlight, Rejudge};
use crate::GatewayError;

/// Devices kept at most: one short entry each (an estate's phones).
const MAX_DEVICES: usize = 100_000;

/// Devices kept at most for one user: Exchange's own default limit on a
/// user's partnerships (the throttling policy's `EasMaxDevices`, 100), so
/// that one account's made-up devices cannot fill the table for everyone
/// (after which nobody's new device would be learnt).
const MAX_PER_USER: usize = 100;

/// Body bytes read at most: `DeviceInformation` opens the body.
const MAX_BODY: usize = 16 * 1024;

/// Bytes the file of learnt devices holds at most, written or read.
const MAX_FILE: usize = 64 * 1024 * 1024;

/// Longest line (JSON, without its line end) of a device kept: its share
/// of the file, so that [`MAX_DEVICES`] of them always fit and none is
/// left out of it. A real device's line is about 200 bytes; one longer
/// (a device id of hundreds of bytes, a model of control characters) is
/// only its own user's device, which could name any model anyway.
const MAX_ROW: usize = MAX_FILE / MAX_DEVICES - 1;
const _: () = assert!(MAX_DEVICES * (MAX_ROW + 1) <= MAX_FILE);

/// One device in the file of learnt devices.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Row<'a> {
    #[serde(borrow)]
    user: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    device: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    model: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    os: std::borrow::Cow<'a, str>,
}

/// What a device said: its model and OS, and when it was learnt (a
/// number that grows with each device learnt). Shared, so that
/// [`Learned::save`] copies the table cheaply while it holds the lock.
#[derive(Clone, Debug)]
struct Fact {
    model: Arc<str>,
    os: Arc<str>,
    at: u64,
}

/// Device id (as Exchange compares one, see [`device_key`]) -> what one
/// user's device said.
type Devices = HashMap<Arc<str>, Fact>;

/// User key -> that user's devices; how many devices in all; the last
/// [`Fact::at`] given.
#[derive(Debug, Default)]
struct Table {
    users: HashMap<Arc<str>, Devices>,
    count: usize,
    last: u64,
}

/// Whether [`Learned::insert`] kept a device.
#[derive(Debug, PartialEq, Eq)]
enum Kept {
    Yes,
    /// [`MAX_DEVICES`] are known, none of them this user's to give way.
    Full,
    /// Its line would be longer than [`MAX_ROW`].
    TooLong,
}

/// What devices said, for all users.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    users: Mutex<Table>,
    /// Where they are kept across restarts (`learnt-devices`), if anywhere.
    file: Option<PathBuf>,
    /// Whether they changed since last written, and the writer's wake-up.
    dirty: AtomicBool,
    changed: tokio::sync::Notify,
    /// One writer at a time (the periodic one and the last, at shutdown).
    writing: Mutex<()>,
    /// Whether the event log was told that the table is full.
    full_said: AtomicBool,
}

impl Learned {
    /// What `file` holds (nothing yet if it does not exist), kept there
    /// from now on; none kept without a file. A file too large, not UTF-8
    /// or with a bad line is an error naming it (and the line).
    pub fn open(file: Option<&Path>) -> Result<Learned, GatewayError> {
        let Some(path) = file else { return Ok(Learned::default()) };
        let bad = |line: usize, m: &dyn std::fmt::Display| {
            let at = if line == 0 { String::new() } else { format!(":{line}") };
            GatewayError::Config(format!("learnt devices: {}{at}: {m}", path.display()))
        };
        let learned = Learned { file: Some(path.to_path_buf()), ..Learned::default() };
        let mut bytes = Vec::new();
        match std::fs::File::open(path) {
            Ok(f) => f.take(MAX_FILE as u64 + 1).read_to_end(&mut bytes).map_err(|e| bad(0, &e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(learned),
            Err(e) => return Err(bad(0, &e)),
        };
        if bytes.len() > MAX_FILE {
            return Err(bad(0, &format_args!("larger than {} MiB", MAX_FILE >> 20)));
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| bad(0, &e))?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row: Row = serde_json::from_str(line).map_err(|e| bad(i + 1, &e))?;
            if row.user.is_empty() || row.device.is_empty() {
                return Err(bad(i + 1, &"a device needs its user and id"));
            }
            match learned.insert(
                row.user.into_owned(),
                row.device.into_owned(),
                row.model.into_owned(),
                row.os.into_owned(),
            ) {
                Kept::Yes => {}
                Kept::Full => return Err(bad(i + 1, &format_args!("more than {MAX_DEVICES} devices"))),
                Kept::TooLong => return Err(bad(i + 1, &format_args!("a device's line over {MAX_ROW} bytes"))),
            }
        }
        learned.dirty.store(false, Ordering::Relaxed);
        Ok(learned)
    }

    /// The file they are kept in, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// How many devices are known.
    pub fn len(&self) -> usize {
        lock(&self.users).count
    }

    /// Write them to their file, if they changed since last written: to a
    /// temporary file beside it, renamed over it; oldest first (so each
    /// user's), so that a restart knows which give way first. At most
    /// [`MAX_FILE`] bytes, which [`MAX_ROW`] keeps them within: any device
    /// beyond would not be written, and said in the error. The table is
    /// locked only while its entries are copied (shared strings, not
    /// serialised): requests that learn or fill a device wait that long.
    pub fn save(&self) -> Result<(), String> {
        let Some(path) = &self.file else { return Ok(()) };
        let _one = lock(&self.writing);
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let mut rows = {
            let table = lock(&self.users);
            let mut rows = Vec::with_capacity(table.count);
            for (user, devices) in &table.users {
                rows.extend(devices.iter().map(|(device, fact)| (user.clone(), device.clone(), fact.clone())));
            }
            rows
        };
        rows.sort_unstable_by_key(|(_, _, fact)| fact.at);
        let (mut text, mut left) = (Vec::new(), 0usize);
        for (user, device, Fact { model, os, .. }) in &rows {
            let row = Row {
                user: (&**user).into(),
                device: (&**device).into(),
                model: (&**model).into(),
                os: (&**os).into(),
            };
            let start = text.len();
            serde_json::to_writer(&mut text, &row).map_err(|e| e.to_string())?;
            if text.len() + 1 > MAX_FILE {
                text.truncate(start);
                left += 1;
                continue;
            }
            text.push(b'\n');
        }
        drop(rows);
        let mut temp = path.as_os_str().to_owned();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let written = write_new(&temp, &text).and_then(|()| std::fs::rename(&temp, path));
        if let Err(e) = written {
            self.dirty.store(true, Ordering::Release);
            let _ = std::fs::remove_file(&temp);
            return Err(format!("learnt devices: cannot write {}: {e}", path.display()));
        }
        if left > 0 {
            return Err(format!(
                "learnt devices: {}: {left} device(s) not written (over {} MiB)",
                path.display(),
                MAX_FILE >> 20
            ));
        }
        Ok(())
    }

    /// Keep them in their file (if any) as they change, a second after.
    pub async fn keep(self: Arc<Self>, events: crate::EventSink) {
        if self.file.is_none() {
            return;
        }
        loop {
            self.changed.notified().await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let learned = self.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || learned.save()).await {
                events(crate::Level::Error, &e);
            }
        }
    }

    /// Fill a request's model and OS (its `Log=` fields, which
    /// `policy::evaluate` reads first) from what its device said before,
    /// unless `inventory` (the export) knows them.
    pub fn fill(&self, m: &mut exchange::Request, inventory: Option<&policy::Inventory>) {
        let device = m.activesync.device_id.as_str();
        if !m.activesync.log.device_model.is_empty()
            || device.is_empty()
            || m.user.is_empty()
            || inventory.is_some_and(|i| i.device_facts(device).is_some())
        {
            return;
        }
        let table = lock(&self.users);
        if let Some(fact) = table.users.get(m.user.as_str()).and_then(|d| d.get(device_key(device).as_ref())) {
            let log = &mut m.activesync.log;
            log.device_model.push_str(&fact.model);
            log.device_os.clear();
            log.device_os.push_str(&fact.os);
        }
    }

    /// Keep what `user`'s `device` said: over what it said before, or in
    /// place of the user's oldest device when they have [`MAX_PER_USER`].
    fn insert(&self, user: String, device: String, model: String, os: String) -> Kept {
        let device = device_key(&device).into_owned();
        let row = Row { user: (&*user).into(), device: (&*device).into(), model: (&*model).into(), os: (&*os).into() };
        if serde_json::to_string(&row).map_or(true, |line| line.len() > MAX_ROW) {
            return Kept::TooLong;
        }
        let mut table = lock(&self.users);
        let Table { users, count, last } = &mut *table;
        let devices = users.get(user.as_str());
        let said = devices.and_then(|d| d.get(device.as_str()));
        if said.is_some_and(|f| *f.model == *model && *f.os == *os) {
            return Kept::Yes;
        }
        // A user's own oldest device gives way to their new one.
        let gives_way = match said {
            Some(_) => None,
            None => devices
                .filter(|d| d.len() >= MAX_PER_USER)
                .and_then(|d| d.iter().min_by_key(|(_, f)| f.at).map(|(oldest, _)| oldest.clone())),
        };
        if said.is_none() && gives_way.is_none() {
            if *count >= MAX_DEVICES {
                return Kept::Full;
            }
            *count += 1;
        }
        *last += 1;
        let devices = users.entry(user.into()).or_default();
        if let Some(oldest) = gives_way {
            devices.remove(&oldest);
        }
        devices.insert(device.into(), Fact { model: model.into(), os: os.into(), at: *last });
        drop(table);
        if self.file.is_some() {
            self.dirty.store(true, Ordering::Release);
            self.changed.notify_one();
        }
        Kept::Yes
    }

    #[cfg(test)]
    fn get(&self, user: &str, device: &str) -> Option<(String, String)> {
        let table = lock(&self.users);
        let fact = table.users.get(user).and_then(|d| d.get(device_key(device).as_ref()))?;
        Some((fact.model.to_string(), fact.os.to_string()))
    }
}

/// Write `bytes` to a new file at `path` (only its owner may read it), to
/// disk.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Whether `m` may carry its device's `DeviceInformation` in its body.
pub(crate) fn may_inform(m: &exchange::Request) -> bool {
    m.protocol == exchange::Protocol::ActiveSync
        && m.method.eq_ignore_ascii_case("POST")
        && !m.user.is_empty()
        && !m.activesync.device_id.is_empty()
        && ["Provision", "Settings"].iter().any(|c| m.activesync.command.eq_ignore_ascii_case(c))
}

/// What a request's body said, waiting for Exchange's answer.
type Said = Arc<Mutex<Option<DeviceInformation>>>;

/// A request that may inform of its device: a [`Tee`] for its body, and
/// what is learned from it once Exchange answers.
pub(crate) fn informing(m: &exchange::Request, learned: &Arc<Learned>) -> (Tee, Informed) {
    let said = Said::default();
    let tee = Tee { read: Vec::new(), said: said.clone() };
    let informed =
        Informed { user: m.user.clone(), device: m.activesync.device_id.clone(), said, learned: learned.clone() };
    (tee, informed)
}

/// Kept with the request until Exchange answers it.
pub(crate) struct Informed {
    user: String,
    device: String,
    said: Said,
    learned: Arc<Learned>,
}

impl Informed {
    /// Exchange answered `status`: a 200 accepts what the body said. The
    /// first device not kept for a full table is said to `events`.
    pub fn answered(self, status: u16, events: &crate::EventSink) {
        if status != 200 {
            return;
        }
        let Some(info) = lock(&self.said).take() else { return };
        let kept = self.learned.insert(self.user, self.device, info.model, info.os);
        if kept == Kept::Full && !self.learned.full_said.swap(true, Ordering::Relaxed) {
            let m = format!(
                "learnt devices: {MAX_DEVICES} devices known, so new ones are not learnt: a rule on a device's model \
                 or OS does not see a device the export does not hold; refresh the export"
            );
            events(crate::Level::Warn, &m);
        }
    }
}

/// Reads the first [`MAX_BODY`] bytes of a body on their way to Exchange;
/// what they say is read when the body is done with (dropped, once sent).
pub(crate) struct Tee {
    read: Vec<u8>,
    said: Said,
}

impl Tee {
    fn take(&mut self, data: &Bytes) {
        let room = MAX_BODY.saturating_sub(self.read.len());
        self.read.extend_from_slice(&data[..data.len().min(room)]);
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        *lock(&self.said) = exchange::device_information::read(&self.read);
    }
}

/// The client's body: streamed, or already read (a forms sign-in, see
/// [`crate::forms`]).
pub(crate) enum ClientBody {
    Stream(Incoming),
    Read(Option<Bytes>),
}

impl ClientBody {
    pub fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Stream(body) => body.is_end_stream(),
            ClientBody::Read(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
        }
    }

    /// Whether it is still to come from the client (a forms sign-in's is
    /// read already).
    pub fn streams(&self) -> bool {
        matches!(self, ClientBody::Stream(body) if !body.is_end_stream())
    }

    /// Whether it may stream long (see [`crate::rejudge::LONG_BODY`]).
    pub fn is_long(&self) -> bool {
        matches!(self, ClientBody::Stream(body) if body.size_hint().upper().is_none_or(|n| n > crate::rejudge::LONG_BODY))
    }
}

/// The client's body as Exchange gets it, streamed; watched by a [`Tee`]
/// when the request may inform of its device, and judged again on a reload
/// while it streams (see [`crate::rejudge`]).
pub(crate) struct Watched {
    inner: ClientBody,
    tee: Option<Box<Tee>>,
    rejudge: Option<Rejudge>,
}

impl Watched {
    pub fn new(inner: ClientBody, tee: Option<Tee>, rejudge: Option<Rejudge>) -> Watched {
        Watched { inner, tee: tee.map(Box::new), rejudge }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Body for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            ClientBody::Stream(body) => Pin::new(body).poll_frame(cx).map_err(BoxError::from),
            ClientBody::Read(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        };
        // Each frame, and the end, as it goes on (checked once read: what
        // the client sent after a reload is judged by the new policy), so
        // nothing read after a reload that denies the request reaches
        // Exchange, nor ends the request there.
        if polled.is_ready() && this.rejudge.as_mut().is_some_and(|r| r.denies_now()) {
            return Poll::Ready(Some(Err(Box::new(DeniedInFlight))));
        }
        if let (Some(tee), Poll::Ready(Some(Ok(frame)))) = (this.tee.as_mut(), &polled) {
            if let Some(data) = frame.data_ref() {
                tee.take(data);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            ClientBody::Stream(body) => body.size_hint(),
            ClientBody::Read(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WBXML: Settings page, Model "SM-S911B", OS "Android 14".
    const BODY: &[u8] = b"\x03\x01\x6a\x00\x00\x12\x56\x48\x57\x03SM-S911B\x00\x01\x5a\x03Android 14\x00\x01\x01\x01";

    fn provision(user: &str, device: &str) -> exchange::Request {
        let mut m = exchange::Request { user: user.into(), ..Default::default() };
        m.activesync.device_id = device.into();
        m
    }

    #[test]
    fn a_device_is_learned_for_its_user_once_exchange_accepts_the_body() {
        let learned = Arc::new(Learned::default());
        let m = provision("erin", "NEW1");
        let (mut tee, informed) = informing(&m, &learned);
        tee.take(&Bytes::from_static(&BODY[..9]));
        tee.take(&Bytes::from_static(&BODY[9..]));
        drop(tee);
        assert_eq!(learned.get("erin", "NEW1"), None, "not before Exchange answers");
        informed.answered(200, &crate::events::silent());
        assert_eq!(learned.get("erin", "NEW1"), Some(("SM-S911B".into(), "Android 14".into())));
        assert_eq!(learned.get("erin", "new1"), learned.get("erin", "NEW1"), "its id in any case");
        // A later request of that device gets them; one with its own keeps its own.
        let mut later = provision("erin", "NEW1");
        learned.fill(&mut later, None);
        assert_eq!(later.activesync.log.device_model, "SM-S911B");
        let mut lower = provision("erin", "new1");
        learned.fill(&mut lower, None);
        assert_eq!(lower.activesync.log.device_model, "SM-S911B", "Exchange's partnership, in any case");
        later.activesync.log.device_model = "Other".into();
        learned.fill(&mut later, None);
        assert_eq!(later.activesync.log.device_model, "Other");
        // Another user naming that device id gets nothing.
        let mut other = provision("mallory", "NEW1");
        learned.fill(&mut other, None);
        assert_eq!(other.activesync.log.device_model, "");
    }

    #[test]
    fn a_body_exchange_refused_or_the_export_contradicts_teaches_nothing() {
        let learned = Arc::new(Learned::default());
        let m = provision("erin", "SEC1A2B3C4D5E6F7");
        let (mut tee, informed) = informing(&m, &learned);
        tee.take(&Bytes::from_static(BODY));
        drop(tee);
        informed.answered(401, &crate::events::silent());
        assert_eq!(learned.get("erin", "SEC1A2B3C4D5E6F7"), None);
        // Learned, but the export says otherwise of the device: the export wins.
        let (mut tee, informed) = informing(&m, &learned);
        tee.take(&Bytes::from_static(BODY));
        drop(tee);
        informed.answered(200, &crate::events::silent());
        let mut export = policy::Inventory::new("");
        export.insert_device_facts("SEC1A2B3C4D5E6F7", "Pixel 8", "Android 14");
        let mut later = provision("erin", "SEC1A2B3C4D5E6F7");
        learned.fill(&mut later, Some(&export));
        assert_eq!(later.activesync.log.device_model, "", "left to the export");
    }

    #[test]
    fn learnt_devices_are_kept_in_their_file_and_a_bad_file_stops_the_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("learnt.jsonl");
        let learned = Learned::open(Some(&path)).unwrap();
        assert_eq!(learned.len(), 0, "no file yet: none known");
        learned.save().unwrap();
        assert!(!path.exists(), "nothing written before anything is learnt");
        learned.insert("erin".into(), "NEW1".into(), "SM-S911B".into(), "Android\t14\n\"x".into());
        learned.save().unwrap();
        assert!(!dir.path().join("learnt.jsonl.tmp").exists());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        // Read back: Erin's device, and only hers.
        let again = Learned::open(Some(&path)).unwrap();
        assert_eq!(again.get("erin", "new1"), Some(("SM-S911B".into(), "Android\t14\n\"x".into())));
        let mut other = provision("mallory", "NEW1");
        again.fill(&mut other, None);
        assert_eq!(other.activesync.log.device_model, "");
        // A bad line, a line without its user, an unknown field, a file too large: refused, naming file and line.
        for (bad, why) in [
            ("\n{\"user\":\"erin\"", ":2: "),
            ("{\"user\":\"\",\"device\":\"D\",\"model\":\"M\",\"os\":\"O\"}", ":1: a device needs"),
            ("{\"user\":\"u\",\"device\":\"D\",\"model\":\"M\",\"os\":\"O\",\"password\":\"x\"}", ":1: unknown field"),
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = Learned::open(Some(&path)).unwrap_err().to_string();
            assert!(err.contains(&format!("{}{why}", path.display())), "{err}");
        }
        std::fs::write(&path, vec![b'\n'; MAX_FILE + 1]).unwrap();
        let err = Learned::open(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("larger than 64 MiB"), "{err}");
        std::fs::write(&path, b"\xff\n").unwrap();
        assert!(Learned::open(Some(&path)).is_err(), "not UTF-8");
    }

    #[test]
    fn a_restart_keeps_which_device_gives_way_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("learnt.jsonl");
        let learned = Learned::open(Some(&path)).unwrap();
        let say = |learned: &Learned, user: &str, device: &str| {
            learned.insert(user.into(), device.into(), "Pixel 8".into(), "Android 14".into())
        };
        // Learnt in an order no hash keeps: newest first by name.
        for i in (0..MAX_PER_USER).rev() {
            assert_eq!(say(&learned, "mallory", &format!("FAKE{i:03}")), Kept::Yes);
            assert_eq!(say(&learned, &format!("u{i}"), "D"), Kept::Yes);
        }
        learned.save().unwrap();
        let again = Learned::open(Some(&path)).unwrap();
        assert_eq!(again.len(), 2 * MAX_PER_USER);
        assert_eq!(say(&again, "mallory", "NEW"), Kept::Yes);
        assert!(again.get("mallory", "FAKE099").is_none(), "the oldest gives way, also after a restart");
        assert!(again.get("mallory", "FAKE098").is_some() && again.get("mallory", "FAKE000").is_some());
    }

    #[test]
    fn one_user_cannot_fill_the_table_or_the_file_for_everyone() {
        let learned = Learned::default();
        let say = |user: &str, device: &str| {
            learned.insert(user.into(), device.into(), "Pixel 8".into(), "Android 14".into())
        };
        assert_eq!(say("erin", "NEW1"), Kept::Yes);
        // Mallory's made-up devices: her oldest give way to her newest.
        for i in 0..MAX_PER_USER + 50 {
            assert_eq!(say("mallory", &format!("FAKE{i}")), Kept::Yes);
        }
        assert_eq!(learned.len(), 1 + MAX_PER_USER);
        assert!(learned.get("mallory", "FAKE49").is_none() && learned.get("mallory", "FAKE50").is_some());
        assert!(learned.get("erin", "NEW1").is_some());
        // A device saying something new again is her newest: it stays.
        assert_eq!(learned.insert("mallory".into(), "FAKE50".into(), "X".into(), "Y".into()), Kept::Yes);
        assert_eq!(say("mallory", "FAKE1000"), Kept::Yes);
        assert!(learned.get("mallory", "FAKE50").is_some() && learned.get("mallory", "FAKE51").is_none());
        // A line longer than its share of the file is not kept: a long id,
        // or values JSON writes six bytes a character.
        assert_eq!(say("mallory", &"L".repeat(MAX_ROW)), Kept::TooLong);
        // (256 bytes: the longest value `device_information` keeps.)
        let control = "\u{1}".repeat(256);
        assert_eq!(learned.insert("erin".into(), "NEW2".into(), control.clone(), control), Kept::TooLong);
        // Full: only a user with devices to give way learns a new one.
        let mut u = 0;
        while learned.len() < MAX_DEVICES {
            for d in 0..MAX_PER_USER.min(MAX_DEVICES - learned.len()) {
                assert_eq!(say(&format!("u{u}"), &format!("D{d}")), Kept::Yes);
            }
            u += 1;
        }
        assert_eq!(learned.len(), MAX_DEVICES);
        assert_eq!(say("zoe", "NEW3"), Kept::Full);
        assert_eq!(say("mallory", "FAKE1001"), Kept::Yes);
        assert_eq!(learned.len(), MAX_DEVICES);
        // Said once in the event log, when a device Exchange accepted is not kept.
        let said = Arc::new(Mutex::new(Vec::new()));
        let events: crate::EventSink = {
            let said = said.clone();
            Arc::new(move |_, m: &str| lock(&said).push(m.to_string()))
        };
        let learned = Arc::new(learned);
        for id in ["NEW4", "NEW5"] {
            let (mut tee, informed) = informing(&provision("zoe", id), &learned);
            tee.take(&Bytes::from_static(BODY));
            drop(tee);
            informed.answered(200, &events);
        }
        let said = lock(&said);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("100000 devices known") && said[0].contains("refresh the export"), "{said:?}");
    }

    #[test]
    fn a_line_of_its_share_of_the_file_is_written_as_measured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("learnt.jsonl");
        let learned = Learned::open(Some(&path)).unwrap();
        // Ids as long as the rest of a line leaves room for: MAX_ROW bytes, kept; one more, not.
        let (users, per_user) = (10, 100);
        for u in 0..users {
            let user = format!("u{u}");
            let row = Row { user: user.as_str().into(), device: "".into(), model: "M\u{1}".into(), os: "O".into() };
            let width = MAX_ROW - serde_json::to_string(&row).unwrap().len();
            let id = |d: usize, width: usize| format!("{d:0>width$}");
            assert_eq!(learned.insert(user.clone(), id(0, width + 1), "M\u{1}".into(), "O".into()), Kept::TooLong);
            for d in 0..per_user {
                assert_eq!(learned.insert(user.clone(), id(d, width), "M\u{1}".into(), "O".into()), Kept::Yes);
            }
        }
        learned.save().unwrap();
        // Each line as long as measured: MAX_DEVICES such lines fit in MAX_FILE.
        let written = std::fs::metadata(&path).unwrap().len() as usize;
        assert_eq!(written, users * per_user * (MAX_ROW + 1));
        assert_eq!(Learned::open(Some(&path)).unwrap().len(), users * per_user, "read back whole");
    }
}
