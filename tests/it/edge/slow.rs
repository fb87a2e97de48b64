//! Slow and oversized clients: the header section has one deadline (not one per line), an
//! idle connection is closed, and a header section over the cap gets 431 — while other
//! clients are served.

use std::time::Duration;

use super::still_serves;
use crate::fixtures::{RawTls, TestApp, status_of};

const HEADER_TIMEOUT_MS: u64 = 1_500;

async fn app_with_short_deadlines() -> TestApp {
    TestApp::spawn_with(|settings| {
        settings.server.header_timeout_ms = HEADER_TIMEOUT_MS;
        settings.server.idle_timeout_ms = 2_000;
    })
    .await
}

#[tokio::test]
async fn a_client_trickling_header_lines_is_dropped_at_the_header_deadline() {
    let app = app_with_short_deadlines().await;
    let mut raw = RawTls::connect(&app).await;
    raw.send(b"POST /webhook HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    // One line every 400 ms would keep a per-line timer happy forever.
    let served = tokio::spawn(async move {
        still_serves(&app, "evt_beside_the_trickle").await;
        app
    });
    let closed = raw
        .closed_after(
            b"X-Slow: 1\r\n",
            Duration::from_millis(400),
            Duration::from_secs(10),
        )
        .await
        .expect("the trickling connection is closed");
    assert!(
        closed < Duration::from_millis(HEADER_TIMEOUT_MS + 2_000),
        "closed only after {closed:?}"
    );
    served.await.unwrap();
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let app = app_with_short_deadlines().await;
    let mut raw = RawTls::connect(&app).await;
    let closed = raw
        .closed_after(b"", Duration::from_millis(200), Duration::from_secs(10))
        .await
        .expect("the idle connection is closed");
    assert!(
        closed < Duration::from_secs(5),
        "closed only after {closed:?}"
    );
    still_serves(&app, "evt_after_idle").await;
}

#[tokio::test]
async fn a_header_section_over_the_cap_gets_431_over_http1() {
    let app = TestApp::spawn().await;
    let mut raw = RawTls::connect(&app).await;
    let big = "a".repeat(20 * 1024);
    let request = format!(
        "POST /webhook HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: {big}\r\n\
         Content-Length: 2\r\n\r\n{{}}"
    );
    let _ = raw.send(request.as_bytes()).await;
    assert_eq!(status_of(&raw.response().await), 431);
    still_serves(&app, "evt_after_431").await;
}

#[tokio::test]
async fn a_header_section_over_the_cap_gets_431_over_http2() {
    let app = TestApp::spawn().await;
    let client = app.certs.h2_client();
    let response = client
        .post(format!("{}/webhook", app.base))
        .header("x-big", "a".repeat(20 * 1024))
        .body("{}")
        .send()
        .await
        .expect("an answer, not a reset");
    assert_eq!(response.status().as_u16(), 431);
    still_serves(&app, "evt_after_h2_431").await;
}
