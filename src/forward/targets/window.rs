//! How many requests a target gets at once: up to its `max_in_flight`, halved whenever it
//! shows it is swamped (a connection not accepted in time or refused, 429, 503) and grown
//! back by one per window of successes (additive increase, multiplicative decrease). A
//! downstream with a small accept backlog thus settles at what it can take instead of
//! having SYNs dropped and connections time out.

use std::sync::Mutex;

use tokio::sync::Notify;

pub struct Window {
    max: usize,
    state: Mutex<State>,
    freed: Notify,
}

struct State {
    limit: f64,
    active: usize,
}

/// One request's place in the window; gives it back when dropped.
pub struct Slot<'a> {
    window: &'a Window,
}

/// What an attempt said about the target's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Answered: room for a little more.
    Fine,
    /// Swamped or unreachable: back off.
    Overloaded,
    /// Says nothing about capacity (a 4xx, a bad request).
    Neutral,
}

impl Window {
    pub fn new(max: usize) -> Window {
        let max = max.max(1);
        Window {
            max,
            state: Mutex::new(State {
                limit: max as f64,
                active: 0,
            }),
            freed: Notify::new(),
        }
    }

    /// Waits for a place within the current limit.
    pub async fn enter(&self) -> Slot<'_> {
        loop {
            // Registered before the check, so a place freed in between is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut state = self.state.lock().unwrap();
                if state.active < state.limit as usize {
                    state.active += 1;
                    return Slot { window: self };
                }
            }
            freed.await;
        }
    }

    /// Adjusts the limit after an attempt.
    pub fn record(&self, signal: Signal) {
        let mut state = self.state.lock().unwrap();
        state.limit = match signal {
            Signal::Fine => (state.limit + 1.0 / state.limit).min(self.max as f64),
            Signal::Overloaded => (state.limit / 2.0).max(1.0),
            Signal::Neutral => state.limit,
        };
        drop(state);
        self.freed.notify_waiters();
    }

    #[cfg(test)]
    fn limit(&self) -> usize {
        self.state.lock().unwrap().limit as usize
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.window.state.lock().unwrap().active -= 1;
        self.window.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::{Signal, Window};

    #[test]
    fn halves_when_overloaded_and_grows_back_one_per_window_of_successes() {
        let window = Window::new(16);
        window.record(Signal::Overloaded);
        assert_eq!(window.limit(), 8);
        for _ in 0..10 {
            window.record(Signal::Overloaded);
        }
        assert_eq!(window.limit(), 1, "never below one");
        for _ in 0..3 {
            window.record(Signal::Fine);
        }
        assert!(window.limit() >= 2, "grows back with successes");
        for _ in 0..1_000 {
            window.record(Signal::Fine);
        }
        assert_eq!(window.limit(), 16, "never above max_in_flight");
    }

    #[tokio::test]
    async fn admits_no_more_than_the_limit_at_once() {
        let window = Window::new(2);
        let first = window.enter().await;
        let _second = window.enter().await;
        let third =
            tokio::time::timeout(std::time::Duration::from_millis(50), window.enter()).await;
        assert!(third.is_err(), "a third request waits");
        drop(first);
        let third = tokio::time::timeout(std::time::Duration::from_secs(5), window.enter()).await;
        assert!(third.is_ok(), "and enters once one leaves");
    }
}
