//! What the service tells its operator: log lines, Prometheus metrics and, when export is
//! on, OpenTelemetry traces. Each has its own file; W3C trace context, which every event
//! carries from Audian's request to the consumer, lives with the traces.

mod export;
pub mod logs;
pub mod metrics;
pub mod traces;

pub use logs::init_tracing;
pub use metrics::*;
pub use traces::{Export, TraceContext, TraceParent};
