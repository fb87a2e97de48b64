//! Log lines (tracing, pretty or JSON) to stderr, with the OpenTelemetry layer beside them
//! when export is on. Every line inside a request or a delivery carries that span's
//! `trace_id` and `span_id` fields.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::traces::Export;
use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. `RUST_LOG` overrides the configured level. With an
/// `export`, spans are also sent over OTLP (the filter applies to them as to lines).
pub fn init_tracing(settings: &LogSettings, export: Option<&Export>) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let otel = export.map(Export::layer);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match settings.format {
        LogFormat::Json => registry.with(lines.json().flatten_event(true)).try_init(),
        LogFormat::Pretty => registry.with(lines).try_init(),
    };
}
