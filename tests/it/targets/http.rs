//! HTTP target against the recording HTTP sink: bytes, headers, status classification, Retry-After.

use std::time::Duration;

use audian_receiver::forward::targets::Target;
use audian_receiver::forward::targets::http::{HttpTarget, parse_retry_after};

use super::{RECEIVED_AT, expect_retryable, message, sample_payload};
use crate::fixtures::{Sink, free_port, install_crypto_provider};

fn target(url: &str) -> Target {
    install_crypto_provider();
    Target::Http(HttpTarget::new(url, Duration::from_secs(1), 16).expect("valid HTTP target"))
}

#[tokio::test]
async fn http_delivery_posts_the_exact_bytes_with_every_header_and_the_signature() {
    let sink = Sink::start().await;
    let payload = sample_payload();
    let msg = message("evt-http-1", &payload, Some("abc123"));
    target(&sink.url).deliver(&msg).await.expect("delivered");
    let requests = sink.received();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/hook");
    assert_eq!(request.body, payload);
    let header = |name: &str| request.header(name);
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(header("x-audian-event-id").as_deref(), Some("evt-http-1"));
    assert_eq!(
        header("x-audian-event-type").as_deref(),
        Some("call.completed")
    );
    assert_eq!(header("idempotency-key").as_deref(), Some("evt-http-1"));
    assert_eq!(header("x-audian-received-at").as_deref(), Some(RECEIVED_AT));
    assert_eq!(header("x-receiver-signature").as_deref(), Some("abc123"));
}

#[tokio::test]
async fn http_delivery_without_a_signature_sends_no_signature_header() {
    let sink = Sink::start().await;
    let payload = sample_payload();
    target(&sink.url)
        .deliver(&message("evt-2", &payload, None))
        .await
        .unwrap();
    let requests = sink.received();
    assert!(requests[0].header("x-receiver-signature").is_none());
    assert_eq!(requests[0].event_id(), "evt-2");
}

#[tokio::test]
async fn http_500_is_a_retryable_failure() {
    let sink = Sink::start().await;
    let payload = sample_payload();
    let err = expect_retryable(
        target(&sink.url_for("/fail"))
            .deliver(&message("e", &payload, None))
            .await,
    );
    assert!(
        err.message.contains("500") && err.message.contains("boom"),
        "{err}"
    );
}

#[tokio::test]
async fn http_400_is_permanent_and_quotes_only_the_start_of_the_body() {
    let sink = Sink::start().await;
    let payload = sample_payload();
    let err = target(&sink.url_for("/bad"))
        .deliver(&message("e", &payload, None))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(err.message.contains("400"), "{err}");
    assert!(
        err.message.len() < 300,
        "body excerpt too long: {} bytes",
        err.message.len()
    );
}

#[tokio::test]
async fn http_429_with_retry_after_seconds_sets_retry_after() {
    let sink = Sink::start().await;
    let payload = sample_payload();
    let err = expect_retryable(
        target(&sink.url_for("/limited"))
            .deliver(&message("e", &payload, None))
            .await,
    );
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn http_unreachable_port_is_retryable_and_hides_the_password() {
    let port = free_port();
    let url = format!("http://user:hunter2secret@127.0.0.1:{port}/hook");
    let payload = sample_payload();
    let err = expect_retryable(target(&url).deliver(&message("e", &payload, None)).await);
    assert!(!err.message.contains("hunter2secret"), "{err}");
}

#[tokio::test]
async fn http_redirect_is_neither_followed_nor_counted_as_delivered() {
    let sink = Sink::start().await;
    let payload = sample_payload();
    let err = target(&sink.url_for("/redirect"))
        .deliver(&message("e", &payload, None))
        .await
        .unwrap_err();
    assert!(!err.retryable && err.message.contains("302"), "{err:?}");
    let paths: Vec<String> = sink.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/redirect"], "the redirect must not be followed");
}

#[tokio::test]
async fn http_response_slower_than_the_timeout_is_retryable() {
    let sink = Sink::start().await;
    let payload = sample_payload();
    let slow = HttpTarget::new(&sink.url_for("/slow"), Duration::from_millis(200), 16).unwrap();
    let slow = Target::Http(slow);
    let err = expect_retryable(slow.deliver(&message("e", &payload, None)).await);
    assert!(err.message.contains("timed out"), "{err}");
}

#[test]
fn retry_after_accepts_seconds_and_http_dates() {
    assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
        Some(Duration::ZERO)
    );
    let future = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let parsed = parse_retry_after(&future.format(&format).unwrap()).unwrap();
    assert!(parsed > Duration::from_secs(3500) && parsed <= Duration::from_secs(3600));
    assert_eq!(parse_retry_after("soon"), None);
}

#[test]
fn http_target_rejects_non_http_urls() {
    install_crypto_provider();
    assert!(HttpTarget::new("ftp://example.com/x", Duration::from_secs(1), 16).is_err());
    assert!(HttpTarget::new("not a url", Duration::from_secs(1), 16).is_err());
}
