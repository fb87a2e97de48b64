//! Integration tests of the forward targets against the real Redis, RabbitMQ and NATS on this machine.

#[path = "targets/amqp.rs"]
mod amqp;
#[path = "targets/http.rs"]
mod http;
#[path = "targets/nats.rs"]
mod nats;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "targets/reconnect.rs"]
mod reconnect;
#[path = "targets/redis.rs"]
mod redis;
#[path = "common/services.rs"]
mod services;
#[path = "targets/template.rs"]
mod template;

pub use services::{AMQP_ADDR, NATS_ADDR, REDIS_ADDR, free_port, require_service, unique};
use std::time::Duration;

use audian_receiver::forward::targets::{DeliveryError, Message, Target};
use bytes::Bytes;

/// JSON with multi-byte UTF-8 and odd whitespace, so any re-encoding of the body would show.
pub fn sample_payload() -> Bytes {
    Bytes::from_static("{\"id\": \"évt-1\",\r\n  \"amount\":1.50 ,\"emoji\":\"🎧\"}\n".as_bytes())
}

pub fn message<'a>(
    event_id: &'a str,
    payload: &'a Bytes,
    signature: Option<&'a str>,
) -> Message<'a> {
    Message {
        event_id,
        event_type: "call.completed",
        received_at: time::macros::datetime!(2024-05-01 12:34:56.789 UTC),
        payload,
        signature,
    }
}

pub const RECEIVED_AT: &str = "2024-05-01T12:34:56.789Z";

pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Retries retryable failures a few times, as the worker would; returns how many attempts failed.
pub async fn deliver_eventually(target: &Target, msg: &Message<'_>) -> usize {
    let mut failures = 0;
    loop {
        match target.deliver(msg).await {
            Ok(()) => return failures,
            Err(e) if e.retryable && failures < 5 => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(100 * failures as u64)).await;
            }
            Err(e) => panic!("{} delivery kept failing: {e:?}", target.kind()),
        }
    }
}

pub fn expect_retryable(result: Result<(), DeliveryError>) -> DeliveryError {
    let err = result.expect_err("delivery should have failed");
    assert!(err.retryable, "expected a retryable failure, got {err:?}");
    err
}

/// Polls `check` every 50 ms until it yields a value; fails after 5 s naming `what`.
pub async fn poll<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    services::poll_within(what, Duration::from_secs(5), check).await
}
