//! The JetStream side of the suite: a stream of its own (deleted in `Drop`), and a reader
//! that records the `Nats-Msg-Id` of every message the stream stores.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::{self, consumer::pull::OrderedConfig};
use futures_util::StreamExt;

pub const NATS_ADDR: &str = "127.0.0.1:4222";

pub struct Stream {
    js: jetstream::Context,
    name: String,
    pub subject_prefix: String,
    stored: Arc<Mutex<HashMap<String, u32>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Stream {
    pub async fn create(run: &str) -> Stream {
        let client = async_nats::connect(NATS_ADDR).await.unwrap_or_else(|e| {
            panic!("the fault suite needs NATS with JetStream on {NATS_ADDR}: {e}")
        });
        let js = jetstream::new(client);
        let subject_prefix = format!("faults.{run}");
        let name = format!("FAULTS_{}", run.to_uppercase().replace('-', "_"));
        let stream = js
            .create_stream(jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![format!("{subject_prefix}.>")],
                ..Default::default()
            })
            .await
            .expect("creating the suite's stream (is JetStream enabled?)");
        let consumer = stream
            .create_consumer(OrderedConfig::default())
            .await
            .expect("an ordered consumer on the suite's stream");
        let stored: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let record = stored.clone();
        let reader = tokio::spawn(async move {
            let mut messages = consumer.messages().await.expect("reading the stream");
            while let Some(Ok(message)) = messages.next().await {
                let id = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                *record.lock().unwrap().entry(id).or_default() += 1;
            }
        });
        Stream {
            js,
            name,
            subject_prefix,
            stored,
            reader,
        }
    }

    /// How many times each event id is stored in the stream.
    pub fn stored(&self) -> HashMap<String, u32> {
        self.stored.lock().unwrap().clone()
    }

    /// Messages the stream holds, by its own count.
    pub async fn message_count(&self) -> u64 {
        let mut stream = self.js.get_stream(&self.name).await.expect("the stream");
        stream.info().await.expect("stream info").state.messages
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.reader.abort();
        let name = self.name.clone();
        // Drop may run inside the runtime; delete from a thread with its own runtime and
        // its own connection.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(client) = async_nats::connect(NATS_ADDR).await {
                    let _ = jetstream::new(client).delete_stream(&name).await;
                }
            });
        })
        .join();
    }
}
