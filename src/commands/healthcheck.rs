//! `healthcheck`: the container engine's probe of the process serving beside it. It asks the
//! admin listener's `/readyz` (or `/healthz` with `--live`) and needs nothing else: no secret,
//! no database, no certificate, no shell tool in the image. `/readyz` is the default because a
//! receiver that cannot reach its database answers every event 503: the engine should show it
//! unhealthy, and a load balancer that reads the engine's status should send it nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};

use super::CommandError;
use crate::config::{ConfigError, Scope, Settings};

/// The probe's whole budget: connecting, asking and reading the answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Exit 0 (and one line on stdout) when `/readyz` (`/healthz` if `live`) answers 2xx within
/// [`TIMEOUT`]. Every failure, a bad configuration included, is a [`CommandError::Runtime`]
/// (exit 1): Docker reserves a health command's exit 2.
pub async fn run(path: Option<&Path>, live: bool) -> Result<String, CommandError> {
    let settings = Settings::load(path, Scope::AdminOnly)
        .map_err(|error| anyhow!("configuration: {}", one_line(error)))?;
    let listen = settings.admin.listen;
    if listen.port() == 0 {
        return Err(anyhow!(
            "admin.listen is {listen}: port 0 is chosen at start, so there is no address to probe"
        )
        .into());
    }
    let endpoint = if live { "healthz" } else { "readyz" };
    let url = format!("http://{}/{endpoint}", probe_address(listen));
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|error| anyhow::Error::new(error.without_url()))
        .with_context(|| format!("no answer from {url} (admin.listen = {listen})"))?;
    let status = response.status();
    if status.is_success() {
        Ok(format!("{url} answered {status}"))
    } else {
        Err(anyhow!("{url} (admin.listen = {listen}) answered {status}").into())
    }
}

/// Where a listener bound to `listen` is reached from the same host: a wildcard address
/// (`0.0.0.0`, `[::]`) through loopback.
pub fn probe_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// A health command's output is kept by the engine as one line per probe.
fn one_line(error: ConfigError) -> String {
    match error {
        ConfigError::Problems(problems) => problems.join("; "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_probed_through_loopback() {
        for (listen, probed) in [
            ("0.0.0.0:9090", "127.0.0.1:9090"),
            ("[::]:9090", "[::1]:9090"),
            ("127.0.0.1:9090", "127.0.0.1:9090"),
            ("10.1.2.3:9091", "10.1.2.3:9091"),
            ("[fd00::1]:9090", "[fd00::1]:9090"),
        ] {
            let got = probe_address(listen.parse().unwrap());
            assert_eq!(got.to_string(), probed, "for {listen}");
        }
    }
}
