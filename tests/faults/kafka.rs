//! The Kafka side of the suite: a tansu broker of the run's own (the binary that
//! `scripts/tansu.sh` installs) behind a cuttable proxy, which it advertises to clients so
//! that every connection goes through the proxy; a topic of 3 partitions; and a reader that
//! records the `event_id` header of every record the topic holds.
//!
//! tansu's storage here is memory only, so a broker that dies loses its records. Its
//! restart ([`Kafka::restart`]) is fenced: the caller pauses the receivers, the reader
//! drains the topic, and only then is the broker killed and started again, empty, with the
//! topic made anew. What it shows is the receiver's side of a broker death: connections
//! dropped with requests in flight, a broker gone and back, nothing acknowledged lost.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};

use crate::proxy::Proxy;
use crate::{free_port, wait_for};

const PARTITIONS: i32 = 3;

pub struct Kafka {
    port: u16,
    pub proxy: Proxy,
    pub topic: String,
    broker: Option<Child>,
    /// How many times each event id was read from the topic, over every incarnation.
    stored: Arc<Mutex<HashMap<String, u32>>>,
    /// Per partition: the next offset to read, and the high watermark last seen.
    progress: Arc<Mutex<Vec<(i64, i64)>>>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl Kafka {
    pub async fn start(run: &str) -> Kafka {
        let port = free_port();
        let proxy = Proxy::start(free_port(), &format!("127.0.0.1:{port}")).await;
        let mut kafka = Kafka {
            port,
            proxy,
            topic: format!("faults.{run}"),
            broker: None,
            stored: Arc::default(),
            progress: Arc::default(),
            reader: None,
        };
        kafka.start_broker().await;
        kafka
    }

    /// The address the receiver is given (the proxy).
    pub fn addr(&self) -> String {
        self.proxy.addr()
    }

    /// How many times each event id was read from the topic.
    pub fn stored(&self) -> HashMap<String, u32> {
        self.stored.lock().unwrap().clone()
    }

    /// The broker killed (SIGKILL) and started again, empty, with the topic made anew.
    /// Call with the receivers paused: it first waits for the reader to have read every
    /// record the broker holds, as those die with it.
    pub async fn restart(&mut self) {
        // Requests written just before the pause reach the broker within milliseconds.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let topic = self.topic.clone();
        let client = connect(&self.addr()).await;
        let mut partitions = Vec::new();
        for partition in 0..PARTITIONS {
            partitions.push(reader_of(&client, &topic, partition).await);
        }
        let progress = self.progress.clone();
        wait_for(
            "the reader to drain the topic before the broker dies",
            Duration::from_secs(30),
            || async {
                let mut high_watermarks = Vec::new();
                for partition in &partitions {
                    let fetch = partition.fetch_records(0, 1..2, 10);
                    let (_, hw) = tokio::time::timeout(PATIENCE, fetch).await.ok()?.ok()?;
                    high_watermarks.push(hw);
                }
                let progress = progress.lock().unwrap();
                let read_all = high_watermarks
                    .iter()
                    .zip(progress.iter())
                    .all(|(hw, (next, _))| next >= hw);
                read_all.then_some(())
            },
        )
        .await;
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        if let Some(mut broker) = self.broker.take() {
            broker.kill().expect("SIGKILL of tansu");
            broker.wait().expect("reaping tansu");
        }
        // Drop the connections to the dead broker; the new one is reached through the
        // proxy too (its advertised address), so it accepts again at once.
        self.proxy.cut().await;
        self.proxy.restore();
        self.start_broker().await;
    }

    /// Starts tansu (memory storage), makes the topic, and starts reading it from offset 0.
    async fn start_broker(&mut self) {
        let broker = Command::new(tansu_binary())
            .args(["broker", "--silent", "--listener-url"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{}", self.addr()))
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tansu");
        self.broker = Some(broker);
        let addr = format!("127.0.0.1:{}", self.port);
        wait_for("tansu to listen", Duration::from_secs(30), || async {
            tokio::net::TcpStream::connect(&addr).await.ok().map(drop)
        })
        .await;
        let client = connect(&self.addr()).await;
        let controller = client.controller_client().expect("a controller client");
        bounded(
            "creating the topic",
            controller.create_topic(&self.topic, PARTITIONS, 1, 5_000),
        )
        .await
        .expect("creating the suite's topic");
        *self.progress.lock().unwrap() = vec![(0, 0); PARTITIONS as usize];
        let mut partitions = Vec::new();
        for partition in 0..PARTITIONS {
            partitions.push(reader_of(&client, &self.topic, partition).await);
        }
        let (stored, progress) = (self.stored.clone(), self.progress.clone());
        self.reader = Some(tokio::spawn(read(partitions, stored, progress)));
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        if let Some(mut broker) = self.broker.take() {
            let _ = broker.kill();
            let _ = broker.wait();
        }
    }
}

/// Reads every partition from where it left off, every 50 ms, counting event ids.
async fn read(
    partitions: Vec<PartitionClient>,
    stored: Arc<Mutex<HashMap<String, u32>>>,
    progress: Arc<Mutex<Vec<(i64, i64)>>>,
) {
    loop {
        for (index, partition) in partitions.iter().enumerate() {
            let from = progress.lock().unwrap()[index].0;
            let fetch = partition.fetch_records(from, 1..10_000_000, 10);
            let Ok(Ok((records, hw))) = tokio::time::timeout(PATIENCE, fetch).await else {
                continue;
            };
            let mut stored = stored.lock().unwrap();
            let mut next = from;
            for record in records.iter().filter(|r| r.offset >= from) {
                let id = record
                    .record
                    .headers
                    .get("event_id")
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                *stored.entry(id).or_default() += 1;
                next = next.max(record.offset + 1);
            }
            progress.lock().unwrap()[index] = (next, hw);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The client retries on its own without end: every call here is bounded instead.
const PATIENCE: Duration = Duration::from_secs(15);

async fn bounded<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer from tansu within {PATIENCE:?}"))
}

async fn connect(addr: &str) -> Client {
    bounded(
        "connecting",
        ClientBuilder::new(vec![addr.to_owned()]).build(),
    )
    .await
    .unwrap_or_else(|e| panic!("the fault suite's tansu on {addr}: {e}"))
}

async fn reader_of(client: &Client, topic: &str, partition: i32) -> PartitionClient {
    let made = client.partition_client(topic, partition, UnknownTopicHandling::Retry);
    bounded("a partition client", made)
        .await
        .expect("a partition client")
}

/// The tansu binary, installed by `scripts/tansu.sh` when missing.
fn tansu_binary() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tansu.sh");
    let out = Command::new(script)
        .arg("--path")
        .output()
        .expect("running scripts/tansu.sh --path");
    assert!(out.status.success(), "scripts/tansu.sh --path: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
