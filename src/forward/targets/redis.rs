//! Redis Streams forward target: XADDs one entry per event and treats the returned entry id as the ack.

use std::time::Duration;

use redis::IntoConnectionInfo;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::{Checks, DeliveryError, Message, Redactor, error_chain, rfc3339};
use crate::secret_url::SecretUrl;

/// Bounds connects and replies so a dead server fails a delivery instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The keys of a `kind = "redis"` target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: SecretUrl,
    /// The stream key entries are added to.
    pub stream: String,
}

impl RedisConfig {
    pub(super) fn check(&self, checks: &mut Checks<'_>) {
        if checks.url_scheme(&self.url, &["redis://", "rediss://"]) {
            let url = self.url.expose();
            checks.key("url", parse_url(url, &Redactor::for_url(url)).map(drop));
        }
        checks.key("stream", check_stream(&self.stream));
    }

    pub fn build(&self) -> Result<RedisTarget, String> {
        RedisTarget::new(self.url.expose(), &self.stream)
    }
}

pub struct RedisTarget {
    client: redis::Client,
    stream: String,
    redactor: Redactor,
    /// Built on first delivery (it needs a running Tokio runtime); it reconnects by itself after drops.
    manager: OnceCell<ConnectionManager>,
}

impl RedisTarget {
    pub fn new(url: &str, stream: &str) -> Result<Self, String> {
        let redactor = Redactor::for_url(url);
        check_stream(stream)?;
        super::install_crypto_provider();
        let client = redis::Client::open(parse_url(url, &redactor)?)
            .map_err(|e| redactor.scrub(format!("invalid Redis URL: {}", error_chain(&e))))?;
        Ok(Self {
            client,
            stream: stream.to_owned(),
            redactor,
            manager: OnceCell::new(),
        })
    }

    pub async fn deliver(&self, msg: &Message<'_>) -> Result<(), DeliveryError> {
        let mut command = redis::cmd("XADD");
        command
            .arg(&self.stream)
            .arg("*")
            .arg("id")
            .arg(msg.event_id)
            .arg("type")
            .arg(msg.event_type)
            .arg("received_at")
            .arg(rfc3339(msg.received_at)?)
            .arg("payload")
            .arg(msg.payload.as_ref());
        if let Some(signature) = msg.signature {
            command.arg("signature").arg(signature);
        }
        command.arg("traceparent").arg(msg.traceparent);
        if let Some(state) = msg.tracestate {
            command.arg("tracestate").arg(state);
        }
        let mut connection = self.manager()?.clone();
        let entry_id: String = command.query_async(&mut connection).await.map_err(|e| {
            let text = self.redactor.scrub(error_chain(&e));
            DeliveryError::retryable(format!("Redis XADD failed: {text}"))
        })?;
        tracing::debug!(target_kind = "redis", event_id = msg.event_id, entry_id = %entry_id, "XADD acknowledged");
        Ok(())
    }

    fn manager(&self) -> Result<&ConnectionManager, DeliveryError> {
        if let Some(manager) = self.manager.get() {
            return Ok(manager);
        }
        // Few, short reconnect retries: the worker's own retry loop owns the long backoff.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| DeliveryError::retryable(format!("Redis client setup failed: {e}")))?;
        // A concurrent first delivery may have won the race; either manager is fine.
        let _ = self.manager.set(manager);
        self.manager
            .get()
            .ok_or_else(|| DeliveryError::retryable("Redis connection manager unavailable"))
    }
}

/// The URL's connection details; parsing only, nothing connects.
fn parse_url(url: &str, redactor: &Redactor) -> Result<redis::ConnectionInfo, String> {
    url.into_connection_info()
        .map_err(|e| redactor.scrub(format!("invalid Redis URL: {}", error_chain(&e))))
}

fn check_stream(stream: &str) -> Result<(), String> {
    if stream.is_empty() {
        return Err("Redis stream name is empty".into());
    }
    Ok(())
}
