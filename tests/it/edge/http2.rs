//! Early answers over HTTP/2 arrive whole, as over HTTP/1.1: the rest of a refused body is
//! drained up to `server.drain_bytes` so the stream ends cleanly, and a client sending an
//! endless body is stopped (RST_STREAM NO_ERROR once past the bound), not left hanging.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::StreamBody;

use super::{WRONG_SIGNATURE, still_serves};
use crate::fixtures::{SECRET, TestApp, assert_answer};

const TOO_LARGE: &str = r#"{"error":"Payload too large"}"#;

async fn post(client: &reqwest::Client, app: &TestApp, body: reqwest::Body) -> reqwest::Response {
    let response = client
        .post(format!("{}/webhook", app.base))
        .header("content-type", "application/json")
        .header("x-audian-signature", WRONG_SIGNATURE)
        .body(body)
        .send()
        .await
        .expect("the answer reaches the client");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    response
}

#[tokio::test]
async fn a_body_declared_over_the_limit_gets_413_over_http2() {
    let app = TestApp::spawn().await;
    let client = app.certs.h2_client();
    let body = vec![b'x'; 2 * 1024 * 1024];
    assert_answer(post(&client, &app, body.into()).await, 413, TOO_LARGE).await;
    still_serves(&app, "evt_after_h2_413").await;
}

#[tokio::test]
async fn an_endless_body_gets_413_over_http2_and_the_upload_is_stopped() {
    let app = TestApp::spawn().await;
    let client = app.certs.h2_client();
    // No length declared, and the stream never ends: only the server can end this request.
    let answer = post(&client, &app, endless_body()).await;
    assert_answer(answer, 413, TOO_LARGE).await;
    still_serves(&app, "evt_after_h2_endless").await;
}

#[tokio::test]
async fn refusals_before_the_body_arrive_whole_over_http2() {
    let app = TestApp::spawn().await;
    let client = app.certs.h2_client();
    let unsigned = client
        .post(format!("{}/webhook", app.base))
        .body(vec![b'x'; 512 * 1024])
        .send()
        .await
        .unwrap();
    assert_answer(unsigned, 401, r#"{"error":"Invalid signature"}"#).await;
    let body = br#"{"id":"evt_h2_text"}"#.to_vec();
    let signature = audian_receiver::signing::sign(SECRET.as_bytes(), &body);
    let text = client
        .post(format!("{}/webhook", app.base))
        .header("content-type", "text/plain")
        .header("x-audian-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_answer(text, 415, r#"{"error":"Unsupported media type"}"#).await;
    let elsewhere = client
        .post(format!("{}/elsewhere", app.base))
        .body(vec![b'x'; 512 * 1024])
        .send()
        .await
        .unwrap();
    assert_answer(elsewhere, 404, r#"{"error":"Not found"}"#).await;
    still_serves(&app, "evt_after_h2_refusals").await;
}

#[tokio::test]
async fn an_endless_body_gets_413_over_http1_and_the_connection_is_closed() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/webhook", app.base))
        .header("x-audian-signature", WRONG_SIGNATURE)
        .body(endless_body())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the answer reaches the client");
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_answer(response, 413, TOO_LARGE).await;
    still_serves(&app, "evt_after_h1_endless").await;
}

/// A body of unknown length that never ends.
fn endless_body() -> reqwest::Body {
    let chunks = stream::repeat_with(|| {
        Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(vec![b'x'; 16 * 1024])))
    });
    reqwest::Body::wrap(StreamBody::new(chunks))
}

/// The refusals curl and httpx are held to in scripts/edge-clients.sh, through hyper's client
/// (reqwest) on both protocols: each read whole, with its JSON reason.
#[tokio::test]
async fn every_signature_refusal_and_413_reach_a_hyper_client_over_http1_and_http2() {
    let app = TestApp::spawn().await;
    let body = br#"{"id":"evt_hyper_refusals","type":"job.completed","data":{"job_id":"j_0001"}}"#;
    let cases: [(Option<&str>, Vec<u8>, u16, &str); 5] = [
        (None, body.to_vec(), 401, r#"{"error":"Invalid signature"}"#),
        (
            Some("sha256=not-hex!"),
            body.to_vec(),
            401,
            r#"{"error":"Invalid signature"}"#,
        ),
        (
            Some("abcd"),
            body.to_vec(),
            401,
            r#"{"error":"Invalid signature"}"#,
        ),
        (
            Some(WRONG_SIGNATURE),
            body.to_vec(),
            401,
            r#"{"error":"Invalid signature"}"#,
        ),
        (Some(WRONG_SIGNATURE), vec![b'x'; 2_000_000], 413, TOO_LARGE),
    ];
    for (client, version) in [
        (app.certs.h2_client(), reqwest::Version::HTTP_2),
        (app.certs.client(), reqwest::Version::HTTP_11),
    ] {
        for (signature, body, status, answer) in &cases {
            let mut request = client
                .post(format!("{}/webhook", app.base))
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(signature) = signature {
                request = request.header("x-audian-signature", *signature);
            }
            let response = request.send().await.expect("the answer reaches the client");
            assert_eq!(response.version(), version);
            assert_answer(response, *status, answer).await;
        }
    }
    still_serves(&app, "evt_after_hyper_refusals").await;
}
