//! Addresses with a prefix length (`198.18.0.2/24`, `fd42::2/64`):
//! parsing, and whether an address lies in a subnet.
//!
//! `check.rs` parses the builders' address and route strings into
//! [`Cidr`]s while it checks a `Network`; they travel in the `NetPlan`,
//! and `messages.rs` puts them into rtnetlink messages.

use std::net::IpAddr;

/// An address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    fn max_prefix(addr: IpAddr) -> u8 {
        if addr.is_ipv4() { 32 } else { 128 }
    }

    /// Parses `ADDR/PREFIX`; a bare address is a host address (/32, /128)
    /// only if `bare_ok`.
    pub(super) fn parse(text: &str, bare_ok: bool) -> Result<Cidr, &'static str> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None if bare_ok => (text, None),
            None => return Err("expected ADDRESS/PREFIX"),
        };
        let addr: IpAddr = addr.parse().map_err(|_| "not an IPv4 or IPv6 address")?;
        let max = Cidr::max_prefix(addr);
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or("prefix length out of range")?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// The address as 128 bits, IPv4 in the top 32.
    fn bits(addr: IpAddr) -> u128 {
        match addr {
            IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
            IpAddr::V6(a) => u128::from(a),
        }
    }

    /// The network part, over [`Cidr::bits`] (IPv4 in the top 32 bits).
    fn mask(&self) -> u128 {
        if self.prefix == 0 { 0 } else { !0u128 << (128 - u32::from(self.prefix)) }
    }

    /// Whether `ip` lies in this address's subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && (Cidr::bits(ip) ^ Cidr::bits(self.addr)) & self.mask() == 0
    }

    pub(super) fn host_bits_set(&self) -> bool {
        Cidr::bits(self.addr) & !self.mask() != 0
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing_and_subnets() {
        let c = Cidr::parse("198.18.0.2/24", false).unwrap();
        assert!(c.contains("198.18.0.200".parse().unwrap()));
        assert!(!c.contains("198.18.1.1".parse().unwrap()));
        assert!(!c.contains("fd42::1".parse().unwrap()));
        let v6 = Cidr::parse("fd42:1::2/64", false).unwrap();
        assert!(v6.contains("fd42:1::ffff".parse().unwrap()));
        assert!(!v6.contains("fd42:2::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0", false).unwrap().contains("1.2.3.4".parse().unwrap()));
        assert!(Cidr::parse("198.18.0.2", false).is_err());
        assert_eq!(Cidr::parse("198.18.0.2", true).unwrap().prefix, 32);
        assert!(Cidr::parse("198.18.0.2/33", false).is_err());
        assert!(Cidr::parse("fd42::1/129", false).is_err());
        assert!(Cidr::parse("198.18.0.0/16", true).map(|c| !c.host_bits_set()).unwrap());
        assert!(Cidr::parse("198.18.0.1/16", true).unwrap().host_bits_set());
        assert!(Cidr::parse("fd42::1/64", true).unwrap().host_bits_set());
        assert!(!Cidr::parse("fd42::/16", true).unwrap().host_bits_set());
    }
}
