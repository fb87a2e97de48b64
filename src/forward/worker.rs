//! The forwarding loop of each target: read the log after the target's cursor (holding its
//! lease, so one replica forwards a target at a time), send, then advance the cursor and
//! record failures as retry rows in one statement; and retry those rows when they are due.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::retry::{Next, RetryPolicy};
use super::send::{Outgoing, send_batch};
use super::targets::{DeliveryError, Target};
use crate::config::{ForwardSettings, TargetSettings};
use crate::sealing::PayloadKeys;
use crate::store::forwarding::{self, Cursor, Failure, RetryOutcome, StoredEvent};
use crate::telemetry::{DeliveryLabels, Metrics, TargetLabel};

/// How long a woken loop waits for more events before reading.
const GATHER: Duration = Duration::from_millis(10);

/// The fewest failed events, all of one batch, that park a target (see `Forwarder::park`).
const PARK_MIN_EVENTS: usize = 2;

/// A configured target, built, with its limits.
struct Route {
    settings: TargetSettings,
    target: Target,
    max_attempts: i32,
}

/// Everything the loops need; shared by all of them.
pub struct Forwarder {
    pool: PgPool,
    routes: Vec<Route>,
    policy: RetryPolicy,
    batch_size: i64,
    lease: Duration,
    poll_interval: Duration,
    signing_key: Option<SecretString>,
    /// Open sealed payloads just before they are sent.
    payload_keys: PayloadKeys,
    metrics: Arc<Metrics>,
    /// Names this process in cursor leases.
    owner: String,
}

/// What a forwarding loop does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// A batch was full: step again at once.
    More,
    /// Wait for new events (or the poll interval).
    Idle,
    /// The target is parked: step again after this long, whatever arrives meanwhile.
    Parked(Duration),
}

/// What a target's loop keeps from one step to the next, so that the happy path costs two
/// queries a batch (read the log, advance the cursor) instead of four. Empty for
/// [`Forwarder::step`], which asks the database for everything.
#[derive(Default)]
struct Memory {
    /// The cursor as this loop left it, and when its lease was last renewed; `None` when
    /// it must be leased again (at the start, after parking or an error).
    cursor: Option<(Cursor, Instant)>,
    /// When due retries were last looked for.
    retries_checked: Option<Instant>,
}

/// What one step did, so tests can drive forwarding one batch at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Step {
    /// Events attempted (from the log and from retry rows).
    pub claimed: usize,
    pub delivered: usize,
}

impl Forwarder {
    /// Builds every configured target; an invalid one is an error naming it.
    pub fn new(
        pool: PgPool,
        settings: &ForwardSettings,
        signing_key: Option<SecretString>,
        payload_keys: PayloadKeys,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, String> {
        let routes = settings
            .targets
            .iter()
            .map(|target| {
                let built = target.kind.build();
                let built = built.map_err(|e| format!("target `{}`: {e}", target.name))?;
                Ok(Route {
                    target: built,
                    max_attempts: target.max_attempts.unwrap_or(settings.max_attempts),
                    settings: target.clone(),
                })
            })
            .collect::<Result<Vec<Route>, String>>()?;
        for route in &routes {
            metrics.add_target(&route.settings.name);
        }
        Ok(Arc::new(Self {
            pool,
            routes,
            policy: RetryPolicy {
                initial: Duration::from_millis(settings.backoff_initial_ms),
                max: Duration::from_millis(settings.backoff_max_ms),
            },
            batch_size: settings.batch_size,
            lease: Duration::from_millis(settings.lease_ms),
            poll_interval: Duration::from_millis(settings.poll_interval_ms),
            signing_key,
            payload_keys,
            metrics,
            owner: format!("{:016x}", rand::random::<u64>()),
        }))
    }

    /// Makes each target's cursor if it has none (at the current end of the log) and
    /// records the event types it takes. Every replica does this at start, also one that
    /// does not forward, so a new target gets every event recorded from then on.
    pub async fn prepare(&self) -> Result<(), sqlx::Error> {
        for route in &self.routes {
            let pattern = route.settings.type_pattern();
            forwarding::ensure_cursor(&self.pool, &route.settings.name, &pattern).await?;
        }
        Ok(())
    }

    /// Starts one loop per target, the LISTEN task (for `events replay`) and the gauge
    /// task; all stop when `shutdown` fires, each loop after finishing the batch in hand.
    /// `wake` is bumped by intake after each commit with new events.
    pub fn spawn(
        self: &Arc<Self>,
        enabled: bool,
        wake: watch::Sender<u64>,
        shutdown: CancellationToken,
    ) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        if self.routes.is_empty() || !enabled {
            return tasks;
        }
        let woken = wake.subscribe();
        tasks.spawn(super::listen::listen(
            self.pool.clone(),
            wake,
            shutdown.clone(),
        ));
        let names = self.routes.iter().map(|r| r.settings.name.clone());
        tasks.spawn(super::gauges::refresh(
            self.pool.clone(),
            names.collect(),
            self.metrics.clone(),
            shutdown.clone(),
        ));
        for index in 0..self.routes.len() {
            let (forwarder, woken, shutdown) = (self.clone(), woken.clone(), shutdown.clone());
            tasks.spawn(async move { forwarder.run(index, woken, shutdown).await });
        }
        tasks
    }

    async fn run(
        &self,
        index: usize,
        mut woken: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) {
        let route = &self.routes[index];
        let mut memory = Memory::default();
        while !shutdown.is_cancelled() {
            match self.step_route(route, &mut memory).await {
                Ok((_, Flow::More)) => continue,
                Ok((_, Flow::Parked(wait))) => {
                    // New events do not wake a parked target: only its next probe does, or
                    // renewing its lease.
                    tokio::select! {
                        _ = tokio::time::sleep(wait.min(self.lease / 3)) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    memory = Memory::default();
                    self.metrics.db_errors.inc();
                    tracing::warn!(%error, target = %route.settings.name, "forwarding step failed; will retry")
                }
            }
            tokio::select! {
                _ = woken.changed() => tokio::time::sleep(GATHER).await,
                _ = tokio::time::sleep(self.poll_interval) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        let name = &route.settings.name;
        if let Err(error) = forwarding::release_cursor(&self.pool, name, &self.owner).await {
            tracing::warn!(%error, target = %name, "could not release the cursor lease; it expires by itself");
        }
    }

    /// One batch from the log and one batch of due retries, for every target.
    pub async fn step(&self) -> Result<Step, sqlx::Error> {
        let mut total = Step::default();
        for route in &self.routes {
            let (step, _) = self.step_route(route, &mut Memory::default()).await?;
            total.claimed += step.claimed;
            total.delivered += step.delivered;
        }
        Ok(total)
    }

    /// Returns what was done and what the loop should do next.
    async fn step_route(
        &self,
        route: &Route,
        memory: &mut Memory,
    ) -> Result<(Step, Flow), sqlx::Error> {
        let (read, flow) = self.forward_from_log(route, memory).await?;
        if let Flow::Parked(_) = flow {
            return Ok((read, flow)); // the target is down: its retries wait for it too
        }
        // Retries are due no sooner than the backoff's start; looking for them once per poll
        // interval (and again at once after a full batch of them) is soon enough.
        let looked = memory.retries_checked;
        if looked.is_some_and(|at| at.elapsed() < self.poll_interval) {
            return Ok((read, flow));
        }
        memory.retries_checked = Some(Instant::now());
        let (retried, retries_full) = self.retry_due(route).await?;
        if retries_full {
            memory.retries_checked = None;
        }
        let step = Step {
            claimed: read.claimed + retried.claimed,
            delivered: read.delivered + retried.delivered,
        };
        let more = matches!(flow, Flow::More) || retries_full;
        Ok((step, if more { Flow::More } else { Flow::Idle }))
    }

    /// The happy path: nothing is written per event, only the cursor per batch. A batch
    /// whose every event fails (retryably) parks the target instead: see [`Self::park`].
    async fn forward_from_log(
        &self,
        route: &Route,
        memory: &mut Memory,
    ) -> Result<(Step, Flow), sqlx::Error> {
        let name = &route.settings.name;
        let (cursor, renewed) = match memory.cursor.take() {
            // Renewed so recently that the lease outlives this batch's sends (each ends
            // within 0.8 × the lease): no need to ask the database again.
            Some((cursor, renewed)) if renewed.elapsed() < self.lease / 10 => (cursor, renewed),
            _ => {
                let renewing = Instant::now();
                let leased =
                    forwarding::lease_cursor(&self.pool, name, &self.owner, self.lease).await?;
                let Some(cursor) = leased else {
                    return Ok((Step::default(), Flow::Idle)); // another replica forwards it
                };
                (cursor, renewing)
            }
        };
        let held = cursor.park;
        self.show_parked(name, held.is_some());
        if let Some(park) = held.filter(|park| !park.wait.is_zero()) {
            return Ok((Step::default(), Flow::Parked(park.wait)));
        }
        let until = held.map(|park| park.to);
        let events = forwarding::read_after(&self.pool, cursor.at, until, self.batch_size).await?;
        let Some(last) = events.last() else {
            if held.is_some() {
                // The held batch is gone (nothing left to send in it): unpark.
                let (at, lease) = (cursor.at, self.lease);
                forwarding::advance(&self.pool, name, &self.owner, at, lease, &[]).await?;
            } else {
                memory.cursor = Some((cursor, renewed));
            }
            return Ok((Step::default(), Flow::Idle));
        };
        let to = last.position();
        let wanted: Vec<_> = events
            .iter()
            .map(|e| &e.event)
            .filter(|e| e.payload.is_some() && route.settings.accepts(&e.event_type))
            .collect();
        let attempts = held.map_or(0, |park| park.attempts) + 1;
        let tries: Vec<_> = wanted.iter().map(|event| (*event, attempts)).collect();
        let results = self.send(route, &tries).await;
        if let Some(wait) = self.park(route, &results, attempts) {
            let error = results.iter().find_map(|r| r.as_ref().err());
            let error = error.map_or("", |e| e.message.as_str());
            if !forwarding::park(&self.pool, name, &self.owner, to, attempts, wait, error).await? {
                tracing::warn!(target = %name, "lost the cursor's lease while parking; its new holder tries the batch again");
            } else if held.is_none() {
                tracing::warn!(target = %name, %error, events = wanted.len(), "every delivery of a batch failed: the target looks down; its cursor holds and the batch is tried again with backoff");
                self.show_parked(name, true);
            }
            self.count(name, "retry", wanted.len());
            let step = Step {
                claimed: wanted.len(),
                delivered: 0,
            };
            return Ok((step, Flow::Parked(wait)));
        }
        let failed: Vec<_> = wanted
            .iter()
            .zip(&results)
            .filter_map(|(event, result)| {
                let error = result.as_ref().err()?;
                Some((event.event_id.as_str(), self.next(route, attempts, error)))
            })
            .collect();
        let failures: Vec<_> = failed
            .iter()
            .map(|(event_id, (next, error))| Failure {
                event_id,
                attempts,
                dead: *next == Next::Dead,
                retry_in: match next {
                    Next::RetryIn(after) => *after,
                    Next::Dead => Duration::ZERO,
                },
                error,
            })
            .collect();
        let renewing = Instant::now();
        if !forwarding::advance(&self.pool, name, &self.owner, to, self.lease, &failures).await? {
            tracing::warn!(target = %name, "lost the cursor's lease during a batch; its new holder sends the batch again");
        } else {
            memory.cursor = Some((Cursor { at: to, park: None }, renewing));
            if held.is_some() {
                tracing::info!(target = %name, attempts, delivered = wanted.len() - failed.len(), "the parked target took its held batch; its cursor moves on");
                self.show_parked(name, false);
            }
        }
        let step = Step {
            claimed: wanted.len(),
            delivered: wanted.len() - failed.len(),
        };
        let flow = if events.len() as i64 == self.batch_size {
            Flow::More
        } else {
            Flow::Idle
        };
        Ok((step, flow))
    }

    /// Whether a batch's `attempts`th try parks the target, and until when: when every
    /// event failed, each retryably, there were at least [`PARK_MIN_EVENTS`] of them, and
    /// attempts remain. A target that fails a whole batch is down, not choosy, so rather
    /// than move its cursor past the batch with a retry row per event (and so per event
    /// that arrives while it is down), its cursor holds and the whole batch is tried again
    /// after the policy's backoff (`Retry-After` is a floor). Once a try reaches
    /// `max_attempts`, the batch's events go dead as usual and the cursor moves on. One
    /// failed event alone says little about the target: it gets a retry row, so a single
    /// event the target keeps refusing never holds back the ones after it.
    fn park(
        &self,
        route: &Route,
        results: &[Result<(), DeliveryError>],
        attempts: i32,
    ) -> Option<Duration> {
        let mut retry_after = None;
        for result in results {
            match result {
                Err(error) if error.retryable => retry_after = retry_after.max(error.retry_after),
                _ => return None,
            }
        }
        if results.len() < PARK_MIN_EVENTS {
            return None;
        }
        match self
            .policy
            .next(attempts, route.max_attempts, true, retry_after)
        {
            Next::RetryIn(wait) => Some(wait),
            Next::Dead => None,
        }
    }

    async fn retry_due(&self, route: &Route) -> Result<(Step, bool), sqlx::Error> {
        let name = &route.settings.name;
        let claimed =
            forwarding::claim_retries(&self.pool, name, self.batch_size, self.lease).await?;
        if claimed.is_empty() {
            return Ok((Step::default(), false));
        }
        let events: Vec<_> = claimed.iter().map(|c| (&c.event, c.attempts)).collect();
        let results = self.send(route, &events).await;
        let outcomes: Vec<_> = claimed
            .iter()
            .zip(results)
            .map(|(c, result)| {
                let outcome = match result {
                    Ok(()) => RetryOutcome::Delivered,
                    Err(e) => match self.next(route, c.attempts, &e) {
                        (Next::RetryIn(after), error) => RetryOutcome::Retry { after, error },
                        (Next::Dead, error) => RetryOutcome::Dead { error },
                    },
                };
                (c, outcome)
            })
            .collect();
        forwarding::complete_retries(&self.pool, name, &outcomes).await?;
        let delivered = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, RetryOutcome::Delivered))
            .count();
        let step = Step {
            claimed: claimed.len(),
            delivered,
        };
        Ok((step, claimed.len() as i64 == self.batch_size))
    }

    /// Sends a batch; every attempt ends well inside the lease, so no other forwarder takes
    /// over what is still being sent. Each delivery's time since receipt is observed.
    /// `events` are paired with which attempt at the target each is.
    async fn send(
        &self,
        route: &Route,
        events: &[(&StoredEvent, i32)],
    ) -> Vec<Result<(), DeliveryError>> {
        let deadline = Instant::now() + self.lease.mul_f64(0.8);
        let received: Vec<_> = events.iter().map(|(e, _)| e.received_at).collect();
        let outgoing = events
            .iter()
            .map(|(e, attempt)| Outgoing::open(e, *attempt, &self.payload_keys));
        let results = send_batch(
            &route.target,
            &route.settings.name,
            outgoing.collect(),
            // Brokers pipeline a whole batch; an HTTP target bounds itself (max_in_flight).
            self.batch_size.max(1) as usize,
            deadline,
            self.signing_key.as_ref(),
        )
        .await;
        let name = &route.settings.name;
        let latency = self
            .metrics
            .delivery_latency
            .get_or_create_owned(&TargetLabel::new(name));
        let mut delivered = 0;
        for (received_at, result) in received.iter().zip(&results) {
            if let Ok(acknowledged_at) = result {
                delivered += 1;
                // received_at is the database's clock; never a negative age.
                let age = (*acknowledged_at - *received_at).as_seconds_f64();
                latency.observe(age.max(0.0));
            }
        }
        self.count(name, "delivered", delivered);
        results
            .into_iter()
            .map(|result| result.map(|_| ()))
            .collect()
    }

    /// After a failed attempt (`attempts` counts it): retry when, or dead; and the error.
    fn next(&self, route: &Route, attempts: i32, error: &DeliveryError) -> (Next, String) {
        let next = self.policy.next(
            attempts,
            route.max_attempts,
            error.retryable,
            error.retry_after,
        );
        let outcome = match next {
            Next::RetryIn(_) => "retry",
            Next::Dead => {
                tracing::error!(target = %route.settings.name, error = %error.message, "delivery is dead: no more attempts (replay with `events replay`)");
                "dead"
            }
        };
        self.count(&route.settings.name, outcome, 1);
        (next, error.message.clone())
    }

    /// `forward_parked{target}`: 1 while the target is parked.
    fn show_parked(&self, target: &str, parked: bool) {
        let gauge = self.metrics.parked.get_or_create(&TargetLabel::new(target));
        gauge.set(i64::from(parked));
    }

    fn count(&self, target: &str, outcome: &'static str, n: usize) {
        if n == 0 {
            return;
        }
        let labels = DeliveryLabels {
            target: target.to_owned(),
            outcome,
        };
        self.metrics
            .deliveries
            .get_or_create(&labels)
            .inc_by(n as u64);
    }
}
