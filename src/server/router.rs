//! The public router and its layers: request id, one log line per request (headers that
//! carry secrets marked sensitive) in a span joined to Audian's trace, panic catching, load shedding, the guard. Public so the
//! refusal table can be tested with `oneshot`, without a listener or a database.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, Response, header};
use axum::middleware::Next;
use axum::routing::post;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::guard::{self, Guard};
use super::shed::{self, Shed};
use crate::config::ServerSettings;
use crate::intake::refusal::Drain;
use crate::intake::refusal::Refusal;
use crate::intake::{self, Intake};
use crate::telemetry::Metrics;
use crate::telemetry::traces::{self, TraceContext};

/// `POST {server.path}` → the intake; everything else → 404/405 with the contract's JSON
/// bodies. The guard's housekeeping task is started here: call it inside a Tokio runtime.
pub fn public(settings: &ServerSettings, intake: Intake, metrics: Arc<Metrics>) -> Router {
    let guard = Guard::new(settings, metrics.clone());
    guard.spawn_housekeeping();
    let drain = Drain::new(
        settings.drain_bytes(),
        settings.body_timeout(),
        metrics.drained_bytes.clone(),
    );
    let shed = Shed::new(settings.max_concurrent_requests, metrics);
    let request_id = HeaderName::from_static("x-request-id");
    let sensitive = [
        header::AUTHORIZATION,
        header::COOKIE,
        HeaderName::from_static(intake::SIGNATURE_HEADER),
    ];
    Router::new()
        .route(&settings.path, post(intake::receive))
        .fallback(|request: Request| async { Refusal::NotFound.answer_request(request) })
        .method_not_allowed_fallback(|request: Request| async {
            Refusal::MethodNotAllowed.answer_request(request)
        })
        .with_state(intake)
        .layer(
            ServiceBuilder::new()
                .layer(Extension(drain))
                .layer(SetSensitiveRequestHeadersLayer::new(sensitive))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_request(())
                        .on_response(log_response)
                        .on_failure(()),
                )
                .layer(axum::middleware::from_fn(stamp_trace))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::custom(|_| internal_error()))
                .layer(axum::middleware::from_fn_with_state(shed, shed::check))
                .layer(axum::middleware::from_fn_with_state(guard, guard::check)),
        )
}

fn request_span<B>(request: &axum::http::Request<B>) -> Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        client_ip = tracing::field::Empty,
        event_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    // Audian's trace, when it sent a valid one, is the exported span's parent: set before
    // the span is first entered.
    let incoming = TraceContext::from_headers(request.headers());
    traces::adopt(&span, incoming.as_ref());
    span
}

/// Inside the request span: its own trace context, recorded on it (so every line of the
/// request carries `trace_id` and `span_id`) and handed to the handler, which stores it.
async fn stamp_trace(mut request: Request, next: Next) -> axum::response::Response {
    let incoming = TraceContext::from_headers(request.headers());
    let context = traces::context_of(&Span::current(), incoming.as_ref());
    if incoming.is_none() && request.headers().contains_key("traceparent") {
        tracing::debug!("malformed traceparent ignored; a new trace starts");
    }
    request.extensions_mut().insert(context);
    next.run(request).await
}

fn log_response<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_us = latency.as_micros() as u64,
        "request finished"
    );
}

/// A panic is a bug; the client still gets a generic body, never the panic text.
fn internal_error() -> axum::response::Response {
    tracing::error!("handler panicked");
    axum::response::IntoResponse::into_response(Refusal::Internal)
}
