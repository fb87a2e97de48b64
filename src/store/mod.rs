//! Postgres: the pool, database creation, embedded migrations and readiness.

pub mod browse;
pub mod forwarding;
pub mod operator;
pub mod retention;
pub mod rotation;
mod writer;

pub use writer::{EventWriter, NewEvent, Recorded, WriteError};

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres};

use crate::config::DatabaseSettings;

/// The schema, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database.url is not a valid Postgres URL: {0}")]
    BadUrl(String),
    /// The driver's message, scrubbed of the URL's credentials.
    #[error("cannot create the database: {0}")]
    Create(String),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// A lazily connecting pool: the service starts (and answers 503) while the database is
/// down, and recovers by itself when it returns.
pub fn pool(settings: &DatabaseSettings) -> Result<PgPool, StoreError> {
    pool_sized(settings, settings.max_connections)
}

/// [`pool`] with `max_connections` of its own. Every statement on it has a deadline
/// (`database.statement_timeout_ms`): a statement stuck behind a lock or a dying server
/// fails instead of holding its caller forever.
pub fn pool_sized(settings: &DatabaseSettings, max_connections: u32) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(settings.url.expose())
        .map_err(|e| StoreError::BadUrl(redact_error(&e.to_string(), settings)))?
        .application_name("audian-receiver")
        .options([(
            "statement_timeout",
            format!("{}ms", settings.statement_timeout_ms),
        )])
        .log_statements(tracing::log::LevelFilter::Trace);
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        // A ping before every use would double the round trips on the hot path; a broken
        // connection instead fails one statement (answered 503, retried by Audian) and is
        // replaced.
        .test_before_acquire(false)
        .connect_lazy_with(options))
}

/// Creates the database named in the URL when it does not exist and the role may.
pub async fn create_database_if_missing(settings: &DatabaseSettings) -> Result<bool, StoreError> {
    let url = settings.url.expose();
    let failed = |e: sqlx::Error| StoreError::Create(redact_error(&e.to_string(), settings));
    if Postgres::database_exists(url).await.map_err(failed)? {
        return Ok(false);
    }
    Postgres::create_database(url).await.map_err(failed)?;
    Ok(true)
}

pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Ready means: reachable, and every embedded migration applied.
pub async fn is_ready(pool: &PgPool) -> bool {
    let applied: Result<i64, _> = sqlx::query_scalar(
        "SELECT count(*) FROM _sqlx_migrations WHERE success AND version = ANY($1)",
    )
    .bind(MIGRATOR.iter().map(|m| m.version).collect::<Vec<i64>>())
    .fetch_one(pool)
    .await;
    matches!(applied, Ok(n) if n as usize == MIGRATOR.iter().count())
}

/// The URL as written (credentials redacted) in place of the URL used, and any credential
/// the message still quotes on its own scrubbed.
fn redact_error(message: &str, settings: &DatabaseSettings) -> String {
    let url = settings.url.expose();
    crate::secret_url::scrub(&message.replace(url, &settings.url.redacted()), url)
}
