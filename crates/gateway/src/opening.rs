//! The requests that open a Windows (NTLM or Negotiate) sign-in name no one
//! yet: the first comes without credentials, the next with a NEGOTIATE
//! message. A policy that lets users through by name (a deny rule's
//! exception on users, an allow rule on users) denies both, and answered
//! 403 no Windows client (Outlook for Windows, EWS programs) could ever sign
//! in as those users. So where the policy denies such a request but may
//! allow it once it names its user, on a page where Exchange's front end
//! runs Windows authentication ([`policy::Decision::challenge`]):
//! - without credentials, the gateway answers 401 with a challenge
//!   (`NTLM`, see [`answer::challenge`]) itself, and nothing reaches Exchange;
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

use bytes::Buf;
use http_body_util::BodyExt;
use hyper::body::Body;
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

/// The answer to a request without credentials: the challenge (NTLM, see
/// [`answer::challenge`]), with Basic (its realm the host asked for, as
/// IIS's default) where the front end runs it too by default (Outlook
/// Anywhere, Autodiscover).
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
            return answer::denied(403, 0, &rule, None, forward.finish);
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
            answer::denied(403, 0, &rule, None, forward.finish)
        }
        Err(e) => forward.upstream_failed(e.error()),
    }
}

/// Read the client's body to its end and drop it, each piece as it comes;
/// false when it is longer than [`MAX_DROPPED`] or does not come. Not
/// collected: anyone may send a NEGOTIATE, and a megabyte held on each of
/// the gateway's connections (16,384 by default) until the body ended
/// would be 16 GiB.
async fn dropped<B: Body>(body: B) -> bool {
    let drain = async {
        let mut body = std::pin::pin!(body);
        let mut read = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            read = read.saturating_add(frame.data_ref().map_or(0, Buf::remaining));
            if read > MAX_DROPPED {
                return false;
            }
        }
        true
    };
    matches!(tokio::time::timeout(crate::forms::READ_TIMEOUT, drain).await, Ok(true))
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use hyper::body::Frame;

    use super::*;

    /// A piece of a body that counts the pieces alive.
    struct Piece(Bytes, Arc<AtomicUsize>);

    impl Drop for Piece {
        fn drop(&mut self) {
            self.1.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl Buf for Piece {
        fn remaining(&self) -> usize {
            self.0.remaining()
        }
        fn chunk(&self) -> &[u8] {
            self.0.chunk()
        }
        fn advance(&mut self, n: usize) {
            self.0.advance(n)
        }
    }

    /// `n` pieces of 16 KiB; records the most alive when the next is asked for.
    struct Pieces {
        left: usize,
        alive: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl Body for Pieces {
        type Data = Piece;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Piece>, Self::Error>>> {
            self.most.fetch_max(self.alive.load(Ordering::SeqCst), Ordering::SeqCst);
            if self.left == 0 {
                return Poll::Ready(None);
            }
            self.left -= 1;
            self.alive.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(Some(Ok(Frame::data(Piece(Bytes::from(vec![0u8; 16 << 10]), self.alive.clone())))))
        }
    }

    #[tokio::test]
    async fn a_dropped_body_is_not_held_while_it_is_read() {
        let pieces = |n| {
            let most = Arc::new(AtomicUsize::new(0));
            (Pieces { left: n, alive: Arc::new(AtomicUsize::new(0)), most: most.clone() }, most)
        };
        // A megabyte: read to its end, one piece at a time.
        let (body, most) = pieces(64);
        assert!(dropped(body).await);
        assert!(most.load(Ordering::SeqCst) <= 1, "{} pieces held at once", most.load(Ordering::SeqCst));
        // One piece more: refused.
        let (body, _) = pieces(65);
        assert!(!dropped(body).await);
    }
}
