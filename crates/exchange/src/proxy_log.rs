//! An HttpProxy log line as the same [`Request`] an IIS line makes: method,
//! stem and query, user, user agent, client address, status, time, and the
//! authentication type IIS does not log.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};

use httpproxy::{Field, Record};

use crate::classify::Interpreter;
use crate::request::{AuthType, Request, Source};
use crate::url;

thread_local! {
    /// A log file has one date for thousands of lines.
    static DATES: RefCell<w3c::time::DateTimeCache> = RefCell::new(w3c::time::DateTimeCache::default());
}

impl Interpreter {
    /// Clear `req`, copy the fields of an HttpProxy line into it, then
    /// [`interpret`](Interpreter::interpret) them. The user is
    /// `AuthenticatedUser`, else the ActiveSync `User=` parameter, else an
    /// `AnchorMailbox` that names an address (`Smtp~`, `LiveIdMemberName~`),
    /// except on a WS-Security endpoint (see `ws_security`), where the
    /// anchor names the mailbox another organization asks about.
    /// An `AnchorMailbox` that names a back end and a path is ProxyLogon's
    /// route ([`Request::backend_named`]): the line is an attack.
    pub fn read_proxy_record(&self, record: &Record<'_>, req: &mut Request) {
        req.clear();
        req.source = Source::HttpProxy;
        req.time = DATES
            .try_with(|d| d.try_borrow_mut().ok().and_then(|mut d| record.timestamp_cached(&mut d)))
            .ok()
            .flatten()
            .or_else(|| record.timestamp())
            .unwrap_or(0);
        // Only the fields read are checked for UTF-8: a line is mostly latencies and diagnostics.
        let text = |f: Field, out: &mut String| match record.get(f).map(std::str::from_utf8) {
            Some(Ok(v)) if !record.is_escaped(f) => out.push_str(v),
            Some(_) => record.value_into(f, out),
            None => {}
        };
        text(Field::Method, &mut req.method);
        // `UrlStem` is the path as requested, escapes and all (an assumption:
        // the public lines have none); decode it as IIS does for cs-uri-stem.
        let _ = match record.get(Field::UrlStem).map(std::str::from_utf8) {
            Some(Ok(stem)) if !record.is_escaped(Field::UrlStem) => url::decode_path(stem, &mut req.stem),
            Some(_) => {
                let mut stem = String::new();
                record.value_into(Field::UrlStem, &mut stem);
                url::decode_path(&stem, &mut req.stem)
            }
            None => Ok(()),
        };
        match record.get(Field::UrlQuery).map(std::str::from_utf8) {
            Some(Ok(q)) if !record.is_escaped(Field::UrlQuery) => req.query.push_str(q.strip_prefix('?').unwrap_or(q)),
            Some(_) => {
                record.value_into(Field::UrlQuery, &mut req.query);
                if req.query.starts_with('?') {
                    req.query.drain(..1);
                }
            }
            None => {}
        }
        text(Field::UserAgent, &mut req.user_agent);
        text(Field::AuthenticatedUser, &mut req.username);
        req.auth = record.get(Field::AuthenticationType).map_or(AuthType::Unknown, AuthType::from_name);
        req.status = record.get(Field::HttpStatus).and_then(parse_u16).unwrap_or(0);
        req.peer_ip = record.get(Field::ClientIpAddress).and_then(parse_address);
        req.backend_named = record.get(Field::AnchorMailbox).is_some_and(url::anchor_names_a_backend);
        self.interpret(req);
        if req.user.is_empty() && !ws_security(&req.stem) {
            // Rare: no user from the two sources before it; a typed hint may name one.
            if let Some(anchor) = record.get(Field::AnchorMailbox).and_then(anchor_address) {
                req.username.push_str(anchor);
                self.interpret(req);
            }
        }
    }
}

/// A WS-Security endpoint (`/autodiscover/autodiscover.svc/WSSecurity`,
/// `/EWS/Exchange.asmx/WSSecurity`): another organization's Exchange (Exchange
/// Online in a hybrid) calls it with a federation token in the SOAP body, so
/// IIS logs no user. Its `AnchorMailbox` (`RoutingHint`
/// `WSSecurityRequest-SMTP`) is the mailbox asked about, not the caller.
fn ws_security(stem: &str) -> bool {
    stem.trim_end_matches('/').rsplit('/').next().is_some_and(|last| last.eq_ignore_ascii_case("WSSecurity"))
}

/// The address an `AnchorMailbox` hint names, when it names one.
fn anchor_address(anchor: &[u8]) -> Option<&str> {
    let anchor = std::str::from_utf8(anchor).ok()?;
    let (kind, value) = anchor.split_once('~')?;
    let names_person = kind.eq_ignore_ascii_case("Smtp") || kind.eq_ignore_ascii_case("LiveIdMemberName");
    let local = value.split_once('@').map_or("", |(local, _)| local.trim());
    (names_person && !local.is_empty()).then_some(value)
}

fn parse_u16(v: &[u8]) -> Option<u16> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// `ClientIpAddress` as logged: an address, with a port (`52.96.16.37:49660`,
/// `[2001:db8::1]:443`) or an IPv6 zone (`fe80::1%3`).
fn parse_address(v: &[u8]) -> Option<IpAddr> {
    if let Some(ip) = w3c::parse_ip(v) {
        return Some(ip);
    }
    let s = std::str::from_utf8(v).ok()?.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    let s = s.strip_prefix('[').and_then(|s| s.split_once(']')).map_or(s, |(a, _)| a);
    s.split_once('%').map_or(s, |(a, _)| a).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Protocol, Traffic};

    const FIELDS: &str = "#Fields: DateTime,RequestId,UrlStem,UrlQuery,AuthenticationType,IsAuthenticated,AuthenticatedUser,AnchorMailbox,UserAgent,ClientIpAddress,HttpStatus,Method\r\n";

    fn read(lines: &str) -> Vec<Request> {
        let it = Interpreter::builtin();
        let log = format!("{FIELDS}{lines}");
        let mut out = Vec::new();
        let mut req = Request::default();
        let stats = httpproxy::scan_bytes(log.as_bytes(), &w3c::ScanOptions::default(), &mut |r: &Record<'_>| {
            it.read_proxy_record(r, &mut req);
            out.push(req.clone());
        });
        assert_eq!(stats.malformed_total(), 0, "{:?}", stats.first_malformed);
        out
    }

    #[test]
    fn a_line_makes_the_request_an_iis_line_makes() {
        let r = &read(
            "2023-01-11T16:06:06.997Z,823d6c00-01f1-4067-9002-18ff1cf2e5d9,/Microsoft-Server-ActiveSync/default.eas,\
?Cmd=Options&User=domain.test%5Cusername&DeviceId=123&DeviceType=Outlook,Basic,true,DOMAIN\\username,\
Sid~S-1-5-21-1,Outlook-iOS-Android/1.0,52.96.16.37:49660,403,OPTIONS\r\n",
        )[0];
        assert_eq!((r.method.as_str(), r.stem.as_str()), ("OPTIONS", "/Microsoft-Server-ActiveSync/default.eas"));
        assert_eq!(r.query, "Cmd=Options&User=domain.test%5Cusername&DeviceId=123&DeviceType=Outlook");
        assert_eq!((r.username.as_str(), r.user.as_str()), ("DOMAIN\\username", "username"));
        assert_eq!(r.activesync.device_type, "Outlook");
        assert_eq!((r.auth, r.source, r.status), (AuthType::Basic, Source::HttpProxy, 403));
        assert_eq!(r.peer_ip, Some("52.96.16.37".parse().unwrap()));
        assert_eq!(r.time, 1_673_453_166);
        assert_eq!((r.protocol, r.traffic), (Protocol::ActiveSync, Traffic::Person));
        let it = Interpreter::builtin();
        assert_eq!(it.catalog().get(r.client).id, "outlook-mobile");
        assert_eq!(it.networks().name(r.network), "microsoft365");
    }

    #[test]
    fn the_user_falls_back_to_activesync_then_to_the_anchor() {
        let reqs = read(
            "2023-01-11T16:00:00Z,a,/Microsoft-Server-ActiveSync/default.eas,?Cmd=Sync&User=CONTOSO%5Cbob&DeviceId=1&DeviceType=iPhone,Basic,false,,Smtp~carol@contoso.com,Apple-iPhone/1,10.0.0.1,401,POST\r\n\
2023-01-11T16:00:01Z,b,/autodiscover/autodiscover.json,?Email=x,Bearer,false,,Smtp~carol@contoso.com,Outlook-iOS/2.0,10.0.0.1,401,GET\r\n\
2023-01-11T16:00:02Z,c,/ecp/,,FBA,false,,ServerVersion~Version 15.0 (Build 0.0),Mozilla/5.0 zgrab/0.x,fe80::1%3,200,GET\r\n\
2023-01-11T16:00:03Z,d,/ews/,,Negotiate,true,,Smtp~HealthMailbox0123456789abcdef0123456789abcdef@contoso.com,x,127.0.0.1,200,GET\r\n",
        );
        assert_eq!(reqs[0].user, "bob");
        assert_eq!((reqs[1].user.as_str(), reqs[1].username.as_str()), ("carol", "carol@contoso.com"));
        assert_eq!((reqs[2].user.as_str(), reqs[2].auth), ("", AuthType::Fba));
        assert_eq!(reqs[2].peer_ip, Some("fe80::1".parse().unwrap()));
        assert_eq!(reqs[3].traffic, Traffic::Probe, "a health mailbox in the anchor is a probe");
    }

    /// ProxyLogon in HttpProxy logs: the published line of Neo23x0/signature-base
    /// pull request 125 (redacted there; its values here in this header's
    /// columns) and HelseCERT's anchors, against anchors people's requests carry.
    #[test]
    fn an_anchor_that_names_a_backend_and_a_path_is_proxylogon() {
        let reqs = read(
            "2021-03-07T15:04:04.546Z,1a51fb75-2f6f-4a40-8129-ff80098494a0,/owa/auth/x.js,,FBA,false,,\
ServerInfo~localhost/ecp/default.flt?,Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/537.36 (KHTML  like Gecko) Chrome/69.0.3497.81 Safari/537.36,203.0.113.9,500,GET\r\n\
2021-03-05T03:06:27Z,b,/ecp/y.js,,,false,,ServerInfo~a]@EX01.contoso.com:444/autodiscover/autodiscover.xml?#,ExchangeServicesClient/0.0.0.0,203.0.113.9,200,POST\r\n\
2021-03-05T03:06:28Z,c,/ecp/y.js,,,false,,SERVERINFO~a]@EX01.contoso.com:444\\mapi\\emsmdb?#,python-requests/2.25.1,203.0.113.9,200,POST\r\n\
2021-03-05T03:06:29Z,d,/owa/,,FBA,true,CONTOSO\\ann,ServerInfo~EX01.contoso.com,Mozilla/5.0,203.0.113.10,200,GET\r\n\
2021-03-05T03:06:30Z,e,/mapi/emsmdb/,?MailboxId=x@contoso.com,Negotiate,true,CONTOSO\\bob,MailboxGuidWithDomain~x@contoso.com,Microsoft Office/16.0,10.0.0.2,200,POST\r\n",
        );
        for r in &reqs[..3] {
            assert!(r.backend_named, "{}", r.stem);
            assert_eq!((r.traffic, r.attack.map(|a| a.rule)), (Traffic::Attack, Some("proxylogon")), "{}", r.stem);
            assert_eq!(r.client, crate::catalog::ClientId::UNKNOWN, "an attack names no client");
        }
        assert_eq!((reqs[0].protocol, reqs[0].status), (Protocol::Owa, 500));
        for r in &reqs[3..] {
            assert!(!r.backend_named && r.attack.is_none(), "{} {}", r.stem, r.username);
            assert_eq!(r.traffic, Traffic::Person);
        }
        // The next line read starts clean.
        let mut req = reqs[0].clone();
        req.clear();
        assert!(!req.backend_named);
    }

    /// Microsoft Q&A 108027: Exchange Online's `Test-OrganizationRelationship`
    /// on the on-premises Autodiscover WS-Security endpoint, not signed in,
    /// its anchor (edited as published) the mailbox the test asks about. As
    /// its IIS line, anonymous: the anchor is no caller. Elsewhere the
    /// anchor still names the user.
    #[test]
    fn a_ws_security_anchor_names_the_mailbox_asked_about_not_the_caller() {
        let reqs = read(
            "2020-10-01T09:55:24.651Z,69c0c712-85ed-458b-a815-44bd17ca06fe,/autodiscover/autodiscover.svc/WSSecurity,,,\
false,,Smtp~tester3@Company portal   .ru,TestOrganizationRelationship/1.1,52.97.244.45,401,POST\r\n\
2020-10-01T09:55:25Z,b,/EWS/Exchange.asmx/wssecurity/,,,false,,Smtp~ann@contoso.com,x,52.97.244.45,200,POST\r\n\
2020-10-01T09:55:26Z,c,/autodiscover/autodiscover.svc,,,false,,Smtp~ann@contoso.com,x,52.97.244.45,401,POST\r\n",
        );
        let it = Interpreter::builtin();
        for r in &reqs[..2] {
            assert_eq!((r.user.as_str(), r.username.as_str()), ("", ""), "{}", r.stem);
        }
        assert_eq!(it.catalog().get(reqs[0].client).id, "exchange-online-org-test");
        assert_eq!(it.networks().name(reqs[0].network), "microsoft365");
        assert_eq!(reqs[0].protocol, Protocol::Autodiscover);
        assert_eq!(reqs[2].user, "ann", "not a WS-Security endpoint");
    }

    #[test]
    fn addresses_as_logged() {
        for (text, want) in [
            ("10.0.0.1", "10.0.0.1"),
            ("52.96.16.37:49660", "52.96.16.37"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("fe80::1234:5678:123a:245e%3", "fe80::1234:5678:123a:245e"),
        ] {
            assert_eq!(parse_address(text.as_bytes()), Some(want.parse().unwrap()), "{text}");
        }
        // As in the public Mapi sample, sanitised into six hex digits: not an address.
        assert_eq!(parse_address(b"fe80::1234:5678:123abc:245e%3"), None);
        assert_eq!(parse_address(b"garbage"), None);
    }
}
