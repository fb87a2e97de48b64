//! Builds the whole service from settings — listeners bound, database ready, workers
//! started — and runs it until a shutdown token fires, then drains in order.

mod admin;
mod forwarded;
mod guard;
mod listener;
mod rotation;
mod router;
mod shed;
pub mod tls;

pub use router::public as public_router;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::{RetentionSettings, Secrets, Settings, TlsMode};
use crate::console::{self, Console};
use crate::forward::Forwarder;
use crate::intake::{BodyBudget, Freshness, Intake};
use crate::store::{self, EventWriter};
use crate::telemetry::Metrics;

/// A service whose listeners are bound (so `port()` is known) but not yet serving.
pub struct Application {
    public: std::net::TcpListener,
    admin: tokio::net::TcpListener,
    tls: Option<RustlsConfig>,
    /// Certificate and key files, re-read on SIGHUP or change (tls.mode = "rustls").
    tls_files: Option<(std::path::PathBuf, std::path::PathBuf)>,
    router: Router,
    admin_router: Router,
    pool: PgPool,
    forward_pool: PgPool,
    forwarder: Arc<Forwarder>,
    wake: tokio::sync::watch::Sender<u64>,
    forwarding: bool,
    retention: RetentionSettings,
    limits: listener::Limits,
    /// When the previous webhook secret stops being accepted, if that is still ahead.
    rotation_end: Option<time::OffsetDateTime>,
    console: Option<Console>,
}

impl Application {
    pub async fn build(settings: Settings, secrets: Secrets) -> anyhow::Result<Self> {
        for warning in settings.warnings(&secrets, time::OffsetDateTime::now_utc()) {
            tracing::warn!("{warning}");
        }
        let tls = tls_config(&settings)?;
        secrets.payload_keys.announce();
        let pool = prepare_database(&settings).await?;
        let metrics = Metrics::new();
        // Forwarding has connections of its own: intake never waits behind its queries.
        let forward_pool = store::pool_sized(&settings.database, forward_connections(&settings))?;
        let forwarder = Forwarder::new(
            forward_pool.clone(),
            &settings.forward,
            secrets.forward_signing.clone(),
            secrets.payload_keys.clone(),
            metrics.clone(),
        )
        .map_err(anyhow::Error::msg)?;
        forwarder
            .prepare()
            .await
            .context("creating the forward targets' cursors")?;
        let (wake, _) = tokio::sync::watch::channel(0u64);
        let db = &settings.database;
        let intake = Intake {
            verifier: rotation::verifier(&secrets, &settings.secrets),
            writer: EventWriter::start(
                pool.clone(),
                db.batch_max,
                db.writers,
                Duration::from_millis(db.write_timeout_ms),
                wake.clone(),
                metrics.db_errors.clone(),
                secrets.payload_keys.clone(),
            ),
            max_body_bytes: settings.server.max_body_bytes,
            body_timeout: settings.server.body_timeout(),
            body_budget: BodyBudget::new(settings.server.max_body_memory_bytes),
            max_depth: settings.intake.max_depth,
            timestamp_field: settings.intake.timestamp_field.as_str().into(),
            freshness: Freshness::new(&settings.intake, &settings.retention, metrics.clone()),
            metrics: metrics.clone(),
        };
        let router = router::public(&settings.server, intake, metrics.clone());
        let public = bind(settings.server.listen, "server.listen")?;
        let admin =
            tokio::net::TcpListener::from_std(bind(settings.admin.listen, "admin.listen")?)?;
        let console = secrets.console_token.clone().map(|token| {
            Console::new(console::Parts {
                pool: pool.clone(),
                token,
                settings: &settings.console,
                targets: &settings.forward.targets,
                metrics: metrics.clone(),
                payload_keys: secrets.payload_keys.clone(),
                previous_valid_until: settings.secrets.previous_valid_until,
            })
        });
        if console.is_some() {
            tracing::info!(admin = %settings.admin.listen, "the console is on at /console on the admin listener");
        }
        let tls_files = matches!(settings.tls.mode, TlsMode::Rustls)
            .then(|| (settings.tls.cert.clone(), settings.tls.key.clone()));
        Ok(Self {
            public,
            admin,
            tls,
            tls_files,
            router,
            admin_router: admin::router(
                pool.clone(),
                metrics.clone(),
                console.clone().map(Console::router),
            ),
            pool,
            forward_pool,
            forwarder,
            wake,
            forwarding: settings.forward.workers > 0,
            retention: settings.retention.clone(),
            limits: listener::Limits::from_settings(&settings.server, metrics),
            rotation_end: rotation::end_ahead(&secrets, &settings.secrets),
            console,
        })
    }

    pub fn port(&self) -> u16 {
        self.public.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn admin_port(&self) -> u16 {
        self.admin.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves and forwards until `shutdown` fires; then stops accepting, lets in-flight
    /// requests finish within the grace period (`server.shutdown_grace_ms`), lets workers
    /// finish their batch, and closes the pool.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let admin = axum::serve(
            self.admin,
            self.admin_router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        if let Some(console) = &self.console {
            console.spawn_history(shutdown.clone());
        }
        let admin_task = tokio::spawn(async move { admin.await });
        let mut workers = self
            .forwarder
            .spawn(self.forwarding, self.wake, shutdown.clone());

        tokio::spawn(retention_sweeps(
            self.forward_pool.clone(),
            self.retention.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(rotation::announce_end(self.rotation_end, shutdown.clone()));
        tokio::spawn(tls::reload_on_change(
            self.tls.clone(),
            self.tls_files.clone(),
            shutdown.clone(),
        ));
        let public = tokio::net::TcpListener::from_std(self.public)?;
        listener::serve(public, self.tls, self.router, self.limits, shutdown).await;
        // Workers saw the same token: each finishes the batch in hand, then stops.
        while workers.join_next().await.is_some() {}
        admin_task.await??;
        self.pool.close().await;
        self.forward_pool.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

fn tls_config(settings: &Settings) -> anyhow::Result<Option<RustlsConfig>> {
    match settings.tls.mode {
        TlsMode::Rustls => tls::from_pem_files(&settings.tls.cert, &settings.tls.key).map(Some),
        TlsMode::SelfSigned => tls::self_signed().map(Some),
        TlsMode::Off => {
            tracing::warn!(
                "tls.mode = \"off\": serving PLAIN HTTP. Only behind a TLS-terminating proxy — \
                 webhook bodies and signatures would otherwise cross the network in clear text"
            );
            Ok(None)
        }
    }
}

/// Creates (when allowed and missing) and migrates the database. A database that cannot be
/// migrated at start stops the start: serving against an unknown schema would only answer
/// 503 forever. Once running, an outage is answered with 503 and recovers by itself.
async fn prepare_database(settings: &Settings) -> anyhow::Result<PgPool> {
    let db = &settings.database;
    let pool = store::pool(db)?;
    if db.create_database {
        match store::create_database_if_missing(db).await {
            Ok(true) => tracing::info!("created the database named in database.url"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "could not check for or create the database"),
        }
    }
    if db.migrate_on_start {
        store::migrate(&pool).await.context(
            "applying migrations at start: check that the database in database.url (or \
                 DATABASE_URL) is reachable and accepts this user",
        )?;
    }
    Ok(pool)
}

/// The retention sweep every `retention.sweep_interval_s`, on forwarding's connections (never
/// intake's). Every replica sweeps; the batches skip rows another holds.
async fn retention_sweeps(pool: PgPool, retention: RetentionSettings, shutdown: CancellationToken) {
    let interval = Duration::from_secs(retention.sweep_interval_s);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
        match store::retention::sweep(&pool, retention.payload_days, retention.dedup_days).await {
            Ok(purged) if purged != Default::default() => tracing::info!(
                payloads = purged.payloads,
                rows = purged.rows,
                "retention sweep"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention sweep failed; will try again"),
        }
    }
}

/// A loop per target, plus LISTEN, the gauges and the CLI-free slack of one.
fn forward_connections(settings: &Settings) -> u32 {
    settings.forward.targets.len() as u32 + 3
}

fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("{key}: cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}
