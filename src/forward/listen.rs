//! Wakes the forwarding loops when `events replay` (another process) notifies. On a lost
//! connection it reconnects; the loops poll meanwhile.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::forwarding::CHANNEL;

pub async fn listen(pool: PgPool, wake: watch::Sender<u64>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let listening = match PgListener::connect_with(&pool).await {
            Ok(mut listener) => listener.listen(CHANNEL).await.map(|()| listener),
            Err(error) => Err(error),
        };
        let mut listener = match listening {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "LISTEN failed; polling until it works");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        loop {
            tokio::select! {
                received = listener.recv() => match received {
                    Ok(_) => wake.send_modify(|n| *n += 1),
                    Err(_) => break,
                },
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
