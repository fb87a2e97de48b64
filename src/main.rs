//! Entry point: parse the command line, load configuration, start telemetry, dispatch.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use audian_receiver::cli::{Cli, Command};
use audian_receiver::commands::{self, CommandError};
use audian_receiver::config::{LogSettings, Scope, Settings};
use audian_receiver::telemetry::{self, Export};

/// How long spans still queued at exit may take to reach the collector.
const EXPORT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

fn main() -> ExitCode {
    // One crypto provider for every TLS user in the process (axum-server, sqlx, brokers).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("starting the tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            tracing::error!(%error, "exiting");
            ExitCode::from(error.exit_code() as u8)
        }
    }
}

async fn run(cli: Cli) -> Result<(), CommandError> {
    match cli.command {
        Command::Sign => {
            println!("{}", commands::sign()?);
            Ok(())
        }
        // No telemetry: the engine keeps this command's output, one line per probe.
        Command::Healthcheck(args) => {
            println!(
                "{}",
                commands::healthcheck::run(args.config.config.as_deref(), args.live).await?
            );
            Ok(())
        }
        Command::CheckConfig(args) => {
            print!("{}", commands::check_config(args.config.as_deref())?);
            Ok(())
        }
        Command::Serve(args) => {
            let settings = load_with_export(args.config.as_deref())?;
            let export = Export::start(&settings.telemetry.otlp).map_err(|error| {
                telemetry::init_tracing(&settings.log, None);
                CommandError::Runtime(anyhow::Error::msg(error))
            })?;
            telemetry::init_tracing(&settings.log, export.as_ref());
            let served = commands::serve(settings, shutdown_on_signal()).await;
            if let Some(export) = export {
                export.shutdown(EXPORT_DEADLINE).await;
            }
            served
        }
        Command::Migrate(args) => {
            commands::migrate(&load(args.config.as_deref(), Scope::DatabaseOnly)?).await
        }
        Command::Purge(args) => {
            let settings = load(args.config.as_deref(), Scope::DatabaseOnly)?;
            commands::purge(&settings).await
        }
        Command::Events { config, command } => {
            let settings = load(config.config.as_deref(), Scope::DatabaseOnly)?;
            commands::events::run(&settings, command).await
        }
        Command::Keys { config, command } => {
            let settings = load(config.config.as_deref(), Scope::DatabaseOnly)?;
            commands::keys::run(&settings, command).await
        }
    }
}

fn load(path: Option<&std::path::Path>, scope: Scope) -> Result<Settings, CommandError> {
    let settings = Settings::load(path, scope);
    let log = settings
        .as_ref()
        .map(|s| s.log.clone())
        .unwrap_or_else(|_| LogSettings::default());
    telemetry::init_tracing(&log, None);
    Ok(settings?)
}

/// For `serve`: logging starts once export has (the subscriber is set once), unless the
/// settings are wrong, which is logged without it.
fn load_with_export(path: Option<&std::path::Path>) -> Result<Settings, CommandError> {
    Settings::load(path, Scope::Everything).map_err(|error| {
        telemetry::init_tracing(&LogSettings::default(), None);
        error.into()
    })
}

/// A token cancelled by the first SIGTERM or SIGINT.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
        cancel.cancel();
    });
    token
}
