//! The operator's console: server-rendered pages on the admin listener under `/console` —
//! every target's state at a glance, a target's failures, event search, an event's
//! timeline — with replay and forget behind a session and a CSRF token. Off unless
//! `AUDIAN_CONSOLE_TOKEN` is set. No script: every page works with JavaScript off.

mod history;
mod pages;
mod session;
mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use secrecy::SecretString;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::{ConsoleSettings, TargetSettings};
use crate::sealing::PayloadKeys;
use crate::telemetry::Metrics;
pub use history::History;
use session::Sessions;

const STYLESHEET: &str = include_str!("console.css");
/// No script at all, styles and images from this origin only, forms back to it only.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// What every page needs.
#[derive(Clone)]
pub struct Console {
    pool: PgPool,
    settings: ConsoleSettings,
    /// Each configured target's name and kind.
    targets: Arc<[(String, &'static str)]>,
    sessions: Sessions,
    history: History,
    metrics: Arc<Metrics>,
    payload_keys: PayloadKeys,
    previous_valid_until: Option<OffsetDateTime>,
}

/// Everything the console is built from.
pub struct Parts<'a> {
    pub pool: PgPool,
    pub token: SecretString,
    pub settings: &'a ConsoleSettings,
    pub targets: &'a [TargetSettings],
    pub metrics: Arc<Metrics>,
    pub payload_keys: PayloadKeys,
    pub previous_valid_until: Option<OffsetDateTime>,
}

impl Console {
    pub fn new(parts: Parts<'_>) -> Self {
        let names: Vec<String> = parts.targets.iter().map(|t| t.name.clone()).collect();
        Self {
            pool: parts.pool,
            settings: parts.settings.clone(),
            targets: parts
                .targets
                .iter()
                .map(|t| (t.name.clone(), t.kind.name()))
                .collect(),
            sessions: Sessions::new(
                parts.token,
                Duration::from_secs(parts.settings.session_minutes * 60),
            ),
            history: History::new(parts.metrics.clone(), names),
            metrics: parts.metrics,
            payload_keys: parts.payload_keys,
            previous_valid_until: parts.previous_valid_until,
        }
    }

    /// Samples the metrics for the overview's last hour until `shutdown`.
    pub fn spawn_history(&self, shutdown: CancellationToken) {
        tokio::spawn(self.history.clone().run(shutdown));
    }

    /// The console's routes, each answer with the console's security headers. The admin
    /// listener must be served with `ConnectInfo<SocketAddr>` (audit lines name the client).
    pub fn router(self) -> Router {
        Router::new()
            .route("/console", get(pages::overview))
            .route("/console/login", get(pages::login_form).post(pages::login))
            .route("/console/logout", post(pages::logout))
            .route("/console/target", get(pages::target))
            .route("/console/target/replay-dead", post(pages::replay_dead))
            .route("/console/events", get(pages::events))
            .route("/console/event", get(pages::event))
            .route("/console/event/replay", post(pages::replay_event))
            .route("/console/event/forget", post(pages::forget))
            .route("/console/assets/console.css", get(stylesheet))
            .with_state(self)
            .layer(axum::middleware::map_response(secure_headers))
    }
}

async fn stylesheet() -> ([(HeaderName, &'static str); 2], &'static str) {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLESHEET,
    )
}

async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
