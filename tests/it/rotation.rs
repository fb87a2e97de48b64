//! Secret rotation with an end (`secrets.previous_valid_until`): the previous secret is
//! accepted (and counted) before it, refused from it on, and the operator is warned at start
//! and the moment it passes while serving.

use audian_receiver::signing::sign;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::fixtures::{Binary, PREVIOUS_SECRET, SECRET, Served, TestApp, assert_answer, event};
use crate::metrics::scrape;

const OK: &str = r#"{"status":"ok"}"#;
const INVALID_SIGNATURE: &str = r#"{"error":"Invalid signature"}"#;

fn signed_with_previous(body: &str) -> String {
    sign(PREVIOUS_SECRET.as_bytes(), body.as_bytes())
}

async fn app_rotating_until(deadline: OffsetDateTime) -> TestApp {
    TestApp::spawn_with(|s| s.secrets.previous_valid_until = Some(deadline)).await
}

async fn previous_matches(app: &TestApp) -> bool {
    scrape(app)
        .await
        .contains("audian_receiver_signature_matches_total{key=\"previous\"} 1")
}

#[tokio::test]
async fn the_previous_secret_is_accepted_and_counted_before_previous_valid_until() {
    let app = app_rotating_until(OffsetDateTime::now_utc() + time::Duration::DAY).await;
    let body = event("evt_prev_ok");
    let response = app
        .post_with_signature(&body, &signed_with_previous(&body))
        .await;
    assert_answer(response, 200, OK).await;
    assert_eq!(app.count_events("evt_prev_ok").await, 1);
    assert!(previous_matches(&app).await);
}

#[tokio::test]
async fn the_previous_secret_is_refused_after_previous_valid_until() {
    let app = app_rotating_until(OffsetDateTime::now_utc() - time::Duration::MINUTE).await;
    let body = event("evt_prev_late");
    let response = app
        .post_with_signature(&body, &signed_with_previous(&body))
        .await;
    assert_answer(response, 401, INVALID_SIGNATURE).await;
    assert_eq!(app.total_events().await, 0);
    assert!(!previous_matches(&app).await);

    assert_answer(app.post_signed(&event("evt_current")).await, 200, OK).await;
    assert_eq!(app.count_events("evt_current").await, 1);
}

fn rotation_toml(deadline: OffsetDateTime) -> String {
    let at = deadline.format(&Rfc3339).unwrap();
    format!("[secrets]\nprevious_valid_until = {at:?}\n")
}

fn with_both_secrets() -> Binary {
    Binary::new()
        .env("AUDIAN_WEBHOOK_SECRET", SECRET)
        .env("AUDIAN_WEBHOOK_PREVIOUS_SECRET", PREVIOUS_SECRET)
}

#[tokio::test]
async fn serve_warns_at_start_when_previous_valid_until_has_passed() {
    let passed = OffsetDateTime::now_utc() - time::Duration::HOUR;
    let served = Served::start(with_both_secrets(), &rotation_toml(passed)).await;
    let warning = served
        .receiver
        .wait_for_log_containing("secrets.previous_valid_until")
        .await;
    assert_eq!(warning["level"], "WARN", "{warning}");
    let message = warning["message"].as_str().unwrap();
    assert!(message.contains("has passed"), "{message}");

    let body = event("evt_after_start");
    let late = served.post(&body, &signed_with_previous(&body), &[]).await;
    assert_answer(late, 401, INVALID_SIGNATURE).await;
    let signature = sign(SECRET.as_bytes(), body.as_bytes());
    assert_answer(served.post(&body, &signature, &[]).await, 200, OK).await;
    assert_eq!(served.count_events("evt_after_start").await, 1);
}

#[tokio::test]
async fn serve_warns_when_previous_valid_until_is_set_without_a_previous_secret() {
    let binary = Binary::new().env("AUDIAN_WEBHOOK_SECRET", SECRET);
    let ahead = OffsetDateTime::now_utc() + time::Duration::DAY;
    let served = Served::start(binary, &rotation_toml(ahead)).await;
    let warning = served
        .receiver
        .wait_for_log_containing("AUDIAN_WEBHOOK_PREVIOUS_SECRET is not")
        .await;
    assert_eq!(warning["level"], "WARN", "{warning}");
}

#[tokio::test]
async fn the_previous_secret_stops_working_when_previous_valid_until_passes_while_serving() {
    let deadline = OffsetDateTime::now_utc() + time::Duration::seconds(4);
    let served = Served::start(with_both_secrets(), &rotation_toml(deadline)).await;
    let early = event("evt_early");
    let response = served
        .post(&early, &signed_with_previous(&early), &[])
        .await;
    assert_answer(response, 200, OK).await;

    let passed = served
        .receiver
        .wait_for_log("the previous webhook secret has expired: signatures made with it are refused from now on; remove AUDIAN_WEBHOOK_PREVIOUS_SECRET")
        .await;
    assert_eq!(passed["level"], "WARN", "{passed}");
    assert!(OffsetDateTime::now_utc() >= deadline);
    let late = event("evt_late");
    let response = served.post(&late, &signed_with_previous(&late), &[]).await;
    assert_answer(response, 401, INVALID_SIGNATURE).await;
    assert_eq!(served.count_events("evt_late").await, 0);

    let signature = sign(SECRET.as_bytes(), late.as_bytes());
    assert_answer(served.post(&late, &signature, &[]).await, 200, OK).await;
    assert_eq!(served.count_events("evt_early").await, 1);
    assert_eq!(served.count_events("evt_late").await, 1);
}
