//! `keys rotate`: after a new key is put first in AUDIAN_PAYLOAD_KEYS, bring every stored
//! payload under it, so the old key can then be removed.

use anyhow::Context;

use super::CommandError;
use crate::cli::KeysCommand;
use crate::config::{PAYLOAD_KEYS, Settings, payload_keys_from_env};
use crate::store;
use crate::store::rotation::{self, Rotation};

pub async fn run(settings: &Settings, command: KeysCommand) -> Result<(), CommandError> {
    match command {
        KeysCommand::Rotate => rotate(settings).await,
    }
}

async fn rotate(settings: &Settings) -> Result<(), CommandError> {
    let keys = payload_keys_from_env()?;
    let Some(first) = keys.sealing_key_id() else {
        return Err(CommandError::Usage(format!(
            "{PAYLOAD_KEYS} (or {PAYLOAD_KEYS}_FILE) is not set: there is no key to re-seal under"
        )));
    };
    let pool = store::pool(&settings.database).context("database.url")?;
    let rotation = rotation::rotate(&pool, &keys)
        .await
        .context("re-sealing payloads")?;
    print!("{}", report(first, &rotation));
    if rotation.unopened() > 0 || rotation.remaining > 0 {
        return Err(CommandError::Runtime(anyhow::anyhow!(
            "not every stored payload is sealed under key `{first}` yet (see above)"
        )));
    }
    Ok(())
}

/// What was re-sealed and, line by line, what was not and why.
fn report(first: &str, rotation: &Rotation) -> String {
    let mut out = format!(
        "re-sealed {} payloads under key `{first}`\n",
        rotation.resealed
    );
    out.push_str(&format!(
        "could not open {} payloads (left as they are)\n",
        rotation.unopened()
    ));
    for (key_id, rows) in &rotation.unknown_keys {
        out.push_str(&format!(
            "  {rows} sealed under unknown key `{key_id}`: add the key back, or forget them \
             with `events forget`\n"
        ));
    }
    for (event_id, key_id) in &rotation.refused {
        out.push_str(&format!(
            "  {event_id:?}: sealed under key `{key_id}` but does not open (altered?)\n"
        ));
    }
    if rotation.remaining > 0 {
        out.push_str(&format!(
            "{} payloads are still clear or under another key (held by another transaction, \
             or written meanwhile by a receiver started with another first key): run \
             `keys rotate` again\n",
            rotation.remaining
        ));
    }
    out
}
