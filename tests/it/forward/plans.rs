//! The forwarder's log read must stay an ordered walk of the log index that stops after a
//! batch, whatever lies after the cursor: a plan that fetches and sorts everything after
//! it would make each batch cost as much as the whole backlog.

use audian_receiver::store::forwarding::READ_AFTER;
use sqlx::AssertSqlSafe;

use crate::fixtures::TestApp;

#[tokio::test]
async fn reading_the_log_walks_its_index_in_order_and_never_sorts_the_backlog() {
    let app = TestApp::spawn().await;
    let mut conn = app.db.connect().await;
    // A backlog large enough for the planner to weigh a bitmap scan and a sort against it.
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
    sqlx::query(AssertSqlSafe(format!("PREPARE read_after AS {READ_AFTER}")))
        .execute(&mut conn)
        .await
        .unwrap();
    // The plan a prepared statement settles on (generic) and the one for actual values,
    // from the start of the log and from a held batch's bounds.
    for mode in ["force_generic_plan", "force_custom_plan"] {
        sqlx::query(AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
            .execute(&mut conn)
            .await
            .unwrap();
        for args in ["0, 0, NULL, NULL, 256", "0, 0, 999999999, 999999999, 256"] {
            let lines: Vec<String> =
                sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN EXECUTE read_after({args})")))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            let plan = lines.join("\n");
            assert!(
                plan.contains("Index Scan using events_log_idx on events"),
                "{mode} ({args}): not a walk of the log index:\n{plan}"
            );
            for slow in ["Sort", "Bitmap Heap Scan", "Gather"] {
                assert!(!plan.contains(slow), "{mode} ({args}): {slow} in\n{plan}");
            }
        }
    }
}
