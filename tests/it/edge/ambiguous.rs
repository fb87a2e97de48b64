//! A request that names its media type, length or signature twice is refused with 400 and
//! the generic body: the server never guesses which one counts.

use audian_receiver::signing::sign;

use super::still_serves;
use crate::fixtures::{RawTls, SECRET, TestApp, event, status_of};

const INVALID_REQUEST: &str = r#"{"error":"Invalid request"}"#;

/// A signed event sent by hand with `extra` header lines added.
async fn send_with(app: &TestApp, id: &str, extra: &str) -> String {
    let body = event(id);
    let signature = sign(SECRET.as_bytes(), body.as_bytes());
    let request = format!(
        "POST /webhook HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nX-Audian-Signature: {signature}\r\n\
         Content-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    );
    let mut raw = RawTls::connect(app).await;
    raw.send(request.as_bytes()).await.unwrap();
    raw.response().await
}

#[tokio::test]
async fn two_content_types_are_refused_with_400_and_store_nothing() {
    let app = TestApp::spawn().await;
    let answer = send_with(&app, "evt_two_types", "Content-Type: text/plain\r\n").await;
    assert_eq!(status_of(&answer), 400);
    assert!(answer.ends_with(INVALID_REQUEST), "{answer}");
    assert_eq!(app.count_events("evt_two_types").await, 0);
    still_serves(&app, "evt_after_two_types").await;
}

#[tokio::test]
async fn two_signature_headers_are_refused_with_400_even_if_one_is_right() {
    let app = TestApp::spawn().await;
    let other = sign(SECRET.as_bytes(), b"another body");
    let answer = send_with(
        &app,
        "evt_two_sigs",
        &format!("X-Audian-Signature: {other}\r\n"),
    )
    .await;
    assert_eq!(status_of(&answer), 400);
    assert!(answer.ends_with(INVALID_REQUEST), "{answer}");
    assert_eq!(app.count_events("evt_two_sigs").await, 0);
    still_serves(&app, "evt_after_two_sigs").await;
}

/// Two different lengths are refused by the HTTP layer itself, before the router; two equal
/// ones are one length (RFC 9110 §8.6), so that case is not ambiguous.
#[tokio::test]
async fn two_different_content_lengths_are_refused_with_400() {
    let app = TestApp::spawn().await;
    let body = event("evt_two_lengths");
    let answer = send_with(
        &app,
        "evt_two_lengths",
        &format!("Content-Length: {}\r\n", body.len() - 1),
    )
    .await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert_eq!(app.count_events("evt_two_lengths").await, 0);
    still_serves(&app, "evt_after_two_lengths").await;
}
