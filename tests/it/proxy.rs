//! Behind a proxy (`server.trusted_proxies`): the client named by `X-Forwarded-For` /
//! `Forwarded` is what the allowlist, the rate limit and the stored `source_ip` see — but only
//! when the TCP peer (here 127.0.0.1, over real TLS) is a trusted proxy, and only as far as
//! trusted hops vouch for the chain. Each attack is followed by a legitimate event that gets
//! 200 and is stored once.

use audian_receiver::config::{RateLimitSettings, Settings};
use audian_receiver::signing::sign;

use crate::fixtures::{Binary, SECRET, Served, TestApp, assert_answer, event};

const OK: &str = r#"{"status":"ok"}"#;
const FORBIDDEN: &str = r#"{"error":"Forbidden"}"#;
const TOO_MANY: &str = r#"{"error":"Too many requests"}"#;
const INVALID_REQUEST: &str = r#"{"error":"Invalid request"}"#;

/// Audian's pretend egress network, the only one allowed to post in these tests.
const AUDIAN: &str = "198.51.100.0/24";

/// The test client connects from 127.0.0.1; trust it (and an inner proxy tier in 10/8).
fn behind_proxies(settings: &mut Settings) {
    settings.server.trusted_proxies = vec![
        "127.0.0.1/32".parse().unwrap(),
        "10.0.0.0/8".parse().unwrap(),
    ];
}

fn allow_only_audian(settings: &mut Settings) {
    settings.server.allowed_ips = vec![AUDIAN.parse().unwrap()];
}

fn one_request_per_client(settings: &mut Settings) {
    settings.server.rate_limit = Some(RateLimitSettings {
        per_second: 1,
        burst: 1,
    });
}

/// POSTs the signed event `id` with extra headers (each may repeat).
async fn post_via(app: &TestApp, id: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let body = event(id);
    let signature = sign(SECRET.as_bytes(), body.as_bytes());
    app.post_with_headers(&body, &signature, headers).await
}

/// The stored `source_ip` of each row with this id.
async fn source_ips(app: &TestApp, id: &str) -> Vec<String> {
    let mut conn = app.db.connect().await;
    sqlx::query_scalar("SELECT host(source_ip) FROM events WHERE event_id = $1")
        .bind(id)
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

/// A legitimate post through the proxy gets 200 and is stored once, under the client's address.
async fn legitimate_event_is_stored_once(app: &TestApp, id: &str, client: &str) {
    let xff = [("x-forwarded-for", client)];
    assert_answer(post_via(app, id, &xff).await, 200, OK).await;
    assert_eq!(source_ips(app, id).await, [client]);
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_client_is_allowlisted_and_stored_as_source_ip() {
    let app = TestApp::spawn_with(|s| {
        behind_proxies(s);
        allow_only_audian(s);
    })
    .await;
    // The proxy's own address is not Audian's: without a forwarded client, refused.
    assert_answer(post_via(&app, "evt_bare", &[]).await, 403, FORBIDDEN).await;
    let forwarded = [("forwarded", "for=198.51.100.9;proto=https")];
    assert_answer(post_via(&app, "evt_fwd", &forwarded).await, 200, OK).await;
    assert_eq!(source_ips(&app, "evt_fwd").await, ["198.51.100.9"]);
    legitimate_event_is_stored_once(&app, "evt_xff", "198.51.100.7").await;
    assert_eq!(app.total_events().await, 2);
}

#[tokio::test]
async fn forwarding_headers_from_a_peer_that_is_not_a_trusted_proxy_are_ignored() {
    let app = TestApp::spawn_with(|s| {
        s.server.trusted_proxies = vec!["192.0.2.0/24".parse().unwrap()];
        one_request_per_client(s);
    })
    .await;
    let claims = [
        ("x-forwarded-for", "198.51.100.7"),
        ("forwarded", "for=\"[2001:db8::1]\""),
    ];
    assert_answer(post_via(&app, "evt_claim", &claims).await, 200, OK).await;
    assert_eq!(source_ips(&app, "evt_claim").await, ["127.0.0.1"]);
    // Another claimed client changes nothing: it is still the peer's one bucket.
    let other = [("x-forwarded-for", "198.51.100.8")];
    assert_answer(post_via(&app, "evt_claim_2", &other).await, 429, TOO_MANY).await;
    assert_eq!(app.count_events("evt_claim_2").await, 0);
}

#[tokio::test]
async fn spoofed_left_most_entries_are_ignored_and_the_right_most_untrusted_hop_wins() {
    let app = TestApp::spawn_with(|s| {
        behind_proxies(s);
        allow_only_audian(s);
    })
    .await;
    // The attacker (203.0.113.9) writes Audian's address first; our proxies append theirs.
    let spoofed_xff = [("x-forwarded-for", "198.51.100.7, 203.0.113.9, 10.0.0.5")];
    assert_answer(
        post_via(&app, "evt_spoof", &spoofed_xff).await,
        403,
        FORBIDDEN,
    )
    .await;
    let spoofed_forwarded = [
        ("forwarded", "for=198.51.100.7"),
        ("forwarded", "for=203.0.113.9, for=10.0.0.5"),
    ];
    assert_answer(
        post_via(&app, "evt_spoof", &spoofed_forwarded).await,
        403,
        FORBIDDEN,
    )
    .await;
    assert_eq!(app.total_events().await, 0);

    // Junk the real client wrote on the left is ignored just the same.
    let xff = [(
        "x-forwarded-for",
        "203.0.113.66, not-an-ip, 198.51.100.7, 10.0.0.5",
    )];
    assert_answer(post_via(&app, "evt_legit", &xff).await, 200, OK).await;
    assert_eq!(source_ips(&app, "evt_legit").await, ["198.51.100.7"]);
}

#[tokio::test]
async fn the_rate_limit_counts_each_forwarded_client_on_its_own() {
    let app = TestApp::spawn_with(|s| {
        behind_proxies(s);
        one_request_per_client(s);
    })
    .await;
    legitimate_event_is_stored_once(&app, "evt_a_1", "198.51.100.7").await;
    let again = [("x-forwarded-for", "198.51.100.7")];
    assert_answer(post_via(&app, "evt_a_2", &again).await, 429, TOO_MANY).await;
    assert_eq!(app.count_events("evt_a_2").await, 0);
    // Another client behind the same proxy has a bucket of its own.
    legitimate_event_is_stored_once(&app, "evt_b_1", "198.51.100.8").await;
}

#[tokio::test]
async fn two_ipv6_clients_in_one_64_share_a_rate_limit() {
    let app = TestApp::spawn_with(|s| {
        behind_proxies(s);
        one_request_per_client(s);
    })
    .await;
    let first = [("forwarded", "for=\"[2001:db8:1:2::1]:4711\"")];
    assert_answer(post_via(&app, "evt_v6_1", &first).await, 200, OK).await;
    assert_eq!(source_ips(&app, "evt_v6_1").await, ["2001:db8:1:2::1"]);
    let same_64 = [("x-forwarded-for", "2001:db8:1:2:ffff:ffff:ffff:fffe")];
    assert_answer(post_via(&app, "evt_v6_2", &same_64).await, 429, TOO_MANY).await;
    assert_eq!(app.count_events("evt_v6_2").await, 0);
    // The next /64 is another client.
    legitimate_event_is_stored_once(&app, "evt_v6_3", "2001:db8:1:3::1").await;
}

#[tokio::test]
async fn a_trusted_proxys_unreadable_or_contradictory_chain_is_refused_with_400() {
    let app = TestApp::spawn_with(behind_proxies).await;
    let unreadable = [("x-forwarded-for", "198.51.100.7, garbage")];
    let unknown = [("forwarded", "for=unknown")];
    let broken = [("forwarded", "for=\"198.51.100.7")];
    let contradictory = [
        ("x-forwarded-for", "198.51.100.7"),
        ("forwarded", "for=192.0.2.1"),
    ];
    for headers in [&unreadable[..], &unknown, &broken, &contradictory] {
        let response = post_via(&app, "evt_bad_chain", headers).await;
        assert_answer(response, 400, INVALID_REQUEST).await;
    }
    assert_eq!(app.total_events().await, 0);
    legitimate_event_is_stored_once(&app, "evt_good_chain", "198.51.100.7").await;
}

#[tokio::test]
async fn the_request_log_line_names_the_forwarded_client() {
    let binary = Binary::new().env("AUDIAN_WEBHOOK_SECRET", SECRET);
    let served = Served::start(binary, "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").await;
    let body = event("evt_logged");
    let signature = sign(SECRET.as_bytes(), body.as_bytes());
    let xff = [("x-forwarded-for", "203.0.113.9, 198.51.100.7")];
    assert_answer(served.post(&body, &signature, &xff).await, 200, OK).await;
    assert_eq!(served.count_events("evt_logged").await, 1);
    let line = served.receiver.wait_for_log("request finished").await;
    assert_eq!(line["span"]["client_ip"], "198.51.100.7", "{line}");
}
