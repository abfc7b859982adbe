//! A whole log line through the reader and the interpreter: the path every
//! byte of an untrusted IIS log takes; and the query as casguard writes it.
#![no_main]

use std::sync::OnceLock;

use exchange::{Interpreter, Request};
use w3c::{Record, ScanOptions};

const HEADER: &[u8] = b"#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken X-Forwarded-For\n";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static INTERPRETER: OnceLock<Interpreter> = OnceLock::new();
    let interpreter = INTERPRETER.get_or_init(Interpreter::builtin);
    let mut log = HEADER.to_vec();
    log.extend_from_slice(data);
    let mut request = Request::default();
    w3c::scan_bytes(&log, &ScanOptions::default(), &mut |r: &Record<'_>| {
        interpreter.read_record(r, &mut request);
        assert!(!request.user.bytes().any(|b| b.is_ascii_uppercase()));
        // What casguard writes of a query: only secrets' values change, and
        // redacting twice changes nothing more.
        let written = exchange::url::redact_secrets(&request.query);
        assert_eq!(written.split('&').count(), request.query.split('&').count());
        assert_eq!(exchange::url::redact_secrets(&written), written);
    });
});
