//! The first checks on every public request: who the client is (behind a trusted proxy, the
//! forwarded client), then the IP allowlist, then the per-client rate limit.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::forwarded::TrustedProxies;
use crate::config::ServerSettings;
use crate::intake::ClientAddr;
use crate::intake::refusal::Refusal;
use crate::telemetry::Metrics;

pub struct Guard {
    proxies: TrustedProxies,
    allowed: Vec<IpNet>,
    /// Keyed by [`rate_key`]: one bucket per IPv4 address or IPv6 /64.
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    metrics: Arc<Metrics>,
}

impl Guard {
    pub fn new(settings: &ServerSettings, metrics: Arc<Metrics>) -> Arc<Self> {
        let limiter = settings.rate_limit.as_ref().map(|limit| {
            let per_second = NonZeroU32::new(limit.per_second).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
        });
        let proxies = TrustedProxies::new(settings.trusted_proxies.clone());
        Arc::new(Self {
            proxies,
            allowed: settings.allowed_ips.clone(),
            limiter,
            metrics,
        })
    }

    /// The client address, already canonical (IPv4-mapped IPv6 as IPv4).
    fn admit(&self, ip: IpAddr) -> Result<(), Refusal> {
        if !self.allowed.is_empty() && !self.allowed.iter().any(|net| net.contains(&ip)) {
            return Err(Refusal::Forbidden);
        }
        if let Some(limiter) = &self.limiter {
            limiter
                .check_key(&rate_key(ip))
                .map_err(|not_until| Refusal::TooManyRequests {
                    retry_after: not_until.wait_time_from(DefaultClock::default().now()),
                })?;
        }
        Ok(())
    }

    /// Forgets idle clients now and then, so the limiter's memory stays bounded.
    pub fn spawn_housekeeping(self: &Arc<Self>) {
        if self.limiter.is_none() {
            return;
        }
        let guard = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(guard) = guard.upgrade() else { return };
                if let Some(limiter) = &guard.limiter {
                    limiter.retain_recent();
                }
            }
        });
    }
}

/// The rate limiter's key: an IPv4 address, or the /64 of an IPv6 address — the smallest
/// allocation a subscriber gets, so a client rotating through its own /64 is one client.
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !(u128::MAX >> 64))),
        v4 => v4,
    }
}

/// Resolves the client, records it in the request's log span and extensions, and admits it.
pub async fn check(
    State(guard): State<Arc<Guard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let admitted = guard
        .proxies
        .client(peer.ip(), request.headers())
        .map_err(|error| {
            tracing::info!(peer = %peer.ip(), %error, "refused: forwarding headers");
            Refusal::InvalidRequest
        })
        .and_then(|client| {
            tracing::Span::current().record("client_ip", tracing::field::display(client));
            guard.admit(client).map(|()| client)
        });
    match admitted {
        Ok(client) => {
            request.extensions_mut().insert(ClientAddr(client));
            next.run(request).await
        }
        Err(refusal) => {
            guard.metrics.count_request(refusal.label());
            refusal.answer_request(request)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rate_key;

    fn key(ip: &str) -> String {
        rate_key(ip.parse().unwrap()).to_string()
    }

    #[test]
    fn ipv6_clients_share_a_key_per_64() {
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }

    #[test]
    fn ipv4_clients_are_keyed_per_address_also_when_mapped() {
        assert_eq!(key("198.51.100.7"), "198.51.100.7");
        assert_eq!(key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_ne!(key("198.51.100.7"), key("198.51.100.8"));
    }
}
