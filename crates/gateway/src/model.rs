//! From a live HTTP request to the raw fields of `exchange::Request`, as IIS
//! would log them: the stem as IIS routes it (`exchange::url`), or why IIS
//! would refuse it; raw query; Basic or NTLM user (never the password); the
//! authentication scheme (the header's first word only); X-Forwarded-For
//! only from trusted proxies.

use std::net::IpAddr;

use crate::screen::Refused;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use exchange::text::NameMatch;
use exchange::url::{decode_path, Refusal};
use hyper::header::{HeaderMap, HeaderName, AUTHORIZATION, USER_AGENT};
use hyper::{Method, Uri};
use ipnet::IpNet;

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
                let header = trim(v.as_bytes());
                let same = header.len() > 7
                    && header[..7].eq_ignore_ascii_case(b"Bearer ")
                    && trim(&header[7..]) == token.as_bytes();
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
    let mut elements =
        lines.iter().rev().flat_map(|v| v.as_bytes().rsplit(|&b| b == b',')).map(trim).filter(|e| !e.is_empty());
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

/// What an Authorization header says about the user.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthUser {
    /// `DOMAIN\user` or `user@domain`, as the client gave it.
    Named(String),
    /// A scheme that names nobody readable (Kerberos, an opaque bearer token).
    Unknown,
    /// The first message of an NTLM handshake (NEGOTIATE, MS-NLMP 2.2.1.1):
    /// no user yet, and Exchange answers it with a challenge.
    HandshakeLeg,
    /// A name in bytes Windows reads in a code page the gateway does not
    /// know: Basic credentials that are not UTF-8 (IIS decodes them in the
    /// server's ANSI code page), an NTLM name in the OEM code page beyond
    /// ASCII, or UTF-16 that does not decode.
    Unreadable,
    /// An NTLM or Negotiate token that is not plain padded base64 (`TlRM...`
    /// with trailing bytes, a space inside, no padding, a second scheme
    /// after a comma): named nobody here, while Windows' decoder may be as
    /// lenient as .NET's and read a user from it. Or Digest credentials
    /// whose user IIS may read otherwise (see [`digest_user`]).
    Undecoded,
}

/// The user an Authorization header names. Basic: the part before the first
/// `:` (the password is wiped from the decoded buffer). NTLM, or NTLM inside
/// Negotiate: the AUTHENTICATE (type 3) message's domain and user. Bearer:
/// the user a JWT's claims name (see [`bearer_user`]). Digest: its
/// `username` (see [`digest_user`]).
pub fn auth_user(value: &[u8]) -> AuthUser {
    let value = trim(value);
    // Any whitespace ends the scheme, as `AuthType::of_authorization` reads it.
    let Some(sp) = value.iter().position(u8::is_ascii_whitespace) else {
        return AuthUser::Unknown;
    };
    let (scheme, rest) = (&value[..sp], trim(&value[sp + 1..]));
    if scheme.eq_ignore_ascii_case(b"Bearer") {
        return bearer_user(rest).map_or(AuthUser::Unknown, AuthUser::Named);
    }
    if scheme.eq_ignore_ascii_case(b"Digest") {
        return match digest_user(rest) {
            Ok(Some(user)) => AuthUser::Named(user),
            Ok(None) => AuthUser::Unknown,
            Err(()) => AuthUser::Undecoded,
        };
    }
    let Ok(mut bytes) = STANDARD.decode(rest) else {
        return if is_connection_auth(scheme) { AuthUser::Undecoded } else { AuthUser::Unknown };
    };
    let user = if scheme.eq_ignore_ascii_case(b"Basic") {
        let end = bytes.iter().position(|&b| b == b':').unwrap_or(bytes.len());
        match std::str::from_utf8(&bytes[..end]) {
            Ok(user) => AuthUser::Named(user.to_owned()),
            Err(_) => AuthUser::Unreadable,
        }
    } else if scheme.eq_ignore_ascii_case(b"NTLM") || scheme.eq_ignore_ascii_case(b"Negotiate") {
        match ntlm_user(&bytes) {
            Some(Ok(user)) => AuthUser::Named(user),
            Some(Err(Unreadable)) => AuthUser::Unreadable,
            None if is_ntlm_negotiate(&bytes) => AuthUser::HandshakeLeg,
            None => AuthUser::Unknown,
        }
    } else {
        AuthUser::Unknown
    };
    bytes.iter_mut().for_each(|b| *b = 0);
    match user {
        AuthUser::Named(u) if u.is_empty() => AuthUser::Unknown,
        u => u,
    }
}

/// The user a Digest header names (RFC 7616 §3.4): its `username`
/// parameter, a quoted string or a token, in UTF-8. IIS signs that user in
/// where Digest is on (Exchange's `-DigestAuthentication`), and logs it.
/// `Err` for what IIS may read otherwise: a quoted name with an escape other
/// than `\\` (RFC 7616 reads `\b` as `b`, a raw reading keeps the
/// backslash; `\\` names the same user either way), a `username*` (RFC 8187
/// encoding) or `userhash=true` (a hash for a name), a name given twice, or
/// a quote left open.
fn digest_user(params: &[u8]) -> Result<Option<String>, ()> {
    let mut rest = params;
    let mut user: Option<String> = None;
    loop {
        rest = rest.trim_ascii_start();
        while let Some(r) = rest.strip_prefix(b",") {
            rest = r.trim_ascii_start();
        }
        if rest.is_empty() {
            return Ok(user.filter(|u| !u.is_empty()));
        }
        let name_end =
            rest.iter().position(|&b| b == b'=' || b == b',' || b.is_ascii_whitespace()).unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = rest[name_end..].trim_ascii_start();
        // Every parameter has a value (RFC 7616 §3.4): anything else (a
        // second scheme after a comma, say) is not Digest as IIS may read it.
        let Some(r) = rest.strip_prefix(b"=") else { return Err(()) };
        rest = r.trim_ascii_start();
        let value: Vec<u8> = if let Some(r) = rest.strip_prefix(b"\"") {
            let close = r.iter().position(|&b| b == b'"').ok_or(())?;
            let quoted = &r[..close];
            rest = &r[close + 1..];
            let mut out = Vec::with_capacity(quoted.len());
            let mut i = 0;
            while i < quoted.len() {
                if quoted[i] == b'\\' {
                    // Only `\\` reads the same escaped and raw (as far as the
                    // user is concerned: `CONTOSO\\bob` is bob either way).
                    if quoted.get(i + 1) != Some(&b'\\') {
                        return Err(());
                    }
                    out.push(b'\\');
                    i += 2;
                } else {
                    out.push(quoted[i]);
                    i += 1;
                }
            }
            out
        } else {
            let end = rest.iter().position(|&b| b == b',' || b.is_ascii_whitespace()).unwrap_or(rest.len());
            let token = rest[..end].to_vec();
            rest = &rest[end..];
            token
        };
        // A value ends the parameter: a comma or the end must follow (a
        // quote left open closes at the next parameter's).
        rest = rest.trim_ascii_start();
        if !(rest.is_empty() || rest.starts_with(b",")) {
            return Err(());
        }
        if name.eq_ignore_ascii_case(b"username*") {
            return Err(());
        }
        if name.eq_ignore_ascii_case(b"userhash") && value.eq_ignore_ascii_case(b"true") {
            return Err(());
        }
        if name.eq_ignore_ascii_case(b"username") {
            let value = String::from_utf8(value).map_err(|_| ())?;
            if user.replace(value).is_some() {
                return Err(());
            }
        }
    }
}

/// True for an NTLM or Negotiate header (connection-bound authentication).
pub fn is_connection_auth(value: &[u8]) -> bool {
    let v = trim(value);
    // Any whitespace ends the scheme, as [`auth_user`] reads it: `NTLM\t...`
    // names its user there, so it must be a handshake here too.
    let scheme = v.split(u8::is_ascii_whitespace).next().unwrap_or(b"");
    scheme.eq_ignore_ascii_case(b"NTLM") || scheme.eq_ignore_ascii_case(b"Negotiate")
}

const NTLMSSP: &[u8] = b"NTLMSSP\0";

/// True for an NTLM or Negotiate header whose token holds the NTLM
/// signature twice: [`ntlm_user`] reads the first, found by searching, and
/// Windows the one SPNEGO's structure points at, which may be the other (a
/// first one hidden in an OID, say, naming another user).
pub fn ntlm_ambiguous(value: &[u8]) -> bool {
    let value = trim(value);
    let Some(sp) = value.iter().position(u8::is_ascii_whitespace) else { return false };
    if !is_connection_auth(&value[..sp]) {
        return false;
    }
    let Ok(bytes) = STANDARD.decode(trim(&value[sp + 1..])) else { return false };
    let mut found = bytes.windows(NTLMSSP.len()).enumerate().filter(|(_, w)| *w == NTLMSSP).map(|(i, _)| i);
    let Some(first) = found.next() else { return false };
    // One signature, and where SPNEGO's structure points: else it may be a
    // decoy (in an OID of a Kerberos token, say) naming another user than
    // the one Windows signs in.
    found.next().is_some() || ntlm_message(&bytes).is_none_or(|m| !std::ptr::eq(m.as_ptr(), bytes[first..].as_ptr()))
}

/// The NTLM message a token carries where Windows reads it: the token
/// itself, or SPNEGO's mechToken or responseToken ([`spnego_token`]).
/// `None` for anything else: a Kerberos ticket, or a signature elsewhere.
fn ntlm_message(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.starts_with(NTLMSSP) {
        return Some(bytes);
    }
    spnego_token(bytes).filter(|t| t.starts_with(NTLMSSP))
}

/// The token SPNEGO carries for its mechanism: NegTokenInit's mechToken
/// (RFC 4178 §4.2.1, inside the GSS-API framing) or NegTokenResp's
/// responseToken (§4.2.2). `None` when `bytes` is no SPNEGO token or has none.
fn spnego_token(bytes: &[u8]) -> Option<&[u8]> {
    const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
    let (tag, body, _) = der(bytes)?;
    let choice = match tag {
        0x60 => {
            let (oid_tag, oid, rest) = der(body)?;
            if oid_tag != 0x06 || oid != SPNEGO_OID {
                return None;
            }
            let (init_tag, init, _) = der(rest)?;
            (init_tag == 0xa0).then_some(init)?
        }
        0xa1 => body,
        _ => return None,
    };
    let (seq_tag, mut fields, _) = der(choice)?;
    if seq_tag != 0x30 {
        return None;
    }
    while !fields.is_empty() {
        let (t, field, rest) = der(fields)?;
        if t == 0xa2 {
            let (t, token, _) = der(field)?;
            return (t == 0x04).then_some(token);
        }
        fields = rest;
    }
    None
}

/// Kerberos's mechanism OIDs (1.2.840.113554.1.2.2, RFC 4121, and the
/// 1.2.840.48018.1.2.2 older Windows send), as DER contents.
const KERBEROS_OIDS: [&[u8]; 2] =
    [&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02], &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02]];

/// A Kerberos token in its GSS-API framing (RFC 2743 §3.1): `0x60`, then a
/// Kerberos mechanism OID.
fn is_kerberos(token: &[u8]) -> bool {
    der(token).is_some_and(|(tag, body, _)| {
        tag == 0x60 && der(body).is_some_and(|(t, oid, _)| t == 0x06 && KERBEROS_OIDS.contains(&oid))
    })
}

/// How a `Negotiate` header signs its request in, as Windows' Negotiate
/// package does: NTLM when its token is an NTLM message (bare, as Windows
/// sends it when Kerberos is out of reach, or in SPNEGO), Kerberos when it
/// is a Kerberos token (bare or SPNEGO's). `Unknown` for any other header
/// or token: it matches only an `auth` condition naming `negotiate`. So a
/// rule on `ntlm` holds for NTLM however it is wrapped, and one on
/// `kerberos` can match at all: no header names that scheme.
pub fn negotiated(value: &[u8]) -> exchange::AuthType {
    let value = trim(value);
    let Some(sp) = value.iter().position(u8::is_ascii_whitespace) else { return exchange::AuthType::Unknown };
    if !value[..sp].eq_ignore_ascii_case(b"Negotiate") {
        return exchange::AuthType::Unknown;
    }
    let Ok(bytes) = STANDARD.decode(trim(&value[sp + 1..])) else { return exchange::AuthType::Unknown };
    if ntlm_message(&bytes).is_some() {
        exchange::AuthType::Ntlm
    } else if is_kerberos(&bytes) || spnego_token(&bytes).is_some_and(is_kerberos) {
        exchange::AuthType::Kerberos
    } else {
        exchange::AuthType::Unknown
    }
}

/// The leg of an NTLM handshake an NTLM or Negotiate header carries: its
/// message type (1 NEGOTIATE, 3 AUTHENTICATE) and whether its
/// NegotiateFlags say Unicode (`NTLMSSP_NEGOTIATE_UNICODE`, MS-NLMP
/// 2.2.2.5). `None` for any other header or token. An AUTHENTICATE
/// message's names are in the character set the handshake negotiated
/// (MS-NLMP 2.2.1.3: Unicode when the NEGOTIATE offered it), which its own
/// flag need not repeat: `forward::decide` refuses one that does not.
pub fn ntlm_leg(value: &[u8]) -> Option<(u32, bool)> {
    let value = trim(value);
    let sp = value.iter().position(u8::is_ascii_whitespace)?;
    if !is_connection_auth(&value[..sp]) {
        return None;
    }
    let bytes = STANDARD.decode(trim(&value[sp + 1..])).ok()?;
    let m = ntlm_message(&bytes)?;
    let u32_at = |o: usize| m.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let kind = u32_at(8)?;
    let flags = match kind {
        1 => u32_at(12)?,
        3 => u32_at(60)?,
        _ => return None,
    };
    Some((kind, flags & 1 != 0))
}

/// The scheme of an Authorization header, and for `Negotiate` the
/// mechanism inside it ([`negotiated`]).
pub fn schemes(value: &[u8]) -> (exchange::AuthType, exchange::AuthType) {
    let scheme = exchange::AuthType::of_authorization(value);
    let mechanism =
        if scheme == exchange::AuthType::Negotiate { negotiated(value) } else { exchange::AuthType::Unknown };
    (scheme, mechanism)
}

/// One DER element: its tag, its content and what follows it.
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, b) = b.split_first()?;
    let (len, b) = if first < 0x80 {
        (usize::from(first), b)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        (b.get(..n)?.iter().fold(0usize, |a, &x| a << 8 | usize::from(x)), &b[n..])
    };
    Some((tag, b.get(..len)?, &b[len..]))
}

/// A user name in bytes the gateway cannot read as Windows would.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable;

/// An NTLM NEGOTIATE message (type 1), bare or where SPNEGO points at it
/// ([`ntlm_message`]): a signature found elsewhere inside another token
/// (SPNEGO around Kerberos, say) could be a decoy that made a signed-in
/// request look like a handshake's first leg.
fn is_ntlm_negotiate(bytes: &[u8]) -> bool {
    ntlm_message(bytes).is_some_and(|m| m.get(8..12) == Some(&1u32.to_le_bytes()[..]))
}

/// `DOMAIN\user` from an NTLM AUTHENTICATE message (MS-NLMP 2.2.1.3), bare
/// or where SPNEGO points at it ([`ntlm_message`]); `Some(Err)` for a name
/// in the OEM code page beyond ASCII, or UTF-16 that does not decode.
pub fn ntlm_user(bytes: &[u8]) -> Option<Result<String, Unreadable>> {
    let m = ntlm_message(bytes)?;
    let u32_at = |o: usize| m.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u16_at = |o: usize| m.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    if u32_at(8)? != 3 {
        return None;
    }
    let field = |o: usize| -> Option<&[u8]> {
        let len = usize::from(u16_at(o)?);
        let off = u32_at(o + 4)? as usize;
        m.get(off..off.checked_add(len)?)
    };
    let flags = u32_at(60)?;
    // The OEM code page is the server's, unknown here: only ASCII reads
    // the same in all of them.
    let text = |b: &[u8]| -> Result<String, Unreadable> {
        if flags & 1 != 0 {
            if b.len() & 1 == 1 {
                return Err(Unreadable);
            }
            let units = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
            char::decode_utf16(units).collect::<Result<String, _>>().map_err(|_| Unreadable)
        } else if b.is_ascii() {
            Ok(String::from_utf8_lossy(b).into_owned())
        } else {
            Err(Unreadable)
        }
    };
    let (Ok(domain), Ok(user)) = (text(field(28)?), text(field(36)?)) else {
        return Some(Err(Unreadable));
    };
    if user.is_empty() {
        return None;
    }
    Some(Ok(if domain.is_empty() { user } else { format!("{domain}\\{user}") }))
}

/// The user a bearer token names: the first of the `upn`, `unique_name`,
/// `preferred_username` and `email` claims of a JWT. Not verified here:
/// Exchange checks the token's signature, so a forged name gets no further
/// than a 401, and a genuine one names whom Exchange serves.
pub fn bearer_user(token: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Claims {
        upn: Option<String>,
        unique_name: Option<String>,
        preferred_username: Option<String>,
        email: Option<String>,
    }
    let payload = token.split(|&b| b == b'.').nth(1)?;
    let unpadded = payload.iter().rposition(|&b| b != b'=').map_or(&payload[..0], |e| &payload[..=e]);
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(unpadded).ok()?;
    let claims: Claims = serde_json::from_slice(&json).ok()?;
    [claims.upn, claims.unique_name, claims.preferred_username, claims.email]
        .into_iter()
        .flatten()
        .find(|u| !u.trim().is_empty())
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &v[start..end]
}

/// Fuzzing entry point: the parsers of what a client sends (Authorization
/// values, NTLM messages, paths). Must never panic; paths are checked by
/// [`exchange::url::fuzz`].
pub fn fuzz(data: &[u8]) {
    let _ = auth_user(data);
    let _ = ntlm_user(data);
    let _ = bearer_user(data);
    let _ = is_connection_auth(data);
    let _ = ntlm_leg(data);
    let _ = digest_user(data);
    let _ = query_token(&String::from_utf8_lossy(data));
    crate::forms::fuzz(data);
    exchange::url::fuzz(data);
}

#[cfg(test)]
#[path = "../tests/common/tokens.rs"]
mod tokens;

#[cfg(test)]
mod tests {
    use super::tokens::{der, neg_token_init, neg_token_resp, ntlm_type3};
    use super::*;

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

    #[test]
    fn basic_user_without_password() {
        let h = format!("Basic {}", STANDARD.encode("CONTOSO\\jdoe:pa:ss"));
        assert_eq!(auth_user(h.as_bytes()), AuthUser::Named("CONTOSO\\jdoe".into()));
        let h = format!("basic   {}  ", STANDARD.encode("jdoe@contoso.com"));
        assert_eq!(auth_user(h.as_bytes()), AuthUser::Named("jdoe@contoso.com".into()));
        assert_eq!(auth_user(b"Basic !!!"), AuthUser::Unknown);
        let h = format!("Basic\t{}", STANDARD.encode("jdoe:pw"));
        assert_eq!(auth_user(h.as_bytes()), AuthUser::Named("jdoe".into()), "a tab ends the scheme too");
        assert_eq!(auth_user(b"Bearer abc.def"), AuthUser::Unknown);
        let jwt = |claims: &str| {
            let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!("Bearer {}.{}.sig", url.encode("{}"), url.encode(claims))
        };
        assert_eq!(
            auth_user(jwt(r#"{"upn":"jdoe@contoso.com"}"#).as_bytes()),
            AuthUser::Named("jdoe@contoso.com".into())
        );
        let both = jwt(r#"{"email":"e@x","unique_name":"CONTOSO\\jdoe"}"#);
        assert_eq!(auth_user(both.as_bytes()), AuthUser::Named("CONTOSO\\jdoe".into()));
        assert_eq!(auth_user(jwt(r#"{"upn":7}"#).as_bytes()), AuthUser::Unknown);
        assert_eq!(auth_user(jwt(r#"{"oid":"x"}"#).as_bytes()), AuthUser::Unknown);
        let latin1 = format!("Basic {}", STANDARD.encode(b"j\xfcrgen:pw"));
        assert_eq!(auth_user(latin1.as_bytes()), AuthUser::Unreadable);
        assert_eq!(auth_user(format!("Basic {}", STANDARD.encode(":x")).as_bytes()), AuthUser::Unknown);
    }

    #[test]
    fn only_the_ntlm_message_spnego_points_at_is_read() {
        const KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
        const NTLM_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
        let boss = ntlm_type3("CONTOSO", "boss");
        // A Kerberos AP-REQ as the mechToken, and an AUTHENTICATE message
        // naming boss hidden in a second mechanism's OID: Windows signs in
        // whom the ticket names.
        let mut oid = vec![0x2b, 0x06];
        oid.extend_from_slice(&boss);
        oid.push(0x01);
        let ap_req = der(0x6e, &[0x4b; 64]);
        let decoy = neg_token_init(&[KRB5, &oid], &ap_req);
        let h = format!("Negotiate {}", STANDARD.encode(&decoy));
        assert_eq!(ntlm_user(&decoy), None);
        assert_eq!(auth_user(h.as_bytes()), AuthUser::Unknown);
        assert!(ntlm_ambiguous(h.as_bytes()), "a signature SPNEGO does not point at");
        // Where SPNEGO points, the message is read.
        let mut t1 = NTLMSSP.to_vec();
        t1.extend_from_slice(&1u32.to_le_bytes());
        t1.extend_from_slice(&[0; 24]);
        let init = format!("Negotiate {}", STANDARD.encode(neg_token_init(&[NTLM_OID], &t1)));
        assert_eq!(auth_user(init.as_bytes()), AuthUser::HandshakeLeg);
        assert!(!ntlm_ambiguous(init.as_bytes()));
        let resp = format!("Negotiate {}", STANDARD.encode(neg_token_resp(&boss)));
        assert_eq!(auth_user(resp.as_bytes()), AuthUser::Named("CONTOSO\\boss".into()));
        assert!(!ntlm_ambiguous(resp.as_bytes()));
        // A Kerberos token alone is no NTLM token at all.
        let kerberos = format!("Negotiate {}", STANDARD.encode(neg_token_init(&[KRB5], &ap_req)));
        assert!(!ntlm_ambiguous(kerberos.as_bytes()));
        assert!(is_connection_auth(b"NTLM\tTlRMTVNTUAAB"), "a tab ends the scheme here too");
    }

    #[test]
    fn negotiate_is_judged_by_the_mechanism_inside_it() {
        use exchange::AuthType::{Kerberos, Negotiate, Ntlm, Unknown};
        const NTLM_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
        const MS_KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];
        let negotiate = |token: &[u8]| format!("Negotiate {}", STANDARD.encode(token));
        let type3 = ntlm_type3("CONTOSO", "jdoe");
        let mut ticket_body = der(0x06, MS_KRB5);
        ticket_body.extend_from_slice(&der(0x6e, &[0x4b; 40]));
        let ticket = der(0x60, &ticket_body);
        for (token, want) in [
            (type3.clone(), Ntlm),
            (neg_token_resp(&type3), Ntlm),
            (neg_token_init(&[NTLM_OID], &type3), Ntlm),
            (ticket.clone(), Kerberos),
            (neg_token_init(&[MS_KRB5], &ticket), Kerberos),
            // An AP-REQ without its framing, or nothing SPNEGO carries: no mechanism told.
            (der(0x6e, &[0x4b; 40]), Unknown),
            (neg_token_resp(b"opaque"), Unknown),
        ] {
            assert_eq!(schemes(negotiate(&token).as_bytes()), (Negotiate, want), "{}", negotiate(&token));
        }
        // Only Negotiate has a mechanism inside.
        let ntlm = format!("NTLM {}", STANDARD.encode(&type3));
        assert_eq!(schemes(ntlm.as_bytes()), (Ntlm, Unknown));
        assert_eq!(schemes(b"Negotiate !!!"), (Negotiate, Unknown));
        assert_eq!(schemes(b"Basic eDp5"), (exchange::AuthType::Basic, Unknown));
    }

    #[test]
    fn digest_names_its_user_when_it_reads_one_way() {
        assert_eq!(digest_user(br#"username="jdoe", realm="r", uri="/a,b""#), Ok(Some("jdoe".into())));
        assert_eq!(digest_user(br#"realm="r",username=jdoe"#), Ok(Some("jdoe".into())));
        assert_eq!(digest_user(br#"username="CONTOSO\\jdoe""#), Ok(Some(r"CONTOSO\jdoe".into())));
        assert_eq!(digest_user(br#"realm="r", nonce="n""#), Ok(None));
        assert_eq!(digest_user(br#"username="""#), Ok(None));
        for bad in [
            &br#"username="CONTOSO\jdoe""#[..],
            br#"username="a\"b""#,
            br#"username*=UTF-8''jdoe"#,
            br#"username="x", userhash=TRUE"#,
            br#"username="a", username="b""#,
            br#"username="a"b"#,
            br#"username=a b"#,
            br#"username"#,
            br#"username="a", Basic YmFkdXNlcjpwdw=="#,
            b"username=\"j\xffdoe\"",
        ] {
            assert_eq!(digest_user(bad), Err(()), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(auth_user(br#"Digest username="jdoe", realm="r""#), AuthUser::Named("jdoe".into()));
        assert_eq!(auth_user(br#"digest username="a\b""#), AuthUser::Undecoded);
    }

    #[test]
    fn an_ntlm_leg_says_its_type_and_character_set() {
        use super::tokens::{ntlm_type1, ntlm_type3_raw};
        let leg = |scheme: &str, m: &[u8]| ntlm_leg(format!("{scheme} {}", STANDARD.encode(m)).as_bytes());
        assert_eq!(leg("NTLM", &ntlm_type1(0x207)), Some((1, true)));
        assert_eq!(leg("NTLM", &ntlm_type1(0x202)), Some((1, false)));
        assert_eq!(leg("Negotiate", &neg_token_resp(&ntlm_type3("CONTOSO", "jdoe"))), Some((3, true)));
        assert_eq!(leg("NTLM", &ntlm_type3_raw(b"", b"jdoe", 0)), Some((3, false)));
        assert_eq!(leg("Basic", &ntlm_type1(0x207)), None, "only NTLM and Negotiate carry one");
        assert_eq!(leg("NTLM", &ntlm_type1(0x207)[..14]), None, "cut before its flags");
        assert_eq!(ntlm_leg(b"NTLM !!!"), None);
    }

    #[test]
    fn ntlm_authenticate_names_the_user() {
        let msg = ntlm_type3("CONTOSO", "jdoe");
        let h = format!("NTLM {}", STANDARD.encode(&msg));
        assert_eq!(auth_user(h.as_bytes()), AuthUser::Named("CONTOSO\\jdoe".into()));
        let spnego = neg_token_resp(&msg);
        let h = format!("Negotiate {}", STANDARD.encode(&spnego));
        assert_eq!(auth_user(h.as_bytes()), AuthUser::Named("CONTOSO\\jdoe".into()));
        // A NEGOTIATE (type 1) message names nobody yet; a Kerberos ticket
        // (no NTLM message) names nobody readable here.
        let mut t1 = NTLMSSP.to_vec();
        t1.extend_from_slice(&1u32.to_le_bytes());
        t1.extend_from_slice(&[0; 24]);
        assert_eq!(auth_user(format!("NTLM {}", STANDARD.encode(&t1)).as_bytes()), AuthUser::HandshakeLeg);
        assert_eq!(auth_user(b"Negotiate YIIGkwYGKwYBBQUCoIIGhzCCBoOg"), AuthUser::Unknown);
        // Only a bare one: inside another token the signature may be a decoy.
        let mut wrapped = vec![0x60, 0x28, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
        wrapped.extend_from_slice(&t1);
        assert_eq!(auth_user(format!("Negotiate {}", STANDARD.encode(&wrapped)).as_bytes()), AuthUser::Unknown);
        assert_eq!(auth_user(format!("Negotiate {}", STANDARD.encode(&t1)).as_bytes()), AuthUser::HandshakeLeg);
        // Truncated or lying offsets do not panic.
        for cut in 0..msg.len() {
            let _ = ntlm_user(&msg[..cut]);
        }
        let mut bad = msg.clone();
        bad[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(ntlm_user(&bad), None);
        // OEM (no Unicode flag) beyond ASCII, or half a UTF-16 unit: unreadable.
        let mut oem = ntlm_type3("CONTOSO", "jürgen");
        oem[60..64].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(ntlm_user(&oem), Some(Err(Unreadable)), "0xFC is another letter in each OEM code page");
        let mut odd = msg.clone();
        odd[36] += 1;
        odd.push(0);
        assert_eq!(ntlm_user(&odd), Some(Err(Unreadable)));
        assert!(is_connection_auth(b"Negotiate YIIx"));
        // A decoy signature before the real message.
        assert!(!ntlm_ambiguous(h.as_bytes()));
        let mut decoy = vec![0x06, 0x0a];
        decoy.extend_from_slice(NTLMSSP);
        decoy.extend_from_slice(&spnego);
        assert!(ntlm_ambiguous(format!("Negotiate {}", STANDARD.encode(&decoy)).as_bytes()));
        assert!(ntlm_ambiguous(format!("NTLM {}", STANDARD.encode(&decoy)).as_bytes()));
        assert!(!ntlm_ambiguous(format!("Basic {}", STANDARD.encode(&decoy)).as_bytes()));
        assert!(!is_connection_auth(b"Basic eDp5"));
        let t = STANDARD.encode(&msg);
        assert_ne!(auth_user(format!("NTLM {t}").as_bytes()), AuthUser::Undecoded);
        assert_eq!(auth_user(b"Basic eDp5 x"), AuthUser::Unknown, "Basic is the Basic check's");
        for bad in
            [format!("NTLM {t}, Basic eDp5"), format!("Negotiate {}", t.trim_end_matches('=')), format!("NTLM {t} x")]
        {
            assert_eq!(auth_user(bad.as_bytes()), AuthUser::Undecoded, "{bad}");
        }
    }
}
