//! Retention and erasure through the real binary: `purge` drops old payloads of events every
//! target has passed and old rows, never what still waits for a target; `events forget`
//! erases named events and refuses unknown ids without changing anything.

use audian_receiver::config::TargetSettings;

use super::{fast, http_target, post_ok, reaches_state, typed_event};
use crate::fixtures::{Binary, Sink, TestApp, free_port};

/// An app with a working target for everything and a dead one for `audio.*` events: every
/// audio event ends dead there, and so keeps waiting for an operator.
async fn two_targets(sink: &Sink) -> TestApp {
    let dead = TargetSettings {
        event_types: vec!["audio.*".to_owned()],
        max_attempts: Some(1),
        ..http_target("dead", &format!("http://127.0.0.1:{}/hook", free_port()))
    };
    let targets = vec![http_target("ok", &sink.url), dead];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    for (id, kind) in [
        ("evt_week", "job.completed"),
        ("evt_month", "job.completed"),
        ("evt_waiting", "audio.uploaded"),
    ] {
        post_ok(&app, &typed_event(id, kind)).await;
    }
    reaches_state(&app, "evt_waiting", "dead", "dead").await;
    for id in ["evt_week", "evt_month", "evt_waiting"] {
        reaches_state(&app, id, "ok", "delivered").await;
    }
    app
}

fn binary_for(app: &TestApp) -> (Binary, String) {
    let binary = Binary::new();
    let config = binary.write_config(&format!("[database]\nurl = {:?}\n", app.db.url()));
    (binary, config)
}

async fn age(app: &TestApp, id: &str, days: i32) {
    let mut conn = app.db.connect().await;
    sqlx::query(
        "UPDATE events SET received_at = now() - make_interval(days => $2) WHERE event_id = $1",
    )
    .bind(id)
    .bind(days)
    .execute(&mut conn)
    .await
    .unwrap();
}

/// (has a row, still has its payload)
async fn stored(app: &TestApp, id: &str) -> (bool, bool) {
    let mut conn = app.db.connect().await;
    let payload: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT payload FROM events WHERE event_id = $1")
            .bind(id)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    (payload.is_some(), payload.flatten().is_some())
}

#[tokio::test]
async fn purge_drops_old_payloads_and_rows_of_passed_events_but_never_a_waiting_one() {
    let sink = Sink::start().await;
    let app = two_targets(&sink).await;
    age(&app, "evt_week", 8).await;
    age(&app, "evt_month", 31).await;
    age(&app, "evt_waiting", 31).await;

    let (binary, config) = binary_for(&app);
    let run = binary.run(&["purge", "--config", &config]).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .contains("dropped 2 payloads older than 7 days, removed 1 events older than 30 days"),
        "{run}"
    );
    assert_eq!(
        stored(&app, "evt_week").await,
        (true, false),
        "payload dropped, id kept"
    );
    assert_eq!(
        stored(&app, "evt_month").await,
        (false, false),
        "row removed"
    );
    assert_eq!(
        stored(&app, "evt_waiting").await,
        (true, true),
        "dead at a target: kept whole, whatever its age"
    );

    // Audian retries the event whose payload is gone: still a duplicate, not sent again.
    post_ok(&app, &typed_event("evt_week", "job.completed")).await;
    post_ok(&app, &typed_event("evt_after", "job.completed")).await;
    reaches_state(&app, "evt_after", "ok", "delivered").await;
    assert_eq!(app.count_events("evt_week").await, 1);
    assert_eq!(
        sink.count("evt_week"),
        1,
        "forwarded once, before its payload was dropped"
    );
}

#[tokio::test]
async fn forget_erases_named_events_and_refuses_an_unknown_id_changing_nothing() {
    let sink = Sink::start().await;
    let app = two_targets(&sink).await;
    let (binary, config) = binary_for(&app);

    let run = binary
        .run(&[
            "events",
            "forget",
            "evt_waiting",
            "evt_nope",
            "--config",
            &config,
        ])
        .await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("evt_nope"), "{run}");
    assert_eq!(
        stored(&app, "evt_waiting").await,
        (true, true),
        "nothing changed"
    );

    let run = binary
        .run(&["events", "forget", "evt_waiting", "--config", &config])
        .await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("forgotten\tevt_waiting"), "{run}");
    assert!(
        run.stderr.contains("event forgotten"),
        "an audit line: {run}"
    );
    assert_eq!(
        stored(&app, "evt_waiting").await,
        (true, false),
        "payload gone, id kept"
    );
    let mut conn = app.db.connect().await;
    let retries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM forward_retries WHERE event_id = 'evt_waiting'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(retries, 0, "the dead delivery is cancelled");

    // A replay cannot bring it back, and Audian's retry is a duplicate.
    let run = binary
        .run(&["events", "replay", "evt_waiting", "--config", &config])
        .await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("replayed 0 deliveries"), "{run}");
    post_ok(&app, &typed_event("evt_waiting", "audio.uploaded")).await;
    assert_eq!(app.count_events("evt_waiting").await, 1);
    post_ok(&app, &typed_event("evt_later", "audio.uploaded")).await;
    reaches_state(&app, "evt_later", "ok", "delivered").await;
    assert_eq!(
        sink.count("evt_waiting"),
        1,
        "the forgotten event was not sent again"
    );
}

#[tokio::test]
async fn a_dedup_window_shorter_than_the_payload_window_is_refused_naming_both_keys() {
    let binary = Binary::new().env("AUDIAN_WEBHOOK_SECRET", "s");
    let config = binary.write_config("[retention]\npayload_days = 10\ndedup_days = 5\n");
    let run = binary.run(&["check-config", "--config", &config]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("retention.dedup_days")
            && run.stderr.contains("retention.payload_days"),
        "{run}"
    );
}
