//! The link builders: [`Veth`] and [`Macvlan`], and the settings of the
//! guest-side interface they share.

use std::path::PathBuf;

/// The guest-side interface of a link: name, addresses, routes, MTU, MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Iface {
    pub name: String,
    pub addresses: Vec<String>,
    pub gateways: Vec<String>,
    /// (destination, via).
    pub routes: Vec<(String, Option<String>)>,
    pub mtu: Option<u32>,
    pub mac: Option<String>,
}

impl Default for Iface {
    fn default() -> Self {
        Iface {
            name: "eth0".into(),
            addresses: Vec::new(),
            gateways: Vec::new(),
            routes: Vec::new(),
            mtu: None,
            mac: None,
        }
    }
}

/// The setters of the guest-side interface, on both link types.
macro_rules! iface_setters {
    ($ty:ident, $new:literal) => {
        impl $ty {
            /// The interface's name inside the guest (default `eth0`; at
            /// most 15 bytes).
            ///
            /// ```
            #[doc = concat!("use vguest::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let link = ", stringify!($ty), "::new(", $new, ").name(\"uplink\");")]
            /// ```
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.iface.name = name.into();
                self
            }

            /// Adds an address with its prefix length, IPv4 or IPv6, such as
            /// `198.18.0.2/24` or `fd42::2/64`. IPv6 addresses skip duplicate
            /// address detection, so they work as soon as the guest runs.
            ///
            /// ```
            #[doc = concat!("use vguest::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let link = ", stringify!($ty), "::new(", $new, ").address(\"198.18.0.2/24\").address(\"fd42::2/64\");")]
            /// ```
            pub fn address(mut self, cidr: impl Into<String>) -> Self {
                self.iface.addresses.push(cidr.into());
                self
            }

            /// The default gateway for the address family of `ip`, which
            /// must lie in one of this interface's subnets (or be an IPv6
            /// link-local address). At most one per family per guest.
            ///
            /// ```
            #[doc = concat!("use vguest::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let link = ", stringify!($ty), "::new(", $new, ").address(\"198.18.0.2/24\").gateway(\"198.18.0.1\");")]
            /// ```
            pub fn gateway(mut self, ip: impl Into<String>) -> Self {
                self.iface.gateways.push(ip.into());
                self
            }

            /// Adds a route to `destination` (a network such as
            /// `198.19.0.0/16`) through this interface, via the router
            /// `via` if given (which must lie in one of its subnets) or
            /// directly on the link.
            ///
            /// ```
            #[doc = concat!("use vguest::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let link = ", stringify!($ty), "::new(", $new, ")")]
            ///     .address("198.18.0.2/24")
            ///     .route("198.19.0.0/16", Some("198.18.0.254"))
            ///     .route("198.18.9.0/24", None);
            /// ```
            pub fn route(mut self, destination: impl Into<String>, via: Option<&str>) -> Self {
                self.iface.routes.push((destination.into(), via.map(str::to_string)));
                self
            }

            /// The MTU of the link (both ends of a veth pair), 68 to 65535
            /// (at least 1280 with IPv6 addresses).
            ///
            /// ```
            #[doc = concat!("use vguest::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let link = ", stringify!($ty), "::new(", $new, ").mtu(1400);")]
            /// ```
            pub fn mtu(mut self, mtu: u32) -> Self {
                self.iface.mtu = Some(mtu);
                self
            }

            /// The guest interface's MAC address, such as
            /// `02:42:c6:12:00:02` (unicast; default: random).
            ///
            /// ```
            #[doc = concat!("use vguest::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let link = ", stringify!($ty), "::new(", $new, ").mac(\"02:42:c6:12:00:02\");")]
            /// ```
            pub fn mac(mut self, mac: impl Into<String>) -> Self {
                self.iface.mac = Some(mac.into());
                self
            }
        }
    };
}

/// A veth link: a pair of connected interfaces, one on the host side with
/// a name the caller chooses, one in the guest (`veth(4)`).
///
/// The host side is created in the creator's network namespace, or in
/// [`host_netns`](Veth::host_netns); it can be put into a bridge there and
/// given addresses of its own. It is deleted when the guest ends.
///
/// ```
/// use vguest::{Network, Veth};
///
/// let link = Veth::new("vgweb1")
///     .address("198.18.0.2/24")
///     .address("fd42::2/64")
///     .gateway("198.18.0.1")
///     .host_address("198.18.0.1/24")
///     .mtu(1400);
/// let net = Network::new().veth(link);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veth {
    pub(crate) host_name: String,
    pub(crate) host_netns: Option<PathBuf>,
    pub(crate) bridge: Option<String>,
    pub(crate) host_addresses: Vec<String>,
    pub(crate) iface: Iface,
}

impl Veth {
    /// A veth pair whose host side is called `host_name` (at most 15
    /// bytes; a common prefix such as `vg` keeps the host's own links
    /// apart) and whose guest side is `eth0`.
    ///
    /// ```
    /// use vguest::Veth;
    ///
    /// let link = Veth::new("vgweb1");
    /// ```
    pub fn new(host_name: impl Into<String>) -> Self {
        Veth {
            host_name: host_name.into(),
            host_netns: None,
            bridge: None,
            host_addresses: Vec::new(),
            iface: Iface::default(),
        }
    }

    /// Puts the host side into the bridge `bridge`, which must exist in
    /// the host side's namespace.
    ///
    /// ```
    /// use vguest::Veth;
    ///
    /// let link = Veth::new("vgweb1").bridge("br0").address("198.18.0.2/24");
    /// ```
    pub fn bridge(mut self, bridge: impl Into<String>) -> Self {
        self.bridge = Some(bridge.into());
        self
    }

    /// Adds an address to the host side, such as the guest's gateway
    /// `198.18.0.1/24`. The kernel adds the route to its subnet through
    /// the host side; nothing else on the host changes.
    ///
    /// ```
    /// use vguest::Veth;
    ///
    /// let link = Veth::new("vgweb1").host_address("198.18.0.1/24").address("198.18.0.2/24");
    /// ```
    pub fn host_address(mut self, cidr: impl Into<String>) -> Self {
        self.host_addresses.push(cidr.into());
        self
    }

    /// Creates the host side in the network namespace at `path` (such as
    /// `/run/netns/switch`) instead of the creator's.
    ///
    /// ```
    /// use vguest::Veth;
    ///
    /// let link = Veth::new("vgweb1").host_netns("/run/netns/switch").bridge("br0");
    /// ```
    pub fn host_netns(mut self, path: impl Into<PathBuf>) -> Self {
        self.host_netns = Some(path.into());
        self
    }
}

iface_setters!(Veth, "\"vgweb1\"");

/// How a macvlan interface forwards among its siblings on one parent link
/// (`ip-link(8)`, "macvlan").
///
/// ```
/// use vguest::MacvlanMode;
///
/// assert_eq!(MacvlanMode::default(), MacvlanMode::Bridge);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MacvlanMode {
    /// Siblings on the same parent talk to each other directly.
    #[default]
    Bridge,
    /// Siblings cannot talk to each other at all.
    Private,
    /// All traffic goes out to the parent's switch, which must send it
    /// back for siblings to talk (802.1Qbg).
    Vepa,
}

/// A macvlan link: a guest interface with its own MAC address stacked on
/// a host link, so the guest has addresses directly on that link's network.
///
/// ```
/// use vguest::{Macvlan, Network};
///
/// let link = Macvlan::new("eth1").address("198.18.5.10/24").gateway("198.18.5.1");
/// let net = Network::new().macvlan(link);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Macvlan {
    pub(crate) parent: String,
    pub(crate) parent_netns: Option<PathBuf>,
    pub(crate) mode: MacvlanMode,
    pub(crate) iface: Iface,
}

impl Macvlan {
    /// A macvlan interface on the host link `parent`, named `eth0` in the
    /// guest, in [`MacvlanMode::Bridge`].
    ///
    /// ```
    /// use vguest::Macvlan;
    ///
    /// let link = Macvlan::new("eth1");
    /// ```
    pub fn new(parent: impl Into<String>) -> Self {
        Macvlan {
            parent: parent.into(),
            parent_netns: None,
            mode: MacvlanMode::Bridge,
            iface: Iface::default(),
        }
    }

    /// Sets the forwarding mode among siblings.
    ///
    /// ```
    /// use vguest::{Macvlan, MacvlanMode};
    ///
    /// let link = Macvlan::new("eth1").mode(MacvlanMode::Private);
    /// ```
    pub fn mode(mut self, mode: MacvlanMode) -> Self {
        self.mode = mode;
        self
    }

    /// Looks for the parent link in the network namespace at `path`
    /// instead of the creator's.
    ///
    /// ```
    /// use vguest::Macvlan;
    ///
    /// let link = Macvlan::new("uplink").parent_netns("/run/netns/lan");
    /// ```
    pub fn parent_netns(mut self, path: impl Into<PathBuf>) -> Self {
        self.parent_netns = Some(path.into());
        self
    }
}

iface_setters!(Macvlan, "\"eth1\"");
