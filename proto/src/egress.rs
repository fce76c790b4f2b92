//! Egress allow-list entries of the `outbound` network mode:
//! `CIDR[:PORT]` (e.g. `10.0.0.0/8`, `192.0.2.10:443`, `192.0.2.10/32:53`),
//! turned into nftables matches.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// One allowed destination: an IPv4 network and optionally one port (TCP
/// and UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressRule {
    /// Network address (masked).
    pub network: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Destination port, or every port.
    pub port: Option<u16>,
}

/// An allow-list entry did not parse.
#[derive(Debug, thiserror::Error)]
#[error("egress allow entry '{entry}': {reason} (expected CIDR[:PORT], e.g. 192.0.2.0/24:443)")]
pub struct EgressRuleError {
    /// The entry as given.
    pub entry: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for EgressRule {
    type Err = EgressRuleError;
    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let err = |reason| EgressRuleError {
            entry: entry.to_string(),
            reason,
        };
        let address = entry.trim_start_matches('[').split(['/', ']']).next();
        if entry.starts_with('[') || address.is_some_and(|a| a.parse::<Ipv6Addr>().is_ok()) {
            return Err(err(
                "IPv6 destinations are not supported: outbound sandboxes have no IPv6 at all",
            ));
        }
        let (net, port) = match entry.split_once(':') {
            Some((net, port)) => (
                net,
                Some(
                    port.parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| err("bad port"))?,
                ),
            ),
            None => (entry, None),
        };
        let (ip, prefix) = match net.split_once('/') {
            Some((ip, prefix)) => (
                ip,
                prefix
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= 32)
                    .ok_or_else(|| err("bad prefix length"))?,
            ),
            None => (net, 32),
        };
        let ip: Ipv4Addr = ip.parse().map_err(|_| err("not an IPv4 address"))?;
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(EgressRule {
            network: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
            port,
        })
    }
}

impl EgressRule {
    /// The nftables match selecting this destination.
    pub fn nft_match(&self) -> String {
        let daddr = format!("ip daddr {}/{}", self.network, self.prefix);
        match self.port {
            Some(port) => format!("{daddr} meta l4proto {{ tcp, udp }} th dport {port}"),
            None => daddr,
        }
    }
}

/// Parses a whole allow-list.
pub fn parse_list(entries: &[String]) -> Result<Vec<EgressRule>, EgressRuleError> {
    entries.iter().map(|e| e.parse()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_into_nft_matches() {
        let rule: EgressRule = "192.0.2.10:443".parse().unwrap();
        assert_eq!(
            rule.nft_match(),
            "ip daddr 192.0.2.10/32 meta l4proto { tcp, udp } th dport 443"
        );
        let rule: EgressRule = "10.1.2.3/8".parse().unwrap();
        assert_eq!(rule.nft_match(), "ip daddr 10.0.0.0/8");
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.1:0",
            "10.0.0.1:http",
            "host:80",
            "10.0.0.0/8:443:1",
            "10.0.0.0/-1",
            "10.0.0.1:65536",
            "300.0.0.1",
        ] {
            assert!(bad.parse::<EgressRule>().is_err(), "{bad}");
        }
        for ipv6 in [
            "::1",
            "::/0",
            "2001:db8::/32",
            "2001:db8::1",
            "[2001:db8::1]:443",
        ] {
            let refused = ipv6.parse::<EgressRule>().unwrap_err().to_string();
            assert!(refused.contains("IPv6"), "{ipv6}: {refused}");
        }
    }
}
