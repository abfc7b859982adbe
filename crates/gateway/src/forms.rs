//! The forms sign-in of Outlook on the web and the admin center: the user
//! name is in the body of `POST /owa/auth.owa`, and later requests carry
//! only Exchange's encrypted `cadata` cookies. So that a rule on users sees
//! who signs in, the gateway reads that body (a small form) before deciding
//! and judges the request as the user the form names; a denied user never
//! gets the cookies. IIS logs the same line with that user (`cs-username`),
//! so `simulate` judges it alike.
//!
//! Exchange's `FbaModule` reads the form through ASP.NET's `Request.Form`:
//! names and values percent-decoded, `+` as a space, names matched without
//! regard to case, a repeated field joined with commas.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::Method;

use crate::model::AuthUser;
use crate::screen::Refused;
use exchange::text::NameMatch;

/// The sign-in form is a few hundred bytes; a bigger body is refused.
const MAX_FORM: usize = 16 * 1024;
/// How long the client has to send it.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(30);

const TOO_LARGE: Refused = Refused::new(413, "a sign-in form larger than 16 KiB");
const NOT_SENT: Refused = Refused::new(400, "the sign-in form was not sent in time, or was cut off");
const AMBIGUOUS: Refused = Refused::new(400, "a sign-in form that names its user twice, or not in UTF-8");
const TWO_USERS: Refused = Refused::new(400, "a sign-in form naming another user than its Authorization header");
const NOT_A_FORM: Refused =
    Refused::new(400, "a sign-in posted other than as application/x-www-form-urlencoded (the logon page's form)");
const QUERY_AND_FORM: Refused = Refused::new(400, "a sign-in naming one user in its query and another in its form");

/// A form naming someone the identity key reads as nobody (`Anonymous`, `CONTOSO\`).
pub(crate) const NOBODY: Refused = Refused::new(400, "a sign-in form naming nobody casguard can key");

/// Make `m` the sign-in of `user`, the one the form names: Exchange's forms
/// module turns the form into the credentials IIS checks. A header naming
/// someone else is refused rather than guessed between.
pub(crate) fn sign_in_as(m: &mut exchange::Request, user: &str, header: Option<&AuthUser>) -> Option<Refused> {
    if matches!(header, Some(AuthUser::Named(named)) if !named.eq_ignore_ascii_case(user)) {
        return Some(TWO_USERS);
    }
    m.username.clear();
    m.username.push_str(user);
    m.auth = exchange::AuthType::Fba;
    None
}

/// Whether the request posts the forms sign-in: its decoded path ends in
/// `auth.owa` (or the older `owaauth.dll`), in any case, and Exchange may
/// read its method as `POST` (see [`posts`]).
pub(crate) fn is_sign_in(method: &Method, path: &str) -> bool {
    // Without an escape or a backslash, the decoded path's letters are the
    // raw path's: most POSTs (EWS, ActiveSync, MAPI) are ruled out unread.
    if !posts(method) || !(path.contains(['%', '\\']) || exchange::text::contains_ci(path, "auth")) {
        return false;
    }
    let mut stem = String::new();
    if exchange::url::decode_path(path, &mut stem).is_err() {
        return false; // refused later, when the path is judged
    }
    let last = stem.rsplit('/').next().unwrap_or("");
    last.eq_ignore_ascii_case("auth.owa") || last.eq_ignore_ascii_case("owaauth.dll")
}

/// Whether `FbaModule` may take `method` for a `POST` (see
/// [`exchange::forms_reads_as_post`]), as the audit reads a logged one:
/// IIS's Basic module then signs in whom the form named.
fn posts(method: &Method) -> bool {
    *method == Method::POST || exchange::forms_reads_as_post(method.as_str())
}

/// The whole body, up to [`MAX_FORM`].
pub(crate) async fn read(body: Incoming) -> Result<Bytes, Refused> {
    match tokio::time::timeout(READ_TIMEOUT, Limited::new(body, MAX_FORM).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(TOO_LARGE),
        Ok(Err(_)) | Err(_) => Err(NOT_SENT),
    }
}

/// The user a forms sign-in names: its form's `username`, read only from
/// the urlencoded form the logon page posts (ASP.NET would read a multipart
/// body too, which is refused rather than parsed), and a `username` in the
/// query, which `Request["username"]` reads before the form, must agree.
pub(crate) fn sign_in_user(
    query: Option<&str>,
    content_types: &[&[u8]],
    form: &[u8],
) -> Result<Option<String>, Refused> {
    let urlencoded = |t: &[u8]| {
        let t = t.trim_ascii_start();
        t.len() >= 33
            && t[..33].eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
            && matches!(t.get(33), None | Some(b';' | b' ' | b'\t'))
    };
    let from_form = match content_types {
        _ if form.is_empty() && content_types.len() <= 1 => None,
        [t] if urlencoded(t) => username(form)?,
        _ => return Err(NOT_A_FORM),
    };
    let from_query = username(query.unwrap_or("").as_bytes())?;
    match (from_form, from_query) {
        (Some(f), Some(q)) if f != q => Err(QUERY_AND_FORM),
        (f, q) => Ok(f.or(q)),
    }
}

/// The user the form names (`username`), if it names one.
pub(crate) fn username(form: &[u8]) -> Result<Option<String>, Refused> {
    let mut found: Option<String> = None;
    for pair in form.split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        match decode(name).map(|n| exchange::text::name_match(&n, "username")) {
            Some(NameMatch::Exact) => {}
            Some(NameMatch::LookAlike) => return Err(crate::screen::LOOKALIKE_NAME),
            Some(NameMatch::No) | None => continue,
        }
        let value = decode(value).ok_or(AMBIGUOUS)?;
        if found.replace(value).is_some() {
            return Err(AMBIGUOUS);
        }
    }
    Ok(found.filter(|u| !u.is_empty()))
}

/// A form field decoded as ASP.NET does: `+` a space, `%XX` a byte (and
/// `%uXXXX` a character); `None` when the bytes are not UTF-8.
fn decode(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut out = String::with_capacity(text.len());
    exchange::url::decode_query_value_into(text, &mut out);
    (!out.contains('\u{FFFD}')).then_some(out)
}

/// For the fuzz target (through `model::fuzz`): never a panic, and a user
/// read is the bytes decoded, never a replacement character.
pub(crate) fn fuzz(data: &[u8]) {
    if let Ok(Some(user)) = username(data) {
        assert!(!user.is_empty() && !user.contains('\u{FFFD}'));
    }
    let (query, form) = data.split_at(data.len() / 2);
    let _ = sign_in_user(std::str::from_utf8(query).ok(), &[b"application/x-www-form-urlencoded"], form);
    let _ = is_sign_in(&Method::POST, &String::from_utf8_lossy(data));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_names_its_user_as_asp_net_reads_it() {
        let form = b"destination=https%3A%2F%2Fmail%2Fowa&flags=4&forcedownlevel=0&username=CONTOSO%5Cbob&password=p%26ss&isUtf8=1";
        assert_eq!(username(form).unwrap().as_deref(), Some("CONTOSO\\bob"));
        assert_eq!(
            username(b"UserName=bob+smith%40contoso.com&password=x").unwrap().as_deref(),
            Some("bob smith@contoso.com")
        );
        assert_eq!(username(b"user%6Eame=bob").unwrap().as_deref(), Some("bob"), "the name decoded too");
        // `ſ` for `s`: no field to Exchange on Windows, `username` through
        // ICU; refused, as either reading could be the wrong one.
        for form in [&b"u%C5%BFername=bob"[..], b"username=alice&u%C5%BFername=bob", b"u\xc5\xbfername=bob"] {
            assert_eq!(username(form), Err(crate::screen::LOOKALIKE_NAME));
        }
        assert_eq!(username(b"password=x&isUtf8=1").unwrap(), None);
        assert_eq!(username(b"username=&password=x").unwrap(), None);
        assert!(username(b"username=alice&USERNAME=bob").is_err(), "ASP.NET would read `alice,bob`");
        assert!(username(b"username=b%FFb").is_err(), "not UTF-8");
    }

    #[test]
    fn only_the_logon_page_s_form_is_read_and_a_query_must_agree() {
        let form = b"username=bob&password=x";
        let urlencoded: &[&[u8]] = &[b"application/x-www-form-urlencoded"];
        assert_eq!(sign_in_user(None, urlencoded, form).unwrap().as_deref(), Some("bob"));
        let charset: &[&[u8]] = &[b"Application/X-WWW-Form-URLEncoded; charset=UTF-8"];
        assert_eq!(sign_in_user(None, charset, form).unwrap().as_deref(), Some("bob"));
        for types in [
            &[&b"multipart/form-data; boundary=x"[..]][..],
            &[b"application/x-www-form-urlencodedx"],
            &[b"text/plain"],
            &[],
            &[b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x"],
        ] {
            assert!(sign_in_user(None, types, form).is_err(), "{types:?}");
        }
        assert_eq!(sign_in_user(None, &[], b"").unwrap(), None, "no body, nothing to read");
        assert_eq!(sign_in_user(Some("UserName=eve"), &[], b"").unwrap().as_deref(), Some("eve"));
        assert_eq!(sign_in_user(Some("username=bob"), urlencoded, form).unwrap().as_deref(), Some("bob"));
        assert!(sign_in_user(Some("username=eve"), urlencoded, form).is_err());
    }

    #[test]
    fn the_sign_in_is_found_however_its_path_is_written() {
        for path in [
            "/owa/auth.owa",
            "/OWA/Auth.OWA",
            "/owa/auth%2eowa",
            "/owa/%61uth.owa",
            "/owa/./auth.owa",
            "/owa/auth/owaauth.dll",
        ] {
            assert!(is_sign_in(&Method::POST, path), "{path}");
        }
        assert!(!is_sign_in(&Method::GET, "/owa/auth.owa"));
        // Exchange parses the method as an enum, in any case, or as a number.
        for method in ["post", "Post", "pOsT", "3", "+3", "-0"] {
            assert!(is_sign_in(&method.parse().unwrap(), "/owa/auth.owa"), "{method}");
        }
        for method in ["PUT", "get", "POSTX", "XPOST"] {
            assert!(!is_sign_in(&method.parse().unwrap(), "/owa/auth.owa"), "{method}");
        }
        assert!(!is_sign_in(&Method::POST, "/owa/auth/logon.aspx"));
        assert!(!is_sign_in(&Method::POST, "/EWS/Exchange.asmx"));
    }
}
