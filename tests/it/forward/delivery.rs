//! The happy path through every target kind, routing by event type, and Audian's duplicate
//! posts never being forwarded twice.

use std::collections::HashSet;

use audian_receiver::config::TargetSettings;
use audian_receiver::signing::sign;

use super::{
    all_delivered, amqp_target, deliveries, fast, http_target, nats_target, post_ok, redis_target,
    typed_event,
};
use crate::fixtures::{
    AMQP_ADDR, AmqpQueue, Consumed, FORWARD_SIGNING_SECRET, JsStream, REDIS_ADDR, RedisStream,
    Sink, TestApp, signing_secrets, unique,
};

/// Each id of `bodies` exactly once, with the exact bytes and the forward signature.
fn assert_each_once(kind: &str, got: &[Consumed], bodies: &[(String, String)]) {
    let mut ids: Vec<&str> = got.iter().map(|c| c.id.as_str()).collect();
    let mut expected: Vec<&str> = bodies.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    expected.sort_unstable();
    assert_eq!(ids, expected, "{kind}: every event exactly once");
    for message in got {
        let (_, body) = bodies.iter().find(|(id, _)| *id == message.id).unwrap();
        assert_eq!(
            message.payload,
            body.as_bytes(),
            "{kind}: {} must carry the original bytes",
            message.id
        );
        let expected = sign(FORWARD_SIGNING_SECRET.as_bytes(), body.as_bytes());
        assert_eq!(
            message.signature.as_deref(),
            Some(expected.as_str()),
            "{kind}: {} signature",
            message.id
        );
    }
}

#[tokio::test]
async fn every_target_kind_receives_every_event_exactly_once_with_the_original_bytes() {
    let sink = Sink::start().await;
    let redis = RedisStream::new().await;
    let nats = JsStream::new().await;
    let amqp = AmqpQueue::new("fwd.#").await;
    let targets = vec![
        http_target("http", &sink.url),
        redis_target("redis", REDIS_ADDR, &redis.name),
        nats_target("nats", &nats.subject("{type}")),
        amqp_target("amqp", AMQP_ADDR, &amqp.exchange, "fwd.{type}"),
    ];
    let app =
        TestApp::spawn_with_secrets(signing_secrets(), |_, s| fast(&mut s.forward, targets)).await;

    let run = unique("evt_all_");
    let bodies: Vec<(String, String)> = (0..10)
        .map(|i| {
            let id = format!("{run}_{i}");
            let body = typed_event(&id, "job.completed");
            (id, body)
        })
        .collect();
    for (_, body) in &bodies {
        post_ok(&app, body).await;
    }

    let rows = all_delivered(&app, 40).await;
    let retried: Vec<_> = rows.iter().filter(|r| r.attempts != 1).collect();
    assert!(retried.is_empty(), "all up, nothing to retry: {retried:?}");

    let requests = sink.received();
    for request in &requests {
        let id = request.event_id();
        assert_eq!(request.header("idempotency-key"), Some(id));
        assert_eq!(
            request.header("x-audian-event-type").as_deref(),
            Some("job.completed")
        );
    }
    let http: Vec<Consumed> = requests
        .iter()
        .map(|r| Consumed {
            id: r.event_id(),
            payload: r.body.to_vec(),
            signature: r.header("x-receiver-signature"),
            traceparent: r.header("traceparent"),
        })
        .collect();
    assert_each_once("http", &http, &bodies);
    assert_each_once("redis", &redis.entries().await, &bodies);
    assert_each_once("nats", &nats.messages().await, &bodies);
    assert_each_once("amqp", &amqp.drain().await, &bodies);
}

#[tokio::test]
async fn a_target_filtered_to_audio_events_gets_only_those_and_no_rows_for_other_types() {
    let (audio, jobs, all) = (
        Sink::start().await,
        Sink::start().await,
        Sink::start().await,
    );
    let targets = vec![
        TargetSettings {
            event_types: vec!["audio.*".to_owned()],
            ..http_target("audio", &audio.url)
        },
        TargetSettings {
            event_types: vec!["job.*".to_owned()],
            ..http_target("jobs", &jobs.url)
        },
        http_target("all", &all.url),
    ];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    for (id, event_type) in [
        ("evt_a1", "audio.uploaded"),
        ("evt_j1", "job.completed"),
        ("evt_a2", "audio.uploaded"),
        ("evt_j2", "job.completed"),
    ] {
        post_ok(&app, &typed_event(id, event_type)).await;
    }

    let rows = all_delivered(&app, 8).await;
    let pairs: HashSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.event_id.as_str(), r.target.as_str()))
        .collect();
    let expected: HashSet<(&str, &str)> = [
        ("evt_a1", "audio"),
        ("evt_a2", "audio"),
        ("evt_j1", "jobs"),
        ("evt_j2", "jobs"),
        ("evt_a1", "all"),
        ("evt_a2", "all"),
        ("evt_j1", "all"),
        ("evt_j2", "all"),
    ]
    .into();
    assert_eq!(pairs, expected, "one row per matching target, none other");

    let ids = |sink: &Sink| {
        let mut ids: Vec<String> = sink.received().iter().map(|r| r.event_id()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&audio), ["evt_a1", "evt_a2"]);
    assert_eq!(ids(&jobs), ["evt_j1", "evt_j2"]);
    assert_eq!(ids(&all), ["evt_a1", "evt_a2", "evt_j1", "evt_j2"]);
    for request in audio.received() {
        assert_eq!(
            request.header("x-audian-event-type").as_deref(),
            Some("audio.uploaded")
        );
    }
}

#[tokio::test]
async fn audians_duplicate_posts_are_recorded_and_forwarded_once() {
    let sink = Sink::start().await;
    let redis = RedisStream::new().await;
    let targets = vec![
        http_target("http", &sink.url),
        redis_target("redis", REDIS_ADDR, &redis.name),
    ];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    let sequential = typed_event("evt_dup_seq", "job.completed");
    let concurrent = typed_event("evt_dup_conc", "job.completed");

    for _ in 0..5 {
        post_ok(&app, &sequential).await;
    }
    let posts = (0..10).map(|_| post_ok(&app, &concurrent));
    futures_util::future::join_all(posts).await;

    all_delivered(&app, 4).await;
    // Audian retrying after the first forward must not forward again either.
    post_ok(&app, &sequential).await;
    post_ok(&app, &concurrent).await;

    for id in ["evt_dup_seq", "evt_dup_conc"] {
        assert_eq!(app.count_events(id).await, 1, "{id}: one events row");
        assert_eq!(sink.count(id), 1, "{id}: the HTTP sink got it once");
        let in_redis = redis.entries().await.iter().filter(|e| e.id == id).count();
        assert_eq!(in_redis, 1, "{id}: the Redis stream holds it once");
    }
    let rows = deliveries(&app).await;
    assert_eq!(
        rows.len(),
        4,
        "one delivery row per event and target: {rows:#?}"
    );
    assert!(
        rows.iter()
            .all(|r| r.state == "delivered" && r.attempts == 1),
        "{rows:#?}"
    );
}
