//! Log lines (tracing, pretty or JSON) to stderr, with the OpenTelemetry layer beside them
//! when export is on. Every line inside a request or a delivery carries that span's
//! `trace_id` and `span_id` fields.

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::traces::Export;
use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. `RUST_LOG` overrides the configured level of the lines.
/// With an `export`, this service's spans (and the events inside them) at info and above
/// are also sent over OTLP, whatever the lines' level: `level = "warn"` keeps the traces.
pub fn init_tracing(settings: &LogSettings, export: Option<&Export>) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ours = Targets::new().with_target(env!("CARGO_CRATE_NAME"), Level::INFO);
    let otel = export.map(|export| export.layer().with_filter(ours));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match settings.format {
        LogFormat::Json => lines.json().flatten_event(true).with_filter(filter).boxed(),
        LogFormat::Pretty => lines.with_filter(filter).boxed(),
    };
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(otel)
        .with(lines)
        .try_init();
}
