//! `keys rotate`: re-seals every stored payload that is clear or sealed under a key other than
//! the first, under the first. Small batches, each one short transaction that skips rows
//! another transaction holds, so it runs beside serving receivers; a row it cannot open is
//! left as it is and reported.

use std::collections::BTreeMap;

use sqlx::PgPool;

use crate::sealing::{OpenError, PayloadKeys, SealError};

/// Rows per transaction: each holds its rows' locks only for as long as one batch takes.
const BATCH: i64 = 500;

/// Walks over the table at most this often: rows skipped because another transaction held
/// them (or written meanwhile under an older key) are picked up by the next walk.
const WALKS: usize = 3;

/// What a rotation did and what it left.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Payloads now sealed under the first key that were not before.
    pub resealed: u64,
    /// Rows sealed under a key that is not configured, counted per key id.
    pub unknown_keys: BTreeMap<String, u64>,
    /// Rows sealed under a configured key that did not open (event id → key id).
    pub refused: BTreeMap<String, String>,
    /// Rows still clear or under another configured key after the last walk: held by
    /// another transaction throughout, or written meanwhile by a receiver with another
    /// first key.
    pub remaining: u64,
}

impl Rotation {
    /// Rows that could not be opened, for whatever reason.
    pub fn unopened(&self) -> u64 {
        self.unknown_keys.values().sum::<u64>() + self.refused.len() as u64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("no payload key is configured to seal under")]
    NoKey,
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// Re-seals under the first of `keys` everything it can open.
pub async fn rotate(pool: &PgPool, keys: &PayloadKeys) -> Result<Rotation, RotateError> {
    let first = keys.sealing_key_id().ok_or(RotateError::NoKey)?;
    let others: Vec<&str> = keys.ids().filter(|id| *id != first).collect();
    let mut rotation = Rotation::default();
    for _ in 0..WALKS {
        let mut after = String::new(); // below every id: ids have 1 to 255 characters
        while let Some(last) = reseal_batch(pool, keys, &others, &after, &mut rotation).await? {
            after = last;
        }
        rotation.remaining = remaining(pool, &others, &rotation.refused).await?;
        if rotation.remaining == 0 {
            break;
        }
    }
    rotation.unknown_keys = unknown_keys(pool, keys).await?;
    Ok(rotation)
}

/// One row as the batch reads it.
#[derive(sqlx::FromRow)]
struct Row {
    event_id: String,
    payload: Vec<u8>,
    payload_key_id: Option<String>,
}

/// Re-seals one batch after `after` (in event id order) in one transaction; returns the last
/// id it looked at, or `None` when the batch was the last.
async fn reseal_batch(
    pool: &PgPool,
    keys: &PayloadKeys,
    others: &[&str],
    after: &str,
    rotation: &mut Rotation,
) -> Result<Option<String>, RotateError> {
    let mut tx = pool.begin().await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT event_id, payload, payload_key_id FROM events \
         WHERE event_id > $1 AND payload IS NOT NULL \
           AND (payload_key_id IS NULL OR payload_key_id = ANY($2)) \
         ORDER BY event_id LIMIT $3 \
         FOR UPDATE SKIP LOCKED",
    )
    .bind(after)
    .bind(others)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut payloads = Vec::with_capacity(rows.len());
    for row in &rows {
        let key_id = row.payload_key_id.as_deref();
        match keys.open(&row.event_id, key_id, &row.payload) {
            Ok(plaintext) => {
                let sealed = keys.seal(&row.event_id, &plaintext)?;
                ids.push(row.event_id.as_str());
                payloads.push(sealed.ok_or(RotateError::NoKey)?.bytes);
            }
            Err(error) => refuse(rotation, &row.event_id, &error),
        }
    }
    sqlx::query(
        "UPDATE events AS e SET payload = u.payload, payload_key_id = $1 \
         FROM unnest($2::text[], $3::bytea[]) AS u(event_id, payload) \
         WHERE e.event_id = u.event_id",
    )
    .bind(keys.sealing_key_id())
    .bind(&ids)
    .bind(&payloads)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    rotation.resealed += ids.len() as u64;
    let full = rows.len() as i64 == BATCH;
    Ok(rows.into_iter().last().filter(|_| full).map(|r| r.event_id))
}

fn refuse(rotation: &mut Rotation, event_id: &str, error: &OpenError) {
    tracing::error!(event_id, key_id = error.key_id(), %error, "stored payload cannot be opened; left as it is");
    rotation
        .refused
        .insert(event_id.to_owned(), error.key_id().to_owned());
}

/// Rows still to re-seal, other than those that did not open.
async fn remaining(
    pool: &PgPool,
    others: &[&str],
    refused: &BTreeMap<String, String>,
) -> sqlx::Result<u64> {
    let refused: Vec<&str> = refused.keys().map(String::as_str).collect();
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events \
         WHERE payload IS NOT NULL AND (payload_key_id IS NULL OR payload_key_id = ANY($1)) \
           AND event_id <> ALL($2)",
    )
    .bind(others)
    .bind(refused)
    .fetch_one(pool)
    .await?;
    Ok(count as u64)
}

/// Rows sealed under a key id that `keys` does not hold, per id.
async fn unknown_keys(pool: &PgPool, keys: &PayloadKeys) -> sqlx::Result<BTreeMap<String, u64>> {
    let known: Vec<&str> = keys.ids().collect();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT payload_key_id, count(*) FROM events \
         WHERE payload IS NOT NULL AND payload_key_id <> ALL($1) \
         GROUP BY payload_key_id ORDER BY payload_key_id",
    )
    .bind(known)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id, n)| (id, n as u64)).collect())
}
