//! Checking a [`Network`] and turning it into parsed values: nothing is
//! created here.
//!
//! The spawn (`spawn/render.rs`) calls [`Network::plan`] before anything
//! is created. It checks every setting against the kernel's rules and the
//! guest's other links, opens a namespace to join or takes one from a
//! pool, and returns a [`NetPlan`] (`plan.rs`) or a [`NetError`] naming
//! the link and the value.

use std::collections::HashSet;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use super::cidr::Cidr;
use super::link::Iface;
use super::plan::{IfacePlan, JoinHold, LinkPlan, MacvlanPlan, NetPlan, VethPlan};
use super::{Link, Mode, NetError, Network};

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
