//! AMQP target against the real RabbitMQ: confirms, message properties, unroutable returns.

use audian_receiver::forward::targets::Target;
use audian_receiver::forward::targets::amqp::AmqpTarget;
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::{
    AMQP_ADDR, RECEIVED_AT, expect_retryable, init, message, poll, require_service, sample_payload,
    unique,
};

pub const ROUTING_KEY: &str = "audian.call.completed";

pub fn amqp_url(addr: &str) -> String {
    format!("amqp://guest:guest@{addr}/%2f")
}

/// A test-side channel plus an exchange and a queue bound to it with `ROUTING_KEY`.
pub struct Fixture {
    pub channel: Channel,
    pub exchange: String,
    pub queue: String,
    _connection: Connection,
}

impl Fixture {
    pub async fn new() -> Fixture {
        init();
        require_service(AMQP_ADDR, "RabbitMQ").await;
        let connection = Connection::connect(&amqp_url(AMQP_ADDR), ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| panic!("RabbitMQ is not usable on {AMQP_ADDR} as guest: {e}"));
        let channel = connection.create_channel().await.unwrap();
        let (exchange, queue) = (unique("test_x_"), unique("test_q_"));
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let fixture = Fixture {
            channel,
            exchange,
            queue,
            _connection: connection,
        };
        fixture.bind(ROUTING_KEY).await;
        fixture
    }

    pub async fn bind(&self, routing_key: &str) {
        let (queue, exchange) = (self.queue.as_str().into(), self.exchange.as_str().into());
        let options = QueueBindOptions::default();
        self.channel
            .queue_bind(
                queue,
                exchange,
                routing_key.into(),
                options,
                FieldTable::default(),
            )
            .await
            .unwrap();
    }

    pub fn target(&self, addr: &str, template: &str) -> Target {
        Target::Amqp(AmqpTarget::new(&amqp_url(addr), &self.exchange, template).unwrap())
    }

    pub async fn next_message(&self) -> lapin::message::Delivery {
        poll("a message in the test queue", || async {
            let options = BasicGetOptions { no_ack: true };
            let got = self
                .channel
                .basic_get(self.queue.as_str().into(), options)
                .await
                .unwrap();
            got.map(|m| m.delivery)
        })
        .await
    }

    pub async fn delete(self) {
        let queue = QueueDeleteOptions::default();
        self.channel
            .queue_delete(self.queue.as_str().into(), queue)
            .await
            .unwrap();
        let exchange = ExchangeDeleteOptions::default();
        self.channel
            .exchange_delete(self.exchange.as_str().into(), exchange)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn amqp_delivers_a_confirmed_persistent_message_with_id_type_and_headers() {
    let fixture = Fixture::new().await;
    let target = fixture.target(AMQP_ADDR, "audian.{type}");
    let payload = sample_payload();
    target
        .deliver(&message("evt-a1", &payload, Some("sig-a")))
        .await
        .expect("confirmed");

    let delivery = fixture.next_message().await;
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
    fixture.delete().await;
}

#[tokio::test]
async fn amqp_publish_that_no_queue_is_bound_for_fails_as_unroutable() {
    let fixture = Fixture::new().await;
    let target = fixture.target(AMQP_ADDR, "nobody.listens.{type}");
    let payload = sample_payload();
    let err = expect_retryable(target.deliver(&message("evt-a2", &payload, None)).await);
    assert!(err.message.contains("unroutable"), "{err}");
    // Retryable for a reason: once a queue is bound, the same target's retry is routed.
    fixture.bind("nobody.listens.call.completed").await;
    target
        .deliver(&message("evt-a2", &payload, None))
        .await
        .expect("confirmed");
    assert_eq!(fixture.next_message().await.data, payload.to_vec());
    fixture.delete().await;
}

#[test]
fn amqp_target_rejects_bad_configuration() {
    assert!(AmqpTarget::new("amqp://127.0.0.1:5672/%2f", "x", "a.{bad}").is_err());
    assert!(AmqpTarget::new("amqp://127.0.0.1:5672/%2f", "", "a.{type}").is_err());
    assert!(AmqpTarget::new("amqp://127.0.0.1:5672/%2f", "amq.topic", "a.{type}").is_err());
    assert!(AmqpTarget::new("http://127.0.0.1:5672/", "x", "a.{type}").is_err());
}
