//! From a live HTTP request to the raw fields of `exchange::Request`, as IIS
//! would log them: the stem as IIS routes it (`exchange::url`), or why IIS
//! would refuse it; raw query; Basic or NTLM user (never the password); the
//! authentication scheme (the header's first word only); X-Forwarded-For
//! only from trusted proxies.

use std::net::IpAddr;

use crate::screen::Refused;
use exchange::text::NameMatch;
use exchange::url::{decode_path, Refusal};
use hyper::header::{HeaderMap, HeaderName, AUTHORIZATION, USER_AGENT};
use hyper::{Method, Uri};
use ipnet::IpNet;

pub use crate::credentials::{
    auth_user, bearer_user, is_connection_auth, negotiated, ntlm_ambiguous, ntlm_leg, ntlm_user, schemes, AuthUser,
    Unreadable,
};

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const MS_ASPROTOCOLVERSION: HeaderName = HeaderName::from_static("ms-asprotocolversion");

/// Where the connection came from and arrived at.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub peer: IpAddr,
    pub local: IpAddr,
    pub port: u16,
    pub trusted_peer: bool,
}

/// What [`fill`] found besides the fields.
#[derive(Debug)]
pub struct Filled {
    /// What the request's own Authorization header said, when it had one.
    pub auth: Option<AuthUser>,
    /// Why IIS would refuse the path; `r.stem` then holds its best reading,
    /// for the logs only.
    pub refusal: Option<Refusal>,
    /// The X-Forwarded-For chain from a trusted proxy names an internal
    /// client with a public address left of it (see [`vouched_client`]).
    pub forwarded_for_ambiguous: bool,
    /// `auth` came from an `access_token` in the query (see [`query_token`]).
    pub query_token: bool,
    /// Why the query's `access_token` cannot be read one way: given twice,
    /// named with a look-alike letter, or beside an Authorization header
    /// with other credentials.
    pub token_refused: Option<crate::screen::Refused>,
}

/// Fill the raw fields of `r` (cleared first). `conn_user` is the user an
/// earlier NTLM handshake on this connection authenticated, if any;
/// `trusted`, the proxies whose X-Forwarded-For is read (`--trusted-proxy`).
#[allow(clippy::too_many_arguments)]
pub fn fill(
    r: &mut exchange::Request,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    conn: &ConnInfo,
    trusted: &[IpNet],
    now: i64,
    conn_user: &str,
) -> Filled {
    r.clear();
    r.source = exchange::Source::Gateway;
    r.time = now;
    r.method.push_str(method.as_str());
    let refusal = decode_path(uri.path(), &mut r.stem).err();
    if let Some(q) = uri.query() {
        r.query.push_str(q);
    }
    if let Some(ua) = headers.get(USER_AGENT) {
        r.user_agent.push_str(&String::from_utf8_lossy(ua.as_bytes()));
    }
    let authorization = headers.get(AUTHORIZATION);
    if let Some(v) = authorization {
        (r.auth, r.auth_mechanism) = schemes(v.as_bytes());
    }
    let mut auth = authorization.map(|v| auth_user(v.as_bytes()));
    let (mut query_token_read, mut token_refused) = (false, None);
    match uri.query().map(query_token) {
        None | Some(Ok(None)) => {}
        Some(Err(refused)) => token_refused = Some(refused),
        Some(Ok(Some(token))) => match authorization {
            // Only a bearer header carrying the same token says the same
            // (Office for the web sends it both ways).
            Some(v) => {
                let header = v.as_bytes().trim_ascii();
                let same = header.len() > 7
                    && header[..7].eq_ignore_ascii_case(b"Bearer ")
                    && header[7..].trim_ascii() == token.as_bytes();
                if !same {
                    token_refused = Some(crate::screen::TOKEN_BESIDE_CREDENTIALS);
                }
            }
            // Anywhere but WOPI's pages the token is nothing to Exchange,
            // which serves the request as anonymous: judged as the user an
            // unsigned token names, it would pass a rule excepting that user.
            None if !reads_query_token(&r.stem) => token_refused = Some(crate::screen::TOKEN_NOT_READ),
            // No header: the scheme stays unknown (IIS signs no one in; the
            // front end lets WOPI's requests through anonymously, for the
            // back end to check the token) and the mechanism is a bearer
            // token's, so that a rule on either (`auth = ["unknown"]`, an
            // authentication policy blocking modern authentication) sees it.
            None => {
                r.auth_mechanism = exchange::AuthType::Bearer;
                auth = Some(bearer_user(token.as_bytes()).map_or(AuthUser::Unknown, AuthUser::Named));
                query_token_read = true;
            }
        },
    }
    match &auth {
        Some(AuthUser::Named(u)) => r.username.push_str(u),
        Some(AuthUser::Unknown | AuthUser::Unreadable | AuthUser::Undecoded | AuthUser::HandshakeLeg) => {}
        None => r.username.push_str(conn_user),
    }
    r.peer_ip = Some(conn.peer);
    r.server_ip = Some(conn.local);
    r.server_port = conn.port;
    let forwarded_for_ambiguous = conn.trusted_peer && vouched_client(headers, trusted, &mut r.forwarded_for);
    Filled { auth, refusal, forwarded_for_ambiguous, query_token: query_token_read, token_refused }
}

/// The `access_token` a query carries, decoded, if any: a WOPI client
/// (Office Online Server fetching an attachment for Outlook on the web)
/// sends its token so (`/owa/wopi/files/<id>?access_token=<token>`, MS-WOPI
/// 3.3.5), and Exchange, the WOPI host, signs the request in as the user it
/// names, as for `Authorization: Bearer`. Names are read as ASP.NET's
/// `Request.QueryString` reads them: decoded, in any ASCII case. `Err` when
/// it comes twice with different values, or named with a look-alike letter
/// ([`crate::screen::LOOKALIKE_NAME`]).
pub(crate) fn query_token(query: &str) -> Result<Option<std::borrow::Cow<'_, str>>, Refused> {
    const NAME: &str = "access_token";
    let mut found: Option<std::borrow::Cow<'_, str>> = None;
    let mut decoded = String::new();
    // Any spelling of the name has `_` or an escape, which most queries
    // lack (one pass: `memchr` is a byte loop on a short query).
    if !query.bytes().any(|b| b == b'_' || b == b'%') {
        return Ok(None);
    }
    // One pass over the bytes: `str::split` and `split_once` cost several
    // times as much on a short query (every ActiveSync request has one).
    let b = query.as_bytes();
    let mut i = 0;
    while i <= b.len() {
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b'&' {
            i += 1;
        }
        let name_end = i;
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i] != b'&' {
                i += 1;
            }
        }
        let (param_end, next) = (i, i + 1);
        i = next;
        // Escapes only shorten a name: shorter ones (`Cmd`, `DeviceType`),
        // and a parameter without `=` (no name), are not it.
        if name_end - start < NAME.len() || name_end == param_end {
            continue;
        }
        let (name, value) = (&query[start..name_end], &query[name_end + 1..param_end]);
        let named = if name.bytes().any(|b| b == b'%' || b == b'+') {
            decoded.clear();
            exchange::url::decode_query_value_into(name, &mut decoded);
            exchange::text::name_match(&decoded, NAME)
        } else {
            exchange::text::name_match(name, NAME)
        };
        match named {
            NameMatch::Exact => {}
            NameMatch::LookAlike => return Err(crate::screen::LOOKALIKE_NAME),
            NameMatch::No => continue,
        }
        let value = if value.bytes().any(|b| b == b'%' || b == b'+') {
            let mut v = String::new();
            exchange::url::decode_query_value_into(value, &mut v);
            std::borrow::Cow::Owned(v)
        } else {
            std::borrow::Cow::Borrowed(value)
        };
        match &found {
            Some(first) if *first != value => return Err(crate::screen::TOKEN_TWICE),
            _ => found = Some(value),
        }
    }
    Ok(found)
}

/// Whether Exchange reads a query's `access_token` on the page `stem` (the
/// decoded path): a WOPI request as Exchange's `WopiRequestPathHandler`
/// matches it, in any case, `/owa/<smtp>/wopi/files/@/owaatt` at the front
/// end and `/owa/wopi/files/@/owaatt` at the back end, either with
/// `/contents` after it (Office Online Server's CheckFileInfo and GetFile).
/// No other page reads it: in decompiled Exchange 2016/2019, OWA's
/// `UrlUtilities.IsWacRequest` names only these two, and HttpProxy's
/// `AllowAnonymousRequest` lets them through for the back end to check the
/// token. Only a query with a token pays for this test.
pub(crate) fn reads_query_token(stem: &str) -> bool {
    use exchange::text::{ends_with_ci, starts_with_ci};
    const FILE: &str = "/wopi/files/@/owaatt";
    const CONTENTS: &str = "/contents";
    if !starts_with_ci(stem, "/owa/") {
        return false;
    }
    let page = if ends_with_ci(stem, CONTENTS) { &stem[..stem.len() - CONTENTS.len()] } else { stem };
    if !ends_with_ci(page, FILE) {
        return false;
    }
    // What stands between: nothing, or `/<smtp>` (`.+?@.+?`: a character
    // before the `@` and one after it).
    let between = &page["/owa".len()..page.len() - FILE.len()];
    between.is_empty()
        || between
            .strip_prefix('/')
            .is_some_and(|smtp| smtp.char_indices().any(|(i, c)| c == '@' && i > 0 && i + 1 < smtp.len()))
}

/// X-Forwarded-For as Exchange gets it, into `r.forwarded_header` (see
/// `headers::upstream_request`, which sends this): from a trusted peer, its
/// lines and the peer appended; from any other, the peer alone (`peer`, its
/// address as text). An IIS filtering or URL Rewrite rule on the header
/// scans all of it, as IIS would there: the part left of what a trusted
/// proxy vouched for is only the client's say-so, but it reaches Exchange.
pub fn forwarded_header(r: &mut exchange::Request, headers: &HeaderMap, conn: &ConnInfo, peer: &str) {
    r.forwarded_header.clear();
    if conn.trusted_peer {
        forwarded_lines(headers, &mut r.forwarded_header);
    }
    r.forwarded_header.push_str(peer);
}

/// A trusted peer's X-Forwarded-For lines, each followed by `, `, into
/// `out`: what Exchange gets before the peer's own address. Lines that are
/// not visible ASCII are left out.
pub(crate) fn forwarded_lines(headers: &HeaderMap, out: &mut String) {
    for line in headers.get_all(X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()) {
        out.push_str(line);
        out.push_str(", ");
    }
}

/// The X-Forwarded-For element the trusted proxies vouch for, into `out`:
/// from the right (what the peer appended), past the elements that are
/// trusted proxies themselves, the first other one. What stands left of it
/// only the client says: `X-Forwarded-For: 52.96.1.1` from a client on
/// 10.30.1.1 reaches the gateway as `52.96.1.1, 10.30.1.1`, and the
/// right-most public address (the rule for a log's line, which knows no
/// proxies) would be the client's claim. Nothing is written when every
/// element is a trusted proxy: the connection's address is the client's.
/// An element that is no address stops the walk there too (a proxy's
/// `unknown`): what is left of it is not vouched for.
///
/// True when the client found is internal and a public address stands left
/// of it: either a proxy not named trusted (a DMZ proxy at 172.16.0.9)
/// forwarded an outside client, or an inside client named an outside
/// address. Only the list can tell them apart; the request is refused
/// rather than judged as the balancer's (which would pass every outside
/// client through an unlisted proxy as an inside one).
fn vouched_client(headers: &HeaderMap, trusted: &[IpNet], out: &mut String) -> bool {
    let lines = headers.get_all(X_FORWARDED_FOR);
    let parse = |e: &[u8]| exchange::classify::parse_forwarded(&String::from_utf8_lossy(e));
    let mut elements = lines
        .iter()
        .rev()
        .flat_map(|v| v.as_bytes().rsplit(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty());
    while let Some(element) = elements.next() {
        let ip = parse(element);
        if ip.is_some_and(|ip| exchange::networks::any_contains(trusted, ip)) {
            continue;
        }
        out.push_str(&String::from_utf8_lossy(element));
        return ip.is_some_and(exchange::networks::is_private_addr)
            && elements.any(|e| parse(e).is_some_and(|ip| !exchange::networks::is_private_addr(ip)));
    }
    false
}

/// Fields the interpreter clears and derives from the query; called after it.
/// A client's `&Log=` is dropped: Exchange writes that to its own log, so
/// in a request it is the client's say-so (`&Log=DevModel:Pixel` would name
/// a blocked phone another model to a DeviceModel rule).
///
/// So is ActiveSync's `User=` as the user when credentials came with the
/// request: Exchange serves the one they name. A request whose credentials
/// name nobody readable (Kerberos, an opaque token) is judged as nobody's,
/// or `User=boss` would pass a rule that excepts boss. Without credentials,
/// or on the first leg of an NTLM handshake, `User=` still names the user:
/// Exchange answers such a request with a challenge, nothing more, and a
/// rule that excepts boss must not refuse boss's way to sign in.
///
/// Credentials that name nobody readable still sign someone in: the request
/// is not anonymous ([`exchange::Request::unnamed_credentials`]), so the
/// organisation's mailbox settings judge it, as Exchange will once it knows
/// the mailbox. A request without credentials, or the first leg of an NTLM
/// handshake, is anonymous: those settings let it reach IIS's challenge.
pub fn after_interpret(r: &mut exchange::Request, headers: &HeaderMap, auth: Option<&AuthUser>) {
    r.activesync.log.keep_only(exchange::LogWanted::NONE);
    if r.username.is_empty() && matches!(auth, Some(AuthUser::Unknown | AuthUser::Unreadable | AuthUser::Undecoded)) {
        r.user.clear();
        r.unnamed_credentials = true;
    }
    if r.protocol == exchange::Protocol::ActiveSync && r.activesync.protocol_version.is_empty() {
        if let Some(v) = headers.get(MS_ASPROTOCOLVERSION).and_then(|v| v.to_str().ok()) {
            r.activesync.protocol_version.push_str(v.trim());
        }
    }
}

/// Fuzzing entry point: the parsers of what a client sends (Authorization
/// values, NTLM messages, paths). Must never panic; paths are checked by
/// [`exchange::url::fuzz`].
pub fn fuzz(data: &[u8]) {
    crate::credentials::fuzz(data);
    let _ = query_token(&String::from_utf8_lossy(data));
    crate::forms::fuzz(data);
    exchange::url::fuzz(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::tokens::ntlm_type3;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    #[test]
    fn fuzz_entry_point_holds_on_known_tricks() {
        for seed in
            [&b"/owa/../EWS/Exchange.asmx"[..], b"\\owa\\%2e%2e\\ecp//x/.", b"%2F..%2F..", b"", b"NTLM TlRMTVNTUAAD"]
        {
            fuzz(seed);
        }
        fuzz(&ntlm_type3("CONTOSO", "alice"));
    }

    #[test]
    fn a_query_token_is_read_as_asp_net_reads_its_name() {
        let token = |q: &str| query_token(q).map(|t| t.map(|t| t.into_owned()));
        assert_eq!(token("owaatt=x&access_token=eyJ.e30.x"), Ok(Some("eyJ.e30.x".into())));
        for q in ["ACCESS_TOKEN=t", "Access%5Ftoken=t", "%61ccess%5f%74oken=t", "access%u005Ftoken=t&x=1"] {
            assert_eq!(token(q), Ok(Some("t".into())), "{q}");
        }
        // A look-alike letter: no name to Exchange on Windows, the name
        // through ICU; refused rather than read either way.
        for q in ["acce%C5%BFs_token=t", "acces%u017F_token=t", "access_token=t&acce\u{17f}s_token=t"] {
            assert_eq!(token(q), Err(crate::screen::LOOKALIKE_NAME), "{q}");
        }
        assert_eq!(token("access_token=a%2Eb"), Ok(Some("a.b".into())));
        assert_eq!(token("access_token=t&access_token=t"), Ok(Some("t".into())));
        assert_eq!(token("access_token=t&access_token=u"), Err(crate::screen::TOKEN_TWICE));
        for q in ["", "token=t", "my_access_token=t", "access_token_ttl=1", "access+token=t", "x=access_token"] {
            assert_eq!(token(q), Ok(None), "{q}");
        }
    }

    #[test]
    fn only_wopi_s_pages_read_a_query_token() {
        for stem in [
            "/owa/wopi/files/@/owaatt",
            "/owa/wopi/files/@/owaatt/contents",
            "/OWA/WOPI/Files/@/OwaAtt/CONTENTS",
            "/owa/jdoe@contoso.com/wopi/files/@/owaatt",
            "/owa/a@b/wopi/files/@/owaatt/contents",
        ] {
            assert!(reads_query_token(stem), "{stem}");
        }
        for stem in [
            "/ecp/wopi/files/@/owaatt",
            "/owa/wopi/files/@/owaatt/",
            "/owa/wopi/files/@/owaatt/contents/contents",
            "/owa/wopi/files/x/owaatt",
            "/owa/wopi",
            "/owa/@b/wopi/files/@/owaatt",
            "/owa/a@/wopi/files/@/owaatt",
            "/owa/jdoe/wopi/files/@/owaatt",
            "/owa//wopi/files/@/owaatt",
            "/owa/service.svc",
            "/owawopi/files/@/owaatt",
            "/EWS/Exchange.asmx",
            "",
        ] {
            assert!(!reads_query_token(stem), "{stem}");
        }
    }

    #[test]
    fn fill_keeps_the_scheme_and_the_user_never_the_password() {
        let conn = ConnInfo { peer: [10, 0, 0, 9].into(), local: [10, 0, 0, 2].into(), port: 443, trusted_peer: false };
        let mut headers = HeaderMap::new();
        let basic = format!("Basic {}", STANDARD.encode("CONTOSO\\jdoe:s3cret"));
        headers.insert(AUTHORIZATION, basic.parse().unwrap());
        let uri: Uri = "/Microsoft-Server-ActiveSync?Cmd=Sync".parse().unwrap();
        let mut r = exchange::Request::default();
        fill(&mut r, &Method::POST, &uri, &headers, &conn, &[], 0, "");
        assert_eq!((r.auth, r.source), (exchange::AuthType::Basic, exchange::Source::Gateway));
        assert_eq!(r.username, "CONTOSO\\jdoe");
        assert!(!format!("{r:?}").contains("s3cret"), "the password is nowhere in the request");
        headers.insert(AUTHORIZATION, "Bearer eyJ0eXAiOiJKV1QifQ.e30.x".parse().unwrap());
        fill(&mut r, &Method::POST, &uri, &headers, &conn, &[], 0, "");
        assert_eq!((r.auth, r.username.as_str()), (exchange::AuthType::Bearer, ""));
        assert!(!format!("{r:?}").contains("eyJ0eXAi"), "nor the token");
        fill(&mut r, &Method::POST, &uri, &HeaderMap::new(), &conn, &[], 0, "");
        assert_eq!(r.auth, exchange::AuthType::Unknown);
    }

    #[test]
    fn only_the_client_the_trusted_proxies_vouch_for_is_read() {
        let trusted: Vec<IpNet> = ["127.0.0.1/32", "10.0.0.0/24", "2001:db8::/64"].map(|n| n.parse().unwrap()).to_vec();
        let vouched = |lines: &[&str]| {
            let mut h = HeaderMap::new();
            for l in lines {
                h.append(X_FORWARDED_FOR, l.parse().unwrap());
            }
            let mut out = String::new();
            let ambiguous = vouched_client(&h, &trusted, &mut out);
            (out, ambiguous)
        };
        let read = |s: &str| (s.to_string(), false);
        // What the client said before the address a trusted proxy appended
        // is not read; an inside client with an outside address left of it
        // is ambiguous (an unlisted proxy, or a claim).
        assert_eq!(vouched(&["198.51.100.7, 10.30.1.1"]), ("10.30.1.1".into(), true));
        assert_eq!(
            vouched(&["198.51.100.7", "10.30.1.1"]),
            ("10.30.1.1".into(), true),
            "the last line is the last hop's"
        );
        assert_eq!(vouched(&["10.20.0.1, 10.30.1.1"]), read("10.30.1.1"));
        assert_eq!(vouched(&["10.30.1.1"]), read("10.30.1.1"));
        assert_eq!(vouched(&["198.51.100.7, 203.0.113.5, 10.0.0.5"]), read("203.0.113.5"));
        assert_eq!(vouched(&["1.2.3.4, 203.0.113.5 , ::ffff:10.0.0.5, [2001:db8::1]:443,"]), read("203.0.113.5"));
        // A trusted proxy's `unknown` stops the walk; all trusted: nothing.
        assert_eq!(vouched(&["198.51.100.7, unknown, 10.0.0.5"]), read("unknown"));
        assert_eq!(vouched(&["10.0.0.9, 127.0.0.1"]), read(""));
        assert_eq!(vouched(&[]), read(""));
    }
}
