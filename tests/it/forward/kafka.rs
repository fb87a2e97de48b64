//! The Kafka target behind the worker: events posted over HTTPS reach their topics once each,
//! in log order, signed; an event whose topic does not exist goes dead at its first attempt
//! and is delivered once replayed after the topic is made.

use audian_receiver::signing::sign;
use audian_receiver::store::operator;

use super::{all_delivered, fast, kafka_target, post_ok, reaches_state, typed_event};
use crate::fixtures::{
    FORWARD_SIGNING_SECRET, KAFKA_ADDR, KafkaTopics, TestApp, signing_secrets, unique,
};

#[tokio::test]
async fn kafka_gets_every_event_once_in_log_order_and_an_unknown_topic_goes_dead_until_replayed() {
    let topics = KafkaTopics::new().await;
    let done = topics.event_type("done");
    let missing = topics.event_type("missing");
    let topic = topics.create("done", 3).await;
    // Keyed by type: one partition, so the whole log's order is visible in it.
    let targets = vec![kafka_target("kafka", KAFKA_ADDR, "{type}")];
    let app =
        TestApp::spawn_with_secrets(signing_secrets(), |_, s| fast(&mut s.forward, targets)).await;

    let run = unique("evt_kafka_");
    let bodies: Vec<(String, String)> = (0..20)
        .map(|i| {
            let id = format!("{run}_{i:02}");
            let body = typed_event(&id, &done);
            (id, body)
        })
        .collect();
    for (_, body) in &bodies {
        post_ok(&app, body).await;
    }
    let lost = format!("{run}_lost");
    post_ok(&app, &typed_event(&lost, &missing)).await;

    let dead = reaches_state(&app, &lost, "kafka", "dead").await;
    assert_eq!(
        dead.attempts, 1,
        "an unknown topic is not retried: {dead:?}"
    );
    let error = dead.last_error.expect("a dead delivery says why");
    assert!(error.contains(&topics.topic("missing")), "{error}");

    let records = topics.wait_for(&topic, bodies.len()).await;
    let consumed: Vec<_> = records.iter().map(|r| r.consumed()).collect();
    let ids: Vec<&str> = consumed.iter().map(|c| c.id.as_str()).collect();
    let expected: Vec<&str> = bodies.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, expected, "each event once, in log order");
    for (message, (_, body)) in consumed.iter().zip(&bodies) {
        assert_eq!(message.payload, body.as_bytes(), "the original bytes");
        let signature = sign(FORWARD_SIGNING_SECRET.as_bytes(), body.as_bytes());
        assert_eq!(message.signature.as_deref(), Some(signature.as_str()));
        assert!(
            message.traceparent.is_some(),
            "a traceparent for the consumer"
        );
    }

    let lost_topic = topics.create("missing", 1).await;
    let pool = sqlx::PgPool::connect(&app.db.url()).await.unwrap();
    let ids = [lost.clone()];
    let replayed = operator::replay(&pool, Some(&ids), None, Some("kafka"))
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    reaches_state(&app, &lost, "kafka", "delivered").await;
    let records = topics.wait_for(&lost_topic, 1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].consumed().id, lost);
    all_delivered(&app, bodies.len() + 1).await;
}
