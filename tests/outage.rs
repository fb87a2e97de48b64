//! A database that goes away: the receiver answers 503 with Retry-After, never 200, and
//! recovers by itself. The outage is a cut TCP proxy, never a stopped shared Postgres.

mod common;

use std::time::Duration;

use audian_receiver::config::SecretUrl;
use common::{TestApp, assert_answer, event, proxy::Proxy};

#[tokio::test]
async fn answers_503_while_the_database_is_unreachable_and_recovers_after() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let app = spawn_through(&proxy).await;

    assert_answer(
        app.post_signed(&event("evt_before")).await,
        200,
        r#"{"status":"ok"}"#,
    )
    .await;

    proxy.cut();
    let during = app.post_signed(&event("evt_during")).await;
    assert_eq!(
        during
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("5")
    );
    assert_answer(during, 503, r#"{"error":"Service unavailable"}"#).await;
    let ready = reqwest::get(format!("{}/readyz", app.admin)).await.unwrap();
    assert_eq!(ready.status(), 503);

    proxy.restore();
    // The pool reconnects on its own; the first statement on a connection the cut killed
    // may still fail, so allow a few tries within a bounded time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let response = app.post_signed(&event("evt_during")).await;
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(
            tokio::time::Instant::now() < deadline,
            "did not recover within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.count_events("evt_during").await, 1);
    assert_eq!(app.count_events("evt_before").await, 1);
}

async fn spawn_through(proxy: &Proxy) -> TestApp {
    let via = proxy.addr();
    TestApp::spawn_through_db(move |db, s| {
        s.database.url = SecretUrl::new(&db.url_via(&via));
        s.database.acquire_timeout_ms = 500;
        s.database.write_timeout_ms = 1_000;
    })
    .await
}
