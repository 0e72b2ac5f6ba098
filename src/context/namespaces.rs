//! Which namespaces a guest gets of its own (`namespaces(7)`): the
//! [`Namespaces`] flags, each the `CLONE_NEW*` constant the spawn creates
//! that namespace with, and the server-like default set.

use bitflags::bitflags;

bitflags! {
    /// The namespaces a guest gets of its own (see `namespaces(7)`).
    ///
    /// Each flag is a `CLONE_NEW*` constant. [`Namespaces::default()`] is
    /// what a server-like guest wants: everything except [`USER`] and
    /// [`TIME`], which are opt-in.
    ///
    /// [`USER`]: Namespaces::USER
    /// [`TIME`]: Namespaces::TIME
    ///
    /// ```
    /// use vguest::Namespaces;
    ///
    /// let ns = Namespaces::default() | Namespaces::TIME;
    /// assert!(ns.contains(Namespaces::PID | Namespaces::MOUNT | Namespaces::TIME));
    /// assert!(!ns.contains(Namespaces::USER));
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Namespaces: u32 {
        /// Own PID numbering; the guest's first process is PID 1.
        const PID = libc::CLONE_NEWPID as u32;
        /// Own mount table (required by the filesystem layer).
        const MOUNT = libc::CLONE_NEWNS as u32;
        /// Own hostname and NIS domain name.
        const UTS = libc::CLONE_NEWUTS as u32;
        /// Own System V IPC objects and POSIX message queues.
        const IPC = libc::CLONE_NEWIPC as u32;
        /// Own network stack (interfaces, addresses, routes, ports).
        const NET = libc::CLONE_NEWNET as u32;
        /// Own user and group ids, mapped onto the host's (see
        /// [`Context::uid_map`](crate::Context::uid_map)).
        const USER = libc::CLONE_NEWUSER as u32;
        /// Own view of the cgroup tree, rooted at the guest's own group.
        const CGROUP = libc::CLONE_NEWCGROUP as u32;
        /// Own offsets for `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME` (uptime).
        const TIME = libc::CLONE_NEWTIME as u32;
    }
}

impl Default for Namespaces {
    fn default() -> Self {
        Self::PID | Self::MOUNT | Self::UTS | Self::IPC | Self::NET | Self::CGROUP
    }
}
