//! Who is on the other end of a Runtime API connection, for the host
//! network mode: there the endpoint is a port on the host's loopback that
//! every local process can reach, so each accepted connection is checked
//! against the instance's own uid (every instance runs as a uid of its own)
//! and closed otherwise.
//!
//! The owner of the peer's socket comes from the kernel's TCP table of the
//! agent's network namespace (`/proc/net/tcp`, `/proc/net/tcp6`): the entry
//! whose local address is the peer's and whose remote address is ours.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The uid owning the socket at `peer` connected to `local`, if the
/// kernel's TCP tables (in the caller's network namespace) list it.
pub fn socket_owner(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            find_owner(&text, peer, local)
        })
}

/// Finds, in the text of a `/proc/net/tcp`(6) table, the uid of the socket
/// with local address `peer` and remote address `local`.
fn find_owner(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
        let (this, remote, uid) = (fields.get(1)?, fields.get(2)?, fields.get(7)?);
        (same(parse_address(this)?, peer) && same(parse_address(remote)?, local))
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// Equal, treating IPv4-mapped IPv6 addresses as their IPv4 address.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
}

/// Decodes `0100007F:1F91` (an address as 32-bit words in host byte order,
/// then the port in hex).
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // Each word is printed as the host-order u32 of 4 network-order bytes;
    // `to_ne_bytes` gives those bytes back.
    let word = |i: usize| {
        let value = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(value.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:A2C4 0100007F:1F91 01 00000000:00000000 00:00000000 00000000 100005        0 2 1 0000000000000000 20 4 30 10 -1\n   2: 0100007F:1F91 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1\n";

    #[cfg(target_endian = "little")]
    #[test]
    fn finds_the_uid_of_the_connecting_socket() {
        let server: SocketAddr = "127.0.0.1:8081".parse().unwrap();
        let client: SocketAddr = "127.0.0.1:41668".parse().unwrap();
        assert_eq!(find_owner(TABLE, client, server), Some(100_005));
        // The server's own accepted socket is root's, the other direction.
        assert_eq!(find_owner(TABLE, server, client), Some(0));
        let stranger: SocketAddr = "127.0.0.1:41669".parse().unwrap();
        assert_eq!(find_owner(TABLE, stranger, server), None);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn decodes_ipv6_and_mapped_addresses() {
        let mapped = parse_address("0000000000000000FFFF00000100007F:1F91").unwrap();
        assert!(same(mapped, "127.0.0.1:8081".parse().unwrap()));
        let loopback = parse_address("00000000000000000000000001000000:0016").unwrap();
        assert_eq!(loopback, "[::1]:22".parse().unwrap());
    }

    #[test]
    fn a_live_connection_is_found_with_its_owner() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(local).unwrap();
        let (_accepted, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(
            socket_owner(peer, local),
            Some(nix::unistd::geteuid().as_raw())
        );
    }
}
