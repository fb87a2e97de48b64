//! One `[[forward.targets]]` entry: where to forward, which event types, and the checks that
//! make a bad target stop start-up with a message naming the target and the key.

use serde::{Deserialize, Serialize};

use super::SecretUrl;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Http,
    Nats,
    Amqp,
    Redis,
}

/// A forward target as configured. Kind-specific keys are checked by [`TargetSettings::check`]
/// so that an error can say "target `jobs` (nats) needs `subject`".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    pub name: String,
    pub kind: TargetKind,
    /// Globs over the event type (`*` any run of characters, `?` one); default: all.
    #[serde(default = "all_types")]
    pub event_types: Vec<String>,
    /// Overrides `forward.max_attempts` for this target.
    pub max_attempts: Option<i32>,
    pub url: Option<SecretUrl>,
    /// HTTP request timeout.
    pub timeout_ms: Option<u64>,
    /// HTTP requests outstanding at once (default 16): a downstream with a small accept
    /// backlog is not flooded with connections.
    pub max_in_flight: Option<usize>,
    /// NATS subject template; `{type}` is replaced by the event type.
    pub subject: Option<String>,
    /// AMQP exchange (declared as a durable topic exchange when missing).
    pub exchange: Option<String>,
    /// AMQP routing-key template; `{type}` is replaced by the event type.
    pub routing_key: Option<String>,
    /// Redis stream key.
    pub stream: Option<String>,
}

fn all_types() -> Vec<String> {
    vec!["*".to_owned()]
}

impl TargetSettings {
    /// Whether events of this type are forwarded to this target.
    pub fn accepts(&self, event_type: &str) -> bool {
        self.event_types
            .iter()
            .any(|glob| glob_matches(glob, event_type))
    }

    /// The event types this target takes, as one anchored Postgres regular expression (for
    /// the operator's view of deliveries, which runs in SQL).
    pub fn type_pattern(&self) -> String {
        let globs: Vec<String> = self
            .event_types
            .iter()
            .map(|glob| {
                glob.chars()
                    .map(|c| match c {
                        '*' => ".*".to_owned(),
                        '?' => ".".to_owned(),
                        c if c.is_ascii_punctuation() => format!("\\{c}"),
                        c => c.to_string(),
                    })
                    .collect()
            })
            .collect();
        format!("^({})$", globs.join("|"))
    }

    pub(super) fn check(&self, index: usize, problems: &mut Vec<String>) {
        let before = problems.len();
        let label = if self.name.is_empty() {
            format!("forward.targets[{index}]")
        } else {
            format!(
                "forward.targets[{index}] (`{}`, {:?})",
                self.name, self.kind
            )
        };
        if self.name.is_empty() || self.name.len() > 100 {
            problems.push(format!("{label}: `name` must be 1 to 100 characters"));
        }
        if self.event_types.is_empty() {
            problems.push(format!(
                "{label}: `event_types` is empty, so nothing would match"
            ));
        }
        if self.max_attempts.is_some_and(|n| n <= 0) {
            problems.push(format!("{label}: `max_attempts` must be > 0"));
        }
        if self.max_in_flight == Some(0) {
            problems.push(format!("{label}: `max_in_flight` must be > 0"));
        }
        let (required, allowed) = self.keys_for_kind();
        for (key, present) in self.kind_keys() {
            if required.contains(&key) && !present {
                problems.push(format!("{label}: missing `{key}`"));
            } else if present && !required.contains(&key) && !allowed.contains(&key) {
                problems.push(format!(
                    "{label}: `{key}` does not apply to kind {:?}",
                    self.kind
                ));
            }
        }
        if let Some(url) = &self.url {
            let expected: &[&str] = match self.kind {
                TargetKind::Http => &["http://", "https://"],
                TargetKind::Nats => &["nats://", "tls://"],
                TargetKind::Amqp => &["amqp://", "amqps://"],
                TargetKind::Redis => &["redis://", "rediss://"],
            };
            if !expected
                .iter()
                .any(|scheme| url.expose().starts_with(scheme))
            {
                problems.push(format!(
                    "{label}: `url` must start with one of {expected:?} (got {url})"
                ));
            }
        }
        for (key, template) in [
            ("subject", &self.subject),
            ("routing_key", &self.routing_key),
        ] {
            if let Some(Err(e)) = template.as_deref().map(crate::forward::validate_template) {
                problems.push(format!("{label}: `{key}`: {e}"));
            }
        }
        // The target's own checks (URL syntax, names); it connects to nothing here.
        if problems.len() == before
            && let Err(e) = crate::forward::build_target(self)
        {
            problems.push(format!("{label}: {e}"));
        }
    }

    fn keys_for_kind(&self) -> (&'static [&'static str], &'static [&'static str]) {
        match self.kind {
            TargetKind::Http => (&["url"], &["timeout_ms", "max_in_flight"]),
            TargetKind::Nats => (&["url", "subject"], &[]),
            TargetKind::Amqp => (&["url", "exchange", "routing_key"], &[]),
            TargetKind::Redis => (&["url", "stream"], &[]),
        }
    }

    fn kind_keys(&self) -> [(&'static str, bool); 7] {
        [
            ("url", self.url.is_some()),
            ("timeout_ms", self.timeout_ms.is_some()),
            ("max_in_flight", self.max_in_flight.is_some()),
            ("subject", self.subject.is_some()),
            ("exchange", self.exchange.is_some()),
            ("routing_key", self.routing_key.is_some()),
            ("stream", self.stream.is_some()),
        ]
    }
}

/// `*` matches any run of characters (dots included), `?` exactly one.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let (glob, text): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut g, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some('*') => {
                backtrack = Some((g, t));
                g += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    g = star + 1;
                    t = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs_become_one_anchored_postgres_pattern() {
        let target: super::TargetSettings =
            toml::from_str("name = \"t\"\nkind = \"http\"\nevent_types = [\"job.*\", \"a?c\"]")
                .unwrap();
        assert_eq!(target.type_pattern(), r"^(job\..*|a.c)$");
    }

    #[test]
    fn globs_match_event_types() {
        assert!(glob_matches("*", "job.completed"));
        assert!(glob_matches("job.*", "job.completed"));
        assert!(!glob_matches("job.*", "audio.uploaded"));
        assert!(glob_matches("*.completed", "job.completed"));
        assert!(glob_matches("job.complete?", "job.completed"));
        assert!(!glob_matches("job", "job.completed"));
        assert!(glob_matches("a*b*c", "aXXbYYc"));
        assert!(!glob_matches("a*b*c", "aXXbYY"));
    }
}
