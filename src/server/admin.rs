//! The private admin listener: liveness, readiness and Prometheus metrics. Plain HTTP, meant
//! for a private address only.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use sqlx::PgPool;

use crate::intake::refusal::Refusal;
use crate::store;
use crate::telemetry::Metrics;

#[derive(Clone)]
struct Admin {
    pool: PgPool,
    metrics: Arc<Metrics>,
}

/// The admin routes, with the console's mounted when it is on.
pub fn router(pool: PgPool, metrics: Arc<Metrics>, console: Option<Router>) -> Router {
    let admin = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(|| async { Refusal::NotFound })
        .method_not_allowed_fallback(|| async { Refusal::MethodNotAllowed })
        .with_state(Admin { pool, metrics });
    match console {
        Some(console) => console.merge(admin),
        None => admin,
    }
}

/// Alive: the process answers.
async fn healthz() -> impl IntoResponse {
    json(StatusCode::OK, r#"{"status":"ok"}"#)
}

/// Ready: the database answers and every migration is applied.
async fn readyz(State(admin): State<Admin>) -> impl IntoResponse {
    if store::is_ready(&admin.pool).await {
        json(StatusCode::OK, r#"{"status":"ready"}"#)
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"unavailable"}"#,
        )
    }
}

async fn metrics_text(State(admin): State<Admin>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.metrics.render(),
    )
}

fn json(status: StatusCode, body: &'static str) -> impl IntoResponse {
    (status, [(header::CONTENT_TYPE, "application/json")], body)
}
