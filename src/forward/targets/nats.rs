//! NATS JetStream forward target: publishes to an operator-provisioned stream and waits for the PubAck.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind};
use async_nats::{ConnectOptions, HeaderMap};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{
    Checks, DeliveryError, Message, Redactor, check_metadata, error_chain, install_crypto_provider,
    render_template, rfc3339, validate_template,
};
use crate::secret_url::SecretUrl;

/// Bounds connect and PubAck waits so a dead server fails a delivery instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The keys of a `kind = "nats"` target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    pub url: SecretUrl,
    /// Subject template; `{type}` is replaced by the event type. A JetStream stream must
    /// capture the subjects it makes.
    pub subject: String,
}

impl NatsConfig {
    pub(super) fn check(&self, checks: &mut Checks<'_>) {
        checks.url_scheme(&self.url, &["nats://", "tls://"]);
        checks.key("subject", check_subject_template(&self.subject));
    }

    pub fn build(&self) -> Result<NatsTarget, String> {
        NatsTarget::new(self.url.expose(), &self.subject)
    }
}

pub struct NatsTarget {
    url: String,
    subject_template: String,
    redactor: Redactor,
    /// None until the first delivery, and again after the client has shut down for good.
    context: Mutex<Option<jetstream::Context>>,
}

impl NatsTarget {
    pub fn new(url: &str, subject_template: &str) -> Result<Self, String> {
        check_subject_template(subject_template)?;
        if url.trim().is_empty() {
            return Err("NATS URL is empty".into());
        }
        Ok(Self {
            url: url.to_owned(),
            subject_template: subject_template.to_owned(),
            redactor: Redactor::for_url(url),
            context: Mutex::new(None),
        })
    }

    pub async fn deliver(&self, msg: &Message<'_>) -> Result<(), DeliveryError> {
        let subject = render_template(&self.subject_template, msg.event_type);
        check_subject(&subject).map_err(|e| DeliveryError::permanent(format!("NATS {e}")))?;
        check_metadata(msg)?;
        let headers = headers(msg)?;
        let context = self.context().await?;
        let outcome = async {
            let ack = context
                .publish_with_headers(subject.clone(), headers, msg.payload.clone())
                .await?;
            ack.await
        }
        .await;
        match outcome {
            Ok(ack) => {
                tracing::debug!(target_kind = "nats", event_id = msg.event_id, stream = %ack.stream,
                    duplicate = ack.duplicate, "JetStream PubAck");
                Ok(())
            }
            Err(err) => Err(self.publish_error(err, &subject).await),
        }
    }

    /// The client reconnects by itself after drops; we only rebuild it once it is closed for good.
    async fn context(&self) -> Result<jetstream::Context, DeliveryError> {
        let mut slot = self.context.lock().await;
        if let Some(context) = slot.as_ref() {
            return Ok(context.clone());
        }
        install_crypto_provider();
        let client = ConnectOptions::new()
            .connection_timeout(TIMEOUT)
            .request_timeout(Some(TIMEOUT))
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis((attempt as u64).saturating_mul(250).min(5_000))
            })
            .connect(self.url.as_str())
            .await
            .map_err(|e| {
                DeliveryError::retryable(format!(
                    "NATS connect failed: {}",
                    self.redactor.scrub(error_chain(&e))
                ))
            })?;
        tracing::info!(target_kind = "nats", "connected to NATS");
        let mut context = jetstream::new(client);
        context.set_timeout(TIMEOUT);
        *slot = Some(context.clone());
        Ok(context)
    }

    async fn publish_error(
        &self,
        err: jetstream::context::PublishError,
        subject: &str,
    ) -> DeliveryError {
        let text = self.redactor.scrub(error_chain(&err));
        match err.kind() {
            PublishErrorKind::StreamNotFound => DeliveryError::retryable(format!(
                "no JetStream stream captures subject {subject:?} (no responders); \
                 the operator must create one: {text}"
            )),
            PublishErrorKind::MaxPayloadExceeded => {
                DeliveryError::permanent(format!("NATS rejected the message: {text}"))
            }
            PublishErrorKind::BrokenPipe => {
                // The client's connection task is gone; build a fresh client next time.
                *self.context.lock().await = None;
                DeliveryError::retryable(format!("NATS connection lost: {text}"))
            }
            _ => DeliveryError::retryable(format!("NATS publish failed: {text}")),
        }
    }
}

fn headers(msg: &Message<'_>) -> Result<HeaderMap, DeliveryError> {
    let mut headers = HeaderMap::new();
    // JetStream deduplicates on Nats-Msg-Id within the stream's duplicate window.
    headers.insert("Nats-Msg-Id", msg.event_id);
    headers.insert("X-Audian-Event-Id", msg.event_id);
    headers.insert("X-Audian-Event-Type", msg.event_type);
    headers.insert("X-Audian-Received-At", rfc3339(msg.received_at)?.as_str());
    if let Some(signature) = msg.signature {
        headers.insert("X-Receiver-Signature", signature);
    }
    headers.insert("traceparent", msg.traceparent);
    if let Some(state) = msg.tracestate {
        headers.insert("tracestate", state);
    }
    Ok(headers)
}

fn check_subject_template(template: &str) -> Result<(), String> {
    validate_template(template)?;
    check_subject(&render_template(template, "event"))
        .map_err(|e| format!("invalid NATS subject template: {e}"))
}

/// A publish subject must be non-empty dot-separated tokens without wildcards or whitespace.
fn check_subject(subject: &str) -> Result<(), String> {
    let bad_token = subject
        .split('.')
        .any(|t| t.is_empty() || t == "*" || t == ">");
    if subject.is_empty() || bad_token || subject.chars().any(|c| c.is_whitespace()) {
        return Err(format!(
            "subject {subject:?} is not a valid publish subject"
        ));
    }
    Ok(())
}
