//! A URL that may carry credentials (database, brokers, HTTP targets): usable, but never
//! printed whole. Neutral ground: the configuration and each forward target's own config type
//! hold one, and error text from their clients is scrubbed with what it knows.

mod credentials;

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use credentials::{Place, SECRET_PARAMETERS};
use credentials::{credentials, percent_decode};

/// A connection URL. `${NAME}` placeholders are filled from the environment when loaded, so a
/// file can name a URL while its credentials stay in the environment. `Debug`, `Display` and
/// `Serialize` show the URL as written — placeholders unexpanded, literal passwords, NATS
/// tokens and secret query parameters replaced by `[redacted]`.
#[derive(Clone)]
pub struct SecretUrl {
    /// As written: what is shown.
    template: String,
    /// Placeholders filled: what is used.
    url: SecretString,
}

impl SecretUrl {
    /// A URL without placeholders (it is its own template).
    pub fn new(url: &str) -> Self {
        Self {
            template: url.to_owned(),
            url: SecretString::from(url.to_owned()),
        }
    }

    /// The full URL, credentials included: only at the point of connecting.
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }

    /// The URL as written, with its literal credentials redacted.
    pub fn redacted(&self) -> String {
        redact_url(&self.template)
    }
}

/// Each literal credential replaced by `[redacted]`; `${NAME}` placeholders are kept, since
/// they show where the value comes from and not the value.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut copied = 0;
    for credential in credentials(url) {
        if credential.is_literal(url) {
            out.push_str(&url[copied..credential.span.start]);
            out.push_str("[redacted]");
            copied = credential.span.end;
        }
    }
    out.push_str(&url[copied..]);
    out
}

/// The first credential written out literally in `url` (a `${NAME}` placeholder is not one):
/// a secret in the configuration file, to be refused.
pub fn literal_credential(url: &str) -> Option<Place> {
    credentials(url)
        .into_iter()
        .find(|credential| credential.is_literal(url))
        .map(|credential| credential.place)
}

/// The literal credential values of `url`, as written and percent-decoded: what to scrub from
/// error text, since client libraries may echo the URL or parts of it.
pub fn secret_values(url: &str) -> Vec<String> {
    let mut values = Vec::new();
    for credential in credentials(url) {
        if credential.is_literal(url) {
            let value = &url[credential.span];
            let decoded = percent_decode(value);
            if decoded != value && !decoded.is_empty() {
                values.push(decoded);
            }
            values.push(value.to_owned());
        }
    }
    // Longest first, so a value containing another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
}

/// `text` with every credential of `url` replaced by `***`.
pub fn scrub(text: &str, url: &str) -> String {
    secret_values(url)
        .iter()
        .fold(text.to_owned(), |text, secret| text.replace(secret, "***"))
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
        let template = String::deserialize(deserializer)?;
        let expanded = expand_env(&template).map_err(serde::de::Error::custom)?;
        Ok(Self {
            template,
            url: SecretString::from(expanded),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_only_the_credentials() {
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
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&Password=pw&sslpassword=k"),
            "postgres://u@h/db?sslmode=require&Password=[redacted]&sslpassword=[redacted]"
        );
        assert_eq!(
            redact_url("nats://tok3n@h:4222"),
            "nats://[redacted]@h:4222"
        );
    }

    #[test]
    fn placeholders_are_shown_not_redacted() {
        let url = "postgres://app:${DB_PASSWORD}@db/x?token=${TOKEN}";
        assert_eq!(redact_url(url), url);
    }

    #[test]
    fn debug_display_and_serialize_never_show_a_credential() {
        for raw in [
            "postgres://app:hunter2@db/x",
            "nats://hunter2@h",
            "https://h/hook?access_token=hunter2",
        ] {
            let url = SecretUrl::new(raw);
            assert!(!format!("{url:?}").contains("hunter2"), "{raw}");
            assert!(!url.to_string().contains("hunter2"), "{raw}");
            let json = serde_json::to_string(&url).unwrap();
            assert!(!json.contains("hunter2"), "{json}");
        }
    }

    #[test]
    fn a_loaded_url_shows_its_template_and_uses_the_expanded_value() {
        // PATH is set in any environment the tests run in.
        let url: SecretUrl = serde_json::from_str(r#""nats://${PATH}@h""#).unwrap();
        assert_eq!(url.to_string(), "nats://${PATH}@h");
        assert_eq!(
            url.expose(),
            format!("nats://{}@h", std::env::var("PATH").unwrap())
        );
    }

    #[test]
    fn detects_literal_credentials_only() {
        assert_eq!(
            literal_credential("amqp://guest:guest@h/"),
            Some(Place::Password)
        );
        assert_eq!(literal_credential("nats://tok@h"), Some(Place::Token));
        assert_eq!(
            literal_credential("postgres://h/db?PASSWORD=x"),
            Some(Place::Query("PASSWORD".to_owned()))
        );
        for url in [
            "amqp://guest@h/",
            "nats://127.0.0.1:4222",
            "amqp://guest:${RABBITMQ_PASSWORD}@h/",
            "nats://${NATS_TOKEN}@h",
            "postgres://h/db?password=${PW}",
        ] {
            assert_eq!(literal_credential(url), None, "{url}");
        }
    }

    #[test]
    fn scrubs_credentials_as_written_and_decoded_from_text() {
        let url = "postgres://u:p%40ss@h/db?token=t0k";
        let text = "cannot connect to u:p%40ss / p@ss with t0k";
        assert_eq!(scrub(text, url), "cannot connect to u:*** / *** with ***");
    }

    #[test]
    fn expands_placeholders_and_names_missing_ones() {
        let err = expand_env("x${AUDIAN_TEST_SURELY_UNSET_VAR}y").unwrap_err();
        assert!(err.contains("AUDIAN_TEST_SURELY_UNSET_VAR"));
        assert_eq!(expand_env("plain").unwrap(), "plain");
    }
}
