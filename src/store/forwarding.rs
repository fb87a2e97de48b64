//! The forwarder's queries: a cursor per target over the events log (leased, so one replica
//! forwards a target at a time), and the retry rows of events that failed a target.
//! Nothing here holds a transaction open while a target is called.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

/// The channel `events replay` notifies, so that running forwarders look at once.
pub const CHANNEL: &str = "audian_deliveries";

/// A place in the log: the writing transaction's id, then the event's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct Position {
    pub txid: i64,
    pub seq: i64,
}

/// What a target needs to send a stored event.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredEvent {
    pub event_id: String,
    pub event_type: String,
    /// `None` once erased (`events forget`): such an event is never forwarded.
    pub payload: Option<Vec<u8>>,
    /// The key the payload is sealed under; `None` when it is stored clear.
    pub payload_key_id: Option<String>,
    pub received_at: OffsetDateTime,
    /// The W3C trace context stored with the event (`None` for events older than it).
    pub trace_context: Option<String>,
}

/// An event read from the log, with its place in it.
#[derive(Debug, sqlx::FromRow)]
pub struct LoggedEvent {
    pub txid: i64,
    pub seq: i64,
    #[sqlx(flatten)]
    pub event: StoredEvent,
}

impl LoggedEvent {
    pub fn position(&self) -> Position {
        Position {
            txid: self.txid,
            seq: self.seq,
        }
    }
}

/// Makes the target's cursor if it has none: it starts at the watermark, so a new target
/// gets every event recorded from now on, and none from before.
pub async fn ensure_cursor(pool: &PgPool, target: &str, type_pattern: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO forward_cursors (target, txid, seq, origin_txid, origin_seq, type_pattern) \
         SELECT $1, w, 0, w, 0, $2 FROM pg_snapshot_xmin(pg_current_snapshot()) AS w \
         ON CONFLICT (target) DO UPDATE SET type_pattern = excluded.type_pattern \
         WHERE forward_cursors.type_pattern IS DISTINCT FROM excluded.type_pattern",
    )
    .bind(target)
    .bind(type_pattern)
    .execute(pool)
    .await?;
    Ok(())
}

/// A target's cursor as its lease holder finds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    /// The last event the target is done with.
    pub at: Position,
    /// Set while the target is parked: it failed every event of the batch after `at`.
    pub park: Option<Park>,
}

/// A parked target: the batch it failed is held (the cursor does not move past it) and
/// tried again, as a whole, when the probe is due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Park {
    /// The end of the held batch.
    pub to: Position,
    /// Attempts the held batch has had.
    pub attempts: i32,
    /// Until the next probe; zero when it is due.
    pub wait: Duration,
}

#[derive(sqlx::FromRow)]
struct CursorRow {
    txid: i64,
    seq: i64,
    parked_txid: Option<i64>,
    parked_seq: Option<i64>,
    parked_attempts: i32,
    parked_wait: Option<f64>,
}

impl From<CursorRow> for Cursor {
    fn from(row: CursorRow) -> Self {
        let park = match (row.parked_txid, row.parked_seq) {
            (Some(txid), Some(seq)) => Some(Park {
                to: Position { txid, seq },
                attempts: row.parked_attempts,
                wait: Duration::from_secs_f64(row.parked_wait.unwrap_or(0.0).max(0.0)),
            }),
            _ => None,
        };
        Self {
            at: Position {
                txid: row.txid,
                seq: row.seq,
            },
            park,
        }
    }
}

/// Takes or renews the lease on the target's cursor for `owner`; `None` while another
/// forwarder holds it.
pub async fn lease_cursor(
    pool: &PgPool,
    target: &str,
    owner: &str,
    lease: Duration,
) -> sqlx::Result<Option<Cursor>> {
    let row: Option<CursorRow> = sqlx::query_as(
        "UPDATE forward_cursors \
         SET lease_owner = $2, lease_until = clock_timestamp() + make_interval(secs => $3) \
         WHERE target = $1 \
           AND (lease_owner = $2 OR lease_until IS NULL OR lease_until < clock_timestamp()) \
         RETURNING txid::text::bigint AS txid, seq, parked_txid::text::bigint AS parked_txid, \
                   parked_seq, parked_attempts, \
                   extract(epoch FROM parked_until - clock_timestamp())::float8 AS parked_wait",
    )
    .bind(target)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Cursor::from))
}

/// The statement behind [`read_after`]: `$1, $2` after, `$3, $4` until (or NULL), `$5` limit.
pub const READ_AFTER: &str = "\
    SELECT txid::text::bigint AS txid, seq, event_id, event_type, payload, payload_key_id, \
           received_at, trace_context \
    FROM events \
    WHERE (txid, seq) > ($1::bigint::text::xid8, $2) \
      AND ($3::bigint IS NULL OR (txid, seq) <= ($3::bigint::text::xid8, $4)) \
      AND txid < pg_snapshot_xmin(pg_current_snapshot()) \
    ORDER BY events.txid, events.seq \
    LIMIT $5";

/// Up to `limit` events after `after` (and, when `until` is set, not after it), in log
/// order, all from transactions that have ended: below the snapshot's xmin nothing can
/// commit later, so nothing appears behind a cursor. The order names the table's columns:
/// a bare `txid` would mean the output column (cast to bigint), which no index serves, and
/// every read would then fetch and sort everything after the cursor.
pub async fn read_after(
    pool: &PgPool,
    after: Position,
    until: Option<Position>,
    limit: i64,
) -> sqlx::Result<Vec<LoggedEvent>> {
    sqlx::query_as(READ_AFTER)
        .bind(after.txid)
        .bind(after.seq)
        .bind(until.map(|p| p.txid))
        .bind(until.map(|p| p.seq))
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Holds the cursor where it is and parks the target: the batch up to `to` failed its
/// `attempts`th try at every event, with `error` (the first); it is tried again after
/// `wait`. Nothing is written per event. Only while `owner` still holds the lease.
pub async fn park(
    pool: &PgPool,
    target: &str,
    owner: &str,
    to: Position,
    attempts: i32,
    wait: Duration,
    error: &str,
) -> sqlx::Result<bool> {
    let parked = sqlx::query(
        "UPDATE forward_cursors \
         SET parked_txid = $3::bigint::text::xid8, parked_seq = $4, parked_attempts = $5, \
             parked_until = clock_timestamp() + make_interval(secs => $6), parked_error = $7, \
             updated_at = now() \
         WHERE target = $1 AND lease_owner = $2",
    )
    .bind(target)
    .bind(owner)
    .bind(to.txid)
    .bind(to.seq)
    .bind(attempts)
    .bind(wait.as_secs_f64())
    .bind(error)
    .execute(pool)
    .await?;
    Ok(parked.rows_affected() == 1)
}

/// An event of a batch that failed at a target (`attempts` times: more than once when the
/// batch was held while the target was parked).
pub struct Failure<'a> {
    pub event_id: &'a str,
    pub attempts: i32,
    pub dead: bool,
    pub retry_in: Duration,
    pub error: &'a str,
}

/// In one statement: moves the cursor to `to` (unparking the target), renews the lease for
/// `lease`, and records the batch's failures as retry rows — only while `owner` still holds
/// the lease (false otherwise: whoever took it over reads the batch again).
pub async fn advance(
    pool: &PgPool,
    target: &str,
    owner: &str,
    to: Position,
    lease: Duration,
    failures: &[Failure<'_>],
) -> sqlx::Result<bool> {
    let mut columns = (vec![], vec![], vec![], vec![], vec![]);
    for failure in failures {
        columns.0.push(failure.event_id);
        columns
            .1
            .push(if failure.dead { "dead" } else { "retrying" });
        columns.2.push(failure.retry_in.as_secs_f64());
        columns.3.push(failure.error);
        columns.4.push(failure.attempts);
    }
    sqlx::query_scalar(
        "WITH moved AS ( \
             UPDATE forward_cursors \
             SET txid = $3::bigint::text::xid8, seq = $4, updated_at = now(), \
                 parked_txid = NULL, parked_seq = NULL, parked_attempts = 0, \
                 parked_until = NULL, parked_error = NULL, \
                 lease_until = clock_timestamp() + make_interval(secs => $10) \
             WHERE target = $1 AND lease_owner = $2 \
             RETURNING 1 \
         ), failed AS ( \
             INSERT INTO forward_retries (target, event_id, state, attempts, next_attempt_at, last_error) \
             SELECT $1, f.event_id, f.state, f.attempts, now() + make_interval(secs => f.delay), f.error \
             FROM unnest($5::text[], $6::text[], $7::float8[], $8::text[], $9::int4[]) \
                 AS f(event_id, state, delay, error, attempts) \
             WHERE EXISTS (SELECT 1 FROM moved) \
             ON CONFLICT (target, event_id) DO NOTHING \
         ) \
         SELECT EXISTS (SELECT 1 FROM moved)",
    )
    .bind(target)
    .bind(owner)
    .bind(to.txid)
    .bind(to.seq)
    .bind(columns.0)
    .bind(columns.1)
    .bind(columns.2)
    .bind(columns.3)
    .bind(columns.4)
    .bind(lease.as_secs_f64())
    .fetch_one(pool)
    .await
}

/// Lets the lease go at shutdown, so another replica takes the target over at once.
pub async fn release_cursor(pool: &PgPool, target: &str, owner: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE forward_cursors SET lease_owner = NULL, lease_until = NULL \
         WHERE target = $1 AND lease_owner = $2",
    )
    .bind(target)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(())
}

/// A retry row claimed by a worker, with what it needs to send.
#[derive(Debug, sqlx::FromRow)]
pub struct ClaimedRetry {
    /// Including this attempt.
    pub attempts: i32,
    /// The claim this attempt holds; its outcome counts only while it is still current.
    pub claim: i64,
    #[sqlx(flatten)]
    pub event: StoredEvent,
}

/// Claims up to `limit` due retries of `target`. The claim is a lease: the row is not due
/// again until `lease` has passed, so a worker that dies gives it back by itself.
pub async fn claim_retries(
    pool: &PgPool,
    target: &str,
    limit: i64,
    lease: Duration,
) -> sqlx::Result<Vec<ClaimedRetry>> {
    sqlx::query_as(
        "WITH due AS ( \
             SELECT event_id FROM forward_retries \
             WHERE target = $1 AND state = 'retrying' AND next_attempt_at <= now() \
             ORDER BY next_attempt_at \
             LIMIT $2 \
             FOR UPDATE SKIP LOCKED \
         ) \
         UPDATE forward_retries AS r \
         SET attempts = r.attempts + 1, claim = r.claim + 1, \
             next_attempt_at = now() + make_interval(secs => $3) \
         FROM due JOIN events AS e USING (event_id) \
         WHERE r.target = $1 AND r.event_id = due.event_id AND e.payload IS NOT NULL \
         RETURNING r.event_id, r.attempts, r.claim, e.event_type, e.payload, e.payload_key_id, \
                   e.received_at, e.trace_context",
    )
    .bind(target)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// How a retried attempt ended.
#[derive(Debug, Clone)]
pub enum RetryOutcome {
    Delivered,
    Retry { after: Duration, error: String },
    Dead { error: String },
}

/// Records every outcome of a retry batch in one statement: delivered rows are deleted,
/// the others rescheduled or marked dead. An attempt whose claim is no longer current
/// (its lease ran out and another took it, or the event was replayed) changes nothing.
pub async fn complete_retries(
    pool: &PgPool,
    target: &str,
    outcomes: &[(&ClaimedRetry, RetryOutcome)],
) -> sqlx::Result<()> {
    let mut columns = (vec![], vec![], vec![], vec![], vec![]);
    for (claimed, outcome) in outcomes {
        let (state, delay, error) = match outcome {
            RetryOutcome::Delivered => ("delivered", 0.0, None),
            RetryOutcome::Retry { after, error } => {
                ("retrying", after.as_secs_f64(), Some(error.as_str()))
            }
            RetryOutcome::Dead { error } => ("dead", 0.0, Some(error.as_str())),
        };
        columns.0.push(claimed.event.event_id.as_str());
        columns.1.push(claimed.claim);
        columns.2.push(state);
        columns.3.push(delay);
        columns.4.push(error);
    }
    sqlx::query(
        "WITH x AS ( \
             SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::float8[], $6::text[]) \
                 AS x(event_id, claim, state, delay, error) \
         ), done AS ( \
             DELETE FROM forward_retries AS r USING x \
             WHERE r.target = $1 AND r.event_id = x.event_id AND r.claim = x.claim \
               AND x.state = 'delivered' \
         ) \
         UPDATE forward_retries AS r \
         SET state = x.state, next_attempt_at = now() + make_interval(secs => x.delay), \
             last_error = x.error, updated_at = now() \
         FROM x \
         WHERE r.target = $1 AND r.event_id = x.event_id AND r.claim = x.claim \
           AND x.state <> 'delivered'",
    )
    .bind(target)
    .bind(columns.0)
    .bind(columns.1)
    .bind(columns.2)
    .bind(columns.3)
    .bind(columns.4)
    .execute(pool)
    .await?;
    Ok(())
}

/// What waits for one target, for the `forward_pending`, `forward_oldest_pending_seconds`
/// and `forward_dead` gauges.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Backlog {
    pub target: String,
    /// Retry rows still retrying, plus events after the cursor of a type the target takes.
    pub pending: i64,
    /// Now minus the earliest `received_at` of those; 0 when nothing is pending.
    pub oldest_pending_seconds: f64,
    /// Retry rows given up on.
    pub dead: i64,
}

/// Where a target's cursor is, and its retry rows, for [`backlog`].
#[derive(sqlx::FromRow)]
struct CursorAndRetries {
    target: String,
    txid: i64,
    seq: i64,
    type_pattern: String,
    retrying: i64,
    dead: i64,
    /// Since the receipt of the oldest event still retrying.
    oldest_seconds: Option<f64>,
}

/// The events after a target's cursor, of a type it takes: `$1, $2` the cursor, `$3` the
/// type pattern. One statement per target with the cursor's own values, so that the
/// planner sees how little of the log lies ahead of it and walks the log index from there;
/// as a lateral join on the cursor row it could not, and scanned the whole table (0.6 s
/// over 2M events, every 5 s).
pub const BEHIND_CURSOR: &str = "\
    SELECT count(*) AS n, \
           extract(epoch FROM clock_timestamp() - min(received_at))::float8 AS oldest_seconds \
    FROM events \
    WHERE (txid, seq) > ($1::bigint::text::xid8, $2) AND event_type ~ $3";

#[derive(sqlx::FromRow)]
struct Behind {
    n: i64,
    oldest_seconds: Option<f64>,
}

/// The backlog of each of `targets` that has a cursor: read every few seconds by the gauge
/// task, never per wake-up. Costs an index range read of what is ahead of each cursor.
pub async fn backlog(pool: &PgPool, targets: &[String]) -> sqlx::Result<Vec<Backlog>> {
    let cursors: Vec<CursorAndRetries> = sqlx::query_as(
        "SELECT c.target, c.txid::text::bigint AS txid, c.seq, c.type_pattern, \
                r.retrying, r.dead, \
                extract(epoch FROM clock_timestamp() - r.oldest)::float8 AS oldest_seconds \
         FROM forward_cursors AS c \
         CROSS JOIN LATERAL ( \
             SELECT count(*) FILTER (WHERE x.state = 'retrying') AS retrying, \
                    count(*) FILTER (WHERE x.state = 'dead') AS dead, \
                    min(e.received_at) FILTER (WHERE x.state = 'retrying') AS oldest \
             FROM forward_retries AS x JOIN events AS e USING (event_id) \
             WHERE x.target = c.target \
         ) AS r \
         WHERE c.target = ANY($1) \
         ORDER BY c.target",
    )
    .bind(targets)
    .fetch_all(pool)
    .await?;
    let mut backlogs = Vec::with_capacity(cursors.len());
    for cursor in cursors {
        let behind: Behind = sqlx::query_as(BEHIND_CURSOR)
            .bind(cursor.txid)
            .bind(cursor.seq)
            .bind(&cursor.type_pattern)
            .fetch_one(pool)
            .await?;
        let oldest = cursor
            .oldest_seconds
            .into_iter()
            .chain(behind.oldest_seconds);
        backlogs.push(Backlog {
            target: cursor.target,
            pending: cursor.retrying + behind.n,
            oldest_pending_seconds: oldest.fold(0.0, f64::max),
            dead: cursor.dead,
        });
    }
    Ok(backlogs)
}

/// The oldest open transaction with an id on the cluster: it holds the watermark (and so
/// every cursor) back. `None` when no other writing transaction is open.
#[derive(Debug, sqlx::FromRow)]
pub struct WatermarkHolder {
    pub pid: i32,
    pub age_seconds: f64,
    pub database: Option<String>,
    pub application_name: Option<String>,
    pub state: Option<String>,
}

pub async fn watermark_holder(pool: &PgPool) -> sqlx::Result<Option<WatermarkHolder>> {
    sqlx::query_as(
        "SELECT pid, extract(epoch FROM clock_timestamp() - xact_start)::float8 AS age_seconds, \
                datname::text AS database, application_name, state \
         FROM pg_stat_activity \
         WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND xact_start IS NOT NULL \
         ORDER BY xact_start LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}
