//! What a checked [`Network`](super::Network) becomes: the parsed values
//! of every link, and the namespace the guest joins, held open.
//!
//! `check.rs` makes a [`NetPlan`] at spawn
//! ([`Network::plan`](super::Network::plan)); the spawn reads it, and
//! `setup.rs` makes the links it describes.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use super::cidr::Cidr;
use super::link::MacvlanMode;

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

/// A checked [`Network`](super::Network).
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
