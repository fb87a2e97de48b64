//! Every way the public listener can refuse a request, and the exact JSON it answers with.
//! Bodies are fixed strings: nothing internal (SQL, driver, panic text) can reach them.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Forbidden,
    TooManyRequests { retry_after: Duration },
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    InvalidSignature,
    UnsupportedMediaType,
    InvalidPayload,
    InvalidRequest,
    BodyTimeout,
    Unavailable,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidSignature => StatusCode::UNAUTHORIZED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidPayload | Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn body(self) -> &'static str {
        match self {
            Self::Forbidden => r#"{"error":"Forbidden"}"#,
            Self::TooManyRequests { .. } => r#"{"error":"Too many requests"}"#,
            Self::NotFound => r#"{"error":"Not found"}"#,
            Self::MethodNotAllowed => r#"{"error":"Method not allowed"}"#,
            Self::PayloadTooLarge => r#"{"error":"Payload too large"}"#,
            Self::InvalidSignature => r#"{"error":"Invalid signature"}"#,
            Self::UnsupportedMediaType => r#"{"error":"Unsupported media type"}"#,
            Self::InvalidPayload => r#"{"error":"Invalid payload"}"#,
            Self::InvalidRequest => r#"{"error":"Invalid request"}"#,
            Self::BodyTimeout => r#"{"error":"Request timeout"}"#,
            Self::Unavailable => r#"{"error":"Service unavailable"}"#,
        }
    }

    /// The metric label for this refusal.
    pub fn label(self) -> &'static str {
        match self {
            Self::Forbidden => "forbidden",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::InvalidSignature => "invalid_signature",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidRequest => "invalid_request",
            Self::BodyTimeout => "body_timeout",
            Self::Unavailable => "unavailable",
        }
    }

    fn retry_after(self) -> Option<u64> {
        match self {
            Self::TooManyRequests { retry_after } => Some(retry_after.as_secs().max(1)),
            Self::Unavailable => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

/// Long enough for a database restart or failover, short enough not to pile up a backlog.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status(), json_body(self.body())).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The one success answer.
pub fn accepted() -> Response {
    (StatusCode::OK, json_body(r#"{"status":"ok"}"#)).into_response()
}

fn json_body(body: &'static str) -> ([(header::HeaderName, HeaderValue); 1], &'static str) {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
}
