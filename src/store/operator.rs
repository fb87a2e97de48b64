//! The operator's queries behind `events list|show|replay`: one view of every (event,
//! target) delivery, whatever holds its state (the target's cursor or a retry row).

use sqlx::PgPool;
use time::OffsetDateTime;

use super::forwarding::CHANNEL;

/// Where a delivery stands, as the operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, clap::ValueEnum)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not yet reached by the target's cursor, or failed and waiting for its next attempt.
    Pending,
    Delivered,
    /// No more attempts; waits for `events replay`.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

/// One delivery as an operator sees it.
#[derive(Debug, sqlx::FromRow)]
pub struct DeliveryRow {
    pub event_id: String,
    pub target: String,
    pub state: DeliveryState,
    pub attempts: i32,
    /// For a retry row: when it is next due.
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// Deliveries, newest events first, narrowed by state and target.
pub async fn list(
    pool: &PgPool,
    state: Option<DeliveryState>,
    target: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as(
        "SELECT event_id, target, state, attempts, next_attempt_at, last_error FROM deliveries \
         WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR target = $2) \
         ORDER BY txid DESC, seq DESC, target LIMIT $3",
    )
    .bind(state.map(DeliveryState::as_str))
    .bind(target)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn for_event(pool: &PgPool, event_id: &str) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as(
        "SELECT event_id, target, state, attempts, next_attempt_at, last_error FROM deliveries \
         WHERE event_id = $1 ORDER BY target",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
}

/// An event as `events show` prints it.
#[derive(Debug, sqlx::FromRow)]
pub struct EventSummary {
    pub event_type: String,
    pub received_at: OffsetDateTime,
    /// As stored; `None` once dropped (retention or erasure).
    pub payload: Option<Vec<u8>>,
    /// The key the payload is sealed under; `None` when it is stored clear.
    pub payload_key_id: Option<String>,
    pub sha256: Vec<u8>,
}

pub async fn event_summary(pool: &PgPool, event_id: &str) -> sqlx::Result<Option<EventSummary>> {
    sqlx::query_as(
        "SELECT event_type, received_at, payload, payload_key_id, payload_sha256 AS sha256 \
         FROM events WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_optional(pool)
    .await
}

/// Which of `ids` are not recorded events.
pub async fn unknown_events(pool: &PgPool, ids: &[String]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT id FROM unnest($1::text[]) AS id \
         WHERE NOT EXISTS (SELECT 1 FROM events WHERE event_id = id) ORDER BY id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Makes deliveries due again with a fresh attempt count, and wakes the forwarders. Selects
/// the named events (re-sending them even when delivered: a new retry row) or every
/// delivery in a state; `target` narrows either. Each replay takes a new claim, so an
/// attempt still running from before can no longer record its outcome.
pub async fn replay(
    pool: &PgPool,
    ids: Option<&[String]>,
    state: Option<DeliveryState>,
    target: Option<&str>,
) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let replayed = sqlx::query(
        "INSERT INTO forward_retries AS r (target, event_id, state, attempts, next_attempt_at) \
         SELECT d.target, d.event_id, 'retrying', 0, now() FROM deliveries AS d \
         WHERE ($1::text[] IS NULL OR d.event_id = ANY($1)) \
           AND ($2::text IS NULL OR d.state = $2) AND ($3::text IS NULL OR d.target = $3) \
           AND EXISTS (SELECT 1 FROM events AS e WHERE e.event_id = d.event_id AND e.payload IS NOT NULL) \
         ON CONFLICT (target, event_id) DO UPDATE \
         SET state = 'retrying', attempts = 0, claim = r.claim + 1, next_attempt_at = now(), \
             last_error = NULL, updated_at = now()",
    )
    .bind(ids)
    .bind(state.map(DeliveryState::as_str))
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
