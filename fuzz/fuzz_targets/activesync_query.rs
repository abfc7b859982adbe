//! The ActiveSync query parsers (plain, base64 and `&Log=` tokens) and the
//! reader of ProxyShell's `X-Rps-CAT` token never panic, whatever the query.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    exchange::activesync::fuzz(data);
});
