//! Layered configuration: built-in defaults, then a TOML file, then `AUDIAN_RECEIVER__*`
//! environment variables. Validated once at start so a bad key fails loudly, naming itself.

mod console;
mod intake;
mod secrets;
mod settings;
mod targets;
mod telemetry;
mod warnings;

pub use crate::secret_url::{SecretUrl, literal_credential, redact_url};
pub use console::ConsoleSettings;
pub use intake::{Age, IntakeSettings};
pub use secrets::{
    PAYLOAD_KEYS, Secrets, SecretsSettings, key_bytes, payload_keys_from_env, read_secret,
};
pub use settings::{
    AdminSettings, DatabaseSettings, ForwardSettings, LogFormat, LogSettings, RateLimitSettings,
    RetentionSettings, ServerSettings, Settings, TlsMode, TlsSettings,
};
pub use targets::TargetSettings;
pub use telemetry::{OtlpSettings, SAMPLERS, TelemetrySettings, otel_environment};

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};

/// Which checks a command needs: only `serve` (and `check-config`) use the listeners, so
/// `migrate` and `events` must not fail on a certificate they never read, and `healthcheck`
/// (run by the container engine beside a serving process) reads `admin.listen` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Everything,
    DatabaseOnly,
    /// The file must still parse (unknown keys, passwords in URLs are refused), but no
    /// section is checked: the serving process has checked them already.
    AdminOnly,
}

/// Everything that can be wrong with the configuration, each naming the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("configuration file {0} does not exist")]
    MissingFile(String),
    #[error(
        "secrets are never read from the configuration file ({0}); set them in the environment \
         (AUDIAN_WEBHOOK_SECRET, AUDIAN_WEBHOOK_PREVIOUS_SECRET, FORWARD_SIGNING_SECRET, \
         AUDIAN_PAYLOAD_KEYS, AUDIAN_CONSOLE_TOKEN; a Kafka target's SASL password in the \
         variable its `sasl_password_env` names, KAFKA_SASL_PASSWORD by default) or in files \
         named by the matching *_FILE variables"
    )]
    SecretInFile(String),
    #[error(
        "{key} holds {place}: credentials are never read from the configuration file; write \
         `${{NAME}}` in its place and set NAME in the environment{also}"
    )]
    CredentialInUrl {
        key: String,
        place: String,
        /// Another way, where there is one.
        also: &'static str,
    },
    #[error("{}", .0.join("\n"))]
    Problems(Vec<String>),
}

impl Settings {
    /// Loads defaults → `path` (if given) → `AUDIAN_RECEIVER__SECTION__KEY` → `DATABASE_URL`
    /// and the standard `OTEL_*` variables ([`otel_environment`]),
    /// then validates what `scope` needs. A `.env` in the working directory has already been
    /// read by `main`.
    pub fn load(path: Option<&Path>, scope: Scope) -> Result<Settings, ConfigError> {
        let file = match path {
            Some(path) if !path.exists() => {
                return Err(ConfigError::MissingFile(path.display().to_string()));
            }
            Some(path) => Some(Figment::from(Toml::file_exact(path))),
            None => None,
        };
        let mut environment = Figment::from(Env::prefixed("AUDIAN_RECEIVER__").split("__"));
        if let Ok(url) = std::env::var("DATABASE_URL") {
            environment = environment.merge(("database.url", url));
        }
        environment = environment.merge(otel_environment(|name| std::env::var(name).ok()));
        Self::layered(file, environment, scope)
    }

    /// Loads defaults → `text` as the configuration file, with no environment layer
    /// (`AUDIAN_RECEIVER__*`, `DATABASE_URL`) and no file read, then validates what `scope`
    /// needs: the loader on its own, for the `config_loader` fuzz target. `${NAME}`
    /// placeholders in URLs are still filled from the environment, as the file asks.
    pub fn from_toml_str(text: &str, scope: Scope) -> Result<Settings, ConfigError> {
        Self::layered(
            Some(Figment::from(Toml::string(text))),
            Figment::new(),
            scope,
        )
    }

    /// The one loading path: defaults, then `file` (passwords in its URLs refused), then
    /// `overrides`; then the checks.
    fn layered(
        file: Option<Figment>,
        overrides: Figment,
        scope: Scope,
    ) -> Result<Settings, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = &file {
            refuse_passwords_in_file(file)?;
            figment = figment.merge(file.clone());
        }
        let settings: Settings = figment
            .merge(overrides)
            .extract()
            .map_err(|e| describe_figment_error(e, file.as_ref()))?;
        let problems = settings.problems(scope);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Problems(problems))
        }
    }

    /// Every problem found, so an operator fixes them all in one go.
    pub fn problems(&self, scope: Scope) -> Vec<String> {
        let mut problems = Vec::new();
        if scope == Scope::AdminOnly {
            return problems;
        }
        self.server.check(&mut problems);
        if scope == Scope::Everything {
            self.tls.check(&mut problems);
        }
        self.database.check(&mut problems);
        self.forward.check(&mut problems);
        self.retention.check(&mut problems);
        self.intake.check(self.retention.dedup_days, &mut problems);
        self.console.check(&mut problems);
        self.telemetry.otlp.check(&mut problems);
        problems
    }
}

/// A password, NATS token or secret query parameter written into a URL in the file is a secret
/// in the file: refuse it and point at `${VAR}` placeholders (or `DATABASE_URL`) instead.
fn refuse_passwords_in_file(file: &Figment) -> Result<(), ConfigError> {
    let mut urls: Vec<(String, String)> = Vec::new();
    if let Ok(url) = file.extract_inner::<String>("database.url") {
        urls.push(("database.url".to_owned(), url));
    }
    if let Ok(targets) = file.extract_inner::<Vec<figment::value::Dict>>("forward.targets") {
        for (index, target) in targets.iter().enumerate() {
            if let Some(url) = target.get("url").and_then(|v| v.as_str()) {
                urls.push((format!("forward.targets[{index}].url"), url.to_owned()));
            }
        }
    }
    let found = urls
        .iter()
        .find_map(|(key, url)| Some((key, literal_credential(url)?)));
    match found {
        Some((key, place)) => Err(ConfigError::CredentialInUrl {
            key: key.clone(),
            place: place.describe(),
            also: if key == "database.url" {
                " (or set DATABASE_URL)"
            } else {
                ""
            },
        }),
        None => Ok(()),
    }
}

fn describe_figment_error(error: figment::Error, file: Option<&Figment>) -> ConfigError {
    let mut messages = Vec::new();
    for mut e in error {
        if let Some(key) = secret_key(&e) {
            return ConfigError::SecretInFile(key);
        }
        name_the_target_key(&mut e, file);
        let place = match &e.metadata {
            Some(meta) => match &meta.source {
                Some(source) => format!(" (from {source})"),
                None => format!(" (from {})", meta.name),
            },
            None => String::new(),
        };
        messages.push(format!(
            "{}: {}{place}",
            describe_key(&e.path, file),
            e.kind
        ));
    }
    ConfigError::Problems(messages)
}

/// The key an error is about when that key would hold a secret: an unknown key whose name
/// says "secret", or anything in `[secrets]` but `previous_valid_until` (the section holds
/// facts about secrets, and a value put anywhere else in it is most likely one). The error
/// itself is dropped: it could quote the value.
fn secret_key(e: &figment::Error) -> Option<String> {
    let mut key = e.path.clone();
    if let figment::error::Kind::UnknownField(field, _) = &e.kind {
        if key.last() != Some(field) {
            key.push(field.clone());
        }
        let lower = field.to_ascii_lowercase();
        if lower.contains("secret") || lower.contains("password") {
            return Some(key.join("."));
        }
    }
    let in_secrets = key.first().is_some_and(|section| section == "secrets");
    let deadline = key.get(1).is_some_and(|k| k == "previous_valid_until");
    (in_secrets && !deadline).then(|| key.join("."))
}

/// A target's `kind` and that kind's keys reach serde through a buffer (`kind` is an
/// internal tag, flattened into the entry), so their errors stop at the target. Put back
/// the key the error is about where it says which, and expect the keys every kind has
/// beside the kind's own.
fn name_the_target_key(e: &mut figment::Error, file: Option<&Figment>) {
    use figment::error::Kind;
    let [forward, targets, index] = e.path.as_slice() else {
        return;
    };
    if forward != "forward" || targets != "targets" {
        return;
    }
    match &e.kind {
        Kind::UnknownField(field, expected) => {
            let expected: Vec<String> = targets::COMMON_KEYS
                .iter()
                .chain(expected.iter())
                .map(|key| format!("`{key}`"))
                .collect();
            let message = format!(
                "unknown field: found `{field}`, expected one of {}",
                expected.join(", ")
            );
            e.path.push(field.clone());
            e.kind = Kind::Message(message);
        }
        Kind::UnknownVariant(_, expected) if expected.contains(&"http") => {
            e.path.push("kind".to_owned())
        }
        // Another of the kind's enumerated keys (compression, say): the key holding the value.
        Kind::UnknownVariant(found, _) => {
            let key = index.parse::<usize>().ok().and_then(|i| {
                let targets = file?
                    .extract_inner::<Vec<figment::value::Dict>>("forward.targets")
                    .ok()?;
                let (key, _) = targets
                    .get(i)?
                    .iter()
                    .find(|(_, value)| value.as_str() == Some(found.as_str()))?;
                Some(key.clone())
            });
            if let Some(key) = key {
                e.path.push(key);
            }
        }
        _ => {}
    }
}

/// `forward.targets.0.kind` → ``forward.targets[0] (`jobs`): `kind` ``, so an error about a
/// target names it.
fn describe_key(key: &[String], file: Option<&Figment>) -> String {
    match key {
        [forward, targets, index, rest @ ..] if forward == "forward" && targets == "targets" => {
            let targets = file.and_then(|f| {
                f.extract_inner::<Vec<figment::value::Dict>>("forward.targets")
                    .ok()
            });
            let name = index
                .parse::<usize>()
                .ok()
                .and_then(|i| targets?.get(i)?.get("name")?.as_str().map(str::to_owned))
                .map(|name| format!(" (`{name}`)"))
                .unwrap_or_default();
            match rest {
                [] => format!("forward.targets[{index}]{name}"),
                _ => format!("forward.targets[{index}]{name}: `{}`", rest.join(".")),
            }
        }
        [] => "configuration".to_owned(),
        _ => key.join("."),
    }
}

#[cfg(test)]
mod tests;
