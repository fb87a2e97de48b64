//! Test-side views of the real brokers: a Redis stream, a JetStream stream and a RabbitMQ
//! exchange with a bound queue, each unique to its test and deleted when dropped (also when
//! the test fails).

use std::collections::HashMap;

use async_nats::jetstream::{self, stream::Stream};
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use redis::Value;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;

use crate::{AMQP_ADDR, NATS_ADDR, REDIS_ADDR, common, require_service, unique};

/// Runs async cleanup to completion from `Drop`, on a thread with its own runtime.
fn clean_up<F: std::future::Future<Output = ()> + Send + 'static>(work: F) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    })
    .join();
}

/// A message as a consumer sees it, whatever the broker.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub id: String,
    pub payload: Vec<u8>,
    pub signature: Option<String>,
}

pub struct RedisStream {
    pub name: String,
    conn: MultiplexedConnection,
}

impl RedisStream {
    pub async fn new() -> RedisStream {
        common::init();
        require_service(REDIS_ADDR, "Redis").await;
        let conn = redis::Client::open(format!("redis://{REDIS_ADDR}/"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("Redis is not usable on {REDIS_ADDR}: {e}"));
        RedisStream {
            name: unique("test:forward:"),
            conn,
        }
    }

    pub async fn entries(&self) -> Vec<Consumed> {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.name)
            .arg("-")
            .arg("+")
            .query_async(&mut self.conn.clone())
            .await
            .expect("XRANGE");
        let text = |fields: &HashMap<String, Value>, name: &str| match fields.get(name) {
            Some(Value::BulkString(bytes)) => Some(bytes.clone()),
            None => None,
            Some(other) => panic!("unexpected field value {other:?}"),
        };
        reply
            .ids
            .iter()
            .map(|entry| Consumed {
                id: String::from_utf8(text(&entry.map, "id").expect("id field")).unwrap(),
                payload: text(&entry.map, "payload").expect("payload field"),
                signature: text(&entry.map, "signature").map(|s| String::from_utf8(s).unwrap()),
            })
            .collect()
    }
}

impl Drop for RedisStream {
    fn drop(&mut self) {
        // A fresh connection: the test's own is driven by the runtime this drop blocks.
        let name = self.name.clone();
        clean_up(async move {
            let client = redis::Client::open(format!("redis://{REDIS_ADDR}/")).unwrap();
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let _: Result<i64, _> = redis::cmd("DEL").arg(&name).query_async(&mut conn).await;
            }
        });
    }
}

pub struct JsStream {
    /// Subjects `<prefix>.>` are captured.
    pub prefix: String,
    name: String,
    stream: Stream,
}

impl JsStream {
    pub async fn new() -> JsStream {
        common::init();
        require_service(NATS_ADDR, "NATS (JetStream)").await;
        let client = async_nats::connect(NATS_ADDR)
            .await
            .unwrap_or_else(|e| panic!("NATS is not usable on {NATS_ADDR}: {e}"));
        let js = jetstream::new(client);
        let prefix = unique("fwd_");
        let name = prefix.to_uppercase();
        let stream = js
            .create_stream(jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![format!("{prefix}.>")],
                ..Default::default()
            })
            .await
            .expect("JetStream must be enabled on the NATS server");
        JsStream {
            prefix,
            name,
            stream,
        }
    }

    pub async fn messages(&self) -> Vec<Consumed> {
        let count = self.stream.clone().get_info().await.unwrap().state.messages;
        let mut messages = Vec::new();
        for sequence in 1..=count {
            let stored = self.stream.get_raw_message(sequence).await.unwrap();
            let header = |name: &str| stored.headers.get(name).map(|v| v.as_str().to_owned());
            assert_eq!(header("Nats-Msg-Id"), header("X-Audian-Event-Id"));
            messages.push(Consumed {
                id: header("Nats-Msg-Id").expect("Nats-Msg-Id"),
                payload: stored.payload.to_vec(),
                signature: header("X-Receiver-Signature"),
            });
        }
        messages
    }
}

impl Drop for JsStream {
    fn drop(&mut self) {
        let name = self.name.clone();
        clean_up(async move {
            if let Ok(client) = async_nats::connect(NATS_ADDR).await {
                let _ = jetstream::new(client).delete_stream(&name).await;
            }
        });
    }
}

fn amqp_url(addr: &str) -> String {
    format!("amqp://guest:guest@{addr}/%2f")
}

/// A durable topic exchange with a queue bound to it by `binding`.
pub struct AmqpQueue {
    pub exchange: String,
    queue: String,
    channel: Channel,
    _connection: Connection,
}

impl AmqpQueue {
    pub async fn new(binding: &str) -> AmqpQueue {
        common::init();
        require_service(AMQP_ADDR, "RabbitMQ").await;
        let connection = Connection::connect(&amqp_url(AMQP_ADDR), ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| panic!("RabbitMQ is not usable on {AMQP_ADDR} as guest: {e}"));
        let channel = connection.create_channel().await.unwrap();
        let (exchange, queue) = (unique("fwd_x_"), unique("fwd_q_"));
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
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                binding.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        AmqpQueue {
            exchange,
            queue,
            channel,
            _connection: connection,
        }
    }

    /// Takes every message waiting in the queue.
    pub async fn drain(&self) -> Vec<Consumed> {
        let mut messages = Vec::new();
        let options = BasicGetOptions { no_ack: true };
        while let Some(got) = self
            .channel
            .basic_get(self.queue.as_str().into(), options)
            .await
            .unwrap()
        {
            let delivery = got.delivery;
            let properties = &delivery.properties;
            let signature = properties.headers().as_ref().and_then(|h| {
                match h.inner().get("x-receiver-signature") {
                    Some(AMQPValue::LongString(s)) => Some(s.to_string()),
                    _ => None,
                }
            });
            messages.push(Consumed {
                id: properties
                    .message_id()
                    .as_ref()
                    .expect("message_id")
                    .to_string(),
                payload: delivery.data.clone(),
                signature,
            });
        }
        messages
    }
}

impl Drop for AmqpQueue {
    fn drop(&mut self) {
        let (exchange, queue) = (self.exchange.clone(), self.queue.clone());
        clean_up(async move {
            let url = amqp_url(AMQP_ADDR);
            let connect = Connection::connect(&url, ConnectionProperties::default());
            let Ok(connection) = connect.await else {
                return;
            };
            let Ok(channel) = connection.create_channel().await else {
                return;
            };
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        });
    }
}
