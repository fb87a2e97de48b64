//! Targets behind a TCP proxy: lazy connect while the broker is down, and recovery after a cut.

use audian_receiver::forward::targets::Target;
use audian_receiver::forward::targets::nats::NatsTarget;
use audian_receiver::forward::targets::redis::RedisTarget;

use super::amqp::{amqp_target, bound_queue};
use super::{deliver_eventually, expect_retryable, message, sample_payload};
use crate::fixtures::{AMQP_ADDR, JsStream, NATS_ADDR, Proxy, REDIS_ADDR, RedisStream};

/// Down at first (refused), then up, then cut: every phase must end in a delivery.
async fn exercise(proxy: &Proxy, target: &Target) {
    let payload = sample_payload();
    proxy.set_refusing(true);
    expect_retryable(target.deliver(&message("evt-down", &payload, None)).await);

    proxy.set_refusing(false);
    deliver_eventually(target, &message("evt-up", &payload, None)).await;

    assert!(
        proxy.cut_all() > 0,
        "the target should have held a live connection"
    );
    deliver_eventually(target, &message("evt-after-cut", &payload, None)).await;
}

#[tokio::test]
async fn redis_target_connects_once_redis_is_reachable_and_recovers_after_a_cut() {
    let stream = RedisStream::new().await;
    let proxy = Proxy::start(REDIS_ADDR).await;
    let url = format!("redis://{}/", proxy.addr());
    let target = Target::Redis(RedisTarget::new(&url, &stream.name).unwrap());
    exercise(&proxy, &target).await;

    let ids: Vec<Vec<u8>> = stream
        .fields()
        .await
        .into_iter()
        .filter_map(|mut fields| fields.remove("id"))
        .collect();
    assert!(
        ids.contains(&b"evt-up".to_vec()) && ids.contains(&b"evt-after-cut".to_vec()),
        "{ids:?}"
    );
}

#[tokio::test]
async fn amqp_target_connects_once_rabbitmq_is_reachable_and_recovers_after_a_cut() {
    let queue = bound_queue().await;
    let proxy = Proxy::start(AMQP_ADDR).await;
    let target = amqp_target(&queue, &proxy.addr(), "audian.{type}");
    exercise(&proxy, &target).await;

    let mut ids = Vec::new();
    for _ in 0..2 {
        let delivery = queue.next_delivery().await;
        ids.push(
            delivery
                .properties
                .message_id()
                .as_ref()
                .unwrap()
                .to_string(),
        );
    }
    assert!(
        ids.contains(&"evt-up".to_owned()) && ids.contains(&"evt-after-cut".to_owned()),
        "{ids:?}"
    );
}

#[tokio::test]
async fn nats_target_connects_once_nats_is_reachable_and_recovers_after_a_cut() {
    let stream = JsStream::new().await;
    let proxy = Proxy::start(NATS_ADDR).await;
    let url = format!("nats://{}", proxy.addr());
    let target = Target::Nats(NatsTarget::new(&url, &stream.subject("{type}")).unwrap());
    exercise(&proxy, &target).await;

    // Retries reuse the event id, so JetStream keeps exactly one copy of each.
    assert_eq!(stream.count().await, 2);
}
