//! The context layer's error type: a [`Context`](super::Context) value
//! the kernel would refuse, found by the checks in `apply.rs`, `caps.rs`
//! and `ids.rs` before anything is created, and passed up to the caller
//! (inside [`Error::Context`](crate::Error::Context)).

use std::ffi::OsString;
use std::path::PathBuf;

use super::caps::CapSet;

/// A context value the kernel would refuse, or that would reach beyond
/// the guest. Returned by spawn before anything is created (and by
/// parsing a [`CapSet`]).
///
/// ```
/// use vguest::{CapSet, ContextError};
///
/// let err = "chown,CAP_FLY".parse::<CapSet>().unwrap_err();
/// assert!(matches!(&err, ContextError::UnknownCapability { name } if name == "CAP_FLY"));
/// assert_eq!(err.to_string(), "unknown capability \"CAP_FLY\"");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The hostname or domain name is empty, too long, or contains NUL.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// `hostname` or `domainname`.
        what: &'static str,
        /// The value given.
        value: OsString,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A setting needs a namespace the context does not include.
    #[error("{setting} needs the {namespace} namespace, which the context does not include")]
    NamespaceRequired {
        /// The setting, e.g. `hostname`.
        setting: &'static str,
        /// The namespace it needs.
        namespace: &'static str,
    },
    /// A capability name is not known.
    #[error("unknown capability {name:?}")]
    UnknownCapability {
        /// The name given.
        name: String,
    },
    /// A capability is beyond what the running kernel knows.
    #[error(
        "capability number {number} in the {set} set is not supported by this kernel (last is {last_cap})"
    )]
    CapabilityUnsupported {
        /// Which set.
        set: &'static str,
        /// The capability number.
        number: u32,
        /// `/proc/sys/kernel/cap_last_cap`.
        last_cap: u32,
    },
    /// The guest would hold capabilities its creator does not have
    /// (possible only inside a user namespace of its own).
    #[error("the caller does not hold {missing}, so the guest cannot either")]
    CapabilityNotHeld {
        /// The capabilities asked for but not held.
        missing: CapSet,
    },
    /// The capability sets break a kernel rule.
    #[error("the {set} capability set must lie within the {within} set, but also has {extra}")]
    CapabilitiesInconsistent {
        /// The set that is too large.
        set: &'static str,
        /// The set it must lie within.
        within: &'static str,
        /// The capabilities outside.
        extra: CapSet,
    },
    /// An id map is malformed.
    #[error("invalid {kind} map: {reason}")]
    InvalidIdMap {
        /// `uid` or `gid`.
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The payload's uid or gid is not mapped in the user namespace.
    #[error("{kind} {id} is not mapped in the guest's user namespace")]
    UnmappedId {
        /// `uid`, `gid` or `supplementary gid`.
        kind: &'static str,
        /// The id.
        id: u32,
    },
    /// Supplementary groups were asked for, but setgroups is denied.
    #[error("supplementary groups {groups:?} cannot be set when setgroups is denied")]
    GroupsDenied {
        /// The groups.
        groups: Vec<u32>,
    },
    /// A user name is not in the guest's user database.
    #[error("unknown user {name:?} (not in {path})")]
    UnknownUser {
        /// The name.
        name: String,
        /// The passwd file searched.
        path: PathBuf,
    },
    /// The user database could not be read.
    #[error("cannot read user database {path}")]
    UserDatabase {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A soft limit is above its hard limit.
    #[error("rlimit {resource}: soft limit {soft} is above hard limit {hard}")]
    InvalidRlimit {
        /// The resource.
        resource: String,
        /// Soft limit.
        soft: u64,
        /// Hard limit.
        hard: u64,
    },
    /// A system call filter names a call no architecture of this host
    /// has.
    #[error("unknown system call {name:?} in the seccomp filter")]
    UnknownSyscall {
        /// The name given.
        name: String,
    },
    /// A system call filter's rule cannot be compiled.
    #[error("seccomp rule for {call}: {reason}")]
    InvalidSeccompRule {
        /// The call the rule is for (a name, or `#N`).
        call: String,
        /// What is wrong.
        reason: String,
    },
    /// A kernel fact needed for validation could not be read.
    #[error("cannot read {path}")]
    HostFact {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
