//! When to try a failed delivery again: exponential backoff with full jitter, never sooner
//! than the target asked (Retry-After), and when to give up.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
}

/// What to do with a delivery after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    RetryIn(Duration),
    Dead,
}

impl RetryPolicy {
    /// `attempts` counts the attempt that just failed (1 for the first).
    pub fn next(
        &self,
        attempts: i32,
        max_attempts: i32,
        retryable: bool,
        retry_after: Option<Duration>,
    ) -> Next {
        if !retryable || attempts >= max_attempts {
            return Next::Dead;
        }
        let ceiling = self.ceiling(attempts);
        // Full jitter: spreads a burst of failures evenly instead of retrying in lockstep.
        let jittered = rand::rng().random_range(Duration::ZERO..=ceiling);
        Next::RetryIn(jittered.max(retry_after.unwrap_or_default().min(self.max)))
    }

    /// min(max, initial × 2^(attempts − 1)).
    pub fn ceiling(&self, attempts: i32) -> Duration {
        let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(10),
    };

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum() {
        assert_eq!(POLICY.ceiling(1), Duration::from_millis(100));
        assert_eq!(POLICY.ceiling(2), Duration::from_millis(200));
        assert_eq!(POLICY.ceiling(5), Duration::from_millis(1600));
        assert_eq!(POLICY.ceiling(40), Duration::from_secs(10));
    }

    #[test]
    fn delays_stay_within_the_ceiling() {
        for _ in 0..1000 {
            match POLICY.next(3, 10, true, None) {
                Next::RetryIn(d) => assert!(d <= Duration::from_millis(400)),
                Next::Dead => panic!("3 of 10 attempts is not dead"),
            }
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let next = POLICY.next(1, 10, true, Some(Duration::from_secs(7)));
        assert_eq!(next, Next::RetryIn(Duration::from_secs(7)));
    }

    #[test]
    fn gives_up_after_max_attempts_or_a_permanent_error() {
        assert_eq!(POLICY.next(10, 10, true, None), Next::Dead);
        assert_eq!(POLICY.next(1, 10, false, None), Next::Dead);
    }
}
