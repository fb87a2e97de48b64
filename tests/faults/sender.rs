//! An Audian-like sender: several tasks, each posting distinct signed events one after
//! another and retrying each on every non-2xx (or connection error) until it gets a 200.
//! With several receivers, a task moves to the next one when its own does not answer.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use audian_receiver::signing::sign;
use tokio::task::JoinSet;

use crate::receiver::SECRET;

/// Audian's retry pause in the suite (its real schedule is longer; shorter finds more races).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct Ledger {
    /// Every id posted at least once, acknowledged or not.
    pub sent: Mutex<HashSet<String>>,
    /// Every id that got a 200.
    pub acked: Mutex<HashSet<String>>,
    pub acked_count: AtomicUsize,
    pub retries: AtomicUsize,
}

pub struct Sender {
    pub ledger: Arc<Ledger>,
    stopping: Arc<AtomicBool>,
    tasks: JoinSet<()>,
}

impl Sender {
    /// `rate`: events per second across all tasks, or as fast as the receiver answers.
    pub fn start(
        run: &str,
        urls: Vec<String>,
        client: reqwest::Client,
        tasks: usize,
        rate: Option<u32>,
    ) -> Sender {
        let pause = rate.map(|r| Duration::from_secs_f64(tasks as f64 / f64::from(r.max(1))));
        let ledger = Arc::new(Ledger::default());
        let stopping = Arc::new(AtomicBool::new(false));
        let urls = Arc::new(urls);
        let mut set = JoinSet::new();
        for task in 0..tasks {
            let lane = Lane {
                pause,
                prefix: format!("{run}-t{task}"),
                urls: urls.clone(),
                current: task % urls.len(),
                client: client.clone(),
                ledger: ledger.clone(),
                stopping: stopping.clone(),
            };
            set.spawn(lane.run());
        }
        Sender {
            ledger,
            stopping,
            tasks: set,
        }
    }

    pub fn acked(&self) -> usize {
        self.ledger.acked_count.load(Ordering::SeqCst)
    }

    /// No new events; each task keeps retrying the event in hand until it is acknowledged
    /// (as Audian would), for at most `within`.
    pub async fn stop(mut self, within: Duration) -> Arc<Ledger> {
        self.stopping.store(true, Ordering::SeqCst);
        let drained = tokio::time::timeout(within, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        assert!(
            drained.is_ok(),
            "the sender's last events were not acknowledged within {within:?}"
        );
        self.ledger
    }
}

struct Lane {
    pause: Option<Duration>,
    prefix: String,
    urls: Arc<Vec<String>>,
    current: usize,
    client: reqwest::Client,
    ledger: Arc<Ledger>,
    stopping: Arc<AtomicBool>,
}

impl Lane {
    async fn run(mut self) {
        let mut n = 0u64;
        while !self.stopping.load(Ordering::SeqCst) {
            let id = format!("{}-{n}", self.prefix);
            self.deliver(&id).await;
            if let Some(pause) = self.pause {
                tokio::time::sleep(pause).await;
            }
            n += 1;
        }
    }

    async fn deliver(&mut self, id: &str) {
        let body = event(id);
        let signature = sign(SECRET.as_bytes(), body.as_bytes());
        self.ledger.sent.lock().unwrap().insert(id.to_owned());
        loop {
            let sent = self
                .client
                .post(&self.urls[self.current])
                .header("content-type", "application/json")
                .header("x-audian-signature", &signature)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    self.ledger.acked.lock().unwrap().insert(id.to_owned());
                    self.ledger.acked_count.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok(_) => {}
                // Not reachable: try the next replica next time.
                Err(_) => self.current = (self.current + 1) % self.urls.len(),
            }
            self.ledger.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// A ~500-byte event shaped like Audian's.
fn event(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"job.completed","created_at":"2026-11-29T12:00:00Z","data":{{"job_id":"job_{id}","status":"succeeded","duration_ms":48213,"output":{{"url":"https://cdn.audian.example/outputs/{id}/master.wav","format":"wav","sample_rate":48000,"channels":2,"loudness_lufs":-14.1}},"metadata":{{"customer_ref":"order-000000","pipeline":"denoise+normalize","region":"eu-west-1"}}}}}}"#
    )
}
