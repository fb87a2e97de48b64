//! The little we read from a verified body: its `id` and `type`. Everything else is kept as
//! the raw bytes and never re-serialised.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::signing::Verified;

/// Audian's event envelope as far as we need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub id: String,
    pub event_type: String,
    /// The signed timestamp field (`intake.timestamp_field`), as far as it could be read.
    pub timestamp: Timestamp,
}

/// What the body says about when the event happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// No such field, or `null`.
    Missing,
    /// Neither an RFC 3339 string nor a number of Unix seconds.
    Unreadable,
    At(OffsetDateTime),
}

/// Stored when the body has no string `type`, so routing and templates always have a value.
pub const UNKNOWN_TYPE: &str = "unknown";

/// Reads the envelope; `None` means the body is not a JSON object with a string `id` of
/// 1–255 characters (control characters refused: Postgres text cannot hold NUL, and such
/// ids cannot be typed by an operator). `timestamp_field` names the top-level member that
/// holds the event's time.
pub fn parse(verified: &Verified, timestamp_field: &str) -> Option<Envelope> {
    let body = verified.body();
    if body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    let raw = EnvelopeFields { timestamp_field }
        .deserialize(&mut reader)
        .ok()?;
    reader.end().ok()?;
    let id = match raw.id {
        Some(Value::String(id)) if valid_text(&id, 255) => id,
        _ => return None,
    };
    let event_type = match raw.event_type {
        Some(Value::String(t)) if valid_text(&t, 255) => t,
        _ => UNKNOWN_TYPE.to_owned(),
    };
    Some(Envelope {
        id,
        event_type,
        timestamp: read_timestamp(raw.timestamp),
    })
}

fn read_timestamp(value: Option<Value>) -> Timestamp {
    let at = match value {
        None | Some(Value::Null) => return Timestamp::Missing,
        Some(Value::String(text)) => OffsetDateTime::parse(&text, &Rfc3339).ok(),
        Some(Value::Number(secs)) => secs
            .as_i64()
            .or_else(|| {
                secs.as_f64()
                    .filter(|s| s.is_finite())
                    .map(|s| s.floor() as i64)
            })
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok()),
        Some(_) => None,
    };
    at.map_or(Timestamp::Unreadable, Timestamp::At)
}

/// The members we read, each kept as a value so a wrong type is judged after parsing.
struct RawEnvelope {
    id: Option<Value>,
    event_type: Option<Value>,
    timestamp: Option<Value>,
}

/// Reads the top-level object's `id`, `type` and timestamp member and skips the rest.
struct EnvelopeFields<'a> {
    timestamp_field: &'a str,
}

impl<'de> DeserializeSeed<'de> for EnvelopeFields<'_> {
    type Value = RawEnvelope;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawEnvelope, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeFields<'_> {
    type Value = RawEnvelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEnvelope, A::Error> {
        let mut raw = RawEnvelope {
            id: None,
            event_type: None,
            timestamp: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.as_str() {
                "id" => &mut raw.id,
                "type" => &mut raw.event_type,
                name if name == self.timestamp_field => &mut raw.timestamp,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(serde::de::Error::custom("duplicate member"));
            }
            *slot = Some(map.next_value()?);
        }
        Ok(raw)
    }
}

fn valid_text(text: &str, max_chars: usize) -> bool {
    let count = text.chars().count();
    (1..=max_chars).contains(&count) && !text.chars().any(char::is_control)
}

/// Whether a `Content-Type` value is JSON (`application/json` or `application/*+json`).
pub fn is_json_media_type(value: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{Verifier, sign};
    use bytes::Bytes;

    fn verified(body: &'static str) -> Verified {
        let signature = sign(b"k", body.as_bytes());
        Verifier::new([b"k".as_slice()])
            .verify(
                Some(signature.as_bytes()),
                Bytes::from_static(body.as_bytes()),
            )
            .unwrap()
    }

    #[test]
    fn reads_id_and_type() {
        let envelope = parse(
            &verified(r#"{"id":"evt_1","type":"job.completed","x":[1]}"#),
            "created_at",
        );
        assert_eq!(
            envelope,
            Some(Envelope {
                id: "evt_1".into(),
                event_type: "job.completed".into(),
                timestamp: Timestamp::Missing,
            })
        );
    }

    #[test]
    fn a_missing_type_is_unknown() {
        assert_eq!(
            parse(&verified(r#"{"id":"e"}"#), "created_at")
                .unwrap()
                .event_type,
            UNKNOWN_TYPE
        );
    }

    #[test]
    fn refuses_bodies_without_a_proper_id() {
        let long = Box::leak(format!(r#"{{"id":"{}"}}"#, "x".repeat(256)).into_boxed_str());
        for body in [
            r#"["id"]"#,
            r#"{"id":""}"#,
            r#"{"id":5}"#,
            r#"{"type":"a"}"#,
            r#"{"id":"a\u0000"}"#,
            "not json",
            r#"{"id":"a""#,
            long,
        ] {
            assert_eq!(parse(&verified(body), "created_at"), None, "{body}");
        }
    }

    #[test]
    fn accepts_an_id_of_255_characters() {
        let body = Box::leak(format!(r#"{{"id":"{}"}}"#, "é".repeat(255)).into_boxed_str());
        assert!(parse(&verified(body), "created_at").is_some());
    }

    #[test]
    fn reads_the_timestamp_as_rfc3339_or_unix_seconds() {
        let at = |body| parse(&verified(body), "created_at").unwrap().timestamp;
        let expected = Timestamp::At(time::macros::datetime!(2026-12-07 10:00:00 UTC));
        assert_eq!(
            at(r#"{"id":"e","created_at":"2026-12-07T10:00:00Z"}"#),
            expected
        );
        assert_eq!(
            at(r#"{"id":"e","created_at":"2026-12-07T11:00:00+01:00"}"#),
            expected
        );
        assert_eq!(at(r#"{"id":"e","created_at":1796637600}"#), expected);
        assert_eq!(at(r#"{"id":"e","created_at":1796637600.5}"#), expected);
        assert_eq!(at(r#"{"id":"e","created_at":null}"#), Timestamp::Missing);
        assert_eq!(
            at(r#"{"id":"e","created_at":"yesterday"}"#),
            Timestamp::Unreadable
        );
        assert_eq!(at(r#"{"id":"e","created_at":[1]}"#), Timestamp::Unreadable);
        assert_eq!(
            at(r#"{"id":"e","data":{"created_at":1}}"#),
            Timestamp::Missing
        );
    }

    #[test]
    fn the_timestamp_field_is_configurable() {
        let envelope = parse(&verified(r#"{"id":"e","ts":1796637600}"#), "ts").unwrap();
        assert!(matches!(envelope.timestamp, Timestamp::At(_)));
    }

    #[test]
    fn recognises_json_media_types() {
        assert!(is_json_media_type(b"application/json"));
        assert!(is_json_media_type(b"Application/JSON; charset=utf-8"));
        assert!(is_json_media_type(b"application/cloudevents+json"));
        assert!(!is_json_media_type(b"text/plain"));
        assert!(!is_json_media_type(b"application/x-www-form-urlencoded"));
    }
}
