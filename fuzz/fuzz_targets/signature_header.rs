//! Fuzzes `Verifier::verify` with any header bytes and any body: it must never panic, and it
//! may accept only the true HMAC of the body (in either case, with or without `sha256=`).
//! Input: the header up to the first `\n` (an HTTP header value cannot hold one), then the
//! body; without a `\n` the whole input is the body and the header is missing.

#![no_main]

use audian_receiver::signing::{Key, Verifier, sign};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const CURRENT: &[u8] = b"whsec_fuzz_current";
const PREVIOUS: &[u8] = b"whsec_fuzz_previous";

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (Some(&data[..at]), &data[at + 1..]),
        None => (None, data),
    };
    let verifier = Verifier::new([CURRENT, PREVIOUS]);
    let Ok(verified) = verifier.verify(header, Bytes::copy_from_slice(body)) else {
        return;
    };
    assert_eq!(
        verified.body().as_ref(),
        body,
        "the verified body is the body sent"
    );
    let key = match verified.key() {
        Key::Current => CURRENT,
        Key::Previous => PREVIOUS,
    };
    assert_eq!(
        claimed_hex(header.expect("accepted without a header")),
        sign(key, body),
        "accepted a header that is not the body's HMAC"
    );
});

/// The header as lowercase hex without its optional prefix and surrounding whitespace.
fn claimed_hex(header: &[u8]) -> String {
    let text = std::str::from_utf8(header.trim_ascii()).expect("accepted non-UTF-8 hex");
    let hex = match text.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256=") => &text[7..],
        _ => text,
    };
    hex.to_ascii_lowercase()
}
