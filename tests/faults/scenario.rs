//! One run of the suite: a fresh database on the private cluster, an HTTP sink, a JetStream
//! stream behind a cuttable proxy, a Kafka broker of its own behind another, one or two
//! receivers, the sender — then one fault.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair};
use tokio::time::{Instant, sleep};

use crate::cluster::Cluster;
use crate::jetstream::{self, NATS_ADDR};
use crate::kafka::Kafka;
use crate::proxy::Proxy;
use crate::receiver::Receiver;
use crate::sender::Sender;
use crate::sink::{Backlog, Sink};
use crate::verdict::{self, Row};
use crate::{free_port, wait_for};

/// Events acknowledged before the fault, and again after it, before the sender stops.
const LOAD_AROUND_FAULT: usize = 300;
const SENDER_TASKS: usize = 8;
/// From the fault's end to every acknowledged event at both targets.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// SIGKILL of the receiver mid-load, three times, restarted each time.
    ReceiverKilled,
    /// The database crashes (immediate stop) for 3 s, then comes back.
    PostgresRestart,
    /// The HTTP target answers 503 for 4 s, then refuses connections for 4 s.
    HttpTargetDown,
    /// Every connection to NATS cut, new ones refused for 5 s.
    BrokerCut,
    /// Every connection to Kafka cut, new ones refused for 5 s.
    KafkaCut,
    /// The Kafka broker SIGKILLed and started again (fenced: see `kafka.rs`).
    KafkaRestart,
    /// One of two replicas sharing the database SIGKILLed for good.
    ReplicaDeath,
    /// All of the above, overlapping, on two replicas.
    Combined,
}

pub struct Scenario {
    pub name: &'static str,
    fault: Fault,
    replicas: usize,
    backlog: Backlog,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "receiver-sigkill-x3",
        fault: Fault::ReceiverKilled,
        replicas: 1,
        backlog: Backlog::Normal,
    },
    Scenario {
        name: "postgres-restart",
        fault: Fault::PostgresRestart,
        replicas: 1,
        backlog: Backlog::Normal,
    },
    Scenario {
        name: "http-target-down",
        fault: Fault::HttpTargetDown,
        replicas: 1,
        backlog: Backlog::Normal,
    },
    Scenario {
        name: "http-target-down-backlog-5",
        fault: Fault::HttpTargetDown,
        replicas: 1,
        backlog: Backlog::Small,
    },
    Scenario {
        name: "nats-connection-cut",
        fault: Fault::BrokerCut,
        replicas: 1,
        backlog: Backlog::Normal,
    },
    Scenario {
        name: "kafka-connection-cut",
        fault: Fault::KafkaCut,
        replicas: 1,
        backlog: Backlog::Normal,
    },
    Scenario {
        name: "kafka-broker-restart",
        fault: Fault::KafkaRestart,
        replicas: 1,
        backlog: Backlog::Normal,
    },
    Scenario {
        name: "replica-killed",
        fault: Fault::ReplicaDeath,
        replicas: 2,
        backlog: Backlog::Normal,
    },
    Scenario {
        name: "combined",
        fault: Fault::Combined,
        replicas: 2,
        backlog: Backlog::Normal,
    },
];

/// Everything one run holds; dropped at its end (stream deleted, processes killed).
struct Stage {
    cluster: Arc<Cluster>,
    sink: Sink,
    proxy: Proxy,
    kafka: Kafka,
    receivers: Vec<Receiver>,
}

pub async fn run(scenario: &'static Scenario, cluster: Arc<Cluster>) -> Result<Row, String> {
    let run = format!("{:08x}", rand::random::<u32>());
    let dir = tempfile::tempdir().expect("a directory for the run");
    let client = certificates(dir.path());
    let stream = jetstream::Stream::create(&run).await;
    let sink = Sink::start(free_port(), scenario.backlog).await;
    let proxy = Proxy::start(free_port(), NATS_ADDR).await;
    let kafka = Kafka::start(&run).await;
    let config = receiver_config(
        dir.path(),
        &cluster.url(&format!("faults_{run}")),
        &sink,
        &proxy,
        &stream.subject_prefix,
        &kafka,
    );
    let mut receivers = Vec::new();
    for replica in 0..scenario.replicas {
        let name = format!("replica-{replica}");
        receivers.push(Receiver::start(&name, dir.path(), free_port(), free_port(), &config).await);
    }
    let mut stage = Stage {
        cluster,
        sink,
        proxy,
        kafka,
        receivers,
    };

    let urls = stage.receivers.iter().map(Receiver::url).collect();
    // A serial server that closes every connection (like Python's http.server) takes a few
    // hundred requests a second at best (fewer in this debug-built harness): no forwarder
    // can drain faster than that, so Audian's side is paced below it here. The suite checks
    // that the forwarder stops flooding such a target, not the target's own speed.
    let rate = match scenario.backlog {
        Backlog::Small => Some(100),
        Backlog::Normal => None,
    };
    let sender = Sender::start(&run, urls, client, SENDER_TASKS, rate);
    wait_for("load before the fault", Duration::from_secs(60), || async {
        (sender.acked() >= LOAD_AROUND_FAULT).then_some(())
    })
    .await;
    let fault_end = stage.inject(scenario.fault).await;
    let at_end = sender.acked();
    wait_for("load after the fault", Duration::from_secs(60), || async {
        (sender.acked() >= at_end + LOAD_AROUND_FAULT).then_some(())
    })
    .await;
    let ledger = sender.stop(Duration::from_secs(60)).await;

    let acked = ledger.acked.lock().unwrap().clone();
    wait_for(
        "every acknowledged event at every target",
        RECOVERY_DEADLINE,
        || async {
            let http = stage.sink.received();
            let nats = stream.stored();
            let kafka = stage.kafka.stored();
            acked
                .iter()
                .all(|id| http.contains_key(id) && nats.contains_key(id) && kafka.contains_key(id))
                .then_some(())
        },
    )
    .await;
    let recovery = fault_end.elapsed();

    let verdict = verdict::check(
        scenario.name,
        &ledger,
        &stage.sink.received(),
        &stream,
        &stage.kafka.stored(),
        &stage.cluster.url(&format!("faults_{run}")),
        recovery,
    )
    .await;
    for receiver in &mut stage.receivers {
        receiver.stop();
    }
    verdict.map_err(|problems| {
        let logs: Vec<String> = stage
            .receivers
            .iter()
            .map(|r| format!("--- {} log:\n{}", r.name, r.log_tail()))
            .collect();
        format!("{problems}\n{}", logs.join("\n"))
    })
}

impl Stage {
    /// Injects the fault; returns when it has ended (everything is back up).
    async fn inject(&mut self, fault: Fault) -> Instant {
        match fault {
            Fault::ReceiverKilled => {
                for _ in 0..3 {
                    self.receivers[0].kill();
                    sleep(Duration::from_millis(300)).await;
                    self.receivers[0].spawn().await;
                    sleep(Duration::from_secs(1)).await;
                }
            }
            Fault::PostgresRestart => {
                self.cluster.crash();
                sleep(Duration::from_secs(3)).await;
                self.cluster.start_server();
            }
            Fault::HttpTargetDown => {
                self.sink.fail_with_503();
                sleep(Duration::from_secs(4)).await;
                self.sink.down();
                sleep(Duration::from_secs(4)).await;
                self.sink.up();
            }
            Fault::BrokerCut => {
                self.proxy.cut().await;
                sleep(Duration::from_secs(5)).await;
                self.proxy.restore();
            }
            Fault::KafkaCut => {
                self.kafka.proxy.cut().await;
                sleep(Duration::from_secs(5)).await;
                self.kafka.proxy.restore();
            }
            Fault::KafkaRestart => {
                for receiver in &self.receivers {
                    receiver.signal("STOP");
                }
                self.kafka.restart().await;
                for receiver in &self.receivers {
                    receiver.signal("CONT");
                }
            }
            Fault::ReplicaDeath => self.receivers[1].kill(),
            Fault::Combined => {
                self.proxy.cut().await;
                self.sink.down();
                sleep(Duration::from_millis(1500)).await;
                self.cluster.crash();
                sleep(Duration::from_secs(2)).await;
                self.cluster.start_server();
                self.receivers[0].kill();
                sleep(Duration::from_millis(300)).await;
                self.receivers[0].spawn().await;
                sleep(Duration::from_secs(1)).await;
                self.proxy.restore();
                self.sink.up();
                self.receivers[1].kill();
            }
        }
        Instant::now()
    }
}

/// The shared part of every replica's configuration: short leases and backoff, so that
/// the suite sees several retry periods within seconds.
fn receiver_config(
    dir: &Path,
    database: &str,
    sink: &Sink,
    proxy: &Proxy,
    subject_prefix: &str,
    kafka: &Kafka,
) -> String {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    format!(
        r#"[tls]
mode = "rustls"
cert = "{cert}"
key = "{key}"

[database]
url = "{database}"
acquire_timeout_ms = 1000
write_timeout_ms = 2000

[log]
format = "json"

[forward]
lease_ms = 3000
poll_interval_ms = 200
backoff_initial_ms = 100
backoff_max_ms = 1000
max_attempts = 100000

[[forward.targets]]
name = "http"
kind = "http"
url = "{http}"
timeout_ms = 2000

[[forward.targets]]
name = "nats"
kind = "nats"
url = "nats://{nats}"
subject = "{subject_prefix}.{{type}}"

[[forward.targets]]
name = "kafka"
kind = "kafka"
brokers = ["{kafka}"]
topic = "{topic}"
"#,
        cert = cert.display(),
        key = key.display(),
        http = sink.url(),
        nats = proxy.addr(),
        kafka = kafka.addr(),
        topic = kafka.topic,
    )
}

/// A self-signed certificate for localhost in `dir`, and a client that trusts only it.
fn certificates(dir: &Path) -> reqwest::Client {
    let key = KeyPair::generate().expect("a key");
    let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("a certificate");
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(cert.der().clone())
        .expect("trusting the certificate");
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("the sender's client")
}
