//! Where the machine's shared brokers listen, a check that fails loudly when one is down,
//! names unique enough that parallel tests never share a stream, subject or queue, and the
//! bounded polling the tests wait with.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const REDIS_ADDR: &str = "127.0.0.1:6379";
pub const AMQP_ADDR: &str = "127.0.0.1:5672";
pub const NATS_ADDR: &str = "127.0.0.1:4222";

/// Unique per test and per run, so parallel tests and leftovers of aborted runs never collide.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{prefix}{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

/// A missing service is a test failure that says so, never a silent skip.
pub async fn require_service(addr: &str, name: &str) {
    let connect = tokio::net::TcpStream::connect(addr);
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => {}
        other => panic!(
            "{name} is not reachable on {addr} ({other:?}); these tests need the real service running"
        ),
    }
}

/// Polls `check` every 50 ms until it yields a value; fails after `within`, naming `what`.
pub async fn poll_within<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
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

/// A port nothing listens on, which a test may bind later. It is picked below Linux's
/// ephemeral range (32768–60999): a port the OS handed out for `:0` and we released could be
/// handed to another parallel test's listener or outgoing connection before we bind it again.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let port = rand::random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port found in 20000..32000 after 100 tries");
}
