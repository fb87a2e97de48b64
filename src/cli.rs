//! The command line: one subcommand per operator task.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::store::operator::DeliveryState;

#[derive(Debug, Parser)]
#[command(
    name = "audian-receiver",
    version,
    about = "Receives, verifies, stores and forwards Audian webhooks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// TOML configuration file; environment variables AUDIAN_RECEIVER__SECTION__KEY override it.
    #[arg(long, short, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Ask /healthz (the process serves) instead of /readyz (it also reaches its database
    /// with migrations applied).
    #[arg(long)]
    pub live: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve webhooks over HTTPS (and the admin listener) until SIGTERM/SIGINT.
    Serve(ConfigArg),
    /// Apply database migrations and exit.
    Migrate(ConfigArg),
    /// Print the effective configuration (secrets redacted), or every problem found.
    CheckConfig(ConfigArg),
    /// Print the X-Audian-Signature of stdin, signed with AUDIAN_WEBHOOK_SECRET.
    Sign,
    /// Run one retention sweep now (what `serve` does every retention.sweep_interval_s).
    Purge(ConfigArg),
    /// Exit 0 when the admin listener's /readyz (or /healthz with --live) answers 2xx within
    /// 2 s, else 1 (the image's HEALTHCHECK). Reads only admin.listen: no secret or database.
    Healthcheck(HealthcheckArgs),
    /// Inspect and replay forwarded events.
    Events {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Manage the payload keys of encryption at rest (AUDIAN_PAYLOAD_KEYS).
    Keys {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-seal every stored payload that is clear or sealed under another key under the
    /// first key of AUDIAN_PAYLOAD_KEYS, in small batches (safe beside a running server).
    /// Exits 1 when a payload could not be opened or is left under another key.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// One line per delivery: event id, target, state, attempts, last error.
    List {
        #[arg(long, value_enum)]
        state: Option<DeliveryState>,
        #[arg(long)]
        target: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// An event and all its deliveries.
    Show { id: String },
    /// Put deliveries back to pending: the named events, or all in a state.
    Replay {
        ids: Vec<String>,
        #[arg(long, value_enum, conflicts_with = "ids")]
        state: Option<DeliveryState>,
        #[arg(long)]
        target: Option<String>,
    },
    /// Erase events: drop their stored payloads and cancel any forwarding still due for
    /// them; the ids stay, so Audian's retries remain duplicates.
    Forget {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}
