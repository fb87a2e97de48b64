//! Upgrading a database from the outbox (one `deliveries` row per event and target) to the
//! log with a cursor per target: nothing waiting is lost, nothing delivered is sent again.

use audian_receiver::store::MIGRATOR;
use sqlx::Connection;

use crate::fixtures::TestDb;

/// The last migration of the outbox design.
const OUTBOX_VERSION: i64 = 20261128000002;

#[tokio::test]
async fn pending_and_dead_outbox_rows_become_retry_rows_and_delivered_ones_stay_delivered() {
    // Target b was added after e1: it has no outbox row for it, and must not show one.
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    MIGRATOR.run_to(OUTBOX_VERSION, &mut conn).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO events (event_id, event_type, payload, payload_sha256) VALUES \
           ('e1', 'job.completed', '{}', decode(repeat('00', 32), 'hex')), \
           ('e2', 'job.completed', '{}', decode(repeat('00', 32), 'hex')), \
           ('e3', 'job.completed', '{}', decode(repeat('00', 32), 'hex')); \
         INSERT INTO deliveries (event_id, target, state, attempts, last_error) VALUES \
           ('e1', 'a', 'pending', 2, 'HTTP 503'), \
           ('e2', 'a', 'dead', 20, 'HTTP 404'), \
           ('e3', 'a', 'delivered', 1, NULL), \
           ('e2', 'b', 'delivered', 1, NULL), \
           ('e3', 'b', 'delivered', 1, NULL);",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    MIGRATOR.run(&mut conn).await.unwrap();

    let rows: Vec<(String, String, String, i32, Option<String>)> = sqlx::query_as(
        "SELECT event_id, target, state, attempts, last_error FROM deliveries \
         ORDER BY event_id, target",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let expected = [
        ("e1", "a", "pending", 2, Some("HTTP 503")),
        ("e2", "a", "dead", 20, Some("HTTP 404")),
        ("e2", "b", "delivered", 1, None),
        ("e3", "a", "delivered", 1, None),
        ("e3", "b", "delivered", 1, None),
    ];
    let got: Vec<_> = rows
        .iter()
        .map(|(e, t, s, a, l)| (e.as_str(), t.as_str(), s.as_str(), *a, l.as_deref()))
        .collect();
    assert_eq!(got, expected);

    // Both cursors start at the end of the log: the old events are behind them.
    let ahead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM forward_cursors AS c JOIN events AS e \
         ON (e.txid, e.seq) > (c.txid, c.seq)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        ahead, 0,
        "no old event is ahead of a cursor, so none is sent again"
    );
    let retrying: Vec<String> = sqlx::query_scalar(
        "SELECT event_id FROM forward_retries WHERE state = 'retrying' AND next_attempt_at <= now()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(retrying, ["e1"], "the pending delivery is due, as it was");
    conn.close().await.unwrap();
}
