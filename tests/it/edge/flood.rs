//! The flood of issue 9: 2,000 connections sending 900 kB bodies, half without a signature
//! and half with a well-formed wrong one (which the server must read before refusing),
//! against the real binary. An Audian-like sender that retries 503 and refused connections
//! still gets every event in, the receiver's resident memory stays under 100 MiB the whole
//! time, and every acknowledged event is stored once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use audian_receiver::signing::sign;

use super::WRONG_SIGNATURE;
use crate::fixtures::{Binary, RawTls, SECRET, Served, TestCerts, event, http1_config};

const ATTACKERS: usize = 2_000;
const ATTACK_BODY: usize = 900 * 1024;
const EVENTS: usize = 20;
/// Audian's deliveries run side by side.
const SENDERS: usize = 4;
const MEMORY_CAP_KIB: u64 = 100 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_bodies_keeps_memory_bounded_and_lets_real_events_in() {
    let binary = Binary::new().env("AUDIAN_WEBHOOK_SECRET", SECRET);
    let served = Served::start(
        binary,
        "[log]\nformat = \"json\"\nlevel = \"warn,audian_receiver=info\"\n",
    )
    .await;
    let (certs, port) = (&served.certs, served.port);
    let tls = http1_config(certs);

    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = tokio::task::JoinSet::new();
    for n in 0..ATTACKERS {
        attackers.spawn(attack(tls.clone(), port, n % 2 == 0, stop.clone()));
    }
    // Let the flood build up before the real events start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let senders = (0..SENDERS).map(|sender| async move {
        let mut most_tries = 0;
        for n in (sender..EVENTS).step_by(SENDERS) {
            let tries = deliver(certs, port, &event(&format!("evt_flood_{n}"))).await;
            most_tries = most_tries.max(tries);
        }
        most_tries
    });
    let most_tries = futures_util::future::join_all(senders)
        .await
        .into_iter()
        .max();
    let sending = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let peak_kib = peak_rss_kib(served.receiver.pid());
    attackers.abort_all();

    eprintln!(
        "flood: {EVENTS} events in {sending:?}, at most {most_tries:?} tries each; \
         receiver peak RSS {} MiB",
        peak_kib / 1024
    );
    assert!(
        most_tries.is_some_and(|tries| tries <= 20),
        "a real event needed {most_tries:?} tries"
    );
    assert!(
        peak_kib < MEMORY_CAP_KIB,
        "the receiver's resident memory peaked at {} MiB",
        peak_kib / 1024
    );
    let mut conn = served.db.connect().await;
    let (rows, ids): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT event_id) FROM events WHERE event_id LIKE 'evt_flood_%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((rows, ids), (EVENTS as i64, EVENTS as i64));
}

/// One attacking client: connect, send headers and a large body, read whatever comes back,
/// again, until told to stop.
async fn attack(tls: Arc<rustls::ClientConfig>, port: u16, signed: bool, stop: Arc<AtomicBool>) {
    let signature = if signed {
        format!("X-Audian-Signature: {WRONG_SIGNATURE}\r\n")
    } else {
        String::new()
    };
    let headers = format!(
        "POST /webhook HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         {signature}Content-Length: {ATTACK_BODY}\r\n\r\n"
    );
    let chunk = vec![b'x'; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut raw) = RawTls::open(&tls, port).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        if raw.send(headers.as_bytes()).await.is_err() {
            continue;
        }
        for _ in 0..ATTACK_BODY / chunk.len() {
            if stop.load(Ordering::Relaxed) || raw.send(&chunk).await.is_err() {
                break;
            }
        }
        raw.drain().await;
    }
}

/// Posts `body` like Audian: on a refused connection or a 503, waits a little and tries
/// again, up to a bound. Returns the number of tries it took.
async fn deliver(certs: &TestCerts, port: u16, body: &str) -> usize {
    let client = certs.client();
    let signature = sign(SECRET.as_bytes(), body.as_bytes());
    for tries in 1..=100 {
        let response = client
            .post(format!("https://localhost:{port}/webhook"))
            .header("content-type", "application/json")
            .header("x-audian-signature", &signature)
            .body(body.to_owned())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match response.map(|r| r.status().as_u16()) {
            Ok(200) => return tries,
            Ok(503) | Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Ok(other) => panic!("a real event was answered {other}"),
        }
    }
    panic!("a real event did not get in within 100 tries");
}

/// The highest resident set size the process has had (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}
