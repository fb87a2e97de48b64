//! Connections to the receiver: resolving the target once, opening HTTP/1.1 connections
//! (plain or TLS), and one request/response exchange, with failures classified by kind.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::http::header::HeaderValue;
use hyper::http::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use crate::Args;
use crate::tls::tls_connector;

pub(super) type Sender = SendRequest<Full<Bytes>>;

/// Where to connect and what to put on the request line; resolved once so reconnects skip DNS.
pub(super) struct Target {
    addr: std::net::SocketAddr,
    pub(super) authority: HeaderValue,
    pub(super) path: Uri,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Target {
    pub(super) async fn resolve(args: &Args) -> Result<Self> {
        let uri: Uri = args
            .url
            .parse()
            .with_context(|| format!("invalid --url {}", args.url))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => bail!("--url must start with http:// or https://"),
        };
        let authority = uri.authority().context("--url has no host")?;
        // Uri keeps IPv6 literals bracketed; sockets and SNI want them bare.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} resolved to no address"))?;
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse::<Uri>()?;
        let tls = if https {
            Some(tls_connector(args, host)?)
        } else {
            None
        };
        Ok(Self {
            addr,
            authority: HeaderValue::from_str(authority.as_str())?,
            path,
            tls,
        })
    }
}

/// Error from one attempt, classified so the summary can group them.
pub(super) struct Failure {
    pub(super) kind: &'static str,
    pub(super) detail: String,
}

impl Failure {
    pub(super) fn new(kind: &'static str, detail: impl std::fmt::Display) -> Self {
        Self {
            kind,
            detail: detail.to_string(),
        }
    }
}

pub(super) async fn connect(target: &Target) -> Result<Sender, Failure> {
    let tcp = TcpStream::connect(target.addr)
        .await
        .map_err(|e| Failure::new("connect", e))?;
    // Requests are small and sent one at a time per connection; Nagle would only add delay.
    let _ = tcp.set_nodelay(true);
    match &target.tls {
        None => handshake(TokioIo::new(tcp)).await,
        Some((connector, name)) => {
            let tls = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| Failure::new("tls", e))?;
            handshake(TokioIo::new(tls)).await
        }
    }
}

async fn handshake<T>(io: T) -> Result<Sender, Failure>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(io)
        .await
        .map_err(|e| Failure::new("handshake", e))?;
    // The connection future drives the socket; its errors surface through the sender.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Opens all connections before the clock starts so handshakes are not part of the
/// measurement. Fails only if none can be opened (then the error is a setup problem).
pub(super) async fn open_initial(
    target: &Arc<Target>,
    count: usize,
) -> Result<Vec<Option<Sender>>> {
    let mut set = JoinSet::new();
    for _ in 0..count {
        let target = Arc::clone(target);
        set.spawn(async move { connect(&target).await });
    }
    let mut senders = Vec::with_capacity(count);
    let mut first_failure = None;
    while let Some(joined) = set.join_next().await {
        match joined.context("connect task panicked")? {
            Ok(sender) => senders.push(Some(sender)),
            Err(failure) => {
                first_failure.get_or_insert(failure);
                senders.push(None);
            }
        }
    }
    match first_failure {
        Some(f) if senders.iter().all(Option::is_none) => {
            bail!("cannot open any connection: {}: {}", f.kind, f.detail)
        }
        Some(f) => eprintln!(
            "warning: some connections failed ({}: {}); will retry",
            f.kind, f.detail
        ),
        None => {}
    }
    Ok(senders)
}

pub(super) async fn exchange(
    sender: &mut Sender,
    req: Request<Full<Bytes>>,
) -> Result<u16, Failure> {
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Failure::new("send", e))?;
    let status = resp.status().as_u16();
    // Drain the body so the connection can carry the next request.
    resp.into_body()
        .collect()
        .await
        .map_err(|e| Failure::new("body", e))?;
    Ok(status)
}
