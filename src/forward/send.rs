//! Sends a batch of stored events to one target: at most `limit` outstanding at once, each
//! ending by a deadline, answered in the batch's order.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::targets::{DeliveryError, Message, Target};
use crate::signing::sign;
use crate::store::forwarding::StoredEvent;

/// One event on its way to a target.
pub struct Outgoing<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub received_at: OffsetDateTime,
    pub payload: Bytes,
}

impl<'a> From<&'a StoredEvent> for Outgoing<'a> {
    fn from(event: &'a StoredEvent) -> Self {
        Self {
            event_id: &event.event_id,
            event_type: &event.event_type,
            received_at: event.received_at,
            payload: event.payload_bytes(),
        }
    }
}

/// Sends every event; the result at index i is the outcome of `events[i]`: when it was
/// acknowledged, or why not. An attempt not acknowledged by `deadline` counts as a retryable
/// failure.
pub async fn send_batch(
    target: &Target,
    events: Vec<Outgoing<'_>>,
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
            in_flight.push_back(send_one(target, event, deadline, signing_key));
        }
        match in_flight.next().await {
            Some(result) => results.push(result),
            None => return results,
        }
    }
}

async fn send_one(
    target: &Target,
    event: Outgoing<'_>,
    deadline: Instant,
    signing_key: Option<&SecretString>,
) -> Result<OffsetDateTime, DeliveryError> {
    let signature = signing_key.map(|key| sign(key.expose_secret().as_bytes(), &event.payload));
    let message = Message {
        event_id: event.event_id,
        event_type: event.event_type,
        received_at: event.received_at,
        payload: &event.payload,
        signature: signature.as_deref(),
    };
    tokio::time::timeout_at(deadline, target.deliver(&message))
        .await
        .unwrap_or_else(|_| {
            Err(DeliveryError::retryable(
                "not acknowledged before the batch's deadline (within the lease)",
            ))
        })
        .map(|()| OffsetDateTime::now_utc())
}
