//! Reading `id:base64key,id2:base64key` strictly: a key that is not exactly 256 bits, or an
//! id that could be mistaken for another, stops the start with an error naming the variable
//! and the entry — never echoing key material.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::zeroize::Zeroizing;

use super::{NamedKey, PayloadKeys};

/// Key ids are stored beside every sealed row and printed by the CLI: short and plain.
const MAX_ID_CHARS: usize = 32;

/// AES-256 keys are 32 bytes.
const KEY_BYTES: usize = 32;

const HOW_TO_MAKE: &str = "make one with `head -c 32 /dev/urandom | base64`";

/// What is wrong with the value of the keys variable (named in every message). Entries are
/// counted from 1; a key is named by its id once the id is known to be sound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    #[error("{variable} holds no key: write `id:base64key`, several separated by commas")]
    Empty { variable: String },
    #[error("{variable}: entry {entry} is empty (a stray comma?)")]
    EmptyEntry { variable: String, entry: usize },
    #[error("{variable}: entry {entry} is not `id:base64key` (no `:` after an id)")]
    NoId { variable: String, entry: usize },
    #[error("{variable}: entry {entry} has an empty key id; write `id:base64key`")]
    EmptyId { variable: String, entry: usize },
    #[error(
        "{variable}: entry {entry} has a key id that is not 1 to {MAX_ID_CHARS} of the \
         characters A-Z a-z 0-9 . _ -"
    )]
    BadId { variable: String, entry: usize },
    #[error("{variable}: key id `{id}` is used twice; give every key its own id")]
    DuplicateId { variable: String, id: String },
    #[error("{variable}: key `{id}` is not valid base64 ({HOW_TO_MAKE})")]
    BadBase64 { variable: String, id: String },
    #[error("{variable}: key `{id}` is {bytes} bytes; AES-256 needs {KEY_BYTES} ({HOW_TO_MAKE})")]
    WrongLength {
        variable: String,
        id: String,
        bytes: usize,
    },
}

impl PayloadKeys {
    /// Parses `value` (the contents of `variable`): comma-separated `id:base64key` entries,
    /// blanks around each ignored, the first key sealing.
    pub fn parse(variable: &str, value: &str) -> Result<Self, KeysError> {
        let variable = variable.to_owned();
        if value.trim().is_empty() {
            return Err(KeysError::Empty { variable });
        }
        let mut keys: Vec<NamedKey> = Vec::new();
        for (index, entry) in value.split(',').enumerate() {
            let key = parse_entry(&variable, index + 1, entry.trim())?;
            if keys.iter().any(|k| k.id == key.id) {
                let id = key.id;
                return Err(KeysError::DuplicateId { variable, id });
            }
            keys.push(key);
        }
        Ok(Self::from_keys(keys))
    }
}

fn parse_entry(variable: &str, entry: usize, text: &str) -> Result<NamedKey, KeysError> {
    let variable = variable.to_owned();
    if text.is_empty() {
        return Err(KeysError::EmptyEntry { variable, entry });
    }
    let Some((id, encoded)) = text.split_once(':') else {
        return Err(KeysError::NoId { variable, entry });
    };
    let id = id.trim();
    if id.is_empty() {
        return Err(KeysError::EmptyId { variable, entry });
    }
    if !is_plain_id(id) {
        return Err(KeysError::BadId { variable, entry });
    }
    let id = id.to_owned();
    let bytes = STANDARD
        .decode(encoded.trim())
        .map(Zeroizing::new)
        .map_err(|_| KeysError::BadBase64 {
            variable: variable.clone(),
            id: id.clone(),
        })?;
    if bytes.len() != KEY_BYTES {
        let bytes = bytes.len();
        return Err(KeysError::WrongLength {
            variable,
            id,
            bytes,
        });
    }
    Ok(NamedKey::new(&id, &bytes).expect("ring takes any 32-byte AES-256 key"))
}

fn is_plain_id(id: &str) -> bool {
    id.len() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
