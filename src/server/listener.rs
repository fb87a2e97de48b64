//! The public listener's accept loop, so every limit that protects the edge is ours to set:
//! connections held at once, the TLS handshake and header deadlines, idle keep-alive, the
//! header section's size and HTTP/2's streams and windows. A server is a function of its
//! listener and a shutdown token (mini-redis): it returns once every connection has ended
//! or the grace period is over.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum_server::tls_rustls::RustlsConfig;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::ServerSettings;
use crate::telemetry::Metrics;

/// The connection-level limits, from `[server]`.
#[derive(Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub http2_max_streams: u32,
    pub shutdown_grace: Duration,
    pub metrics: Arc<Metrics>,
}

impl Limits {
    pub fn from_settings(server: &ServerSettings, metrics: Arc<Metrics>) -> Self {
        Self {
            max_connections: server.max_connections,
            handshake_timeout: Duration::from_millis(server.handshake_timeout_ms),
            header_timeout: Duration::from_millis(server.header_timeout_ms),
            idle_timeout: Duration::from_millis(server.idle_timeout_ms),
            max_header_bytes: server.max_header_bytes,
            http2_max_streams: server.http2_max_streams,
            shutdown_grace: server.shutdown_grace(),
            metrics,
        }
    }

    /// One builder for every connection. hyper's HTTP/1 header deadline covers the whole
    /// header section (not each line) of every request after the first; the first one is
    /// held to the connection's own deadline (`Requests`). The header buffer's cap is the
    /// header section's cap (431). HTTP/2 windows are kept small: a client can make the
    /// server hold at most one connection window of unread body bytes per connection. No
    /// HTTP/2 pings from us: idleness is judged by open requests, not by traffic.
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
/// After a deadline's GOAWAY (or HTTP/1.1 close), how long the connection has to go before
/// it is dropped: nothing is in flight on it by then, so only the goodbye is waited for.
const GOODBYE: Duration = Duration::from_millis(500);

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
        let reason = match tls {
            None => self.drive(stream).await,
            Some(config) => {
                let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                match tokio::time::timeout(self.limits.handshake_timeout, handshake).await {
                    Ok(Ok(stream)) => self.drive(stream).await,
                    Ok(Err(error)) => {
                        tracing::debug!(peer = %self.peer, %error, "TLS handshake failed");
                        "handshake_failed"
                    }
                    Err(_) => {
                        tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                        "handshake_timeout"
                    }
                }
            }
        };
        self.limits.metrics.count_close(reason);
    }

    /// Serves one connection's requests until it closes, misses a deadline (no first
    /// request within the header timeout, no request open for the idle timeout), or the
    /// server shuts down. A connection asked to close gets the grace period to finish what
    /// it has in flight. Returns why it closed.
    async fn drive<I>(&self, io: I) -> &'static str
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (peer, limits) = (self.peer, &self.limits);
        let requests = Requests::default();
        let service = {
            let (router, requests) = (self.router.clone(), requests.clone());
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let open = requests.open();
                let answer = router.clone().oneshot(request);
                async move {
                    let answer = answer.await;
                    drop(open);
                    answer
                }
            })
        };
        let mut conn = pin!(
            self.builder
                .serve_connection_with_upgrades(TokioIo::new(io), service)
        );
        let mut closing: Option<(&'static str, Instant)> = None;
        loop {
            let wake_at = match closing {
                Some((_, by)) => by,
                None => requests.deadline(limits),
            };
            tokio::select! {
                _ = conn.as_mut() => return closing.map_or("ended", |(reason, _)| reason),
                _ = self.shutdown.cancelled(), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(("shutdown", Instant::now() + limits.shutdown_grace));
                }
                _ = tokio::time::sleep_until(wake_at) => match closing {
                    Some((reason, _)) => return reason,
                    None => if let Some(reason) = requests.overdue(limits) {
                        tracing::debug!(%peer, reason, "closing a connection without a request");
                        conn.as_mut().graceful_shutdown();
                        closing = Some((reason, Instant::now() + GOODBYE));
                    },
                },
            }
        }
    }
}

/// What a connection's deadlines are judged by: whether it has sent a request yet, how many
/// are open, and when the last one ended — never by bytes, which a client can trickle.
#[derive(Clone)]
struct Requests(Arc<RequestsInner>);

struct RequestsInner {
    /// The end of the handshake: the header deadline counts from here.
    opened: Instant,
    /// Requests open, in the low 32 bits; requests ever started, in the high 32.
    counts: AtomicU64,
    /// When the last request ended, in milliseconds after `opened`.
    last_end_ms: AtomicU64,
}

const STARTED: u64 = 1 << 32;
const OPEN_MASK: u64 = STARTED - 1;

impl Default for Requests {
    fn default() -> Self {
        Self(Arc::new(RequestsInner {
            opened: Instant::now(),
            counts: AtomicU64::new(0),
            last_end_ms: AtomicU64::new(0),
        }))
    }
}

impl Requests {
    /// Counts a request as open until the guard is dropped.
    fn open(&self) -> OpenRequest {
        // The started count saturates in practice never: 2^32 requests on one connection.
        self.0.counts.fetch_add(STARTED | 1, Ordering::Relaxed);
        OpenRequest(self.clone())
    }

    /// When a deadline would next fall due, as things stand now. Requests can only move it
    /// later, so waking at it and asking again is enough.
    fn deadline(&self, limits: &Limits) -> Instant {
        let counts = self.0.counts.load(Ordering::Relaxed);
        if counts == 0 {
            self.0.opened + limits.header_timeout.min(limits.idle_timeout)
        } else if counts & OPEN_MASK == 0 {
            let last_end = Duration::from_millis(self.0.last_end_ms.load(Ordering::Relaxed));
            self.0.opened + last_end + limits.idle_timeout
        } else {
            Instant::now() + limits.idle_timeout
        }
    }

    /// The deadline missed, if one is.
    fn overdue(&self, limits: &Limits) -> Option<&'static str> {
        if self.deadline(limits) > Instant::now() {
            return None;
        }
        let counts = self.0.counts.load(Ordering::Relaxed);
        Some(
            if counts == 0 && limits.header_timeout <= limits.idle_timeout {
                "header_timeout"
            } else {
                "idle_timeout"
            },
        )
    }
}

struct OpenRequest(Requests);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        let inner = &self.0.0;
        let now = inner.opened.elapsed().as_millis() as u64;
        inner.last_end_ms.fetch_max(now, Ordering::Relaxed);
        inner.counts.fetch_sub(1, Ordering::Relaxed);
    }
}
