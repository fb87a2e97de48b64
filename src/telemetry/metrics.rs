//! Prometheus metrics: every series the service exports, registered once per application.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabel {
    pub key: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    pub target: String,
}

impl TargetLabel {
    pub fn new(target: &str) -> Self {
        Self {
            target: target.to_owned(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub target: String,
    pub outcome: &'static str,
}

/// The outcomes of a forward attempt, as `forward_deliveries_total{outcome}` counts them.
pub const DELIVERY_OUTCOMES: [&str; 3] = ["delivered", "retry", "dead"];

/// Request latency, in seconds: 1 ms to 10 s.
const REQUEST_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Receipt to delivery, in seconds: 10 ms (the happy path) to a day (retries after an outage).
const DELIVERY_BUCKETS: [f64; 16] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    86400.0,
];

fn delivery_histogram() -> Histogram {
    Histogram::new(DELIVERY_BUCKETS)
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the service exports (prefix `audian_receiver_`, base units), registered once.
pub struct Metrics {
    registry: Registry,
    /// Webhook requests by outcome (accepted, duplicate, invalid_signature, …).
    pub requests: Family<OutcomeLabel, Counter>,
    /// Latency of the webhook handler, from the request's arrival to its answer.
    pub request_duration: Histogram,
    /// Valid signatures by the key that made them: `current` or `previous` (rotation).
    pub signature_matches: Family<KeyLabel, Counter>,
    /// Recorded ids posted again with different bytes.
    pub duplicate_mismatches: Counter,
    /// Failed database work: group commits that failed or timed out, forwarding queries that
    /// failed, and failed gauge queries.
    pub db_errors: Counter,
    /// Forward attempts by target and outcome (delivered, retry, dead).
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// From receipt of an event to its delivery to a target, by target.
    pub delivery_latency: Family<TargetLabel, Histogram, fn() -> Histogram>,
    /// Deliveries waiting per target (retrying, or not yet reached by the cursor), as last
    /// seen by the periodic gauge query.
    pub pending: Family<TargetLabel, Gauge>,
    /// Age of the oldest of those, per target.
    pub oldest_pending: Family<TargetLabel, FloatGauge>,
    /// Deliveries given up on (dead), per target.
    pub dead: Family<TargetLabel, Gauge>,
    /// 1 while a target is parked (it failed a whole batch; its cursor holds), per target.
    pub parked: Family<TargetLabel, Gauge>,
    /// Age of the oldest open writing transaction on the cluster, which holds forwarding back.
    pub watermark_lag: FloatGauge,
    /// Public connections closed, by reason (handshake_timeout, header_timeout, …).
    pub connections_closed: Family<ReasonLabel, Counter>,
    /// Bytes of refused requests' bodies read and thrown away so HTTP/2 streams end cleanly.
    pub drained_bytes: Counter,
    /// Accepted events whose timestamp field was missing or unreadable, by why.
    pub without_timestamp: Family<ReasonLabel, Counter>,
}

/// Why a public connection closed, as `connections_closed_total{reason}` counts it.
pub const CLOSE_REASONS: [&str; 6] = [
    "handshake_failed",
    "handshake_timeout",
    "header_timeout",
    "idle_timeout",
    "shutdown",
    "ended",
];

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("audian_receiver");
        let requests = Family::<OutcomeLabel, Counter>::default();
        let request_duration = Histogram::new(REQUEST_BUCKETS);
        let signature_matches = Family::<KeyLabel, Counter>::default();
        let duplicate_mismatches = Counter::default();
        let db_errors = Counter::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let delivery_latency =
            Family::<TargetLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                delivery_histogram,
            );
        let pending = Family::<TargetLabel, Gauge>::default();
        let oldest_pending = Family::<TargetLabel, FloatGauge>::default();
        let dead = Family::<TargetLabel, Gauge>::default();
        let parked = Family::<TargetLabel, Gauge>::default();
        let watermark_lag = FloatGauge::default();
        let connections_closed = Family::<ReasonLabel, Counter>::default();
        let drained_bytes = Counter::default();
        let without_timestamp = Family::<ReasonLabel, Counter>::default();
        for reason in CLOSE_REASONS {
            connections_closed.get_or_create_owned(&ReasonLabel { reason });
        }
        for reason in ["missing", "unreadable"] {
            without_timestamp.get_or_create_owned(&ReasonLabel { reason });
        }
        // Both keys show from the start, so a rate over `previous` is defined (and zero)
        // from the first scrape, not only after the old secret's first match.
        for key in ["current", "previous"] {
            signature_matches.get_or_create_owned(&KeyLabel { key });
        }
        registry.register(
            "webhook_requests",
            "Webhook requests by outcome",
            requests.clone(),
        );
        registry.register_with_unit(
            "webhook_duration",
            "Webhook request latency, from arrival to answer",
            Unit::Seconds,
            request_duration.clone(),
        );
        registry.register(
            "signature_matches",
            "Valid webhook signatures by the key that made them (current, previous)",
            signature_matches.clone(),
        );
        registry.register(
            "duplicate_payload_mismatches",
            "Recorded event ids posted again with a different body",
            duplicate_mismatches.clone(),
        );
        registry.register(
            "db_errors",
            "Database errors: failed or timed-out group commits, failed forwarding and gauge queries",
            db_errors.clone(),
        );
        registry.register(
            "forward_deliveries",
            "Forward attempts by target and outcome (delivered, retry, dead)",
            deliveries.clone(),
        );
        registry.register_with_unit(
            "forward_delivery",
            "Time from an event's receipt to its delivery to a target",
            Unit::Seconds,
            delivery_latency.clone(),
        );
        registry.register(
            "forward_pending",
            "Deliveries waiting per target: retrying, or not yet reached by its cursor",
            pending.clone(),
        );
        registry.register_with_unit(
            "forward_oldest_pending",
            "Age of the oldest delivery waiting per target (0 when none waits)",
            Unit::Seconds,
            oldest_pending.clone(),
        );
        registry.register(
            "forward_dead",
            "Deliveries given up on per target (replay with `events replay`)",
            dead.clone(),
        );
        registry.register(
            "forward_parked",
            "1 while a target is parked: it failed every event of a batch, so its cursor holds and the batch is probed with backoff",
            parked.clone(),
        );
        registry.register_with_unit(
            "forward_watermark_lag",
            "Age of the oldest open writing transaction on the Postgres cluster: forwarding reads only events older than it",
            Unit::Seconds,
            watermark_lag.clone(),
        );
        registry.register(
            "connections_closed",
            "Public connections closed, by reason: handshake_failed, handshake_timeout, header_timeout (no request within server.header_timeout_ms of the handshake), idle_timeout (no request open for server.idle_timeout_ms), shutdown, ended (by the client or after an answer)",
            connections_closed.clone(),
        );
        registry.register_with_unit(
            "drained",
            "Bytes of refused requests' bodies read and discarded so that HTTP/2 streams end cleanly",
            Unit::Bytes,
            drained_bytes.clone(),
        );
        registry.register(
            "otlp_spans_dropped",
            "Spans not exported, by reason: queue_full (telemetry.otlp.queue_size spans already waiting), export_failed (the collector did not take them within telemetry.otlp.timeout_ms)",
            super::export::spans_dropped(),
        );
        registry.register(
            "events_without_timestamp",
            "Accepted events whose intake.timestamp_field was missing or unreadable (reason: missing, unreadable)",
            without_timestamp.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            request_duration,
            signature_matches,
            duplicate_mismatches,
            db_errors,
            deliveries,
            delivery_latency,
            pending,
            oldest_pending,
            dead,
            parked,
            watermark_lag,
            connections_closed,
            drained_bytes,
            without_timestamp,
        })
    }

    /// Makes every per-target series exist at zero, so a target shows before its first event
    /// and a rate over its counters starts from its first increment.
    pub fn add_target(&self, target: &str) {
        for outcome in DELIVERY_OUTCOMES {
            self.deliveries.get_or_create_owned(&DeliveryLabels {
                target: target.to_owned(),
                outcome,
            });
        }
        let label = TargetLabel::new(target);
        self.delivery_latency.get_or_create_owned(&label);
        self.pending.get_or_create_owned(&label);
        self.oldest_pending.get_or_create_owned(&label);
        self.dead.get_or_create_owned(&label);
        self.parked.get_or_create_owned(&label);
    }

    pub fn count_request(&self, outcome: &'static str) {
        self.requests.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn count_close(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn count_without_timestamp(&self, reason: &'static str) {
        self.without_timestamp
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn count_signature_match(&self, key: &'static str) {
        self.signature_matches
            .get_or_create(&KeyLabel { key })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
