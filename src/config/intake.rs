//! `[intake]`: what a verified body must be beyond its envelope — I-JSON to a bounded depth,
//! and not older than the window in which a replay would still be caught as a duplicate.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeSettings {
    /// Arrays and objects open at once in a body (the top-level object is 1).
    pub max_depth: usize,
    /// The top-level field holding the event's signed timestamp (RFC 3339 or Unix seconds).
    pub timestamp_field: String,
    /// Events whose timestamp is older than this are refused (`stale_event`). Unset: the
    /// dedup window, `retention.dedup_days`. `"off"`: never refused for age.
    pub max_event_age: Option<Age>,
    /// Refuse events without a readable timestamp instead of counting them.
    pub require_timestamp: bool,
    /// A timestamp further than this in the future is accepted but logged.
    pub max_clock_skew: Age,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            max_depth: 64,
            timestamp_field: "created_at".to_owned(),
            max_event_age: None,
            require_timestamp: false,
            max_clock_skew: Age::Limit(Duration::from_secs(300)),
        }
    }
}

impl IntakeSettings {
    /// The age past which an event is stale, if any, given the dedup window in days.
    pub fn event_age_limit(&self, dedup_days: u32) -> Option<Duration> {
        match self.max_event_age {
            None => Some(Duration::from_secs(u64::from(dedup_days) * DAY)),
            Some(Age::Limit(limit)) => Some(limit),
            Some(Age::Off) => None,
        }
    }

    pub fn clock_skew(&self) -> Duration {
        match self.max_clock_skew {
            Age::Limit(limit) => limit,
            Age::Off => Duration::MAX,
        }
    }

    pub(super) fn check(&self, dedup_days: u32, problems: &mut Vec<String>) {
        if !(1..=MAX_DEPTH).contains(&self.max_depth) {
            problems.push(format!(
                "intake.max_depth must be between 1 and {MAX_DEPTH} (got {})",
                self.max_depth
            ));
        }
        if self.timestamp_field.is_empty() {
            problems.push("intake.timestamp_field must not be empty".to_owned());
        }
        if self.max_event_age == Some(Age::Limit(Duration::ZERO)) {
            problems.push(
                "intake.max_event_age must be greater than 0 (or \"off\" to accept any age)"
                    .to_owned(),
            );
        }
        if let Some(limit) = self.event_age_limit(dedup_days)
            && limit > Duration::from_secs(u64::from(dedup_days) * DAY)
        {
            problems.push(format!(
                "intake.max_event_age ({}) is longer than retention.dedup_days ({dedup_days} d): \
                 a replay older than the dedup window would be accepted again; raise \
                 retention.dedup_days or shorten intake.max_event_age",
                Age::Limit(limit)
            ));
        }
    }
}

const DAY: u64 = 86_400;
/// serde_json's own recursion limit is 128; deeper than that no consumer copes anyway.
const MAX_DEPTH: usize = 128;

/// A duration in the configuration: `"30d"`, `"12h"`, `"5m"`, `"90s"`, a number of seconds,
/// or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    Limit(Duration),
    Off,
}

impl Age {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let scale = match unit.trim() {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => DAY,
            _ => {
                return Err(format!(
                    "{text:?}: expected e.g. \"30d\", \"12h\", \"5m\", \"90s\" or \"off\""
                ));
            }
        };
        let count: u64 = digits
            .parse()
            .map_err(|_| format!("{text:?}: expected a whole number before the unit"))?;
        count
            .checked_mul(scale)
            .map(|secs| Self::Limit(Duration::from_secs(secs)))
            .ok_or_else(|| format!("{text:?} is too long"))
    }
}

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Limit(limit) => write!(f, "{}s", limit.as_secs()),
        }
    }
}

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Seconds(u64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Seconds(secs) => Ok(Self::Limit(Duration::from_secs(secs))),
            Written::Text(text) => Self::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Age {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_read_with_their_units() {
        let secs = |s: u64| Ok(Age::Limit(Duration::from_secs(s)));
        assert_eq!(Age::parse("30d"), secs(30 * DAY));
        assert_eq!(Age::parse("12h"), secs(12 * 3_600));
        assert_eq!(Age::parse("5m"), secs(300));
        assert_eq!(Age::parse("90s"), secs(90));
        assert_eq!(Age::parse("90"), secs(90));
        assert_eq!(Age::parse("OFF"), Ok(Age::Off));
        assert!(Age::parse("5 weeks").is_err());
        assert!(Age::parse("d").is_err());
    }

    #[test]
    fn the_default_age_limit_is_the_dedup_window() {
        let settings = IntakeSettings::default();
        assert_eq!(
            settings.event_age_limit(30),
            Some(Duration::from_secs(30 * DAY))
        );
        let mut problems = Vec::new();
        settings.check(30, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn an_age_limit_beyond_the_dedup_window_is_refused() {
        let settings = IntakeSettings {
            max_event_age: Some(Age::Limit(Duration::from_secs(31 * DAY))),
            ..IntakeSettings::default()
        };
        let mut problems = Vec::new();
        settings.check(30, &mut problems);
        assert!(problems[0].contains("intake.max_event_age"), "{problems:?}");
    }
}
