//! The paged reads behind the operator's console: a target's failures, event search, one
//! event's facts, each target's counts. Every page is a keyset (never `OFFSET`), and every
//! query is one statement outside any transaction, so no page holds a lock across a request.
//! Replay and forget stay in `operator` and `retention`, shared with the CLI.

use sqlx::PgPool;
use time::OffsetDateTime;

/// A retrying or dead delivery of one target, as its page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Failure {
    pub event_id: String,
    pub event_type: String,
    /// `retrying` or `dead`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub updated_at: OffsetDateTime,
}

/// Where a page of newest-first rows ended: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub at: OffsetDateTime,
    pub id: String,
}

/// A target's retrying and dead deliveries, the most recently failed first; `state` narrows
/// to one of the two.
pub async fn failures(
    pool: &PgPool,
    target: &str,
    state: Option<&str>,
    after: Option<&After>,
    limit: i64,
) -> sqlx::Result<Vec<Failure>> {
    sqlx::query_as(
        "SELECT r.event_id, e.event_type, r.state, r.attempts, r.next_attempt_at, r.last_error, \
                r.updated_at \
         FROM forward_retries AS r JOIN events AS e USING (event_id) \
         WHERE r.target = $1 AND ($2::text IS NULL OR r.state = $2) \
           AND ($3::timestamptz IS NULL OR (r.updated_at, r.event_id) < ($3, $4)) \
         ORDER BY r.updated_at DESC, r.event_id DESC LIMIT $5",
    )
    .bind(target)
    .bind(state)
    .bind(after.map(|a| a.at))
    .bind(after.map(|a| a.id.as_str()))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Per target: retry rows waiting, dead ones, and the latest failure's error.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct TargetCounts {
    pub target: String,
    pub retrying: i64,
    pub dead: i64,
    pub last_error: Option<String>,
    pub last_failed_at: Option<OffsetDateTime>,
    pub parked_until: Option<OffsetDateTime>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<OffsetDateTime>,
}

/// Counts for every target with a cursor: one pass over the retry rows for both counts,
/// and the newest failure's error along the (target, updated_at) index.
pub async fn target_counts(pool: &PgPool) -> sqlx::Result<Vec<TargetCounts>> {
    sqlx::query_as(
        "WITH counts AS ( \
             SELECT target, count(*) FILTER (WHERE state = 'retrying') AS retrying, \
                    count(*) FILTER (WHERE state = 'dead') AS dead \
             FROM forward_retries GROUP BY target) \
         SELECT c.target, coalesce(n.retrying, 0) AS retrying, coalesce(n.dead, 0) AS dead, \
                coalesce(c.parked_error, l.last_error) AS last_error, l.updated_at AS last_failed_at, \
                c.parked_until, c.lease_owner, c.lease_until \
         FROM forward_cursors AS c \
         LEFT JOIN counts AS n USING (target) \
         LEFT JOIN LATERAL (SELECT r.last_error, r.updated_at FROM forward_retries r \
                            WHERE r.target = c.target AND r.last_error IS NOT NULL \
                            ORDER BY r.updated_at DESC LIMIT 1) AS l ON true \
         ORDER BY c.target",
    )
    .fetch_all(pool)
    .await
}

/// An event as the search lists it, with its place in the log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Found {
    pub event_id: String,
    pub event_type: String,
    pub received_at: OffsetDateTime,
    pub txid: i64,
    pub seq: i64,
}

/// What the search asks for: an exact id, a type pattern (SQL `LIKE`, already escaped) and
/// a time range.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub id: Option<String>,
    pub type_like: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// Events matching `search`, newest first in log order, after the log position `after`:
/// along the `(txid, seq)` index every event already has, so no index is added to intake's
/// hot table for the console. (The ORDER BY names the table's columns: the bigint aliases
/// of the same names would sort the whole table.) A time range far in the past is found by
/// walking back along the log.
pub async fn search(
    pool: &PgPool,
    search: &Search,
    after: Option<(i64, i64)>,
    limit: i64,
) -> sqlx::Result<Vec<Found>> {
    sqlx::query_as(
        "SELECT event_id, event_type, received_at, txid::text::bigint AS txid, seq FROM events \
         WHERE ($1::text IS NULL OR event_id = $1) \
           AND ($2::text IS NULL OR event_type LIKE $2) \
           AND ($3::timestamptz IS NULL OR received_at >= $3) \
           AND ($4::timestamptz IS NULL OR received_at < $4) \
           AND ($5::bigint IS NULL OR (txid, seq) < ($5::text::xid8, $6)) \
         ORDER BY events.txid DESC, events.seq DESC LIMIT $7",
    )
    .bind(search.id.as_deref())
    .bind(search.type_like.as_deref())
    .bind(search.from)
    .bind(search.to)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Each (event, target, state) for the events given: the search's per-target column.
pub async fn states(pool: &PgPool, ids: &[String]) -> sqlx::Result<Vec<(String, String, String)>> {
    sqlx::query_as("SELECT event_id, target, state FROM deliveries WHERE event_id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await
}

/// What the event page shows of the event itself, besides `operator::event_summary`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Arrival {
    pub source_ip: Option<String>,
    /// Bytes stored; `None` once the payload is dropped.
    pub size: Option<i32>,
}

pub async fn arrival(pool: &PgPool, event_id: &str) -> sqlx::Result<Option<Arrival>> {
    sqlx::query_as(
        "SELECT host(source_ip) AS source_ip, octet_length(payload) AS size \
         FROM events WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_optional(pool)
    .await
}
