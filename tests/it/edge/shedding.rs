//! Load shedding: past `server.max_concurrent_requests`, or past the bytes of bodies the
//! server will hold at once, a request is answered 503 + Retry-After at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{WRONG_SIGNATURE, still_serves};
use crate::fixtures::{RawTls, TestApp, assert_answer, event};

const UNAVAILABLE: &str = r#"{"error":"Service unavailable"}"#;

/// A request whose headers promise a body of `length` bytes that never comes: it holds a
/// request slot (and `length` bytes of the body budget) until the body deadline.
async fn hold_a_request(app: &TestApp, length: usize) -> RawTls {
    let mut raw = RawTls::connect(app).await;
    let headers = format!(
        "POST /webhook HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         X-Audian-Signature: {WRONG_SIGNATURE}\r\nContent-Length: {length}\r\n\r\n"
    );
    raw.send(headers.as_bytes()).await.unwrap();
    raw
}

#[tokio::test]
async fn past_max_concurrent_requests_a_request_gets_503_at_once() {
    let app = TestApp::spawn_with(|settings| settings.server.max_concurrent_requests = 2).await;
    let held = [
        hold_a_request(&app, 100).await,
        hold_a_request(&app, 100).await,
    ];
    let started = Instant::now();
    let (id, shed) = first_shed(&app, |id| event(&id)).await;
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_answer(shed, 503, UNAVAILABLE).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(app.count_events(&id).await, 0);
    drop(held);
    crate::fixtures::eventually("the slots to be free again", || async {
        (app.post_signed(&event("evt_after_shed")).await.status() == 200).then_some(())
    })
    .await;
    assert_eq!(app.count_events("evt_after_shed").await, 1);
}

#[tokio::test]
async fn past_the_body_memory_budget_a_request_gets_503_and_small_ones_still_pass() {
    let app = TestApp::spawn_with(|settings| {
        settings.server.max_body_bytes = 32 * 1024;
        settings.server.max_body_memory_bytes = 48 * 1024;
    })
    .await;
    let _held = hold_a_request(&app, 32 * 1024).await;
    let large = |id: String| format!(r#"{{"id":"{id}","pad":"{}"}}"#, "x".repeat(20 * 1024));
    let (id, shed) = first_shed(&app, large).await;
    assert_answer(shed, 503, UNAVAILABLE).await;
    assert_eq!(app.count_events(&id).await, 0);
    still_serves(&app, "evt_small_beside_the_budget").await;
}

/// Posts events with fresh ids until one is shed (the held requests reach the server a
/// moment after their connection); returns that id and its answer.
async fn first_shed(app: &TestApp, body: impl Fn(String) -> String) -> (String, reqwest::Response) {
    let attempt = AtomicUsize::new(0);
    crate::fixtures::eventually("a request to be shed", || async {
        let id = format!("evt_shed_{}", attempt.fetch_add(1, Ordering::Relaxed));
        let response = app.post_signed(&body(id.clone())).await;
        (response.status().as_u16() == 503).then_some((id, response))
    })
    .await
}
