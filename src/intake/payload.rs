//! The little we read from a verified body: its `id` and `type`. Everything else is kept as
//! the raw bytes and never re-serialised.

use serde::Deserialize;

use crate::signing::Verified;

/// Audian's event envelope as far as we need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub id: String,
    pub event_type: String,
}

/// Stored when the body has no string `type`, so routing and templates always have a value.
pub const UNKNOWN_TYPE: &str = "unknown";

#[derive(Deserialize)]
struct Raw {
    id: serde_json::Value,
    #[serde(rename = "type", default)]
    event_type: Option<serde_json::Value>,
}

/// Reads the envelope; `None` means the body is not a JSON object with a string `id` of
/// 1–255 characters (control characters refused: Postgres text cannot hold NUL, and such
/// ids cannot be typed by an operator).
pub fn parse(verified: &Verified) -> Option<Envelope> {
    let body = verified.body();
    if body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let raw: Raw = serde_json::from_slice(body).ok()?;
    let id = match raw.id {
        serde_json::Value::String(id) if valid_text(&id, 255) => id,
        _ => return None,
    };
    let event_type = match raw.event_type {
        Some(serde_json::Value::String(t)) if valid_text(&t, 255) => t,
        _ => UNKNOWN_TYPE.to_owned(),
    };
    Some(Envelope { id, event_type })
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
        let envelope = parse(&verified(
            r#"{"id":"evt_1","type":"job.completed","x":[1]}"#,
        ));
        assert_eq!(
            envelope,
            Some(Envelope {
                id: "evt_1".into(),
                event_type: "job.completed".into()
            })
        );
    }

    #[test]
    fn a_missing_type_is_unknown() {
        assert_eq!(
            parse(&verified(r#"{"id":"e"}"#)).unwrap().event_type,
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
            assert_eq!(parse(&verified(body)), None, "{body}");
        }
    }

    #[test]
    fn accepts_an_id_of_255_characters() {
        let body = Box::leak(format!(r#"{{"id":"{}"}}"#, "é".repeat(255)).into_boxed_str());
        assert!(parse(&verified(body)).is_some());
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
