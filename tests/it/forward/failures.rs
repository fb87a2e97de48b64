//! Targets that fail: retried with backoff until they answer, and never holding back intake
//! or the other targets meanwhile.

use std::collections::HashSet;

use super::{
    deliveries, fast, http_target, http_target_with_timeout, post_ok, reaches_state, redis_target,
    typed_event,
};
use crate::fixtures::{REDIS_ADDR, RedisStream, Sink, TestApp, eventually, free_port};

#[tokio::test]
async fn an_http_target_answering_500_three_times_is_retried_and_then_delivered() {
    let sink = Sink::failing_first(3).await;
    let targets = vec![http_target("flaky", &sink.url)];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    let body = typed_event("evt_flaky", "job.completed");
    post_ok(&app, &body).await;

    reaches_state(&app, "evt_flaky", "flaky", "delivered").await;
    let requests = sink.received();
    assert_eq!(requests.len(), 4, "three 500s, then the 200: {requests:#?}");
    for request in &requests {
        assert_eq!(
            request.header("idempotency-key").as_deref(),
            Some("evt_flaky")
        );
        assert_eq!(
            request.body,
            body.as_bytes(),
            "every retry sends the same bytes"
        );
    }
}

#[tokio::test]
async fn a_failing_target_blocks_neither_intake_nor_the_other_targets() {
    let redis = RedisStream::new().await;
    let unreachable = format!("http://127.0.0.1:{}/hook", free_port());
    let targets = vec![
        http_target("down", &unreachable),
        redis_target("redis", REDIS_ADDR, &redis.name),
    ];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    let ids: Vec<String> = (0..10).map(|i| format!("evt_iso_{i}")).collect();
    for id in &ids {
        post_ok(&app, &typed_event(id, "job.completed")).await;
    }

    let expected: HashSet<String> = ids.iter().cloned().collect();
    eventually("every event in the Redis stream, each once", || async {
        let got: Vec<String> = redis.entries().await.into_iter().map(|e| e.id).collect();
        let unique: HashSet<String> = got.iter().cloned().collect();
        (got.len() == ids.len() && unique == expected).then_some(())
    })
    .await;
    // The HTTP rows stay pending and keep being retried (not parked, not dead) while Redis's
    // are all delivered.
    let rows = eventually(
        "the down target retried every event at least twice",
        || async {
            let rows = deliveries(&app).await;
            let redis_done = rows
                .iter()
                .filter(|r| r.target == "redis")
                .all(|r| r.state == "delivered");
            let down: Vec<_> = rows.iter().filter(|r| r.target == "down").collect();
            let retrying = down.len() == ids.len()
                && down
                    .iter()
                    .all(|r| r.state == "pending" && r.attempts >= 2 && r.last_error.is_some());
            (redis_done && retrying).then_some(rows)
        },
    )
    .await;
    let error = rows[0].last_error.clone().unwrap();
    assert!(error.contains("HTTP request failed"), "{error}");

    // Intake is still answering, and new events still reach the working target.
    post_ok(&app, &typed_event("evt_iso_late", "job.completed")).await;
    reaches_state(&app, "evt_iso_late", "redis", "delivered").await;
}

/// A TCP endpoint that accepts connections and never answers: a hung or black-holed service.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_hanging_target_does_not_hold_back_the_other_targets_until_its_timeout() {
    let redis = RedisStream::new().await;
    let (hung_url, hole) = black_hole().await;
    let targets = vec![
        http_target_with_timeout("hung", &hung_url, 300_000),
        redis_target("redis", REDIS_ADDR, &redis.name),
    ];
    let app = TestApp::spawn_with(|s| {
        fast(&mut s.forward, targets);
        // The hung target's attempts may only end by its timeout, which no test outlives.
        s.forward.lease_ms = 600_000;
    })
    .await;
    let ids: Vec<String> = (0..5).map(|i| format!("evt_hang_{i}")).collect();
    for id in &ids {
        post_ok(&app, &typed_event(id, "job.completed")).await;
    }

    let rows = eventually("every Redis delivery delivered", || async {
        let rows = deliveries(&app).await;
        let redis_rows: Vec<_> = rows.iter().filter(|r| r.target == "redis").collect();
        if redis_rows.len() == ids.len() && redis_rows.iter().all(|r| r.state == "delivered") {
            Ok(rows)
        } else {
            let in_stream = redis.entries().await.len();
            Err(format!(
                "{in_stream} of {} XADDed, rows {redis_rows:#?}",
                ids.len()
            ))
        }
    })
    .await;
    // Redis finished while not one attempt at the hung target had ended: it did not wait.
    let hung: Vec<_> = rows.iter().filter(|r| r.target == "hung").collect();
    assert_eq!(hung.len(), ids.len(), "{rows:#?}");
    assert!(
        hung.iter()
            .all(|r| r.state == "pending" && r.last_error.is_none()),
        "the hung target's attempts cannot have ended yet: {hung:#?}"
    );
    hole.abort();
}

#[tokio::test]
async fn a_long_open_transaction_holds_forwarding_back_visibly_until_it_ends() {
    let sink = Sink::start().await;
    let targets = vec![http_target("http", &sink.url)];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    // Another client opens a writing transaction (it has a transaction id) and leaves it open.
    let mut blocker = app.db.connect().await;
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut blocker)
        .await
        .unwrap();

    post_ok(&app, &typed_event("evt_held", "job.completed")).await;
    eventually(
        "the watermark lag gauge to show the open transaction",
        || async {
            let metrics = reqwest::get(format!("{}/metrics", app.admin))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let lag: f64 = metrics
                .lines()
                .find_map(|l| l.strip_prefix("audian_receiver_forward_watermark_lag_seconds "))?
                .parse()
                .ok()?;
            (lag > 0.0).then_some(())
        },
    )
    .await;
    assert_eq!(
        sink.count("evt_held"),
        0,
        "an event committed after the open transaction began waits for it to end"
    );

    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    reaches_state(&app, "evt_held", "http", "delivered").await;
    assert_eq!(sink.count("evt_held"), 1);
}
