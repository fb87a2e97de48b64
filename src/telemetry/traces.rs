//! W3C Trace Context (level 1) from Audian's request to every forwarded message: parsed,
//! stored with the event, and linked to the request and delivery spans. With export on, the
//! spans' ids are OpenTelemetry's (so what is stored and forwarded is what the collector
//! sees); with it off, this module makes them, and the trace still reaches the consumer.

use std::fmt::{self, Write as _};

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use super::export::Export;

/// Longest `tracestate` kept: the level-1 limit of 32 members fits in 512 characters.
const TRACESTATE_MAX: usize = 512;

/// A `traceparent`: trace id, the id of the span that is the parent, and trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// A header value as level 1 defines it: version 00 is exactly 55 characters; a later
    /// version may append fields after a `-`; `ff` is never valid. Lowercase hex only, and
    /// neither id all zeros. `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim_matches([' ', '\t']);
        let bytes = value.as_bytes();
        if bytes.len() < 55 || [2, 35, 52].iter().any(|&i| bytes[i] != b'-') {
            return None;
        }
        let version = lower_hex::<1>(&value[..2])?[0];
        let longer = bytes.len() > 55;
        if version == 0xff || (version == 0 && longer) || (longer && bytes[55] != b'-') {
            return None;
        }
        let parent = TraceParent {
            trace_id: lower_hex(&value[3..35])?,
            span_id: lower_hex(&value[36..52])?,
            flags: lower_hex::<1>(&value[53..55])?[0],
        };
        let zero = parent.trace_id == [0; 16] || parent.span_id == [0; 8];
        (!zero).then_some(parent)
    }

    /// The same trace, with `span_id` as the parent (the flags kept).
    pub fn child(self, span_id: [u8; 8]) -> Self {
        Self { span_id, ..self }
    }

    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex::encode(self.span_id)
    }
}

/// Always version 00, as this receiver speaks it.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::with_capacity(55);
        text.push_str("00-");
        text.push_str(&self.trace_id_hex());
        text.push('-');
        text.push_str(&self.span_id_hex());
        let _ = write!(text, "-{:02x}", self.flags);
        f.write_str(&text)
    }
}

fn lower_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// A span's place in a trace: its `traceparent` (whose parent id is the span itself) and
/// the vendors' `tracestate` that travels with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub parent: TraceParent,
    pub state: Option<String>,
}

impl TraceContext {
    /// From a request's headers: `None` when `traceparent` is missing or malformed (the
    /// caller starts a new trace, and says so, at debug level only). A malformed or oversized `tracestate` is dropped alone;
    /// several `tracestate` headers are one list.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<Self> {
        let mut parents = headers.get_all("traceparent").iter();
        let (Some(value), None) = (parents.next(), parents.next()) else {
            return None;
        };
        let parent = value.to_str().ok().and_then(TraceParent::parse)?;
        let states: Option<Vec<&str>> = headers
            .get_all("tracestate")
            .iter()
            .map(|v| v.to_str().ok())
            .collect();
        let state = states.map(|s| s.join(",")).filter(|s| valid_state(s));
        Some(Self { parent, state })
    }

    /// As stored in `events.trace_context`: the `traceparent`, then a space and the
    /// `tracestate` when there is one.
    pub fn to_stored(&self) -> String {
        match &self.state {
            Some(state) => format!("{} {state}", self.parent),
            None => self.parent.to_string(),
        }
    }

    /// What [`TraceContext::to_stored`] wrote; `None` for anything else.
    pub fn from_stored(stored: &str) -> Option<Self> {
        let (parent, state) = match stored.split_once(' ') {
            Some((parent, state)) => (parent, Some(state.to_owned())),
            None => (stored, None),
        };
        Some(Self {
            parent: TraceParent::parse(parent)?,
            state,
        })
    }

    fn to_otel(&self) -> Context {
        let state = self.state.as_deref().and_then(|s| s.parse().ok());
        let remote = SpanContext::new(
            TraceId::from_bytes(self.parent.trace_id),
            SpanId::from_bytes(self.parent.span_id),
            TraceFlags::new(self.parent.flags),
            true,
            state.unwrap_or_default(),
        );
        Context::new().with_remote_span_context(remote)
    }
}

/// Printable ASCII, within the size limit, and each non-empty member a `key=value`.
fn valid_state(state: &str) -> bool {
    state.len() <= TRACESTATE_MAX
        && state.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && state
            .split(',')
            .map(|m| m.trim_matches([' ', '\t']))
            .all(|m| {
                m.is_empty()
                    || m.split_once('=')
                        .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty())
            })
}

/// Makes `span` a child of `parent` in the exported trace. Call before the span is first
/// entered; without export it does nothing.
pub fn adopt(span: &Span, parent: Option<&TraceContext>) {
    if let Some(parent) = parent {
        let _ = span.set_parent(parent.to_otel());
    }
}

/// `span`'s own context, recorded on it as `trace_id` and `span_id` (so its log lines carry
/// them). With export on, OpenTelemetry's ids; otherwise a new span id in `parent`'s trace,
/// or a new trace (not sampled: nothing of it is recorded here) when there is no parent.
pub fn context_of(span: &Span, parent: Option<&TraceContext>) -> TraceContext {
    let otel = span.context();
    let exported = otel.span().span_context().clone();
    let context = if exported.is_valid() {
        let state = exported.trace_state().header();
        TraceContext {
            parent: TraceParent {
                trace_id: exported.trace_id().to_bytes(),
                span_id: exported.span_id().to_bytes(),
                flags: exported.trace_flags().to_u8(),
            },
            state: (!state.is_empty()).then_some(state),
        }
    } else {
        match parent {
            Some(parent) => TraceContext {
                parent: parent.parent.child(new_span_id()),
                state: parent.state.clone(),
            },
            None => TraceContext {
                parent: TraceParent {
                    trace_id: new_trace_id(),
                    span_id: new_span_id(),
                    flags: 0,
                },
                state: None,
            },
        }
    };
    span.record("trace_id", context.parent.trace_id_hex());
    span.record("span_id", context.parent.span_id_hex());
    context
}

fn new_trace_id() -> [u8; 16] {
    loop {
        let id: [u8; 16] = rand::random();
        if id != [0; 16] {
            return id;
        }
    }
}

fn new_span_id() -> [u8; 8] {
    loop {
        let id: [u8; 8] = rand::random();
        if id != [0; 8] {
            return id;
        }
    }
}

#[cfg(test)]
mod tests;
