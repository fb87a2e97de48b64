//! OTLP/HTTP (protobuf) export of sampled spans, behind a bounded queue that never waits:
//! a span that finds the queue full, or whose batch the collector did not take in time, is
//! dropped and counted (`otlp_spans_dropped_total{reason}`). Intake and forwarding only ever
//! `try_send` a finished span; the one export task does the network.

use std::sync::LazyLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
// With no client given, the builder uses hyper (the `hyper-client` feature).
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracerProvider, Span, SpanData, SpanExporter as _, SpanProcessor, Tracer,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::registry::LookupSpan;

use super::metrics::ReasonLabel;
use crate::config::OtlpSettings;

/// Why a span was not exported, as `otlp_spans_dropped_total{reason}` counts it.
pub const DROP_REASONS: [&str; 2] = ["queue_full", "export_failed"];

/// One counter for the process: export is process-wide, as the subscriber is.
static DROPPED: LazyLock<Family<ReasonLabel, Counter>> = LazyLock::new(|| {
    let family = Family::default();
    for reason in DROP_REASONS {
        family.get_or_create_owned(&ReasonLabel { reason });
    }
    family
});

/// The spans dropped so far, by reason (registered in [`super::Metrics`]).
pub fn spans_dropped() -> Family<ReasonLabel, Counter> {
    DROPPED.clone()
}

fn count_dropped(reason: &'static str, n: usize) {
    DROPPED
        .get_or_create(&ReasonLabel { reason })
        .inc_by(n as u64);
}

/// A running export: the tracer the subscriber's layer uses, and the task that sends.
pub struct Export {
    provider: SdkTracerProvider,
    tracer: Tracer,
    task: JoinHandle<()>,
    stop: CancellationToken,
}

impl Export {
    /// Starts exporting when `settings` say so (`None` otherwise). Call inside the Tokio
    /// runtime: the export task and its HTTP client run on it.
    pub fn start(settings: &OtlpSettings) -> Result<Option<Export>, String> {
        if !settings.enabled {
            return Ok(None);
        }
        let timeout = Duration::from_millis(settings.timeout_ms);
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(settings.traces_url())
            .with_timeout(timeout)
            .build()
            .map_err(|e| format!("telemetry.otlp: {e}"))?;
        let resource = Resource::builder_empty()
            .with_service_name(settings.service_name.clone())
            .build();
        exporter.set_resource(&resource);
        let (queue, spans) = mpsc::channel(settings.queue_size);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            exporter,
            spans,
            settings.batch_size,
            Duration::from_millis(settings.interval_ms),
            stop.clone(),
        ));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(Queue { queue })
            .with_sampler(sampler(settings))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("audian-receiver");
        Ok(Some(Export {
            provider,
            tracer,
            task,
            stop,
        }))
    }

    /// The layer that turns `tracing` spans into exported spans.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, Tracer>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer.clone())
            .with_threads(false)
            .with_location(false)
            // Neither is used here, and each costs every request two clock reads or a
            // context attach/detach per poll of its future, sampled or not (bench/run.sh,
            // phase otlp): no busy_ns/idle_ns attributes, and nothing reads
            // opentelemetry's Context::current() (traces.rs asks the span itself).
            .with_tracked_inactivity(false)
            .with_context_activation(false)
    }

    /// Sends what is queued, within `deadline`; spans ended after this are dropped.
    pub async fn shutdown(self, deadline: Duration) {
        // The subscriber's layer keeps the provider (and so the queue) alive: stop the task
        // by its token, after it sends what is queued.
        self.stop.cancel();
        let _ = self.provider.shutdown();
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!("span export did not finish before the shutdown deadline");
        }
    }
}

/// `telemetry.otlp.sampler` (validated by the settings' checks).
fn sampler(settings: &OtlpSettings) -> Sampler {
    let ratio = settings.sampler_arg.unwrap_or(1.0);
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    match settings.sampler.as_str() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio),
        "parentbased_always_off" => parent_based(Sampler::AlwaysOff),
        "parentbased_traceidratio" => parent_based(Sampler::TraceIdRatioBased(ratio)),
        _ => parent_based(Sampler::AlwaysOn),
    }
}

/// Hands finished, sampled spans to the export task without ever waiting.
#[derive(Debug)]
struct Queue {
    queue: mpsc::Sender<SpanData>,
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queue.try_send(span).is_err() {
            count_dropped("queue_full", 1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Every `interval`, sends what is queued in batches of at most `batch_size`; once `stop`
/// fires, sends what is left and ends.
async fn run(
    exporter: opentelemetry_otlp::SpanExporter,
    mut spans: mpsc::Receiver<SpanData>,
    batch_size: usize,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        let mut batch = Vec::with_capacity(batch_size);
        let mut stopping = tokio::select! {
            got = spans.recv_many(&mut batch, batch_size) => got == 0,
            _ = stop.cancelled() => true,
        };
        // Gather for the rest of the interval unless the batch is already full.
        let gather = tokio::time::sleep(interval);
        tokio::pin!(gather);
        while !stopping && batch.len() < batch_size {
            let room = batch_size - batch.len();
            tokio::select! {
                _ = &mut gather => break,
                got = spans.recv_many(&mut batch, room) => stopping = got == 0,
                _ = stop.cancelled() => stopping = true,
            }
        }
        if stopping {
            while let Ok(span) = spans.try_recv() {
                batch.push(span);
            }
            for chunk in batch.chunks(batch_size.max(1)) {
                send(&exporter, chunk.to_vec()).await;
            }
            return;
        }
        send(&exporter, batch).await;
    }
}

async fn send(exporter: &opentelemetry_otlp::SpanExporter, batch: Vec<SpanData>) {
    let n = batch.len();
    if n == 0 {
        return;
    }
    if let Err(error) = exporter.export(batch).await {
        count_dropped("export_failed", n);
        tracing::debug!(%error, spans = n, "span export failed; spans dropped");
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Span as _, Tracer as _};

    use super::*;

    fn dropped(reason: &'static str) -> u64 {
        DROPPED.get_or_create(&ReasonLabel { reason }).get()
    }

    #[test]
    fn telemetry_a_full_queue_drops_and_counts_spans_instead_of_waiting() {
        let (queue, _waiting) = mpsc::channel(1);
        let provider = SdkTracerProvider::builder()
            .with_span_processor(Queue { queue })
            .build();
        let tracer = provider.tracer("test");
        let before = dropped("queue_full");
        for _ in 0..3 {
            tracer.start("work").end();
        }
        assert!(dropped("queue_full") - before >= 2);
    }

    #[test]
    fn telemetry_spans_that_are_not_sampled_are_never_queued() {
        let (queue, mut waiting) = mpsc::channel(8);
        let provider = SdkTracerProvider::builder()
            .with_span_processor(Queue { queue })
            .with_sampler(Sampler::AlwaysOff)
            .build();
        provider.tracer("test").start("work").end();
        assert!(waiting.try_recv().is_err());
    }
}
