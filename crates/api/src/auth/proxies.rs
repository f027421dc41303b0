//! Which client a request comes from, behind the TLS proxies a deployment
//! puts in front of airsync. The connection's peer is the client unless it
//! is one of the configured proxies (`API_TRUSTED_PROXIES`); then
//! `X-Forwarded-For` is read from the right, each trusted proxy skipped,
//! and the first address no proxy of ours wrote is the client's. A client
//! can write anything into the header, so nothing left of that address is
//! believed, and without trusted proxies the header is ignored altogether.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// Addresses and networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// None: the peer is always the client.
    pub fn none() -> TrustedProxies {
        TrustedProxies::default()
    }

    /// A comma-separated list of addresses and CIDR networks, e.g.
    /// `10.0.0.0/8, 192.168.1.7, fd00::/8`.
    pub fn parse(raw: &str) -> Result<TrustedProxies, String> {
        let mut networks = Vec::new();
        for item in raw
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (address, bits) = match item.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (item, None),
            };
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("{item:?} is not an IP address or a CIDR network"))?;
            let width = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => width,
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|bits| *bits <= width)
                    .ok_or_else(|| format!("{item:?}: the prefix must be 0 to {width}"))?,
            };
            networks.push((address.to_canonical(), bits));
        }
        Ok(TrustedProxies { networks })
    }

    /// Whether any proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks
            .iter()
            .any(|(network, bits)| same_prefix(*network, address, *bits))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>() else {
                // Unreadable: the last proxy of ours is all we know.
                return client;
            };
            client = address.to_canonical();
            if !self.contains(client) {
                return client;
            }
        }
        client
    }
}

fn same_prefix(network: IpAddr, address: IpAddr, bits: u8) -> bool {
    match (network, address) {
        (IpAddr::V4(network), IpAddr::V4(address)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(network) & mask == u32::from(address) & mask
        }
        (IpAddr::V6(network), IpAddr::V6(address)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(network) & mask == u128::from(address) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let proxies = TrustedProxies::none();
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &headers), ip("10.0.0.2"));
    }

    #[test]
    fn behind_trusted_proxies_the_first_address_no_proxy_wrote_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7").unwrap();
        // A client that forged a first hop: only the proxy's own entry counts.
        let headers = forwarded(&["1.2.3.4, 203.0.113.9", "192.168.1.7"]);
        assert_eq!(proxies.client(ip("10.1.2.3"), &headers), ip("203.0.113.9"));
        // From a peer that is no proxy of ours, the header means nothing.
        assert_eq!(
            proxies.client(ip("198.51.100.1"), &headers),
            ip("198.51.100.1")
        );
        // An unreadable hop: the last proxy is all that is known.
        let headers = forwarded(&["203.0.113.9, not-an-address"]);
        assert_eq!(proxies.client(ip("10.1.2.3"), &headers), ip("10.1.2.3"));
        // No header: the proxy itself.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn addresses_networks_and_mapped_addresses_are_matched() {
        let proxies = TrustedProxies::parse(" 127.0.0.1 ,fd00::/8,0.0.0.0/0").unwrap();
        assert!(proxies.contains(ip("::ffff:127.0.0.1")));
        assert!(proxies.contains(ip("fd12::1")));
        assert!(!proxies.contains(ip("fe80::1")));
        assert!(proxies.contains(ip("8.8.8.8")));
        for wrong in [
            "10.0.0.0/33",
            "fd00::/129",
            "proxy.example.com",
            "10.0.0.0/x",
        ] {
            assert!(TrustedProxies::parse(wrong).is_err(), "{wrong}");
        }
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }
}
