//! Logs (tracing, pretty or JSON) and Prometheus metrics.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. `RUST_LOG` overrides the configured level.
pub fn init_tracing(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub target: String,
    pub outcome: &'static str,
}

/// Every metric the service exports, registered once.
pub struct Metrics {
    registry: Registry,
    /// Webhook requests by outcome (accepted, duplicate, invalid_signature, …).
    pub requests: Family<OutcomeLabel, Counter>,
    /// Recorded ids posted again with different bytes.
    pub duplicate_mismatches: Counter,
    /// Forward attempts by target and outcome (delivered, retry, dead).
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// Deliveries pending, as last seen by the periodic gauge query.
    pub pending: Gauge,
    /// Age of the oldest open writing transaction on the cluster, which holds forwarding back.
    pub watermark_lag: Gauge<f64, AtomicU64>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("audian_receiver");
        let requests = Family::<OutcomeLabel, Counter>::default();
        let duplicate_mismatches = Counter::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let pending = Gauge::default();
        let watermark_lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "webhook_requests",
            "Webhook requests by outcome",
            requests.clone(),
        );
        registry.register(
            "duplicate_payload_mismatches",
            "Recorded event ids posted again with a different body",
            duplicate_mismatches.clone(),
        );
        registry.register(
            "forward_attempts",
            "Forward attempts by target and outcome",
            deliveries.clone(),
        );
        registry.register(
            "forward_pending",
            "Deliveries waiting to be forwarded",
            pending.clone(),
        );
        registry.register_with_unit(
            "forward_watermark_lag",
            "Age of the oldest open writing transaction on the Postgres cluster: forwarding reads only events older than it",
            Unit::Seconds,
            watermark_lag.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            duplicate_mismatches,
            deliveries,
            pending,
            watermark_lag,
        })
    }

    pub fn count_request(&self, outcome: &'static str) {
        self.requests.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
