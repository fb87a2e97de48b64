//! HTTP forward target: POSTs the original webhook bytes and treats only a 2xx as delivered.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::window::{Signal, Window};
use super::{
    Checks, DeliveryError, Message, Redactor, error_chain, install_crypto_provider, rfc3339,
};
use crate::secret_url::SecretUrl;

/// Longest slice of a response body quoted in an error: enough to diagnose, too little to leak much.
const BODY_EXCERPT_CHARS: usize = 200;
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_MAX_IN_FLIGHT: usize = 16;

/// The keys of a `kind = "http"` target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub url: SecretUrl,
    /// Request timeout (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Requests outstanding at once (default 16): a downstream with a small accept backlog
    /// is not flooded with connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
}

impl HttpConfig {
    pub(super) fn check(&self, checks: &mut Checks<'_>) {
        if checks.url_scheme(&self.url, &["http://", "https://"]) {
            checks.key("url", parse_url(self.url.expose()).map(drop));
        }
        if self.max_in_flight == Some(0) {
            checks.problem("`max_in_flight` must be > 0");
        }
        // An attempt is cut off at 80% of the lease (so no other worker re-claims a row still
        // being sent); a longer timeout could never be waited out.
        if let Some(timeout) = self.timeout_ms
            && timeout.saturating_mul(5) >= checks.lease_ms.saturating_mul(4)
        {
            let lease = checks.lease_ms;
            checks.problem(format_args!(
                "`timeout_ms` ({timeout}) must be below 80% of forward.lease_ms ({lease})"
            ));
        }
    }

    pub fn build(&self) -> Result<HttpTarget, String> {
        let timeout = Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
        let in_flight = self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        HttpTarget::new(self.url.expose(), timeout, in_flight)
    }
}

pub struct HttpTarget {
    client: reqwest::Client,
    /// Bounds the requests (and so the connections) outstanding at once.
    in_flight: Window,
    url: Url,
    redactor: Redactor,
}

impl HttpTarget {
    pub fn new(url: &str, timeout: Duration, max_in_flight: usize) -> Result<Self, String> {
        let redactor = Redactor::for_url(url);
        let parsed = parse_url(url)?;
        install_crypto_provider();
        // A redirect would re-send the event to a URL nobody configured; surface it instead.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| redactor.scrub(error_chain(&e.without_url())))?;
        Ok(Self {
            client,
            in_flight: Window::new(max_in_flight),
            url: parsed,
            redactor,
        })
    }

    pub async fn deliver(&self, msg: &Message<'_>) -> Result<(), DeliveryError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("X-Audian-Event-Id", msg.event_id)
            .header("X-Audian-Event-Type", msg.event_type)
            .header("Idempotency-Key", msg.event_id)
            .header("X-Audian-Received-At", rfc3339(msg.received_at)?)
            .header("traceparent", msg.traceparent)
            .body(msg.payload.clone());
        if let Some(signature) = msg.signature {
            request = request.header("X-Receiver-Signature", signature);
        }
        if let Some(state) = msg.tracestate {
            request = request.header("tracestate", state);
        }
        let _slot = self.in_flight.enter().await;
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                // Not connected or not answered in time: the target is down or swamped.
                if error.is_connect() || error.is_timeout() {
                    self.in_flight.record(Signal::Overloaded);
                }
                return Err(self.transport_error(error));
            }
        };
        let status = response.status();
        self.in_flight.record(match status.as_u16() {
            429 | 503 => Signal::Overloaded,
            _ if status.is_success() || status.is_server_error() => Signal::Fine,
            _ => Signal::Neutral,
        });
        if status.is_success() {
            return Ok(());
        }
        Err(status_error(response).await)
    }

    fn transport_error(&self, err: reqwest::Error) -> DeliveryError {
        let permanent = err.is_builder();
        let timed_out = err.is_timeout();
        let text = self.redactor.scrub(error_chain(&err.without_url()));
        match (permanent, timed_out) {
            (true, _) => DeliveryError::permanent(format!("invalid HTTP request: {text}")),
            (false, true) => DeliveryError::retryable(format!("HTTP request timed out: {text}")),
            (false, false) => DeliveryError::retryable(format!("HTTP request failed: {text}")),
        }
    }
}

fn parse_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("invalid HTTP target URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "HTTP target URL must use http or https, not {:?}",
            parsed.scheme()
        ));
    }
    Ok(parsed)
}

async fn status_error(response: Response) -> DeliveryError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let excerpt = body_excerpt(response).await;
    let mut error = if status.is_redirection() {
        DeliveryError::permanent(format!(
            "HTTP {status}: redirects are not followed; configure the final URL{excerpt}"
        ))
    } else if is_retryable_status(status) {
        DeliveryError::retryable(format!("HTTP {status}{excerpt}"))
    } else {
        DeliveryError::permanent(format!("HTTP {status}{excerpt}"))
    };
    error.retry_after = retry_after;
    error
}

fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// Reads only the start of the body: an error page can be arbitrarily large.
async fn body_excerpt(mut response: Response) -> String {
    let mut raw = Vec::new();
    while raw.len() < BODY_EXCERPT_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => raw.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let mut excerpt: String = text.chars().take(BODY_EXCERPT_CHARS).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    format!(": {excerpt}")
}

/// Accepts delay-seconds and the IMF-fixdate HTTP-date form; a past date means "now".
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let date = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    let delta = date - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}
