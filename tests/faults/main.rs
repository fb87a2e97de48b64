//! The fault suite: the release binary under an Audian-like sender, forwarding to an HTTP
//! endpoint, to JetStream and to Kafka, while faults are injected one at a time and then together.
//! After each run it proves that nothing acknowledged was lost and nothing was invented,
//! and prints duplicates and recovery time. `cargo test --test faults [-- NAME…]` runs it
//! (after `cargo build --release --locked`); see README, "Fault suite".

mod cluster;
mod jetstream;
mod kafka;
mod proxy;
mod receiver;
mod scenario;
mod sender;
mod sink;
mod verdict;

use std::process::ExitCode;
use std::time::Duration;

use scenario::SCENARIOS;

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let chosen: Vec<_> = SCENARIOS
        .iter()
        .filter(|s| filters.is_empty() || filters.iter().any(|f| s.name.contains(f.as_str())))
        .collect();
    if chosen.is_empty() {
        eprintln!("no scenario matches {filters:?}; scenarios: {:?}", names());
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let failed = runtime.block_on(async {
        let cluster = std::sync::Arc::new(cluster::Cluster::start(free_port()));
        let mut rows = Vec::new();
        let mut failed = Vec::new();
        for scenario in chosen {
            println!("fault suite: {} …", scenario.name);
            let run = tokio::spawn(scenario::run(scenario, cluster.clone()));
            match run.await {
                Ok(Ok(row)) => {
                    println!("  {row}");
                    rows.push(row);
                }
                Ok(Err(problems)) => {
                    println!("  FAILED:\n{problems}");
                    failed.push(scenario.name);
                }
                Err(panic) => {
                    println!("  FAILED (panicked): {panic}");
                    failed.push(scenario.name);
                }
            }
        }
        println!("\n{}", verdict::table(&rows));
        failed
    });
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("fault suite: failed: {failed:?}");
        ExitCode::FAILURE
    }
}

fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|s| s.name).collect()
}

/// Waits for `check` to yield a value, every 50 ms, failing after `within` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port nothing listens on, below Linux's ephemeral range so that no outgoing connection
/// takes it between now and the moment it is bound (and bound again after a restart).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let port = rand::random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port found in 20000..32000 after 100 tries");
}
