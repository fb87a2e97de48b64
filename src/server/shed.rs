//! Load shedding: at most `server.max_concurrent_requests` requests are handled at once;
//! past that a request is answered 503 + Retry-After at once, before any other work, so a
//! flood queues nowhere in the process.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Semaphore;

use crate::intake::refusal::Refusal;
use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct Shed {
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Shed {
    pub fn new(max_concurrent_requests: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_concurrent_requests)),
            metrics,
        }
    }
}

pub async fn check(State(shed): State<Shed>, request: Request, next: Next) -> Response {
    match shed.slots.clone().try_acquire_owned() {
        Ok(_slot) => next.run(request).await,
        Err(_) => {
            shed.metrics.count_request(Refusal::Overloaded.label());
            Refusal::Overloaded.answer_request(request)
        }
    }
}
