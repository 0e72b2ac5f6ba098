//! Capability sets of the guest's payload (see `capabilities(7)`).

use std::fmt;
use std::str::FromStr;

/// One capability (`capabilities(7)`), as the `caps` crate names it.
///
/// ```
/// use vguest::{CapSet, Capability};
///
/// let set: CapSet = [Capability::CAP_NET_BIND_SERVICE, Capability::CAP_CHOWN].into_iter().collect();
/// assert_eq!(set.to_string(), "CAP_CHOWN,CAP_NET_BIND_SERVICE");
/// ```
pub use caps::Capability;

use crate::context::ContextError;

/// A set of [`Capability`] values, stored as the kernel's 64-bit mask.
///
/// Build one from capabilities, or parse a comma-separated list of names
/// (case-insensitive, with or without the `CAP_` prefix):
///
/// ```
/// use vguest::{CapSet, Capability};
///
/// let a: CapSet = [Capability::CAP_CHOWN, Capability::CAP_KILL].into_iter().collect();
/// let b: CapSet = "chown, CAP_KILL".parse().unwrap();
/// assert_eq!(a, b);
/// assert!("CAP_FLY".parse::<CapSet>().is_err());
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSet(u64);

impl CapSet {
    /// The empty set.
    ///
    /// ```
    /// use vguest::{CapSet, Capability};
    ///
    /// assert!(CapSet::EMPTY.is_empty());
    /// assert!(!CapSet::EMPTY.contains(Capability::CAP_KILL));
    /// assert_eq!(CapSet::default(), CapSet::EMPTY);
    /// ```
    pub const EMPTY: CapSet = CapSet(0);

    /// Every capability this crate knows (whether or not the running
    /// kernel does; spawn checks that).
    ///
    /// ```
    /// use vguest::{CapSet, Capability};
    ///
    /// assert!(CapSet::all().contains(Capability::CAP_SYS_ADMIN));
    /// assert!(CapSet::server_default().is_subset(CapSet::all()));
    /// ```
    pub fn all() -> CapSet {
        caps::all().into_iter().collect()
    }

    /// The default set of a guest that is a server: what daemons need to
    /// start as root and drop privileges, bind low ports and own files,
    /// and nothing that reaches beyond the guest (no `CAP_SYS_ADMIN`,
    /// `CAP_SYS_MODULE`, `CAP_SYS_TIME`, `CAP_SYS_PTRACE`, `CAP_SYS_RAWIO`,
    /// `CAP_SYS_BOOT`, `CAP_NET_ADMIN`, `CAP_MAC_*`, `CAP_BPF`, ...).
    ///
    /// Nor `CAP_MKNOD`: a device node a guest leaves in its on-disk layer
    /// would open the host's disks for any host process that reaches it,
    /// even though the guest's own mounts are `nodev`. A guest that must
    /// make device nodes gets it by adding it:
    ///
    /// ```
    /// use vguest::{CapSet, Capability};
    ///
    /// let set = CapSet::server_default();
    /// assert!(set.contains(Capability::CAP_NET_BIND_SERVICE));
    /// assert!(!set.contains(Capability::CAP_SYS_ADMIN));
    /// assert!(!set.contains(Capability::CAP_MKNOD));
    ///
    /// let mut with_devices = set;
    /// with_devices.insert(Capability::CAP_MKNOD);
    /// ```
    pub fn server_default() -> CapSet {
        use Capability::*;
        [
            CAP_CHOWN,
            CAP_DAC_OVERRIDE,
            CAP_FOWNER,
            CAP_FSETID,
            CAP_KILL,
            CAP_SETGID,
            CAP_SETUID,
            CAP_SETPCAP,
            CAP_NET_BIND_SERVICE,
            CAP_NET_RAW,
            CAP_SYS_CHROOT,
            CAP_AUDIT_WRITE,
            CAP_SETFCAP,
        ]
        .into_iter()
        .collect()
    }

    /// Whether `cap` is in the set.
    ///
    /// ```
    /// use vguest::{CapSet, Capability};
    ///
    /// let set: CapSet = "chown,kill".parse()?;
    /// assert!(set.contains(Capability::CAP_KILL));
    /// assert!(!set.contains(Capability::CAP_SYS_ADMIN));
    /// # Ok::<(), vguest::ContextError>(())
    /// ```
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & cap.bitmask() != 0
    }

    /// Adds `cap`.
    ///
    /// ```
    /// use vguest::{CapSet, Capability};
    ///
    /// let mut set = CapSet::EMPTY;
    /// set.insert(Capability::CAP_NET_BIND_SERVICE);
    /// assert_eq!(set, "net_bind_service".parse()?);
    /// # Ok::<(), vguest::ContextError>(())
    /// ```
    pub fn insert(&mut self, cap: Capability) {
        self.0 |= cap.bitmask();
    }

    /// Removes `cap`.
    ///
    /// ```
    /// use vguest::{CapSet, Capability};
    ///
    /// // The server set without raw sockets (no ping).
    /// let mut set = CapSet::server_default();
    /// set.remove(Capability::CAP_NET_RAW);
    /// assert!(!set.contains(Capability::CAP_NET_RAW));
    /// assert!(set.contains(Capability::CAP_NET_BIND_SERVICE));
    /// ```
    pub fn remove(&mut self, cap: Capability) {
        self.0 &= !cap.bitmask();
    }

    /// Whether every capability of `self` is also in `other`.
    ///
    /// ```
    /// use vguest::CapSet;
    ///
    /// let small: CapSet = "chown".parse()?;
    /// assert!(small.is_subset(CapSet::server_default()));
    /// assert!(!CapSet::server_default().is_subset(small));
    /// assert!(CapSet::EMPTY.is_subset(small));
    /// # Ok::<(), vguest::ContextError>(())
    /// ```
    pub fn is_subset(self, other: CapSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether the set is empty.
    ///
    /// ```
    /// use vguest::{CapSet, Capabilities};
    ///
    /// assert!(Capabilities::default().ambient.is_empty());
    /// assert!(!CapSet::server_default().is_empty());
    /// ```
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kernel's bit mask (bit n is capability n), as shown in the
    /// `Cap*` lines of `/proc/PID/status`.
    ///
    /// ```
    /// use vguest::CapSet;
    ///
    /// // CAP_CHOWN is capability 0, CAP_KILL is 5.
    /// let set: CapSet = "chown,kill".parse()?;
    /// assert_eq!(set.bits(), 0b10_0001);
    /// # Ok::<(), vguest::ContextError>(())
    /// ```
    pub fn bits(self) -> u64 {
        self.0
    }

    /// The capabilities in the set, in ascending order.
    ///
    /// ```
    /// use vguest::{CapSet, Capability};
    ///
    /// let set: CapSet = "kill, chown".parse()?;
    /// let caps: Vec<Capability> = set.iter().collect();
    /// assert_eq!(caps, [Capability::CAP_CHOWN, Capability::CAP_KILL]);
    /// # Ok::<(), vguest::ContextError>(())
    /// ```
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        let mut known: Vec<Capability> = caps::all().into_iter().filter(|c| self.contains(*c)).collect();
        known.sort_by_key(|c| c.index());
        known.into_iter()
    }

    /// The highest capability number in the set, if any.
    pub(crate) fn highest(self) -> Option<u32> {
        (self.0 != 0).then(|| 63 - self.0.leading_zeros())
    }
}

impl FromIterator<Capability> for CapSet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut set = CapSet::EMPTY;
        for cap in iter {
            set.insert(cap);
        }
        set
    }
}

impl std::ops::BitOr for CapSet {
    type Output = CapSet;
    fn bitor(self, rhs: CapSet) -> CapSet {
        CapSet(self.0 | rhs.0)
    }
}

impl std::ops::Not for CapSet {
    type Output = CapSet;
    fn not(self) -> CapSet {
        CapSet(!self.0)
    }
}

impl std::ops::BitAnd for CapSet {
    type Output = CapSet;
    fn bitand(self, rhs: CapSet) -> CapSet {
        CapSet(self.0 & rhs.0)
    }
}

impl FromStr for CapSet {
    type Err = ContextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = CapSet::EMPTY;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let canonical = caps::to_canonical(name);
            let cap = Capability::from_str(&canonical)
                .map_err(|_| ContextError::UnknownCapability { name: name.to_string() })?;
            set.insert(cap);
        }
        Ok(set)
    }
}

impl fmt::Debug for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, cap) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{cap}")?;
        }
        Ok(())
    }
}

/// The capability sets the payload runs with, after its `execve`.
///
/// The five sets follow `capabilities(7)` and the OCI runtime
/// specification. What the payload ends up with after `execve` depends on
/// the kernel's rules: a root payload gets `bounding` as its permitted and
/// effective sets; a non-root payload gets its `ambient` set. The
/// constructors below pick consistent sets so that `/proc/self/status`
/// inside the guest shows exactly what was asked for.
///
/// ```
/// use vguest::{Capabilities, CapSet, Capability};
///
/// // A payload that may only bind low ports, whatever user it runs as.
/// let only: CapSet = [Capability::CAP_NET_BIND_SERVICE].into_iter().collect();
/// let caps = Capabilities::only(only);
/// assert_eq!(caps.bounding, only);
/// assert_eq!(caps.ambient, only);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Upper bound for the payload and everything it starts
    /// (`PR_CAPBSET_DROP` for the rest).
    pub bounding: CapSet,
    /// Effective set before `execve`.
    pub effective: CapSet,
    /// Permitted set before `execve`.
    pub permitted: CapSet,
    /// Inheritable set.
    pub inheritable: CapSet,
    /// Ambient set: what a non-root payload keeps across `execve`.
    pub ambient: CapSet,
}

impl Default for Capabilities {
    /// [`CapSet::server_default`] as bounding, effective and permitted set;
    /// nothing inheritable or ambient. A root payload gets the server set;
    /// a payload running as another user gets none.
    fn default() -> Self {
        let set = CapSet::server_default();
        Capabilities {
            bounding: set,
            effective: set,
            permitted: set,
            inheritable: CapSet::EMPTY,
            ambient: CapSet::EMPTY,
        }
    }
}

impl Capabilities {
    /// Exactly `set` for the payload whatever its user: every one of the
    /// five sets is `set`.
    ///
    /// ```
    /// use vguest::{CapSet, Capabilities, Capability};
    ///
    /// let caps = Capabilities::only("net_bind_service".parse::<CapSet>()?);
    /// assert_eq!(caps.bounding, caps.ambient);
    /// assert!(caps.inheritable.contains(Capability::CAP_NET_BIND_SERVICE));
    /// assert!(!caps.effective.contains(Capability::CAP_CHOWN));
    /// # Ok::<(), vguest::ContextError>(())
    /// ```
    pub fn only(set: CapSet) -> Self {
        Capabilities { bounding: set, effective: set, permitted: set, inheritable: set, ambient: set }
    }

    /// No capabilities at all, even for a root payload.
    ///
    /// ```
    /// use vguest::Capabilities;
    ///
    /// assert!(Capabilities::none().bounding.is_empty());
    /// ```
    pub fn none() -> Self {
        Self::only(CapSet::EMPTY)
    }

    /// Checks the kernel's invariants: ambient within permitted and
    /// inheritable, effective and inheritable within permitted and
    /// bounding respectively, and every capability known to the kernel
    /// (`last_cap` from `/proc/sys/kernel/cap_last_cap`).
    pub(crate) fn validate(&self, last_cap: u32) -> Result<(), ContextError> {
        let sets = [
            ("bounding", self.bounding),
            ("effective", self.effective),
            ("permitted", self.permitted),
            ("inheritable", self.inheritable),
            ("ambient", self.ambient),
        ];
        for (name, set) in sets {
            if let Some(high) = set.highest().filter(|h| *h > last_cap) {
                return Err(ContextError::CapabilityUnsupported { set: name, number: high, last_cap });
            }
        }
        let rules = [
            ("ambient", self.ambient, "permitted", self.permitted),
            ("ambient", self.ambient, "inheritable", self.inheritable),
            ("effective", self.effective, "permitted", self.permitted),
            ("inheritable", self.inheritable, "bounding", self.bounding),
        ];
        for (set, value, within, bound) in rules {
            if !value.is_subset(bound) {
                return Err(ContextError::CapabilitiesInconsistent {
                    set,
                    within,
                    extra: CapSet(value.0 & !bound.0),
                });
            }
        }
        Ok(())
    }
}
