//! A policy ready to decide requests: compiled against one interpreter's
//! catalog and networks, with the inventory its `device` conditions need,
//! checked once when built. [`evaluate`] takes nothing else, so a policy
//! whose inventory was forgotten cannot run (it would find every device new).

use std::path::Path;
use std::sync::Arc;

use exchange::{Interpreter, Request};

use crate::inventory::Inventory;
use crate::model::{Action, Decision, Policy};
use crate::PolicyError;

/// The one thing simulate, export, watch and the gateway evaluate with.
#[derive(Clone, Debug)]
pub struct ReadyPolicy {
    policy: Policy,
    inventory: Option<Arc<Inventory>>,
    interpreter: Arc<Interpreter>,
    /// Per rule, its name, shared (labels, log fields).
    rule_names: Vec<Arc<str>>,
    /// A rule reads a device's model or OS.
    reads_device_facts: bool,
}

impl ReadyPolicy {
    /// Read a policy file against `interpreter`, with the inventory file it
    /// may need.
    pub fn load(
        path: &Path,
        inventory: Option<&Path>,
        interpreter: Arc<Interpreter>,
    ) -> Result<ReadyPolicy, PolicyError> {
        let policy = Policy::load_with(path, interpreter.catalog(), interpreter.networks())?;
        let inventory = inventory.map(Inventory::load).transpose()?.map(Arc::new);
        ReadyPolicy::new(policy, inventory, interpreter)
    }

    /// `policy`, compiled against `interpreter`'s catalog and networks (see
    /// [`Policy::load_with`]), made ready: fails when a rule has a `device`
    /// condition and there is no inventory.
    pub fn new(
        policy: Policy,
        inventory: Option<Arc<Inventory>>,
        interpreter: Arc<Interpreter>,
    ) -> Result<ReadyPolicy, PolicyError> {
        if inventory.as_deref().is_none_or(Inventory::is_facts_only) {
            if let Some(r) = policy.device_rule() {
                return Err(PolicyError::Invalid {
                    file: policy.origin().to_string(),
                    line: Some(r.line),
                    message: format!(
                        "rule '{}' has a device condition: give the devices known before the cut-over: --inventory (simulate and gateway also take --devices, simulate --known-before)",
                        r.name
                    ),
                });
            }
        }
        let rule_names = policy.rules().iter().map(|r| Arc::from(r.name.as_str())).collect();
        let reads_device_facts = policy.reads_device_facts();
        Ok(ReadyPolicy { policy, inventory, interpreter, rule_names, reads_device_facts })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The interpreter the policy was compiled against: requests it decides
    /// must be read with this one.
    pub fn interpreter(&self) -> &Arc<Interpreter> {
        &self.interpreter
    }

    /// The devices known before the cut-over, when the policy was given them.
    pub fn inventory(&self) -> Option<&Inventory> {
        self.inventory.as_deref()
    }

    /// A rule that reads a device's model or OS while the inventory knows
    /// none: a request does not carry them (Exchange logs them in `Log=`
    /// after the fact), so live traffic can only be judged on them from a
    /// device export. `None` when every such rule can be enforced.
    pub fn rule_without_device_facts(&self) -> Option<&crate::model::Rule> {
        if !self.reads_device_facts || self.inventory.as_deref().is_some_and(Inventory::has_device_facts) {
            return None;
        }
        self.policy.rules().iter().find(|r| r.reads_device_facts())
    }

    /// Whether a rule reads a device's model or OS.
    pub fn reads_device_facts(&self) -> bool {
        self.reads_device_facts
    }

    /// See [`evaluate`].
    #[inline]
    pub fn evaluate(&self, request: &Request) -> Decision {
        evaluate(self, request)
    }

    /// Where rule `rule` redirects to, if it is a URL Rewrite `Redirect`
    /// whose target is known (see [`crate::Redirect::location`]).
    pub fn redirect(&self, rule: Option<usize>) -> Option<&crate::Redirect> {
        rule.and_then(|i| self.policy.rules().get(i)).and_then(|r| r.redirect.as_ref())
    }

    /// The name of rule `rule` (`None`: the default, which has none).
    pub fn rule_name(&self, rule: Option<usize>) -> Option<&Arc<str>> {
        rule.and_then(|i| self.rule_names.get(i))
    }

    /// The name of the rule that decided, `default`, or why the request
    /// was refused before any rule.
    pub fn decided_by(&self, decision: &Decision) -> &str {
        match decision.refused {
            Some(reason) => reason,
            None => self.rule_name(decision.rule).map_or("default", |r| r),
        }
    }

    /// Where reports count a decision: a rule's index, then the default
    /// (`rules().len()`), then requests refused before any rule
    /// ([`ReadyPolicy::REFUSED`] past the default). [`ReadyPolicy::slot_name`] names it.
    pub fn slot(&self, decision: &Decision) -> usize {
        let rules = self.policy.rules().len();
        match (decision.refused, decision.rule) {
            (Some(_), _) => rules + Self::REFUSED,
            (None, Some(i)) => i,
            (None, None) => rules,
        }
    }

    /// How many slots [`ReadyPolicy::slot`] uses.
    pub fn slots(&self) -> usize {
        self.policy.rules().len() + Self::REFUSED + 1
    }

    /// The refused requests' slot, counted from the default's.
    const REFUSED: usize = 1;

    /// What a [`ReadyPolicy::slot`] stands for.
    pub fn slot_kind(&self, slot: usize) -> Slot<'_> {
        match self.policy.rules().get(slot) {
            Some(rule) => Slot::Rule(rule),
            None if slot == self.policy.rules().len() => Slot::Default,
            None => Slot::Refused,
        }
    }

    /// The name of a [`ReadyPolicy::slot`].
    pub fn slot_name(&self, slot: usize) -> &str {
        match self.slot_kind(slot) {
            Slot::Rule(_) => &self.rule_names[slot],
            Slot::Default => "default",
            Slot::Refused => REFUSED_SLOT,
        }
    }
}

/// What a report's rule slot stands for (see [`ReadyPolicy::slot`]).
#[derive(Clone, Copy, Debug)]
pub enum Slot<'a> {
    Rule(&'a crate::model::Rule),
    /// The policy's default.
    Default,
    /// Requests refused before any rule.
    Refused,
}

/// What reports call the requests refused before any rule (each refusal's
/// own reason is [`Decision::refused`]).
const REFUSED_SLOT: &str = "refused: ambiguous request";

/// Whether `request`, which names no one yet (the requests that open an NTLM
/// or Negotiate sign-in carry no user), may be allowed once it names its
/// user: the rules are read in order as [`evaluate`] reads them, and one
/// whose match depends on the user (see `Rule::matches_once_signed_in`)
/// allows if it is an allow rule and is passed over if it is a deny rule,
/// as some user may pass it. Generous on purpose: it only lets a sign-in
/// go on; the request that names its user is judged by [`evaluate`].
pub fn may_allow_once_signed_in(policy: &ReadyPolicy, request: &Request) -> bool {
    request.ambiguity().is_none() && rules_may_allow_once_signed_in(policy, request)
}

/// [`may_allow_once_signed_in`] for a request known not to be refused.
fn rules_may_allow_once_signed_in(policy: &ReadyPolicy, request: &Request) -> bool {
    let inventory = policy.inventory.as_deref();
    for r in &policy.policy.rules {
        match r.matches_once_signed_in(request, inventory) {
            Some(true) => return r.action == Action::Allow,
            None if r.action == Action::Allow => return true,
            _ => {}
        }
    }
    policy.policy.default == Action::Allow
}

/// Decide `request` under `policy`: the first rule whose conditions all match
/// and none of whose exceptions match decides; else the default. A request
/// that opens a Windows sign-in, denied (403) for naming no one yet where
/// some user may pass, is still denied, but with the sign-in's challenge (401.2,
/// [`Decision::challenge`]): answered 403, no Windows client (Outlook for
/// Windows, EWS programs) could sign in as a user a rule lets through by
/// name. Pure; does not allocate.
pub fn evaluate(policy: &ReadyPolicy, request: &Request) -> Decision {
    let decision = first_match(policy, request);
    // Only a denial answered 403: a rule answering otherwise (404 to hide a
    // page, an abort) keeps its answer, which a challenge would give away.
    let challenge = decision.action == Action::Deny
        && decision.refused.is_none()
        && decision.status == 403
        && request.is_anonymous()
        && exchange::protocol::windows_sign_in_page(request.protocol).is_some()
        // Not refused (checked above): the request's ambiguity is not read again.
        && rules_may_allow_once_signed_in(policy, request);
    if challenge {
        return Decision { status: 401, substatus: 2, challenge, ..decision };
    }
    decision
}

/// The first rule's decision, or the default's.
fn first_match(policy: &ReadyPolicy, request: &Request) -> Decision {
    if let Some(reason) = request.ambiguity() {
        return Decision {
            action: Action::Deny,
            rule: None,
            status: 400,
            substatus: 0,
            refused: Some(reason),
            challenge: false,
        };
    }
    let inventory = policy.inventory.as_deref();
    let p = &policy.policy;
    for (i, r) in p.rules.iter().enumerate() {
        if r.matches(request, inventory) {
            return Decision {
                action: r.action,
                rule: Some(i),
                status: r.status,
                substatus: r.substatus,
                refused: None,
                challenge: false,
            };
        }
    }
    Decision {
        action: p.default,
        rule: None,
        status: if p.default == Action::Deny { p.default_status } else { 0 },
        substatus: 0,
        refused: None,
        challenge: false,
    }
}
