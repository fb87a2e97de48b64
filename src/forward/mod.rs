//! Forwarding recorded events to downstream targets: each target reads the events log
//! through its own cursor, and failed events are retried from rows of their own.

mod gauges;
mod listen;
mod retry;
mod send;
pub mod targets;
mod worker;

pub use retry::{Next, RetryPolicy};
pub use worker::{Forwarder, Step};
