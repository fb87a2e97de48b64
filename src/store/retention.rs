//! Retention and erasure: drop the payloads of events every target has passed once they
//! are old enough, remove rows older than the dedup window, and forget chosen events. An
//! event still waiting for a target (ahead of a cursor, or with a retry row) is never touched
//! by retention.

use sqlx::PgPool;

/// Rows changed per statement: short transactions that never hold intake back for long.
const BATCH: i64 = 1_000;

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub payloads: u64,
    pub rows: u64,
}

/// One sweep now, in batches until nothing is left to do.
pub async fn sweep(pool: &PgPool, payload_days: u32, dedup_days: u32) -> sqlx::Result<Purged> {
    let mut purged = Purged::default();
    loop {
        let n = drop_payloads(pool, payload_days).await?;
        purged.payloads += n;
        if n < BATCH as u64 {
            break;
        }
    }
    loop {
        let n = delete_rows(pool, dedup_days).await?;
        purged.rows += n;
        if n < BATCH as u64 {
            break;
        }
    }
    Ok(purged)
}

/// An event is passed by every target when it is behind every cursor (all of them: also a
/// target no longer configured, whose cursor still stands) and has no retry row.
async fn drop_payloads(pool: &PgPool, days: u32) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "WITH victims AS ( \
             SELECT e.event_id FROM events AS e \
             WHERE e.payload IS NOT NULL \
               AND e.received_at < now() - make_interval(days => $1) \
               AND (e.txid, e.seq) <= ALL (SELECT txid, seq FROM forward_cursors) \
               AND NOT EXISTS (SELECT 1 FROM forward_retries AS r WHERE r.event_id = e.event_id) \
             ORDER BY e.received_at \
             LIMIT $2 \
             FOR UPDATE SKIP LOCKED \
         ) \
         UPDATE events SET payload = NULL, payload_key_id = NULL \
         FROM victims WHERE events.event_id = victims.event_id",
    )
    .bind(days as i32)
    .bind(BATCH)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Rows go oldest first along the log: the head of the log is read, and the old enough rows
/// of it removed. Log order follows time closely, so once the head is younger than the
/// window there is nothing more to do (and no full scan looks for it).
async fn delete_rows(pool: &PgPool, days: u32) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "WITH head AS ( \
             SELECT e.event_id, e.received_at FROM events AS e \
             WHERE (e.txid, e.seq) <= ALL (SELECT txid, seq FROM forward_cursors) \
               AND NOT EXISTS (SELECT 1 FROM forward_retries AS r WHERE r.event_id = e.event_id) \
             ORDER BY e.txid, e.seq \
             LIMIT $2 \
         ) \
         DELETE FROM events USING head \
         WHERE events.event_id = head.event_id \
           AND head.received_at < now() - make_interval(days => $1)",
    )
    .bind(days as i32)
    .bind(BATCH)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Erasure of the given events (all must exist; the caller checks): their payloads are
/// dropped and any forwarding still due for them is cancelled, in one transaction. The ids
/// stay, so Audian's retries remain duplicates. Returns the ids that still had a payload.
pub async fn forget(pool: &PgPool, ids: &[String]) -> sqlx::Result<Vec<String>> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM forward_retries WHERE event_id = ANY($1)")
        .bind(ids)
        .execute(&mut *tx)
        .await?;
    let dropped = sqlx::query_scalar(
        "UPDATE events SET payload = NULL, payload_key_id = NULL \
         WHERE event_id = ANY($1) AND payload IS NOT NULL \
         RETURNING event_id",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(dropped)
}
