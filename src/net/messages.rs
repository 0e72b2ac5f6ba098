//! The rtnetlink messages that make and configure a guest's links, built
//! from the plan's parsed values: a link's guest end, an address, a
//! route, bringing a link up. Nothing is sent here.
//!
//! `setup.rs` builds its requests with these and sends them, in batches,
//! on the sockets of `netlink.rs`.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::cidr::Cidr;
use super::netlink::Request;
use super::plan::IfacePlan;

pub(super) fn up() -> (LinkFlags, LinkFlags) {
    (LinkFlags::Up, LinkFlags::Up)
}

/// The guest end of a link: created in the guest's namespace at `index`
/// (0: the kernel's choice), with its name, MTU and MAC.
pub(super) fn guest_end(msg: &mut LinkMessage, iface: &IfacePlan, index: u32, guest_ns: BorrowedFd<'_>) {
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
pub(super) fn new_address(index: u32, cidr: Cidr) -> Request {
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
pub(super) fn set_up(index: u32) -> Request {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    (msg.header.flags, msg.header.change_mask) = up();
    Request { message: RouteNetlinkMessage::SetLink(msg), flags: 0 }
}

/// What each request of the guest-side batch was, for errors.
pub(super) fn guest_requests(iface: &IfacePlan, index: u32, out: &mut Vec<(Request, &'static str, String)>) {
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
