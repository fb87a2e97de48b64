//! The public router and its layers: request id, one log line per request (headers that
//! carry secrets marked sensitive), panic catching, the guard.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::guard::{self, Guard};
use crate::intake::{self, Intake, Refusal};

/// `POST {path}` → the intake; everything else → 404/405 with the contract's JSON bodies.
pub fn public(path: &str, intake: Intake, guard: Arc<Guard>) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let sensitive = [
        header::AUTHORIZATION,
        header::COOKIE,
        HeaderName::from_static(intake::SIGNATURE_HEADER),
    ];
    Router::new()
        .route(path, post(intake::receive))
        .fallback(|| async { Refusal::NotFound })
        .method_not_allowed_fallback(|| async { Refusal::MethodNotAllowed })
        .with_state(intake)
        .layer(
            ServiceBuilder::new()
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
                .layer(axum::middleware::from_fn_with_state(guard, guard::check)),
        )
}

fn request_span<B>(request: &Request<B>) -> Span {
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
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":"Internal error"}"#,
    )
        .into_response()
}
