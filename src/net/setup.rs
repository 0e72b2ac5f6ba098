//! Making a guest's links, and the owner that deletes the host side again.
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
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::NetError;
use super::link::MacvlanMode as Mode;
use super::netlink::{Request, Rtnl};
use super::plan::{Cidr, IfacePlan, LinkPlan, MacvlanPlan, NetPlan, VethPlan};
use crate::patience::patiently;

/// The host-side links made for a guest, deleted on [`remove`] or drop
/// unless [`detach`]ed.
///
/// [`remove`]: NetLinks::remove
/// [`detach`]: NetLinks::detach
#[derive(Debug, Default)]
pub(crate) struct NetLinks {
    /// Sockets per host-side namespace (`None`: the creator's).
    sockets: Vec<(Option<PathBuf>, Rtnl)>,
    /// (socket, interface index, name) of each host-side link.
    links: Vec<(usize, u32, String)>,
}

/// An rtnetlink socket in the network namespace at `netns` (the caller's
/// when `None`).
fn open_socket(netns: Option<&Path>) -> Result<Rtnl, NetError> {
    let err = |source| NetError::Namespace {
        path: netns.map_or_else(|| "/proc/thread-self/ns/net".into(), Path::to_path_buf),
        source,
    };
    match netns {
        None => Rtnl::open().map_err(err),
        Some(path) => {
            let file = File::open(path).map_err(err)?;
            Rtnl::open_in(file.as_fd()).map_err(err)
        }
    }
}

impl NetLinks {
    /// The socket for the host-side namespace `netns`, kept for deleting
    /// the links made there.
    fn socket(&mut self, netns: Option<&Path>) -> Result<usize, NetError> {
        if let Some(i) = self.sockets.iter().position(|(p, _)| p.as_deref() == netns) {
            return Ok(i);
        }
        let rtnl = open_socket(netns)?;
        self.sockets.push((netns.map(Path::to_path_buf), rtnl));
        Ok(self.sockets.len() - 1)
    }

    /// The names of the host-side links.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.links.iter().map(|(_, _, name)| name.as_str())
    }

    /// Deletes every host-side link (deleting one end of a veth pair
    /// deletes both) and returns once the kernel no longer lists it; one
    /// already gone with the guest's namespace is no error. The kernel
    /// finishes a link's removal after an RCU grace period (about 25 ms
    /// on a small VM), whether it is deleted here or taken with a dying
    /// namespace, so this waits that long either way.
    /// A link that could not be deleted stays for the next call.
    pub(crate) fn remove(&mut self) -> Result<(), NetError> {
        let mut first = None;
        let mut left = Vec::new();
        for (socket, index, name) in std::mem::take(&mut self.links) {
            let rtnl = &mut self.sockets[socket].1;
            let by_index = || {
                let mut msg = LinkMessage::default();
                msg.header.index = index;
                msg
            };
            let err = |op, source| NetError::Netlink {
                op,
                link: name.clone(),
                value: format!("index {index}"),
                source,
            };
            match rtnl.request(RouteNetlinkMessage::DelLink(by_index()), 0) {
                Err(e) if e.raw_os_error() != Some(libc::ENODEV) => {
                    first.get_or_insert(err("deleting", e));
                    left.push((socket, index, name));
                    continue;
                }
                _ => {}
            }
            let mut failed = None;
            let gone = patiently(|| match rtnl.request(RouteNetlinkMessage::GetLink(by_index()), 0) {
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => true,
                Err(e) => {
                    failed = Some(e);
                    true
                }
                Ok(()) => false,
            });
            let failed = match (failed, gone) {
                (Some(e), _) => Some(e),
                (None, false) => Some(io::Error::from_raw_os_error(libc::ETIMEDOUT)),
                (None, true) => None,
            };
            if let Some(e) = failed {
                first.get_or_insert(err("waiting for the removal of", e));
                left.push((socket, index, name));
            }
        }
        self.links = left;
        if self.links.is_empty() {
            self.sockets.clear();
        }
        first.map_or(Ok(()), Err)
    }

    /// Leaves the links to a guest that outlives its handle.
    pub(crate) fn detach(&mut self) {
        self.links.clear();
        self.sockets.clear();
    }
}

impl Drop for NetLinks {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

fn up() -> (LinkFlags, LinkFlags) {
    (LinkFlags::Up, LinkFlags::Up)
}

/// The guest end of a link: created in the guest's namespace at `index`
/// (0: the kernel's choice), with its name, MTU and MAC.
fn guest_end(msg: &mut LinkMessage, iface: &IfacePlan, index: u32, guest_ns: BorrowedFd<'_>) {
    msg.header.index = index;
    msg.attributes.push(LinkAttribute::IfName(iface.name.clone()));
    msg.attributes.push(LinkAttribute::NetNsFd(guest_ns.as_raw_fd()));
    if let Some(mtu) = iface.mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = iface.mac {
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 }
}

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

/// `RTM_NEWADDR` for `cidr` on link `index`; IPv6 without duplicate
/// address detection, which would keep it unusable for a second or more.
fn new_address(index: u32, cidr: Cidr) -> Request {
    let mut msg = AddressMessage::default();
    msg.header.family = family(cidr.addr);
    msg.header.prefix_len = cidr.prefix;
    msg.header.index = index;
    if cidr.addr.is_ipv6() {
        msg.header.flags = AddressHeaderFlags::Nodad;
    } else {
        msg.attributes.push(AddressAttribute::Local(cidr.addr));
    }
    msg.attributes.push(AddressAttribute::Address(cidr.addr));
    Request { message: RouteNetlinkMessage::NewAddress(msg), flags: NLM_F_CREATE | NLM_F_EXCL }
}

/// `RTM_NEWROUTE` to `dest` on link `index`, via `gateway` or on-link.
fn new_route(index: u32, dest: Option<Cidr>, family_of: IpAddr, gateway: Option<IpAddr>) -> Request {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(family_of);
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Static;
    msg.header.kind = RouteType::Unicast;
    msg.header.scope = if gateway.is_some() { RouteScope::Universe } else { RouteScope::Link };
    if let Some(dest) = dest.filter(|d| d.prefix > 0) {
        msg.header.destination_prefix_length = dest.prefix;
        msg.attributes.push(RouteAttribute::Destination(route_address(dest.addr)));
    }
    if let Some(gw) = gateway {
        msg.attributes.push(RouteAttribute::Gateway(route_address(gw)));
    }
    msg.attributes.push(RouteAttribute::Oif(index));
    Request { message: RouteNetlinkMessage::NewRoute(msg), flags: NLM_F_CREATE | NLM_F_EXCL }
}

/// `RTM_SETLINK` bringing link `index` up.
fn set_up(index: u32) -> Request {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    (msg.header.flags, msg.header.change_mask) = up();
    Request { message: RouteNetlinkMessage::SetLink(msg), flags: 0 }
}

/// What each request of the guest-side batch was, for errors.
fn guest_requests(iface: &IfacePlan, index: u32, out: &mut Vec<(Request, &'static str, String)>) {
    for &cidr in &iface.addresses {
        out.push((new_address(index, cidr), "adding address", cidr.to_string()));
    }
    for &(dest, via) in &iface.routes {
        let text = match via {
            Some(v) => format!("{dest} via {v}"),
            None => dest.to_string(),
        };
        out.push((new_route(index, Some(dest), dest.addr, via), "adding route", text));
    }
    for &gw in &iface.gateways {
        out.push((new_route(index, None, gw, Some(gw)), "adding default route via", gw.to_string()));
    }
}

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
    let mut links = NetLinks::default();
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
    let rtnl = &mut links.sockets[socket].1;
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
    links.links.push((socket, host_index, host_name.clone()));
    let requests: Vec<_> = host_addresses.iter().map(|&c| new_address(host_index, c)).collect();
    links.sockets[socket]
        .1
        .batch(requests, |_| {})
        .map_err(|(i, e)| netlink_err("adding host address", host_name, host_addresses[i].to_string())(e))
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
