//! A request whose body still streams to Exchange when the policy is
//! reloaded is judged again by the new policy, and its body is cut if that
//! one denies it. Outlook Anywhere's `RPC_IN_DATA` declares a gigabyte and
//! carries every call Outlook makes for as long as the channel lives (hours),
//! and a chunked body may go on as long: without this, a user or a protocol
//! the new policy denies would go on reaching Exchange on a channel opened
//! before the reload. New requests, on any connection, are judged by the
//! policy in force when they arrive; a response already on its way (an
//! ActiveSync Ping's) is not cut: it brings nothing to Exchange.

use std::sync::Arc;

use policy::Action;

use crate::events::Level;
use crate::state::Shared;

/// Bodies declared longer than this, or of no declared length (chunked),
/// are judged again on a reload: a copy of their request's model is kept
/// for it. Requests of every protocol but Outlook Anywhere's channels (and
/// the odd upload) are far shorter, and keep nothing.
pub(crate) const LONG_BODY: u64 = 1024 * 1024;

/// The request model of a body still streaming, and the policy generation
/// it was last judged by.
pub(crate) struct Rejudge {
    shared: Arc<Shared>,
    judged: u64,
    model: exchange::Request,
    denied: bool,
}

impl Rejudge {
    /// `judged`: the policy generation read before the policy that allowed
    /// `model` (see [`crate::state::PolicyStore::generation`]).
    pub(crate) fn new(shared: &Arc<Shared>, judged: u64, model: exchange::Request) -> Rejudge {
        Rejudge { shared: shared.clone(), judged, model, denied: false }
    }

    /// Whether the policy in force now denies the request. Evaluated once
    /// per reload; once denied, always denied (a body cut stays cut, even
    /// if hyper handed the request back to be sent again).
    pub(crate) fn denies_now(&mut self) -> bool {
        if self.denied {
            return true;
        }
        let now = self.shared.policy.generation();
        if now == self.judged {
            return false;
        }
        self.judged = now;
        let loaded = self.shared.policy.current();
        if loaded.reads_device_facts() {
            self.shared.learned.fill(&mut self.model, loaded.inventory());
        }
        let decision = policy::evaluate(&loaded, &self.model);
        if decision.action == Action::Deny {
            self.denied = true;
            let m = &self.model;
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
#[derive(Debug)]
pub(crate) struct DeniedInFlight;

impl std::fmt::Display for DeniedInFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the reloaded policy denies this request: its body is cut")
    }
}

impl std::error::Error for DeniedInFlight {}
