//! `[telemetry.otlp]`: trace export over OTLP/HTTP, off by default. The standard `OTEL_*`
//! variables are read over the file (see [`otel_environment`]), so an operator's usual
//! collector settings work unchanged.

use figment::Figment;
use serde::{Deserialize, Serialize};

/// The samplers the OpenTelemetry specification names for `OTEL_TRACES_SAMPLER`.
pub const SAMPLERS: [&str; 6] = [
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    pub otlp: OtlpSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpSettings {
    /// Export spans at all. Setting `OTEL_EXPORTER_OTLP_ENDPOINT` turns it on.
    pub enabled: bool,
    /// The collector's base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`); spans go to `/v1/traces`.
    pub endpoint: String,
    /// The full URL for spans, used as it is (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    pub traces_endpoint: Option<String>,
    /// `service.name` of every span (`OTEL_SERVICE_NAME`).
    pub service_name: String,
    /// One of [`SAMPLERS`] (`OTEL_TRACES_SAMPLER`).
    pub sampler: String,
    /// The ratio of the `*traceidratio` samplers, 0 to 1 (`OTEL_TRACES_SAMPLER_ARG`).
    pub sampler_arg: Option<f64>,
    /// Finished spans waiting for export; past it new spans are dropped (and counted).
    pub queue_size: usize,
    /// Spans in one export request.
    pub batch_size: usize,
    /// How long spans are gathered before a request that is not full is sent.
    pub interval_ms: u64,
    /// One export request's deadline; its spans are dropped (and counted) past it.
    pub timeout_ms: u64,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: "http://localhost:4318".to_owned(),
            traces_endpoint: None,
            service_name: "audian-receiver".to_owned(),
            sampler: "parentbased_always_on".to_owned(),
            sampler_arg: None,
            queue_size: 2048,
            batch_size: 512,
            interval_ms: 5000,
            timeout_ms: 10_000,
        }
    }
}

impl OtlpSettings {
    /// Where spans are sent.
    pub fn traces_url(&self) -> String {
        match &self.traces_endpoint {
            Some(url) => url.clone(),
            None => format!("{}/v1/traces", self.endpoint.trim_end_matches('/')),
        }
    }

    pub(super) fn check(&self, problems: &mut Vec<String>) {
        let urls = [
            (
                "endpoint",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                Some(&self.endpoint),
            ),
            (
                "traces_endpoint",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                self.traces_endpoint.as_ref(),
            ),
        ];
        for (key, variable, url) in urls {
            let Some(url) = url else { continue };
            if !url.starts_with("http://") {
                problems.push(format!(
                    "telemetry.otlp.{key} ({variable}) must be an http:// URL (got {url:?}): \
                     export speaks OTLP/HTTP without TLS, to a collector beside the receiver"
                ));
            } else if url.parse::<axum::http::Uri>().is_err() {
                problems.push(format!(
                    "telemetry.otlp.{key} ({variable}) is not a valid URL (got {url:?})"
                ));
            }
        }
        if !SAMPLERS.contains(&self.sampler.as_str()) {
            problems.push(format!(
                "telemetry.otlp.sampler (OTEL_TRACES_SAMPLER) must be one of {} (got {:?})",
                SAMPLERS.join(", "),
                self.sampler
            ));
        }
        if let Some(ratio) = self.sampler_arg
            && !(0.0..=1.0).contains(&ratio)
        {
            problems.push(format!(
                "telemetry.otlp.sampler_arg (OTEL_TRACES_SAMPLER_ARG) must be between 0 and 1 (got {ratio})"
            ));
        }
        if self.service_name.is_empty() {
            problems.push(
                "telemetry.otlp.service_name (OTEL_SERVICE_NAME) must not be empty".to_owned(),
            );
        }
        let sizes = [
            ("queue_size", self.queue_size as u64),
            ("batch_size", self.batch_size as u64),
            ("interval_ms", self.interval_ms),
            ("timeout_ms", self.timeout_ms),
        ];
        for (key, value) in sizes {
            if value == 0 {
                problems.push(format!("telemetry.otlp.{key} must be > 0"));
            }
        }
    }
}

/// The standard variables, as overrides of `[telemetry.otlp]`: an endpoint turns export on,
/// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turns it off. `read` is the
/// environment (a parameter so tests need not change the process's).
pub fn otel_environment(read: impl Fn(&str) -> Option<String>) -> Figment {
    let mut figment = Figment::new();
    let mut set = |key: &str, value: figment::value::Value| {
        figment = std::mem::take(&mut figment).merge((format!("telemetry.otlp.{key}"), value));
    };
    for (variable, key) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "endpoint"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "traces_endpoint"),
    ] {
        if let Some(url) = read(variable).filter(|v| !v.is_empty()) {
            set(key, url.into());
            set("enabled", true.into());
        }
    }
    if let Some(name) = read("OTEL_SERVICE_NAME") {
        set("service_name", name.into());
    }
    if let Some(sampler) = read("OTEL_TRACES_SAMPLER") {
        set("sampler", sampler.into());
    }
    if let Some(arg) = read("OTEL_TRACES_SAMPLER_ARG") {
        // Not a number: left a string, so the error names the key.
        match arg.trim().parse::<f64>() {
            Ok(ratio) => set("sampler_arg", ratio.into()),
            Err(_) => set("sampler_arg", arg.into()),
        }
    }
    let disabled = read("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let none = read("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    if disabled || none {
        set("enabled", false.into());
    }
    figment
}
