//! Each forward target kind on its own, against the real Redis, RabbitMQ, NATS and Kafka
//! (tansu) on this machine and a local HTTP sink: what it sends, how it classifies failures, and how it
//! comes back after its broker was down or cut off.

mod amqp;
mod http;
mod kafka;
mod nats;
mod reconnect;
mod redis;
mod template;

use audian_receiver::forward::targets::{DeliveryError, Message, Target};
use bytes::Bytes;

use crate::fixtures::eventually;

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
        traceparent: TRACEPARENT,
        tracestate: None,
    }
}

/// The `traceparent` every test message carries.
pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

pub const RECEIVED_AT: &str = "2024-05-01T12:34:56.789Z";

/// Retries retryable failures, as the worker would, until the target delivers `msg`; a
/// permanent failure fails the test at once.
pub async fn deliver_eventually(target: &Target, msg: &Message<'_>) {
    let what = format!("the {} target to deliver {}", target.kind(), msg.event_id);
    eventually(what, || async {
        match target.deliver(msg).await {
            Ok(()) => Ok(()),
            Err(e) if e.retryable => Err(e),
            Err(e) => panic!("{} delivery failed permanently: {e:?}", target.kind()),
        }
    })
    .await
}

pub fn expect_retryable(result: Result<(), DeliveryError>) -> DeliveryError {
    let err = result.expect_err("delivery should have failed");
    assert!(err.retryable, "expected a retryable failure, got {err:?}");
    err
}
