//! AMQP target against the real RabbitMQ: confirms, message properties, unroutable returns.

use audian_receiver::forward::targets::Target;
use audian_receiver::forward::targets::amqp::AmqpTarget;
use lapin::types::AMQPValue;

use super::{RECEIVED_AT, expect_retryable, message, sample_payload};
use crate::fixtures::{AMQP_ADDR, AmqpQueue, amqp_url};

pub const ROUTING_KEY: &str = "audian.call.completed";

/// A queue bound to its exchange with [`ROUTING_KEY`].
pub async fn bound_queue() -> AmqpQueue {
    AmqpQueue::new(ROUTING_KEY).await
}

/// An AMQP target publishing to the queue's exchange via `addr` (RabbitMQ or a proxy).
pub fn amqp_target(queue: &AmqpQueue, addr: &str, template: &str) -> Target {
    Target::Amqp(AmqpTarget::new(&amqp_url(addr), &queue.exchange, template).unwrap())
}

#[tokio::test]
async fn amqp_delivers_a_confirmed_persistent_message_with_id_type_and_headers() {
    let queue = bound_queue().await;
    let target = amqp_target(&queue, AMQP_ADDR, "audian.{type}");
    let payload = sample_payload();
    target
        .deliver(&message("evt-a1", &payload, Some("sig-a")))
        .await
        .expect("confirmed");

    let delivery = queue.next_delivery().await;
    assert_eq!(delivery.data, payload.to_vec());
    assert_eq!(delivery.routing_key.as_str(), ROUTING_KEY);
    let props = &delivery.properties;
    assert_eq!(
        props.message_id().as_ref().map(|s| s.as_str()),
        Some("evt-a1")
    );
    assert_eq!(
        props.kind().as_ref().map(|s| s.as_str()),
        Some("call.completed")
    );
    assert_eq!(
        props.content_type().as_ref().map(|s| s.as_str()),
        Some("application/json")
    );
    assert_eq!(*props.delivery_mode(), Some(2), "must be persistent");
    assert_eq!(*props.timestamp(), Some(1_714_566_896));
    let headers = props.headers().as_ref().expect("headers").inner();
    let header = |name: &str| match headers.get(name) {
        Some(AMQPValue::LongString(s)) => Some(s.to_string()),
        _ => None,
    };
    assert_eq!(header("x-audian-event-id").as_deref(), Some("evt-a1"));
    assert_eq!(header("x-audian-received-at").as_deref(), Some(RECEIVED_AT));
    assert_eq!(header("x-receiver-signature").as_deref(), Some("sig-a"));
}

#[tokio::test]
async fn amqp_publish_that_no_queue_is_bound_for_fails_as_unroutable() {
    let queue = bound_queue().await;
    let target = amqp_target(&queue, AMQP_ADDR, "nobody.listens.{type}");
    let payload = sample_payload();
    let err = expect_retryable(target.deliver(&message("evt-a2", &payload, None)).await);
    assert!(err.message.contains("unroutable"), "{err}");
    // Retryable for a reason: once a queue is bound, the same target's retry is routed.
    queue.bind("nobody.listens.call.completed").await;
    target
        .deliver(&message("evt-a2", &payload, None))
        .await
        .expect("confirmed");
    assert_eq!(queue.next_delivery().await.data, payload.to_vec());
}

#[test]
fn amqp_target_rejects_bad_configuration() {
    assert!(AmqpTarget::new("amqp://127.0.0.1:5672/%2f", "x", "a.{bad}").is_err());
    assert!(AmqpTarget::new("amqp://127.0.0.1:5672/%2f", "", "a.{type}").is_err());
    assert!(AmqpTarget::new("amqp://127.0.0.1:5672/%2f", "amq.topic", "a.{type}").is_err());
    assert!(AmqpTarget::new("http://127.0.0.1:5672/", "x", "a.{type}").is_err());
}
