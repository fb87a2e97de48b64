//! HMAC-SHA256 signing and constant-time verification, shared by intake (proving a webhook
//! came from Audian), forwarding (`X-Receiver-Signature`) and `sign`. Pure, so it is tested
//! with fixed vectors; the time a rotation ends is checked against a clock passed in.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use time::OffsetDateTime;

type HmacSha256 = Hmac<Sha256>;

/// Where the verifier reads the time (`OffsetDateTime::now_utc` when serving; a fixed instant
/// in tests).
pub type Clock = fn() -> OffsetDateTime;

/// The keys a signature may be made with: the current secret and, during a rotation, the
/// previous ones, until the rotation's end when one is set. Each is keyed once; verifying
/// clones the keyed state.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<HmacSha256>,
    /// From this instant (read from the clock) only the current key is accepted.
    previous_until: Option<(OffsetDateTime, Clock)>,
}

/// A body whose signature checked out. Only [`Verifier::verify`] makes one, so nothing
/// downstream can be handed unauthenticated bytes.
#[derive(Debug)]
pub struct Verified {
    body: Bytes,
    key: Key,
}

/// Which secret a valid signature was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Current,
    /// The previous secret, accepted during a rotation: while these still come, it cannot go.
    Previous,
}

impl Key {
    /// The `key` label of `signature_matches_total`.
    pub fn label(self) -> &'static str {
        match self {
            Key::Current => "current",
            Key::Previous => "previous",
        }
    }
}

impl Verified {
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The key that made the signature.
    pub fn key(&self) -> Key {
        self.key
    }

    pub fn into_body(self) -> Bytes {
        self.body
    }
}

/// Why a signature was refused. Callers answer every variant with the same 401; the
/// distinction exists only for metrics and debug logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header missing")]
    Missing,
    #[error("signature header malformed")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
    #[error("signature made with the previous secret after secrets.previous_valid_until")]
    PreviousExpired,
}

impl Verifier {
    /// `secrets` are the raw key bytes, current first.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let keys = secrets
            .into_iter()
            .map(|key| HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length"))
            .collect();
        Self {
            keys,
            previous_until: None,
        }
    }

    /// Refuses signatures made with a previous key from `deadline` on, as told by `clock`.
    pub fn previous_until(self, deadline: OffsetDateTime, clock: Clock) -> Self {
        Self {
            previous_until: Some((deadline, clock)),
            ..self
        }
    }

    /// Checks `header` (hex, either case, optional `sha256=` prefix) against `body`.
    pub fn verify(&self, header: Option<&[u8]>, body: Bytes) -> Result<Verified, SignatureError> {
        self.verify_digest(&decode_header(header)?, body)
    }

    /// Checks a digest already taken from its header by [`decode_header`] against `body`.
    pub fn verify_digest(
        &self,
        claimed: &[u8; 32],
        body: Bytes,
    ) -> Result<Verified, SignatureError> {
        // Every key is tried, and the results combined without branching, so timing does
        // not reveal which key (if any) was close. `first` ends as the index of the first key
        // that matched.
        let mut matched = Choice::from(0);
        let mut first = 0u8;
        for (index, key) in self.keys.iter().enumerate().rev() {
            let mut mac = key.clone();
            mac.update(&body);
            let this = mac.finalize().into_bytes().as_slice().ct_eq(claimed);
            first.conditional_assign(&(index as u8), this);
            matched |= this;
        }
        if !bool::from(matched) {
            return Err(SignatureError::Mismatch);
        }
        if first == 0 {
            return Ok(Verified {
                body,
                key: Key::Current,
            });
        }
        match self.previous_until {
            Some((deadline, clock)) if clock() >= deadline => Err(SignatureError::PreviousExpired),
            _ => Ok(Verified {
                body,
                key: Key::Previous,
            }),
        }
    }
}

/// The digest a signature header claims, or why it claims none. Intake calls it before
/// reading the body, so a request without a well-formed signature costs no body bytes.
pub fn decode_header(value: Option<&[u8]>) -> Result<[u8; 32], SignatureError> {
    let value = value.ok_or(SignatureError::Missing)?.trim_ascii();
    let hex_part = match value.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case(b"sha256=") => &value[7..],
        _ => value,
    };
    let mut decoded = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut decoded).map_err(|_| SignatureError::Malformed)?;
    Ok(decoded)
}

/// Lowercase hex HMAC-SHA256 of `body` with `key`: what `audian-receiver sign` prints and
/// what forwarded messages carry as `X-Receiver-Signature`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    const RFC4231_SIG: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    fn verifier() -> Verifier {
        Verifier::new([b"Jefe".as_slice()])
    }

    fn body() -> Bytes {
        Bytes::from_static(b"what do ya want for nothing?")
    }

    #[test]
    fn signs_the_rfc_4231_vector() {
        assert_eq!(sign(b"Jefe", &body()), RFC4231_SIG);
    }

    #[test]
    fn accepts_lowercase_uppercase_and_prefixed_hex() {
        let upper = RFC4231_SIG.to_uppercase();
        let prefixed = format!("sha256={RFC4231_SIG}");
        let prefixed_upper = format!("SHA256={upper}");
        for header in [RFC4231_SIG, &upper, &prefixed, &prefixed_upper] {
            assert!(
                verifier().verify(Some(header.as_bytes()), body()).is_ok(),
                "{header}"
            );
        }
    }

    #[test]
    fn refuses_a_tampered_body() {
        let tampered = Bytes::from_static(b"what do ya want for nothing!");
        let result = verifier().verify(Some(RFC4231_SIG.as_bytes()), tampered);
        assert_eq!(result.unwrap_err(), SignatureError::Mismatch);
    }

    #[test]
    fn refuses_a_signature_made_with_another_key() {
        let other = sign(b"not-jefe", &body());
        let result = verifier().verify(Some(other.as_bytes()), body());
        assert_eq!(result.unwrap_err(), SignatureError::Mismatch);
    }

    #[test]
    fn refuses_truncated_and_non_hex_signatures() {
        let truncated = &RFC4231_SIG[..62];
        let odd = &RFC4231_SIG[..63];
        let non_hex = RFC4231_SIG.replace('5', "g");
        let too_long = format!("{RFC4231_SIG}00");
        for header in [truncated, odd, &non_hex, &too_long, "", "sha256="] {
            let result = verifier().verify(Some(header.as_bytes()), body());
            assert_eq!(result.unwrap_err(), SignatureError::Malformed, "{header:?}");
        }
    }

    #[test]
    fn refuses_a_missing_header() {
        assert_eq!(
            verifier().verify(None, body()).unwrap_err(),
            SignatureError::Missing
        );
    }

    #[test]
    fn accepts_the_previous_secret_during_rotation_and_says_so() {
        let rotating = Verifier::new([b"new-secret".as_slice(), b"Jefe".as_slice()]);
        let verified = rotating
            .verify(Some(RFC4231_SIG.as_bytes()), body())
            .unwrap();
        assert_eq!(verified.key(), Key::Previous);
        let current = sign(b"new-secret", &body());
        let verified = rotating.verify(Some(current.as_bytes()), body()).unwrap();
        assert_eq!(verified.key(), Key::Current);
    }

    fn rotating_until(deadline: OffsetDateTime, clock: Clock) -> Verifier {
        Verifier::new([b"new-secret".as_slice(), b"Jefe".as_slice()])
            .previous_until(deadline, clock)
    }

    const DEADLINE: OffsetDateTime = time::macros::datetime!(2030-01-01 00:00 UTC);

    fn before_deadline() -> OffsetDateTime {
        DEADLINE - time::Duration::SECOND
    }

    fn at_deadline() -> OffsetDateTime {
        DEADLINE
    }

    #[test]
    fn accepts_the_previous_secret_until_the_end_of_the_rotation() {
        let verified = rotating_until(DEADLINE, before_deadline)
            .verify(Some(RFC4231_SIG.as_bytes()), body())
            .unwrap();
        assert_eq!(verified.key(), Key::Previous);
    }

    #[test]
    fn refuses_the_previous_secret_from_the_end_of_the_rotation_on() {
        let rotating = rotating_until(DEADLINE, at_deadline);
        let result = rotating.verify(Some(RFC4231_SIG.as_bytes()), body());
        assert_eq!(result.unwrap_err(), SignatureError::PreviousExpired);
        let current = sign(b"new-secret", &body());
        let verified = rotating.verify(Some(current.as_bytes()), body()).unwrap();
        assert_eq!(verified.key(), Key::Current);
    }

    #[test]
    fn a_signature_with_the_only_key_is_current() {
        let verified = verifier()
            .verify(Some(RFC4231_SIG.as_bytes()), body())
            .unwrap();
        assert_eq!(verified.key(), Key::Current);
    }

    #[test]
    fn verifies_the_empty_body() {
        let empty = Bytes::new();
        let signature = sign(b"Jefe", &empty);
        assert!(verifier().verify(Some(signature.as_bytes()), empty).is_ok());
    }
}
