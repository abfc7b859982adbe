//! Differential: the gateway decides on the path IIS routes, whatever the
//! spelling. For any input, take the path the gateway would decide on, spell
//! it again in other ways IIS reads alike (escapes, %u, backslashes, dot and
//! empty segments, trailing dots, case), chosen by the input's bytes, and
//! require the same canonical path and the same policy decision.
#![no_main]

use std::sync::{Arc, OnceLock};

use exchange::{Interpreter, Request};
use policy::{Policy, ReadyPolicy};

const POLICY: &str = "default = 'allow'\n\
[[rule]]\nname = 'ews'\naction = 'deny'\npath = '/EWS'\n\
[[rule]]\nname = 'oab glob'\naction = 'deny'\npath = '/oab/*/oab.xml'\n\
[[rule]]\nname = 'ps'\naction = 'deny'\nprotocol = 'powershell'\n\
[[rule]]\nname = 'eas provision'\naction = 'deny'\nprotocol = 'activesync'\ncommand = 'Provision'\n";

fn setup() -> &'static ReadyPolicy {
    static SETUP: OnceLock<ReadyPolicy> = OnceLock::new();
    SETUP.get_or_init(|| {
        let i = Arc::new(Interpreter::builtin());
        let p = Policy::from_toml(POLICY, "fuzz.toml".as_ref(), i.catalog(), i.networks()).unwrap();
        ReadyPolicy::new(p, None, i).unwrap()
    })
}

fn decide(stem: &str, query: &str) -> (Option<usize>, String) {
    let policy = setup();
    let mut r = Request::default();
    r.method.push_str("GET");
    r.stem.push_str(stem);
    r.query.push_str(query);
    policy.interpreter().interpret(&mut r);
    (policy.evaluate(&r).rule, r.stem)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (path, choices) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let raw = String::from_utf8_lossy(path);
    let mut canonical = String::new();
    if exchange::url::decode_path(&raw, &mut canonical).is_err() {
        return; // refused: never evaluated, never forwarded
    }
    let query = "Cmd=Provision&DeviceId=D1&DeviceType=Outlook";
    let (rule, stem) = decide(&canonical, query);
    assert_eq!(stem, canonical, "interpreting a canonical path keeps it");
    let respelled = exchange::url::respell(&canonical, choices);
    let mut again = String::new();
    if let Err(e) = exchange::url::decode_path(&respelled, &mut again) {
        // Only a segment made longer by a trailing dot may be refused.
        assert_eq!(e, exchange::url::Refusal::SegmentTooLong, "{canonical:?} respelled {respelled:?}");
        return;
    }
    assert!(again.eq_ignore_ascii_case(&canonical), "{canonical:?} respelled {respelled:?} read {again:?}");
    assert_eq!(decide(&again, query).0, rule, "{canonical:?} vs {respelled:?}");
});
