//! The configuration tree, its defaults and its per-section checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{
    ConsoleSettings, IntakeSettings, SecretUrl, SecretsSettings, TargetSettings, TelemetrySettings,
};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub intake: IntakeSettings,
    pub tls: TlsSettings,
    pub admin: AdminSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub forward: ForwardSettings,
    pub retention: RetentionSettings,
    pub secrets: SecretsSettings,
    pub console: ConsoleSettings,
    pub telemetry: TelemetrySettings,
}

/// How long stored events are kept (DESIGN §2). Nothing still waiting for a target is ever
/// removed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Payloads of events every target has passed are dropped after this many days.
    pub payload_days: u32,
    /// Rows (the ids that make Audian's retries duplicates) are removed after this many days.
    pub dedup_days: u32,
    /// Seconds between background sweeps.
    pub sweep_interval_s: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            payload_days: 7,
            dedup_days: 30,
            sweep_interval_s: 300,
        }
    }
}

impl RetentionSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.payload_days == 0 || self.sweep_interval_s == 0 {
            problems.push(
                "retention.payload_days and retention.sweep_interval_s must be > 0".to_owned(),
            );
        }
        if self.dedup_days < self.payload_days {
            problems.push(format!(
                "retention.dedup_days ({}) must be at least retention.payload_days ({}): a row \
                 without its id could not recognise Audian's retries as duplicates",
                self.dedup_days, self.payload_days
            ));
        }
    }
}

/// The public listener that Audian posts to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub path: String,
    pub max_body_bytes: usize,
    /// When non-empty, only these client networks may post (the client address: the TCP
    /// peer, or behind a trusted proxy the forwarded client).
    pub allowed_ips: Vec<IpNet>,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers name the client: only requests
    /// whose TCP peer is inside one of these networks are read for them (default: none).
    pub trusted_proxies: Vec<IpNet>,
    pub rate_limit: Option<RateLimitSettings>,
    /// How long a request may take to send its body.
    pub body_timeout_ms: u64,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace_ms: u64,
    /// Requests handled at once; past it, 503 + Retry-After at once.
    pub max_concurrent_requests: usize,
    /// Connections held at once; past it, a new connection is closed as soon as accepted.
    pub max_connections: usize,
    /// HTTP/2 streams open at once on one connection.
    pub http2_max_streams: u32,
    /// Bytes of request bodies held in memory at once, across all requests; a request that
    /// would go past it is answered 503 + Retry-After.
    pub max_body_memory_bytes: usize,
    /// From accept to the end of the TLS handshake.
    pub handshake_timeout_ms: u64,
    /// From the end of the handshake to the first complete request head (HTTP/1.1) or
    /// HEADERS frame (HTTP/2); also each later HTTP/1.1 header section as a whole.
    pub header_timeout_ms: u64,
    /// A connection with no request open for this long is closed (GOAWAY on HTTP/2),
    /// however many bytes, PINGs or SETTINGS it trickles.
    pub idle_timeout_ms: u64,
    /// Bytes of a refused request's body read and discarded so that an HTTP/2 stream ends
    /// cleanly (default 4 × `max_body_bytes`); past it the stream is reset.
    pub drain_bytes: Option<u64>,
    /// The request header section's size cap; past it, 431.
    pub max_header_bytes: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8443".parse().expect("valid address"),
            path: "/webhook".to_owned(),
            max_body_bytes: 1024 * 1024,
            allowed_ips: Vec::new(),
            trusted_proxies: Vec::new(),
            rate_limit: None,
            body_timeout_ms: 10_000,
            shutdown_grace_ms: 10_000,
            max_concurrent_requests: 512,
            max_connections: 1024,
            http2_max_streams: 64,
            max_body_memory_bytes: 16 * 1024 * 1024,
            handshake_timeout_ms: 10_000,
            header_timeout_ms: 5_000,
            idle_timeout_ms: 30_000,
            drain_bytes: None,
            max_header_bytes: 16 * 1024,
        }
    }
}

impl ServerSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if !self.path.starts_with('/') {
            problems.push(format!(
                "server.path must start with `/` (got {:?})",
                self.path
            ));
        }
        if self.max_body_bytes == 0 {
            problems.push("server.max_body_bytes must be greater than 0".to_owned());
        }
        self.check_limits(problems);
        if let Some(limit) = &self.rate_limit
            && (limit.per_second == 0 || limit.burst == 0)
        {
            problems.push(
                "server.rate_limit.per_second and server.rate_limit.burst must be > 0".to_owned(),
            );
        }
    }

    fn check_limits(&self, problems: &mut Vec<String>) {
        let zero: Vec<&str> = [
            (
                "max_concurrent_requests",
                self.max_concurrent_requests as u64,
            ),
            ("max_connections", self.max_connections as u64),
            ("http2_max_streams", u64::from(self.http2_max_streams)),
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("header_timeout_ms", self.header_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
        ]
        .into_iter()
        .filter(|(_, value)| *value == 0)
        .map(|(key, _)| key)
        .collect();
        if !zero.is_empty() {
            problems.push(format!(
                "server.{} must be greater than 0",
                zero.join(", server.")
            ));
        }
        if self.max_body_memory_bytes < self.max_body_bytes {
            problems.push(format!(
                "server.max_body_memory_bytes ({}) must be at least server.max_body_bytes ({}): \
                 a largest allowed body could never be read",
                self.max_body_memory_bytes, self.max_body_bytes
            ));
        }
        if !(1024..=1024 * 1024).contains(&self.max_header_bytes) {
            problems.push(format!(
                "server.max_header_bytes must be between 1024 and 1048576 (got {})",
                self.max_header_bytes
            ));
        }
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    pub fn drain_bytes(&self) -> u64 {
        self.drain_bytes.unwrap_or(4 * self.max_body_bytes as u64)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

/// A per-client-IP token bucket.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Certificate and key from PEM files (the default).
    Rustls,
    /// An ephemeral certificate made at start: development only.
    SelfSigned,
    /// Plain HTTP behind a TLS-terminating proxy.
    Off,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    pub mode: TlsMode,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            mode: TlsMode::Rustls,
            cert: PathBuf::from("config/dev/cert.pem"),
            key: PathBuf::from("config/dev/key.pem"),
        }
    }
}

impl TlsSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.mode != TlsMode::Rustls {
            return;
        }
        for (key, path) in [("tls.cert", &self.cert), ("tls.key", &self.key)] {
            if !path.is_file() {
                problems.push(format!(
                    "{key}: {} is not a readable file (or set tls.mode = \"self-signed\" for development)",
                    path.display()
                ));
            }
        }
    }
}

/// The private listener: health, readiness and metrics.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    pub listen: SocketAddr,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9090".parse().expect("valid address"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: SecretUrl,
    pub max_connections: u32,
    /// How long to wait for a pooled connection before answering 503.
    pub acquire_timeout_ms: u64,
    /// How long a request waits for its event to be committed before answering 503.
    pub write_timeout_ms: u64,
    /// Postgres's `statement_timeout` on every connection: no query can hang forever.
    pub statement_timeout_ms: u64,
    /// The most events committed together in one statement (group commit).
    pub batch_max: usize,
    /// Concurrent group commits in flight.
    pub writers: usize,
    pub migrate_on_start: bool,
    pub create_database: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("postgres://postgres@127.0.0.1:5432/audian_receiver"),
            max_connections: 16,
            acquire_timeout_ms: 2_000,
            write_timeout_ms: 5_000,
            statement_timeout_ms: 10_000,
            batch_max: 512,
            writers: 1,
            migrate_on_start: true,
            create_database: true,
        }
    }
}

impl DatabaseSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        let url = self.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            problems.push(format!(
                "database.url must be a postgres:// URL (got {})",
                self.url.redacted()
            ));
        }
        if self.statement_timeout_ms == 0 {
            problems.push("database.statement_timeout_ms must be > 0".to_owned());
        }
        if self.batch_max == 0 || self.writers == 0 || self.max_connections == 0 {
            problems.push(
                "database.batch_max, database.writers and database.max_connections must be > 0"
                    .to_owned(),
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
        }
    }
}

/// The outbox workers and the targets they deliver to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardSettings {
    /// 0: this process records events but forwards nothing (intake and forwarding scaled
    /// apart); otherwise it runs one forwarding loop per target, which forwards while it
    /// holds that target's cursor lease (one process per target at a time).
    pub workers: usize,
    pub batch_size: i64,
    pub lease_ms: u64,
    pub poll_interval_ms: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub max_attempts: i32,
    pub targets: Vec<TargetSettings>,
}

impl Default for ForwardSettings {
    fn default() -> Self {
        Self {
            workers: 2,
            batch_size: 256,
            lease_ms: 30_000,
            poll_interval_ms: 250,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 300_000,
            max_attempts: 20,
            targets: Vec::new(),
        }
    }
}

impl ForwardSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.batch_size <= 0 || self.max_attempts <= 0 || self.lease_ms == 0 {
            problems.push(
                "forward.batch_size, forward.max_attempts and forward.lease_ms must be > 0"
                    .to_owned(),
            );
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            problems.push(
                "forward.backoff_initial_ms must be > 0 and <= forward.backoff_max_ms".to_owned(),
            );
        }
        let mut names = std::collections::HashSet::new();
        for (index, target) in self.targets.iter().enumerate() {
            if !names.insert(target.name.as_str()) {
                problems.push(format!(
                    "forward.targets[{index}]: name `{}` is used twice",
                    target.name
                ));
            }
            target.check(index, self.lease_ms, problems);
        }
    }
}
