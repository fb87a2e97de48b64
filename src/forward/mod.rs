//! Forwarding recorded events to downstream targets: each target reads the events log
//! through its own cursor, and failed events are retried from rows of their own.

mod gauges;
mod listen;
mod retry;
mod send;
pub mod targets;
mod worker;

pub use retry::{Next, RetryPolicy};
pub use targets::validate_template;
pub use worker::{Forwarder, Step};

use std::time::Duration;

use crate::config::{TargetKind, TargetSettings};
use targets::Target;

/// Builds a ready-to-deliver target from its settings (no connection is made yet). The
/// error names the target and the key.
pub fn build_target(settings: &TargetSettings) -> Result<Target, String> {
    let name = &settings.name;
    let url = settings
        .url
        .as_ref()
        .map(|u| u.expose())
        .ok_or_else(|| format!("target `{name}`: missing `url`"))?;
    let required = |key: &str, value: &Option<String>| {
        value
            .clone()
            .ok_or_else(|| format!("target `{name}`: missing `{key}`"))
    };
    let built = match settings.kind {
        TargetKind::Http => {
            let timeout = Duration::from_millis(settings.timeout_ms.unwrap_or(10_000));
            let in_flight = settings.max_in_flight.unwrap_or(16);
            targets::http::HttpTarget::new(url, timeout, in_flight).map(Target::Http)
        }
        TargetKind::Nats => {
            targets::nats::NatsTarget::new(url, &required("subject", &settings.subject)?)
                .map(Target::Nats)
        }
        TargetKind::Amqp => targets::amqp::AmqpTarget::new(
            url,
            &required("exchange", &settings.exchange)?,
            &required("routing_key", &settings.routing_key)?,
        )
        .map(Target::Amqp),
        TargetKind::Redis => {
            targets::redis::RedisTarget::new(url, &required("stream", &settings.stream)?)
                .map(Target::Redis)
        }
    };
    built.map_err(|e| format!("target `{name}`: {e}"))
}
