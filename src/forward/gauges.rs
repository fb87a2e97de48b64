//! The forwarding gauges, refreshed by one task every few seconds (never per wake-up): how
//! much is pending, and how far a long-open transaction holds the watermark back — with a
//! log line naming that backend, since it stops every target until it ends.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::store::forwarding;
use crate::telemetry::Metrics;

const INTERVAL: Duration = Duration::from_secs(5);
/// A transaction open longer than this is named in the log.
const LAG_WARNING: Duration = Duration::from_secs(30);

pub async fn refresh(pool: PgPool, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        if let Ok(pending) = forwarding::count_pending(&pool).await {
            metrics.pending.set(pending);
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
            Err(error) => tracing::debug!(%error, "reading the watermark holder failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}
