//! Kafka target against a real Kafka-protocol broker (tansu): a batch produced with its
//! headers, each key's records in the order given and on the partition Kafka's partitioner
//! picks, routing by type, an unknown topic refused for good, and a cut connection retried.

use audian_receiver::forward::targets::kafka::{KafkaConfig, partition_for};
use audian_receiver::forward::targets::{Message, Target};
use bytes::Bytes;

use super::{
    RECEIVED_AT, TRACEPARENT, deliver_eventually, expect_retryable, message, sample_payload,
};
use crate::fixtures::{
    KAFKA_ADDR, KafkaTopics, OwnKafka, Proxy, TestCerts, TlsFront, eventually, free_port,
    kafka_config,
};

fn kafka_target(brokers: &str, extra: &str) -> Target {
    Target::Kafka(kafka_config(brokers, extra).build().expect("Kafka target"))
}

fn typed<'a>(id: &'a str, event_type: &'a str, payload: &'a Bytes) -> Message<'a> {
    Message {
        event_type,
        ..message(id, payload, Some("sig-k"))
    }
}

#[tokio::test]
async fn kafka_produces_a_batch_once_each_with_headers_and_each_key_in_order_on_its_partition() {
    let topics = KafkaTopics::new().await;
    let event_type = topics.event_type("done");
    let topic = topics.create("done", 3).await;
    let target = kafka_target(KAFKA_ADDR, "");
    let payload = sample_payload();
    let ids: Vec<String> = (0..30).map(|i| format!("evt-k{i:02}")).collect();
    let messages: Vec<Message<'_>> = ids
        .iter()
        .map(|id| typed(id, &event_type, &payload))
        .collect();
    let batching = target.batching().expect("Kafka takes whole batches");
    let results = batching.deliver_batch(&messages).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let records = topics.wait_for(&topic, ids.len()).await;
    assert_eq!(records.len(), ids.len(), "each event exactly once");
    let mut used = std::collections::BTreeSet::new();
    for record in &records {
        let id = record.key.clone().expect("keyed by the event id");
        assert_eq!(record.header("event_id").as_ref(), Some(&id));
        assert_eq!(record.header("event_type").as_ref(), Some(&event_type));
        assert_eq!(record.header("received_at").as_deref(), Some(RECEIVED_AT));
        assert_eq!(
            record.header("X-Receiver-Signature").as_deref(),
            Some("sig-k")
        );
        assert_eq!(record.header("traceparent").as_deref(), Some(TRACEPARENT));
        assert_eq!(record.value, payload.to_vec(), "the body unchanged");
        assert_eq!(
            record.partition,
            partition_for(id.as_bytes(), 3),
            "{id} on the partition Kafka's own partitioner picks"
        );
        used.insert(record.partition);
    }
    assert!(
        used.len() > 1,
        "30 keys over 3 partitions use more than one"
    );
    for partition in used {
        let order: Vec<&str> = records
            .iter()
            .filter(|r| r.partition == partition)
            .map(|r| r.key.as_deref().unwrap())
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(
            order, sorted,
            "partition {partition} holds its keys in log order"
        );
    }
}

#[tokio::test]
async fn kafka_with_the_type_as_key_keeps_every_event_of_a_type_in_order_and_routes_by_type() {
    let topics = KafkaTopics::new().await;
    let (started, done) = (topics.event_type("started"), topics.event_type("done"));
    let started_topic = topics.create("started", 4).await;
    let done_topic = topics.create("done", 4).await;
    // Small requests, so one partition's records go in several, still in order.
    let target = kafka_target(
        KAFKA_ADDR,
        "key = \"{type}\"\nmax_batch_bytes = 2048\ncompression = \"gzip\"",
    );
    let payload = sample_payload();
    let ids: Vec<String> = (0..40).map(|i| format!("evt-t{i:02}")).collect();
    let messages: Vec<Message<'_>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| typed(id, if i % 2 == 0 { &started } else { &done }, &payload))
        .collect();
    let results = target.batching().unwrap().deliver_batch(&messages).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    for (topic, event_type, parity) in [(&started_topic, &started, 0), (&done_topic, &done, 1)] {
        let records = topics.wait_for(topic, 20).await;
        let got: Vec<String> = records
            .iter()
            .map(|r| r.header("event_id").unwrap())
            .collect();
        let expected: Vec<String> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, id)| id.clone())
            .collect();
        assert_eq!(
            got, expected,
            "{topic}: only its type, once each, in log order"
        );
        assert!(records.iter().all(|r| r.key.as_ref() == Some(event_type)));
        let partitions: std::collections::BTreeSet<i32> =
            records.iter().map(|r| r.partition).collect();
        assert_eq!(partitions.len(), 1, "one key, one partition");
    }
}

#[tokio::test]
async fn kafka_to_an_unknown_topic_is_permanent_and_names_it_then_delivers_once_it_exists() {
    let topics = KafkaTopics::new().await;
    let event_type = topics.event_type("later");
    let target = kafka_target(KAFKA_ADDR, "");
    let payload = sample_payload();
    let msg = typed("evt-u1", &event_type, &payload);
    let err = target.deliver(&msg).await.expect_err("no such topic");
    assert!(!err.retryable, "an unknown topic is permanent: {err:?}");
    assert!(err.message.contains(&topics.topic("later")), "{err}");

    let topic = topics.create("later", 1).await;
    target
        .deliver(&msg)
        .await
        .expect("delivered once the topic exists");
    assert_eq!(topics.wait_for(&topic, 1).await.len(), 1);
}

#[tokio::test]
async fn kafka_retries_a_cut_connection_and_loses_nothing() {
    let port = free_port();
    let proxy = Proxy::start(&format!("127.0.0.1:{port}")).await;
    let _broker = OwnKafka::start(port, Some(&proxy.addr())).await;
    let target = kafka_target(&proxy.addr(), "");
    let topics = KafkaTopics::on(&proxy.addr()).await;
    let event_type = topics.event_type("cut");
    let topic = topics.create("cut", 2).await;
    let payload = sample_payload();

    let before = typed("evt-c1", &event_type, &payload);
    target
        .deliver(&before)
        .await
        .expect("delivered before the cut");
    proxy.cut();
    let during = typed("evt-c2", &event_type, &payload);
    let err = expect_retryable(target.deliver(&during).await);
    assert!(err.message.contains("Kafka"), "{err}");
    proxy.restore();
    deliver_eventually(&target, &during).await;
    let after = typed("evt-c3", &event_type, &payload);
    target
        .deliver(&after)
        .await
        .expect("delivered after the cut");

    let records = topics.wait_for(&topic, 3).await;
    let mut ids: Vec<String> = records
        .iter()
        .map(|r| r.header("event_id").unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, ["evt-c1", "evt-c2", "evt-c3"], "nothing lost");
}

#[tokio::test]
async fn kafka_with_no_broker_is_retryable_and_bounded() {
    let port = free_port();
    let target = kafka_target(&format!("127.0.0.1:{port}"), "");
    let payload = sample_payload();
    let started = std::time::Instant::now();
    let err = expect_retryable(target.deliver(&typed("evt-d", "a.b", &payload)).await);
    assert!(err.message.contains("Kafka connect"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "a broker that is down fails the attempt within the request timeout"
    );
    // and comes back when one starts there
    let _broker = OwnKafka::start(port, None).await;
    let topics = KafkaTopics::on(&format!("127.0.0.1:{port}")).await;
    let event_type = topics.event_type("up");
    let topic = topics.create("up", 1).await;
    eventually("delivery once the broker is up", || async {
        target.deliver(&typed("evt-d", &event_type, &payload)).await
    })
    .await;
    assert_eq!(topics.wait_for(&topic, 1).await.len(), 1);
}

#[tokio::test]
async fn kafka_over_tls_delivers_when_it_trusts_the_brokers_ca_and_refuses_otherwise() {
    let certs = TestCerts::generate();
    let port = free_port();
    let front = TlsFront::start(format!("127.0.0.1:{port}"), &certs).await;
    let _broker = OwnKafka::start(port, Some(&front.addr)).await;
    let topics = KafkaTopics::on_tls(&front.addr, certs.client_config(rustls::ALL_VERSIONS)).await;
    let event_type = topics.event_type("tls");
    let topic = topics.create("tls", 1).await;
    let payload = sample_payload();
    let msg = typed("evt-tls", &event_type, &payload);

    let ca = certs.ca_path();
    let trusting = kafka_target(
        &front.addr,
        &format!("tls = true\ntls_ca_file = {:?}", ca.display().to_string()),
    );
    trusting.deliver(&msg).await.expect("delivered over TLS");
    let records = topics.wait_for(&topic, 1).await;
    assert_eq!(records[0].header("event_id").as_deref(), Some("evt-tls"));

    // The system's roots do not include the test CA: the broker is not trusted.
    let untrusting = kafka_target(&front.addr, "tls = true");
    let err = expect_retryable(untrusting.deliver(&msg).await);
    assert!(err.message.contains("Kafka connect"), "{err}");
    let plain = kafka_target(&front.addr, "");
    expect_retryable(plain.deliver(&msg).await);
    assert_eq!(
        topics.records(&topic).await.len(),
        1,
        "nothing else got through"
    );
}

#[test]
fn kafka_config_refuses_what_it_cannot_honour() {
    let build = |extra: &str| kafka_config(KAFKA_ADDR, extra).build().map(drop);
    assert!(build("").is_ok());
    assert!(build("key = \"{id}-{type}\"").is_ok());
    assert!(build("key = \"{nope}\"").unwrap_err().contains("{nope}"));
    let bad_topic: Result<KafkaConfig, _> =
        toml::from_str("brokers = [\"k:9092\"]\ntopic = \"a topic/{type}\"");
    assert!(bad_topic.unwrap().build().is_err());
    assert!(
        toml::from_str::<KafkaConfig>(
            "brokers = [\"k:9092\"]\ntopic = \"t\"\ncompression = \"lz5\""
        )
        .is_err()
    );
}
