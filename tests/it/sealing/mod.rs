//! Encryption at rest (README "Encryption at rest"): with AUDIAN_PAYLOAD_KEYS set, stored
//! payloads are sealed under the first key, targets still get the exact bytes Audian sent,
//! dedup still compares bodies, and a payload under a key no longer configured is reported
//! and ends dead, never forwarded as it is stored. `keys rotate` lives in `rotate.rs`.

mod rotate;
mod start;

use audian_receiver::config::Secrets;
use audian_receiver::sealing::{OVERHEAD, PayloadKeys};
use audian_receiver::signing::sign;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::fixtures::{
    Binary, FORWARD_SIGNING_SECRET, Running, SECRET, Sink, TestApp, TestDb, assert_answer,
    signing_secrets, test_secrets,
};
use crate::forward::{all_delivered, fast, http_target, post_ok, reaches_state, typed_event};

const OK: &str = r#"{"status":"ok"}"#;

/// `id:base64` of a 32-byte key made of `fill`, the form AUDIAN_PAYLOAD_KEYS takes.
pub fn named_key(id: &str, fill: u8) -> String {
    format!("{id}:{}", STANDARD.encode([fill; 32]))
}

pub fn keys(value: &str) -> PayloadKeys {
    PayloadKeys::parse("AUDIAN_PAYLOAD_KEYS", value).expect("valid test keys")
}

/// The test secrets with `value` as AUDIAN_PAYLOAD_KEYS (forwarded messages signed).
pub fn with_keys(value: &str) -> Secrets {
    Secrets {
        payload_keys: keys(value),
        ..signing_secrets()
    }
}

/// A stored event's payload bytes, key id and body hash, as the table holds them.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredRow {
    pub payload: Option<Vec<u8>>,
    pub payload_key_id: Option<String>,
    pub payload_sha256: Vec<u8>,
}

pub async fn stored(db: &TestDb, id: &str) -> StoredRow {
    let mut conn = db.connect().await;
    sqlx::query_as("SELECT payload, payload_key_id, payload_sha256 FROM events WHERE event_id = $1")
        .bind(id)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("reading event {id}: {e}"))
}

/// Whether any 8 consecutive bytes of `body` appear in `stored`.
fn shows_any_of(stored: &[u8], body: &[u8]) -> bool {
    body.windows(8).any(|w| stored.windows(8).any(|s| s == w))
}

/// `serve` from the real binary on the test's database, forwarding to an HTTP target
/// `sink` at `url`, with `env` set. Keep the `Binary`: it holds the configuration.
pub fn serve(db: &TestDb, url: &str, env: &[(&str, &str)]) -> (Binary, Running) {
    let mut binary = Binary::new().env("AUDIAN_WEBHOOK_SECRET", SECRET);
    for (name, value) in env {
        binary = binary.env(name, value);
    }
    let config = binary.write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [tls]\nmode = \"self-signed\"\n[database]\nurl = {:?}\n\
         [forward]\npoll_interval_ms = 100\nbackoff_initial_ms = 20\nbackoff_max_ms = 200\n\
         [[forward.targets]]\nname = \"sink\"\nkind = \"http\"\nurl = {url:?}\n",
        db.url()
    ));
    let running = binary.spawn(&["serve", "--config", &config]);
    (binary, running)
}

#[tokio::test]
async fn with_payload_keys_the_payload_is_stored_sealed_under_the_first_key_and_a_target_gets_the_exact_bytes()
 {
    let sink = Sink::start().await;
    let value = format!("{},{}", named_key("k2", 2), named_key("k1", 1));
    let targets = vec![http_target("sink", &sink.url)];
    let app =
        TestApp::spawn_with_secrets(with_keys(&value), |_, s| fast(&mut s.forward, targets)).await;
    let body = typed_event("evt_sealed", "job.completed");
    post_ok(&app, &body).await;
    all_delivered(&app, 1).await;

    let row = stored(&app.db, "evt_sealed").await;
    let payload = row.payload.expect("the payload is kept");
    assert_eq!(
        row.payload_key_id.as_deref(),
        Some("k2"),
        "the first key seals"
    );
    assert_eq!(payload.len(), body.len() + OVERHEAD);
    assert!(!shows_any_of(&payload, body.as_bytes()), "{payload:?}");
    assert_eq!(row.payload_sha256, Sha256::digest(body.as_bytes()).to_vec());
    let opened = keys(&named_key("k2", 2))
        .open("evt_sealed", Some("k2"), &payload)
        .expect("the first key opens it");
    assert_eq!(&*opened, body.as_bytes());

    let received = sink.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].body, body.as_bytes(), "byte-identical");
    let signature = sign(FORWARD_SIGNING_SECRET.as_bytes(), body.as_bytes());
    assert_eq!(
        received[0].header("x-receiver-signature"),
        Some(signature),
        "signed over the plaintext"
    );
}

#[tokio::test]
async fn with_payload_keys_a_repeat_is_a_duplicate_and_a_changed_body_is_still_a_mismatch() {
    let app = TestApp::spawn_with_secrets(with_keys(&named_key("k1", 1)), |_, _| {}).await;
    let first = typed_event("evt_twice", "job.completed");
    for _ in 0..2 {
        assert_answer(app.post_signed(&first).await, 200, OK).await;
    }
    assert_eq!(mismatches(&app).await, 0, "same body, sealed twice alike");
    let changed = typed_event("evt_twice", "job.failed");
    assert_answer(app.post_signed(&changed).await, 200, OK).await;
    assert_eq!(
        mismatches(&app).await,
        1,
        "another body is still told apart"
    );

    assert_eq!(app.count_events("evt_twice").await, 1);
    let row = stored(&app.db, "evt_twice").await;
    let payload = row.payload.unwrap();
    let opened = keys(&named_key("k1", 1))
        .open("evt_twice", Some("k1"), &payload)
        .unwrap();
    assert_eq!(&*opened, first.as_bytes(), "the first body is kept");
}

async fn mismatches(app: &TestApp) -> u64 {
    let metrics = app.metrics().await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("audian_receiver_duplicate_payload_mismatches_total "))
        .unwrap_or_else(|| panic!("no mismatch counter in\n{metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_payload_under_a_key_no_longer_configured_ends_dead_naming_the_key_and_is_never_sent() {
    let sink = Sink::start().await;
    let current = named_key("k1", 1);
    // Records with k1 but forwards nothing: the binary below forwards, and logs.
    let targets = vec![http_target("sink", &sink.url)];
    let app = TestApp::spawn_with_secrets(with_keys(&current), |_, s| {
        fast(&mut s.forward, targets);
        s.forward.workers = 0;
    })
    .await;
    let lost = typed_event("evt_lost", "job.completed");
    insert_sealed(&app.db, "evt_lost", &lost, &keys(&named_key("k0", 9))).await;
    let after = typed_event("evt_after", "job.completed");
    post_ok(&app, &after).await;

    let (_binary, receiver) = serve(&app.db, &sink.url, &[("AUDIAN_PAYLOAD_KEYS", &current)]);
    let dead = reaches_state(&app, "evt_lost", "sink", "dead").await;
    assert_eq!(
        dead.last_error.as_deref(),
        Some("payload sealed under unknown key `k0`")
    );
    reaches_state(&app, "evt_after", "sink", "delivered").await;
    let logged = receiver
        .wait_for_log("stored payload cannot be opened; not forwarded")
        .await;
    assert_eq!(logged["event_id"], "evt_lost", "{logged}");
    assert_eq!(logged["key_id"], "k0", "{logged}");

    let received = sink.received();
    assert_eq!(received.len(), 1, "only the event that opens: {received:?}");
    assert_eq!(received[0].body, after.as_bytes());
    let output = receiver.to_string();
    for key in [&current, &named_key("k0", 9)] {
        let material = key.split_once(':').unwrap().1;
        assert!(!output.contains(material), "key material in the log");
    }
}

/// Writes an event as a receiver holding `keys` would have: sealed under its first key.
async fn insert_sealed(db: &TestDb, id: &str, body: &str, keys: &PayloadKeys) {
    let sealed = keys.seal(id, body.as_bytes()).unwrap().unwrap();
    let mut conn = db.connect().await;
    sqlx::query(
        "INSERT INTO events (event_id, event_type, payload, payload_sha256, payload_key_id) \
         VALUES ($1, 'job.completed', $2, $3, $4)",
    )
    .bind(id)
    .bind(&sealed.bytes)
    .bind(Sha256::digest(body.as_bytes()).to_vec())
    .bind(sealed.key_id)
    .execute(&mut conn)
    .await
    .unwrap();
}

#[tokio::test]
async fn without_payload_keys_the_payload_is_stored_clear() {
    let app = TestApp::spawn_with_secrets(test_secrets(), |_, _| {}).await;
    let body = typed_event("evt_clear", "job.completed");
    post_ok(&app, &body).await;
    let row = stored(&app.db, "evt_clear").await;
    assert_eq!(row.payload.as_deref(), Some(body.as_bytes()));
    assert_eq!(row.payload_key_id, None);
}
