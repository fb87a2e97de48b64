//! A worker that dies holding a claimed delivery: no one takes the row while its lease
//! holds; once the lease has run out a real Forwarder delivers it, once; the dead worker's
//! late report changes nothing.

use std::time::Duration;

use audian_receiver::config::{DatabaseSettings, ForwardSettings, SecretUrl};
use audian_receiver::forward::{Forwarder, Step};
use audian_receiver::store::{self, deliveries};
use audian_receiver::telemetry::Metrics;
use sqlx::PgPool;

use super::{delivery, fast, http_target, post_ok, typed_event};
use crate::fixtures::{Sink, TestApp};

/// Far longer than the test: the claim cannot run out by itself while the test looks.
const LEASE: Duration = Duration::from_secs(3_600);

#[tokio::test]
async fn a_worker_dying_mid_delivery_leads_to_one_redelivery_after_its_lease_expires() {
    let sink = Sink::start().await;
    let targets = vec![http_target("http", &sink.url)];
    let mut forward = ForwardSettings::default();
    fast(&mut forward, targets.clone());
    // Intake records the deliveries; no worker in the app sends them.
    let app = TestApp::spawn_with(|s| {
        fast(&mut s.forward, targets);
        s.forward.workers = 0;
    })
    .await;
    post_ok(&app, &typed_event("evt_lease", "job.completed")).await;
    let pool = store::pool(&DatabaseSettings {
        url: SecretUrl::new(&app.db.url()),
        ..Default::default()
    })
    .unwrap();

    // The worker that will die: claims, and never sends or completes.
    let names = ["http".to_owned()];
    let crashed = deliveries::claim(&pool, 10, &names, LEASE).await.unwrap();
    assert_eq!(crashed.len(), 1);
    assert_eq!(crashed[0].attempts, 1);
    assert!(
        is_leased(&pool, "evt_lease", "http").await,
        "the claim holds a lease"
    );

    let forwarder = Forwarder::new(pool.clone(), &forward, None, Metrics::new()).unwrap();
    assert_eq!(
        forwarder.step().await.unwrap(),
        Step::default(),
        "a leased row must not be claimed again"
    );
    assert!(sink.received().is_empty());

    // Time passes for the dead worker: its lease runs out.
    expire_lease(&pool, "evt_lease", "http").await;
    assert!(!is_leased(&pool, "evt_lease", "http").await);
    assert_eq!(
        forwarder.step().await.unwrap(),
        Step {
            claimed: 1,
            delivered: 1
        },
        "the row comes back once its lease expired"
    );
    let row = delivery(&app, "evt_lease", "http").await.unwrap();
    assert_eq!(
        (row.state.as_str(), row.attempts),
        ("delivered", 2),
        "{row:?}"
    );
    assert_eq!(sink.count("evt_lease"), 1);

    // The dead worker wakes up and reports a failure for its stale claim: ignored.
    let late = deliveries::Outcome::Retry {
        after: Duration::ZERO,
        error: "late report from a worker whose lease ran out".to_owned(),
    };
    deliveries::complete(&pool, &[(&crashed[0], late)])
        .await
        .unwrap();
    let row = delivery(&app, "evt_lease", "http").await.unwrap();
    assert_eq!(
        (row.state.as_str(), row.attempts),
        ("delivered", 2),
        "{row:?}"
    );
    assert_eq!(row.last_error, None);
    assert_eq!(forwarder.step().await.unwrap(), Step::default());
    assert_eq!(
        sink.count("evt_lease"),
        1,
        "delivered once by the live worker"
    );
    pool.close().await;
}

/// Whether the delivery's lease is still running.
async fn is_leased(pool: &PgPool, event_id: &str, target: &str) -> bool {
    sqlx::query_scalar(
        "SELECT coalesce(lease_until > now(), false) FROM deliveries \
         WHERE event_id = $1 AND target = $2",
    )
    .bind(event_id)
    .bind(target)
    .fetch_one(pool)
    .await
    .expect("reading the lease")
}

/// Moves the delivery's lease into the past, as if its worker had been gone that long.
async fn expire_lease(pool: &PgPool, event_id: &str, target: &str) {
    let moved = sqlx::query(
        "UPDATE deliveries SET lease_until = now() - interval '1 second' \
         WHERE event_id = $1 AND target = $2 AND lease_until IS NOT NULL",
    )
    .bind(event_id)
    .bind(target)
    .execute(pool)
    .await
    .expect("expiring the lease")
    .rows_affected();
    assert_eq!(moved, 1, "({event_id}, {target}) had a lease to expire");
}
