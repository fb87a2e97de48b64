//! Benchmark companion: provisions what the forward targets of `bench/forward.toml` need
//! (a JetStream stream, a RabbitMQ queue bound to the exchange), serves the HTTP sink they
//! post to, and prints how many messages each destination holds until stopped with Ctrl-C,
//! when it removes what it created.
//!
//! `cargo run --release --example bench_sink`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;

const STREAM: &str = "AUDIAN_BENCH";
const SUBJECTS: &str = "bench.>";
const EXCHANGE: &str = "audian-bench";
const QUEUE: &str = "audian-bench";
const HTTP_SINK: &str = "127.0.0.1:9999";
const REDIS_STREAM: &str = "audian:bench";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
    let js = jetstream::new(nats);
    let _ = js.delete_stream(STREAM).await;
    let stream_config = jetstream::stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![SUBJECTS.to_owned()],
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
            EXCHANGE.into(),
            lapin::ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    let queue_options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(QUEUE.into(), queue_options, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            QUEUE.into(),
            EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let redis = redis::Client::open("redis://127.0.0.1:6379")?;
    let mut redis = redis.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("DEL")
        .arg(REDIS_STREAM)
        .query_async(&mut redis)
        .await?;

    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/sink",
        axum::routing::post(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind(HTTP_SINK).await?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!(
        "ready: http://{HTTP_SINK}/sink, JetStream {STREAM} ({SUBJECTS}), AMQP {EXCHANGE} -> {QUEUE}, Redis {REDIS_STREAM}"
    );

    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let nats_count = js.get_stream(STREAM).await?.info().await?.state.messages;
        let amqp_count = channel
            .queue_declare(
                QUEUE.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?
            .message_count();
        let redis_count: u64 = redis::cmd("XLEN")
            .arg(REDIS_STREAM)
            .query_async(&mut redis)
            .await?;
        println!(
            "http={} nats={nats_count} amqp={amqp_count} redis={redis_count}",
            received.load(Ordering::Relaxed)
        );
    }
    js.delete_stream(STREAM).await?;
    channel
        .queue_delete(QUEUE.into(), QueueDeleteOptions::default())
        .await?;
    channel
        .exchange_delete(EXCHANGE.into(), Default::default())
        .await?;
    let _: () = redis::cmd("DEL")
        .arg(REDIS_STREAM)
        .query_async(&mut redis)
        .await?;
    println!("removed the benchmark stream, queue, exchange and Redis stream");
    Ok(())
}
