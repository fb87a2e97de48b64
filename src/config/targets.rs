//! One `[[forward.targets]]` entry: its name, which event types it takes, and its kind (whose
//! keys and checks live with that kind's client); a bad target stops start-up with a message
//! naming the target and the key.

use serde::{Deserialize, Serialize};

use crate::forward::targets::{Checks, TargetKind};

/// A forward target as configured: the keys every kind has, then `kind` and that kind's own
/// keys (its config type lives with its client in `forward::targets`). An unknown key is
/// refused by the kind's type, naming the key (`deny_unknown_fields` cannot sit here, beside
/// `flatten`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TargetSettings {
    pub name: String,
    /// Globs over the event type (`*` any run of characters, `?` one); default: all.
    #[serde(default = "all_types")]
    pub event_types: Vec<String>,
    /// Overrides `forward.max_attempts` for this target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    #[serde(flatten)]
    pub kind: TargetKind,
}

/// The keys of [`TargetSettings`] itself, and the tag of its kind: every kind accepts them.
pub(super) const COMMON_KEYS: [&str; 4] = ["name", "kind", "event_types", "max_attempts"];

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

    /// Every problem with this target, each naming it and the key; `lease_ms` is
    /// `forward.lease_ms`, which bounds a kind's timeouts. Connects to nothing.
    pub(super) fn check(&self, index: usize, lease_ms: u64, problems: &mut Vec<String>) {
        let label = if self.name.is_empty() {
            format!("forward.targets[{index}]")
        } else {
            format!(
                "forward.targets[{index}] (`{}`, {})",
                self.name,
                self.kind.name()
            )
        };
        let mut checks = Checks::new(&label, lease_ms, problems);
        if self.name.is_empty() || self.name.len() > 100 {
            checks.problem("`name` must be 1 to 100 characters");
        }
        if self.event_types.is_empty() {
            checks.problem("`event_types` is empty, so nothing would match");
        }
        if self.max_attempts.is_some_and(|n| n <= 0) {
            checks.problem("`max_attempts` must be > 0");
        }
        self.kind.check(&mut checks);
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
    use super::{TargetSettings, glob_matches};

    fn parse(toml: &str) -> Result<TargetSettings, String> {
        toml::from_str(toml).map_err(|e| e.to_string())
    }

    fn problems(toml: &str) -> Vec<String> {
        let mut problems = Vec::new();
        parse(toml).unwrap().check(0, 30_000, &mut problems);
        problems
    }

    const NATS: &str = "name = \"jobs\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\n";

    #[test]
    fn globs_become_one_anchored_postgres_pattern() {
        let target = parse(
            "name = \"t\"\nkind = \"http\"\nurl = \"http://h/\"\nevent_types = [\"job.*\", \"a?c\"]",
        )
        .unwrap();
        assert_eq!(target.type_pattern(), r"^(job\..*|a.c)$");
    }

    #[test]
    fn each_kind_takes_its_own_keys_beside_the_common_ones() {
        let target = parse(&format!(
            "{NATS}subject = \"audian.{{type}}\"\nmax_attempts = 3\nevent_types = [\"job.*\"]"
        ))
        .unwrap();
        assert_eq!(target.max_attempts, Some(3));
        assert_eq!(target.kind.name(), "nats");
        assert!(problems(&format!("{NATS}subject = \"a.{{type}}\"")).is_empty());
        let printed = toml::to_string(&target).unwrap();
        assert!(printed.contains("kind = \"nats\""), "{printed}");
        assert!(printed.contains("subject = \"audian.{type}\""), "{printed}");
    }

    #[test]
    fn a_target_never_shows_the_password_in_its_url() {
        let target = parse(
            "name = \"a\"\nkind = \"amqp\"\nurl = \"amqp://u:hunter2@h/\"\nexchange = \"x\"\nrouting_key = \"k\"",
        )
        .unwrap();
        let printed = toml::to_string(&target).unwrap();
        assert!(
            printed.contains("url = \"amqp://u:[redacted]@h/\""),
            "{printed}"
        );
        assert!(!format!("{target:?}").contains("hunter2"));
    }

    #[test]
    fn a_key_of_another_kind_is_refused_naming_it() {
        let err = parse(&format!("{NATS}subject = \"a\"\nstream = \"s\"")).unwrap_err();
        assert!(err.contains("unknown field `stream`"), "{err}");
    }

    #[test]
    fn a_misspelt_key_is_refused_naming_it() {
        let err = parse(&format!("{NATS}subject = \"a\"\nevent_type = [\"x\"]")).unwrap_err();
        assert!(err.contains("unknown field `event_type`"), "{err}");
    }

    #[test]
    fn a_missing_key_of_the_kind_is_named() {
        let err = parse(NATS).unwrap_err();
        assert!(err.contains("missing field `subject`"), "{err}");
    }

    #[test]
    fn an_unknown_kind_is_refused() {
        let err = parse("name = \"k\"\nkind = \"pulsar\"\nurl = \"x\"").unwrap_err();
        assert!(err.contains("unknown variant `pulsar`"), "{err}");
    }

    #[test]
    fn checks_name_the_target_and_the_key() {
        let found = problems(
            "name = \"jobs\"\nkind = \"nats\"\nurl = \"http://h\"\nsubject = \"a.{event}\"",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("forward.targets[0] (`jobs`, nats): `url` must start with"));
        assert!(
            found[1]
                .starts_with("forward.targets[0] (`jobs`, nats): `subject`: unknown placeholder")
        );
    }

    #[test]
    fn an_http_timeout_must_end_within_80_percent_of_the_lease() {
        let http = "name = \"h\"\nkind = \"http\"\nurl = \"http://h/\"\n";
        assert!(problems(&format!("{http}timeout_ms = 23999")).is_empty());
        let found = problems(&format!("{http}timeout_ms = 24000"));
        assert_eq!(
            found,
            [
                "forward.targets[0] (`h`, http): `timeout_ms` (24000) must be below 80% of forward.lease_ms (30000)"
            ]
        );
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
