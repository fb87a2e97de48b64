//! A URL that may carry credentials (database, brokers): usable, but never printed whole.
//! Neutral ground: the configuration and each forward target's own config type hold one.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A connection URL. `Debug`, `Display` and `Serialize` show it with its password replaced
/// by `[redacted]`; `${NAME}` placeholders are filled from the environment when loaded, so a
/// file can name a URL while its password stays in the environment.
#[derive(Clone)]
pub struct SecretUrl(SecretString);

impl SecretUrl {
    pub fn new(url: &str) -> Self {
        Self(SecretString::from(url.to_owned()))
    }

    /// The full URL, credentials included: only at the point of connecting.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn redacted(&self) -> String {
        redact_url(self.expose())
    }
}

/// `scheme://user:password@host/…` → `scheme://user:[redacted]@host/…`.
pub fn redact_url(url: &str) -> String {
    match password_span(url) {
        Some((start, end)) => format!("{}[redacted]{}", &url[..start], &url[end..]),
        None => url.to_owned(),
    }
}

/// Whether the URL carries a password literally (a `${NAME}` placeholder is not one).
pub fn has_password(url: &str) -> bool {
    password_span(url).is_some_and(|(start, end)| end > start && !url[start..end].starts_with("${"))
}

fn password_span(url: &str) -> Option<(usize, usize)> {
    let authority_start = url.find("://")? + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let userinfo_len = rest[..authority_len].rfind('@')?;
    let colon = rest[..userinfo_len].find(':')?;
    Some((authority_start + colon + 1, authority_start + userinfo_len))
}

/// Replaces each `${NAME}` with the value of the environment variable `NAME`.
pub fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unclosed `${` placeholder".to_owned())?;
        let name = &after[..end];
        let value = std::env::var(name).map_err(|_| {
            format!("environment variable {name} (named by `${{{name}}}`) is not set")
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        let expanded = expand_env(&raw).map_err(serde::de::Error::custom)?;
        Ok(Self(SecretString::from(expanded)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_only_the_password() {
        assert_eq!(
            redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:[redacted]@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/db"),
            "postgres://postgres@127.0.0.1/db"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let url = SecretUrl::new("postgres://app:hunter2@db/x");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(!url.to_string().contains("hunter2"));
    }

    #[test]
    fn detects_literal_passwords() {
        assert!(has_password("amqp://guest:guest@h/"));
        assert!(!has_password("amqp://guest@h/"));
        assert!(!has_password("nats://127.0.0.1:4222"));
        assert!(!has_password("amqp://guest:${RABBITMQ_PASSWORD}@h/"));
    }

    #[test]
    fn expands_placeholders_and_names_missing_ones() {
        let err = expand_env("x${AUDIAN_TEST_SURELY_UNSET_VAR}y").unwrap_err();
        assert!(err.contains("AUDIAN_TEST_SURELY_UNSET_VAR"));
        assert_eq!(expand_env("plain").unwrap(), "plain");
    }
}
