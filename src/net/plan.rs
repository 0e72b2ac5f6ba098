//! Checking a [`Network`] and turning it into parsed values: nothing is
//! created here.

use std::collections::HashSet;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use super::link::{Iface, MacvlanMode};
use super::{Link, Mode, NetError, Network};

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
    fn parse(text: &str, bare_ok: bool) -> Result<Cidr, &'static str> {
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

    fn host_bits_set(&self) -> bool {
        Cidr::bits(self.addr) & !self.mask() != 0
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The guest side of a link, parsed.
#[derive(Debug, Clone)]
pub(crate) struct IfacePlan {
    pub name: String,
    pub addresses: Vec<Cidr>,
    pub gateways: Vec<IpAddr>,
    pub routes: Vec<(Cidr, Option<IpAddr>)>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
}

/// A veth link, parsed.
#[derive(Debug, Clone)]
pub(crate) struct VethPlan {
    pub host_name: String,
    pub host_netns: Option<PathBuf>,
    pub bridge: Option<String>,
    pub host_addresses: Vec<Cidr>,
    pub iface: IfacePlan,
}

/// A macvlan link, parsed.
#[derive(Debug, Clone)]
pub(crate) struct MacvlanPlan {
    /// What names it in errors: `macvlan NAME on PARENT`.
    pub label: String,
    pub parent: String,
    pub parent_netns: Option<PathBuf>,
    pub mode: MacvlanMode,
    pub iface: IfacePlan,
}

/// One link, parsed.
#[derive(Debug, Clone)]
pub(crate) enum LinkPlan {
    Veth(VethPlan),
    Macvlan(MacvlanPlan),
}

/// A checked [`Network`].
#[derive(Debug)]
pub(crate) struct NetPlan {
    /// The namespace to join, kept open until the guest has joined it.
    pub join: Option<(RawFd, JoinHold)>,
    /// What names the joined namespace in errors.
    pub join_label: String,
    pub links: Vec<LinkPlan>,
    /// A namespace of the guest's own taken from a pool: the guest joins
    /// it instead of creating one, and its links are made before the clone.
    pub pooled: Option<OwnedFd>,
}

/// Keeps a joined namespace's fd open.
#[derive(Debug)]
pub(crate) enum JoinHold {
    Opened(#[allow(dead_code)] OwnedFd),
    Shared(#[allow(dead_code)] Arc<OwnedFd>),
}

impl NetPlan {
    /// Whether the parent must set links up during the spawn handshake
    /// (a pooled namespace gets them before the clone).
    pub fn needs_parent(&self) -> bool {
        !self.links.is_empty() && self.pooled.is_none()
    }

    /// The fd of a namespace the guest joins (given, or from a pool).
    pub fn join_fd(&self) -> Option<RawFd> {
        self.pooled.as_ref().map(|fd| fd.as_raw_fd()).or(self.join.as_ref().map(|(fd, _)| *fd))
    }
}

/// A valid interface name, as `dev_valid_name()` in the kernel checks.
pub(crate) fn check_link_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name.len() > 15 {
        Err("it is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Err("it is '.' or '..'")
    } else if name.bytes().any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace()) {
        Err("it contains '/', ':', NUL or whitespace")
    } else {
        Ok(())
    }
}

fn parse_mac(text: &str) -> Result<[u8; 6], &'static str> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().ok_or("expected six hexadecimal bytes separated by ':'")?;
        if part.is_empty() || part.len() > 2 {
            return Err("expected six hexadecimal bytes separated by ':'");
        }
        *byte =
            u8::from_str_radix(part, 16).map_err(|_| "expected six hexadecimal bytes separated by ':'")?;
    }
    if parts.next().is_some() {
        return Err("expected six hexadecimal bytes separated by ':'");
    }
    if mac[0] & 1 != 0 {
        return Err("it is a multicast address");
    }
    if mac == [0; 6] {
        return Err("it is all zeros");
    }
    Ok(mac)
}

/// What the whole guest's configuration has used so far, to find
/// conflicts between links.
#[derive(Default)]
struct Seen {
    guest_names: HashSet<String>,
    host_names: HashSet<String>,
    addresses: HashSet<IpAddr>,
    /// Default gateway per family (v4, v6), with the link that set it.
    gateways: [Option<String>; 2],
}

fn invalid(link: &str, setting: &'static str, value: &str, reason: &'static str) -> NetError {
    NetError::Invalid { link: link.to_string(), setting, value: value.to_string(), reason }
}

fn conflict(link: &str, setting: &'static str, value: &str, other: String) -> NetError {
    NetError::Conflict { link: link.to_string(), setting, value: value.to_string(), other }
}

fn check_address(link: &str, setting: &'static str, text: &str, seen: &mut Seen) -> Result<Cidr, NetError> {
    let cidr = Cidr::parse(text, false).map_err(|r| invalid(link, setting, text, r))?;
    let ip = cidr.addr;
    let broadcast = matches!(ip, IpAddr::V4(a) if a.is_broadcast());
    if ip.is_unspecified() || ip.is_multicast() || broadcast {
        return Err(invalid(link, setting, text, "not a unicast address"));
    }
    if ip.is_loopback() {
        return Err(invalid(link, setting, text, "a loopback address belongs on lo"));
    }
    if !seen.addresses.insert(ip) {
        return Err(conflict(
            link,
            setting,
            text,
            "the same address on another link or twice on this one".into(),
        ));
    }
    Ok(cidr)
}

fn check_iface(label: &str, iface: &Iface, seen: &mut Seen) -> Result<IfacePlan, NetError> {
    check_link_name(&iface.name).map_err(|r| invalid(label, "guest interface name", &iface.name, r))?;
    if iface.name == "lo" {
        return Err(conflict(
            label,
            "guest interface name",
            &iface.name,
            "the guest's loopback interface".into(),
        ));
    }
    if !seen.guest_names.insert(iface.name.clone()) {
        return Err(conflict(label, "guest interface name", &iface.name, "another link of the guest".into()));
    }
    let addresses = iface
        .addresses
        .iter()
        .map(|a| check_address(label, "address", a, seen))
        .collect::<Result<Vec<_>, _>>()?;
    // A gateway or router must be reachable on this link.
    let on_link = |text: &str, setting: &'static str| -> Result<IpAddr, NetError> {
        let ip: IpAddr =
            text.parse().map_err(|_| invalid(label, setting, text, "not an IPv4 or IPv6 address"))?;
        if addresses.iter().any(|a| a.addr == ip) {
            return Err(conflict(label, setting, text, "the interface's own address".into()));
        }
        let link_local = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
        if !link_local && !addresses.iter().any(|a| a.contains(ip)) {
            return Err(invalid(label, setting, text, "not in a subnet of the interface's addresses"));
        }
        Ok(ip)
    };
    let mut gateways = Vec::new();
    for text in &iface.gateways {
        let ip = on_link(text, "gateway")?;
        let slot = &mut seen.gateways[usize::from(ip.is_ipv6())];
        if let Some(other) = slot {
            return Err(conflict(label, "gateway", text, format!("the default gateway set on link {other}")));
        }
        *slot = Some(label.to_string());
        gateways.push(ip);
    }
    let mut routes = Vec::new();
    for (dest, via) in &iface.routes {
        let cidr = Cidr::parse(dest, true).map_err(|r| invalid(label, "route", dest, r))?;
        if cidr.host_bits_set() {
            return Err(invalid(label, "route", dest, "the address has bits set beyond the prefix"));
        }
        let via = match via {
            Some(v) => {
                let ip = on_link(v, "route gateway")?;
                if ip.is_ipv4() != cidr.addr.is_ipv4() {
                    return Err(invalid(
                        label,
                        "route gateway",
                        v,
                        "not of the destination's address family",
                    ));
                }
                Some(ip)
            }
            None => None,
        };
        routes.push((cidr, via));
    }
    if let Some(mtu) = iface.mtu {
        let value = mtu.to_string();
        if !(68..=65535).contains(&mtu) {
            return Err(invalid(label, "mtu", &value, "must be 68 to 65535"));
        }
        if mtu < 1280 && addresses.iter().any(|a| a.addr.is_ipv6()) {
            return Err(invalid(label, "mtu", &value, "IPv6 needs at least 1280"));
        }
    }
    let mac = match &iface.mac {
        Some(text) => Some(parse_mac(text).map_err(|r| invalid(label, "mac", text, r))?),
        None => None,
    };
    Ok(IfacePlan { name: iface.name.clone(), addresses, gateways, routes, mtu: iface.mtu, mac })
}

impl Network {
    /// Checks every setting; opens a namespace to join.
    pub(crate) fn plan(&self, user_namespace: bool) -> Result<NetPlan, NetError> {
        let mut seen = Seen::default();
        if !self.links.is_empty() && !self.owns_namespace() {
            return Err(NetError::Unsupported {
                what: "adding veth or macvlan links",
                needs: "a network namespace of the guest's own (Network::new)",
            });
        }
        let (join, join_label) = match &self.mode {
            Mode::Own | Mode::Host => (None, String::new()),
            _ if user_namespace => {
                return Err(NetError::Unsupported {
                    what: "joining an existing network namespace",
                    needs: "a guest without a user namespace of its own",
                });
            }
            Mode::JoinPath(path) => {
                let file =
                    File::open(path).map_err(|source| NetError::Namespace { path: path.clone(), source })?;
                let fd = OwnedFd::from(file);
                (Some((fd.as_raw_fd(), JoinHold::Opened(fd))), path.display().to_string())
            }
            Mode::JoinFd(fd) => {
                let raw = fd.as_raw_fd();
                (Some((raw, JoinHold::Shared(Arc::clone(fd)))), format!("fd {raw}"))
            }
        };
        let mut links = Vec::new();
        for link in &self.links {
            links.push(match link {
                Link::Veth(v) => {
                    let label = v.host_name.as_str();
                    check_link_name(label).map_err(|r| invalid(label, "host-side name", label, r))?;
                    if !seen.host_names.insert(v.host_name.clone()) {
                        return Err(conflict(
                            label,
                            "host-side name",
                            label,
                            "another veth of the guest".into(),
                        ));
                    }
                    if let Some(bridge) = &v.bridge {
                        check_link_name(bridge).map_err(|r| invalid(label, "bridge", bridge, r))?;
                    }
                    let host_addresses = v
                        .host_addresses
                        .iter()
                        .map(|a| check_address(label, "host address", a, &mut seen))
                        .collect::<Result<Vec<_>, _>>()?;
                    LinkPlan::Veth(VethPlan {
                        host_name: v.host_name.clone(),
                        host_netns: v.host_netns.clone(),
                        bridge: v.bridge.clone(),
                        host_addresses,
                        iface: check_iface(label, &v.iface, &mut seen)?,
                    })
                }
                Link::Macvlan(m) => {
                    let label = format!("macvlan {} on {}", m.iface.name, m.parent);
                    check_link_name(&m.parent).map_err(|r| invalid(&label, "parent", &m.parent, r))?;
                    LinkPlan::Macvlan(MacvlanPlan {
                        iface: check_iface(&label, &m.iface, &mut seen)?,
                        label,
                        parent: m.parent.clone(),
                        parent_netns: m.parent_netns.clone(),
                        mode: m.mode,
                    })
                }
            });
        }
        let pooled = match &self.pool {
            Some(pool) if self.owns_namespace() && !user_namespace => pool.take()?,
            _ => None,
        };
        Ok(NetPlan { join, join_label, links, pooled })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Macvlan, Veth};

    fn plan(net: Network) -> Result<NetPlan, NetError> {
        net.plan(false)
    }

    fn veth() -> Veth {
        Veth::new("vgtest0").address("198.18.0.2/24")
    }

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

    #[test]
    fn names_macs_and_mtus() {
        for bad in ["", "a/b", "a b", "a:b", ".", "..", "sixteen-bytes-xx"] {
            assert!(check_link_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_link_name("vgfifteen-bytes").is_ok());
        assert_eq!(parse_mac("02:42:C6:12:0:2").unwrap(), [2, 0x42, 0xc6, 0x12, 0, 2]);
        for bad in [
            "01:00:00:00:00:01",
            "00:00:00:00:00:00",
            "02:42:c6:12:00",
            "02:42:c6:12:00:02:03",
            "zz:00:00:00:00:01",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad:?}");
        }
        assert!(plan(Network::new().veth(veth().mtu(67))).is_err());
        assert!(plan(Network::new().veth(veth().mtu(1279).address("fd42::2/64"))).is_err());
        assert!(plan(Network::new().veth(veth().mtu(1279))).is_ok());
    }

    #[test]
    fn conflicts_between_links_are_found() {
        let dup_host = Network::new().veth(veth()).veth(Veth::new("vgtest0").name("eth1"));
        assert!(matches!(plan(dup_host), Err(NetError::Conflict { setting: "host-side name", .. })));
        let dup_guest = Network::new().veth(veth()).veth(Veth::new("vgtest1"));
        assert!(matches!(plan(dup_guest), Err(NetError::Conflict { setting: "guest interface name", .. })));
        let dup_addr =
            Network::new().veth(veth()).veth(Veth::new("vgtest1").name("eth1").address("198.18.0.2/16"));
        assert!(matches!(plan(dup_addr), Err(NetError::Conflict { setting: "address", .. })));
        let two_gw = Network::new()
            .veth(veth().gateway("198.18.0.1"))
            .veth(Veth::new("vgtest1").name("eth1").address("198.18.1.2/24").gateway("198.18.1.1"));
        assert!(matches!(plan(two_gw), Err(NetError::Conflict { setting: "gateway", .. })));
        let lo = Network::new().veth(veth().name("lo"));
        assert!(matches!(plan(lo), Err(NetError::Conflict { .. })));
    }

    #[test]
    fn gateways_and_routes_must_be_on_the_link() {
        assert!(plan(Network::new().veth(veth().gateway("198.18.0.1"))).is_ok());
        assert!(plan(Network::new().veth(veth().gateway("198.18.1.1"))).is_err());
        assert!(plan(Network::new().veth(veth().gateway("198.18.0.2"))).is_err());
        assert!(plan(Network::new().veth(veth().gateway("fe80::1"))).is_ok());
        assert!(plan(Network::new().veth(veth().route("198.19.0.0/16", Some("198.18.0.9")))).is_ok());
        assert!(plan(Network::new().veth(veth().route("198.19.0.1/16", None))).is_err());
        assert!(plan(Network::new().veth(veth().route("fd42:9::/64", Some("198.18.0.9")))).is_err());
        assert!(plan(Network::new().veth(veth().address("224.0.0.1/4"))).is_err());
        assert!(plan(Network::new().veth(veth().address("127.0.0.2/8"))).is_err());
    }

    #[test]
    fn links_need_an_own_namespace_and_joins_no_user_namespace() {
        assert!(matches!(plan(Network::host().veth(veth())), Err(NetError::Unsupported { .. })));
        assert!(matches!(Network::join("/proc/self/ns/net").plan(true), Err(NetError::Unsupported { .. })));
        assert!(matches!(plan(Network::join("/no/such/netns")), Err(NetError::Namespace { .. })));
        let m = plan(Network::new().macvlan(Macvlan::new("eth9").address("198.18.5.2/24"))).unwrap();
        assert!(matches!(&m.links[0], LinkPlan::Macvlan(p) if p.label == "macvlan eth0 on eth9"));
    }
}
