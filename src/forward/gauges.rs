//! The forwarding gauges, refreshed by one task every few seconds (never per wake-up): per
//! target, how much is pending, how old the oldest of it is and how much is dead (one query
//! for all targets); and how far a long-open transaction holds the watermark back — with a
//! log line naming that backend, since it stops every target until it ends.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::store::forwarding;
use crate::telemetry::{Metrics, TargetLabel};

/// How often the gauges are read, and so how stale they may be. The backlog query counts
/// what is behind each cursor, so not much more often than this.
const INTERVAL: Duration = Duration::from_secs(5);
/// A transaction open longer than this is named in the log.
const LAG_WARNING: Duration = Duration::from_secs(30);

/// Refreshes the gauges of the configured `targets` until `shutdown` fires.
pub async fn refresh(
    pool: PgPool,
    targets: Vec<String>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        match forwarding::backlog(&pool, &targets).await {
            Ok(backlogs) => {
                for backlog in backlogs {
                    let label = TargetLabel::new(&backlog.target);
                    metrics.pending.get_or_create(&label).set(backlog.pending);
                    metrics
                        .oldest_pending
                        .get_or_create(&label)
                        .set(backlog.oldest_pending_seconds);
                    metrics.dead.get_or_create(&label).set(backlog.dead);
                }
            }
            Err(error) => {
                metrics.db_errors.inc();
                tracing::debug!(%error, "reading the forwarding backlog failed");
            }
        }
        match forwarding::watermark_holder(&pool).await {
            Ok(Some(holder)) => {
                metrics.watermark_lag.set(holder.age_seconds);
                if holder.age_seconds >= LAG_WARNING.as_secs_f64() {
                    tracing::warn!(
                        pid = holder.pid,
                        age_s = holder.age_seconds as u64,
                        database = holder.database.as_deref().unwrap_or("?"),
                        application = holder.application_name.as_deref().unwrap_or("?"),
                        state = holder.state.as_deref().unwrap_or("?"),
                        "a long-open transaction holds forwarding back until it ends; \
                         consider idle_in_transaction_session_timeout on the server"
                    );
                }
            }
            Ok(None) => {
                metrics.watermark_lag.set(0.0);
            }
            Err(error) => {
                metrics.db_errors.inc();
                tracing::debug!(%error, "reading the watermark holder failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}
