//! A signed body must be I-JSON (RFC 7493) all the way down — UTF-8, no lone surrogate, no
//! duplicate member name, nesting at most `intake.max_depth` — and not older than
//! `intake.max_event_age`: each refusal names its rule, is counted, and leaves no row; what
//! is accepted is stored and forwarded byte for byte.

use audian_receiver::config::Age;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::fixtures::{Sink, TestApp, assert_answer, eventually};
use crate::forward::{fast, http_target};

const MAX_DEPTH: usize = 8;

fn refused(reason: &str) -> String {
    format!(r#"{{"error":"Invalid payload","reason":"{reason}"}}"#)
}

/// `levels` arrays nested inside `data` (the top-level object is one level more).
fn nested_data(id: &str, levels: usize) -> String {
    format!(
        r#"{{"id":"{id}","type":"job.completed","data":{}1{}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

async fn app() -> TestApp {
    TestApp::spawn_with(|settings| settings.intake.max_depth = MAX_DEPTH).await
}

async fn assert_refused(app: &TestApp, body: &[u8], reason: &str) {
    assert_answer(app.post_signed_bytes(body).await, 400, &refused(reason)).await;
    assert_eq!(app.total_events().await, 0, "a refused body left a row");
}

#[tokio::test]
async fn a_body_nested_one_level_past_max_depth_inside_data_is_refused_as_too_deep() {
    let app = app().await;
    // The object is depth 1, so MAX_DEPTH - 1 arrays reach MAX_DEPTH exactly.
    let body = nested_data("evt_too_deep", MAX_DEPTH);
    assert_refused(&app, body.as_bytes(), "too_deep").await;
    assert!(
        app.metrics()
            .await
            .contains(r#"webhook_requests_total{outcome="too_deep"} 1"#)
    );
}

#[tokio::test]
async fn twenty_thousand_nested_arrays_are_refused_as_too_deep() {
    let app = app().await;
    assert_refused(&app, nested_data("evt_20k", 20_000).as_bytes(), "too_deep").await;
}

#[tokio::test]
async fn a_body_at_exactly_max_depth_is_accepted_and_forwarded_byte_for_byte() {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(|settings| {
        settings.intake.max_depth = MAX_DEPTH;
        fast(&mut settings.forward, vec![http_target("http", &sink.url)]);
    })
    .await;
    let body = nested_data("evt_max_depth", MAX_DEPTH - 1);
    assert_answer(app.post_signed(&body).await, 200, r#"{"status":"ok"}"#).await;
    let received = eventually("the deep event forwarded", || async {
        sink.received().into_iter().next()
    })
    .await;
    assert_eq!(received.body.as_ref(), body.as_bytes());
}

#[tokio::test]
async fn a_duplicate_member_name_three_levels_down_is_refused() {
    let app = app().await;
    let body = br#"{"id":"evt_dup","data":{"job":{"tags":{"a":1,"b":2,"\u0061":3}}}}"#;
    assert_refused(&app, body, "duplicate_member").await;
}

#[tokio::test]
async fn a_byte_that_is_not_utf8_is_refused() {
    let app = app().await;
    assert_refused(
        &app,
        b"{\"id\":\"evt_latin1\",\"data\":\"caf\xe9\"}",
        "invalid_utf8",
    )
    .await;
}

#[tokio::test]
async fn a_lone_surrogate_escape_is_refused_and_a_pair_accepted() {
    let app = app().await;
    assert_refused(
        &app,
        br#"{"id":"evt_lone","data":"\ud800"}"#,
        "lone_surrogate",
    )
    .await;
    let pair = r#"{"id":"evt_pair","data":"\ud83d\ude00"}"#;
    assert_answer(app.post_signed(pair).await, 200, r#"{"status":"ok"}"#).await;
}

#[tokio::test]
async fn malformed_json_is_still_an_invalid_payload() {
    let app = app().await;
    let answer = app.post_signed(r#"{"id":"evt_cut","data":[1,2"#).await;
    assert_answer(answer, 400, r#"{"error":"Invalid payload"}"#).await;
}

fn stamped(id: &str, at: OffsetDateTime) -> String {
    let at = at.format(&Rfc3339).unwrap();
    format!(r#"{{"id":"{id}","type":"job.completed","created_at":"{at}","data":{{}}}}"#)
}

#[tokio::test]
async fn an_event_older_than_max_event_age_is_refused_as_stale_and_one_inside_accepted() {
    let app = TestApp::spawn_with(|settings| {
        settings.intake.max_event_age = Some(Age::Limit(std::time::Duration::from_secs(3_600)));
    })
    .await;
    let now = OffsetDateTime::now_utc();
    let stale = stamped("evt_stale", now - time::Duration::seconds(3_660));
    assert_refused(&app, stale.as_bytes(), "stale_event").await;
    let fresh = stamped("evt_fresh", now - time::Duration::seconds(3_540));
    assert_answer(app.post_signed(&fresh).await, 200, r#"{"status":"ok"}"#).await;
    assert_eq!(app.count_events("evt_fresh").await, 1);
    let in_2019 = stamped(
        "evt_2019",
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(17_900),
    );
    assert_answer(
        app.post_signed(&in_2019).await,
        400,
        &refused("stale_event"),
    )
    .await;
    assert!(
        app.metrics()
            .await
            .contains(r#"webhook_requests_total{outcome="stale_event"} 2"#)
    );
}

#[tokio::test]
async fn an_event_from_2019_is_refused_under_the_default_dedup_window() {
    let app = app().await;
    let body = r#"{"id":"evt_old_unix","created_at":1556668800}"#;
    assert_refused(&app, body.as_bytes(), "stale_event").await;
}

#[tokio::test]
async fn an_event_without_created_at_is_accepted_and_counted() {
    let app = app().await;
    let body = r#"{"id":"evt_no_time","type":"job.completed"}"#;
    assert_answer(app.post_signed(body).await, 200, r#"{"status":"ok"}"#).await;
    let unreadable = r#"{"id":"evt_bad_time","created_at":"last tuesday"}"#;
    assert_answer(app.post_signed(unreadable).await, 200, r#"{"status":"ok"}"#).await;
    let metrics = app.metrics().await;
    assert!(metrics.contains(r#"events_without_timestamp_total{reason="missing"} 1"#));
    assert!(metrics.contains(r#"events_without_timestamp_total{reason="unreadable"} 1"#));
}

#[tokio::test]
async fn require_timestamp_refuses_an_event_without_one() {
    let app = TestApp::spawn_with(|settings| settings.intake.require_timestamp = true).await;
    assert_refused(&app, br#"{"id":"evt_untimed"}"#, "missing_timestamp").await;
    assert_refused(
        &app,
        br#"{"id":"evt_mistimed","created_at":"soon"}"#,
        "invalid_timestamp",
    )
    .await;
    let timed = stamped("evt_timed", OffsetDateTime::now_utc());
    assert_answer(app.post_signed(&timed).await, 200, r#"{"status":"ok"}"#).await;
}
