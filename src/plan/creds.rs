//! The ids and capabilities the payload runs as, rendered by the context
//! layer (or read from a running guest by `attach`) and applied by the
//! child (`child/creds.rs`).

/// Capability sets as kernel bit masks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CapsPlan {
    /// Highest capability number the kernel knows.
    pub last_cap: u32,
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// The ids the payload runs as.
#[derive(Debug, Clone)]
pub(crate) struct CredsPlan {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
    /// False when setgroups is denied in the guest's user namespace.
    pub set_groups: bool,
}
