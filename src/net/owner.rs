//! The owner of a guest's host-side links, [`NetLinks`]: it takes them
//! back when the guest is waited for or dropped, and on a failed spawn.
//!
//! `setup.rs` fills it while it makes the veth pairs (a socket per
//! host-side namespace, each host end's index and name); the spawn, then
//! the `Guest`, hold it until [`remove`](NetLinks::remove), drop or
//! [`detach`](NetLinks::detach). The sockets are closed once the links are
//! made (a live guest holds no descriptor for its links) and opened again
//! to take them back. A macvlan interface lives only in the guest's
//! namespace, so nothing of it is kept here.
//!
//! Deleting a link costs the caller an RCU grace period (the kernel's
//! `rcu_barrier()` after unregistering, 25-40 ms on a small VM), while a
//! namespace that dies takes its veths down in a batch, off the caller's
//! time. So the host end of a veth into a namespace of the guest's own is
//! not deleted but *parked*: set down (which drops its routes) and renamed
//! to `vgx<index>` in one batch, which frees its name at once; the
//! kernel removes it with the guest's namespace moments later. A veth into
//! a namespace the guest joined, which outlives it, is deleted as before.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

use super::NetError;
use super::netlink::{Request, Rtnl};
use crate::patience::patiently;

/// The prefix of a parked host end's name (`vgx` and its index).
pub(crate) const PARKED_PREFIX: &str = "vgx";

/// Where a host-side link lives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostNs {
    /// The network namespace of the thread that made it, known by its
    /// inode (only that namespace can be reached again without an fd: as
    /// the current thread's or the process's).
    Creator(u64),
    /// A namespace given by path (`Veth::host_netns`).
    Path(PathBuf),
}

impl HostNs {
    fn label(&self) -> PathBuf {
        match self {
            HostNs::Creator(_) => "/proc/thread-self/ns/net".into(),
            HostNs::Path(path) => path.clone(),
        }
    }

    /// A socket in this namespace.
    fn open(&self) -> Result<Rtnl, NetError> {
        let err = |source| NetError::Namespace { path: self.label(), source };
        match self {
            HostNs::Creator(ino) if netns_ino("/proc/thread-self/ns/net").map_err(err)? == *ino => {
                Rtnl::open().map_err(err)
            }
            HostNs::Creator(ino) if netns_ino("/proc/self/ns/net").map_err(err)? == *ino => {
                open_socket(Some(Path::new("/proc/self/ns/net")))
            }
            // Made by a thread that has since moved to a namespace this
            // thread cannot name.
            HostNs::Creator(_) => Err(err(io::Error::from_raw_os_error(libc::ENOENT))),
            HostNs::Path(path) => open_socket(Some(path)),
        }
    }
}

fn netns_ino(path: &str) -> io::Result<u64> {
    Ok(std::fs::metadata(path)?.ino())
}

/// A host-side link: where it lives, its index and its name.
#[derive(Debug)]
struct HostLink {
    netns: HostNs,
    index: u32,
    name: String,
}

/// The host-side links made for a guest, taken back on [`remove`] or drop
/// unless [`detach`]ed.
///
/// [`remove`]: NetLinks::remove
/// [`detach`]: NetLinks::detach
#[derive(Debug, Default)]
pub(crate) struct NetLinks {
    /// Whether the guest's network namespace is its own, so that its veths
    /// die with it and their host ends are parked rather than deleted.
    own_netns: bool,
    /// Sockets per host-side namespace, while the links are made.
    sockets: Vec<(HostNs, Rtnl)>,
    links: Vec<HostLink>,
}

/// An rtnetlink socket in the network namespace at `netns` (the caller's
/// when `None`).
pub(super) fn open_socket(netns: Option<&Path>) -> Result<Rtnl, NetError> {
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
    /// Links for a guest whose network namespace is its own (`own_netns`)
    /// or one it joins.
    pub(super) fn new(own_netns: bool) -> Self {
        NetLinks { own_netns, sockets: Vec::new(), links: Vec::new() }
    }

    /// The socket for the host-side namespace `netns` (the calling
    /// thread's when `None`), opened on first use.
    pub(super) fn socket(&mut self, netns: Option<&Path>) -> Result<usize, NetError> {
        let host_ns =
            match netns {
                Some(path) => HostNs::Path(path.to_path_buf()),
                None => HostNs::Creator(netns_ino("/proc/thread-self/ns/net").map_err(|source| {
                    NetError::Namespace { path: "/proc/thread-self/ns/net".into(), source }
                })?),
            };
        if let Some(i) = self.sockets.iter().position(|(ns, _)| *ns == host_ns) {
            return Ok(i);
        }
        let rtnl = open_socket(netns)?;
        self.sockets.push((host_ns, rtnl));
        Ok(self.sockets.len() - 1)
    }

    /// The socket [`socket`](NetLinks::socket) returned.
    pub(super) fn rtnl(&mut self, socket: usize) -> &mut Rtnl {
        &mut self.sockets[socket].1
    }

    /// Records a host-side link made over `socket`, to take it back.
    pub(super) fn record(&mut self, socket: usize, index: u32, name: String) {
        self.links.push(HostLink { netns: self.sockets[socket].0.clone(), index, name });
    }

    /// Closes the sockets used to make the links.
    pub(super) fn made(&mut self) {
        self.sockets.clear();
    }

    /// The names of the host-side links.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.links.iter().map(|l| l.name.as_str())
    }

    /// Takes every host-side link back: parks it (see the module's docs)
    /// if the guest's namespace is its own, else deletes it (deleting one
    /// end of a veth pair deletes both) and returns once the kernel no
    /// longer lists it. One already gone with the guest's namespace is no
    /// error. A link that could not be taken back stays for the next call.
    pub(crate) fn remove(&mut self) -> Result<(), NetError> {
        let mut first = None;
        let mut left = Vec::new();
        let mut sockets: Vec<(HostNs, Rtnl)> = std::mem::take(&mut self.sockets);
        for link in std::mem::take(&mut self.links) {
            let rtnl = match sockets.iter().position(|(ns, _)| *ns == link.netns) {
                Some(i) => &mut sockets[i].1,
                None => match link.netns.open() {
                    Ok(rtnl) => {
                        sockets.push((link.netns.clone(), rtnl));
                        &mut sockets.last_mut().expect("just pushed").1
                    }
                    Err(e) => {
                        first.get_or_insert(e);
                        left.push(link);
                        continue;
                    }
                },
            };
            let taken = match self.own_netns {
                true => park(rtnl, &link),
                false => delete(rtnl, &link),
            };
            if let Err(e) = taken {
                first.get_or_insert(e);
                left.push(link);
            }
        }
        self.links = left;
        first.map_or(Ok(()), Err)
    }

    /// Leaves the links to a guest that outlives its handle.
    pub(crate) fn detach(&mut self) {
        self.links.clear();
        self.sockets.clear();
    }
}

fn by_index(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg
}

fn netlink_err<'a>(op: &'static str, link: &'a HostLink) -> impl FnOnce(io::Error) -> NetError + 'a {
    move |source| NetError::Netlink {
        op,
        link: link.name.clone(),
        value: format!("index {}", link.index),
        source,
    }
}

/// Sets the host end down, then renames it `vgx<index>` (two requests in
/// one batch: kernels before 6.2 refuse to rename a link that is up), or
/// deletes it if that name is taken. Gone already is no error.
fn park(rtnl: &mut Rtnl, link: &HostLink) -> Result<(), NetError> {
    let mut down = by_index(link.index);
    down.header.change_mask = LinkFlags::Up;
    let mut rename = by_index(link.index);
    rename.attributes.push(LinkAttribute::IfName(format!("{PARKED_PREFIX}{}", link.index)));
    let requests = [down, rename].map(|msg| Request { message: RouteNetlinkMessage::SetLink(msg), flags: 0 });
    match rtnl.batch(requests.into(), |_| {}) {
        Ok(()) => Ok(()),
        Err((_, e)) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
        Err((1, e)) if e.raw_os_error() == Some(libc::EEXIST) => delete(rtnl, link),
        Err((_, e)) => Err(netlink_err("parking", link)(e)),
    }
}

/// Deletes the host end and waits until the kernel no longer lists it.
fn delete(rtnl: &mut Rtnl, link: &HostLink) -> Result<(), NetError> {
    match rtnl.request(RouteNetlinkMessage::DelLink(by_index(link.index)), 0) {
        Err(e) if e.raw_os_error() != Some(libc::ENODEV) => return Err(netlink_err("deleting", link)(e)),
        _ => {}
    }
    let mut failed = None;
    let gone = patiently(|| match rtnl.request(RouteNetlinkMessage::GetLink(by_index(link.index)), 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => true,
        Err(e) => {
            failed = Some(e);
            true
        }
        Ok(()) => false,
    });
    match (failed, gone) {
        (Some(e), _) => Err(netlink_err("waiting for the removal of", link)(e)),
        (None, false) => Err(netlink_err("waiting for the removal of", link)(io::Error::from_raw_os_error(
            libc::ETIMEDOUT,
        ))),
        (None, true) => Ok(()),
    }
}

impl Drop for NetLinks {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}
