//! Connections without a request are closed on time, however they trickle: the header
//! deadline counts from the end of the TLS handshake (not from the first byte), an HTTP/2
//! connection with no stream open is closed with GOAWAY at the idle deadline, and a flood of
//! such connections delays an honest client by no more than those deadlines.

use std::time::{Duration, Instant};

use super::still_serves;
use crate::fixtures::{RawTls, SECRET, TestApp, event, eventually};

const HEADER_TIMEOUT_MS: u64 = 2_000;
const IDLE_TIMEOUT_MS: u64 = 3_000;
/// What the deadlines may be late by.
const SLACK: Duration = Duration::from_secs(1);

/// The HTTP/2 connection preface and an empty SETTINGS frame.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
/// A PING frame, trickled a byte at a time.
const PING: &[u8] = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00pingping";
const GOAWAY: u8 = 0x7;

async fn app_with_deadlines(max_connections: usize) -> TestApp {
    TestApp::spawn_with(|settings| {
        settings.server.handshake_timeout_ms = HEADER_TIMEOUT_MS;
        settings.server.header_timeout_ms = HEADER_TIMEOUT_MS;
        settings.server.idle_timeout_ms = IDLE_TIMEOUT_MS;
        settings.server.max_connections = max_connections;
    })
    .await
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Waits until one close for `reason` is counted.
async fn closes_counted(app: &TestApp, reason: &str) {
    let series = format!(r#"connections_closed_total{{reason="{reason}"}} 1"#);
    eventually(format!("{series} in the metrics"), || async {
        app.metrics().await.contains(&series).then_some(())
    })
    .await;
}

/// The frame types in a run of HTTP/2 frames the server sent.
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let length =
            usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + length).min(bytes.len())..];
    }
    types
}

#[tokio::test]
async fn a_tls_connection_that_sends_nothing_is_closed_at_the_header_deadline() {
    let app = app_with_deadlines(100).await;
    let mut raw = RawTls::connect(&app).await;
    let (closed, _) = raw
        .closed_after_trickling(b"", ms(60_000), Duration::from_secs(20))
        .await;
    let closed = closed.expect("the silent connection is closed");
    assert!(
        closed < ms(HEADER_TIMEOUT_MS) + SLACK,
        "closed after {closed:?}"
    );
    closes_counted(&app, "header_timeout").await;
    still_serves(&app, "evt_after_silence").await;
}

#[tokio::test]
async fn a_tls_connection_that_sends_one_byte_is_closed_at_the_header_deadline() {
    let app = app_with_deadlines(100).await;
    let mut raw = RawTls::connect(&app).await;
    raw.send(b"P").await.unwrap();
    let (closed, _) = raw
        .closed_after_trickling(b"", ms(60_000), Duration::from_secs(20))
        .await;
    let closed = closed.expect("the connection is closed");
    assert!(
        closed < ms(HEADER_TIMEOUT_MS) + SLACK,
        "closed after {closed:?}"
    );
    still_serves(&app, "evt_after_one_byte").await;
}

#[tokio::test]
async fn an_http2_connection_trickling_pings_without_a_stream_gets_goaway_at_the_deadline() {
    // Header deadline past the idle one, so it is the idle deadline that must close it.
    let app = TestApp::spawn_with(|settings| {
        settings.server.header_timeout_ms = 10_000;
        settings.server.idle_timeout_ms = IDLE_TIMEOUT_MS;
    })
    .await;
    let mut raw = RawTls::connect_h2(&app).await;
    raw.send(PREFACE).await.unwrap();
    let (closed, received) = raw
        .closed_after_trickling(PING, ms(300), Duration::from_secs(20))
        .await;
    let closed = closed.expect("the trickling HTTP/2 connection is closed");
    assert!(
        closed < ms(IDLE_TIMEOUT_MS) + SLACK,
        "closed after {closed:?}"
    );
    assert!(
        frame_types(&received).contains(&GOAWAY),
        "no GOAWAY among frames {:?}",
        frame_types(&received)
    );
    closes_counted(&app, "idle_timeout").await;
}

#[tokio::test]
async fn an_http2_connection_idle_after_its_request_gets_goaway_at_the_idle_deadline() {
    let app = app_with_deadlines(100).await;
    let client = app.certs.h2_client();
    let body = event("evt_h2_then_idle");
    let signature = audian_receiver::signing::sign(SECRET.as_bytes(), body.as_bytes());
    let answered = Instant::now();
    let response = client
        .post(format!("{}/webhook", app.base))
        .header("content-type", "application/json")
        .header("x-audian-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    closes_counted(&app, "idle_timeout").await;
    let closed = answered.elapsed();
    assert!(
        closed >= ms(IDLE_TIMEOUT_MS),
        "closed early, after {closed:?}"
    );
    assert!(
        closed < ms(IDLE_TIMEOUT_MS) + SLACK + SLACK,
        "closed after {closed:?}"
    );
}

#[tokio::test]
async fn connections_without_requests_holding_every_slot_delay_an_honest_client_by_the_deadline_only()
 {
    let app = app_with_deadlines(100).await;
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(tokio::spawn({
            let mut raw = RawTls::connect(&app).await;
            async move {
                raw.closed_after_trickling(b"", ms(60_000), Duration::from_secs(20))
                    .await
            }
        }));
    }
    for _ in 0..40 {
        let mut raw = RawTls::connect_h2(&app).await;
        raw.send(PREFACE).await.unwrap();
        held.push(tokio::spawn(async move {
            raw.closed_after_trickling(PING, ms(500), Duration::from_secs(20))
                .await
        }));
    }
    let all_held = Instant::now();
    // Audian's way: retry a refused connection until an answer comes.
    let body = event("evt_honest_beside_the_flood");
    let signature = audian_receiver::signing::sign(SECRET.as_bytes(), body.as_bytes());
    let status = loop {
        let client = app.certs.client();
        let attempt = client
            .post(format!("{}/webhook", app.base))
            .header("content-type", "application/json")
            .header("x-audian-signature", &signature)
            .body(body.clone())
            .send()
            .await;
        if let Ok(response) = attempt {
            break response.status();
        }
        assert!(all_held.elapsed() < Duration::from_secs(20), "never served");
        tokio::time::sleep(ms(50)).await;
    };
    let waited = all_held.elapsed();
    assert_eq!(status, 200);
    assert!(
        waited < ms(HEADER_TIMEOUT_MS) + SLACK,
        "served only after {waited:?}"
    );
    for connection in held {
        let (closed, _) = connection.await.unwrap();
        let closed = closed.expect("every connection without a request is closed");
        assert!(
            closed < ms(HEADER_TIMEOUT_MS) + SLACK,
            "one closed after {closed:?}"
        );
    }
    assert_eq!(app.count_events("evt_honest_beside_the_flood").await, 1);
}
