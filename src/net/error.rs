//! The network layer's error type.

use std::io;
use std::path::PathBuf;

/// A failure of the network layer: a value it refuses, a link that is
/// missing or taken, or a netlink request the kernel refused.
///
/// Every variant names the link and the value involved; the kernel's
/// errno is the [`source`](std::error::Error::source).
///
/// ```
/// use vguest::{Error, Guest, NetError, Network, Veth};
///
/// let err = Guest::builder("doc-bad-address")
///     .network(Network::new().veth(Veth::new("vgdoc0").address("198.18.0.300/24")))
///     .spawn()
///     .unwrap_err();
/// match err {
///     Error::Net(NetError::Invalid { link, value, .. }) => {
///         assert_eq!(link, "vgdoc0");
///         assert_eq!(value, "198.18.0.300/24");
///     }
///     other => panic!("unexpected {other}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A setting of a link is malformed or out of range; nothing was
    /// created.
    #[error("invalid {setting} {value:?} of link {link}: {reason}")]
    Invalid {
        /// The link: the veth's host-side name or the macvlan's parent.
        link: String,
        /// The setting (`address`, `gateway`, `name`, `mtu`, ...).
        setting: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Two settings contradict each other (the same name or address
    /// twice, two default gateways of one family); nothing was created.
    #[error("{setting} {value:?} of link {link} conflicts with {other}")]
    Conflict {
        /// The link.
        link: String,
        /// The setting.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What it conflicts with.
        other: String,
    },
    /// The network mode does not allow what was asked.
    #[error("{what} needs {needs}")]
    Unsupported {
        /// What was asked.
        what: &'static str,
        /// What it needs.
        needs: &'static str,
    },
    /// A network namespace file could not be opened or entered.
    #[error("opening network namespace {path:?} failed")]
    Namespace {
        /// The namespace file.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A link the configuration names (a bridge, a macvlan parent) does
    /// not exist.
    #[error("{role} {name} of link {link} does not exist{}", in_netns(.netns))]
    NoSuchLink {
        /// The link being made.
        link: String,
        /// `bridge` or `macvlan parent`.
        role: &'static str,
        /// The missing link's name.
        name: String,
        /// The namespace searched, if not the creator's.
        netns: Option<PathBuf>,
    },
    /// An interface of that name already exists where the link would go.
    #[error("a link named {name} already exists{}", in_netns(.netns))]
    LinkExists {
        /// The name.
        name: String,
        /// The namespace, if not the creator's.
        netns: Option<PathBuf>,
    },
    /// A [`NetnsPool`](crate::NetnsPool) could not make a namespace.
    #[error("making a network namespace for the pool failed")]
    Pool {
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A netlink request failed.
    #[error("{op} {value} on link {link} failed")]
    Netlink {
        /// What was attempted: `creating veth`, `adding address`, ...
        op: &'static str,
        /// The link.
        link: String,
        /// The value involved (an address, a route, a name).
        value: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
}

fn in_netns(netns: &Option<PathBuf>) -> String {
    netns.as_ref().map(|p| format!(" in network namespace {}", p.display())).unwrap_or_default()
}
