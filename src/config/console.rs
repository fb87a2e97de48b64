//! `[console]`: the operator's pages on the admin listener, on only when
//! `AUDIAN_CONSOLE_TOKEN` (or its `_FILE`) is set.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// How long a login lasts.
    pub session_minutes: u64,
    /// Show everything, act on nothing: no replay, no forget.
    pub read_only: bool,
    /// Show stored payloads on the event page (they are customer data: off by default).
    pub show_payloads: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            session_minutes: 60,
            read_only: false,
            show_payloads: false,
        }
    }
}

impl ConsoleSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if !(1..=24 * 60).contains(&self.session_minutes) {
            problems.push(format!(
                "console.session_minutes must be between 1 and 1440 (got {})",
                self.session_minutes
            ));
        }
    }
}
