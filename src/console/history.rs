//! The last hour as the overview charts it, kept in memory from the metrics themselves: a
//! sample per minute of each target's backlog and delivered count, the intake outcomes and
//! the previous key's matches. A ring buffer, no table: a restart starts a fresh hour.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::telemetry::{DeliveryLabels, KeyLabel, Metrics, OutcomeLabel, TargetLabel};

/// Minutes kept: an hour, plus the sample the first minute's rate is taken against.
const MINUTES: usize = 61;
/// How often the current minute's sample is refreshed.
const EVERY: Duration = Duration::from_secs(10);

/// The request outcomes the overview reports (accepted first; the rest are refusals).
pub const OUTCOMES: [&str; 17] = [
    "accepted",
    "duplicate",
    "invalid_signature",
    "payload_too_large",
    "unsupported_media_type",
    "invalid_payload",
    "invalid_utf8",
    "lone_surrogate",
    "duplicate_member",
    "too_deep",
    "stale_event",
    "missing_timestamp",
    "invalid_timestamp",
    "invalid_request",
    "body_timeout",
    "unavailable",
    "overloaded",
];

/// The counters and gauges as they stood at one minute's end.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Minutes since the Unix epoch.
    pub minute: u64,
    /// Per target: the backlog gauge, and the delivered counter (cumulative).
    pub targets: HashMap<String, (i64, u64)>,
    /// Per outcome, cumulative.
    pub requests: HashMap<&'static str, u64>,
    /// Signatures that matched the previous secret, cumulative.
    pub previous_matches: u64,
}

#[derive(Clone)]
pub struct History {
    samples: Arc<Mutex<VecDeque<Sample>>>,
    metrics: Arc<Metrics>,
    targets: Arc<[String]>,
}

impl History {
    pub fn new(metrics: Arc<Metrics>, targets: Vec<String>) -> Self {
        Self {
            samples: Arc::default(),
            metrics,
            targets: targets.into(),
        }
    }

    /// Samples every ten seconds until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => self.record(now_minute()),
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Takes a sample now as the sample of `minute`, unless that minute has one already:
    /// each minute keeps its first, so consecutive samples differ by a minute's work.
    pub fn record(&self, minute: u64) {
        let mut samples = self.samples.lock().expect("history lock");
        if samples.back().is_some_and(|last| last.minute == minute) {
            return;
        }
        samples.push_back(self.sample(minute));
        while samples.len() > MINUTES {
            samples.pop_front();
        }
    }

    fn sample(&self, minute: u64) -> Sample {
        let m = &self.metrics;
        let targets = self
            .targets
            .iter()
            .map(|target| {
                let backlog = m.pending.get_or_create(&TargetLabel::new(target)).get();
                let delivered = m
                    .deliveries
                    .get_or_create(&DeliveryLabels {
                        target: target.clone(),
                        outcome: "delivered",
                    })
                    .get();
                (target.clone(), (backlog, delivered))
            })
            .collect();
        let requests = OUTCOMES
            .iter()
            .map(|&outcome| {
                (
                    outcome,
                    m.requests.get_or_create(&OutcomeLabel { outcome }).get(),
                )
            })
            .collect();
        let previous_matches = m
            .signature_matches
            .get_or_create(&KeyLabel { key: "previous" })
            .get();
        Sample {
            minute,
            targets,
            requests,
            previous_matches,
        }
    }

    /// The samples of the last hour, oldest first: each minute's first, then one taken now
    /// (so a page shows what happened since the minute began, and since a start).
    pub fn samples(&self) -> Vec<Sample> {
        let mut samples: Vec<Sample> = self
            .samples
            .lock()
            .expect("history lock")
            .iter()
            .cloned()
            .collect();
        samples.push(self.sample(now_minute()));
        samples
    }
}

pub fn now_minute() -> u64 {
    (time::OffsetDateTime::now_utc().unix_timestamp() / 60) as u64
}

/// What the overview draws and counts for one target over the samples given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetSeries {
    /// Backlog at each minute.
    pub backlog: Vec<i64>,
    /// Deliveries in each minute.
    pub delivered: Vec<u64>,
    /// Deliveries in the last five minutes.
    pub delivered_5m: u64,
}

pub fn target_series(samples: &[Sample], target: &str) -> TargetSeries {
    let points: Vec<(i64, u64)> = samples
        .iter()
        .map(|s| s.targets.get(target).copied().unwrap_or_default())
        .collect();
    let delivered: Vec<u64> = points
        .windows(2)
        .map(|pair| pair[1].1.saturating_sub(pair[0].1))
        .collect();
    let delivered_5m = match (points.len().checked_sub(6), points.last()) {
        (Some(start), Some(last)) => last.1.saturating_sub(points[start].1),
        (None, Some(last)) => last.1.saturating_sub(points[0].1),
        _ => 0,
    };
    TargetSeries {
        backlog: points.iter().map(|p| p.0).collect(),
        delivered,
        delivered_5m,
    }
}

/// Per outcome, how many in the span the samples cover, and that span in minutes.
pub fn outcome_totals(samples: &[Sample]) -> (Vec<(&'static str, u64)>, u64) {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return (Vec::new(), 0);
    };
    let totals = OUTCOMES
        .iter()
        .map(|&o| {
            let delta = last.requests.get(o).copied().unwrap_or(0);
            (
                o,
                delta.saturating_sub(first.requests.get(o).copied().unwrap_or(0)),
            )
        })
        .collect();
    (totals, last.minute.saturating_sub(first.minute))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(minute: u64, backlog: i64, delivered: u64) -> Sample {
        Sample {
            minute,
            targets: HashMap::from([("t".to_owned(), (backlog, delivered))]),
            ..Sample::default()
        }
    }

    #[test]
    fn delivered_per_minute_is_the_counters_difference() {
        let samples: Vec<Sample> = (0..8).map(|m| sample(m, 10 - m as i64, m * 3)).collect();
        let series = target_series(&samples, "t");
        assert_eq!(series.delivered, vec![3; 7]);
        assert_eq!(series.delivered_5m, 15);
        assert_eq!(series.backlog.first(), Some(&10));
    }

    #[test]
    fn the_ring_keeps_an_hour_and_one_sample_per_minute() {
        let history = History::new(Metrics::new(), vec!["t".to_owned()]);
        for minute in 0..100 {
            history.record(minute);
            history.record(minute);
        }
        let samples = history.samples();
        // The hour kept, and the sample taken now.
        assert_eq!(samples.len(), MINUTES + 1);
        assert_eq!(samples[MINUTES - 1].minute, 99);
    }
}
