//! Device facts the gateway learns from traffic, as Exchange does: the model
//! and OS an ActiveSync device sends in the `DeviceInformation` of its
//! `Provision` or `Settings` request (see [`exchange::device_information`]),
//! read from the body as it streams on to Exchange and kept for the device's
//! later requests. A device export gives the devices that set up before the
//! gateway ran; this gives the ones that set up since. Only done when the
//! policy has a rule on a device's model or OS.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::lock;

/// Devices kept at most: one short entry each (an estate's phones).
const MAX_DEVICES: usize = 100_000;

/// Body bytes read at most: `DeviceInformation` opens the body.
const MAX_BODY: usize = 16 * 1024;

/// Device id -> (model, OS), as the devices said.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    devices: Mutex<HashMap<String, (String, String)>>,
}

impl Learned {
    /// Fill a request's model and OS (its `Log=` fields, which
    /// `policy::evaluate` reads first) from what its device said before.
    pub fn fill(&self, m: &mut exchange::Request) {
        let log = &mut m.activesync.log;
        if !log.device_model.is_empty() || m.activesync.device_id.is_empty() {
            return;
        }
        if let Some((model, os)) = lock(&self.devices).get(&m.activesync.device_id) {
            log.device_model.clone_from(model);
            log.device_os.clone_from(os);
        }
    }

    fn insert(&self, device: String, info: exchange::device_information::DeviceInformation) {
        let mut devices = lock(&self.devices);
        if devices.len() < MAX_DEVICES || devices.contains_key(&device) {
            devices.insert(device, (info.model, info.os));
        }
    }

    #[cfg(test)]
    fn get(&self, device: &str) -> Option<(String, String)> {
        lock(&self.devices).get(device).cloned()
    }
}

/// Whether `m` may carry its device's `DeviceInformation` in its body.
pub(crate) fn may_inform(m: &exchange::Request) -> bool {
    m.protocol == exchange::Protocol::ActiveSync
        && m.method.eq_ignore_ascii_case("POST")
        && !m.activesync.device_id.is_empty()
        && ["Provision", "Settings"].iter().any(|c| m.activesync.command.eq_ignore_ascii_case(c))
}

/// Reads the first [`MAX_BODY`] bytes of a body on their way to Exchange;
/// what they say is learned when the body is done with (dropped), sent or not.
pub(crate) struct Tee {
    device: String,
    read: Vec<u8>,
    learned: Arc<Learned>,
}

impl Tee {
    pub fn new(device: &str, learned: Arc<Learned>) -> Tee {
        Tee { device: device.to_string(), read: Vec::new(), learned }
    }

    fn take(&mut self, data: &Bytes) {
        let room = MAX_BODY.saturating_sub(self.read.len());
        self.read.extend_from_slice(&data[..data.len().min(room)]);
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        if let Some(info) = exchange::device_information::read(&self.read) {
            self.learned.insert(std::mem::take(&mut self.device), info);
        }
    }
}

/// The client's body as Exchange gets it, streamed; watched by a [`Tee`]
/// when the request may inform of its device.
pub(crate) struct Watched {
    inner: Incoming,
    tee: Option<Box<Tee>>,
}

impl Watched {
    pub fn new(inner: Incoming, tee: Option<Tee>) -> Watched {
        Watched { inner, tee: tee.map(Box::new) }
    }
}

impl Body for Watched {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
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
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_learned_when_its_body_is_done_with() {
        let learned = Arc::new(Learned::default());
        let mut tee = Tee::new("SEC1A2B3C4D5E6F7", learned.clone());
        // WBXML: Settings page, Model "SM-S911B", OS "Android 14".
        let body = b"\x03\x01\x6a\x00\x00\x12\x56\x48\x57\x03SM-S911B\x00\x01\x5a\x03Android 14\x00\x01\x01\x01";
        tee.take(&Bytes::from_static(&body[..9]));
        assert_eq!(learned.get("SEC1A2B3C4D5E6F7"), None);
        tee.take(&Bytes::from_static(&body[9..]));
        drop(tee);
        assert_eq!(learned.get("SEC1A2B3C4D5E6F7"), Some(("SM-S911B".into(), "Android 14".into())));
        // A later request of that device gets them; one with its own keeps its own.
        let mut m = exchange::Request::default();
        m.activesync.device_id = "SEC1A2B3C4D5E6F7".into();
        learned.fill(&mut m);
        assert_eq!(m.activesync.log.device_model, "SM-S911B");
        m.activesync.log.device_model = "Other".into();
        learned.fill(&mut m);
        assert_eq!(m.activesync.log.device_model, "Other");
    }
}
