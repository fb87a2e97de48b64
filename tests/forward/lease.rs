//! A worker that dies holding a claimed delivery: the lease runs out and a real Forwarder
//! delivers it, once; the dead worker's late report changes nothing.

use std::time::Duration;

use audian_receiver::config::{DatabaseSettings, ForwardSettings, SecretUrl};
use audian_receiver::forward::{Forwarder, Step};
use audian_receiver::store::{self, deliveries};
use audian_receiver::telemetry::Metrics;

use crate::common::TestApp;
use crate::sink::Sink;
use crate::{delivery, eventually, fast, http_target, post_ok, typed_event};

const LEASE: Duration = Duration::from_millis(300);

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
    let started = tokio::time::Instant::now();
    let names = ["http".to_owned()];
    let crashed = deliveries::claim(&pool, 10, &names, LEASE).await.unwrap();
    assert_eq!(crashed.len(), 1);
    assert_eq!(crashed[0].attempts, 1);

    let forwarder = Forwarder::new(pool.clone(), &forward, None, Metrics::new()).unwrap();
    let step = forwarder.step().await.unwrap();
    if started.elapsed() < LEASE {
        assert_eq!(
            step,
            Step::default(),
            "a leased row must not be claimed again"
        );
    }
    assert!(sink.received().is_empty());

    let step = eventually("the row to come back once its lease expired", || async {
        let step = forwarder.step().await.unwrap();
        (step.claimed > 0).then_some(step)
    })
    .await;
    assert!(
        started.elapsed() >= LEASE - Duration::from_millis(20),
        "re-claimed after {:?}, before the {LEASE:?} lease ran out",
        started.elapsed()
    );
    assert_eq!(
        step,
        Step {
            claimed: 1,
            delivered: 1
        }
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
