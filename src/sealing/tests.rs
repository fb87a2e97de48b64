//! Sealing and opening, and the strictness of the keys variable.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

const VAR: &str = "AUDIAN_PAYLOAD_KEYS";
const BODY: &[u8] = br#"{"id":"evt_1","type":"job.completed","data":{"title":"Caf\u00e9"}}"#;

fn key(fill: u8) -> String {
    STANDARD.encode([fill; 32])
}

fn keys(value: &str) -> PayloadKeys {
    PayloadKeys::parse(VAR, value).expect("valid keys")
}

fn two_keys() -> PayloadKeys {
    keys(&format!("k2:{},k1:{}", key(2), key(1)))
}

#[test]
fn a_sealed_payload_opens_to_the_same_bytes() {
    let keys = two_keys();
    let sealed = keys.seal("evt_1", BODY).unwrap().expect("a key is set");
    assert_eq!(sealed.key_id, "k2");
    assert_eq!(sealed.bytes.len(), BODY.len() + OVERHEAD);
    let opened = keys.open("evt_1", Some("k2"), &sealed.bytes).unwrap();
    assert_eq!(&*opened, BODY);
}

#[test]
fn sealed_bytes_hide_the_body_and_never_repeat() {
    let keys = two_keys();
    let first = keys.seal("evt_1", BODY).unwrap().unwrap().bytes;
    let second = keys.seal("evt_1", BODY).unwrap().unwrap().bytes;
    assert_ne!(first, second, "a fresh nonce per seal");
    assert_ne!(first[..NONCE_LEN], second[..NONCE_LEN]);
    assert!(!first.windows(8).any(|w| BODY.windows(8).any(|b| b == w)));
}

#[test]
fn a_payload_sealed_for_another_event_is_refused() {
    let keys = two_keys();
    let sealed = keys.seal("evt_1", BODY).unwrap().unwrap().bytes;
    let error = keys.open("evt_2", Some("k2"), &sealed).unwrap_err();
    assert_eq!(error, OpenError::Refused("k2".into()));
}

#[test]
fn any_changed_byte_is_refused() {
    let keys = two_keys();
    let sealed = keys.seal("evt_1", BODY).unwrap().unwrap().bytes;
    for at in 0..sealed.len() {
        let mut tampered = sealed.clone();
        tampered[at] ^= 0x01;
        assert!(
            keys.open("evt_1", Some("k2"), &tampered).is_err(),
            "byte {at} changed and still opened"
        );
    }
    for short in [0, 1, OVERHEAD - 1, sealed.len() - 1] {
        assert!(keys.open("evt_1", Some("k2"), &sealed[..short]).is_err());
    }
}

#[test]
fn an_unknown_key_id_is_reported_by_name() {
    let old = keys(&format!("k0:{}", key(9)));
    let sealed = old.seal("evt_1", BODY).unwrap().unwrap().bytes;
    let error = two_keys().open("evt_1", Some("k0"), &sealed).unwrap_err();
    assert_eq!(error, OpenError::UnknownKey("k0".into()));
    assert_eq!(error.key_id(), "k0");
    assert_eq!(error.to_string(), "payload sealed under unknown key `k0`");
}

#[test]
fn a_key_of_the_same_id_but_other_bytes_does_not_open() {
    let sealed = keys(&format!("k1:{}", key(1)))
        .seal("evt_1", BODY)
        .unwrap()
        .unwrap()
        .bytes;
    let other = keys(&format!("k1:{}", key(7)));
    assert!(other.open("evt_1", Some("k1"), &sealed).is_err());
}

#[test]
fn every_configured_key_opens_not_only_the_first() {
    let sealed = keys(&format!("k1:{}", key(1)))
        .seal("evt_1", BODY)
        .unwrap()
        .unwrap()
        .bytes;
    let opened = two_keys().open("evt_1", Some("k1"), &sealed).unwrap();
    assert_eq!(&*opened, BODY);
}

#[test]
fn without_keys_payloads_stay_clear_and_clear_rows_pass_through() {
    let none = PayloadKeys::none();
    assert!(none.is_empty());
    assert!(none.seal("evt_1", BODY).unwrap().is_none());
    assert_eq!(none.sealing_key_id(), None);
    assert!(matches!(
        none.open("evt_1", None, BODY),
        Ok(Cow::Borrowed(b)) if b == BODY
    ));
    assert!(matches!(
        none.open("evt_1", Some("k1"), BODY),
        Err(OpenError::UnknownKey(_))
    ));
}

#[test]
fn debug_prints_the_ids_and_no_key_material() {
    let printed = format!("{:?}", two_keys());
    assert_eq!(printed, r#"PayloadKeys { ids: ["k2", "k1"] }"#);
}

#[test]
fn blanks_around_entries_are_ignored_and_order_is_kept() {
    let keys = keys(&format!(" new : {} ,\told:{}\n", key(3), key(4)));
    assert_eq!(keys.ids().collect::<Vec<_>>(), ["new", "old"]);
    assert_eq!(keys.sealing_key_id(), Some("new"));
}

#[test]
fn malformed_values_are_refused_naming_the_variable_and_never_the_key() {
    let good = key(5);
    let short = STANDARD.encode([5u8; 16]);
    let cases = [
        (String::new(), "holds no key"),
        (format!("k1:{good},"), "entry 2 is empty"),
        (good.clone(), "entry 1 is not `id:base64key`"),
        (format!(":{good}"), "entry 1 has an empty key id"),
        (format!("k 1:{good}"), "entry 1 has a key id that is not"),
        (format!("{}:{good}", "k".repeat(33)), "entry 1 has a key id"),
        (format!("k/1:{good}"), "entry 1 has a key id"),
        (
            format!("k1:{good},k1:{}", key(6)),
            "key id `k1` is used twice",
        ),
        (
            format!("k1:{}!", &good[..43]),
            "key `k1` is not valid base64",
        ),
        (
            format!("k1:{}", &good[..42]),
            "key `k1` is not valid base64",
        ),
        (
            format!("k1:{short}"),
            "key `k1` is 16 bytes; AES-256 needs 32",
        ),
    ];
    for (value, expected) in cases {
        let message = PayloadKeys::parse(VAR, &value).unwrap_err().to_string();
        assert!(message.starts_with(VAR), "{value:?}: {message}");
        assert!(message.contains(expected), "{value:?}: {message}");
        for secret in [&good, &short] {
            assert!(!message.contains(&secret[..8]), "{message} echoes a key");
        }
    }
}

#[test]
fn an_id_of_32_plain_characters_is_accepted() {
    let id = "Key-2026.11_a".repeat(3)[..32].to_owned();
    assert_eq!(
        keys(&format!("{id}:{}", key(1))).sealing_key_id(),
        Some(&*id)
    );
}
