//! The public listener's accept loop, so every limit that protects the edge is ours to set:
//! connections held at once, the TLS handshake and header deadlines, idle keep-alive, the
//! header section's size and HTTP/2's streams and windows. A server is a function of its
//! listener and a shutdown token (mini-redis): it returns once every connection has ended
//! or the grace period is over.

use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum_server::tls_rustls::RustlsConfig;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::ServerSettings;

/// The connection-level limits, from `[server]`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub http2_max_streams: u32,
    pub shutdown_grace: Duration,
}

impl Limits {
    pub fn from_settings(server: &ServerSettings) -> Self {
        Self {
            max_connections: server.max_connections,
            header_timeout: Duration::from_millis(server.header_timeout_ms),
            idle_timeout: Duration::from_millis(server.idle_timeout_ms),
            max_header_bytes: server.max_header_bytes,
            http2_max_streams: server.http2_max_streams,
            shutdown_grace: server.shutdown_grace(),
        }
    }

    /// One builder for every connection. hyper's HTTP/1 header deadline covers the whole
    /// header section (not each line), and also runs while a keep-alive connection waits
    /// for its next request. The header buffer's cap is the header section's cap (431).
    /// HTTP/2 windows are kept small: a client can make the server hold at most one
    /// connection window of unread body bytes per connection. No HTTP/2 pings: they would
    /// count as activity and keep an idle connection open.
    fn builder(&self) -> Builder<TokioExecutor> {
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .max_buf_size(self.max_header_bytes.max(MIN_HTTP1_BUFFER));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.http2_max_streams)
            .max_header_list_size(self.max_header_bytes as u32)
            .initial_stream_window_size(HTTP2_WINDOW)
            .initial_connection_window_size(HTTP2_WINDOW)
            .max_pending_accept_reset_streams(self.http2_max_streams as usize);
        builder
    }
}

/// hyper refuses an HTTP/1 read buffer smaller than this.
const MIN_HTTP1_BUFFER: usize = 8192;
const HTTP2_WINDOW: u32 = 256 * 1024;

/// Serves `router` on `listener` until `shutdown` fires, then lets open requests finish
/// within the grace period.
pub async fn serve(
    listener: TcpListener,
    tls: Option<RustlsConfig>,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let builder = Arc::new(limits.builder());
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, mostly: wait for some to be released.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Past the limit a connection is closed at once: queuing it would only hold its
        // memory for longer. Audian retries a refused connection.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection refused: server.max_connections reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            peer,
            router: router.clone(),
            builder: builder.clone(),
            limits: limits.clone(),
            shutdown: shutdown.clone(),
        };
        let tls = tls.as_ref().map(RustlsConfig::get_inner);
        connections.spawn(async move {
            connection.run(stream, tls).await;
            drop(slot);
        });
    }
    tracing::info!(
        grace_ms = limits.shutdown_grace.as_millis() as u64,
        open = connections.len(),
        "shutting down: draining requests"
    );
    connections.close();
    if tokio::time::timeout(limits.shutdown_grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "grace period over: closing the connections still open"
        );
    }
}

struct Connection {
    peer: SocketAddr,
    router: Router,
    builder: Arc<Builder<TokioExecutor>>,
    limits: Limits,
    shutdown: CancellationToken,
}

impl Connection {
    async fn run(self, stream: TcpStream, tls: Option<Arc<rustls::ServerConfig>>) {
        let activity = Activity::default();
        let stream = Tracked {
            inner: stream,
            activity: activity.clone(),
        };
        match tls {
            None => self.drive(stream, activity).await,
            Some(config) => {
                let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                match tokio::time::timeout(self.limits.header_timeout, handshake).await {
                    Ok(Ok(stream)) => self.drive(stream, activity).await,
                    Ok(Err(error)) => {
                        tracing::debug!(peer = %self.peer, %error, "TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
                }
            }
        }
    }

    /// Serves one connection's requests until it closes, stays idle past the idle timeout,
    /// or the server shuts down; a connection asked to close gets the grace period to
    /// finish what it has in flight.
    async fn drive<I>(self, io: I, activity: Activity)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            peer,
            router,
            builder,
            limits,
            shutdown,
        } = self;
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let mut conn = pin!(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
        let mut tick = tokio::time::interval(limits.idle_timeout.min(Duration::from_secs(1)));
        let mut closing_by: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = shutdown.cancelled(), if closing_by.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    closing_by = Some(Instant::now() + limits.shutdown_grace);
                }
                _ = tick.tick() => match closing_by {
                    Some(deadline) if Instant::now() >= deadline => return,
                    Some(_) => {}
                    None if activity.idle_for() >= limits.idle_timeout => {
                        tracing::debug!(%peer, "closing an idle connection");
                        conn.as_mut().graceful_shutdown();
                        closing_by = Some(Instant::now() + limits.header_timeout);
                    }
                    None => {}
                },
            }
        }
    }
}

/// When a connection last moved a byte, in milliseconds since it opened.
#[derive(Clone)]
struct Activity {
    opened: Instant,
    last: Arc<AtomicU64>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            opened: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Activity {
    fn touch(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last)
    }
}

/// A socket that notes each read and write that moved bytes.
struct Tracked {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
