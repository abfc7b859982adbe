//! What an `Authorization` header says about who signs in, read as IIS and
//! Windows read it: Basic's user (never the password), NTLM's AUTHENTICATE
//! message (bare or inside Negotiate's SPNEGO), a JWT's name claim, Digest's
//! `username`; and whether a header is a leg of a connection's handshake.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

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
    let value = value.trim_ascii();
    // Any whitespace ends the scheme, as `AuthType::of_authorization` reads it.
    let Some(sp) = value.iter().position(u8::is_ascii_whitespace) else {
        return AuthUser::Unknown;
    };
    let (scheme, rest) = (&value[..sp], value[sp + 1..].trim_ascii());
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
        // A name is a token (RFC 9110): one with another byte in it (a
        // non-breaking space before `username`, white space to Windows'
        // `iswspace`) names nobody here, while IIS may read the user.
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(());
        }
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
    let v = value.trim_ascii();
    // Any whitespace ends the scheme, as [`auth_user`] reads it: `NTLM\t...`
    // names its user there, so it must be a handshake here too.
    let scheme = v.split(u8::is_ascii_whitespace).next().unwrap_or(b"");
    scheme.eq_ignore_ascii_case(b"NTLM") || scheme.eq_ignore_ascii_case(b"Negotiate")
}

/// True for a header that starts with a scheme IIS runs (Basic, NTLM,
/// Negotiate, Bearer, and Digest where an administrator turned it on, in
/// any case) followed by a byte that can neither go
/// on with the scheme's name (an RFC 9110 token character) nor end it as
/// whitespace: a non-breaking space (`0xA0`, white space to Windows'
/// `iswspace`), a comma, a colon. The gateway reads no scheme and no user
/// from `NTLM<0xA0><AUTHENTICATE>` (nobody's, so no rule on a user holds,
/// and no handshake), while IIS might read it as the scheme; no client
/// writes it. So with Digest: `Digest<0xA0>username="baduser", ...`
/// named nobody here (its first ASCII space ends no scheme IIS knows).
pub fn scheme_ends_oddly(value: &[u8]) -> bool {
    let v = value.trim_ascii_start();
    [b"Basic".as_slice(), b"NTLM", b"Negotiate", b"Bearer", b"Digest"].iter().any(|scheme| {
        v.len() > scheme.len()
            && v[..scheme.len()].eq_ignore_ascii_case(scheme)
            && !is_tchar(v[scheme.len()])
            && !v[scheme.len()].is_ascii_whitespace()
    })
}

/// A byte of an RFC 9110 token (a scheme's or a parameter's name).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

const NTLMSSP: &[u8] = b"NTLMSSP\0";

/// True for an NTLM or Negotiate header whose token holds the NTLM
/// signature twice: [`ntlm_user`] reads the first, found by searching, and
/// Windows the one SPNEGO's structure points at, which may be the other (a
/// first one hidden in an OID, say, naming another user).
pub fn ntlm_ambiguous(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    let Some(sp) = value.iter().position(u8::is_ascii_whitespace) else { return false };
    if !is_connection_auth(&value[..sp]) {
        return false;
    }
    let Ok(bytes) = STANDARD.decode(value[sp + 1..].trim_ascii()) else { return false };
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
    let value = value.trim_ascii();
    let Some(sp) = value.iter().position(u8::is_ascii_whitespace) else { return exchange::AuthType::Unknown };
    if !value[..sp].eq_ignore_ascii_case(b"Negotiate") {
        return exchange::AuthType::Unknown;
    }
    let Ok(bytes) = STANDARD.decode(value[sp + 1..].trim_ascii()) else { return exchange::AuthType::Unknown };
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
    let value = value.trim_ascii();
    let sp = value.iter().position(u8::is_ascii_whitespace)?;
    if !is_connection_auth(&value[..sp]) {
        return None;
    }
    let bytes = STANDARD.decode(value[sp + 1..].trim_ascii()).ok()?;
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

/// Fuzzing entry point for these parsers (see `crate::model::fuzz`).
pub(crate) fn fuzz(data: &[u8]) {
    let _ = auth_user(data);
    let _ = ntlm_user(data);
    let _ = bearer_user(data);
    let _ = is_connection_auth(data);
    let _ = ntlm_leg(data);
    let _ = digest_user(data);
}

#[cfg(test)]
#[path = "../tests/common/tokens.rs"]
pub(crate) mod tokens;

#[cfg(test)]
mod tests {
    use super::tokens::{der, neg_token_init, neg_token_resp, ntlm_type3};
    use super::*;

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
        // Kerberos offered first: Windows hands the mechToken to Kerberos,
        // which can only refuse it; it opens no more than a NEGOTIATE.
        let krb_first = format!("Negotiate {}", STANDARD.encode(neg_token_init(&[KRB5, NTLM_OID], &t1)));
        assert_eq!(auth_user(krb_first.as_bytes()), AuthUser::HandshakeLeg);
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
            b"\xa0username=\"jdoe\"",
            b"realm=\"r\",\xc2\xa0username=\"jdoe\"",
            b"username\xa0=\"jdoe\"",
            br#"=x, username="jdoe""#,
        ] {
            assert_eq!(digest_user(bad), Err(()), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(auth_user(br#"Digest username="jdoe", realm="r""#), AuthUser::Named("jdoe".into()));
        assert_eq!(auth_user(br#"digest username="a\b""#), AuthUser::Undecoded);
    }

    #[test]
    fn a_scheme_ends_at_whitespace_or_the_end() {
        // (header, whether its scheme ends oddly)
        let cases: [(&[u8], bool); 16] = [
            (b"NTLM\xa0TlRM", true),
            (b"basic\xa0Ym9z", true),
            (b"Negotiate,YII=", true),
            (b"Bearer:x", true),
            (b"  NTLM\xc2\xa0x", true),
            (b"Basic\"x", true),
            (b"digest\xa0username=x", true),
            (b"NTLM TlRM", false),
            (b"Basic\tYm9z", false),
            (b"Negotiate", false),
            (b"Bearer", false),
            (b"NTLMx y", false),
            (b"Basic-x", false),
            (b"Digests,x", false),
            (b"Digest\tusername=x", false),
            (b"", false),
        ];
        for (header, odd) in cases {
            assert_eq!(scheme_ends_oddly(header), odd, "{:?}", String::from_utf8_lossy(header));
        }
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
