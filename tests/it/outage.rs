//! A database that goes away: the receiver answers 503 with Retry-After, never 200, and
//! recovers by itself. The outage is a cut TCP proxy, never a stopped shared Postgres.

use crate::fixtures::{POSTGRES_ADDR, Proxy, TestApp, assert_answer, event, eventually};

#[tokio::test]
async fn answers_503_while_the_database_is_unreachable_and_recovers_after() {
    let proxy = Proxy::start(POSTGRES_ADDR).await;
    let app = TestApp::spawn_via(&proxy).await;

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
    // may still fail, so Audian's retry is repeated until it is accepted — never a 200 for
    // an event that was not stored, never anything but 503 meanwhile.
    eventually(
        "the receiver to accept events again after the outage",
        || async {
            let status = app.post_signed(&event("evt_during")).await.status();
            assert!(status == 200 || status == 503, "while recovering: {status}");
            (status == 200).then_some(())
        },
    )
    .await;
    assert_eq!(app.count_events("evt_during").await, 1);
    assert_eq!(app.count_events("evt_before").await, 1);
}
