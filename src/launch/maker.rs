//! Making a guest's fresh network namespace beside the spawn child.
//!
//! Creating a network namespace is the slowest part of a clone (about
//! half a millisecond: the loopback device, sysctl tables, per-namespace
//! state of every protocol), and nothing the spawn child does before its
//! exec needs it, apart from mounting a sysfs. So the child is cloned
//! without `CLONE_NEWNET` and a second short-lived process, the *maker*,
//! creates the namespace on another CPU while the child builds its mount
//! table:
//!
//! ```text
//!   parent ── clone(child) ── clone(maker) ── handshake ── reap maker ── read error pipe
//!   child                 └── ids, hostname, mounts, pivot_root ── recv(fd) ── setns ── exec
//!   maker                                └── [setns(user)] ── new netns ── lo up ── send(fd)
//! ```
//!
//! The maker shares the parent's memory and file table (`CLONE_VM |
//! CLONE_FILES`), lives in the caller's PID namespace (so the guest's pids
//! are the same as without it), and, for a guest with its own user
//! namespace, joins that namespace first so that the new network namespace
//! belongs to it, exactly as one made by the child's own clone would. It
//! sends the namespace, or the step that failed, over a `SOCK_SEQPACKET`
//! pair; the child joins it with `setns(2)`.
//!
//! ```text
//!   THE MAKER RUNS AFTER CLONE(CLONE_VM): its code is `child/netns.rs`.
//! ```

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use super::FdChannel;
use crate::child;
use crate::plan::MakerPlan;
use crate::sys::pidfd;
use crate::sys::stack::ChildStack;

/// The maker's stack: a handful of small frames.
const MAKER_STACK: usize = 16 * 1024;

/// A running maker. Dropping it before [`Maker::finish`] kills and reaps
/// it, so its stack and plan are never freed under it.
pub(crate) struct Maker {
    /// Read by the maker through a raw pointer.
    _plan: Box<MakerPlan>,
    pidfd: Option<OwnedFd>,
    _stack: ChildStack,
    /// Used by the maker by number, in the shared file table.
    _sock: OwnedFd,
}

impl Maker {
    /// Starts the maker for the spawn child (its pidfd `child`), which inherited its
    /// end of `channel` (made before the clone); the parent's copy of that
    /// end is closed here.
    ///
    /// With `user_namespace`, the maker joins the child's user namespace
    /// before creating the network namespace.
    ///
    /// The caller must block every signal around this call.
    pub(crate) fn start(channel: FdChannel, child: RawFd, user_namespace: bool) -> io::Result<Maker> {
        let FdChannel { ours, theirs } = channel;
        drop(theirs);
        let plan = Box::new(MakerPlan {
            userns_of: if user_namespace { child } else { -1 },
            sock: ours.as_raw_fd(),
        });
        let stack = ChildStack::new(MAKER_STACK)?;
        let mut flags = libc::CLONE_FILES as u64;
        if !user_namespace {
            flags |= libc::CLONE_NEWNET as u64;
        }
        // This `Maker` owns the plan and the stack and keeps them until
        // the maker is reaped (in `finish` or on drop).
        let cloned = child::clone_maker(&plan, &stack, flags)?;
        Ok(Maker { _plan: plan, pidfd: Some(cloned.pidfd), _stack: stack, _sock: ours })
    }

    /// Reaps the maker once it has sent the namespace (or its failure) to
    /// the child. Should it have died without sending, the child reads end
    /// of file when the socket closes here, and reports that.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        match self.pidfd.take() {
            Some(pidfd) => pidfd::waitid(pidfd.as_fd(), false).map(|_| ()),
            None => Ok(()),
        }
    }
}

impl Drop for Maker {
    fn drop(&mut self) {
        if let Some(pidfd) = self.pidfd.take() {
            let _ = pidfd::send_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = pidfd::waitid(pidfd.as_fd(), false);
        }
        // The fields drop after this: the plan and the stack once the
        // maker is gone, the socket too (the maker used its number in the
        // shared file table).
    }
}
