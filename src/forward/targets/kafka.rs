//! Kafka forward target: produces each batch of the log as one produce request per
//! partition (rskafka, `acks = all`), and counts a message delivered only once the partition
//! leader acknowledged it with every in-sync replica. Records are keyed (the event id by
//! default) and placed by Kafka's own partitioner (murmur2 of the key), so a consumer sees
//! each key's events in log order and any Kafka client agrees on where a key goes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use rskafka::BackoffConfig;
use rskafka::chrono::{DateTime, Utc};
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rskafka::record::Record;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{
    Checks, DeliveryError, Message, check_metadata, error_chain, install_crypto_provider,
    render_template, rfc3339, validate_template_with,
};
use crate::config::read_secret;

/// Bounds every call to the brokers (metadata, leader lookup, one produce request), so a
/// broker that does not answer fails the attempt instead of holding it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a topic's partition count is trusted before it is read again.
const PARTITIONS_TTL: Duration = Duration::from_secs(60);

/// What a record costs in a produce request beyond its key, value and headers (lengths,
/// varints, attributes), counted when splitting a partition's records by `max_batch_bytes`.
const RECORD_OVERHEAD: usize = 64;

/// The keys of a `kind = "kafka"` target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Topic template; `{type}` is replaced by the event type.
    pub topic: String,
    /// Record key template (`{id}`, `{type}`); default the event id.
    #[serde(default = "default_key")]
    pub key: String,
    /// Only `"all"`: a message is delivered once every in-sync replica has it.
    #[serde(default = "default_acks")]
    pub acks: String,
    #[serde(default)]
    pub compression: KafkaCompression,
    /// Connect over TLS (rustls); the system's roots unless `tls_ca_file` is set.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CA certificates that sign the brokers' certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; off when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// The environment variable holding the SASL user name (or `<name>_FILE`, a file).
    #[serde(default = "default_username_env")]
    pub sasl_username_env: String,
    /// The environment variable holding the SASL password (or `<name>_FILE`, a file).
    #[serde(default = "default_password_env")]
    pub sasl_password_env: String,
    /// The most record bytes in one produce request; a partition's share of a batch is
    /// split into requests of at most this much (a record larger than it goes alone).
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KafkaCompression {
    #[default]
    None,
    Gzip,
    Snappy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

fn default_key() -> String {
    "{id}".to_owned()
}

fn default_acks() -> String {
    "all".to_owned()
}

fn default_username_env() -> String {
    "KAFKA_SASL_USERNAME".to_owned()
}

fn default_password_env() -> String {
    "KAFKA_SASL_PASSWORD".to_owned()
}

fn default_max_batch_bytes() -> usize {
    1_000_000
}

impl KafkaConfig {
    pub(super) fn check(&self, checks: &mut Checks<'_>) {
        if self.brokers.is_empty() {
            checks.problem("`brokers` is empty: name at least one `host:port`");
        }
        for broker in &self.brokers {
            checks.key("brokers", check_broker(broker));
        }
        checks.key("topic", check_topic_template(&self.topic));
        checks.key(
            "key",
            validate_template_with(&self.key, &["id", "type"]).and_then(|()| {
                (!self.key.is_empty())
                    .then_some(())
                    .ok_or_else(|| "the key template is empty".to_owned())
            }),
        );
        if self.acks != "all" {
            checks.problem(format_args!(
                "`acks`: only \"all\" is supported (got {:?}): a message counts as delivered \
                 only once every in-sync replica has it",
                self.acks
            ));
        }
        if self.tls_ca_file.is_some() && !self.tls {
            checks.problem("`tls_ca_file` is set but `tls` is false: set `tls = true`");
        }
        if let Some(path) = &self.tls_ca_file {
            checks.key("tls_ca_file", read_roots(path).map(drop));
        }
        if self.sasl_mechanism.is_some() {
            checks.key(
                "sasl_username_env",
                credential(&self.sasl_username_env).map(drop),
            );
            checks.key(
                "sasl_password_env",
                credential(&self.sasl_password_env).map(drop),
            );
        }
        if !(1024..=100 * 1024 * 1024).contains(&self.max_batch_bytes) {
            checks.problem(format_args!(
                "`max_batch_bytes` must be 1024 to 104857600 (got {})",
                self.max_batch_bytes
            ));
        }
    }

    pub fn build(&self) -> Result<KafkaTarget, String> {
        check_topic_template(&self.topic)?;
        validate_template_with(&self.key, &["id", "type"])?;
        let tls = if self.tls {
            Some(Arc::new(tls_config(self.tls_ca_file.as_deref())?))
        } else {
            None
        };
        let sasl = match self.sasl_mechanism {
            None => None,
            Some(mechanism) => {
                let credentials = Credentials::new(
                    credential(&self.sasl_username_env)?,
                    credential(&self.sasl_password_env)?,
                );
                Some(match mechanism {
                    SaslMechanism::Plain => SaslConfig::Plain(credentials),
                    SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(credentials),
                    SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(credentials),
                })
            }
        };
        Ok(KafkaTarget {
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            key: self.key.clone(),
            compression: match self.compression {
                KafkaCompression::None => Compression::NoCompression,
                KafkaCompression::Gzip => Compression::Gzip,
                KafkaCompression::Snappy => Compression::Snappy,
            },
            tls,
            sasl,
            max_batch_bytes: self.max_batch_bytes,
            state: Mutex::new(Connection::default()),
        })
    }
}

/// A SASL credential from the environment variable `name` (or the file `name_FILE` names).
fn credential(name: &str) -> Result<String, String> {
    use secrecy::ExposeSecret;
    match read_secret(name) {
        Ok(Some(value)) => Ok(value.expose_secret().to_owned()),
        Ok(None) => Err(format!(
            "`sasl_mechanism` is set but neither {name} nor {name}_FILE is in the environment"
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn check_broker(broker: &str) -> Result<(), String> {
    let (host, port) = broker
        .rsplit_once(':')
        .ok_or_else(|| format!("{broker:?} is not `host:port`"))?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("{broker:?} is not `host:port`"));
    }
    Ok(())
}

fn check_topic_template(template: &str) -> Result<(), String> {
    validate_template_with(template, &["type"])?;
    check_topic(&render_template(template, "event"))
        .map_err(|e| format!("invalid topic template: {e}"))
}

/// Kafka's own rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
fn check_topic(topic: &str) -> Result<(), String> {
    let valid_chars = topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if topic.is_empty() || topic.len() > 249 || !valid_chars || topic == "." || topic == ".." {
        return Err(format!(
            "{topic:?} is not a Kafka topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-')"
        ));
    }
    Ok(())
}

fn read_roots(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_roots(path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err("no system CA certificates found: set `tls_ca_file`".into());
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

pub struct KafkaTarget {
    brokers: Vec<String>,
    topic: String,
    key: String,
    compression: Compression,
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: Option<SaslConfig>,
    max_batch_bytes: usize,
    state: Mutex<Connection>,
}

/// The client and what it has learnt; emptied after a broken connection, so the next
/// attempt starts from the bootstrap brokers.
#[derive(Default)]
struct Connection {
    client: Option<Arc<Client>>,
    /// Topic → partition count, and when it was read.
    partitions: HashMap<String, (i32, Instant)>,
    /// One client per partition leader (it follows leader changes by itself).
    producers: HashMap<(String, i32), Arc<PartitionClient>>,
}

/// One message made into a record, with the index of its message in the batch.
struct Prepared {
    index: usize,
    topic: String,
    record: Record,
}

impl KafkaTarget {
    /// Produces `msgs` and answers for each, in order.
    pub async fn deliver_batch(&self, msgs: &[Message<'_>]) -> Vec<Result<(), DeliveryError>> {
        let mut results: Vec<Result<(), DeliveryError>> =
            vec![Err(DeliveryError::retryable("not sent")); msgs.len()];
        let mut prepared = Vec::with_capacity(msgs.len());
        for (index, msg) in msgs.iter().enumerate() {
            match self.record(msg) {
                Ok((topic, record)) => prepared.push(Prepared {
                    index,
                    topic,
                    record,
                }),
                Err(e) => results[index] = Err(e),
            }
        }
        if prepared.is_empty() {
            return results;
        }
        // Each partition's records in log order; the partitions produced side by side.
        let mut by_partition: BTreeMap<(String, i32), Vec<(usize, Record)>> = BTreeMap::new();
        let mut counts: HashMap<String, Result<i32, DeliveryError>> = HashMap::new();
        for Prepared {
            index,
            topic,
            record,
        } in prepared
        {
            if !counts.contains_key(&topic) {
                let count = self.partition_count(&topic).await;
                counts.insert(topic.clone(), count);
            }
            match counts[&topic].clone() {
                Ok(count) => {
                    let key = record.key.as_deref().unwrap_or_default();
                    let partition = partition_for(key, count);
                    by_partition
                        .entry((topic, partition))
                        .or_default()
                        .push((index, record));
                }
                Err(e) => results[index] = Err(e),
            }
        }
        let produced = join_all(
            by_partition
                .into_iter()
                .map(|((topic, partition), records)| self.produce(msgs, topic, partition, records)),
        )
        .await;
        for (index, result) in produced.into_iter().flatten() {
            results[index] = result;
        }
        results
    }

    fn record(&self, msg: &Message<'_>) -> Result<(String, Record), DeliveryError> {
        check_metadata(msg)?;
        let topic = render_template(&self.topic, msg.event_type);
        check_topic(&topic).map_err(|e| DeliveryError::permanent(format!("Kafka topic: {e}")))?;
        let key = render_key(&self.key, msg.event_id, msg.event_type);
        let mut headers = BTreeMap::new();
        headers.insert("event_id".to_owned(), msg.event_id.as_bytes().to_vec());
        headers.insert("event_type".to_owned(), msg.event_type.as_bytes().to_vec());
        headers.insert(
            "received_at".to_owned(),
            rfc3339(msg.received_at)?.into_bytes(),
        );
        if let Some(signature) = msg.signature {
            headers.insert(
                "X-Receiver-Signature".to_owned(),
                signature.as_bytes().to_vec(),
            );
        }
        headers.insert(
            "traceparent".to_owned(),
            msg.traceparent.as_bytes().to_vec(),
        );
        if let Some(state) = msg.tracestate {
            headers.insert("tracestate".to_owned(), state.as_bytes().to_vec());
        }
        let millis = (msg.received_at.unix_timestamp_nanos() / 1_000_000) as i64;
        let record = Record {
            key: Some(key.into_bytes()),
            value: Some(msg.payload.to_vec()),
            headers,
            timestamp: DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or_default(),
        };
        Ok((topic, record))
    }

    /// Sends one partition's records in requests of at most `max_batch_bytes`; after a
    /// request fails, the rest are not sent (they would overtake it), and fail with it.
    /// `msgs` is the batch the records were made from (indexed by their `usize`).
    async fn produce(
        &self,
        msgs: &[Message<'_>],
        topic: String,
        partition: i32,
        records: Vec<(usize, Record)>,
    ) -> Vec<(usize, Result<(), DeliveryError>)> {
        let mut outcomes = Vec::with_capacity(records.len());
        let mut failed: Option<DeliveryError> = None;
        for chunk in chunks(records, self.max_batch_bytes) {
            let (indexes, records): (Vec<usize>, Vec<Record>) = chunk.into_iter().unzip();
            if let Some(error) = &failed {
                let error = DeliveryError {
                    message: format!(
                        "not sent after an earlier request failed: {}",
                        error.message
                    ),
                    ..error.clone()
                };
                outcomes.extend(indexes.into_iter().map(|i| (i, Err(error.clone()))));
                continue;
            }
            match self.produce_chunk(&topic, partition, records).await {
                Ok(()) => outcomes.extend(indexes.into_iter().map(|i| (i, Ok(())))),
                Err(error) if !error.retryable && indexes.len() > 1 => {
                    // A refusal of the whole request (too large, say) may be one record's
                    // fault: send each alone (made again: the request took the records),
                    // so only the records that earn it go dead.
                    for index in indexes {
                        let result = match self.record(&msgs[index]) {
                            Ok((_, record)) => {
                                self.produce_chunk(&topic, partition, vec![record]).await
                            }
                            Err(e) => Err(e),
                        };
                        outcomes.push((index, result));
                    }
                }
                Err(error) => {
                    outcomes.extend(indexes.into_iter().map(|i| (i, Err(error.clone()))));
                    failed = Some(error);
                }
            }
        }
        outcomes
    }

    async fn produce_chunk(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<Record>,
    ) -> Result<(), DeliveryError> {
        let producer = self.producer(topic, partition).await?;
        let outcome =
            tokio::time::timeout(REQUEST_TIMEOUT, producer.produce(records, self.compression))
                .await;
        match outcome {
            Ok(Ok(offsets)) => {
                tracing::debug!(
                    target_kind = "kafka",
                    topic,
                    partition,
                    records = offsets.len(),
                    first_offset = offsets.first().copied(),
                    "produce acknowledged"
                );
                Ok(())
            }
            Ok(Err(e)) => Err(self.failed(e, topic).await),
            Err(_) => Err(self.timed_out("produce").await),
        }
    }

    /// The topic's partition count, read from the brokers at most every `PARTITIONS_TTL`.
    async fn partition_count(&self, topic: &str) -> Result<i32, DeliveryError> {
        let client = self.client().await?;
        if let Some((count, read)) = self.state.lock().await.partitions.get(topic)
            && read.elapsed() < PARTITIONS_TTL
        {
            return Ok(*count);
        }
        let topics = match tokio::time::timeout(REQUEST_TIMEOUT, client.list_topics()).await {
            Ok(Ok(topics)) => topics,
            Ok(Err(e)) => return Err(self.failed(e, topic).await),
            Err(_) => return Err(self.timed_out("metadata").await),
        };
        let mut state = self.state.lock().await;
        let now = Instant::now();
        for t in &topics {
            state
                .partitions
                .insert(t.name.clone(), (t.partitions.len() as i32, now));
        }
        match state.partitions.get(topic) {
            Some((count, _)) if *count > 0 => Ok(*count),
            _ => Err(DeliveryError::permanent(format!(
                "Kafka topic {topic:?} does not exist on the brokers (create it, then replay)"
            ))),
        }
    }

    async fn producer(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<PartitionClient>, DeliveryError> {
        let key = (topic.to_owned(), partition);
        if let Some(producer) = self.state.lock().await.producers.get(&key) {
            return Ok(Arc::clone(producer));
        }
        let client = self.client().await?;
        let made = tokio::time::timeout(
            REQUEST_TIMEOUT,
            client.partition_client(topic, partition, UnknownTopicHandling::Error),
        )
        .await;
        let producer = match made {
            Ok(Ok(producer)) => Arc::new(producer),
            Ok(Err(e)) => return Err(self.failed(e, topic).await),
            Err(_) => return Err(self.timed_out("leader lookup").await),
        };
        let mut state = self.state.lock().await;
        Ok(Arc::clone(state.producers.entry(key).or_insert(producer)))
    }

    async fn client(&self) -> Result<Arc<Client>, DeliveryError> {
        if let Some(client) = &self.state.lock().await.client {
            return Ok(Arc::clone(client));
        }
        install_crypto_provider();
        // The client retries on its own; bounded here so that the worker's backoff (which
        // parks the target and keeps the retry rows) owns the long waits.
        let backoff = BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            base: 3.0,
            deadline: Some(Duration::from_secs(5)),
        };
        let mut builder = ClientBuilder::new(self.brokers.clone())
            .client_id("audian-receiver")
            .backoff_config(backoff);
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(Arc::clone(tls));
        }
        if let Some(sasl) = &self.sasl {
            builder = builder.sasl_config(sasl.clone());
        }
        let client = match tokio::time::timeout(REQUEST_TIMEOUT, builder.build()).await {
            Ok(Ok(client)) => Arc::new(client),
            Ok(Err(e)) => {
                return Err(DeliveryError::retryable(format!(
                    "Kafka connect to {:?} failed: {}",
                    self.brokers,
                    error_chain(&e)
                )));
            }
            Err(_) => {
                return Err(DeliveryError::retryable(format!(
                    "Kafka connect to {:?} timed out",
                    self.brokers
                )));
            }
        };
        tracing::info!(target_kind = "kafka", brokers = ?self.brokers, "connected to Kafka");
        let mut state = self.state.lock().await;
        Ok(Arc::clone(state.client.get_or_insert(client)))
    }

    /// Classifies a client error: what retrying cannot fix is permanent; a broken
    /// connection also drops the client, so the next attempt reconnects from scratch.
    async fn failed(&self, error: KafkaError, topic: &str) -> DeliveryError {
        let text = error_chain(&error);
        if let KafkaError::ServerError { protocol_error, .. } = &error {
            let permanent = match protocol_error {
                ProtocolError::UnknownTopicOrPartition | ProtocolError::InvalidTopicException => {
                    Some("does not exist on the brokers (create it, then replay)")
                }
                ProtocolError::MessageTooLarge | ProtocolError::RecordListTooLarge => {
                    Some("refused the message as too large")
                }
                ProtocolError::TopicAuthorizationFailed
                | ProtocolError::ClusterAuthorizationFailed => {
                    Some("refused this producer (authorization failed)")
                }
                _ => None,
            };
            if let Some(why) = permanent {
                self.state.lock().await.partitions.remove(topic);
                return DeliveryError::permanent(format!("Kafka topic {topic:?} {why}: {text}"));
            }
            return DeliveryError::retryable(format!("Kafka produce to {topic:?} failed: {text}"));
        }
        self.reset().await;
        DeliveryError::retryable(format!("Kafka produce to {topic:?} failed: {text}"))
    }

    async fn timed_out(&self, what: &str) -> DeliveryError {
        self.reset().await;
        DeliveryError::retryable(format!(
            "Kafka {what} not answered within {}s",
            REQUEST_TIMEOUT.as_secs()
        ))
    }

    async fn reset(&self) {
        *self.state.lock().await = Connection::default();
    }
}

/// A partition's records in runs of at most `max_bytes` (a larger record runs alone).
fn chunks(records: Vec<(usize, Record)>, max_bytes: usize) -> Vec<Vec<(usize, Record)>> {
    let mut out: Vec<Vec<(usize, Record)>> = Vec::new();
    let mut size = 0;
    for (index, record) in records {
        let cost = record.approximate_size() + RECORD_OVERHEAD;
        match out.last_mut() {
            Some(run) if size + cost <= max_bytes => {
                run.push((index, record));
                size += cost;
            }
            _ => {
                out.push(vec![(index, record)]);
                size = cost;
            }
        }
    }
    out
}

/// The key template with `{id}` and `{type}` filled in, in one pass (an id that holds
/// `{type}` stays as it is).
fn render_key(template: &str, id: &str, event_type: &str) -> String {
    let mut out = String::with_capacity(template.len() + id.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        if let Some(tail) = after.strip_prefix("{id}") {
            out.push_str(id);
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("{type}") {
            out.push_str(event_type);
            rest = tail;
        } else {
            out.push('{');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Kafka's default partitioner for a keyed record: murmur2 of the key, made positive,
/// modulo the partition count.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as i32) % partitions.max(1)
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
    /// `testMurmur2`).
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input) as i32,
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn partitions_are_in_range_and_stable() {
        for key in ["evt_1", "evt_2", "", "a much longer event id 0123456789"] {
            let p = partition_for(key.as_bytes(), 3);
            assert!((0..3).contains(&p));
            assert_eq!(p, partition_for(key.as_bytes(), 3));
        }
        assert_eq!(partition_for(b"anything", 1), 0);
    }

    #[test]
    fn the_key_is_rendered_in_one_pass() {
        assert_eq!(render_key("{id}", "evt_{type}", "t"), "evt_{type}");
        assert_eq!(render_key("{type}/{id}", "e1", "job.done"), "job.done/e1");
        assert_eq!(render_key("fixed", "e1", "t"), "fixed");
    }

    #[test]
    fn topics_follow_kafkas_rule() {
        assert!(check_topic("audian.job-done_1").is_ok());
        for bad in ["", ".", "..", "has space", "slash/ed", &"x".repeat(250)] {
            assert!(check_topic(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn brokers_must_be_host_and_port() {
        assert!(check_broker("127.0.0.1:9092").is_ok());
        assert!(check_broker("kafka-0.kafka:9093").is_ok());
        for bad in ["kafka", ":9092", "kafka:", "kafka:0", "kafka:99999"] {
            assert!(check_broker(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn records_are_split_by_size_in_order() {
        let record = |n: usize| Record {
            key: None,
            value: Some(vec![0; n]),
            headers: BTreeMap::new(),
            timestamp: DateTime::UNIX_EPOCH,
        };
        let records = vec![
            (0, record(400)),
            (1, record(400)),
            (2, record(5000)),
            (3, record(10)),
        ];
        let runs = chunks(records, 1024);
        let indexes: Vec<Vec<usize>> = runs
            .iter()
            .map(|run| run.iter().map(|(i, _)| *i).collect())
            .collect();
        assert_eq!(indexes, vec![vec![0, 1], vec![2], vec![3]]);
    }
}
