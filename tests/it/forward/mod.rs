//! End-to-end forwarding: events posted over HTTPS reach real targets (an HTTP sink, Redis,
//! NATS JetStream, RabbitMQ, Kafka) through the Postgres outbox, with retries, leases, replay from
//! the CLI and type routing. The outbox as tests see it lives here; the tests in `forward/*.rs`.

mod cli;
mod delivery;
mod failures;
mod kafka;
mod lease;
mod plans;
mod reconnect;
mod retention;

use audian_receiver::config::{ForwardSettings, SecretUrl, TargetSettings};
use audian_receiver::forward::targets::{
    TargetKind, amqp::AmqpConfig, http::HttpConfig, nats::NatsConfig, redis::RedisConfig,
};

use crate::fixtures::{NATS_ADDR, TestApp, amqp_url, eventually, kafka_config};

/// An event body of the given type with multi-byte UTF-8 and odd spacing, so any re-encoding
/// on the way to a target would show.
pub fn typed_event(id: &str, event_type: &str) -> String {
    format!(
        "{{\"id\":\"{id}\", \"type\":\"{event_type}\",\r\n  \"data\":{{\"title\":\"Café 🎧\",\"amount\":1.50 }}}}\n"
    )
}

/// Tiny backoffs and a fast poll, so retries happen within a test's patience.
pub fn fast(forward: &mut ForwardSettings, targets: Vec<TargetSettings>) {
    forward.workers = 2;
    forward.lease_ms = 5_000;
    forward.poll_interval_ms = 100;
    forward.backoff_initial_ms = 20;
    forward.backoff_max_ms = 200;
    forward.max_attempts = 10;
    forward.targets = targets;
}

fn target(name: &str, kind: TargetKind) -> TargetSettings {
    TargetSettings {
        name: name.to_owned(),
        event_types: vec!["*".to_owned()],
        max_attempts: None,
        kind,
    }
}

pub fn http_target(name: &str, url: &str) -> TargetSettings {
    http_target_with_timeout(name, url, 2_000)
}

pub fn http_target_with_timeout(name: &str, url: &str, timeout_ms: u64) -> TargetSettings {
    let config = HttpConfig {
        url: SecretUrl::new(url),
        timeout_ms: Some(timeout_ms),
        max_in_flight: None,
    };
    target(name, TargetKind::Http(config))
}

pub fn redis_target(name: &str, addr: &str, stream: &str) -> TargetSettings {
    let config = RedisConfig {
        url: SecretUrl::new(&format!("redis://{addr}/")),
        stream: stream.to_owned(),
    };
    target(name, TargetKind::Redis(config))
}

pub fn nats_target(name: &str, subject: &str) -> TargetSettings {
    let config = NatsConfig {
        url: SecretUrl::new(&format!("nats://{NATS_ADDR}")),
        subject: subject.to_owned(),
    };
    target(name, TargetKind::Nats(config))
}

pub fn amqp_target(name: &str, addr: &str, exchange: &str, routing_key: &str) -> TargetSettings {
    let config = AmqpConfig {
        url: SecretUrl::new(&amqp_url(addr)),
        exchange: exchange.to_owned(),
        routing_key: routing_key.to_owned(),
    };
    target(name, TargetKind::Amqp(config))
}

/// A Kafka target on `brokers`, topic template `audian.{type}`, record key template `key`.
pub fn kafka_target(name: &str, brokers: &str, key: &str) -> TargetSettings {
    let config = kafka_config(brokers, &format!("key = {key:?}"));
    target(name, TargetKind::Kafka(config))
}

/// One row of the outbox as a test looks at it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivery {
    pub event_id: String,
    pub target: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

pub async fn deliveries(app: &TestApp) -> Vec<Delivery> {
    let mut conn = app.db.connect().await;
    sqlx::query_as(
        "SELECT event_id, target, state, attempts, last_error FROM deliveries \
         ORDER BY event_id, target",
    )
    .fetch_all(&mut conn)
    .await
    .expect("reading deliveries")
}

pub async fn delivery(app: &TestApp, event_id: &str, target: &str) -> Option<Delivery> {
    deliveries(app)
        .await
        .into_iter()
        .find(|d| d.event_id == event_id && d.target == target)
}

/// Waits until there are exactly `rows` deliveries and all are delivered; on timeout the
/// failure shows every row.
pub async fn all_delivered(app: &TestApp, rows: usize) -> Vec<Delivery> {
    let what = format!("all {rows} deliveries to be delivered");
    eventually(what, || async {
        let now = deliveries(app).await;
        if now.len() == rows && now.iter().all(|d| d.state == "delivered") {
            Ok(now)
        } else {
            Err(format!("{now:#?}"))
        }
    })
    .await
}

/// Waits until the row (event, target) is in `state`; returns it.
pub async fn reaches_state(app: &TestApp, event_id: &str, target: &str, state: &str) -> Delivery {
    let what = format!("delivery ({event_id}, {target}) to become {state}");
    eventually(what, || async {
        match delivery(app, event_id, target).await {
            Some(row) if row.state == state => Ok(row),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// Opens a writing transaction (one with a transaction id) on another connection and leaves
/// it open: it holds every cursor's watermark back until it ends.
pub async fn hold_watermark(app: &TestApp) -> sqlx::PgConnection {
    let mut blocker = app.db.connect().await;
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut blocker)
        .await
        .unwrap();
    blocker
}

/// Posts the events `ids` while another client holds the watermark back, so that every
/// forwarder first reads them all as one batch.
pub async fn post_as_one_batch(app: &TestApp, ids: &[String]) {
    let mut blocker = hold_watermark(app).await;
    for id in ids {
        post_ok(app, &typed_event(id, "job.completed")).await;
    }
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
}

pub async fn post_ok(app: &TestApp, body: &str) {
    let response = app.post_signed(body).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}
