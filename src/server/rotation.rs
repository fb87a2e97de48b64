//! The end of a secret rotation (`secrets.previous_valid_until`): the verifier refuses the
//! previous secret from then on, and the moment it passes while serving is logged once.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use crate::config::{Secrets, SecretsSettings, key_bytes};
use crate::signing::Verifier;

/// The wall clock is read again at least this often, so a clock that jumps is followed.
const LONGEST_NAP: Duration = Duration::from_secs(3600);

/// The current secret, then the previous one (until the rotation's end, when set).
pub fn verifier(secrets: &Secrets, rotation: &SecretsSettings) -> Verifier {
    let keys = std::iter::once(&secrets.webhook).chain(secrets.webhook_previous.as_ref());
    let verifier = Verifier::new(keys.map(key_bytes));
    match rotation.previous_valid_until {
        Some(deadline) => verifier.previous_until(deadline, OffsetDateTime::now_utc),
        None => verifier,
    }
}

/// When a previous secret is accepted now but has an end: that end, to announce.
pub fn end_ahead(secrets: &Secrets, rotation: &SecretsSettings) -> Option<OffsetDateTime> {
    secrets.webhook_previous.as_ref()?;
    rotation
        .previous_valid_until
        .filter(|deadline| *deadline > OffsetDateTime::now_utc())
}

/// Waits for `deadline` (or `shutdown`) and logs, once, that the previous secret is refused
/// from now on. (An end already passed at start is among the start-up warnings instead.)
pub async fn announce_end(deadline: Option<OffsetDateTime>, shutdown: CancellationToken) {
    let Some(deadline) = deadline else { return };
    loop {
        let left = deadline - OffsetDateTime::now_utc();
        let Ok(left) = Duration::try_from(left) else {
            break;
        };
        if left.is_zero() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(left.min(LONGEST_NAP)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
    let at = deadline.format(&Rfc3339).unwrap_or_default();
    tracing::warn!(
        previous_valid_until = %at,
        "the previous webhook secret has expired: signatures made with it are refused from now \
         on; remove AUDIAN_WEBHOOK_PREVIOUS_SECRET"
    );
}
