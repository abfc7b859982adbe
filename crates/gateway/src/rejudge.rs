//! A request whose body still streams to Exchange when the policy is
//! reloaded is judged again by the new policy, and its body is cut if that
//! one denies it. Outlook Anywhere's `RPC_IN_DATA` declares a gigabyte and
//! carries every call Outlook makes for as long as the channel lives (hours),
//! and a chunked body may go on as long; and a client that expects to be
//! denied can open requests ahead, trickle their bodies (nothing times a
//! body out) and finish each after the reload, with whatever content fits
//! its declared length: each one would reach Exchange as a request the
//! policy in force denies.
//!
//! A long body (see [`LONG_BODY`]) keeps a copy of its request's model and
//! is judged again; a short one keeps none (copying the model would cost
//! every ActiveSync and EWS request) and is cut when a reload comes while it
//! streams: a few milliseconds for any real client, which then retries
//! under the new policy. New requests, on any connection, are judged by
//! the policy in force when they arrive; a response already on its way (an
//! ActiveSync Ping's) is not cut: it brings nothing to Exchange.

use std::sync::Arc;

use policy::Action;

use crate::events::Level;
use crate::state::Shared;

/// Bodies declared longer than this, or of no declared length (chunked),
/// keep a copy of their request's model, to be judged again on a reload.
pub(crate) const LONG_BODY: u64 = 1024 * 1024;

/// What a body still streaming needs to be judged on a reload: the policy
/// generation it was last judged by, and for a long body its request's model.
pub(crate) struct Rejudge {
    shared: Arc<Shared>,
    judged: u64,
    model: Option<Box<exchange::Request>>,
    /// Its credentials are ones Exchange may not check (see [`crate::unchecked`]).
    unchecked: bool,
    denied: bool,
}

impl Rejudge {
    /// `judged`: the policy generation read before the policy that allowed
    /// the request (see [`crate::state::PolicyStore::generation`]); `model`:
    /// its model, for a long body; `unchecked`: whether it passed only as
    /// anonymous too, as it must again.
    pub(crate) fn new(
        shared: &Arc<Shared>,
        judged: u64,
        model: Option<Box<exchange::Request>>,
        unchecked: bool,
    ) -> Rejudge {
        Rejudge { shared: shared.clone(), judged, model, unchecked, denied: false }
    }

    /// Whether the body must be cut now: a reload came since it was judged,
    /// and the new policy denies its request, or it kept no model to tell.
    /// Evaluated once per reload; once denied, always denied (a body cut
    /// stays cut, even if hyper handed the request back to be sent again).
    pub(crate) fn denies_now(&mut self) -> bool {
        if self.denied {
            return true;
        }
        let now = self.shared.policy.generation();
        if now == self.judged {
            return false;
        }
        self.judged = now;
        let Some(m) = self.model.as_deref_mut() else {
            self.denied = true;
            (self.shared.events)(Level::Info, "cut in flight: the policy was reloaded while a short body streamed");
            return true;
        };
        let loaded = self.shared.policy.current();
        if loaded.reads_device_facts() {
            self.shared.learned.fill(m, loaded.inventory());
        }
        let mut decision = policy::evaluate(&loaded, m);
        if self.unchecked {
            decision = crate::unchecked::also_anonymous(&loaded, m, decision);
        }
        if decision.action == Action::Deny {
            self.denied = true;
            (self.shared.events)(
                Level::Info,
                &format!(
                    "deny in flight after a reload {} {} user={} rule={}: its body is cut",
                    m.method,
                    m.stem,
                    if m.user.is_empty() { "-" } else { &m.user },
                    loaded.decided_by(&decision)
                ),
            );
        }
        self.denied
    }
}

/// The error a cut body ends with: hyper then closes the upstream
/// connection without ending the body, so Exchange never takes the part it
/// got for a whole request.
#[derive(Debug, thiserror::Error)]
#[error("the reloaded policy denies this request: its body is cut")]
pub(crate) struct DeniedInFlight;
