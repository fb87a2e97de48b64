//! Encryption at rest of stored payloads (DESIGN §4): AES-256-GCM under named keys, a fresh
//! random nonce per payload and the event id as associated data, so a sealed payload can be
//! read only with its key and cannot be moved to another event's row unnoticed. Neutral
//! ground: the store seals, forwarding and the commands open, config parses the keys.

mod keys;

pub use keys::KeysError;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce};
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes a sealed payload has beyond its plaintext: the nonce before it, the tag after it.
pub const OVERHEAD: usize = NONCE_LEN + 16;

/// The configured payload keys, the first of which seals; any of them opens. Cheap to clone.
/// `Debug` prints the key ids only.
#[derive(Clone)]
pub struct PayloadKeys {
    keys: Arc<[NamedKey]>,
    random: SystemRandom,
}

struct NamedKey {
    id: String,
    key: LessSafeKey,
}

/// A payload sealed under the first key: `nonce ‖ ciphertext ‖ tag`, and that key's id.
#[derive(Debug)]
pub struct Sealed<'a> {
    pub key_id: &'a str,
    pub bytes: Vec<u8>,
}

/// Sealing failed inside the crypto library (no randomness, or an absurd length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sealing the payload failed")]
pub struct SealError;

/// Why a stored payload cannot be opened. The text names the key id, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("payload sealed under unknown key `{0}`")]
    UnknownKey(String),
    #[error("payload sealed under key `{0}` does not open (altered, or not this event's)")]
    Refused(String),
}

impl OpenError {
    /// The id of the key the payload says it is sealed under.
    pub fn key_id(&self) -> &str {
        match self {
            Self::UnknownKey(id) | Self::Refused(id) => id,
        }
    }
}

impl PayloadKeys {
    /// No keys: payloads are stored in clear, and a sealed one cannot be opened.
    pub fn none() -> Self {
        Self::from_keys(Vec::new())
    }

    fn from_keys(keys: Vec<NamedKey>) -> Self {
        Self {
            keys: keys.into(),
            random: SystemRandom::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every key id, the sealing one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// The id of the key new payloads are sealed under; `None` when payloads stay clear.
    pub fn sealing_key_id(&self) -> Option<&str> {
        self.keys.first().map(|k| k.id.as_str())
    }

    /// Seals `plaintext` under the first key, bound to `event_id`; `Ok(None)` when no key is
    /// configured (the payload is stored clear).
    pub fn seal(&self, event_id: &str, plaintext: &[u8]) -> Result<Option<Sealed<'_>>, SealError> {
        let Some(first) = self.keys.first() else {
            return Ok(None);
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| SealError)?;
        let mut bytes = Vec::with_capacity(plaintext.len() + OVERHEAD);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(plaintext);
        let tag = first
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(event_id.as_bytes()),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| SealError)?;
        bytes.extend_from_slice(tag.as_ref());
        Ok(Some(Sealed {
            key_id: &first.id,
            bytes,
        }))
    }

    /// Says once, at start, how payloads are stored: a warning when they stay clear.
    pub fn announce(&self) {
        match self.sealing_key_id() {
            Some(key_id) => tracing::info!(
                key_id,
                keys = self.keys.len(),
                "payloads are sealed at rest (AES-256-GCM)"
            ),
            None => tracing::warn!(
                "AUDIAN_PAYLOAD_KEYS is not set: payloads are stored in clear; set it to \
                 encrypt them at rest"
            ),
        }
    }

    /// The plaintext of a stored payload: `stored` itself when `key_id` is `None` (stored
    /// clear), else `stored` opened with that key and `event_id` as associated data.
    pub fn open<'a>(
        &self,
        event_id: &str,
        key_id: Option<&str>,
        stored: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, OpenError> {
        let Some(key_id) = key_id else {
            return Ok(Cow::Borrowed(stored));
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| OpenError::UnknownKey(key_id.to_owned()))?;
        let refused = || OpenError::Refused(key_id.to_owned());
        if stored.len() < OVERHEAD {
            return Err(refused());
        }
        let (nonce, sealed) = stored.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut in_out = sealed.to_vec();
        let plaintext_len = key
            .key
            .open_in_place(nonce, Aad::from(event_id.as_bytes()), &mut in_out)
            .map_err(|_| refused())?
            .len();
        in_out.truncate(plaintext_len);
        Ok(Cow::Owned(in_out))
    }
}

impl fmt::Debug for PayloadKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadKeys")
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

impl NamedKey {
    /// `bytes` must be 32 bytes long (the caller checked).
    fn new(id: &str, bytes: &[u8]) -> Option<Self> {
        let key = ring::aead::UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        Some(Self {
            id: id.to_owned(),
            key: LessSafeKey::new(key),
        })
    }
}

#[cfg(test)]
mod tests;
