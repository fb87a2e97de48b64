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
use tracing::field::Empty;
use tracing::{Instrument, Span};

use super::targets::kafka::KafkaTarget;
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
/// attempt not acknowledged by `deadline` counts as a retryable failure. A target that takes
/// batches (Kafka) is handed them all at once; the others get at most `limit` outstanding.
pub async fn send_batch(
    target: &Target,
    name: &str,
    events: Vec<Result<Outgoing<'_>, DeliveryError>>,
    limit: usize,
    deadline: Instant,
    signing_key: Option<&SecretString>,
) -> Vec<Result<OffsetDateTime, DeliveryError>> {
    let attempts = events
        .into_iter()
        .map(|event| event.map(|event| Attempt::new(target, name, event, signing_key)));
    if let Some(batching) = target.batching() {
        return send_together(target, batching, attempts.collect(), deadline).await;
    }
    let mut results = Vec::new();
    let mut waiting = attempts;
    let mut in_flight = FuturesOrdered::new();
    loop {
        while in_flight.len() < limit.max(1) {
            let Some(attempt) = waiting.next() else { break };
            in_flight.push_back(send_one(target, attempt, deadline));
        }
        match in_flight.next().await {
            Some(result) => results.push(result),
            None => return results,
        }
    }
}

/// One attempt at one event: its `forward.send` span in the event's trace, and what the
/// message carries of it.
struct Attempt<'a> {
    event: Outgoing<'a>,
    span: Span,
    traceparent: String,
    tracestate: Option<String>,
    signature: Option<String>,
}

impl<'a> Attempt<'a> {
    fn new(
        target: &Target,
        name: &str,
        event: Outgoing<'a>,
        signing_key: Option<&SecretString>,
    ) -> Self {
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
        let signature = signing_key.map(|key| sign(key.expose_secret().as_bytes(), &event.payload));
        Self {
            traceparent: own.parent.to_string(),
            tracestate: own.state,
            signature,
            span,
            event,
        }
    }

    fn message(&self) -> Message<'_> {
        Message {
            event_id: self.event.event_id,
            event_type: self.event.event_type,
            received_at: self.event.received_at,
            payload: &self.event.payload,
            signature: self.signature.as_deref(),
            traceparent: &self.traceparent,
            tracestate: self.tracestate.as_deref(),
        }
    }

    /// Records the outcome on the span (which ends when the attempt is dropped).
    fn finish(&self, result: Result<(), DeliveryError>) -> Result<OffsetDateTime, DeliveryError> {
        match &result {
            Ok(()) => self.span.record("outcome", "delivered"),
            Err(error) => self
                .span
                .record("outcome", "failed")
                .record("retryable", error.retryable)
                .record("otel.status_code", "ERROR"),
        };
        result.map(|()| OffsetDateTime::now_utc())
    }
}

fn too_late() -> DeliveryError {
    DeliveryError::retryable("not acknowledged before the batch's deadline (within the lease)")
}

async fn send_one(
    target: &Target,
    attempt: Result<Attempt<'_>, DeliveryError>,
    deadline: Instant,
) -> Result<OffsetDateTime, DeliveryError> {
    let attempt = attempt?;
    let message = attempt.message();
    let result = tokio::time::timeout_at(deadline, target.deliver(&message))
        .instrument(attempt.span.clone())
        .await
        .unwrap_or_else(|_| Err(too_late()));
    attempt.finish(result)
}

/// The whole batch in one call to the target, which answers for each message in order.
async fn send_together(
    target: &Target,
    batching: &KafkaTarget,
    attempts: Vec<Result<Attempt<'_>, DeliveryError>>,
    deadline: Instant,
) -> Vec<Result<OffsetDateTime, DeliveryError>> {
    let messages: Vec<Message<'_>> = attempts
        .iter()
        .filter_map(|a| a.as_ref().ok().map(Attempt::message))
        .collect();
    let outcomes = match tokio::time::timeout_at(deadline, batching.deliver_batch(&messages)).await
    {
        Ok(outcomes) => outcomes,
        Err(_) => vec![Err(too_late()); messages.len()],
    };
    let mut outcomes = outcomes.into_iter();
    attempts
        .iter()
        .map(|attempt| match attempt {
            Ok(attempt) => {
                let result = outcomes
                    .next()
                    .unwrap_or_else(|| Err(DeliveryError::retryable("the target gave no outcome")));
                attempt
                    .span
                    .in_scope(|| target.log(&attempt.message(), &result));
                attempt.finish(result)
            }
            Err(error) => Err(error.clone()),
        })
        .collect()
}
