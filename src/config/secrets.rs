//! Secrets come only from the environment or from files named by `*_FILE` variables
//! (Docker and Kubernetes secrets), never from the configuration file.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ConfigError;
use crate::sealing::PayloadKeys;

/// The variable (or `_FILE`) holding the payload keys for encryption at rest.
pub const PAYLOAD_KEYS: &str = "AUDIAN_PAYLOAD_KEYS";

/// `[secrets]`: facts about the secrets, never a secret itself — any other key in this
/// section is refused as a secret written in the file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSettings {
    /// The end of a rotation (RFC 3339, quoted or as a TOML date-time with an offset): from
    /// this instant on, signatures made with `AUDIAN_WEBHOOK_PREVIOUS_SECRET` are refused.
    #[serde(
        deserialize_with = "instant",
        serialize_with = "time::serde::rfc3339::option::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_valid_until: Option<OffsetDateTime>,
}

/// An RFC 3339 instant from a string (the environment, a quoted TOML value) or from a TOML
/// date-time, which must carry its offset: a local time would depend on the server's zone.
fn instant<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<OffsetDateTime>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Toml(toml::value::Datetime),
    }
    let text = match Written::deserialize(deserializer)? {
        Written::Text(text) => text,
        Written::Toml(datetime) => datetime.to_string(),
    };
    OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
        .map(Some)
        .map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not an RFC 3339 instant with an offset, like \
                 \"2030-01-31T12:00:00Z\" ({e})"
            ))
        })
}

/// The keys this process holds. `Debug` prints which are set, never their values.
pub struct Secrets {
    /// Audian's current webhook signing secret.
    pub webhook: SecretString,
    /// The secret being rotated out, still accepted while set.
    pub webhook_previous: Option<SecretString>,
    /// Signs what we forward, so consumers can trust the hop without Audian's secret.
    pub forward_signing: Option<SecretString>,
    /// Seal stored payloads (the first) and open them (all); none means stored clear.
    pub payload_keys: PayloadKeys,
    /// Logs in to the operator's console; none means the console is off.
    pub console_token: Option<SecretString>,
}

impl Secrets {
    /// Reads all secrets; `AUDIAN_WEBHOOK_SECRET` (or its `_FILE`) is required.
    pub fn from_env() -> Result<Self, ConfigError> {
        let webhook = read_secret("AUDIAN_WEBHOOK_SECRET")?.ok_or_else(|| {
            ConfigError::Invalid(
                "AUDIAN_WEBHOOK_SECRET is not set: set it (or AUDIAN_WEBHOOK_SECRET_FILE, \
                 a file holding it) to Audian's webhook signing secret"
                    .to_owned(),
            )
        })?;
        Ok(Self {
            webhook,
            webhook_previous: read_secret("AUDIAN_WEBHOOK_PREVIOUS_SECRET")?,
            forward_signing: read_secret("FORWARD_SIGNING_SECRET")?,
            payload_keys: payload_keys_from_env()?,
            console_token: read_secret("AUDIAN_CONSOLE_TOKEN")?,
        })
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("webhook", &"[redacted]")
            .field(
                "webhook_previous",
                &self.webhook_previous.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "forward_signing",
                &self.forward_signing.as_ref().map(|_| "[redacted]"),
            )
            .field("payload_keys", &self.payload_keys)
            .field(
                "console_token",
                &self.console_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The payload keys from `AUDIAN_PAYLOAD_KEYS` (or its `_FILE`), checked strictly; none
/// when unset. Commands that only open payloads read them without the webhook secret.
pub fn payload_keys_from_env() -> Result<PayloadKeys, ConfigError> {
    match read_secret(PAYLOAD_KEYS)? {
        None => Ok(PayloadKeys::none()),
        Some(value) => PayloadKeys::parse(PAYLOAD_KEYS, value.expose_secret())
            .map_err(|e| ConfigError::Invalid(e.to_string())),
    }
}

/// Reads `NAME`, or the file named by `NAME_FILE` (one trailing newline dropped).
/// Setting both, or setting either to an empty value, is an error naming the variable.
pub fn read_secret(name: &str) -> Result<Option<SecretString>, ConfigError> {
    let file_var = format!("{name}_FILE");
    let direct = std::env::var(name).ok();
    let file = std::env::var(&file_var).ok();
    let value = match (direct, file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Invalid(format!(
                "both {name} and {file_var} are set: set only one"
            )));
        }
        (Some(value), None) => value,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::Invalid(format!("cannot read {file_var} ({path}): {e}")))?,
        (None, None) => return Ok(None),
    };
    let trimmed = value.strip_suffix('\n').unwrap_or(&value);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(ConfigError::Invalid(format!("{name} is set but empty")));
    }
    Ok(Some(SecretString::from(trimmed.to_owned())))
}

/// The bytes of a secret as used for HMAC keys: its UTF-8 encoding.
pub fn key_bytes(secret: &SecretString) -> &[u8] {
    secret.expose_secret().as_bytes()
}
