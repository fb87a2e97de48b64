//! Who the client is behind a proxy: `X-Forwarded-For` and `Forwarded` (RFC 7239) are read
//! only when the TCP peer is a trusted proxy, and then only as far as trusted hops vouch for
//! them — the right-most hop that is not a trusted proxy is the client.
//!
//! Everything left of that hop was written by the client itself and is ignored, so a spoofed
//! left-most entry changes nothing. A chain that a trusted proxy wrote but that cannot be
//! read (an unparsable or `unknown` entry where the client should be, or the two headers
//! naming different clients) is refused with 400 rather than answered with the proxy's own
//! address: falling back would let a malformed header turn any request into "the proxy",
//! which an allowlist naming internal networks would admit, and would put all such requests
//! in the proxy's one rate-limit bucket.

mod parse;

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// A trusted proxy sent a forwarding chain that names no client we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a trusted proxy sent an unreadable or contradictory forwarding chain")]
pub struct MalformedChain;

/// One hop of a chain: its address, or `None` when the entry is unreadable, `unknown` or an
/// obfuscated identifier (RFC 7239 §6.3).
type Hop = Option<IpAddr>;

/// The networks (`server.trusted_proxies`) whose requests may say who the client is.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with `headers` (IPv4-mapped IPv6
    /// addresses canonicalised to IPv4).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> Result<IpAddr, MalformedChain> {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return Ok(peer);
        }
        let xff = parse::x_forwarded_for(headers).map(|chain| self.walk(peer, &chain));
        let forwarded = parse::forwarded(headers).map(|chain| self.walk(peer, &chain?));
        match (xff, forwarded) {
            (None, None) => Ok(peer),
            (Some(one), None) | (None, Some(one)) => one,
            // A proxy that writes both writes the same client into both; when they differ,
            // one of them came from the client and we cannot tell which.
            (Some(a), Some(b)) => match (a?, b?) {
                (a, b) if a == b => Ok(a),
                _ => Err(MalformedChain),
            },
        }
    }

    /// From the peer leftwards: each trusted hop vouches for the entry before it; the first
    /// untrusted one is the client. A chain of trusted hops only ends at its left-most entry.
    fn walk(&self, peer: IpAddr, chain: &[Hop]) -> Result<IpAddr, MalformedChain> {
        let mut client = peer;
        for hop in chain.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            client = hop.ok_or(MalformedChain)?.to_canonical();
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
        ])
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn client(peer: &str, pairs: &[(&'static str, &str)]) -> Result<String, MalformedChain> {
        proxies()
            .client(peer.parse().unwrap(), &headers(pairs))
            .map(|ip| ip.to_string())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let claims = [("x-forwarded-for", "198.51.100.7"), ("forwarded", "for=x")];
        assert_eq!(client("203.0.113.9", &claims).unwrap(), "203.0.113.9");
    }

    #[test]
    fn a_trusted_peer_without_headers_is_the_client() {
        assert_eq!(client("127.0.0.1", &[]).unwrap(), "127.0.0.1");
    }

    #[test]
    fn the_right_most_untrusted_hop_wins_over_spoofed_left_most_entries() {
        let xff = [("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.2")];
        assert_eq!(client("127.0.0.1", &xff).unwrap(), "198.51.100.7");
        let junk_left = [("x-forwarded-for", "not an address, 198.51.100.7")];
        assert_eq!(client("127.0.0.1", &junk_left).unwrap(), "198.51.100.7");
    }

    #[test]
    fn every_instance_of_the_header_counts_in_order() {
        let split = [
            ("x-forwarded-for", "1.1.1.1, 198.51.100.7"),
            ("x-forwarded-for", "10.0.0.2"),
        ];
        assert_eq!(client("127.0.0.1", &split).unwrap(), "198.51.100.7");
        let forwarded = [
            ("forwarded", "for=1.1.1.1"),
            ("forwarded", "for=\"[2001:db8::7]:443\", for=10.0.0.2"),
        ];
        assert_eq!(client("127.0.0.1", &forwarded).unwrap(), "2001:db8::7");
    }

    #[test]
    fn a_chain_of_only_trusted_hops_ends_at_its_left_most_entry() {
        let xff = [("x-forwarded-for", "10.0.0.3, 10.0.0.2")];
        assert_eq!(client("127.0.0.1", &xff).unwrap(), "10.0.0.3");
    }

    #[test]
    fn an_unreadable_entry_a_trusted_proxy_vouches_for_is_refused() {
        for bad in [
            "198.51.100.7, garbage",
            "198.51.100.7, 10.0.0.2 x",
            "unknown",
        ] {
            let xff = [("x-forwarded-for", bad)];
            assert_eq!(client("127.0.0.1", &xff), Err(MalformedChain), "{bad:?}");
        }
        let unknown = [("forwarded", "for=unknown")];
        assert_eq!(client("127.0.0.1", &unknown), Err(MalformedChain));
        let broken = [("forwarded", "for=\"198.51.100.7")];
        assert_eq!(client("127.0.0.1", &broken), Err(MalformedChain));
    }

    #[test]
    fn both_headers_must_name_the_same_client() {
        let agree = [
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.7;proto=https"),
        ];
        assert_eq!(client("127.0.0.1", &agree).unwrap(), "198.51.100.7");
        let disagree = [
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=192.0.2.1"),
        ];
        assert_eq!(client("127.0.0.1", &disagree), Err(MalformedChain));
    }

    #[test]
    fn ipv4_mapped_addresses_are_canonicalised_before_any_check() {
        let xff = [("x-forwarded-for", "::ffff:198.51.100.7")];
        assert_eq!(client("::ffff:127.0.0.1", &xff).unwrap(), "198.51.100.7");
    }
}
