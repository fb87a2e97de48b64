//! `/metrics` on the admin listener, as Prometheus scrapes it: every series of the README's
//! table is there, and each moves when what it measures happens — a signed post, a post with
//! the previous secret, a delivery, a target that is down, a database that goes away. The
//! backlog gauges are refreshed every few seconds, so every wait is [`eventually`].

use audian_receiver::config::TargetSettings;
use audian_receiver::signing::sign;

use crate::fixtures::{
    POSTGRES_ADDR, PREVIOUS_SECRET, Proxy, Sink, TestApp, event, eventually, free_port,
};
use crate::forward::{fast, http_target, post_ok, typed_event};

/// Every metric family, as its `# HELP` line names it (counters without `_total`). A family
/// is exported once it has a series.
const FAMILIES: [&str; 11] = [
    "webhook_requests",
    "webhook_duration_seconds",
    "signature_matches",
    "duplicate_payload_mismatches",
    "db_errors",
    "forward_deliveries",
    "forward_delivery_seconds",
    "forward_pending",
    "forward_oldest_pending_seconds",
    "forward_dead",
    "forward_watermark_lag_seconds",
];

pub async fn scrape(app: &TestApp) -> String {
    let response = reqwest::get(format!("{}/metrics", app.admin))
        .await
        .expect("the admin listener answers /metrics");
    assert_eq!(response.status(), 200);
    response.text().await.expect("a text body")
}

/// The value of one series, named with its labels exactly as exported (e.g.
/// `audian_receiver_forward_pending{target="down"}`); `None` when it is not exported.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split(' ').next()?.parse().ok()
    })
}

/// Scrapes until `series` satisfies `holds`; returns the value that did. On timeout the
/// failure shows the last value seen.
async fn until(app: &TestApp, series: &str, what: &str, holds: impl Fn(f64) -> bool) -> f64 {
    eventually(format!("{series} {what}"), || async {
        let metrics = scrape(app).await;
        match value(&metrics, series) {
            Some(v) if holds(v) => Ok(v),
            seen => Err(format!("{seen:?}")),
        }
    })
    .await
}

fn series(name: &str, labels: &str) -> String {
    format!("audian_receiver_{name}{{{labels}}}")
}

#[tokio::test]
async fn a_signed_post_moves_requests_latency_and_the_current_key_and_the_old_secret_its_own() {
    let app = TestApp::spawn().await;
    let accepted = series("webhook_requests_total", r#"outcome="accepted""#);
    let refused = series("webhook_requests_total", r#"outcome="invalid_signature""#);
    let current = series("signature_matches_total", r#"key="current""#);
    let previous = series("signature_matches_total", r#"key="previous""#);
    let latency_count = "audian_receiver_webhook_duration_seconds_count";
    let latency_sum = "audian_receiver_webhook_duration_seconds_sum";

    let before = scrape(&app).await;
    assert_eq!(value(&before, &current), Some(0.0), "{before}");
    assert_eq!(value(&before, &previous), Some(0.0), "{before}");
    assert_eq!(value(&before, latency_count), Some(0.0), "{before}");
    assert_eq!(value(&before, &accepted), None, "{before}");

    post_ok(&app, &event("evt_m_current")).await;
    until(&app, &accepted, "= 1", |v| v == 1.0).await;
    until(&app, latency_count, "= 1", |v| v == 1.0).await;
    until(&app, latency_sum, "> 0", |v| v > 0.0).await;
    until(&app, &current, "= 1", |v| v == 1.0).await;
    assert_eq!(value(&scrape(&app).await, &previous), Some(0.0));

    // A bad signature is timed and counted as refused, and matches no key.
    let bad = app
        .post_with_signature(&event("evt_m_bad"), &"0".repeat(64))
        .await;
    assert_eq!(bad.status(), 401);
    until(&app, &refused, "= 1", |v| v == 1.0).await;
    until(&app, latency_count, "= 2", |v| v == 2.0).await;

    // Signed with the previous secret: accepted, and counted against that key alone.
    let body = event("evt_m_previous");
    let old = app
        .post_with_signature(&body, &sign(PREVIOUS_SECRET.as_bytes(), body.as_bytes()))
        .await;
    assert_eq!(old.status(), 200);
    until(&app, &previous, "= 1", |v| v == 1.0).await;
    until(&app, &accepted, "= 2", |v| v == 2.0).await;
    until(&app, latency_count, "= 3", |v| v == 3.0).await;
    let after = scrape(&app).await;
    assert_eq!(value(&after, &current), Some(1.0), "{after}");
}

#[tokio::test]
async fn a_delivered_event_moves_its_targets_deliveries_and_receipt_to_delivery_histogram() {
    let sink = Sink::start().await;
    let targets = vec![http_target("sink", &sink.url)];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    let delivered = series(
        "forward_deliveries_total",
        r#"target="sink",outcome="delivered""#,
    );
    let count = series("forward_delivery_seconds_count", r#"target="sink""#);
    let sum = series("forward_delivery_seconds_sum", r#"target="sink""#);

    // The target's series exist at zero before its first event.
    let before = scrape(&app).await;
    assert_eq!(value(&before, &delivered), Some(0.0), "{before}");
    assert_eq!(value(&before, &count), Some(0.0), "{before}");

    post_ok(&app, &typed_event("evt_m_fwd", "job.completed")).await;
    eventually("the sink to receive the event", || async {
        (sink.count("evt_m_fwd") == 1).then_some(())
    })
    .await;
    until(&app, &delivered, "= 1", |v| v == 1.0).await;
    until(&app, &count, "= 1", |v| v == 1.0).await;
    until(&app, &sum, "> 0", |v| v > 0.0).await;
    let after = scrape(&app).await;
    let failed = series(
        "forward_deliveries_total",
        r#"target="sink",outcome="retry""#,
    );
    assert_eq!(value(&after, &failed), Some(0.0), "{after}");
    // With a target and a request behind it, every family of the README's table is exported
    // (one without any series yet would not be).
    for family in FAMILIES {
        let help = format!("# HELP audian_receiver_{family} ");
        assert!(after.contains(&help), "no {help:?} in\n{after}");
    }
}

#[tokio::test]
async fn a_down_target_shows_a_growing_backlog_and_with_one_attempt_a_dead_delivery() {
    let unreachable = format!("http://127.0.0.1:{}/hook", free_port());
    let targets = vec![
        // Retried for minutes (tiny backoffs): it stays pending for the whole test.
        TargetSettings {
            max_attempts: Some(10_000),
            ..http_target("down", &unreachable)
        },
        TargetSettings {
            max_attempts: Some(1),
            ..http_target("once", &unreachable)
        },
    ];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    post_ok(&app, &typed_event("evt_m_down", "job.completed")).await;

    let label = |target| format!(r#"target="{target}""#);
    until(
        &app,
        &series("forward_pending", &label("down")),
        "= 1",
        |v| v == 1.0,
    )
    .await;
    let oldest = series("forward_oldest_pending_seconds", &label("down"));
    let first = until(&app, &oldest, "> 0", |v| v > 0.0).await;
    until(&app, &oldest, "to grow at the next refresh", |v| v > first).await;
    let retries = series(
        "forward_deliveries_total",
        r#"target="down",outcome="retry""#,
    );
    until(&app, &retries, ">= 2", |v| v >= 2.0).await;

    // One attempt and it is dead: counted as such, and no longer pending.
    until(&app, &series("forward_dead", &label("once")), ">= 1", |v| {
        v >= 1.0
    })
    .await;
    let dead = series(
        "forward_deliveries_total",
        r#"target="once",outcome="dead""#,
    );
    until(&app, &dead, "= 1", |v| v == 1.0).await;
    until(
        &app,
        &series("forward_pending", &label("once")),
        "= 0",
        |v| v == 0.0,
    )
    .await;
    let after = scrape(&app).await;
    assert_eq!(
        value(&after, &series("forward_dead", &label("down"))),
        Some(0.0),
        "{after}"
    );
}

#[tokio::test]
async fn a_database_cut_moves_db_errors() {
    let proxy = Proxy::start(POSTGRES_ADDR).await;
    let app = TestApp::spawn_via(&proxy).await;
    post_ok(&app, &event("evt_m_before_cut")).await;
    let errors = "audian_receiver_db_errors_total";
    let before = scrape(&app).await;
    assert_eq!(value(&before, errors), Some(0.0), "{before}");

    proxy.cut();
    let during = app.post_signed(&event("evt_m_during_cut")).await;
    assert_eq!(during.status(), 503);
    until(&app, errors, ">= 1", |v| v >= 1.0).await;
    proxy.restore();
}
