//! The end-of-run summary: totals, throughput and latency percentiles, printed as aligned
//! text or as one JSON object.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Args;
use crate::worker::Tally;

/// Final numbers for one run, printable as text or JSON.
pub(super) struct Summary {
    doc: Value,
    pub(super) accepted: u64,
}

impl Summary {
    pub(super) fn build(args: &Args, mut totals: Tally, elapsed: Duration) -> Self {
        totals.latencies_us.sort_unstable();
        let lat = &totals.latencies_us;
        let responses: u64 = totals.statuses.values().sum();
        let errors: u64 = totals.errors.values().map(|(n, _)| n).sum();
        let accepted = totals.statuses.get(&200).copied().unwrap_or(0);
        let secs = elapsed.as_secs_f64().max(f64::EPSILON);
        let ms = |us: u64| us as f64 / 1000.0;
        let doc = json!({
            "url": args.url,
            "connections": args.connections,
            "body_bytes": args.body_bytes,
            "warmup_sent": totals.warmup_sent,
            "sent": responses + errors,
            "responses": responses,
            "accepted": accepted,
            "status_counts": totals.statuses.iter().map(|(c, n)| (c.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "errors": totals.errors.iter().map(|(k, (n, d))| (k.to_string(), json!({"count": n, "example": d}))).collect::<serde_json::Map<_, _>>(),
            "connections_opened": totals.connects,
            "elapsed_s": secs,
            "accepted_per_s": accepted as f64 / secs,
            "total_per_s": (responses + errors) as f64 / secs,
            "latency_ms": {
                "p50": ms(percentile(lat, 500)),
                "p90": ms(percentile(lat, 900)),
                "p99": ms(percentile(lat, 990)),
                "p99_9": ms(percentile(lat, 999)),
                "max": ms(lat.last().copied().unwrap_or(0)),
            },
        });
        Self { doc, accepted }
    }

    pub(super) fn print(&self, as_json: bool) {
        if as_json {
            println!("{}", self.doc);
            return;
        }
        let d = &self.doc;
        println!("target        {}", d["url"].as_str().unwrap_or_default());
        println!(
            "connections   {} (opened {})",
            d["connections"], d["connections_opened"]
        );
        println!("warmup sent   {} (not counted)", d["warmup_sent"]);
        println!("sent          {}", d["sent"]);
        for (code, n) in d["status_counts"].as_object().into_iter().flatten() {
            println!("  status {code}  {n}");
        }
        for (kind, e) in d["errors"].as_object().into_iter().flatten() {
            println!("  error {kind:<8} {}  (e.g. {})", e["count"], e["example"]);
        }
        let f = |key: &str| d[key].as_f64().unwrap_or(0.0);
        println!("elapsed       {:.3} s", f("elapsed_s"));
        println!("accepted/s    {:.1}", f("accepted_per_s"));
        println!("total/s       {:.1}", f("total_per_s"));
        let l = &d["latency_ms"];
        let g = |key: &str| l[key].as_f64().unwrap_or(0.0);
        println!(
            "latency ms    p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            g("p50"),
            g("p90"),
            g("p99"),
            g("p99_9"),
            g("max")
        );
    }
}

/// Nearest-rank percentile over sorted samples, `per_mille` in 1..=1000 (integer math so
/// p99.9 is exact); 0 when there are none.
fn percentile(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (per_mille * sorted.len()).div_ceil(1000);
    sorted[rank.clamp(1, sorted.len()) - 1]
}
