//! Sends a batch of stored events to one target: at most `limit` outstanding at once, each
//! ending by a deadline, answered in the batch's order. A sealed payload is opened here, just
//! before it is sent, and only in memory. Each attempt is a `forward.send` span in the
//! event's stored trace, and the message carries that span's `traceparent`.

use std::borrow::Cow;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

use super::targets::{DeliveryError, Message, Target};
use crate::sealing::PayloadKeys;
use crate::signing::sign;
use crate::store::forwarding::StoredEvent;
use crate::telemetry::traces::{self, TraceContext};

/// One event on its way to a target.
pub struct Outgoing<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub received_at: OffsetDateTime,
    pub payload: Bytes,
    /// Which attempt at this target this is, counting this one.
    pub attempt: i32,
    /// The trace the event arrived in; `None` for events stored before trace context was.
    pub trace: Option<TraceContext>,
}

impl<'a> Outgoing<'a> {
    /// The event with its payload as Audian sent it. A payload that cannot be opened (its
    /// key is not configured, or it does not authenticate) is a permanent failure: it is
    /// logged with the event and key ids, and never sent as it is stored.
    pub fn open(
        event: &'a StoredEvent,
        attempt: i32,
        keys: &PayloadKeys,
    ) -> Result<Self, DeliveryError> {
        let stored = event.payload.as_deref().unwrap_or_default();
        let key_id = event.payload_key_id.as_deref();
        let payload = match keys.open(&event.event_id, key_id, stored) {
            Ok(Cow::Borrowed(clear)) => Bytes::copy_from_slice(clear),
            Ok(Cow::Owned(opened)) => Bytes::from(opened),
            Err(error) => {
                tracing::error!(event_id = %event.event_id, key_id = error.key_id(), %error, "stored payload cannot be opened; not forwarded");
                return Err(DeliveryError::permanent(error.to_string()));
            }
        };
        Ok(Self {
            event_id: &event.event_id,
            event_type: &event.event_type,
            received_at: event.received_at,
            payload,
            attempt,
            trace: event
                .trace_context
                .as_deref()
                .and_then(TraceContext::from_stored),
        })
    }
}

/// Sends every event; the result at index i is the outcome of `events[i]`: when it was
/// acknowledged, or why not (an event that could not be prepared fails as it was). An
/// attempt not acknowledged by `deadline` counts as a retryable failure.
pub async fn send_batch(
    target: &Target,
    name: &str,
    events: Vec<Result<Outgoing<'_>, DeliveryError>>,
    limit: usize,
    deadline: Instant,
    signing_key: Option<&SecretString>,
) -> Vec<Result<OffsetDateTime, DeliveryError>> {
    let mut results = Vec::with_capacity(events.len());
    let mut waiting = events.into_iter();
    let mut in_flight = FuturesOrdered::new();
    loop {
        while in_flight.len() < limit.max(1) {
            let Some(event) = waiting.next() else { break };
            in_flight.push_back(send_one(target, name, event, deadline, signing_key));
        }
        match in_flight.next().await {
            Some(result) => results.push(result),
            None => return results,
        }
    }
}

async fn send_one(
    target: &Target,
    name: &str,
    event: Result<Outgoing<'_>, DeliveryError>,
    deadline: Instant,
    signing_key: Option<&SecretString>,
) -> Result<OffsetDateTime, DeliveryError> {
    let event = event?;
    let span = tracing::info_span!(
        "forward.send",
        target = name,
        kind = target.kind(),
        event_id = event.event_id,
        attempt = event.attempt,
        outcome = Empty,
        retryable = Empty,
        trace_id = Empty,
        span_id = Empty,
        otel.status_code = Empty,
    );
    traces::adopt(&span, event.trace.as_ref());
    let own = traces::context_of(&span, event.trace.as_ref());
    let traceparent = own.parent.to_string();
    let signature = signing_key.map(|key| sign(key.expose_secret().as_bytes(), &event.payload));
    let message = Message {
        event_id: event.event_id,
        event_type: event.event_type,
        received_at: event.received_at,
        payload: &event.payload,
        signature: signature.as_deref(),
        traceparent: &traceparent,
        tracestate: own.state.as_deref(),
    };
    let result = tokio::time::timeout_at(deadline, target.deliver(&message))
        .instrument(span.clone())
        .await
        .unwrap_or_else(|_| {
            Err(DeliveryError::retryable(
                "not acknowledged before the batch's deadline (within the lease)",
            ))
        });
    match &result {
        Ok(()) => span.record("outcome", "delivered"),
        Err(error) => span
            .record("outcome", "failed")
            .record("retryable", error.retryable)
            .record("otel.status_code", "ERROR"),
    };
    result.map(|()| OffsetDateTime::now_utc())
}
