//! The requests that open a Windows (NTLM or Negotiate) sign-in name no one
//! yet: the first comes without credentials, the next with a NEGOTIATE
//! message. A policy that lets users through by name (a deny rule's
//! exception on users, an allow rule on users) denies both, and answered
//! 403 no Windows client (Outlook for Windows, EWS programs) could ever sign
//! in as those users. So where the policy denies such a request but may
//! allow it once it names its user, on a page where Exchange's front end
//! runs Windows authentication ([`policy::Decision::challenge`]):
//! - without credentials, the gateway answers 401 with IIS's challenge
//!   (`Negotiate`, `NTLM`) itself, and nothing reaches Exchange;
//! - a NEGOTIATE message goes on to Exchange, whose CHALLENGE no one else
//!   can give, as a `GET` of that protocol's Windows-authenticated page
//!   with no body (the client's is read, up to [`MAX_DROPPED`], and
//!   dropped), so that nothing but a sign-in can come of it; any answer but
//!   401 is answered 403 and the upstream connection is let go.
//!
//! Both are still denied, and logged as the rule's, as IIS logs these legs
//! (401s naming no user) and `simulate` counts them. The request that names
//! its user is judged as any other.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, TRANSFER_ENCODING};
use hyper::{Method, Request, StatusCode};

use crate::answer::{self, Answer};
use crate::connection::ConnState;
use crate::credentials::AuthUser;
use crate::headers::upstream_request;
use crate::learn::ClientBody;
use crate::lock;

/// The most of a NEGOTIATE request's body read and dropped: Outlook's and
/// the EWS Managed API's first legs carry their whole request.
const MAX_DROPPED: usize = 1 << 20;

/// How a denied request that opens a Windows sign-in goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opening {
    /// No credentials: answered with the challenge.
    Challenge,
    /// A NEGOTIATE message: sent on for Exchange's challenge.
    Negotiate(&'static str),
}

/// How `m`, which `decision` denies, goes on: with the sign-in's challenge
/// when the decision says so (see [`policy::Decision::challenge`]) and the
/// request opens a sign-in as a Windows client does (no credentials, or a
/// NEGOTIATE); any other is denied with the decision's status.
pub(crate) fn of(
    m: &exchange::Request,
    decision: &policy::Decision,
    has_authorization: bool,
    auth: Option<&AuthUser>,
) -> Option<Opening> {
    if !decision.challenge {
        return None;
    }
    let page = exchange::protocol::windows_sign_in_page(m.protocol)?;
    match auth {
        None if !has_authorization => Some(Opening::Challenge),
        Some(AuthUser::HandshakeLeg) => Some(Opening::Negotiate(page)),
        _ => None,
    }
}

/// The answer to a request without credentials: IIS's challenge, with
/// Basic (its realm the host asked for, as IIS's default) where the front
/// end runs it too by default (Outlook Anywhere, Autodiscover).
pub(crate) fn challenge(
    protocol: exchange::Protocol,
    host: Option<&HeaderValue>,
    finish: crate::finish::Finish,
) -> Answer {
    let basic = matches!(protocol, exchange::Protocol::Rpc | exchange::Protocol::Autodiscover);
    answer::challenge(host.filter(|_| basic), finish)
}

/// Send a NEGOTIATE message on as a `GET` of `page`, and give the client
/// Exchange's challenge, or 403 for any other answer.
pub(crate) async fn negotiate(
    req: Request<ClientBody>,
    page: &'static str,
    rule: Arc<str>,
    forward: crate::forward::Forward,
) -> Answer {
    let conn: Arc<ConnState> = forward.conn.clone();
    let (mut parts, body) = req.into_parts();
    if let ClientBody::Stream(body) = body {
        if !dropped(body).await {
            return answer::denied(403, 0, &rule, forward.finish);
        }
    }
    parts.method = Method::GET;
    parts.uri = hyper::Uri::from_static(page);
    for name in [CONTENT_LENGTH, TRANSFER_ENCODING, CONTENT_TYPE, EXPECT] {
        parts.headers.remove(name);
    }
    let req = upstream_request(
        Request::from_parts(parts, ClientBody::Read(None)),
        &conn.info,
        conn.peer_xff.as_ref(),
        None,
        None,
    );
    let (mut sender, forward) = match forward.connect().await {
        Ok(ready) => ready,
        Err(answer) => return answer,
    };
    match sender.try_send_request(req).await {
        Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
            *lock(&conn.upstream) = Some(sender);
            Ok(forward.respond(response))
        }
        Ok(response) => {
            // Not a challenge: nothing of it goes to the client, and the
            // upstream connection, signed in or not, goes.
            drop(response);
            drop(sender);
            conn.signed_in.store(false, Ordering::Relaxed);
            lock(&conn.drivers).let_go();
            answer::denied(403, 0, &rule, forward.finish)
        }
        Err(e) => forward.upstream_failed(e.error()),
    }
}

/// Read the client's body to its end and drop it; false when it is longer
/// than [`MAX_DROPPED`] or does not come.
async fn dropped(body: Incoming) -> bool {
    let read = Limited::new(body, MAX_DROPPED).collect();
    matches!(tokio::time::timeout(crate::forms::READ_TIMEOUT, read).await, Ok(Ok(_)))
}
