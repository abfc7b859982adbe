//! Credentials that Exchange may not check on the page they come to, so that
//! it serves the request as anonymous (or as someone the gateway cannot
//! read) while the gateway read a user from them. Such a request passes only
//! if it would pass anonymous too, now and after a reload (see
//! [`crate::rejudge`]), and a handshake on such a page signs no one in for
//! the connection.
//!
//! The front end of Outlook on the web and the admin center serves pages to
//! anyone (the sign-in pages, their scripts and images: ProxyLogon's
//! `/ecp/y.js`) and, by default, runs only Basic and its forms sign-in in
//! IIS ("Default settings for Exchange virtual directories": `owa` Basic,
//! `ecp` Anonymous and Basic; Windows authentication is on at the back end
//! only). So IIS ignores NTLM, Negotiate and Digest there, and Exchange's
//! `OAuthHttpModule` checks a bearer token only where it is loaded (and,
//! with OWA's web-app sign-in on, not on those pages). A wrong Basic
//! password is answered 401.
//!
//! And Exchange's `FbaModule` (decompiled Exchange 2016/2019,
//! `ParseCadataCookies`, run as each request begins, before IIS
//! authenticates it) decrypts the forms sign-in's `cadata` cookies and
//! writes the Basic credentials inside them over the request's
//! `Authorization` header: a request with the cookies of one user and a
//! header naming another is served as the cookies' user, whom the gateway
//! cannot read.
//!
//! And on every virtual directory, Exchange's front end answers a load
//! balancer's health check (`GET .../healthcheck.htm`) before IIS signs
//! anyone in: any credentials there are unchecked.
//!
//! And IIS's Digest module is off on every one of Exchange's virtual
//! directories by default, and a scheme IIS does not know (anything but
//! Basic, NTLM, Negotiate and Bearer) is run nowhere: such a header is
//! ignored everywhere, and Exchange answers anonymous requests on every
//! virtual directory (Autodiscover's `autodiscover.json`, decompiled
//! `ProxyModule.SelectHandlerForUnauthenticatedRequest`; EWS's `POST`s,
//! passed on to the back end). Where an administrator turned Digest on
//! (`-DigestAuthentication $true`), its users pass a rule excepting them
//! only as far as the request would pass anonymous too.
//!
//! And the WS-Security doors of EWS and Autodiscover
//! (`/EWS/Exchange.asmx/WSSecurity`, `/Autodiscover/Autodiscover.svc/WSSecurity`,
//! `/SymmetricKey` or `/X509Cert` after either) take their caller from the
//! SOAP body, a token another organization's Exchange (or Microsoft's
//! federation gateway) signs. IIS runs Anonymous there (EWS's front end runs
//! Anonymous and Windows authentication, no Basic, by Microsoft's table),
//! and Exchange's front end lets a request IIS did not sign in through
//! anonymously (decompiled `ProxyModule.AllowAnonymousRequest`:
//! `IsWsSecurityRequest`, a path ending in `wssecurity`) for the back end to
//! check the token: whatever header names a user there, Exchange need not
//! check it. No client sends credentials in a header there.

use hyper::header::{HeaderMap, HeaderValue, COOKIE};

/// Whether `r` carries credentials that Exchange may not check on its page
/// (see the module's documentation): on a page of Outlook on the web or the
/// admin center other than the forms sign-in, an `Authorization` header of
/// any scheme but Basic (written `Basic <credentials>`, as clients write
/// it), any credentials beside a `cadata` cookie, or none but the sign-in
/// the connection's handshake made (`connection_signed_in`). On WOPI's
/// pages a bearer token alone is the back end's to check (see
/// [`crate::model::reads_query_token`]); the forms sign-in names its user
/// in the form. And on any virtual directory, any credentials on a health
/// check ([`is_health_check`]) or a WS-Security door ([`is_ws_security`]),
/// and, on any page but the forms sign-in, a header IIS may not read (see
/// [`run_as_written`]: Digest, say, or NTLM after a tab).
pub(crate) fn credentials(
    r: &exchange::Request,
    authorization: Option<&HeaderValue>,
    connection_signed_in: bool,
    headers: &HeaderMap,
) -> bool {
    let credentials = authorization.is_some() || connection_signed_in;
    if credentials && (is_health_check(r) || is_ws_security(&r.stem)) {
        return true;
    }
    if r.auth == exchange::AuthType::Fba {
        return false;
    }
    if authorization.is_some_and(|v| !run_as_written(v.as_bytes())) {
        return true;
    }
    if !matches!(r.protocol, exchange::Protocol::Owa | exchange::Protocol::Ecp) {
        return false;
    }
    let scheme = |name: &[u8]| authorization.is_some_and(|v| written(v.as_bytes(), name));
    let checked = scheme(b"Basic ") || (scheme(b"Bearer ") && crate::model::reads_query_token(&r.stem));
    credentials && (!checked || sign_in_cookies(headers))
}

/// A load balancer's health check as Exchange's front end answers it, on
/// any virtual directory: a `GET` of a path ending in `/healthcheck.htm`,
/// answered by `ProxyModule.OnBeginRequest` (decompiled
/// `HealthCheckResponder`: `200 OK<br/>` and the server's FQDN) before IIS
/// signs anyone in, so whatever credentials come with it.
fn is_health_check(r: &exchange::Request) -> bool {
    r.method.eq_ignore_ascii_case("GET") && exchange::text::ends_with_ci(&r.stem, "/healthcheck.htm")
}

/// Whether a header is of a scheme IIS runs on some of Exchange's virtual
/// directories, written as every client writes it: Basic, NTLM, Negotiate
/// or Bearer, one space, a token. Digest's module is off on every one by
/// default; a scheme IIS does not know (`Kerberos`, `Foo`; Windows takes
/// Kerberos inside `Negotiate`) is run nowhere; and IIS may not read
/// another spacing (a tab, two spaces) as the scheme.
fn run_as_written(value: &[u8]) -> bool {
    [b"Basic ".as_slice(), b"NTLM ", b"Negotiate ", b"Bearer "].iter().any(|scheme| written(value, scheme))
}

/// `value` is `scheme` (in any case, with its space) then a token without
/// whitespace.
fn written(value: &[u8], scheme: &[u8]) -> bool {
    let v = value.trim_ascii();
    v.len() > scheme.len()
        && v[..scheme.len()].eq_ignore_ascii_case(scheme)
        && !v[scheme.len()..].iter().any(u8::is_ascii_whitespace)
}

/// A WS-Security door, as Exchange's front end finds one (decompiled
/// `RequestPathParser`: a local path ending in `wssecurity`,
/// `wssecurity/symmetrickey` or `wssecurity/x509cert`, in any case), on any
/// virtual directory: any stem holding `wssecurity` in any case, a superset
/// (a trailing `/` or `.`, which some readings of a path drop, included).
fn is_ws_security(stem: &str) -> bool {
    exchange::text::contains_ci(stem, "wssecurity")
}

/// Whether a `Cookie` header names Exchange's forms sign-in cookies
/// (`cadata`, `cadataKey`, ...): any name holding `cadata` in any case, a
/// superset of what ASP.NET's `Request.Cookies` matches.
fn sign_in_cookies(headers: &HeaderMap) -> bool {
    headers.get_all(COOKIE).iter().any(|v| v.as_bytes().windows(6).any(|w| w.eq_ignore_ascii_case(b"cadata")))
}

/// `r` as Exchange serves it when IIS ignores its credentials: anonymous.
pub(crate) fn as_anonymous(r: &mut exchange::Request) {
    r.username.clear();
    r.user.clear();
    r.unnamed_credentials = false;
    r.auth = exchange::AuthType::Unknown;
    r.auth_mechanism = exchange::AuthType::Unknown;
}

/// `decision`, the policy's on `r`, or, when it allows a request whose
/// credentials Exchange may not check, the decision on `r` anonymous if
/// that one denies it (`r` is then made anonymous, as the access log
/// names it).
pub(crate) fn also_anonymous(
    policy: &policy::ReadyPolicy,
    r: &mut exchange::Request,
    decision: policy::Decision,
) -> policy::Decision {
    if decision.action != policy::Action::Allow || decision.refused.is_some() {
        return decision;
    }
    let mut anonymous = r.clone();
    as_anonymous(&mut anonymous);
    let as_anonymous = policy::evaluate(policy, &anonymous);
    if as_anonymous.action == policy::Action::Deny || as_anonymous.refused.is_some() {
        *r = anonymous;
        return as_anonymous;
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str) -> exchange::Request {
        let mut r = exchange::Request { protocol: exchange::Protocol::Ecp, ..Default::default() };
        r.stem.push_str(path);
        r
    }

    #[test]
    fn only_basic_alone_is_checked_on_the_pages_served_anonymously() {
        let none = HeaderMap::new();
        let mut cookies = HeaderMap::new();
        cookies.insert(COOKIE, HeaderValue::from_static("PrivateComputer=true; CADATA=abc; cadataKey=k"));
        let r = request("/ecp/y.js");
        let header = |v: &'static str| HeaderValue::from_static(v);
        for scheme in ["NTLM TlRM", "Negotiate YII", "Bearer x", "Digest username=\"a\"", "Foo x", "Basic"] {
            assert!(credentials(&r, Some(&header(scheme)), false, &none), "{scheme}");
        }
        assert!(!credentials(&r, Some(&header("Basic Ym9zczp4")), false, &none));
        assert!(!credentials(&r, Some(&header("basic Ym9zczp4")), false, &none));
        for odd in ["Basic\tYm9zczp4", "Basic  Ym9zczp4", "Basic Ym9z czp4"] {
            assert!(credentials(&r, Some(&header(odd)), false, &none), "{odd}: IIS may not read it");
        }
        assert!(credentials(&r, Some(&header("Basic Ym9zczp4")), false, &cookies), "cadata replaces it");
        assert!(credentials(&r, None, true, &none), "a handshake's sign-in IIS did not check");
        assert!(!credentials(&r, None, false, &cookies), "anonymous already");
        // Elsewhere IIS checks what it runs; the forms sign-in and WOPI are judged as they are.
        let mut ews = request("/EWS/Exchange.asmx");
        ews.protocol = exchange::Protocol::Ews;
        assert!(!credentials(&ews, Some(&header("NTLM TlRM")), true, &cookies));
        assert!(!credentials(&ews, Some(&header("Basic Ym9zczp4")), false, &none));
        // Digest is off on every virtual directory by default, and other
        // schemes IIS does not know are run nowhere.
        for digest in ["Digest username=\"a\"", "digest\tusername=a"] {
            assert!(credentials(&ews, Some(&header(digest)), false, &none), "{digest}");
        }
        for other in ["Digestive x", "Foo x", "Kerberos YII=", ""] {
            assert!(credentials(&ews, Some(&header(other)), false, &none), "{other}: run nowhere");
        }
        for run in ["Bearer x", "negotiate YII=", "NTLM TlRM"] {
            assert!(!credentials(&ews, Some(&header(run)), false, &none), "{run}");
        }
        // A scheme IIS may not read as written, on every page.
        for odd in ["Basic\tYm9zczp4", "basic  Ym9zczp4", "Basic Ym9z czp4", "Basic", "NTLM\tTlRM", "Negotiate  YII="] {
            assert!(credentials(&ews, Some(&header(odd)), false, &none), "{odd}");
        }
        let mut fba = request("/owa/auth.owa");
        fba.auth = exchange::AuthType::Fba;
        assert!(!credentials(&fba, Some(&header("Basic Ym9zczp4")), false, &cookies));
        assert!(!credentials(&fba, Some(&header("Digest username=\"a\"")), false, &none));
        let mut wopi = request("/owa/wopi/files/@/owaatt");
        wopi.protocol = exchange::Protocol::Owa;
        assert!(!credentials(&wopi, Some(&header("Bearer x")), false, &none));
        assert!(credentials(&wopi, Some(&header("Bearer x")), false, &cookies));
        assert!(credentials(&wopi, Some(&header("NTLM TlRM")), false, &none));
        // A health check is answered before anyone signs in, on any virtual directory.
        let mut health = request("/EWS/HealthCheck.htm");
        health.protocol = exchange::Protocol::Ews;
        health.method.push_str("get");
        assert!(credentials(&health, Some(&header("Basic Ym9zczp4")), false, &none));
        assert!(credentials(&health, None, true, &none));
        assert!(!credentials(&health, None, false, &none), "anonymous already");
        health.method = "POST".into();
        assert!(!credentials(&health, Some(&header("Basic Ym9zczp4")), false, &none));
        // A WS-Security door takes its caller from the SOAP body, on EWS and Autodiscover.
        for door in [
            "/EWS/Exchange.asmx/WSSecurity",
            "/ews/exchange.asmx/wssecurity/symmetrickey",
            "/EWS/Exchange.asmx/WsSecurity/X509Cert",
            "/Autodiscover/Autodiscover.svc/WSSecurity/",
        ] {
            let mut r = request(door);
            r.protocol = exchange::protocol::protocol_of(door);
            for scheme in ["Basic Ym9zczp4", "NTLM TlRM", "Bearer x", "Digest username=\"a\""] {
                assert!(credentials(&r, Some(&header(scheme)), false, &none), "{door} {scheme}");
            }
            assert!(credentials(&r, None, true, &none), "{door}: a handshake's sign-in");
            assert!(!credentials(&r, None, false, &none), "{door}: anonymous already");
        }
    }
}
