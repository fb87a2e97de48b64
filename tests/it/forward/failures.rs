//! Targets that fail: retried with backoff until they answer, and never holding back intake
//! or the other targets meanwhile.

use std::collections::HashSet;

use super::{
    deliveries, fast, hold_watermark, http_target, http_target_with_timeout, post_as_one_batch,
    post_ok, reaches_state, redis_target, typed_event,
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
    let app = TestApp::spawn_with(|s| {
        fast(&mut s.forward, targets);
        s.forward.max_attempts = 100_000; // parked for the whole test, never dead
    })
    .await;
    let ids: Vec<String> = (0..10).map(|i| format!("evt_iso_{i}")).collect();
    post_as_one_batch(&app, &ids).await;

    let expected: HashSet<String> = ids.iter().cloned().collect();
    eventually("every event in the Redis stream, each once", || async {
        let got: Vec<String> = redis.entries().await.into_iter().map(|e| e.id).collect();
        let unique: HashSet<String> = got.iter().cloned().collect();
        (got.len() == ids.len() && unique == expected).then_some(())
    })
    .await;
    // The down target is parked: every event is pending, the batch its cursor holds tried
    // again and again (with the error). (Another test's transaction on the shared cluster
    // can split the ten into batches; a batch of one gets a retry row, never a park.)
    let rows = eventually(
        "the down target parked, its held batch tried at least twice",
        || async {
            let rows = deliveries(&app).await;
            let redis_done = rows
                .iter()
                .filter(|r| r.target == "redis")
                .all(|r| r.state == "delivered");
            let down: Vec<_> = rows.iter().filter(|r| r.target == "down").collect();
            let pending = down.len() == ids.len() && down.iter().all(|r| r.state == "pending");
            let probed = down
                .iter()
                .any(|r| r.attempts >= 2 && r.last_error.is_some());
            (redis_done && pending && probed).then_some(rows)
        },
    )
    .await;
    let held = rows.iter().find(|r| r.target == "down" && r.attempts >= 2);
    let error = held.unwrap().last_error.clone().unwrap();
    assert!(error.contains("HTTP request failed"), "{error}");
    let rows_when_parked = retry_rows(&app, "down").await;
    assert!(
        rows_when_parked < ids.len() as i64,
        "the batch is held, not written row by row: {rows_when_parked} retry rows"
    );
    let parked = [
        r#"audian_receiver_forward_parked{target="down"} 1"#,
        r#"audian_receiver_forward_parked{target="redis"} 0"#,
    ];
    eventually("the parked gauge to show the down target only", || async {
        let metrics = app.metrics().await;
        let missing: Vec<_> = parked
            .iter()
            .filter(|line| !metrics.lines().any(|l| l == **line))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("no {missing:?} in\n{metrics}"))
        }
    })
    .await;

    // Intake is still answering, new events still reach the working target, and the parked
    // one writes nothing for them.
    let late: Vec<String> = (0..10).map(|i| format!("evt_iso_late_{i}")).collect();
    for id in &late {
        post_ok(&app, &typed_event(id, "job.completed")).await;
    }
    for id in &late {
        reaches_state(&app, id, "redis", "delivered").await;
    }
    assert_eq!(
        retry_rows(&app, "down").await,
        rows_when_parked,
        "a parked target writes nothing per event"
    );
}

#[tokio::test]
async fn a_target_that_comes_back_gets_everything_it_missed_exactly_once() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let app = TestApp::spawn_with(|s| {
        fast(&mut s.forward, vec![http_target("late", &url)]);
        s.forward.max_attempts = 100_000; // parked until the sink is up, never dead
    })
    .await;
    let ids: Vec<String> = (0..30).map(|i| format!("evt_back_{i}")).collect();
    post_as_one_batch(&app, &ids[..10]).await;
    eventually("the target to be parked and probed", || async {
        let rows = deliveries(&app).await;
        rows.iter().any(|r| r.attempts >= 2).then_some(())
    })
    .await;
    let rows_when_parked = retry_rows(&app, "late").await;
    for id in &ids[10..] {
        post_ok(&app, &typed_event(id, "job.completed")).await;
    }
    // Posted while parked: they wait in the log behind the held batch, no row each.
    eventually("the later events to be in the log", || async {
        let rows = deliveries(&app).await;
        (rows.len() == ids.len()).then_some(())
    })
    .await;
    assert_eq!(retry_rows(&app, "late").await, rows_when_parked);

    let sink = Sink::start_on_port(port).await;
    for id in &ids {
        reaches_state(&app, id, "late", "delivered").await;
    }
    for id in &ids {
        assert_eq!(sink.count(id), 1, "{id} delivered exactly once");
    }
    assert_eq!(
        retry_rows(&app, "late").await,
        0,
        "delivered retries leave no row"
    );
}

#[tokio::test]
async fn a_target_answering_429_to_a_whole_batch_is_parked_until_its_retry_after() {
    let sink = Sink::start().await;
    let targets = vec![http_target("limited", &sink.url_for("/limited"))];
    let app = TestApp::spawn_with(|s| {
        fast(&mut s.forward, targets);
        // Retry-After is a floor up to the backoff's maximum: let the sink's 7 s count.
        s.forward.backoff_max_ms = 60_000;
    })
    .await;
    let ids: Vec<String> = (0..3).map(|i| format!("evt_429_{i}")).collect();
    post_as_one_batch(&app, &ids).await;

    let wait = eventually("the target to be parked", || async {
        let mut conn = app.db.connect().await;
        sqlx::query_scalar::<_, Option<f64>>(
            "SELECT extract(epoch FROM parked_until - now())::float8 FROM forward_cursors \
             WHERE target = 'limited'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("reading the cursor")
    })
    .await;
    assert!(
        wait > 5.0,
        "parked for Retry-After (7 s), not the backoff: {wait} s"
    );
    // The held batch (and any event of the three the shared cluster split off alone, whose
    // retry honours Retry-After too) was tried once; nothing more before Retry-After.
    let tried = sink.received().len();
    assert!((2..=ids.len()).contains(&tried), "{tried} requests");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(sink.received().len(), tried, "left alone until Retry-After");
}

/// Retry rows of `target`: what a target that fails individual events leaves behind.
async fn retry_rows(app: &TestApp, target: &str) -> i64 {
    let mut conn = app.db.connect().await;
    sqlx::query_scalar("SELECT count(*) FROM forward_retries WHERE target = $1")
        .bind(target)
        .fetch_one(&mut conn)
        .await
        .expect("counting retry rows")
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
    let mut blocker = hold_watermark(&app).await;

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
