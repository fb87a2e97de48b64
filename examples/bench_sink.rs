//! Benchmark companion: provisions what the forward targets of `bench/forward.toml` (and
//! `bench/nats.toml`, `bench/kafka.toml`) need (a JetStream stream, a RabbitMQ queue bound to
//! the exchange, an empty Redis stream, a Kafka topic of 3 partitions on 127.0.0.1:9092),
//! serves the HTTP sink they post to, and counts what each destination holds: printed every
//! few seconds, and served as one line at `GET /counts` (`http=N nats=N amqp=N redis=N
//! kafka=N otlp_requests=N otlp_bytes=N`) for `bench/run.sh`, which
//! polls it. It also takes OTLP/HTTP trace exports at `/v1/traces` (counted, not kept). On
//! Ctrl-C or SIGTERM it removes what it created.
//!
//! `cargo run --release --example bench_sink [-- --tag TAG]`
//!
//! With `--tag TAG` every name carries the tag (stream `AUDIAN_BENCH_TAG` on subjects
//! `bench.TAG.>`, exchange, queue and Kafka topic `audian-bench-TAG`, Redis stream
//! `audian:bench:TAG`), so
//! each benchmark phase counts only its own messages; `bench/run.sh` writes the matching
//! receiver configuration. Without it, the names of `bench/forward.toml`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use clap::Parser;
use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use rskafka::client::ClientBuilder;
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use tokio::signal::unix::{SignalKind, signal};

const HTTP_SINK: &str = "127.0.0.1:9999";
const KAFKA: &str = "127.0.0.1:9092";
const KAFKA_PARTITIONS: i32 = 3;

/// HTTP sink and destination counter for the forwarding benchmarks.
#[derive(Parser, Debug)]
#[command(name = "bench_sink")]
struct Args {
    /// Suffix for every stream, queue and exchange name (letters, digits, `_`).
    #[arg(long, value_parser = parse_tag)]
    tag: Option<String>,
    /// Seconds between printed counts; 0 prints none.
    #[arg(long, default_value_t = 5)]
    print_every: u64,
}

fn parse_tag(tag: &str) -> Result<String, String> {
    if !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(tag.to_owned())
    } else {
        Err("letters, digits and `_` only".to_owned())
    }
}

/// What the destinations are called for one tag.
struct Names {
    stream: String,
    subjects: String,
    exchange: String,
    queue: String,
    redis_stream: String,
}

impl Names {
    fn new(tag: Option<&str>) -> Self {
        match tag {
            None => Self {
                stream: "AUDIAN_BENCH".to_owned(),
                subjects: "bench.>".to_owned(),
                exchange: "audian-bench".to_owned(),
                queue: "audian-bench".to_owned(),
                redis_stream: "audian:bench".to_owned(),
            },
            Some(tag) => Self {
                stream: format!("AUDIAN_BENCH_{tag}"),
                subjects: format!("bench.{tag}.>"),
                exchange: format!("audian-bench-{tag}"),
                queue: format!("audian-bench-{tag}"),
                redis_stream: format!("audian:bench:{tag}"),
            },
        }
    }
}

/// Handles on every destination, to count what each holds.
#[derive(Clone)]
struct Destinations {
    names: Arc<Names>,
    http_received: Arc<AtomicU64>,
    /// OTLP/HTTP export requests taken at `/v1/traces`, and their body bytes.
    otlp_requests: Arc<AtomicU64>,
    otlp_bytes: Arc<AtomicU64>,
    js: jetstream::Context,
    channel: lapin::Channel,
    redis: redis::aio::MultiplexedConnection,
    /// One reader per partition of the Kafka topic (named like the exchange), and the high
    /// watermark each last reported.
    kafka: Arc<Vec<PartitionClient>>,
    kafka_seen: Arc<tokio::sync::Mutex<Vec<i64>>>,
}

impl Destinations {
    /// Records in the Kafka topic: the sum of the partitions' high watermarks, as a fetch
    /// from the last one seen reports them (tansu 0.6 answers ListOffsets "latest" with the
    /// last batch's first offset, short of the records in that batch).
    async fn kafka_count(&self) -> anyhow::Result<i64> {
        let mut seen = self.kafka_seen.lock().await;
        let fetches = self
            .kafka
            .iter()
            .zip(seen.iter())
            .map(|(partition, &from)| partition.fetch_records(from, 1..2, 10));
        let answers = futures_util::future::join_all(fetches).await;
        for (slot, answer) in seen.iter_mut().zip(answers) {
            let (_, high_watermark) = answer?;
            *slot = high_watermark.max(*slot);
        }
        Ok(seen.iter().sum())
    }

    /// `http=N nats=N amqp=N redis=N kafka=N otlp_requests=N otlp_bytes=N`.
    async fn counts(&self) -> anyhow::Result<String> {
        let names = &self.names;
        let nats = self
            .js
            .get_stream(&names.stream)
            .await?
            .info()
            .await?
            .state
            .messages;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let amqp = self
            .channel
            .queue_declare(names.queue.as_str().into(), passive, FieldTable::default())
            .await?
            .message_count();
        let redis: u64 = redis::cmd("XLEN")
            .arg(&names.redis_stream)
            .query_async(&mut self.redis.clone())
            .await?;
        let kafka = self.kafka_count().await?;
        let http = self.http_received.load(Ordering::Relaxed);
        let otlp_requests = self.otlp_requests.load(Ordering::Relaxed);
        let otlp_bytes = self.otlp_bytes.load(Ordering::Relaxed);
        Ok(format!(
            "http={http} nats={nats} amqp={amqp} redis={redis} kafka={kafka} otlp_requests={otlp_requests} otlp_bytes={otlp_bytes}"
        ))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let names = Arc::new(Names::new(args.tag.as_deref()));

    let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
    let js = jetstream::new(nats);
    let _ = js.delete_stream(&names.stream).await;
    let stream_config = jetstream::stream::Config {
        name: names.stream.clone(),
        subjects: vec![names.subjects.clone()],
        ..Default::default()
    };
    js.create_stream(stream_config).await?;

    let amqp =
        lapin::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f", Default::default())
            .await?;
    let channel = amqp.create_channel().await?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            names.exchange.as_str().into(),
            lapin::ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    let _ = channel
        .queue_delete(names.queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let queue_options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(
            names.queue.as_str().into(),
            queue_options,
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            names.queue.as_str().into(),
            names.exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let redis = redis::Client::open("redis://127.0.0.1:6379")?;
    let mut redis = redis.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("DEL")
        .arg(&names.redis_stream)
        .query_async(&mut redis)
        .await?;

    // The Kafka topic is named like the exchange (`bench/kafka.toml`'s `topic`).
    let kafka = ClientBuilder::new(vec![KAFKA.to_owned()]).build().await?;
    let controller = kafka.controller_client()?;
    let _ = controller.delete_topic(&names.exchange, 5_000).await;
    controller
        .create_topic(&names.exchange, KAFKA_PARTITIONS, 1, 5_000)
        .await?;
    let mut readers = Vec::new();
    for partition in 0..KAFKA_PARTITIONS {
        let reader = kafka
            .partition_client(&names.exchange, partition, UnknownTopicHandling::Retry)
            .await?;
        readers.push(reader);
    }

    let destinations = Destinations {
        names: names.clone(),
        http_received: Arc::new(AtomicU64::new(0)),
        otlp_requests: Arc::new(AtomicU64::new(0)),
        otlp_bytes: Arc::new(AtomicU64::new(0)),
        js: js.clone(),
        channel: channel.clone(),
        redis: redis.clone(),
        kafka: Arc::new(readers),
        kafka_seen: Arc::new(tokio::sync::Mutex::new(vec![0; KAFKA_PARTITIONS as usize])),
    };
    let counter = destinations.http_received.clone();
    let (otlp_requests, otlp_bytes) = (
        destinations.otlp_requests.clone(),
        destinations.otlp_bytes.clone(),
    );
    let app = axum::Router::new()
        .route(
            "/sink",
            axum::routing::post(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                async { "ok" }
            }),
        )
        // An OTLP/HTTP collector that takes every export and keeps nothing: the receiver's
        // trace export under load (`bench/run.sh`, phase `otlp`) costs what it would with a
        // real collector on the other end, less the collector's own work.
        .route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                otlp_requests.fetch_add(1, Ordering::Relaxed);
                otlp_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                async { "" }
            }),
        )
        .route(
            "/counts",
            axum::routing::get(
                |axum::extract::State(d): axum::extract::State<Destinations>| async move {
                    match d.counts().await {
                        Ok(line) => (axum::http::StatusCode::OK, line + "\n"),
                        Err(error) => (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            format!("error: {error:#}\n"),
                        ),
                    }
                },
            ),
        )
        .with_state(destinations.clone());
    let listener = tokio::net::TcpListener::bind(HTTP_SINK).await?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!(
        "ready: http://{HTTP_SINK}/sink (counts at /counts), JetStream {} ({}), AMQP {} -> {}, Redis {}, Kafka {}",
        names.stream,
        names.subjects,
        names.exchange,
        names.queue,
        names.redis_stream,
        names.exchange
    );

    let mut terminate = signal(SignalKind::terminate())?;
    let period = Duration::from_secs(args.print_every.max(1));
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
        if args.print_every > 0 {
            println!("{}", destinations.counts().await?);
        }
    }
    js.delete_stream(&names.stream).await?;
    channel
        .queue_delete(names.queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    channel
        .exchange_delete(names.exchange.as_str().into(), Default::default())
        .await?;
    let _: () = redis::cmd("DEL")
        .arg(&names.redis_stream)
        .query_async(&mut redis)
        .await?;
    controller.delete_topic(&names.exchange, 5_000).await?;
    println!("removed the benchmark stream, queue, exchange, Redis stream and Kafka topic");
    Ok(())
}
