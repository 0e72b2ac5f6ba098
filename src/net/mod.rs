//! The network layer: a guest's own network stack, and the links into it.
//!
//! A [`Network`] says what stack a guest has (`network_namespaces(7)`):
//!
//! - [`Network::new`] (the default): its own network namespace with only
//!   `lo`, up. Nothing outside is reachable.
//! - [`Network::new`] with [`veth`](Network::veth) links: a `veth(4)` pair
//!   per link, one end on the host side (optionally in a bridge, with its
//!   own addresses), the other inside the guest with its addresses, MTU,
//!   MAC address, default gateway and routes.
//! - [`Network::new`] with [`macvlan`](Network::macvlan) links: an
//!   interface of the guest stacked on a host link, with addresses of its
//!   own on that link's network (the nearest to Linux-VServer's network
//!   context, where a guest owned addresses on the host's interfaces).
//! - [`Network::host`]: no namespace of its own; the guest shares its
//!   creator's stack.
//! - [`Network::join`]: an existing network namespace, such as
//!   `/run/netns/NAME`.
//!
//! Links are made over rtnetlink (`rtnetlink(7)`), never by running `ip`:
//! after the guest's first process is cloned into its new namespace and
//! before it goes on, the parent creates each link with its guest end
//! directly inside that namespace, configures both ends, and only then
//! lets the guest continue, so the payload never sees a half-made stack.
//! IPv6 addresses are added without duplicate address detection, so they
//! are usable at once. The host side of every veth link is deleted when
//! the guest is waited for or dropped and on every failed spawn (a
//! macvlan interface lives only in the guest's namespace and goes with
//! it). Nothing else on the host changes: no sysctl (such as
//! `ip_forward`), no NAT, no route beyond those the kernel adds for the
//! host side's own addresses.
//!
//! Limits worth knowing:
//! - A macvlan interface cannot talk to its parent link's own host
//!   addresses, only to other hosts on that link (a macvlan property); a
//!   veth link into a bridge can.
//! - Joining an existing namespace is refused with a user namespace of the
//!   guest's own: the guest would hold no privilege over it.
//! - The kernel here decides what link types exist: ipvlan, for one, is
//!   often a module that is not loaded.
//!
//! ```no_run
//! use vguest::{Command, Guest, Network, Veth};
//!
//! let net = Network::new().veth(
//!     Veth::new("vgweb1")
//!         .address("198.18.0.2/24")
//!         .address("fd42::2/64")
//!         .gateway("198.18.0.1")
//!         .host_address("198.18.0.1/24"),
//! );
//! let mut guest = Guest::builder("web1")
//!     .network(net)
//!     .command(Command::new("/bin/ip").arg("addr"))
//!     .spawn()?;
//! guest.wait()?;
//! # Ok::<(), vguest::Error>(())
//! ```

mod check;
mod cidr;
mod error;
mod link;
mod messages;
mod netlink;
mod owner;
mod plan;
mod pool;
mod setup;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

pub use self::error::NetError;
pub use self::link::{Macvlan, MacvlanMode, Veth};
pub(crate) use self::owner::NetLinks;
pub(crate) use self::plan::NetPlan;
pub use self::pool::NetnsPool;
pub(crate) use self::setup::{child_netns, setup};

/// A guest's network stack: own (the default), shared with the host, or
/// an existing namespace; with veth and macvlan links into it.
///
/// Every setter only records a value; [`spawn`](crate::GuestBuilder::spawn)
/// checks them all and fails with a [`NetError`] naming the link and the
/// value before anything is created.
///
/// ```
/// use vguest::{Guest, Network, Veth};
///
/// let isolated = Guest::builder("a").network(Network::new());
/// let shared = Guest::builder("b").network(Network::host());
/// let linked = Guest::builder("c").network(Network::new().veth(Veth::new("vgc").address("198.18.0.2/30")));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub(crate) mode: Mode,
    pub(crate) links: Vec<Link>,
    pub(crate) pool: Option<NetnsPool>,
}

/// Which stack the guest has.
#[derive(Debug, Clone, Default)]
pub(crate) enum Mode {
    /// A new network namespace.
    #[default]
    Own,
    /// The creator's.
    Host,
    /// A namespace given by path.
    JoinPath(PathBuf),
    /// A namespace given by an open fd.
    JoinFd(Arc<OwnedFd>),
}

/// One link into the guest.
#[derive(Debug, Clone)]
pub(crate) enum Link {
    Veth(Veth),
    Macvlan(Macvlan),
}

impl Network {
    /// A network namespace of the guest's own, with `lo` up and nothing
    /// else until links are added: `vserver`'s "no network".
    ///
    /// ```
    /// use vguest::Network;
    ///
    /// let net = Network::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// No network namespace: the guest uses its creator's interfaces,
    /// addresses and ports.
    ///
    /// ```
    /// use vguest::{Guest, Network};
    ///
    /// let b = Guest::builder("tool").network(Network::host());
    /// ```
    pub fn host() -> Self {
        Network { mode: Mode::Host, links: Vec::new(), pool: None }
    }

    /// Joins the existing network namespace at `path` (a file such as
    /// `/run/netns/NAME`, or `/proc/PID/ns/net`), opened at spawn.
    ///
    /// ```
    /// use vguest::{Guest, Network};
    ///
    /// let b = Guest::builder("blue").network(Network::join("/run/netns/blue"));
    /// ```
    pub fn join(path: impl Into<PathBuf>) -> Self {
        Network { mode: Mode::JoinPath(path.into()), links: Vec::new(), pool: None }
    }

    /// Joins the network namespace behind an open file descriptor.
    ///
    /// ```no_run
    /// use vguest::{Guest, Network};
    ///
    /// let fd = std::fs::File::open("/run/netns/blue")?;
    /// let b = Guest::builder("blue").network(Network::join_fd(fd.into()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_fd(fd: OwnedFd) -> Self {
        Network { mode: Mode::JoinFd(Arc::new(fd)), links: Vec::new(), pool: None }
    }

    /// Adds a veth link: a pair of interfaces, one on the host side, one
    /// in the guest. Only with a namespace of the guest's own
    /// ([`Network::new`]).
    ///
    /// ```
    /// use vguest::{Network, Veth};
    ///
    /// let net = Network::new().veth(Veth::new("vgweb1").address("198.18.0.2/24").gateway("198.18.0.1"));
    /// ```
    pub fn veth(mut self, veth: Veth) -> Self {
        self.links.push(Link::Veth(veth));
        self
    }

    /// Adds a macvlan link: a guest interface with its own MAC address on
    /// a host link. Only with a namespace of the guest's own
    /// ([`Network::new`]).
    ///
    /// ```
    /// use vguest::{Macvlan, Network};
    ///
    /// let net = Network::new().macvlan(Macvlan::new("eth1").address("198.18.5.10/24"));
    /// ```
    pub fn macvlan(mut self, macvlan: Macvlan) -> Self {
        self.links.push(Link::Macvlan(macvlan));
        self
    }

    /// Takes the guest's own namespace from `pool` when it has one ready
    /// (made ahead of time, `lo` up), which takes the namespace's creation
    /// off the spawn path; else the guest gets a new one as usual. The
    /// links are then made before the guest's first process exists. Not
    /// used for a guest with a user namespace of its own, whose network
    /// namespace must belong to it.
    ///
    /// ```no_run
    /// use vguest::{Network, NetnsPool};
    ///
    /// let pool = NetnsPool::new(4)?;
    /// let net = Network::new().pool(&pool);
    /// # Ok::<(), vguest::NetError>(())
    /// ```
    pub fn pool(mut self, pool: &NetnsPool) -> Self {
        self.pool = Some(pool.clone());
        self
    }

    /// Whether the guest gets a network namespace of its own.
    pub(crate) fn owns_namespace(&self) -> bool {
        matches!(self.mode, Mode::Own)
    }
}
