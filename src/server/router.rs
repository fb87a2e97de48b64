//! The public router and its layers: request id, one log line per request (headers that
//! carry secrets marked sensitive), panic catching, load shedding, the guard. Public so the
//! refusal table can be tested with `oneshot`, without a listener or a database.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, Response, header};
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
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        client_ip = tracing::field::Empty,
        event_id = tracing::field::Empty,
    )
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
