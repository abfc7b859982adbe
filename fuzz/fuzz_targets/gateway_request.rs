//! What a client sends the gateway, before any policy sees it: Authorization
//! values (Basic, NTLM, Negotiate), request paths and the forms sign-in's
//! body. Never a panic, and a path resolves the same by the shortcut as in
//! full.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gateway::model::fuzz(data);
});
