//! Every way the public and admin listeners refuse a request, and the exact JSON each
//! answers with. Bodies are fixed strings: nothing internal (SQL, driver, panic text) can
//! reach them.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;

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
            Self::InvalidRequest | Self::InvalidPayload => StatusCode::BAD_REQUEST,
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
            Self::InvalidPayload => r#"{"error":"Invalid payload"}"#,
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
            Self::InvalidPayload => "invalid_payload",
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

    /// The answer to a request whose body may not have been read (or not to its end). The
    /// unread body is dropped only after the answer has been sent whole: HTTP/2 then ends
    /// the stream with RST_STREAM(NO_ERROR), which tells the client to stop sending and
    /// still read the answer (RFC 9113 §8.1). Dropped earlier, it would be CANCEL, and
    /// clients discard the answer ("stream error in the HTTP/2 framing layer").
    pub fn answer_unread(self, unread: Body) -> Response {
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
