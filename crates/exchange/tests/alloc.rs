//! `Interpreter::interpret` allocates nothing once a reused `Request` has
//! grown to size. Its own test binary, because it installs a counting allocator.

#[path = "../../../tests/support/counting.rs"]
mod counting;

use exchange::{Interpreter, Request};

/// (stem, query, user agent, username, peer, forwarded-for, status)
const LINES: &[(&str, &str, &str, &str, &str, &str, u16)] = &[
    (
        "/Microsoft-Server-ActiveSync/default.eas",
        "Cmd=Sync&User=CONTOSO%5Cjdoe&DeviceId=ABC123&DeviceType=Outlook&Log=V161_HH:mail.contoso.com_DevOS:iOS+17_As:AllowedG",
        "Outlook-iOS-Android/1.0",
        "",
        "10.0.0.5",
        "52.96.1.1, 10.1.1.1",
        200,
    ),
    ("/Microsoft-Server-ActiveSync", "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", "Apple-iPhone15C3/2104.100", "", "203.0.113.9", "", 200),
    ("/EWS/Exchange.asmx", "", "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)", "CONTOSO\\JDoe", "198.51.100.3", "", 200),
    ("/ews/exchange.asmx", "", "eM Client/9.2.2157.0", "jdoe@contoso.com", "2001:db8::5", "", 200),
    ("/owa/", "", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)", "CONTOSO\\ÜNAL", "fe80::1", "", 302),
    ("/rpc/rpcproxy.dll", "EX04.ad.contoso.com:6001", "MSRPC", "CONTOSO\\EX04$", "::1", "", 200),
    ("/autodiscover/autodiscover.json", "@evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3f@evil.com", "python", "", "192.0.2.1", "", 401),
    ("/Microsoft-Server-ActiveSync/error.aspx", "cmd=whomai&User=vvvvv&DeviceType=Outlook", "Outlook-iOS-Android/1.0", "", "40.96.39.253", "", 401),
    ("/1/CEO.pst", "User=mmm&DeviceType=iPhone&Cmd=Ping", "Apple-iPhone10C5/1606.250", "abcd\\ssssss", "93.168.240.238", "", 200),
    ("/ecp/Current/exporttool/x.application", "", "Mozilla/5.0 zgrab/0.x", "", "192.0.2.9", "", 200),
    ("/ews/exchange.asmx", "", "Ews_Probe/Local (ExchangeServicesClient/15.01.25965.004)", "HealthMailboxdf8b87828ab0427cb91e985bbdfcec62", "::1", "", 200),
];

fn fill(req: &mut Request, line: &(&str, &str, &str, &str, &str, &str, u16)) {
    let (stem, query, ua, user, peer, xff, status) = *line;
    req.clear();
    req.method.push_str("POST");
    req.stem.push_str(stem);
    req.query.push_str(query);
    req.user_agent.push_str(ua);
    req.username.push_str(user);
    req.forwarded_for.push_str(xff);
    req.peer_ip = peer.parse().ok();
    req.status = status;
    req.server_port = 443;
}

#[test]
fn interpret_is_allocation_free_in_steady_state() {
    let it = Interpreter::builtin();
    let mut req = Request::default();
    // Warm up: let every string grow to the largest value it will hold.
    for _ in 0..2 {
        for line in LINES {
            fill(&mut req, line);
            it.interpret(&mut req);
        }
    }
    // The counter works.
    let before = counting::allocations();
    std::hint::black_box(Vec::<u8>::with_capacity(16));
    assert!(counting::allocations() > before);

    let before = counting::allocations();
    let mut exploits = 0;
    for _ in 0..100 {
        for line in LINES {
            fill(&mut req, line);
            it.interpret(&mut req);
            exploits += req.attack.is_some() as u32;
        }
    }
    let after = counting::allocations();
    // ProxyShell, the web shell, the stolen .pst and the scanner.
    assert_eq!(exploits, 400);
    assert_eq!(after - before, 0, "allocations in {} interprets", 100 * LINES.len());
}
