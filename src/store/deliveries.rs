//! The outbox queries: claim due deliveries under a lease, record their outcome, and the
//! operator's list/show/replay.

use std::time::Duration;

use bytes::Bytes;
use sqlx::PgPool;
use time::OffsetDateTime;

/// The channel intake and replay notify when deliveries become due.
pub const CHANNEL: &str = "audian_deliveries";

/// A delivery claimed by a worker, with what it needs to send.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub event_id: String,
    pub target: String,
    /// Including this attempt.
    pub attempts: i32,
    pub event_type: String,
    pub payload: Vec<u8>,
    pub received_at: OffsetDateTime,
}

impl Claimed {
    pub fn payload_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(&self.payload)
    }
}

/// How an attempt ended, as stored.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered,
    Retry { after: Duration, error: String },
    Dead { error: String },
}

const CLAIM: &str = r#"
WITH due AS (
    SELECT event_id, target FROM deliveries
    WHERE state = 'pending' AND next_attempt_at <= now() AND target = ANY($2)
      AND (lease_until IS NULL OR lease_until <= now())
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
-- Only unindexed columns change, so the row can be updated in place (HOT).
UPDATE deliveries AS d
SET attempts = d.attempts + 1,
    lease_until = now() + make_interval(secs => $3)
FROM due JOIN events AS e USING (event_id)
WHERE d.event_id = due.event_id AND d.target = due.target
RETURNING d.event_id, d.target, d.attempts, e.event_type, e.payload, e.received_at
"#;

/// Claims up to `limit` due deliveries for `targets`. Until `lease` runs out no other worker
/// takes them; if this worker dies, they come back by themselves when it does.
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    targets: &[String],
    lease: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(CLAIM)
        .bind(limit)
        .bind(targets)
        .bind(lease.as_secs_f64())
        .fetch_all(pool)
        .await
}

const COMPLETE: &str = r#"
UPDATE deliveries AS d
SET state = x.state,
    delivered_at = CASE WHEN x.state = 'delivered' THEN now() END,
    next_attempt_at = now() + make_interval(secs => x.delay),
    lease_until = NULL,
    last_error = x.error
FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::float8[], $6::text[])
     AS x(event_id, target, attempts, state, delay, error)
WHERE d.event_id = x.event_id AND d.target = x.target
  AND d.attempts = x.attempts AND d.state = 'pending'
"#;

/// Records every outcome of a batch in one statement. A row re-claimed by another worker
/// after this one's lease ran out (its attempt count moved on) is left to that worker.
pub async fn complete(pool: &PgPool, outcomes: &[(&Claimed, Outcome)]) -> Result<(), sqlx::Error> {
    let mut columns = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (claimed, outcome) in outcomes {
        let (state, delay, error) = match outcome {
            Outcome::Delivered => ("delivered", 0.0, None),
            Outcome::Retry { after, error } => {
                ("pending", after.as_secs_f64(), Some(error.as_str()))
            }
            Outcome::Dead { error } => ("dead", 0.0, Some(error.as_str())),
        };
        columns.0.push(claimed.event_id.as_str());
        columns.1.push(claimed.target.as_str());
        columns.2.push(claimed.attempts);
        columns.3.push(state);
        columns.4.push(delay);
        columns.5.push(error);
    }
    sqlx::query(COMPLETE)
        .bind(columns.0)
        .bind(columns.1)
        .bind(columns.2)
        .bind(columns.3)
        .bind(columns.4)
        .bind(columns.5)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn count_pending(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'pending'")
        .fetch_one(pool)
        .await
}

/// One delivery as an operator sees it.
#[derive(Debug, sqlx::FromRow)]
pub struct DeliveryRow {
    pub event_id: String,
    pub target: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

const SELECT_ROWS: &str = "SELECT event_id, target, state, attempts, next_attempt_at, \
    delivered_at, last_error FROM deliveries";

pub async fn list(
    pool: &PgPool,
    state: Option<&str>,
    target: Option<&str>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let sql = select_where(
        "($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR target = $2) \
         ORDER BY created_at DESC, event_id, target LIMIT $3",
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(state)
        .bind(target)
        .bind(limit)
        .fetch_all(pool)
        .await
}

pub async fn for_event(pool: &PgPool, event_id: &str) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let sql = select_where("event_id = $1 ORDER BY target");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(event_id)
        .fetch_all(pool)
        .await
}

fn select_where(condition: &str) -> String {
    format!("{SELECT_ROWS} WHERE {condition}")
}

/// An event as `events show` prints it: type, received at, payload size and SHA-256.
pub async fn event_summary(
    pool: &PgPool,
    event_id: &str,
) -> Result<Option<(String, OffsetDateTime, i32, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_type, received_at, octet_length(payload), payload_sha256 \
         FROM events WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_optional(pool)
    .await
}

/// Which of `ids` are not recorded events.
pub async fn unknown_events(pool: &PgPool, ids: &[String]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM unnest($1::text[]) AS id \
         WHERE NOT EXISTS (SELECT 1 FROM events WHERE event_id = id) ORDER BY id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Puts deliveries back to pending with a fresh attempt count, and wakes the workers.
/// Selects by event ids, or by state; `target` narrows either.
pub async fn replay(
    pool: &PgPool,
    ids: Option<&[String]>,
    state: Option<&str>,
    target: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let replayed = sqlx::query(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(), \
         lease_until = NULL, last_error = NULL, delivered_at = NULL \
         WHERE ($1::text[] IS NULL OR event_id = ANY($1)) \
           AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR target = $3)",
    )
    .bind(ids)
    .bind(state)
    .bind(target)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(replayed)
}
