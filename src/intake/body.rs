//! Reads a request body into memory without ever holding more than the limit, whether or
//! not the client declared a Content-Length.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use super::Refusal;

pub async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Refusal::PayloadTooLarge);
    }
    let mut body = body;
    let mut buffer = BytesMut::with_capacity(declared.map_or(8 * 1024, |len| len as usize));
    while let Some(frame) = body.frame().await {
        // A body that errors mid-way is a client that went away mid-request.
        let frame = frame.map_err(|_| Refusal::BodyTimeout)?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > limit {
                return Err(Refusal::PayloadTooLarge);
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}
