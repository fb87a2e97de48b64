//! Every way the public and admin listeners refuse a request, and the exact JSON each
//! answers with. Bodies are fixed strings: nothing internal (SQL, driver, panic text) can
//! reach them. It lives below both the handler and the listener, which answer with it and
//! import nothing of each other (mini-redis's `frame.rs`).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use prometheus_client::metrics::counter::Counter;

use super::ijson::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Forbidden,
    TooManyRequests {
        retry_after: Duration,
    },
    NotFound,
    MethodNotAllowed,
    /// Two `Content-Type`, `Content-Length` or signature headers: never guess which counts.
    InvalidRequest,
    HeadersTooLarge,
    PayloadTooLarge,
    InvalidSignature,
    UnsupportedMediaType,
    InvalidPayload,
    /// Well-formed JSON that is not I-JSON (RFC 7493): consumers' parsers may fail on it.
    NotIJson(Rule),
    /// The signed timestamp is older than `intake.max_event_age`.
    StaleEvent,
    /// `intake.require_timestamp` is set and the timestamp field is missing.
    MissingTimestamp,
    /// `intake.require_timestamp` is set and the timestamp field does not parse.
    InvalidTimestamp,
    BodyTimeout,
    /// The database could not record the event.
    Unavailable,
    /// Too many requests or request bytes in flight: shed at once, before any work.
    Overloaded,
    /// A panic: a bug, answered without its text.
    Internal,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidRequest
            | Self::InvalidPayload
            | Self::NotIJson(_)
            | Self::StaleEvent
            | Self::MissingTimestamp
            | Self::InvalidTimestamp => StatusCode::BAD_REQUEST,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidSignature => StatusCode::UNAUTHORIZED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(self) -> &'static str {
        match self {
            Self::Forbidden => r#"{"error":"Forbidden"}"#,
            Self::TooManyRequests { .. } => r#"{"error":"Too many requests"}"#,
            Self::NotFound => r#"{"error":"Not found"}"#,
            Self::MethodNotAllowed => r#"{"error":"Method not allowed"}"#,
            Self::InvalidRequest => r#"{"error":"Invalid request"}"#,
            Self::HeadersTooLarge => r#"{"error":"Request header fields too large"}"#,
            Self::PayloadTooLarge => r#"{"error":"Payload too large"}"#,
            Self::InvalidSignature => r#"{"error":"Invalid signature"}"#,
            Self::UnsupportedMediaType => r#"{"error":"Unsupported media type"}"#,
            Self::InvalidPayload | Self::NotIJson(Rule::Malformed) => {
                r#"{"error":"Invalid payload"}"#
            }
            Self::NotIJson(Rule::InvalidUtf8) => {
                r#"{"error":"Invalid payload","reason":"invalid_utf8"}"#
            }
            Self::NotIJson(Rule::LoneSurrogate) => {
                r#"{"error":"Invalid payload","reason":"lone_surrogate"}"#
            }
            Self::NotIJson(Rule::DuplicateMember) => {
                r#"{"error":"Invalid payload","reason":"duplicate_member"}"#
            }
            Self::NotIJson(Rule::TooDeep) => r#"{"error":"Invalid payload","reason":"too_deep"}"#,
            Self::StaleEvent => r#"{"error":"Invalid payload","reason":"stale_event"}"#,
            Self::MissingTimestamp => r#"{"error":"Invalid payload","reason":"missing_timestamp"}"#,
            Self::InvalidTimestamp => r#"{"error":"Invalid payload","reason":"invalid_timestamp"}"#,
            Self::BodyTimeout => r#"{"error":"Request timeout"}"#,
            Self::Unavailable | Self::Overloaded => r#"{"error":"Service unavailable"}"#,
            Self::Internal => r#"{"error":"Internal error"}"#,
        }
    }

    /// The `outcome` label of `webhook_requests_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Forbidden => "forbidden",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::InvalidRequest => "invalid_request",
            Self::HeadersTooLarge => "headers_too_large",
            Self::PayloadTooLarge => "payload_too_large",
            Self::InvalidSignature => "invalid_signature",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidPayload | Self::NotIJson(Rule::Malformed) => "invalid_payload",
            Self::NotIJson(rule) => rule.label(),
            Self::StaleEvent => "stale_event",
            Self::MissingTimestamp => "missing_timestamp",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::BodyTimeout => "body_timeout",
            Self::Unavailable => "unavailable",
            Self::Overloaded => "overloaded",
            Self::Internal => "internal_error",
        }
    }

    fn retry_after(self) -> Option<u64> {
        match self {
            Self::TooManyRequests { retry_after } => Some(retry_after.as_secs().max(1)),
            Self::Unavailable => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            Self::Overloaded => Some(OVERLOADED_RETRY_AFTER_SECS),
            _ => None,
        }
    }

    /// The answer to a request whose body may not have been read (or not to its end),
    /// with the drain policy the router put in its extensions.
    pub fn answer_request(self, request: Request) -> Response {
        let version = request.version();
        let drain = request.extensions().get::<Drain>().cloned();
        self.answer_unread(version, drain.as_ref(), request.into_body())
    }

    /// The answer to a request whose body may not have been read (or not to its end).
    ///
    /// Over HTTP/2 the answer is sent whole and the rest of the body is read and discarded
    /// in the background, up to the drain's bound and deadline, so the stream ends cleanly
    /// with the client's END_STREAM. Resetting it instead — RST_STREAM(NO_ERROR) after the
    /// answer, which RFC 9113 §8.1 allows — makes curl 7.88 and httpx drop the answer they
    /// already hold. Past the bound the body is dropped and the stream reset after all.
    ///
    /// Over HTTP/1.1 the unread body is dropped once the answer has been written: hyper
    /// then closes the connection after the answer (a lingering close), which every client
    /// reads.
    pub fn answer_unread(self, version: Version, drain: Option<&Drain>, unread: Body) -> Response {
        if unread.is_end_stream() {
            return self.into_response();
        }
        if let (Version::HTTP_2, Some(drain)) = (version, drain) {
            tokio::spawn(drain.clone().discard(unread));
            return self.into_response();
        }
        let answer = AnswerThenDrop {
            answer: Some(Bytes::from_static(self.body().as_bytes())),
            _unread: unread,
        };
        self.with_body(Body::new(
            answer.map_err(|never: Infallible| match never {}),
        ))
    }

    fn with_body(self, body: Body) -> Response {
        let mut response = Response::new(body);
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, JSON);
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Long enough for a database restart or failover, short enough not to pile up a backlog.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;
/// Shedding ends as soon as in-flight requests finish: come back soon.
const OVERLOADED_RETRY_AFTER_SECS: u64 = 1;
const JSON: HeaderValue = HeaderValue::from_static("application/json");

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.with_body(Body::from(self.body()))
    }
}

/// The one success answer.
pub fn accepted() -> Response {
    let mut response = Response::new(Body::from(r#"{"status":"ok"}"#));
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

/// How much of a refused request's body is read and thrown away so that an HTTP/2 stream
/// can end cleanly (`server.drain_bytes`, within `server.body_timeout_ms`). Nothing read is
/// kept: each frame is counted and dropped.
#[derive(Clone, Debug)]
pub struct Drain {
    max_bytes: u64,
    timeout: Duration,
    drained: Counter,
}

impl Drain {
    pub fn new(max_bytes: u64, timeout: Duration, drained: Counter) -> Self {
        Self {
            max_bytes,
            timeout,
            drained,
        }
    }

    /// Reads `body` to its end, unless it goes past the bound or the deadline first; the
    /// body is dropped either way.
    async fn discard(self, mut body: Body) {
        let reading = async {
            let mut seen = 0u64;
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                seen += data.len() as u64;
                self.drained.inc_by(data.len() as u64);
                if seen > self.max_bytes {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(self.timeout, reading).await;
    }
}

/// A fixed answer that holds the request's unread body until the answer is sent.
struct AnswerThenDrop {
    answer: Option<Bytes>,
    _unread: Body,
}

impl HttpBody for AnswerThenDrop {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.get_mut()
                .answer
                .take()
                .map(|data| Ok(http_body::Frame::data(data))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.answer.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.answer.as_ref().map_or(0, |a| a.len() as u64))
    }
}
