//! Rotating the payload key with the real binary: put a new key first, run `keys rotate`,
//! then the old key can go — forwarding and `events show` work with the new key alone; a
//! payload under a key no longer configured is reported and left alone; retention and
//! erasure drop the key id with the payload.

use super::{insert_sealed, keys, named_key, serve, stored, with_keys};
use crate::fixtures::{Binary, Run, Sink, TestApp};
use crate::forward::{fast, http_target, post_ok, reaches_state, typed_event};

/// The binary with AUDIAN_PAYLOAD_KEYS = `value` and a configuration for the app's database.
fn operator(app: &TestApp, value: &str) -> (Binary, String) {
    let binary = Binary::new().env("AUDIAN_PAYLOAD_KEYS", value);
    let config = binary.write_config(&format!("[database]\nurl = {:?}\n", app.db.url()));
    (binary, config)
}

async fn rotate(app: &TestApp, value: &str) -> Run {
    let (binary, config) = operator(app, value);
    binary.run(&["keys", "rotate", "--config", &config]).await
}

/// An app that records under `value` with an HTTP target `sink` whose cursor exists from
/// the start, but forwards nothing itself.
async fn recording_only(value: &str, sink: &Sink) -> TestApp {
    let targets = vec![http_target("sink", &sink.url)];
    TestApp::spawn_with_secrets(with_keys(value), |_, s| {
        fast(&mut s.forward, targets);
        s.forward.workers = 0;
    })
    .await
}

#[tokio::test]
async fn keys_rotate_reseals_every_payload_under_the_new_first_key_so_the_old_key_can_go() {
    let sink = Sink::start().await;
    let (old, new) = (named_key("k1", 1), named_key("k2", 2));
    let app = recording_only(&old, &sink).await;
    let bodies: Vec<(String, String)> = (0..4)
        .map(|i| format!("evt_rot_{i}"))
        .map(|id| (id.clone(), typed_event(&id, "job.completed")))
        .collect();
    for (_, body) in &bodies {
        post_ok(&app, body).await;
    }
    // One payload from before keys were set: stored clear.
    let (clear_id, clear_body) = &bodies[3];
    let mut conn = app.db.connect().await;
    sqlx::query("UPDATE events SET payload = $2, payload_key_id = NULL WHERE event_id = $1")
        .bind(clear_id)
        .bind(clear_body.as_bytes())
        .execute(&mut conn)
        .await
        .unwrap();

    let run = rotate(&app, &format!("{new},{old}")).await;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains("re-sealed 4 payloads under key `k2`"),
        "{run}"
    );
    assert!(run.stdout.contains("could not open 0 payloads"), "{run}");
    let again = rotate(&app, &format!("{new},{old}")).await;
    assert!(again.stdout.contains("re-sealed 0 payloads"), "{again}");

    let only_new = keys(&new);
    for (id, body) in &bodies {
        let row = stored(&app.db, id).await;
        assert_eq!(row.payload_key_id.as_deref(), Some("k2"), "{id}");
        let payload = row.payload.expect("the payload is kept");
        let opened = only_new.open(id, Some("k2"), &payload).unwrap();
        assert_eq!(&*opened, body.as_bytes(), "{id}");
    }

    // The old key removed: the new one alone forwards everything, byte for byte.
    let (_binary, receiver) = serve(&app.db, &sink.url, &[("AUDIAN_PAYLOAD_KEYS", &new)]);
    for (id, _) in &bodies {
        reaches_state(&app, id, "sink", "delivered").await;
    }
    let mut got: Vec<_> = sink
        .received()
        .into_iter()
        .map(|r| (r.event_id(), r.body.to_vec()))
        .collect();
    got.sort();
    let expected: Vec<_> = bodies
        .iter()
        .map(|(id, body)| (id.clone(), body.as_bytes().to_vec()))
        .collect();
    assert_eq!(got, expected, "{receiver}");

    let (binary, config) = operator(&app, &new);
    let show = binary
        .run(&["events", "show", "evt_rot_0", "--config", &config])
        .await;
    assert_eq!(show.code, Some(0), "{show}");
    let line = format!("{} bytes, sha256 ", bodies[0].1.len());
    assert!(show.stdout.contains(&line), "{show}");
    assert!(show.stdout.contains("sealed under key `k2`"), "{show}");
}

#[tokio::test]
async fn keys_rotate_reports_and_leaves_a_payload_under_an_unknown_key_and_exits_1() {
    let sink = Sink::start().await;
    let current = named_key("k1", 1);
    let app = recording_only(&current, &sink).await;
    post_ok(&app, &typed_event("evt_known", "job.completed")).await;
    let lost = typed_event("evt_orphan", "job.completed");
    insert_sealed(&app.db, "evt_orphan", &lost, &keys(&named_key("k0", 9))).await;
    let before = stored(&app.db, "evt_orphan").await.payload;

    let run = rotate(&app, &format!("{},{current}", named_key("k2", 2))).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains("re-sealed 1 payloads under key `k2`"),
        "{run}"
    );
    assert!(run.stdout.contains("could not open 1 payloads"), "{run}");
    assert!(
        run.stdout.contains("1 sealed under unknown key `k0`"),
        "{run}"
    );
    let after = stored(&app.db, "evt_orphan").await;
    assert_eq!(after.payload, before, "left as it was");
    assert_eq!(after.payload_key_id.as_deref(), Some("k0"));
    assert_eq!(
        stored(&app.db, "evt_known").await.payload_key_id.as_deref(),
        Some("k2")
    );

    let (binary, config) = operator(&app, &current);
    let show = binary
        .run(&["events", "show", "evt_orphan", "--config", &config])
        .await;
    assert_eq!(show.code, Some(0), "{show}");
    assert!(
        show.stdout
            .contains("cannot be opened here (payload sealed under unknown key `k0`)"),
        "{show}"
    );
}

#[tokio::test]
async fn keys_rotate_without_payload_keys_exits_2_naming_the_variable() {
    let sink = Sink::start().await;
    let app = recording_only(&named_key("k1", 1), &sink).await;
    let binary = Binary::new();
    let config = binary.write_config(&format!("[database]\nurl = {:?}\n", app.db.url()));
    let run = binary.run(&["keys", "rotate", "--config", &config]).await;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("AUDIAN_PAYLOAD_KEYS"), "{run}");
}

#[tokio::test]
async fn retention_and_erasure_drop_the_key_id_with_the_payload() {
    let sink = Sink::start().await;
    let current = named_key("k1", 1);
    let targets = vec![http_target("sink", &sink.url)];
    let app =
        TestApp::spawn_with_secrets(with_keys(&current), |_, s| fast(&mut s.forward, targets))
            .await;
    for id in ["evt_old", "evt_erased"] {
        post_ok(&app, &typed_event(id, "job.completed")).await;
        reaches_state(&app, id, "sink", "delivered").await;
    }
    let mut conn = app.db.connect().await;
    sqlx::query(
        "UPDATE events SET received_at = now() - interval '8 days' WHERE event_id = 'evt_old'",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let (binary, config) = operator(&app, &current);
    let purge = binary.run(&["purge", "--config", &config]).await;
    assert!(purge.stdout.contains("dropped 1 payloads"), "{purge}");
    let forget = binary
        .run(&["events", "forget", "evt_erased", "--config", &config])
        .await;
    assert_eq!(forget.code, Some(0), "{forget}");
    for id in ["evt_old", "evt_erased"] {
        let row = stored(&app.db, id).await;
        assert_eq!(row.payload, None, "{id}");
        assert_eq!(row.payload_key_id, None, "{id}");
    }
}
