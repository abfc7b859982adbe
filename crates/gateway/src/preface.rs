//! The first bytes of a client connection, looked at before hyper: an
//! HTTP/2 client with prior knowledge opens with `PRI * HTTP/2.0`, which
//! hyper (serving HTTP/1.1 only) drops without a word. Such a client gets a
//! 400 that says why ([`crate::answer::HTTP2_PREFACE`]); anything else goes
//! on unchanged.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

const H2_START: &[u8] = b"PRI ";

/// Read the connection's first bytes (within `wait`). `None` when the
/// connection is done with: closed, too slow, or HTTP/2 (answered).
pub(crate) async fn screen<IO>(mut io: IO, wait: Duration) -> Option<Rewind<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = [0u8; H2_START.len()];
    let mut n = 0;
    let read = async {
        while n < head.len() {
            match io.read(&mut head[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
            if !H2_START.starts_with(&head[..n]) {
                break;
            }
        }
    };
    if tokio::time::timeout(wait, read).await.is_err() || n == 0 {
        return None;
    }
    if &head[..n] == H2_START {
        let _ = io.write_all(crate::answer::HTTP2_PREFACE).await;
        let _ = io.shutdown().await;
        return None;
    }
    Some(Rewind { prefix: head, start: 0, end: n, inner: io })
}

/// A stream whose first bytes were already read: they come out first.
pub(crate) struct Rewind<IO> {
    prefix: [u8; H2_START.len()],
    start: usize,
    end: usize,
    inner: IO,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.start < self.end {
            let n = (self.end - self.start).min(buf.remaining());
            let start = self.start;
            buf.put_slice(&self.prefix[start..start + n]);
            self.start += n;
            // Read on into the same buffer: given only the sniffed bytes,
            // hyper would find the head incomplete and grow its read buffer
            // to 16 KB for the rest, which an idle long-poll then holds.
            // Pending has registered the waker; an error ends the connection
            // on a later read.
            if self.start == self.end && buf.remaining() > 0 {
                let _ = Pin::new(&mut self.inner).poll_read(cx, buf);
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

crate::passthrough::write_through!(Rewind);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn http2_gets_a_400() {
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
        assert!(screen(server, Duration::from_secs(5)).await.is_none());
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{}", String::from_utf8_lossy(&answer));
    }

    #[tokio::test]
    async fn the_first_read_after_the_sniffed_bytes_holds_the_whole_head() {
        // hyper grows its read buffer from 8 to 16 KB when a first read
        // leaves the head incomplete: each idle long-poll would hold 8 KB more.
        let head = b"POST /Microsoft-Server-ActiveSync?Cmd=Ping HTTP/1.1\r\nHost: mail\r\nContent-Length: 0\r\n\r\n";
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(head).await.unwrap();
        let mut rewound = screen(server, Duration::from_secs(5)).await.expect("HTTP/1.1 goes on");
        let mut buf = [0u8; 8192];
        let n = rewound.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &head[..]);
    }

    #[tokio::test]
    async fn http1_passes_whole() {
        for first in [&b"GET /owa/ HTTP/1.1\r\n\r\n"[..], b"P", b"PR", b"POST /x HTTP/1.1\r\n\r\n"] {
            let (mut client, server) = tokio::io::duplex(1024);
            client.write_all(first).await.unwrap();
            client.shutdown().await.unwrap();
            let mut rewound = screen(server, Duration::from_secs(5)).await.expect("HTTP/1.1 goes on");
            let mut all = Vec::new();
            rewound.read_to_end(&mut all).await.unwrap();
            assert_eq!(all, first);
        }
    }
}
