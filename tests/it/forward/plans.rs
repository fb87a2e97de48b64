//! The forwarder's reads of the log must stay walks of the log index that touch only what
//! they return or count: a plan that scans or sorts the whole table would make each batch,
//! or each gauge refresh, cost as much as every event ever stored.

use audian_receiver::store::forwarding::{BEHIND_CURSOR, READ_AFTER};
use sqlx::{AssertSqlSafe, PgConnection};

use crate::fixtures::TestApp;

/// What a plan must not contain: a sort, a bitmap or sequential scan, parallel workers.
const WHOLE_TABLE: [&str; 4] = ["Sort", "Bitmap Heap Scan", "Seq Scan", "Gather"];

#[tokio::test]
async fn reading_the_log_and_counting_a_backlog_walk_the_log_index_only() {
    let app = TestApp::spawn().await;
    let mut conn = app.db.connect().await;
    // A log large enough for the planner to weigh scans and sorts against it.
    sqlx::query(
        "INSERT INTO events (event_id, event_type, payload, payload_sha256) \
         SELECT 'evt_plan_' || i, 'job.completed', '\\x00', sha256(i::text::bytea) \
         FROM generate_series(1, 50000) AS i",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("ANALYZE events")
        .execute(&mut conn)
        .await
        .unwrap();
    for (name, statement) in [("read_after", READ_AFTER), ("behind", BEHIND_CURSOR)] {
        let prepare = format!("PREPARE {name} AS {statement}");
        sqlx::query(AssertSqlSafe(prepare))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let (txid, seq): (i64, i64) =
        sqlx::query_as("SELECT max(txid)::text::bigint, max(seq) FROM events")
            .fetch_one(&mut conn)
            .await
            .unwrap();

    // A batch from the start of the log, and a held batch's bounds: the plan a prepared
    // statement settles on (generic) and the one for the actual values.
    for mode in ["force_generic_plan", "force_custom_plan"] {
        for args in ["0, 0, NULL, NULL, 256", "0, 0, 999999999, 999999999, 256"] {
            let plan = plan(&mut conn, mode, &format!("read_after({args})")).await;
            assert_walks_the_log_index(&plan, &format!("{mode} read_after({args})"));
        }
    }
    // The gauge's count ahead of a cursor that keeps up (at the end of the log), with the
    // cursor's values, as the gauge task sends them.
    let behind = format!("behind({txid}, {seq}, '.*')");
    let plan = plan(&mut conn, "auto", &behind).await;
    assert_walks_the_log_index(&plan, &behind);
}

async fn plan(conn: &mut PgConnection, mode: &str, execute: &str) -> String {
    sqlx::query(AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
        .execute(&mut *conn)
        .await
        .unwrap();
    let lines: Vec<String> =
        sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN EXECUTE {execute}")))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    lines.join("\n")
}

fn assert_walks_the_log_index(plan: &str, what: &str) {
    assert!(
        plan.contains("Index Scan using events_log_idx on events"),
        "{what}: not a walk of the log index:\n{plan}"
    );
    for slow in WHOLE_TABLE {
        assert!(!plan.contains(slow), "{what}: {slow} in\n{plan}");
    }
}
