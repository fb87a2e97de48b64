//! The worker loop: claim a batch of due deliveries, send them concurrently, record every
//! outcome in one statement. Woken by LISTEN/NOTIFY, with polling as the fallback.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::retry::{Next, RetryPolicy};
use super::targets::{Message, Target};
use crate::config::ForwardSettings;
use crate::intake::signature::sign;
use crate::store::deliveries::{self, Claimed, Outcome};
use crate::telemetry::{DeliveryLabels, Metrics};

/// How long a woken worker waits for more deliveries before claiming.
const GATHER: Duration = Duration::from_millis(10);

/// A configured target with its own attempt limit.
struct Route {
    target: Target,
    max_attempts: i32,
}

/// Everything a worker needs; shared by all workers of the process.
pub struct Forwarder {
    pool: PgPool,
    routes: HashMap<String, Route>,
    names: Vec<String>,
    policy: RetryPolicy,
    batch_size: i64,
    lease: Duration,
    poll_interval: Duration,
    signing_key: Option<SecretString>,
    metrics: Arc<Metrics>,
}

/// What one step did, so tests can drive the worker one batch at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Step {
    pub claimed: usize,
    pub delivered: usize,
}

impl Forwarder {
    /// Builds every configured target; an invalid one is an error naming it.
    pub fn new(
        pool: PgPool,
        settings: &ForwardSettings,
        signing_key: Option<SecretString>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, String> {
        let mut routes = HashMap::new();
        for target in &settings.targets {
            let route = Route {
                target: super::build_target(target)?,
                max_attempts: target.max_attempts.unwrap_or(settings.max_attempts),
            };
            routes.insert(target.name.clone(), route);
        }
        Ok(Arc::new(Self {
            pool,
            names: routes.keys().cloned().collect(),
            routes,
            policy: RetryPolicy {
                initial: Duration::from_millis(settings.backoff_initial_ms),
                max: Duration::from_millis(settings.backoff_max_ms),
            },
            batch_size: settings.batch_size,
            lease: Duration::from_millis(settings.lease_ms),
            poll_interval: Duration::from_millis(settings.poll_interval_ms),
            signing_key,
            metrics,
        }))
    }

    /// Starts `workers` loops per target and the LISTEN task; all stop when `shutdown`
    /// fires, each after finishing the batch in hand. Each target has loops of its own, so
    /// a target that hangs until its timeout holds back only its own deliveries.
    pub fn spawn(self: &Arc<Self>, workers: usize, shutdown: CancellationToken) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        if self.routes.is_empty() || workers == 0 {
            return tasks;
        }
        let (wake, woken) = watch::channel(0u64);
        tasks.spawn(listen(self.pool.clone(), wake, shutdown.clone()));
        for name in &self.names {
            for _ in 0..workers {
                let (forwarder, woken, shutdown) = (self.clone(), woken.clone(), shutdown.clone());
                let only = vec![name.clone()];
                tasks.spawn(async move { forwarder.run(&only, woken, shutdown).await });
            }
        }
        tasks
    }

    async fn run(
        &self,
        targets: &[String],
        mut woken: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) {
        while !shutdown.is_cancelled() {
            match self.step_for(targets).await {
                Ok(step) if step.claimed as i64 == self.batch_size => continue,
                Ok(_) => self.refresh_pending_gauge().await,
                Err(error) => tracing::warn!(%error, "claiming deliveries failed; will retry"),
            }
            tokio::select! {
                _ = woken.changed() => {
                    // Every intake commit notifies; a short pause lets a few commits' worth
                    // of deliveries gather, so a claim moves a batch rather than one row.
                    tokio::time::sleep(GATHER).await;
                }
                _ = tokio::time::sleep(self.poll_interval) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    /// Claims one batch for any target, delivers it, records the outcomes.
    pub async fn step(&self) -> Result<Step, sqlx::Error> {
        self.step_for(&self.names).await
    }

    async fn step_for(&self, targets: &[String]) -> Result<Step, sqlx::Error> {
        let claimed = deliveries::claim(&self.pool, self.batch_size, targets, self.lease).await?;
        if claimed.is_empty() {
            return Ok(Step::default());
        }
        // Every attempt ends well inside the lease, so no other worker re-claims a row that
        // is still being sent (the lease is also checked against target timeouts at start).
        let deadline = tokio::time::Instant::now() + self.lease.mul_f64(0.8);
        let sends = claimed.iter().map(|c| async move {
            match tokio::time::timeout_at(deadline, self.attempt(c)).await {
                Ok(outcome) => outcome,
                Err(_) => self.failed(c, true, None, "not acknowledged within the lease".into()),
            }
        });
        let outcomes = futures_util::future::join_all(sends).await;
        let delivered = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Delivered))
            .count();
        let pairs: Vec<(&Claimed, Outcome)> = claimed.iter().zip(outcomes).collect();
        deliveries::complete(&self.pool, &pairs).await?;
        Ok(Step {
            claimed: claimed.len(),
            delivered,
        })
    }

    #[tracing::instrument(skip_all, fields(event_id = %claimed.event_id, target = %claimed.target))]
    async fn attempt(&self, claimed: &Claimed) -> Outcome {
        let route = &self.routes[&claimed.target];
        let payload = claimed.payload_bytes();
        let signature = self
            .signing_key
            .as_ref()
            .map(|key| sign(key.expose_secret().as_bytes(), &payload));
        let message = Message {
            event_id: &claimed.event_id,
            event_type: &claimed.event_type,
            received_at: claimed.received_at,
            payload: &payload,
            signature: signature.as_deref(),
        };
        match route.target.deliver(&message).await {
            Ok(()) => {
                self.count(&claimed.target, &Outcome::Delivered);
                Outcome::Delivered
            }
            Err(e) => self.failed(claimed, e.retryable, e.retry_after, e.message),
        }
    }

    /// A failed attempt: retry later, or dead when attempts are used up or it cannot succeed.
    fn failed(
        &self,
        claimed: &Claimed,
        retryable: bool,
        retry_after: Option<Duration>,
        error: String,
    ) -> Outcome {
        let max_attempts = self.routes[&claimed.target].max_attempts;
        let outcome = match self
            .policy
            .next(claimed.attempts, max_attempts, retryable, retry_after)
        {
            Next::RetryIn(after) => Outcome::Retry { after, error },
            Next::Dead => Outcome::Dead { error },
        };
        self.count(&claimed.target, &outcome);
        outcome
    }

    fn count(&self, target: &str, outcome: &Outcome) {
        let outcome = match outcome {
            Outcome::Delivered => "delivered",
            Outcome::Retry { .. } => "retry",
            Outcome::Dead { .. } => {
                tracing::error!("delivery is dead: no more attempts (replay with `events replay`)");
                "dead"
            }
        };
        let labels = DeliveryLabels {
            target: target.to_owned(),
            outcome,
        };
        self.metrics.deliveries.get_or_create(&labels).inc();
    }

    async fn refresh_pending_gauge(&self) {
        if let Ok(pending) = deliveries::count_pending(&self.pool).await {
            self.metrics.pending.set(pending);
        }
    }
}

/// Turns notifications into wake-ups. On a lost connection PgListener reconnects; workers
/// poll meanwhile.
async fn listen(pool: PgPool, wake: watch::Sender<u64>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "LISTEN connection failed; polling until it is back");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        if let Err(error) = listener.listen(deliveries::CHANNEL).await {
            tracing::debug!(%error, "LISTEN failed; polling until it works");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = shutdown.cancelled() => return,
            }
        }
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
