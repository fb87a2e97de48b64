//! The operator commands other than `serve`'s long run: each a small function that returns
//! what to print, so `main` stays thin and errors keep their exit codes.

pub mod events;
pub mod healthcheck;
pub mod keys;

use std::io::Read;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, PAYLOAD_KEYS, Scope, Secrets, Settings, read_secret};
use crate::server::Application;
use crate::signing;
use crate::store;

/// How a command failed: bad input and configuration exit with 2, runtime failures with 1.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{0:#}")]
    Runtime(#[from] anyhow::Error),
}

impl CommandError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config(_) | Self::Usage(_) => 2,
            Self::Runtime(_) => 1,
        }
    }
}

/// `serve`: runs until `shutdown` fires.
pub async fn serve(settings: Settings, shutdown: CancellationToken) -> Result<(), CommandError> {
    let secrets = Secrets::from_env()?;
    let app = Application::build(settings, secrets).await?;
    tracing::info!(
        port = app.port(),
        admin_port = app.admin_port(),
        "listening"
    );
    app.run(shutdown).await?;
    Ok(())
}

/// `migrate`: creates the database if allowed and missing, then applies migrations.
pub async fn migrate(settings: &Settings) -> Result<(), CommandError> {
    let db = &settings.database;
    if db.create_database
        && store::create_database_if_missing(db)
            .await
            .context("creating the database")?
    {
        println!("created database");
    }
    let pool = store::pool(db).context("database.url")?;
    store::migrate(&pool).await.context("applying migrations")?;
    println!(
        "migrations applied ({} known)",
        store::MIGRATOR.iter().count()
    );
    Ok(())
}

/// `purge`: one retention sweep now; prints what it removed.
pub async fn purge(settings: &Settings) -> Result<(), CommandError> {
    let pool = store::pool(&settings.database).context("database.url")?;
    let retention = &settings.retention;
    let purged = store::retention::sweep(&pool, retention.payload_days, retention.dedup_days)
        .await
        .context("sweeping")?;
    println!(
        "dropped {} payloads older than {} days, removed {} events older than {} days",
        purged.payloads, retention.payload_days, purged.rows, retention.dedup_days
    );
    Ok(())
}

/// `check-config`: the effective configuration with secrets redacted, or every problem.
pub fn check_config(path: Option<&std::path::Path>) -> Result<String, CommandError> {
    let settings = Settings::load(path, Scope::Everything)?;
    let secrets = Secrets::from_env()?;
    // URLs print as written: `${NAME}` placeholders unexpanded, literal credentials redacted.
    let mut out = toml::to_string_pretty(&settings).context("printing the configuration")?;
    out.push_str("\n# secrets (from the environment; values never printed)\n");
    for (name, set) in [
        ("AUDIAN_WEBHOOK_SECRET", true),
        (
            "AUDIAN_WEBHOOK_PREVIOUS_SECRET",
            secrets.webhook_previous.is_some(),
        ),
        ("FORWARD_SIGNING_SECRET", secrets.forward_signing.is_some()),
    ] {
        out.push_str(&format!(
            "# {name} = {}\n",
            if set { "[set]" } else { "[not set]" }
        ));
    }
    let key_ids: Vec<&str> = secrets.payload_keys.ids().collect();
    out.push_str(&match key_ids.as_slice() {
        [] => format!("# {PAYLOAD_KEYS} = [not set: payloads stored in clear]\n"),
        ids => format!(
            "# {PAYLOAD_KEYS} = [set: key ids {}; the first seals]\n",
            ids.join(", ")
        ),
    });
    for warning in settings.warnings(&secrets, time::OffsetDateTime::now_utc()) {
        out.push_str(&format!("# warning: {warning}\n"));
    }
    Ok(out)
}

/// `sign`: the signature of stdin, exactly as Audian would send it.
pub fn sign() -> Result<String, CommandError> {
    let secret = read_secret("AUDIAN_WEBHOOK_SECRET")?.ok_or_else(|| {
        CommandError::Usage(
            "AUDIAN_WEBHOOK_SECRET (or AUDIAN_WEBHOOK_SECRET_FILE) is not set".into(),
        )
    })?;
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .context("reading stdin")?;
    Ok(signing::sign(secret.expose_secret().as_bytes(), &body))
}
