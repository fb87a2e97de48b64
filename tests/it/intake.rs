//! The request path of DESIGN §1, row by row, against a real Postgres over real TLS.

use audian_receiver::signing::sign;

use crate::fixtures::{PREVIOUS_SECRET, SECRET, TestApp, TestDb, assert_answer, event};

const OK: &str = r#"{"status":"ok"}"#;
const INVALID_SIGNATURE: &str = r#"{"error":"Invalid signature"}"#;
const INVALID_PAYLOAD: &str = r#"{"error":"Invalid payload"}"#;
const TOO_LARGE: &str = r#"{"error":"Payload too large"}"#;

#[tokio::test]
async fn stores_a_signed_event_with_its_exact_bytes_and_answers_200() {
    let app = TestApp::spawn().await;
    let body = event("evt_store");
    assert_answer(app.post_signed(&body).await, 200, OK).await;

    let mut conn = app.db.connect().await;
    let (event_type, payload, sha, source_ip): (String, Vec<u8>, Vec<u8>, String) = sqlx::query_as(
        "SELECT event_type, payload, payload_sha256, host(source_ip) FROM events WHERE event_id = $1",
    )
    .bind("evt_store")
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(event_type, "job.completed");
    assert_eq!(payload, body.as_bytes());
    use sha2::Digest;
    assert_eq!(sha, sha2::Sha256::digest(body.as_bytes()).to_vec());
    assert_eq!(source_ip, "127.0.0.1");
}

#[tokio::test]
async fn accepts_uppercase_and_prefixed_signatures_and_the_previous_secret() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "evt_upper",
            sign(SECRET.as_bytes(), event("evt_upper").as_bytes()).to_uppercase(),
        ),
        (
            "evt_prefixed",
            format!(
                "sha256={}",
                sign(SECRET.as_bytes(), event("evt_prefixed").as_bytes())
            ),
        ),
        (
            "evt_previous",
            sign(PREVIOUS_SECRET.as_bytes(), event("evt_previous").as_bytes()),
        ),
    ];
    for (id, signature) in cases {
        assert_answer(
            app.post_with_signature(&event(id), &signature).await,
            200,
            OK,
        )
        .await;
        assert_eq!(app.count_events(id).await, 1, "{id}");
    }
}

#[tokio::test]
async fn returns_401_when_the_signature_is_missing() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/webhook", app.base))
        .header("content-type", "application/json")
        .body(event("evt_nosig"))
        .send()
        .await
        .unwrap();
    assert_answer(response, 401, INVALID_SIGNATURE).await;
    assert_eq!(app.total_events().await, 0);
}

#[tokio::test]
async fn returns_401_when_the_signature_is_for_another_body() {
    let app = TestApp::spawn().await;
    let other = sign(SECRET.as_bytes(), event("evt_other").as_bytes());
    assert_answer(
        app.post_with_signature(&event("evt_tampered"), &other)
            .await,
        401,
        INVALID_SIGNATURE,
    )
    .await;
    assert_eq!(app.total_events().await, 0);
}

#[tokio::test]
async fn returns_401_when_the_signature_is_made_with_another_secret_or_malformed() {
    let app = TestApp::spawn().await;
    let body = event("evt_wrong_key");
    let wrong_key = sign(b"not-the-secret", body.as_bytes());
    let truncated = sign(SECRET.as_bytes(), body.as_bytes())[..40].to_owned();
    for signature in [
        wrong_key.as_str(),
        truncated.as_str(),
        "zz-not-hex",
        "sha256=",
    ] {
        assert_answer(
            app.post_with_signature(&body, signature).await,
            401,
            INVALID_SIGNATURE,
        )
        .await;
    }
    assert_eq!(app.total_events().await, 0);
}

#[tokio::test]
async fn checks_the_signature_before_parsing_so_garbage_without_one_is_401() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/webhook", app.base))
        .header("content-type", "text/plain")
        .header("x-audian-signature", "00".repeat(32))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_answer(response, 401, INVALID_SIGNATURE).await;
}

#[tokio::test]
async fn returns_404_for_another_path_and_405_for_another_method() {
    let app = TestApp::spawn().await;
    let other_path = app
        .client
        .post(format!("{}/hooks", app.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_answer(other_path, 404, r#"{"error":"Not found"}"#).await;
    let get = app
        .client
        .get(format!("{}/webhook", app.base))
        .send()
        .await
        .unwrap();
    assert_answer(get, 405, r#"{"error":"Method not allowed"}"#).await;
}

#[tokio::test]
async fn returns_413_when_the_declared_length_is_over_the_limit() {
    let app = TestApp::spawn_with(|s| s.server.max_body_bytes = 1024).await;
    let body = format!(r#"{{"id":"evt_big","pad":"{}"}}"#, "x".repeat(2000));
    assert_answer(app.post_signed(&body).await, 413, TOO_LARGE).await;
    assert_eq!(app.total_events().await, 0);
}

#[tokio::test]
async fn returns_413_when_a_chunked_body_without_length_grows_over_the_limit() {
    let app = TestApp::spawn_with(|s| s.server.max_body_bytes = 1024).await;
    // A streamed body: reqwest sends it chunked, with no Content-Length.
    let chunks = (0..8).map(|_| {
        Ok::<_, std::io::Error>(hyper::body::Frame::data(bytes::Bytes::from(vec![
            b'x';
            512
        ])))
    });
    let response = app
        .client
        .post(format!("{}/webhook", app.base))
        .header("x-audian-signature", "00".repeat(32))
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(
            futures_util::stream::iter(chunks),
        )))
        .send()
        .await
        .unwrap();
    assert_answer(response, 413, TOO_LARGE).await;
}

#[tokio::test]
async fn accepts_a_body_of_exactly_the_limit() {
    let limit = 1024;
    let app = TestApp::spawn_with(|s| s.server.max_body_bytes = limit).await;
    let prefix = r#"{"id":"evt_exact","pad":""#;
    let body = format!("{prefix}{}\"}}", "x".repeat(limit - prefix.len() - 2));
    assert_eq!(body.len(), limit);
    assert_answer(app.post_signed(&body).await, 200, OK).await;
}

#[tokio::test]
async fn returns_415_for_a_signed_body_that_is_not_json() {
    let app = TestApp::spawn().await;
    let body = event("evt_text");
    let response = app
        .client
        .post(format!("{}/webhook", app.base))
        .header("content-type", "text/plain")
        .header(
            "x-audian-signature",
            sign(SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_answer(response, 415, r#"{"error":"Unsupported media type"}"#).await;
    assert_eq!(app.total_events().await, 0);
}

#[tokio::test]
async fn returns_400_for_signed_bodies_that_are_not_an_event() {
    let app = TestApp::spawn().await;
    let long_id = format!(r#"{{"id":"{}"}}"#, "a".repeat(256));
    for body in [
        "{not json",
        "[]",
        r#"{"id":""}"#,
        r#"{"id":42}"#,
        r#"{"type":"job.completed"}"#,
        &long_id,
    ] {
        assert_answer(app.post_signed(body).await, 400, INVALID_PAYLOAD).await;
    }
    assert_eq!(app.total_events().await, 0);
}

#[tokio::test]
async fn a_repeated_id_answers_200_and_adds_no_row() {
    let app = TestApp::spawn().await;
    let body = event("evt_dup");
    for _ in 0..3 {
        assert_answer(app.post_signed(&body).await, 200, OK).await;
    }
    assert_eq!(app.count_events("evt_dup").await, 1);
}

#[tokio::test]
async fn a_repeated_id_with_another_body_keeps_the_first_and_is_counted() {
    let app = TestApp::spawn().await;
    let first = event("evt_changed");
    let second = r#"{"id":"evt_changed","type":"job.failed"}"#;
    assert_answer(app.post_signed(&first).await, 200, OK).await;
    assert_answer(app.post_signed(second).await, 200, OK).await;

    let mut conn = app.db.connect().await;
    let payload: Vec<u8> =
        sqlx::query_scalar("SELECT payload FROM events WHERE event_id = 'evt_changed'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(payload, first.as_bytes());
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("audian_receiver_duplicate_payload_mismatches_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn twenty_concurrent_posts_of_one_id_store_exactly_one_row() {
    let app = TestApp::spawn().await;
    let body = event("evt_storm");
    let posts = (0..20).map(|_| app.post_signed(&body));
    for response in futures_util::future::join_all(posts).await {
        assert_answer(response, 200, OK).await;
    }
    assert_eq!(app.count_events("evt_storm").await, 1);
}

#[tokio::test]
async fn many_concurrent_distinct_events_are_all_stored() {
    let app = TestApp::spawn().await;
    let bodies: Vec<String> = (0..200).map(|i| event(&format!("evt_many_{i}"))).collect();
    let posts = bodies.iter().map(|body| app.post_signed(body));
    for response in futures_util::future::join_all(posts).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.total_events().await, 200);
}

#[tokio::test]
async fn returns_403_when_the_client_is_not_in_the_allowlist() {
    let app =
        TestApp::spawn_with(|s| s.server.allowed_ips = vec!["192.0.2.0/24".parse().unwrap()]).await;
    assert_answer(
        app.post_signed(&event("evt_forbidden")).await,
        403,
        r#"{"error":"Forbidden"}"#,
    )
    .await;
    assert_eq!(app.total_events().await, 0);
}

#[tokio::test]
async fn accepts_a_client_inside_the_allowlist() {
    let app =
        TestApp::spawn_with(|s| s.server.allowed_ips = vec!["127.0.0.0/8".parse().unwrap()]).await;
    assert_answer(app.post_signed(&event("evt_allowed")).await, 200, OK).await;
}

#[tokio::test]
async fn returns_429_with_retry_after_beyond_the_rate_limit() {
    let app = TestApp::spawn_with(|s| {
        s.server.rate_limit = Some(audian_receiver::config::RateLimitSettings {
            per_second: 1,
            burst: 2,
        })
    })
    .await;
    for i in 0..2 {
        assert_eq!(
            app.post_signed(&event(&format!("evt_rl_{i}")))
                .await
                .status(),
            200
        );
    }
    let limited = app.post_signed(&event("evt_rl_2")).await;
    assert!(limited.headers().get("retry-after").is_some());
    assert_answer(limited, 429, r#"{"error":"Too many requests"}"#).await;
    assert_eq!(app.count_events("evt_rl_2").await, 0);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let response = app.post_signed(&event("evt_reqid")).await;
    assert!(response.headers().get("x-request-id").is_some());
}

#[tokio::test]
async fn admin_reports_alive_and_ready() {
    let app = TestApp::spawn().await;
    let health = reqwest::get(format!("{}/healthz", app.admin))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{}/readyz", app.admin)).await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn serve_creates_the_database_named_in_the_url_when_it_is_missing() {
    let created = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let name = created.clone();
    let app = TestApp::spawn_through_db(move |db, s| {
        let missing = format!("{}_created", db.name);
        s.database.url =
            audian_receiver::config::SecretUrl::new(&db.url().replace(&db.name, &missing));
        *name.lock().unwrap() = missing;
    })
    .await;
    assert_answer(app.post_signed(&event("evt_created_db")).await, 200, OK).await;
    let missing = created.lock().unwrap().clone();
    drop(app);
    // The database exists and holds the event; then it is dropped like any test database.
    let extra = TestDb::adopt(missing);
    let mut conn = extra.connect().await;
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_id = 'evt_created_db'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(stored, 1);
}
