//! A connection whose client stops accepting bytes is ended, not kept.
//!
//! hyper waits for a socket write as long as it stays pending; a client that sends a request
//! and never reads the answer would keep its connection, its task and the frames queued for
//! it forever. [`WriteDeadline`] fails a write that has made no progress for the deadline,
//! which ends the connection (and drops what was queued for it).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// I/O whose writes fail with [`io::ErrorKind::TimedOut`] once they have accepted no byte for
/// `limit` (reads are left alone: hyper's header read timeout bounds a request's arrival).
pub(crate) struct WriteDeadline<I> {
    io: I,
    limit: Duration,
    /// Armed when a write first stays pending; disarmed by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<I> WriteDeadline<I> {
    pub(crate) fn new(io: I, limit: Duration) -> Self {
        WriteDeadline {
            io,
            limit,
            stalled: None,
        }
    }

    /// Called when the inner write is pending: pending still, or the deadline passed.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client accepted no bytes for {} s; connection closed",
                    limit.as_secs_f64()
                ),
            ))),
        }
    }

    fn progress<T>(&mut self, cx: &mut Context<'_>, p: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match p {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let p = Pin::new(&mut self.io).poll_write(cx, buf);
        self.progress(cx, p)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let p = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.progress(cx, p)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let p = Pin::new(&mut self.io).poll_flush(cx);
        self.progress(cx, p)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let p = Pin::new(&mut self.io).poll_shutdown(cx);
        self.progress(cx, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_deadline_and_progress_rearms_it() {
        // A pipe whose other end never reads: writes block once its buffer is full.
        let (near, mut far) = tokio::io::duplex(1024);
        let mut io = WriteDeadline::new(near, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let chunk = vec![7u8; 4096];
        let err = io.write_all(&chunk).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        // A reader that keeps taking bytes, however slowly, never trips it.
        let (near, mut far2) = tokio::io::duplex(1024);
        let mut io = WriteDeadline::new(near, Duration::from_secs(2));
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt as _;
            let mut buf = [0u8; 512];
            let mut got = 0;
            while got < 8192 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                got += far2.read(&mut buf).await.unwrap();
            }
            got
        });
        io.write_all(&vec![1u8; 8192]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 8192);
        drop(far.shutdown().await);
    }
}

#[cfg(test)]
mod connection_tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use crate::http::{connection, State};
    use crate::{Catalog, NoServeReport};
    use airlock_load::names::NameMapper;

    /// A served connection (empty catalog) with `header_timeout`, and the client's end.
    async fn served(header_timeout: Duration) -> tokio::net::TcpStream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            catalog: Catalog {
                repos: Default::default(),
                blobs: Default::default(),
                files: Default::default(),
                mapper: NameMapper::default(),
            },
            reporter: Arc::new(NoServeReport),
            header_timeout,
        });
        tokio::spawn(async move {
            let (tcp, peer) = listener.accept().await.unwrap();
            let io = super::WriteDeadline::new(tcp, Duration::from_secs(60));
            let _ = connection(TokioIo::new(io), state, peer).await;
        });
        tokio::net::TcpStream::connect(addr).await.unwrap()
    }

    /// Reads until the server closes the connection; the time it took.
    async fn closed_within(mut c: tokio::net::TcpStream, bound: Duration) -> Duration {
        let started = Instant::now();
        let mut sink = Vec::new();
        let end = tokio::time::timeout(bound, c.read_to_end(&mut sink)).await;
        assert!(end.is_ok(), "the connection is still open after {bound:?}");
        started.elapsed()
    }

    #[tokio::test]
    async fn a_request_head_that_does_not_arrive_in_time_ends_the_connection() {
        // A byte at a time (slowloris): the head never completes.
        let mut c = served(Duration::from_millis(500)).await;
        let started = Instant::now();
        for b in b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" {
            if c.write_all(&[*b]).await.is_err() || started.elapsed() > Duration::from_secs(3) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        closed_within(c, Duration::from_secs(20)).await;
        // A client that connects and says nothing.
        let c = served(Duration::from_millis(500)).await;
        closed_within(c, Duration::from_secs(20)).await;
        // An idle keep-alive connection after an answered request.
        let mut c = served(Duration::from_millis(500)).await;
        c.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        closed_within(c, Duration::from_secs(20)).await;
    }
}
