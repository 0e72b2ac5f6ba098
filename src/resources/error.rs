//! The resource layer's error type.

use std::io;
use std::path::PathBuf;

use super::layout::CgroupLayout;

/// A failure of the resource (cgroup) layer: a value it refuses, a
/// controller the host lacks, or a cgroup operation the kernel refused.
///
/// Every variant names the controller, the group or file and the value
/// involved; the kernel's errno is the [`source`](std::error::Error::source).
///
/// ```
/// use vguest::{Error, Guest, ResourceError, Resources};
///
/// let err = Guest::builder("doc-bad-memory")
///     .resources(Resources::new().memory_max(0))
///     .spawn()
///     .unwrap_err();
/// match err {
///     Error::Resources(ResourceError::Invalid { controller, value, .. }) => {
///         assert_eq!(controller, "memory");
///         assert_eq!(value, "0");
///     }
///     other => panic!("unexpected {other}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// A limit is out of range or malformed; nothing was created.
    #[error("invalid {controller} setting {setting} = {value:?}: {reason}")]
    Invalid {
        /// The controller the setting belongs to (`memory`, `cpu`, ...).
        controller: &'static str,
        /// The setting (`memory.max`, `cpuset.cpus`, ...).
        setting: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The configured parent group is not a usable cgroup path.
    #[error("invalid cgroup parent {parent:?}: {reason}")]
    InvalidParent {
        /// The path given to [`Resources::parent`](crate::Resources::parent).
        parent: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Reading the host's cgroup mounts or the caller's own groups failed.
    #[error("reading {path:?} failed")]
    Detect {
        /// The file read.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// No cgroup file system is mounted.
    #[error("no cgroup file system is mounted")]
    NoCgroupFs,
    /// The caller's own group in a hierarchy lies outside what is mounted
    /// (for example inside a foreign cgroup namespace).
    #[error("the caller's {hierarchy} group {group:?} is not visible below the mount {mount:?}")]
    Placement {
        /// The hierarchy (`memory`, `cpu,cpuacct`, `unified`).
        hierarchy: String,
        /// The caller's group as `/proc/self/cgroup` shows it.
        group: String,
        /// Where the hierarchy is mounted.
        mount: PathBuf,
    },
    /// A controller a limit needs is not available on this host.
    #[error("the {controller} controller is not available ({layout} cgroups): {reason}")]
    MissingController {
        /// The controller (`memory`, `io`, ...).
        controller: &'static str,
        /// The host's layout.
        layout: CgroupLayout,
        /// What is missing.
        reason: String,
    },
    /// The controller is there but lacks the interface file a limit needs
    /// (for example `blkio.weight` without the BFQ scheduler, or
    /// `memory.memsw.*` without swap accounting).
    #[error("the {controller} controller has no {file} in {group:?}, needed for {setting}")]
    Unsupported {
        /// The controller.
        controller: &'static str,
        /// The missing file.
        file: &'static str,
        /// The group looked in.
        group: PathBuf,
        /// The setting that needs it.
        setting: &'static str,
    },
    /// cgroup v2 refused to hand controllers down to the guest's groups.
    ///
    /// cgroup v2 lets a group distribute controllers to children only if
    /// it holds no processes itself (the "no internal processes" rule of
    /// `Documentation/admin-guide/cgroup-v2.rst`). The caller's own group
    /// always holds the caller; run the caller from a leaf of a delegated
    /// group (systemd: `Delegate=yes`, then move the caller into a child
    /// such as `supervisor`) and point
    /// [`Resources::parent`](crate::Resources::parent) at the delegated
    /// group.
    #[error(
        "cannot enable the {controllers} controllers in {group:?}: cgroup v2 hands controllers to \
         child groups only from groups that hold no processes of their own; run the caller in a leaf \
         of a delegated group and point Resources::parent at that group"
    )]
    Delegation {
        /// The controllers asked for, space separated.
        controllers: String,
        /// The group whose `cgroup.subtree_control` refused them.
        group: PathBuf,
        /// The system error (usually `EBUSY`).
        #[source]
        source: io::Error,
    },
    /// Creating a group failed.
    #[error("creating cgroup {group:?} failed")]
    Create {
        /// The group's directory.
        group: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a limit.
    #[error("setting {file} = {value:?} of the {controller} controller in {group:?} failed")]
    SetLimit {
        /// The controller.
        controller: &'static str,
        /// The file written.
        file: &'static str,
        /// The value written.
        value: String,
        /// The group's directory.
        group: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// Moving the guest's first process into a group failed.
    #[error("moving pid {pid} into cgroup {group:?} failed")]
    Join {
        /// The process.
        pid: i32,
        /// The group's directory.
        group: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// An operation on a guest's group failed (opening, killing, freezing,
    /// thawing, reading statistics, removing).
    #[error("{op} cgroup {group:?} failed")]
    Group {
        /// What was attempted.
        op: &'static str,
        /// The group's directory (or file).
        group: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The guest has no groups to pause, count or kill: it was spawned
    /// without [`Resources`](crate::Resources), or has ended and its groups
    /// are gone.
    #[error("guest {guest:?} has no cgroups (spawned without GuestBuilder::resources, or ended)")]
    NoGroups {
        /// The guest's name.
        guest: String,
    },
}

impl ResourceError {
    pub(crate) fn group(op: &'static str, group: impl Into<PathBuf>, source: io::Error) -> Self {
        ResourceError::Group { op, group: group.into(), source }
    }
}
