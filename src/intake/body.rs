//! Reads a request body into memory without ever holding more than the limit, whether or
//! not the client declared a Content-Length, and within a process-wide budget of body bytes
//! in flight, so a flood of large bodies costs bounded memory however many clients send.

use std::sync::Arc;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::refusal::Refusal;

/// The first allocation for a body, whatever length it declares: an unauthenticated
/// client must send bytes, not merely promise them, to make the buffer grow.
const INITIAL_CAPACITY: usize = 16 * 1024;

/// Bytes of request bodies held in memory at once, across all requests.
#[derive(Clone)]
pub struct BodyBudget(Arc<Semaphore>);

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }

    /// Takes `bytes` from the budget now or fails: a request never waits for memory.
    fn take(&self, bytes: usize) -> Result<OwnedSemaphorePermit, Refusal> {
        let bytes = u32::try_from(bytes).map_err(|_| Refusal::PayloadTooLarge)?;
        self.0
            .clone()
            .try_acquire_many_owned(bytes)
            .map_err(|_| Refusal::Overloaded)
    }
}

/// A body read whole, with the share of the budget it holds until it is dropped.
pub struct ReadBody {
    pub bytes: Bytes,
    _held: Option<OwnedSemaphorePermit>,
}

/// Reads `body` (whose declared length, if any, already passed the limit check) up to
/// `limit` bytes. Declared bytes are taken from the budget up front, undeclared ones as
/// they arrive.
pub async fn read_limited(
    body: &mut Body,
    declared: Option<u64>,
    limit: usize,
    budget: &BodyBudget,
) -> Result<ReadBody, Refusal> {
    let mut held = match declared {
        Some(len) => Some(budget.take(len as usize)?),
        None => None,
    };
    let capacity = declared.map_or(INITIAL_CAPACITY, |len| (len as usize).min(INITIAL_CAPACITY));
    let mut buffer = BytesMut::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        // A body that errors mid-way is a client that went away mid-request.
        let frame = frame.map_err(|_| Refusal::BodyTimeout)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = buffer.len() + data.len();
        if total > limit {
            return Err(Refusal::PayloadTooLarge);
        }
        let covered = held.as_ref().map_or(0, |permit| permit.num_permits());
        if total > covered {
            let more = budget.take(total - covered)?;
            match held.as_mut() {
                Some(permit) => permit.merge(more),
                None => held = Some(more),
            }
        }
        buffer.extend_from_slice(&data);
    }
    Ok(ReadBody {
        bytes: buffer.freeze(),
        _held: held,
    })
}
