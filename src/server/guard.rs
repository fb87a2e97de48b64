//! The first checks on every public request: the IP allowlist, then the per-IP rate limit.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::Refusal;
use crate::config::ServerSettings;
use crate::telemetry::Metrics;

pub struct Guard {
    allowed: Vec<IpNet>,
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
        Arc::new(Self {
            allowed: settings.allowed_ips.clone(),
            limiter,
            metrics,
        })
    }

    fn admit(&self, ip: IpAddr) -> Result<(), Refusal> {
        // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        if !self.allowed.is_empty() && !self.allowed.iter().any(|net| net.contains(&ip)) {
            return Err(Refusal::Forbidden);
        }
        if let Some(limiter) = &self.limiter {
            limiter
                .check_key(&ip)
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

pub async fn check(
    State(guard): State<Arc<Guard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match guard.admit(peer.ip()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            guard.metrics.count_request(refusal.label());
            refusal.answer_unread(request.into_body())
        }
    }
}
