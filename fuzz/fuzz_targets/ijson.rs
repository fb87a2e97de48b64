//! Fuzzes the I-JSON validator with any bytes: it must never panic; whatever it accepts
//! serde_json must read as JSON too (well-formedness agrees), and no accepted text may hold a
//! lone surrogate escape (serde_json refuses those when it decodes a string, so reading every
//! string back through serde_json proves it) or a duplicate member name.

#![no_main]

use std::collections::HashSet;

use audian_receiver::intake::ijson::{Rule, validate};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

const MAX_DEPTH: usize = 64;

/// Walks a JSON text as serde_json reads it, decoding every string (which fails on a lone
/// surrogate) and failing on a member name seen twice in one object.
struct Strict;

impl<'de> Visitor<'de> for Strict {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(StrictSeed)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut names = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !names.insert(name) {
                return Err(serde::de::Error::custom("duplicate member"));
            }
            map.next_value_seed(StrictSeed)?;
        }
        Ok(())
    }
}

struct StrictSeed;

impl<'de> serde::de::DeserializeSeed<'de> for StrictSeed {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(Strict)
    }
}

fuzz_target!(|body: &[u8]| {
    match validate(body, MAX_DEPTH) {
        Ok(()) => {
            serde_json::from_slice::<IgnoredAny>(body).expect("accepted what serde_json refuses");
            let mut reader = serde_json::Deserializer::from_slice(body);
            reader
                .deserialize_any(Strict)
                .expect("accepted a lone surrogate or a duplicate member name");
        }
        Err(Rule::Malformed) => {
            // serde_json may read as a value nothing the validator calls malformed (up to
            // its own recursion limit, 128, deeper than ours). Not IgnoredAny: skipping a
            // number, it does not check that a double can hold it (2e2222), and neither
            // RFC 7493 nor serde_json's own values accept that.
            assert!(
                serde_json::from_slice::<serde_json::Value>(body).is_err(),
                "refused as malformed what serde_json reads"
            );
        }
        Err(Rule::InvalidUtf8) => assert!(std::str::from_utf8(body).is_err()),
        Err(Rule::LoneSurrogate | Rule::DuplicateMember | Rule::TooDeep) => {}
    }
});
