//! HTTP target against a real local axum server: bytes, headers, status classification, Retry-After.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use audian_receiver::forward::targets::Target;
use audian_receiver::forward::targets::http::{HttpTarget, parse_retry_after};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::{RECEIVED_AT, expect_retryable, free_port, init, message, sample_payload};

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>);

impl Seen {
    fn take(&self) -> Vec<(String, HeaderMap, Bytes)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

async fn respond(State(seen): State<Seen>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    seen.0
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), headers, body));
    match uri.path() {
        "/ok" => (StatusCode::OK, "ok").into_response(),
        "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "/bad" => (StatusCode::BAD_REQUEST, "x".repeat(5000)).into_response(),
        "/limited" => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")]).into_response(),
        "/redirect" => (StatusCode::FOUND, [("location", "/ok")]).into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::OK.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Starts the recording server; returns its base URL (`http://127.0.0.1:PORT`).
async fn serve() -> (String, Seen) {
    init();
    let seen = Seen::default();
    let app = axum::Router::new()
        .fallback(respond)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn target(url: &str) -> Target {
    Target::Http(HttpTarget::new(url, Duration::from_secs(1)).expect("valid HTTP target"))
}

#[tokio::test]
async fn http_delivery_posts_the_exact_bytes_with_every_header_and_the_signature() {
    let (base, seen) = serve().await;
    let payload = sample_payload();
    let msg = message("evt-http-1", &payload, Some("abc123"));
    target(&format!("{base}/ok"))
        .deliver(&msg)
        .await
        .expect("delivered");
    let requests = seen.take();
    assert_eq!(requests.len(), 1);
    let (path, headers, body) = &requests[0];
    assert_eq!(path, "/ok");
    assert_eq!(body, &payload);
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
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
    let (base, seen) = serve().await;
    let payload = sample_payload();
    target(&format!("{base}/ok"))
        .deliver(&message("evt-2", &payload, None))
        .await
        .unwrap();
    let requests = seen.take();
    assert!(requests[0].1.get("x-receiver-signature").is_none());
    assert_eq!(requests[0].1.get("x-audian-event-id").unwrap(), "evt-2");
}

#[tokio::test]
async fn http_500_is_a_retryable_failure() {
    let (base, _seen) = serve().await;
    let payload = sample_payload();
    let err = expect_retryable(
        target(&format!("{base}/fail"))
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
    let (base, _seen) = serve().await;
    let payload = sample_payload();
    let err = target(&format!("{base}/bad"))
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
    let (base, _seen) = serve().await;
    let payload = sample_payload();
    let err = expect_retryable(
        target(&format!("{base}/limited"))
            .deliver(&message("e", &payload, None))
            .await,
    );
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn http_unreachable_port_is_retryable_and_hides_the_password() {
    init();
    let port = free_port();
    let url = format!("http://user:hunter2secret@127.0.0.1:{port}/hook");
    let payload = sample_payload();
    let err = expect_retryable(target(&url).deliver(&message("e", &payload, None)).await);
    assert!(!err.message.contains("hunter2secret"), "{err}");
}

#[tokio::test]
async fn http_redirect_is_neither_followed_nor_counted_as_delivered() {
    let (base, seen) = serve().await;
    let payload = sample_payload();
    let err = target(&format!("{base}/redirect"))
        .deliver(&message("e", &payload, None))
        .await
        .unwrap_err();
    assert!(!err.retryable && err.message.contains("302"), "{err:?}");
    let paths: Vec<String> = seen.take().into_iter().map(|(path, _, _)| path).collect();
    assert_eq!(paths, ["/redirect"], "the redirect must not be followed");
}

#[tokio::test]
async fn http_response_slower_than_the_timeout_is_retryable() {
    let (base, _seen) = serve().await;
    let payload = sample_payload();
    let slow =
        Target::Http(HttpTarget::new(&format!("{base}/slow"), Duration::from_millis(200)).unwrap());
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
    init();
    assert!(HttpTarget::new("ftp://example.com/x", Duration::from_secs(1)).is_err());
    assert!(HttpTarget::new("not a url", Duration::from_secs(1)).is_err());
}
