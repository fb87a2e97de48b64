//! Redis target against the real Redis: XADD fields and exact payload bytes.

use audian_receiver::forward::targets::Target;
use audian_receiver::forward::targets::redis::RedisTarget;

use super::{RECEIVED_AT, expect_retryable, message, sample_payload};
use crate::fixtures::{REDIS_ADDR, RedisStream, free_port, install_crypto_provider};

#[tokio::test]
async fn redis_xadd_stores_every_field_and_the_exact_payload_bytes() {
    let stream = RedisStream::new().await;
    let url = format!("redis://{REDIS_ADDR}/");
    let target = Target::Redis(RedisTarget::new(&url, &stream.name).unwrap());
    let payload = sample_payload();
    target
        .deliver(&message("evt-r1", &payload, Some("sig-r")))
        .await
        .expect("XADD");
    target
        .deliver(&message("evt-r2", &payload, None))
        .await
        .expect("XADD");

    let stored = stream.fields().await;
    assert_eq!(stored.len(), 2);
    let field = |i: usize, name: &str| stored[i].get(name).cloned();
    assert_eq!(field(0, "id"), Some(b"evt-r1".to_vec()));
    assert_eq!(field(0, "type"), Some(b"call.completed".to_vec()));
    assert_eq!(
        field(0, "received_at"),
        Some(RECEIVED_AT.as_bytes().to_vec())
    );
    assert_eq!(field(0, "payload"), Some(payload.to_vec()));
    assert_eq!(field(0, "signature"), Some(b"sig-r".to_vec()));
    assert_eq!(field(1, "id"), Some(b"evt-r2".to_vec()));
    assert_eq!(
        field(1, "signature"),
        None,
        "no signature field when signing is off"
    );
}

#[tokio::test]
async fn redis_target_with_an_unreachable_server_is_retryable_and_hides_the_password() {
    install_crypto_provider();
    let port = free_port();
    let url = format!("redis://:topsecretpw@127.0.0.1:{port}/");
    let target = Target::Redis(
        RedisTarget::new(&url, "never-written").expect("no connection at construction"),
    );
    let payload = sample_payload();
    let err = expect_retryable(target.deliver(&message("evt", &payload, None)).await);
    assert!(!err.message.contains("topsecretpw"), "{err}");
}
