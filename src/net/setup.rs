//! Making a guest's links in its network namespace, over rtnetlink in the
//! parent.
//!
//! The spawn calls [`setup`] with the checked [`NetPlan`] and the guest's
//! namespace (from [`child_netns`], or a pooled one), and gets back the
//! [`NetLinks`] (`owner.rs`) that delete the host side again.
//!
//! The guest's namespace is new: its first process was cloned into it and
//! waits (the spawn handshake), or it came from a pool. Each link is
//! created with its guest end directly in that namespace
//! (`IFLA_NET_NS_FD`), with its name, MTU and MAC address; a veth end gets
//! the interface index `2 + n` (`lo` is 1 in a new namespace), so it needs
//! no lookup there. Then a socket opened inside the namespace brings the
//! veth ends up and adds the guest's addresses and routes in one batch.

use std::fs::File;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, InfoVeth, LinkAttribute, LinkInfo, LinkMessage, MacVlanMode,
};

use super::NetError;
use super::link::MacvlanMode as Mode;
use super::messages::{guest_end, guest_requests, new_address, set_up, up};
use super::netlink::{Request, Rtnl};
use super::owner::{NetLinks, open_socket};
use super::plan::{IfacePlan, LinkPlan, MacvlanPlan, NetPlan, VethPlan};

fn netlink_err(op: &'static str, link: &str, value: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
    let (link, value) = (link.to_string(), value.into());
    move |source| NetError::Netlink { op, link, value, source }
}

/// A guest-side interface still to configure: the link it belongs to
/// (for errors), its settings, its index if known, and whether it must be
/// brought up.
struct Pending<'a> {
    label: &'a str,
    iface: &'a IfacePlan,
    index: Option<u32>,
    bring_up: bool,
}

/// Opens the network namespace of the guest's first process `pid` (cloned
/// into a new one, waiting, not reaped: the pid cannot be reused
/// meanwhile), with the path that names it in errors.
pub(crate) fn child_netns(pid: libc::pid_t) -> Result<(OwnedFd, PathBuf), NetError> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let file = File::open(&path).map_err(|source| NetError::Namespace { path: path.clone(), source })?;
    Ok((file.into(), path))
}

/// Creates and configures the links of `plan` in the guest's namespace
/// `guest_ns` (named `ns_path` in errors).
pub(crate) fn setup(plan: &NetPlan, guest_ns: BorrowedFd<'_>, ns_path: &Path) -> Result<NetLinks, NetError> {
    let mut links = NetLinks::new(plan.join.is_none());
    let mut pending = Vec::new();
    for (n, link) in plan.links.iter().enumerate() {
        match link {
            LinkPlan::Veth(veth) => {
                // The peer's index is honoured in the guest's namespace
                // (`lo` is 1 in a new one), so it needs no lookup there.
                let index = 2 + n as u32;
                create_veth(&mut links, veth, index, guest_ns)?;
                // A veth end cannot be created up: it has no peer yet
                // (veth_open() fails with ENOTCONN).
                pending.push(Pending {
                    label: &veth.host_name,
                    iface: &veth.iface,
                    index: Some(index),
                    bring_up: true,
                });
            }
            LinkPlan::Macvlan(macvlan) => {
                // An index given here would name a link of the parent's
                // namespace on older kernels (6.1): look it up inside.
                create_macvlan(macvlan, guest_ns)?;
                pending.push(Pending {
                    label: &macvlan.label,
                    iface: &macvlan.iface,
                    index: None,
                    bring_up: false,
                });
            }
        }
    }
    links.made();
    configure_guest(&pending, guest_ns, ns_path)?;
    Ok(links)
}

/// Looks up the bridge a veth joins, in its host-side namespace.
fn bridge_index(
    rtnl: &mut Rtnl,
    host_name: &str,
    bridge: &str,
    netns: &Option<PathBuf>,
) -> Result<u32, NetError> {
    rtnl.link_index(bridge).map_err(netlink_err("looking up bridge", host_name, bridge))?.ok_or_else(|| {
        NetError::NoSuchLink {
            link: host_name.to_string(),
            role: "bridge",
            name: bridge.to_string(),
            netns: netns.clone(),
        }
    })
}

/// Creates a veth pair with its guest end (at `guest_index`) in the
/// guest's namespace, puts the host end up (and into its bridge), and
/// gives the host end its addresses.
fn create_veth(
    links: &mut NetLinks,
    veth: &VethPlan,
    guest_index: u32,
    guest_ns: BorrowedFd<'_>,
) -> Result<(), NetError> {
    let VethPlan { host_name, host_netns, bridge, host_addresses, iface } = veth;
    let socket = links.socket(host_netns.as_deref())?;
    let rtnl = links.rtnl(socket);
    let master = match bridge {
        Some(name) => Some(bridge_index(rtnl, host_name, name, host_netns)?),
        None => None,
    };
    let mut peer = LinkMessage::default();
    guest_end(&mut peer, iface, guest_index, guest_ns);
    let mut msg = LinkMessage::default();
    (msg.header.flags, msg.header.change_mask) = up();
    msg.attributes.push(LinkAttribute::IfName(host_name.clone()));
    if let Some(mtu) = iface.mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(master) = master {
        msg.attributes.push(LinkAttribute::Controller(master));
    }
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    let mut query = LinkMessage::default();
    query.attributes.push(LinkAttribute::IfName(host_name.clone()));
    let mut host_index = None;
    let created = rtnl.batch(
        vec![
            Request { message: RouteNetlinkMessage::NewLink(msg), flags: NLM_F_CREATE | NLM_F_EXCL },
            Request { message: RouteNetlinkMessage::GetLink(query), flags: 0 },
        ],
        |reply| {
            if let RouteNetlinkMessage::NewLink(l) = reply {
                host_index = Some(l.header.index);
            }
        },
    );
    match created {
        Ok(()) => {}
        Err((0, e)) if e.raw_os_error() == Some(libc::EEXIST) => {
            return Err(NetError::LinkExists { name: host_name.clone(), netns: host_netns.clone() });
        }
        Err((0, e)) => return Err(netlink_err("creating veth", host_name, &iface.name)(e)),
        Err((_, e)) => return Err(netlink_err("looking up", host_name, host_name.as_str())(e)),
    }
    let no_index = || io::Error::from_raw_os_error(libc::ENODEV);
    let host_index =
        host_index.ok_or_else(|| netlink_err("looking up", host_name, host_name.as_str())(no_index()))?;
    links.record(socket, host_index, host_name.clone());
    if host_netns.is_none() && !host_addresses.iter().any(|c| c.addr.is_ipv6()) {
        without_ipv6(host_name)?;
    }
    let requests: Vec<_> = host_addresses.iter().map(|&c| new_address(host_index, c)).collect();
    links
        .rtnl(socket)
        .batch(requests, |_| {})
        .map_err(|(i, e)| netlink_err("adding host address", host_name, host_addresses[i].to_string())(e))
}

/// Turns IPv6 off on a host end that has no IPv6 address of its own
/// (`disable_ipv6`, before the guest's end is up, so before the kernel
/// configures it): the kernel would otherwise give every host end a
/// link-local address and two routes (`fe80::/64`, `ff00::/8`) in the
/// host's one IPv6 table, where every route added or removed walks the
/// routes of all the other guests' links, and spawns slow down as guests
/// accumulate. Frames a bridge forwards are not affected. A kernel without
/// IPv6 has no such file: nothing to do.
fn without_ipv6(host_name: &str) -> Result<(), NetError> {
    let path = format!("/proc/sys/net/ipv6/conf/{host_name}/disable_ipv6");
    match crate::failpoint::check("sysctl").and_then(|()| std::fs::write(&path, "1")) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(netlink_err("turning IPv6 off on", host_name, path)(e))
        }
        _ => Ok(()),
    }
}

/// Creates a macvlan interface on its parent, up, inside the guest's
/// namespace. Nothing of it stays on the host side, so the socket to the
/// parent's namespace is not kept.
fn create_macvlan(macvlan: &MacvlanPlan, guest_ns: BorrowedFd<'_>) -> Result<(), NetError> {
    let MacvlanPlan { label, parent, parent_netns, mode, iface } = macvlan;
    let mut rtnl = open_socket(parent_netns.as_deref())?;
    let parent_index = rtnl
        .link_index(parent)
        .map_err(netlink_err("looking up parent", label, parent.as_str()))?
        .ok_or_else(|| NetError::NoSuchLink {
            link: label.clone(),
            role: "macvlan parent",
            name: parent.clone(),
            netns: parent_netns.clone(),
        })?;
    let mut msg = LinkMessage::default();
    guest_end(&mut msg, iface, 0, guest_ns);
    (msg.header.flags, msg.header.change_mask) = up();
    msg.attributes.push(LinkAttribute::Link(parent_index));
    let mode = match mode {
        Mode::Bridge => MacVlanMode::Bridge,
        Mode::Private => MacVlanMode::Private,
        Mode::Vepa => MacVlanMode::Vepa,
    };
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::MacVlan),
        LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(mode)])),
    ]));
    rtnl.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL).map_err(netlink_err(
        "creating macvlan",
        label,
        &iface.name,
    ))
}

/// Brings the guest's interfaces up and adds their addresses and routes,
/// in one batch on a socket inside the guest's namespace.
fn configure_guest(
    pending: &[Pending<'_>],
    guest_ns: BorrowedFd<'_>,
    ns_path: &Path,
) -> Result<(), NetError> {
    let work = |i: &IfacePlan| !(i.addresses.is_empty() && i.routes.is_empty() && i.gateways.is_empty());
    if !pending.iter().any(|p| p.bring_up || work(p.iface)) {
        return Ok(());
    }
    let mut rtnl = Rtnl::open_in(guest_ns)
        .map_err(|source| NetError::Namespace { path: ns_path.to_path_buf(), source })?;
    let mut batch = Vec::new();
    for p in pending {
        let index = match p.index {
            Some(index) => index,
            None => rtnl
                .link_index(&p.iface.name)
                .map_err(netlink_err("looking up", p.label, &p.iface.name))?
                .ok_or_else(|| {
                    netlink_err("looking up", p.label, &p.iface.name)(io::Error::from_raw_os_error(
                        libc::ENODEV,
                    ))
                })?,
        };
        let mut reqs = Vec::new();
        if p.bring_up {
            reqs.push((set_up(index), "bringing up", p.iface.name.clone()));
        }
        guest_requests(p.iface, index, &mut reqs);
        batch.extend(reqs.into_iter().map(|(r, op, v)| (r, (op, v, p.label))));
    }
    let (requests, about): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    rtnl.batch(requests, |_| {}).map_err(|(i, e)| {
        let (op, value, link) = &about[i];
        netlink_err(op, link, value.as_str())(e)
    })
}
