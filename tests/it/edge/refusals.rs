//! The refusal table of DESIGN §1 on the public router alone, with `oneshot`: no listener,
//! no TLS and no database (the pool points at a port where nothing listens, so the one
//! request that reaches it gets the 503 of a database outage).

use std::net::SocketAddr;
use std::time::Duration;

use audian_receiver::config::{
    IntakeSettings, RateLimitSettings, RetentionSettings, ServerSettings,
};
use audian_receiver::intake::{BodyBudget, Freshness, Intake, Verifier};
use audian_receiver::sealing::PayloadKeys;
use audian_receiver::server::public_router;
use audian_receiver::signing::sign;
use audian_receiver::store::EventWriter;
use audian_receiver::telemetry::Metrics;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::fixtures::{SECRET, event};

fn router(adjust: impl FnOnce(&mut ServerSettings)) -> Router {
    let mut settings = ServerSettings {
        max_body_bytes: 1024,
        ..ServerSettings::default()
    };
    adjust(&mut settings);
    let metrics = Metrics::new();
    let pool = sqlx::PgPool::connect_lazy("postgres://nobody@127.0.0.1:9/none").unwrap();
    let (wake, _) = tokio::sync::watch::channel(0);
    let intake = Intake {
        verifier: Verifier::new([SECRET.as_bytes()]),
        writer: EventWriter::start(
            pool,
            8,
            1,
            Duration::from_secs(2),
            wake,
            metrics.db_errors.clone(),
            PayloadKeys::none(),
        ),
        max_body_bytes: settings.max_body_bytes,
        body_timeout: settings.body_timeout(),
        body_budget: BodyBudget::new(settings.max_body_memory_bytes),
        max_depth: 64,
        timestamp_field: "created_at".into(),
        freshness: Freshness::new(
            &IntakeSettings::default(),
            &RetentionSettings::default(),
            metrics.clone(),
        ),
        metrics: metrics.clone(),
    };
    public_router(&settings, intake, metrics)
}

fn post(path: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    with_peer(request.body(body.into()).unwrap())
}

/// The client address the listener would have added.
fn with_peer(mut request: Request<Body>) -> Request<Body> {
    let peer: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

async fn answer(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn signed(body: &str) -> String {
    sign(SECRET.as_bytes(), body.as_bytes())
}

#[tokio::test]
async fn every_refusal_has_its_status_and_generic_body() {
    let router = router(|_| {});
    let good = event("evt_table");
    let sig = signed(&good);
    let json = ("content-type", "application/json");
    let cases: Vec<(Request<Body>, u16, &str)> = vec![
        (post("/elsewhere", &[], ""), 404, r#"{"error":"Not found"}"#),
        (
            with_peer(Request::get("/webhook").body(Body::empty()).unwrap()),
            405,
            r#"{"error":"Method not allowed"}"#,
        ),
        (
            post(
                "/webhook",
                &[
                    json,
                    ("content-type", "text/plain"),
                    ("x-audian-signature", &sig),
                ],
                good.clone(),
            ),
            400,
            r#"{"error":"Invalid request"}"#,
        ),
        (
            post(
                "/webhook",
                &[("x-audian-signature", &sig), ("x-audian-signature", &sig)],
                good.clone(),
            ),
            400,
            r#"{"error":"Invalid request"}"#,
        ),
        (
            post(
                "/webhook",
                &[("content-length", "5000"), ("x-audian-signature", &sig)],
                "x".repeat(5000),
            ),
            413,
            r#"{"error":"Payload too large"}"#,
        ),
        (
            post("/webhook", &[json], good.clone()),
            401,
            r#"{"error":"Invalid signature"}"#,
        ),
        (
            post(
                "/webhook",
                &[("x-audian-signature", "not-hex")],
                good.clone(),
            ),
            401,
            r#"{"error":"Invalid signature"}"#,
        ),
        (
            post(
                "/webhook",
                &[("x-audian-signature", &signed("other"))],
                good.clone(),
            ),
            401,
            r#"{"error":"Invalid signature"}"#,
        ),
        (
            post(
                "/webhook",
                &[("content-type", "text/plain"), ("x-audian-signature", &sig)],
                good.clone(),
            ),
            415,
            r#"{"error":"Unsupported media type"}"#,
        ),
        (
            post(
                "/webhook",
                &[json, ("x-audian-signature", &signed("[1]"))],
                "[1]",
            ),
            400,
            r#"{"error":"Invalid payload"}"#,
        ),
        (
            post(
                "/webhook",
                &[json, ("x-audian-signature", &sig)],
                good.clone(),
            ),
            503,
            r#"{"error":"Service unavailable"}"#,
        ),
    ];
    for (request, status, body) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        assert_eq!(
            answer(&router, request).await,
            (StatusCode::from_u16(status).unwrap(), body.to_owned()),
            "{what}"
        );
    }
}

#[tokio::test]
async fn the_allowlist_and_the_rate_limit_come_first() {
    let outsiders = router(|settings| settings.allowed_ips = vec!["10.0.0.0/8".parse().unwrap()]);
    let forbidden = answer(&outsiders, post("/elsewhere", &[], "")).await;
    assert_eq!(
        forbidden,
        (StatusCode::FORBIDDEN, r#"{"error":"Forbidden"}"#.to_owned())
    );

    let limited = router(|settings| {
        settings.rate_limit = Some(RateLimitSettings {
            per_second: 1,
            burst: 1,
        })
    });
    assert_eq!(
        answer(&limited, post("/elsewhere", &[], "")).await.0,
        StatusCode::NOT_FOUND
    );
    let response = limited
        .clone()
        .oneshot(post("/elsewhere", &[], ""))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}
