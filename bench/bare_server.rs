//! The benchmark ceiling: the same HTTPS stack as the receiver (axum on axum-server with
//! rustls/ring, TLS 1.3 and 1.2, ALPN h2 + http/1.1, keep-alive) doing only what no webhook
//! receiver can skip — verify the `X-Audian-Signature` HMAC-SHA256 of the raw body in
//! constant time, with the receiver's own verifier — and nothing else: no parsing, no
//! database, no forwarding. Answers `200 {"status":"ok"}`, or `401` when the signature does
//! not check out. Every figure in BENCHMARKS.md is a ratio to this server, measured in the
//! same run (`bench/run.sh`).
//!
//! `AUDIAN_WEBHOOK_SECRET=… cargo run --release --example bare_server -- --listen 127.0.0.1:8443`
//!
//! The certificate is self-signed and made at start (use `audian-loadgen --insecure`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use audian_receiver::intake::SIGNATURE_HEADER;
use audian_receiver::signing::Verifier;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use clap::Parser;

/// Bare HTTPS + HMAC webhook server: the baseline the receiver is measured against.
#[derive(Parser, Debug)]
#[command(name = "bare_server")]
struct Args {
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Path that accepts POSTs.
    #[arg(long, default_value = "/webhook")]
    path: String,
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let secret = std::env::var("AUDIAN_WEBHOOK_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .context("AUDIAN_WEBHOOK_SECRET must be set")?;
    let verifier = Arc::new(Verifier::new([secret.as_bytes()]));
    // The same runtime as `audian-receiver serve`: tokio's default multi-thread runtime.
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(serve(args, verifier))
}

async fn serve(args: Args, verifier: Arc<Verifier>) -> anyhow::Result<()> {
    // The receiver's own TLS configuration (TLS 1.3/1.2, ALPN h2 then http/1.1), with an
    // ephemeral certificate for localhost.
    let tls = audian_receiver::server::tls::self_signed()?;
    let app = Router::new()
        .route(&args.path, post(receive))
        .with_state(verifier);
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("--listen: cannot listen on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    println!(
        "bare_server listening on https://{}{}",
        args.listen, args.path
    );
    axum_server::from_tcp_rustls(listener, tls)?
        .serve(app.into_make_service())
        .await
        .context("listener failed")
}

async fn receive(
    State(verifier): State<Arc<Verifier>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let signature = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes());
    let (status, reply) = match verifier.verify(signature, body) {
        Ok(_) => (StatusCode::OK, r#"{"status":"ok"}"#),
        Err(_) => (StatusCode::UNAUTHORIZED, r#"{"error":"Invalid signature"}"#),
    };
    (status, [(header::CONTENT_TYPE, "application/json")], reply)
}
