//! `audian-loadgen`: drives signed webhook traffic at the receiver so throughput and latency
//! claims in BENCHMARKS.md come from a repeatable tool rather than ad-hoc scripts.
//!
//! Every measured event is built and HMAC-signed before the clock starts, so the numbers
//! reflect the receiver (and the network), not the generator's signing cost.

mod conn;
mod events;
mod report;
mod tls;
mod worker;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use tokio::task::JoinSet;

use conn::{Target, open_initial};
use events::{EventSpec, pregenerate};
use report::Summary;
use worker::{RunCtx, Tally, run_worker};

/// Load generator for the Audian webhook receiver (secret from AUDIAN_WEBHOOK_SECRET).
#[derive(Parser, Debug)]
#[command(name = "audian-loadgen", version, about)]
struct Args {
    /// Webhook endpoint; http:// is for a receiver running with tls.mode=off.
    #[arg(long, default_value = "https://127.0.0.1:8443/webhook")]
    url: String,
    /// Keep-alive HTTP/1.1 connections, each sending requests back to back.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Measured requests to send (all pre-signed up front); the run stops when reached.
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// Stop measuring after this many seconds even if --requests is not reached.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Seconds of uncounted traffic before measuring starts.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    warmup: f64,
    /// Per-request timeout in seconds; a timed-out request counts as an error.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    timeout: f64,
    /// PEM file with the CA (or the self-signed certificate) to trust.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    ca: Option<std::path::PathBuf>,
    /// Accept any server certificate (self-signed dev mode only).
    #[arg(long)]
    insecure: bool,
    /// Approximate size of each JSON body in bytes.
    #[arg(long, default_value_t = 575)]
    body_bytes: usize,
    /// Event types, cycled across requests.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "job.completed,audio.uploaded"
    )]
    types: Vec<String>,
    /// Event id prefix; ids are `{prefix}-{n}`. Defaults to a random run id.
    #[arg(long)]
    id_prefix: Option<String>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    // Several dependencies link rustls; pinning the provider avoids an ambiguous-provider panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode> {
    let plan = Plan::from_args(&args)?;
    let target = Arc::new(Target::resolve(&args).await?);
    let spec = EventSpec::new(&args)?;

    let generated_at = std::time::Instant::now();
    let events = pregenerate(&spec, args.requests);
    eprintln!(
        "pre-signed {} events (~{} bytes each, id prefix {}) in {:.2}s",
        events.len(),
        events.first().map_or(0, |e| e.body.len()),
        spec.prefix,
        generated_at.elapsed().as_secs_f64()
    );

    let senders = open_initial(&target, args.connections).await?;
    eprintln!("opened {} connections to {}", senders.len(), args.url);

    let ctx = Arc::new(RunCtx::new(target, spec, events, &plan));
    let mut tasks = JoinSet::new();
    // Each worker takes about an equal share from the shared counter; sizing its latency
    // Vec up front keeps reallocation out of the timed loop.
    let share = args.requests.div_ceil(args.connections) + 16;
    for sender in senders {
        tasks.spawn(run_worker(Arc::clone(&ctx), sender, share));
    }
    let mut totals = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        totals.merge(joined.context("worker task panicked")?);
    }
    let elapsed = ctx.measure_start.elapsed();

    let summary = Summary::build(&args, totals, elapsed);
    summary.print(args.json);
    Ok(if summary.accepted > 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: no request was accepted with 200");
        ExitCode::FAILURE
    })
}

/// Validated time limits, kept apart from `Args` so the worker context holds only durations.
struct Plan {
    warmup: Duration,
    duration: Option<Duration>,
    timeout: Duration,
}

impl Plan {
    fn from_args(args: &Args) -> Result<Self> {
        if args.connections == 0 || args.requests == 0 {
            bail!("--connections and --requests must be at least 1");
        }
        if args.types.iter().all(|t| t.trim().is_empty()) {
            bail!("--types needs at least one event type");
        }
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .map_err(|_| anyhow!("{name} must be a finite number >= 0"))
        };
        let duration = args.duration.map(|d| secs("--duration", d)).transpose()?;
        if duration.is_some_and(|d| d.is_zero()) {
            bail!("--duration must be greater than 0");
        }
        let timeout = secs("--timeout", args.timeout)?;
        if timeout.is_zero() {
            bail!("--timeout must be greater than 0");
        }
        Ok(Self {
            warmup: secs("--warmup", args.warmup)?,
            duration,
            timeout,
        })
    }
}
