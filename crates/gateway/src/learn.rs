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
//! misname only their own device's model, as they can to Exchange.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use exchange::device_information::DeviceInformation;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use policy::device_key;

use crate::lock;
use crate::rejudge::{DeniedInFlight, Rejudge};

/// Devices kept at most: one short entry each (an estate's phones).
const MAX_DEVICES: usize = 100_000;

/// Body bytes read at most: `DeviceInformation` opens the body.
const MAX_BODY: usize = 16 * 1024;

/// Device id (as Exchange compares one, see [`device_key`]) -> (model,
/// OS), as one user's devices said.
type Devices = HashMap<String, (String, String)>;

/// User key -> that user's devices, and how many devices in all.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    users: Mutex<(HashMap<String, Devices>, usize)>,
}

impl Learned {
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
        let users = lock(&self.users);
        if let Some((model, os)) = users.0.get(m.user.as_str()).and_then(|d| d.get(device_key(device).as_ref())) {
            m.activesync.log.device_model.clone_from(model);
            m.activesync.log.device_os.clone_from(os);
        }
    }

    fn insert(&self, user: String, device: String, info: DeviceInformation) {
        let device = device_key(&device).into_owned();
        let mut users = lock(&self.users);
        let (map, count) = &mut *users;
        let known = map.get(&user).is_some_and(|d| d.contains_key(&device));
        if !known && *count >= MAX_DEVICES {
            return;
        }
        *count += usize::from(!known);
        map.entry(user).or_default().insert(device, (info.model, info.os));
    }

    #[cfg(test)]
    fn get(&self, user: &str, device: &str) -> Option<(String, String)> {
        lock(&self.users).0.get(user).and_then(|d| d.get(device_key(device).as_ref())).cloned()
    }
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
    /// Exchange answered `status`: a 200 accepts what the body said.
    pub fn answered(self, status: u16) {
        if status != 200 {
            return;
        }
        if let Some(info) = lock(&self.said).take() {
            self.learned.insert(self.user, self.device, info);
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
        informed.answered(200);
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
        informed.answered(401);
        assert_eq!(learned.get("erin", "SEC1A2B3C4D5E6F7"), None);
        // Learned, but the export says otherwise of the device: the export wins.
        let (mut tee, informed) = informing(&m, &learned);
        tee.take(&Bytes::from_static(BODY));
        drop(tee);
        informed.answered(200);
        let mut export = policy::Inventory::new("");
        export.insert_device_facts("SEC1A2B3C4D5E6F7", "Pixel 8", "Android 14");
        let mut later = provision("erin", "SEC1A2B3C4D5E6F7");
        learned.fill(&mut later, Some(&export));
        assert_eq!(later.activesync.log.device_model, "", "left to the export");
    }
}
