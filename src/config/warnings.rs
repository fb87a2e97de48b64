//! Settings that are valid but dangerous or pointless: `serve` logs each at start and
//! `check-config` prints each, so an operator sees them before they matter.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Secrets, Settings, TlsMode};

impl Settings {
    /// Every warning for these settings with these secrets, as of `now`.
    pub fn warnings(&self, secrets: &Secrets, now: OffsetDateTime) -> Vec<String> {
        let mut warnings = Vec::new();
        for network in self.server.trusted_proxies.iter() {
            if network.prefix_len() == 0 {
                warnings.push(format!(
                    "server.trusted_proxies holds {network}: EVERY client can set \
                     X-Forwarded-For or Forwarded and pick the address the allowlist, the rate \
                     limit and the stored source_ip see. List only your proxies' own networks"
                ));
            }
        }
        let per_client = !self.server.allowed_ips.is_empty() || self.server.rate_limit.is_some();
        if self.tls.mode == TlsMode::Off && self.server.trusted_proxies.is_empty() && per_client {
            warnings.push(
                "tls.mode = \"off\" (behind a proxy) but server.trusted_proxies is empty: every \
                 request seems to come from the proxy, so server.allowed_ips and \
                 server.rate_limit see one client. List the proxy's network there"
                    .to_owned(),
            );
        }
        if let Some(deadline) = self.secrets.previous_valid_until {
            let at = deadline
                .format(&Rfc3339)
                .unwrap_or_else(|_| deadline.to_string());
            if secrets.webhook_previous.is_none() {
                warnings.push(format!(
                    "secrets.previous_valid_until is set ({at}) but AUDIAN_WEBHOOK_PREVIOUS_SECRET \
                     is not: there is no previous secret for it to end"
                ));
            } else if deadline <= now {
                warnings.push(format!(
                    "secrets.previous_valid_until ({at}) has passed: signatures made with \
                     AUDIAN_WEBHOOK_PREVIOUS_SECRET are refused. Remove that variable"
                ));
            }
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

    fn secrets(previous: bool) -> Secrets {
        Secrets {
            webhook: SecretString::from("current"),
            webhook_previous: previous.then(|| SecretString::from("previous")),
            forward_signing: None,
            payload_keys: crate::sealing::PayloadKeys::none(),
            console_token: None,
        }
    }

    fn rotating_until(deadline: OffsetDateTime) -> Settings {
        let mut settings = Settings::default();
        settings.secrets.previous_valid_until = Some(deadline);
        settings
    }

    #[test]
    fn default_settings_warn_of_nothing() {
        assert!(Settings::default().warnings(&secrets(true), NOW).is_empty());
    }

    #[test]
    fn a_trusted_proxy_network_of_everyone_is_warned_of() {
        let mut settings = Settings::default();
        settings.server.trusted_proxies = ["0.0.0.0/0", "::/0", "10.0.0.0/8"]
            .map(|n| n.parse().unwrap())
            .to_vec();
        let warnings = settings.warnings(&secrets(false), NOW);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("holds 0.0.0.0/0: EVERY client"));
        assert!(warnings[1].contains("holds ::/0: EVERY client"));
    }

    #[test]
    fn an_allowlist_behind_a_proxy_without_trusted_proxies_is_warned_of() {
        let mut settings = Settings::default();
        settings.tls.mode = TlsMode::Off;
        assert!(settings.warnings(&secrets(false), NOW).is_empty());
        settings.server.allowed_ips = vec!["198.51.100.0/24".parse().unwrap()];
        let warnings = settings.warnings(&secrets(false), NOW);
        assert!(
            warnings[0].contains("server.trusted_proxies is empty"),
            "{warnings:?}"
        );
        settings.server.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(settings.warnings(&secrets(false), NOW).is_empty());
    }

    #[test]
    fn a_rotation_end_is_warned_of_once_passed_or_without_a_previous_secret() {
        let ahead = rotating_until(NOW + time::Duration::HOUR);
        assert!(ahead.warnings(&secrets(true), NOW).is_empty());
        let passed = rotating_until(NOW).warnings(&secrets(true), NOW);
        assert!(
            passed[0].contains("(2030-01-01T00:00:00Z) has passed"),
            "{passed:?}"
        );
        let pointless = ahead.warnings(&secrets(false), NOW);
        assert!(
            pointless[0].contains("AUDIAN_WEBHOOK_PREVIOUS_SECRET is not"),
            "{pointless:?}"
        );
    }
}
