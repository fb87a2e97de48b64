//! Forward targets: deliver one stored event to one configured destination and classify the
//! outcome. Each kind's file holds its config (keys, checks), its client and its send; what
//! they share is here.

pub mod amqp;
pub mod http;
pub mod kafka;
mod kinds;
pub mod nats;
pub mod redis;
mod window;

pub use kinds::{Checks, Target, TargetKind};

use std::sync::Once;
use std::time::Duration;

/// What one target is handed: the original body bytes, unchanged, plus metadata.
pub struct Message<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub received_at: time::OffsetDateTime,
    pub payload: &'a bytes::Bytes,
    /// hex HMAC-SHA256 of the payload with FORWARD_SIGNING_SECRET, precomputed by the caller; None when signing is off.
    pub signature: Option<&'a str>,
    /// W3C `traceparent` whose parent is this attempt's `forward.send` span.
    pub traceparent: &'a str,
    /// W3C `tracestate` from Audian's request, when it sent one.
    pub tracestate: Option<&'a str>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub retryable: bool,
    pub retry_after: Option<Duration>,
    pub message: String,
}

impl DeliveryError {
    /// A failure that may succeed later (broker down, 5xx, timeout...).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            retry_after: None,
            message: message.into(),
        }
    }

    /// A failure that retrying the same message cannot fix (4xx, oversized message...).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            retry_after: None,
            message: message.into(),
        }
    }
}

/// `{type}` in a template is replaced by the event type.
/// Callers validate templates at construction, so any other brace cannot appear here.
pub fn render_template(template: &str, event_type: &str) -> String {
    template.replace("{type}", event_type)
}

/// Rejects unknown `{...}` placeholders and unbalanced braces, so typos fail at startup, not per event.
pub fn validate_template(template: &str) -> Result<(), String> {
    validate_template_with(template, &["type"])
}

/// As [`validate_template`], with the placeholders `allowed` (names without braces).
pub fn validate_template_with(template: &str, allowed: &[&str]) -> Result<(), String> {
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        if rest[pos..].starts_with('}') {
            return Err(format!("unbalanced '}}' in template {template:?}"));
        }
        let after = &rest[pos + 1..];
        let Some(end) = after
            .find(['{', '}'])
            .filter(|&e| after[e..].starts_with('}'))
        else {
            return Err(format!("unbalanced '{{' in template {template:?}"));
        };
        let name = &after[..end];
        if !allowed.contains(&name) {
            let supported: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
            let supported = match supported.as_slice() {
                [one] => format!("only {one} is supported"),
                _ => format!("supported: {}", supported.join(", ")),
            };
            return Err(format!(
                "unknown placeholder {{{name}}} in template {template:?} ({supported})"
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// reqwest and the brokers' TLS stacks need a process-wide rustls provider; only ring is compiled in.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> Result<String, DeliveryError> {
    t.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            DeliveryError::permanent(format!("received_at cannot be formatted as RFC 3339: {e}"))
        })
}

/// Ids, types and signatures end up in protocol headers, where a control character could forge extra headers.
pub(crate) fn check_metadata(msg: &Message<'_>) -> Result<(), DeliveryError> {
    let fields = [
        ("event id", Some(msg.event_id)),
        ("event type", Some(msg.event_type)),
        ("signature", msg.signature),
        ("tracestate", msg.tracestate),
    ];
    for (name, value) in fields {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(DeliveryError::permanent(format!(
                "{name} contains a control character"
            )));
        }
    }
    Ok(())
}

/// Removes a URL's credentials (password, NATS token, secret query parameters) from error
/// text: client libraries may echo the URL they were given.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub(crate) fn for_url(url: &str) -> Self {
        Self {
            secrets: crate::secret_url::secret_values(url),
        }
    }

    pub(crate) fn scrub(&self, text: impl Into<String>) -> String {
        let mut text = text.into();
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }
}

/// Full error chain without Debug noise, so the cause ("connection refused") reaches the log line.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
