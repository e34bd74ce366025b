//! The network a client address is counted under, by every per-client limit (connections,
//! sign-in attempts): an IPv4 address whole, an IPv6 address by its /64 (one subscriber's
//! allocation: a client picks any address in it at will), and an IPv4-mapped IPv6 address as
//! the IPv4 address it is. Pure.

use std::net::{IpAddr, Ipv6Addr};

/// The key `address` is counted under.
pub fn client_network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_slash_64() {
        let check = |address: &str, key: &str| {
            assert_eq!(
                client_network(address.parse().unwrap()),
                key.parse::<IpAddr>().unwrap(),
                "{address}"
            );
        };
        check("192.0.2.7", "192.0.2.7");
        check("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::");
        check("::ffff:192.0.2.7", "192.0.2.7");
    }
}
