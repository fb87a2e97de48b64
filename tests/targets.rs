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
#[path = "targets/template.rs"]
mod template;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use audian_receiver::forward::targets::{DeliveryError, Message, Target};
use bytes::Bytes;

pub const REDIS_ADDR: &str = "127.0.0.1:6379";
pub const AMQP_ADDR: &str = "127.0.0.1:5672";
pub const NATS_ADDR: &str = "127.0.0.1:4222";

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

/// Unique per test and per run, so parallel tests and leftovers of aborted runs never collide.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{prefix}{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A missing service must fail the test loudly, never skip it.
pub async fn require_service(addr: &str, name: &str) {
    let connect = tokio::net::TcpStream::connect(addr);
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => {}
        other => panic!(
            "{name} is not reachable on {addr} ({other:?}); these tests need the real service running"
        ),
    }
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

/// Polls `check` every 50 ms until it yields a value or the deadline passes.
pub async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
