//! Stale events refused: a signed event older than `intake.max_event_age` is a replay (or a
//! lost retry) that the dedup window may no longer catch, since its id could have been
//! purged. The age limit defaults to the dedup window, so the two windows meet.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use super::payload::Timestamp;
use super::refusal::Refusal;
use crate::config::{IntakeSettings, RetentionSettings};
use crate::telemetry::Metrics;

/// At most one "from the future" log line per this many seconds.
const SKEW_LOG_EVERY_SECS: i64 = 60;

#[derive(Clone)]
pub struct Freshness {
    max_age: Option<Duration>,
    max_skew: Duration,
    require: bool,
    metrics: Arc<Metrics>,
    /// Unix second of the last "from the future" log line.
    skew_logged: Arc<AtomicI64>,
}

impl Freshness {
    pub fn new(
        intake: &IntakeSettings,
        retention: &RetentionSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            max_age: intake.event_age_limit(retention.dedup_days),
            max_skew: intake.clock_skew(),
            require: intake.require_timestamp,
            metrics,
            skew_logged: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    /// Refuses a stale event, or one without a readable timestamp when one is required;
    /// counts those without one otherwise.
    pub fn check(&self, timestamp: Timestamp, now: OffsetDateTime) -> Result<(), Refusal> {
        let at = match timestamp {
            Timestamp::At(at) => at,
            Timestamp::Missing if self.require => return Err(Refusal::MissingTimestamp),
            Timestamp::Unreadable if self.require => return Err(Refusal::InvalidTimestamp),
            Timestamp::Missing => return self.count_without("missing"),
            Timestamp::Unreadable => return self.count_without("unreadable"),
        };
        let age = now - at;
        if let Some(max_age) = self.max_age
            && age > max_age
        {
            return Err(Refusal::StaleEvent);
        }
        if -age > self.max_skew {
            self.log_skew(now, -age);
        }
        Ok(())
    }

    fn count_without(&self, why: &'static str) -> Result<(), Refusal> {
        self.metrics.count_without_timestamp(why);
        Ok(())
    }

    fn log_skew(&self, now: OffsetDateTime, ahead: time::Duration) {
        let second = now.unix_timestamp();
        let last = self.skew_logged.load(Ordering::Relaxed);
        if second.saturating_sub(last) >= SKEW_LOG_EVERY_SECS
            && self
                .skew_logged
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                ahead_s = ahead.whole_seconds(),
                max_clock_skew_s = self.max_skew.as_secs(),
                "an event's timestamp is ahead of this clock by more than intake.max_clock_skew: \
                 accepted; check this host's clock (logged at most once a minute)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Age;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-07 12:00:00 UTC);

    fn freshness(adjust: impl FnOnce(&mut IntakeSettings)) -> Freshness {
        let mut intake = IntakeSettings::default();
        adjust(&mut intake);
        Freshness::new(&intake, &RetentionSettings::default(), Metrics::new())
    }

    #[test]
    fn an_event_older_than_the_dedup_window_is_stale() {
        let check = freshness(|_| {});
        let old = Timestamp::At(NOW - time::Duration::days(30) - time::Duration::seconds(1));
        assert_eq!(check.check(old, NOW), Err(Refusal::StaleEvent));
        let inside = Timestamp::At(NOW - time::Duration::days(30) + time::Duration::seconds(1));
        assert_eq!(check.check(inside, NOW), Ok(()));
    }

    #[test]
    fn an_event_without_a_timestamp_passes_unless_one_is_required() {
        assert_eq!(freshness(|_| {}).check(Timestamp::Missing, NOW), Ok(()));
        assert_eq!(freshness(|_| {}).check(Timestamp::Unreadable, NOW), Ok(()));
        let strict = freshness(|i| i.require_timestamp = true);
        assert_eq!(
            strict.check(Timestamp::Missing, NOW),
            Err(Refusal::MissingTimestamp)
        );
        assert_eq!(
            strict.check(Timestamp::Unreadable, NOW),
            Err(Refusal::InvalidTimestamp)
        );
    }

    #[test]
    fn an_event_from_the_future_is_accepted() {
        let ahead = Timestamp::At(NOW + time::Duration::hours(2));
        assert_eq!(freshness(|_| {}).check(ahead, NOW), Ok(()));
    }

    #[test]
    fn an_age_limit_of_off_accepts_any_age() {
        let check = freshness(|i| i.max_event_age = Some(Age::Off));
        let ancient = Timestamp::At(datetime!(2019-01-01 0:00 UTC));
        assert_eq!(check.check(ancient, NOW), Ok(()));
    }
}
