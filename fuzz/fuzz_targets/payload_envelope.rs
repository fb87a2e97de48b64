//! Fuzzes the envelope parser with any body that passed the signature check (signed here
//! with a known key, as a compromised or buggy sender could): parsing must never panic, and
//! whatever it accepts must be a JSON object whose `id` obeys DESIGN §1 (1–255 characters,
//! no control characters) — what the events table and an operator can hold.

#![no_main]

use audian_receiver::intake::payload::{UNKNOWN_TYPE, parse};
use audian_receiver::signing::{Verifier, sign};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde::de::IgnoredAny;

const KEY: &[u8] = b"whsec_fuzz_envelope";

/// What an accepted body must hold, read independently of the parser. `IgnoredAny` skips
/// the rest without serde_json's nesting limit, as the parser's own skipping does.
#[derive(Deserialize)]
struct Expected {
    id: String,
    #[serde(rename = "type", default)]
    event_type: Option<serde_json::Value>,
}

fuzz_target!(|body: &[u8]| {
    let signature = sign(KEY, body);
    let verified = Verifier::new([KEY])
        .verify(Some(signature.as_bytes()), Bytes::copy_from_slice(body))
        .expect("a body signed with the key verifies");
    let Some(envelope) = parse(&verified, "created_at") else {
        return;
    };
    serde_json::from_slice::<IgnoredAny>(body).expect("accepted invalid JSON");
    assert_eq!(
        body.trim_ascii_start().first(),
        Some(&b'{'),
        "accepted a non-object"
    );
    let expected: Expected = serde_json::from_slice(body).expect("accepted without a string id");
    assert_eq!(expected.id, envelope.id);
    for text in [&envelope.id, &envelope.event_type] {
        let chars = text.chars().count();
        assert!((1..=255).contains(&chars), "{chars} characters accepted");
        assert!(
            !text.chars().any(char::is_control),
            "control character accepted"
        );
    }
    if envelope.event_type != UNKNOWN_TYPE {
        let sent = expected.event_type.as_ref().and_then(|t| t.as_str());
        assert_eq!(sent, Some(envelope.event_type.as_str()));
    }
});
