//! Group commit: concurrent requests are gathered into one statement and one commit, and
//! each request is answered only once its own row is durable. Payloads are sealed (when a
//! payload key is configured) before they are queued.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::sealing::PayloadKeys;

/// An event ready to be recorded.
#[derive(Debug)]
pub struct NewEvent {
    pub id: String,
    pub event_type: String,
    /// The body as received; [`EventWriter::record`] seals it when a payload key is set.
    pub payload: Bytes,
    /// Of the plaintext body, so dedup compares bodies whatever they are stored as.
    pub sha256: [u8; 32],
    pub source_ip: Option<std::net::IpAddr>,
    /// The request span's W3C trace context, as `TraceContext::to_stored` writes it.
    pub trace_context: Option<String>,
}

/// What recording an event found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    Duplicate,
    /// Already recorded, but with different bytes. Still not stored or forwarded again.
    DuplicateWithDifferentBody,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("too many events waiting for the database")]
    Overloaded,
    #[error("the database did not commit in time")]
    Timeout,
    #[error("the database write failed")]
    Failed,
}

type Reply = oneshot::Sender<Result<Recorded, WriteError>>;
/// An event waiting for its batch, with its share of [`QUEUE_MAX_BYTES`].
type Queued = (NewEvent, Reply, OwnedSemaphorePermit);

/// Payload bytes waiting for the database at once, across all batches; past it an event is
/// refused at once (503) instead of queued. The request's own body budget is released when
/// its answer times out, so this is what bounds the queue during an outage.
const QUEUE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Payload bytes in one group-commit statement: a larger batch is committed in several.
const STATEMENT_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Hands events to the batching task and waits for their commit.
#[derive(Clone)]
pub struct EventWriter {
    queue: mpsc::Sender<Queued>,
    queued_bytes: Arc<Semaphore>,
    timeout: Duration,
    keys: PayloadKeys,
}

impl EventWriter {
    /// Starts the batching task. It ends when every `EventWriter` clone is dropped, after
    /// committing what it already holds. `committed` is bumped after each commit that
    /// recorded a new event (forwarders in this process wake on it). `db_errors` counts each
    /// batch that failed or timed out. Payloads are sealed under the first of `keys` (stored
    /// clear when there is none).
    pub fn start(
        pool: PgPool,
        batch_max: usize,
        writers: usize,
        timeout: Duration,
        committed: watch::Sender<u64>,
        db_errors: Counter,
        keys: PayloadKeys,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(batch_max * writers * 4);
        let batches = Batches {
            pool,
            batch_max,
            writers,
            timeout,
            committed,
            db_errors,
            key_id: keys.sealing_key_id().map(str::to_owned),
        };
        tokio::spawn(batches.run(receiver));
        Self {
            queue,
            queued_bytes: Arc::new(Semaphore::new(QUEUE_MAX_BYTES)),
            timeout,
            keys,
        }
    }

    /// Records `event` durably, or says why not. `Ok` is returned only after the commit.
    pub async fn record(&self, mut event: NewEvent) -> Result<Recorded, WriteError> {
        // Sealed here, in the request's own task, so the one batching task does no crypto;
        // every payload of this writer is sealed under the same key, named once per batch.
        let sealed = self.keys.seal(&event.id, &event.payload).map_err(|error| {
            tracing::error!(%error, "the payload could not be sealed; not recorded");
            WriteError::Failed
        })?;
        if let Some(sealed) = sealed {
            event.payload = Bytes::from(sealed.bytes);
        }
        let (reply, answer) = oneshot::channel();
        // A full queue means the database is not keeping up: shed load now rather than
        // make every request wait for the timeout.
        let bytes = event.payload.len().min(QUEUE_MAX_BYTES) as u32;
        let held = self
            .queued_bytes
            .clone()
            .try_acquire_many_owned(bytes)
            .map_err(|_| WriteError::Overloaded)?;
        self.queue
            .try_send((event, reply, held))
            .map_err(|_| WriteError::Overloaded)?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(WriteError::Failed),
            Err(_) => Err(WriteError::Timeout),
        }
    }
}

/// The batching task's settings.
struct Batches {
    pool: PgPool,
    batch_max: usize,
    writers: usize,
    timeout: Duration,
    committed: watch::Sender<u64>,
    db_errors: Counter,
    /// The key every payload of this writer is sealed under; `None`: stored clear.
    key_id: Option<String>,
}

impl Batches {
    async fn run(self, mut receiver: mpsc::Receiver<Queued>) {
        let slots = Arc::new(Semaphore::new(self.writers));
        let this = Arc::new(self);
        loop {
            // Wait for a free writer first: while all are busy, arrivals pile up in the
            // channel and the next batch is larger — that is what makes the commit cheap.
            let slot = slots.clone().acquire_owned().await.expect("never closed");
            let mut batch = Vec::with_capacity(this.batch_max);
            if receiver.recv_many(&mut batch, this.batch_max).await == 0 {
                return;
            }
            let this = this.clone();
            tokio::spawn(async move {
                for statement in by_bytes(batch) {
                    this.commit(statement.events).await;
                    drop(statement.held);
                }
                drop(slot);
            });
        }
    }

    async fn commit(&self, statement: Vec<(NewEvent, Reply)>) {
        let key_id = self.key_id.as_deref();
        match commit_batch(&self.pool, statement, key_id, self.timeout).await {
            Ok(true) => self.committed.send_modify(|n| *n += 1),
            Ok(false) => {}
            Err(error) => {
                self.db_errors.inc();
                if error == WriteError::Timeout {
                    tracing::warn!("event batch not committed within the write timeout");
                }
            }
        }
    }
}

/// Events committed by one statement, with the queue bytes they release once it ends.
struct Statement {
    events: Vec<(NewEvent, Reply)>,
    held: Vec<OwnedSemaphorePermit>,
}

/// Splits a batch into statements of at most [`STATEMENT_MAX_BYTES`] of payload (at least
/// one event each), in arrival order.
fn by_bytes(batch: Vec<Queued>) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut current = Statement {
        events: Vec::new(),
        held: Vec::new(),
    };
    let mut bytes = 0;
    for (event, reply, permit) in batch {
        let len = event.payload.len();
        if !current.events.is_empty() && bytes + len > STATEMENT_MAX_BYTES {
            let full = Statement {
                events: std::mem::take(&mut current.events),
                held: std::mem::take(&mut current.held),
            };
            statements.push(full);
            bytes = 0;
        }
        bytes += len;
        current.events.push((event, reply));
        current.held.push(permit);
    }
    if !current.events.is_empty() {
        statements.push(current);
    }
    statements
}

const INSERT_BATCH: &str = r#"
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $7::text[])
        AS i(event_id, event_type, payload, payload_sha256, source_ip, trace_context)
), inserted AS (
    INSERT INTO events (event_id, event_type, payload, payload_sha256, source_ip, payload_key_id,
                        trace_context)
    SELECT event_id, event_type, payload, payload_sha256, source_ip::inet, $6::text,
           trace_context
    FROM input
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
)
SELECT input.event_id,
       inserted.event_id IS NOT NULL AS is_new,
       -- A correlated lookup, not a join: the generic plan of a prepared statement cannot
       -- know the batch is small and would otherwise scan the whole table.
       CASE WHEN inserted.event_id IS NULL THEN
           (SELECT e.payload_sha256 FROM events AS e WHERE e.event_id = input.event_id)
       END AS recorded_sha256
FROM input
LEFT JOIN inserted USING (event_id)
"#;

/// What the statement says about one id of the batch.
#[derive(sqlx::FromRow)]
struct StoredRow {
    event_id: String,
    is_new: bool,
    recorded_sha256: Option<Vec<u8>>,
}

/// One statement, one commit for the whole batch; then every waiter gets its answer.
/// Returns whether a new event was recorded, or why the batch was not. `key_id` names the
/// key the payloads are sealed under (`None`: clear).
async fn commit_batch(
    pool: &PgPool,
    batch: Vec<(NewEvent, Reply)>,
    key_id: Option<&str>,
    timeout: Duration,
) -> Result<bool, WriteError> {
    // The same id twice in one batch: only the first goes to the database, the others
    // are answered as duplicates of it once it is committed.
    let mut seen = HashSet::with_capacity(batch.len());
    let unique = batch
        .iter()
        .map(|(event, _)| event)
        .filter(|e| seen.insert(e.id.as_str()));
    // A statement stuck on a dead connection must not hold this writer forever: past the
    // deadline the connection is dropped (and the waiting requests already got 503).
    let inserted = tokio::time::timeout(timeout, insert(pool, unique, key_id)).await;
    let outcomes = inserted.unwrap_or(Err(WriteError::Timeout)).map(|rows| {
        rows.into_iter()
            .map(|row| (row.event_id.clone(), row))
            .collect::<HashMap<_, _>>()
    });
    let recorded_new = outcomes
        .as_ref()
        .is_ok_and(|rows| rows.values().any(|row| row.is_new));
    let mut answered: HashMap<String, [u8; 32]> = HashMap::new();
    for (event, reply) in batch {
        let outcome = match &outcomes {
            Err(e) => Err(*e),
            Ok(rows) => Ok(classify(&event, rows.get(&event.id), &mut answered)),
        };
        let _ = reply.send(outcome);
    }
    outcomes.map(|_| recorded_new)
}

/// `answered` holds the bytes' hash of each id already answered in this batch, so a second
/// copy of an id is compared with the first.
fn classify(
    event: &NewEvent,
    row: Option<&StoredRow>,
    answered: &mut HashMap<String, [u8; 32]>,
) -> Recorded {
    let recorded: Option<[u8; 32]> = match answered.get(&event.id) {
        Some(sha) => Some(*sha),
        None => {
            answered.insert(event.id.clone(), event.sha256);
            match row {
                Some(row) if row.is_new => return Recorded::New,
                Some(row) => row
                    .recorded_sha256
                    .as_deref()
                    .and_then(|s| s.try_into().ok()),
                // Recorded by a concurrent commit our snapshot cannot see: a duplicate
                // whose bytes we cannot compare.
                None => None,
            }
        }
    };
    match recorded {
        Some(sha) if sha != event.sha256 => Recorded::DuplicateWithDifferentBody,
        _ => Recorded::Duplicate,
    }
}

async fn insert<'a>(
    pool: &PgPool,
    events: impl Iterator<Item = &'a NewEvent>,
    key_id: Option<&str>,
) -> Result<Vec<StoredRow>, WriteError> {
    let mut columns = Columns::default();
    for event in events {
        columns.push(event);
    }
    sqlx::query_as(INSERT_BATCH)
        .bind(columns.ids)
        .bind(columns.types)
        .bind(columns.payloads)
        .bind(columns.hashes)
        .bind(columns.ips)
        .bind(key_id)
        .bind(columns.traces)
        .fetch_all(pool)
        .await
        .map_err(|error| {
            tracing::warn!(error = %error, "event batch not committed");
            WriteError::Failed
        })
}

/// The batch as column arrays, the shape `unnest` takes.
#[derive(Default)]
struct Columns<'a> {
    ids: Vec<&'a str>,
    types: Vec<&'a str>,
    payloads: Vec<&'a [u8]>,
    hashes: Vec<&'a [u8]>,
    ips: Vec<Option<String>>,
    traces: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, event: &'a NewEvent) {
        self.ids.push(&event.id);
        self.types.push(&event.event_type);
        self.payloads.push(&event.payload);
        self.hashes.push(&event.sha256);
        self.ips.push(event.source_ip.map(|ip| ip.to_string()));
        self.traces.push(event.trace_context.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(len: usize, bytes: &Arc<Semaphore>) -> Queued {
        let event = NewEvent {
            id: format!("evt_{len}"),
            event_type: "t".to_owned(),
            payload: Bytes::from(vec![b'x'; len]),
            sha256: [0; 32],
            source_ip: None,
            trace_context: None,
        };
        let permit = bytes.clone().try_acquire_many_owned(len as u32).unwrap();
        (event, oneshot::channel().0, permit)
    }

    #[test]
    fn a_batch_is_split_into_statements_of_bounded_bytes_in_order() {
        let bytes = Arc::new(Semaphore::new(QUEUE_MAX_BYTES));
        let mib = 1024 * 1024;
        let batch = [5 * mib, 3 * mib, 1, 9 * mib, 2]
            .into_iter()
            .map(|len| queued(len, &bytes))
            .collect();
        let sizes: Vec<Vec<usize>> = by_bytes(batch)
            .iter()
            .map(|s| s.events.iter().map(|(e, _)| e.payload.len()).collect())
            .collect();
        assert_eq!(
            sizes,
            [vec![5 * mib, 3 * mib], vec![1], vec![9 * mib], vec![2]]
        );
    }

    #[test]
    fn queue_bytes_are_released_when_a_statement_is_done() {
        let bytes = Arc::new(Semaphore::new(QUEUE_MAX_BYTES));
        let statements = by_bytes(vec![queued(1000, &bytes)]);
        assert_eq!(bytes.available_permits(), QUEUE_MAX_BYTES - 1000);
        drop(statements);
        assert_eq!(bytes.available_permits(), QUEUE_MAX_BYTES);
    }
}
