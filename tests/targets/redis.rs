//! Redis target against the real Redis: XADD fields and exact payload bytes.

use std::collections::HashMap;

use audian_receiver::forward::targets::Target;
use audian_receiver::forward::targets::redis::RedisTarget;
use redis::Value;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;

use crate::{
    RECEIVED_AT, REDIS_ADDR, free_port, init, message, require_service, sample_payload, unique,
};

pub async fn redis_connection() -> MultiplexedConnection {
    init();
    require_service(REDIS_ADDR, "Redis").await;
    redis::Client::open(format!("redis://{REDIS_ADDR}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis is not usable on {REDIS_ADDR}: {e}"))
}

/// Every entry of the stream, fields as raw bytes.
pub async fn entries(
    conn: &mut MultiplexedConnection,
    stream: &str,
) -> Vec<HashMap<String, Vec<u8>>> {
    let reply: StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .expect("XRANGE");
    let bytes = |value: Value| match value {
        Value::BulkString(bytes) => bytes,
        other => panic!("unexpected field value {other:?}"),
    };
    reply
        .ids
        .into_iter()
        .map(|entry| entry.map.into_iter().map(|(k, v)| (k, bytes(v))).collect())
        .collect()
}

pub async fn delete(conn: &mut MultiplexedConnection, stream: &str) {
    let _: i64 = redis::cmd("DEL")
        .arg(stream)
        .query_async(conn)
        .await
        .expect("DEL");
}

#[tokio::test]
async fn redis_xadd_stores_every_field_and_the_exact_payload_bytes() {
    let mut conn = redis_connection().await;
    let stream = unique("test:audian:");
    let target =
        Target::Redis(RedisTarget::new(&format!("redis://{REDIS_ADDR}/"), &stream).unwrap());
    let payload = sample_payload();
    target
        .deliver(&message("evt-r1", &payload, Some("sig-r")))
        .await
        .expect("XADD");
    target
        .deliver(&message("evt-r2", &payload, None))
        .await
        .expect("XADD");

    let stored = entries(&mut conn, &stream).await;
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
    delete(&mut conn, &stream).await;
}

#[tokio::test]
async fn redis_target_with_an_unreachable_server_is_retryable_and_hides_the_password() {
    init();
    let port = free_port();
    let url = format!("redis://:topsecretpw@127.0.0.1:{port}/");
    let target = Target::Redis(
        RedisTarget::new(&url, "never-written").expect("no connection at construction"),
    );
    let payload = sample_payload();
    let err = crate::expect_retryable(target.deliver(&message("evt", &payload, None)).await);
    assert!(!err.message.contains("topsecretpw"), "{err}");
}
