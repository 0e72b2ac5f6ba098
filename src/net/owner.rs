//! The owner of a guest's host-side links, [`NetLinks`]: it deletes them
//! again when the guest is waited for or dropped, and on a failed spawn.
//!
//! `setup.rs` fills it while it makes the veth pairs (a socket per
//! host-side namespace, each host end's index and name); the spawn, then
//! the `Guest`, hold it until [`remove`](NetLinks::remove), drop or
//! [`detach`](NetLinks::detach). A macvlan interface lives only in the
//! guest's namespace, so nothing of it is kept here.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::LinkMessage;

use super::NetError;
use super::netlink::Rtnl;
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
    /// The socket for the host-side namespace `netns`, kept for deleting
    /// the links made there.
    pub(super) fn socket(&mut self, netns: Option<&Path>) -> Result<usize, NetError> {
        if let Some(i) = self.sockets.iter().position(|(p, _)| p.as_deref() == netns) {
            return Ok(i);
        }
        let rtnl = open_socket(netns)?;
        self.sockets.push((netns.map(Path::to_path_buf), rtnl));
        Ok(self.sockets.len() - 1)
    }

    /// The socket [`socket`](NetLinks::socket) returned.
    pub(super) fn rtnl(&mut self, socket: usize) -> &mut Rtnl {
        &mut self.sockets[socket].1
    }

    /// Records a host-side link made over `socket`, to delete it again.
    pub(super) fn record(&mut self, socket: usize, index: u32, name: String) {
        self.links.push((socket, index, name));
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
