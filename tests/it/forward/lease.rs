//! Replicas that die holding work: a forwarder that dies holding a target's cursor lease is
//! replaced once the lease runs out, and its late report changes nothing; a worker that dies
//! holding a retry, then sees the event replayed, can no longer record its stale outcome.

use std::time::Duration;

use audian_receiver::config::{DatabaseSettings, ForwardSettings, SecretUrl};
use audian_receiver::forward::{Forwarder, Step};
use audian_receiver::sealing::PayloadKeys;
use audian_receiver::store::forwarding::{self, Failure, RetryOutcome};
use audian_receiver::store::operator;
use audian_receiver::store::{self};
use audian_receiver::telemetry::Metrics;
use sqlx::PgPool;

use super::{delivery, fast, http_target, post_ok, typed_event};
use crate::fixtures::{Sink, TestApp, eventually};

/// Far longer than the test: a lease cannot run out by itself while the test looks.
const LEASE: Duration = Duration::from_secs(3_600);
const DEAD_REPLICA: &str = "replica-that-died";

/// The app records events (and makes the target's cursor) but forwards nothing itself; the
/// test drives a real Forwarder on the same database one step at a time.
async fn recording_only(sink: &Sink) -> (TestApp, PgPool, std::sync::Arc<Forwarder>) {
    let targets = vec![http_target("http", &sink.url)];
    let mut forward = ForwardSettings::default();
    fast(&mut forward, targets.clone());
    // Retries wait for the test to make them due (`make_due`), never for the clock.
    forward.backoff_initial_ms = LEASE.as_millis() as u64;
    forward.backoff_max_ms = LEASE.as_millis() as u64;
    forward.lease_ms = 2 * LEASE.as_millis() as u64;
    let app = TestApp::spawn_with(|s| {
        fast(&mut s.forward, targets);
        s.forward.workers = 0;
    })
    .await;
    let pool = store::pool(&DatabaseSettings {
        url: SecretUrl::new(&app.db.url()),
        ..Default::default()
    })
    .unwrap();
    let forwarder = Forwarder::new(
        pool.clone(),
        &forward,
        None,
        PayloadKeys::none(),
        Metrics::new(),
    )
    .unwrap();
    (app, pool, forwarder)
}

#[tokio::test]
async fn a_replica_dying_with_a_targets_cursor_lease_is_replaced_once_the_lease_expires() {
    let sink = Sink::start().await;
    let (app, pool, forwarder) = recording_only(&sink).await;
    let held = forwarding::lease_cursor(&pool, "http", DEAD_REPLICA, LEASE)
        .await
        .unwrap()
        .expect("the cursor is free before anyone forwards");
    post_ok(&app, &typed_event("evt_lease", "job.completed")).await;
    readable(&pool, "evt_lease").await;

    assert_eq!(
        forwarder.step().await.unwrap(),
        Step::default(),
        "a leased cursor must not be read by another forwarder"
    );
    assert!(sink.received().is_empty());

    // Time passes for the dead replica: its lease runs out.
    expire_cursor_lease(&pool, "http").await;
    assert_eq!(
        forwarder.step().await.unwrap(),
        Step {
            claimed: 1,
            delivered: 1
        },
        "the live forwarder takes the cursor over once the lease expired"
    );
    let row = delivery(&app, "evt_lease", "http").await.unwrap();
    assert_eq!(
        (row.state.as_str(), row.attempts),
        ("delivered", 1),
        "{row:?}"
    );

    // The dead replica wakes up and reports a failure for its stale batch: refused.
    let late = [Failure {
        event_id: "evt_lease",
        attempts: 1,
        dead: true,
        retry_in: Duration::ZERO,
        error: "late report from a replica whose lease ran out",
    }];
    let kept = forwarding::advance(&pool, "http", DEAD_REPLICA, held.at, LEASE, &late)
        .await
        .unwrap();
    assert!(
        !kept,
        "a lost lease cannot move the cursor or record failures"
    );
    let row = delivery(&app, "evt_lease", "http").await.unwrap();
    assert_eq!((row.state.as_str(), row.last_error), ("delivered", None));
    assert_eq!(forwarder.step().await.unwrap(), Step::default());
    assert_eq!(
        sink.count("evt_lease"),
        1,
        "delivered once, by the live forwarder"
    );
    pool.close().await;
}

#[tokio::test]
async fn a_stale_retry_attempt_cannot_overwrite_a_replay_that_came_after_it() {
    let sink = Sink::failing_first(1).await;
    let (app, pool, forwarder) = recording_only(&sink).await;
    post_ok(&app, &typed_event("evt_stale", "job.completed")).await;
    readable(&pool, "evt_stale").await;
    assert_eq!(
        forwarder.step().await.unwrap(),
        Step {
            claimed: 1,
            delivered: 0
        },
        "the first attempt fails (500) and leaves a retry row"
    );
    make_due(&pool, "evt_stale").await;

    // A worker claims the retry and dies before reporting.
    let stale = forwarding::claim_retries(&pool, "http", 10, LEASE)
        .await
        .unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].attempts, 2);

    // The operator replays the event: a fresh attempt count, due now.
    let ids = ["evt_stale".to_owned()];
    assert_eq!(
        operator::replay(&pool, Some(&ids), None, None)
            .await
            .unwrap(),
        1
    );

    // The dead worker's late report would mark it dead: it holds an old claim, so no effect.
    let late = RetryOutcome::Dead {
        error: "late report from a worker whose lease ran out".to_owned(),
    };
    forwarding::complete_retries(&pool, "http", &[(&stale[0], late)])
        .await
        .unwrap();
    let row = delivery(&app, "evt_stale", "http").await.unwrap();
    assert_eq!(
        (row.state.as_str(), row.attempts),
        ("pending", 0),
        "{row:?}"
    );

    assert_eq!(
        forwarder.step().await.unwrap(),
        Step {
            claimed: 1,
            delivered: 1
        }
    );
    let row = delivery(&app, "evt_stale", "http").await.unwrap();
    assert_eq!(row.state, "delivered", "{row:?}");
    pool.close().await;
}

/// Waits until the event is below the watermark, where a forwarder can read it: every
/// transaction older than it has ended (other tests' transactions on the shared cluster can
/// hold the watermark back for a moment).
async fn readable(pool: &PgPool, event_id: &str) {
    eventually(format!("{event_id} to be below the watermark"), || async {
        let below: bool = sqlx::query_scalar(
            "SELECT txid < pg_snapshot_xmin(pg_current_snapshot()) FROM events WHERE event_id = $1",
        )
        .bind(event_id)
        .fetch_one(pool)
        .await
        .expect("reading the event's position");
        below.then_some(()).ok_or("not yet")
    })
    .await
}

/// Moves the cursor's lease into the past, as if its holder had been gone that long.
async fn expire_cursor_lease(pool: &PgPool, target: &str) {
    let moved = sqlx::query(
        "UPDATE forward_cursors SET lease_until = now() - interval '1 second' \
         WHERE target = $1 AND lease_owner = $2",
    )
    .bind(target)
    .bind(DEAD_REPLICA)
    .execute(pool)
    .await
    .expect("expiring the lease")
    .rows_affected();
    assert_eq!(moved, 1, "{target}'s cursor had a lease to expire");
}

/// Makes the event's retry due now instead of after its backoff.
async fn make_due(pool: &PgPool, event_id: &str) {
    let moved =
        sqlx::query("UPDATE forward_retries SET next_attempt_at = now() WHERE event_id = $1")
            .bind(event_id)
            .execute(pool)
            .await
            .expect("making the retry due")
            .rows_affected();
    assert_eq!(moved, 1, "{event_id} has a retry row");
}
