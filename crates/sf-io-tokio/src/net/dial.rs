//! The transport seam: how a connection attempt gets its byte stream.
//!
//! A [`Dialer`] turns a configured host into a connected byte stream; TLS
//! (for `wss::`) and the WebSocket upgrade then run over whatever it
//! returned. The default, [`TcpDialer`], is a plain tokio TCP connect.
//! Other dialers carry the same production path over a Unix socket, an
//! HTTP/SOCKS proxy tunnel, or a simulated network (turmoil), without a
//! copy of the connection code.
//!
//! A dialer only connects: it never retries, waits or decides anything
//! (the core does), and its failures are reported at the `tcp` stage.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;
use std::sync::Arc;

use sf_core::config::HostPort;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connected byte stream a QWP connection can run over.
///
/// Implemented for every `AsyncRead + AsyncWrite + Unpin + Send` type.
pub trait DialedStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> DialedStream for T {}

/// A dialed stream, type-erased so that the connection types stay the same
/// whatever the transport.
pub struct BoxedStream(Box<dyn DialedStream>);

impl BoxedStream {
    /// Erases the type of `stream`.
    pub fn new(stream: impl DialedStream) -> BoxedStream {
        BoxedStream(Box::new(stream))
    }
}

impl core::fmt::Debug for BoxedStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("BoxedStream")
    }
}

impl AsyncRead for BoxedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for BoxedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// The future a [`Dialer`] returns.
pub type DialFuture<'a> = Pin<Box<dyn Future<Output = io::Result<BoxedStream>> + Send + 'a>>;

/// Opens the byte stream of one connection attempt to one host.
///
/// Implemented by [`TcpDialer`] (the default) and by any
/// `Fn(HostPort) -> impl Future<Output = io::Result<S>>` closure whose
/// stream `S` is a [`DialedStream`], e.g.
///
/// ```no_run
/// use sf_io_tokio::net::Dialer;
/// use sf_core::config::HostPort;
///
/// // Every host name reaches the same local proxy port (illustrative).
/// fn proxy_dialer() -> impl Dialer {
///     |_host: HostPort| async move { tokio::net::TcpStream::connect(("127.0.0.1", 3128)).await }
/// }
/// ```
pub trait Dialer: Send + Sync + 'static {
    /// Connects to `host`. The error is reported to the core as a
    /// connect failure at the `tcp` stage; retrying is the core's call.
    fn dial<'a>(&'a self, host: &'a HostPort) -> DialFuture<'a>;
}

impl<F, Fut, S> Dialer for F
where
    F: Fn(HostPort) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<S>> + Send + 'static,
    S: DialedStream,
{
    fn dial<'a>(&'a self, host: &'a HostPort) -> DialFuture<'a> {
        let connecting = self(host.clone());
        Box::pin(async move { Ok(BoxedStream::new(connecting.await?)) })
    }
}

/// The default dialer: a tokio TCP connect (OS timeout) with Nagle off.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDialer;

impl Dialer for TcpDialer {
    fn dial<'a>(&'a self, host: &'a HostPort) -> DialFuture<'a> {
        Box::pin(async move {
            let tcp = TcpStream::connect((host.host(), host.port())).await?;
            // QWP frames and PINGs are latency-sensitive and already batched
            // by the producer; Nagle would only add delay.
            tcp.set_nodelay(true)?;
            Ok(BoxedStream::new(tcp))
        })
    }
}

/// A shared dialer, as [`super::ConnectSettings`] keeps it (cloned once per
/// connection attempt).
#[derive(Clone)]
pub(crate) struct SharedDialer(pub(crate) Arc<dyn Dialer>);

impl Default for SharedDialer {
    fn default() -> SharedDialer {
        SharedDialer(Arc::new(TcpDialer))
    }
}

impl core::fmt::Debug for SharedDialer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Dialer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The closure form of the seam: whatever stream the closure returns
    /// is what the connection reads and writes.
    #[tokio::test]
    async fn closure_dialer_hands_back_its_own_stream() {
        let (client, mut server) = tokio::io::duplex(64);
        let slot = std::sync::Mutex::new(Some(client));
        let dialer = move |_host: HostPort| {
            let s = slot.lock().ok().and_then(|mut g| g.take());
            async move { s.ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused)) }
        };
        let host = HostPort::new("anywhere", 1).expect("valid host");
        let mut stream = dialer.dial(&host).await.expect("first dial");
        stream.write_all(b"qwp").await.expect("write");
        let mut buf = [0u8; 3];
        server.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"qwp");
        let second = dialer.dial(&host).await;
        assert_eq!(
            second.err().map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionRefused),
            "a dialer's failure comes back as its io::Error"
        );
    }

    #[tokio::test]
    async fn tcp_dialer_reports_refused_connects_as_io_errors() {
        // Bind then drop: the port is (almost certainly) closed now.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let host = HostPort::new("127.0.0.1", port).expect("valid host");
        assert!(TcpDialer.dial(&host).await.is_err());
    }
}
