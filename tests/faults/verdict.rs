//! What a run must prove, and the figures it prints: every acknowledged id reached every
//! target (HTTP, JetStream, Kafka), nothing that was not sent appeared anywhere, one row per id, no duplicate in
//! JetStream.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::jetstream::Stream;
use crate::sender::Ledger;

pub struct Row {
    name: &'static str,
    sent: usize,
    acked: usize,
    retries: usize,
    http_deliveries: u32,
    http_duplicates: u32,
    nats_stored: u64,
    kafka_records: u32,
    kafka_duplicates: u32,
    recovery: Duration,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
            self.name,
            self.sent,
            self.acked,
            self.retries,
            self.http_deliveries,
            self.http_duplicates,
            self.nats_stored,
            self.kafka_records,
            self.kafka_duplicates,
            self.recovery.as_secs_f64()
        )
    }
}

pub fn table(rows: &[Row]) -> String {
    let mut text = String::from(
        "| fault | sent | acknowledged | sender retries | http deliveries | http duplicates | \
         JetStream messages | Kafka records | Kafka duplicates | fault end → backlog empty |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        text.push_str(&format!("{row}\n"));
    }
    text
}

pub async fn check(
    name: &'static str,
    ledger: &Ledger,
    http: &HashMap<String, u32>,
    stream: &Stream,
    kafka: &HashMap<String, u32>,
    database_url: &str,
    recovery: Duration,
) -> Result<Row, String> {
    let sent = ledger.sent.lock().unwrap().clone();
    let acked = ledger.acked.lock().unwrap().clone();
    let nats = stream.stored();
    let stored_count = stream.message_count().await;
    let rows = event_ids(database_url).await;
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    let lost = |at: &dyn Fn(&String) -> bool| acked.iter().filter(|id| !at(id)).count();
    let invented =
        |ids: &mut dyn Iterator<Item = &String>| ids.filter(|id| !sent.contains(*id)).count();

    let row_ids: HashSet<&String> = rows.iter().collect();
    expect(
        rows.len() == row_ids.len(),
        format!("events holds {} rows for {} ids", rows.len(), row_ids.len()),
    );
    expect(
        lost(&|id| row_ids.contains(id)) == 0,
        format!(
            "{} acknowledged ids have no row",
            lost(&|id| row_ids.contains(id))
        ),
    );
    expect(
        lost(&|id| http.contains_key(id)) == 0,
        format!(
            "{} acknowledged ids never reached the HTTP target",
            lost(&|id| http.contains_key(id))
        ),
    );
    expect(
        lost(&|id| nats.contains_key(id)) == 0,
        format!(
            "{} acknowledged ids never reached JetStream",
            lost(&|id| nats.contains_key(id))
        ),
    );
    expect(
        lost(&|id| kafka.contains_key(id)) == 0,
        format!(
            "{} acknowledged ids never reached Kafka",
            lost(&|id| kafka.contains_key(id))
        ),
    );
    for (place, count) in [
        ("events", invented(&mut rows.iter())),
        ("the HTTP target", invented(&mut http.keys())),
        ("JetStream", invented(&mut nats.keys())),
        ("Kafka", invented(&mut kafka.keys())),
    ] {
        expect(
            count == 0,
            format!("{count} ids that were never sent appeared in {place}"),
        );
    }
    let nats_repeats: u32 = nats.values().map(|n| n - 1).sum();
    expect(
        nats_repeats == 0,
        format!("JetStream stored {nats_repeats} duplicate messages despite Nats-Msg-Id"),
    );
    expect(
        stored_count == nats.len() as u64,
        format!(
            "JetStream holds {stored_count} messages for {} ids",
            nats.len()
        ),
    );

    if !problems.is_empty() {
        return Err(format!("  - {}", problems.join("\n  - ")));
    }
    let http_deliveries: u32 = http.values().sum();
    let kafka_records: u32 = kafka.values().sum();
    Ok(Row {
        name,
        sent: sent.len(),
        acked: acked.len(),
        retries: ledger.retries.load(std::sync::atomic::Ordering::Relaxed),
        http_deliveries,
        http_duplicates: http_deliveries - http.len() as u32,
        nats_stored: stored_count,
        kafka_records,
        kafka_duplicates: kafka_records - kafka.len() as u32,
        recovery,
    })
}

async fn event_ids(url: &str) -> Vec<String> {
    let mut conn = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the suite's database: {e}"));
    sqlx::query_scalar("SELECT event_id FROM events")
        .fetch_all(&mut conn)
        .await
        .expect("reading the events table")
}
