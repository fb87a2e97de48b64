//! The one list of target kinds: the configured kind (`kind = "…"` and that kind's own keys)
//! and the built target that delivers. A new kind is a file of its own plus a line in each
//! enum here; nothing outside `forward::targets` matches on a kind.

use std::fmt::Display;

use serde::{Deserialize, Serialize};

use super::{DeliveryError, Message, amqp, http, kafka, nats, redis};
use crate::secret_url::SecretUrl;

/// A target's kind with its kind-specific keys, as configured. The `kind` key picks the
/// variant, and each variant's struct refuses keys it does not know, so a key of another
/// kind is an error naming that key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TargetKind {
    Http(http::HttpConfig),
    Nats(nats::NatsConfig),
    Amqp(amqp::AmqpConfig),
    Redis(redis::RedisConfig),
    Kafka(kafka::KafkaConfig),
}

impl TargetKind {
    /// The kind as written in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            TargetKind::Http(_) => "http",
            TargetKind::Nats(_) => "nats",
            TargetKind::Amqp(_) => "amqp",
            TargetKind::Redis(_) => "redis",
            TargetKind::Kafka(_) => "kafka",
        }
    }

    /// Every problem with the kind's keys (URL scheme and syntax, templates, names, limits),
    /// found without connecting anywhere or building a client.
    pub fn check(&self, checks: &mut Checks<'_>) {
        match self {
            TargetKind::Http(config) => config.check(checks),
            TargetKind::Nats(config) => config.check(checks),
            TargetKind::Amqp(config) => config.check(checks),
            TargetKind::Redis(config) => config.check(checks),
            TargetKind::Kafka(config) => config.check(checks),
        }
    }

    /// A ready-to-deliver target; no connection is made yet.
    pub fn build(&self) -> Result<Target, String> {
        Ok(match self {
            TargetKind::Http(config) => Target::Http(config.build()?),
            TargetKind::Nats(config) => Target::Nats(config.build()?),
            TargetKind::Amqp(config) => Target::Amqp(config.build()?),
            TargetKind::Redis(config) => Target::Redis(config.build()?),
            TargetKind::Kafka(config) => Target::Kafka(config.build()?),
        })
    }
}

/// Where a kind's checks report, and what they need to know of the rest of the
/// configuration. Each problem is prefixed with the target's label, so it names the target
/// and then the key.
pub struct Checks<'a> {
    label: &'a str,
    /// `forward.lease_ms`: an attempt is cut off at 80% of it.
    pub lease_ms: u64,
    problems: &'a mut Vec<String>,
}

impl<'a> Checks<'a> {
    pub fn new(label: &'a str, lease_ms: u64, problems: &'a mut Vec<String>) -> Self {
        Self {
            label,
            lease_ms,
            problems,
        }
    }

    pub fn problem(&mut self, message: impl Display) {
        self.problems.push(format!("{}: {message}", self.label));
    }

    /// Reports `url` unless it starts with one of `schemes`; true when it does.
    pub fn url_scheme(&mut self, url: &SecretUrl, schemes: &[&str]) -> bool {
        let matches = schemes
            .iter()
            .any(|scheme| url.expose().starts_with(scheme));
        if !matches {
            self.problem(format_args!(
                "`url` must start with one of {schemes:?} (got {url})"
            ));
        }
        matches
    }

    /// Reports `result`'s error as a problem with the value of `key`.
    pub fn key(&mut self, key: &str, result: Result<(), String>) {
        if let Err(e) = result {
            self.problem(format_args!("`{key}`: {e}"));
        }
    }
}

/// One configured target, ready to deliver. Enum dispatch (no async_trait).
pub enum Target {
    Http(http::HttpTarget),
    Nats(nats::NatsTarget),
    Amqp(amqp::AmqpTarget),
    Redis(redis::RedisTarget),
    Kafka(kafka::KafkaTarget),
}

impl Target {
    /// Delivers `msg`; `Ok` only once the destination acknowledged it.
    pub async fn deliver(&self, msg: &Message<'_>) -> Result<(), DeliveryError> {
        let result = match self {
            Target::Http(t) => t.deliver(msg).await,
            Target::Nats(t) => t.deliver(msg).await,
            Target::Amqp(t) => t.deliver(msg).await,
            Target::Redis(t) => t.deliver(msg).await,
            Target::Kafka(t) => t
                .deliver_batch(std::slice::from_ref(msg))
                .await
                .pop()
                .unwrap_or_else(|| Err(DeliveryError::retryable("Kafka gave no outcome"))),
        };
        self.log(msg, &result);
        result
    }

    /// The target that takes a whole batch at once (Kafka: one produce request per
    /// partition), or `None` for the kinds that are sent message by message.
    pub fn batching(&self) -> Option<&kafka::KafkaTarget> {
        match self {
            Target::Kafka(t) => Some(t),
            _ => None,
        }
    }

    /// The log line of one delivery's outcome.
    pub fn log(&self, msg: &Message<'_>, result: &Result<(), DeliveryError>) {
        match result {
            Ok(()) => tracing::debug!(
                target_kind = self.kind(),
                event_id = msg.event_id,
                "forwarded"
            ),
            Err(e) => tracing::warn!(
                target_kind = self.kind(),
                event_id = msg.event_id,
                retryable = e.retryable,
                error = %e.message,
                "forward failed"
            ),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Target::Http(_) => "http",
            Target::Nats(_) => "nats",
            Target::Amqp(_) => "amqp",
            Target::Redis(_) => "redis",
            Target::Kafka(_) => "kafka",
        }
    }
}
