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
//!   THE MAKER RUNS AFTER CLONE(CLONE_VM): the rules of `child.rs` apply.
//! ```

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use super::FdChannel;
use super::child::{At, Failure};
use super::wire::{self, step};
use crate::sys::call;
use crate::sys::clone::{Cloned, clone_on_stack};
use crate::sys::pidfd;
use crate::sys::stack::ChildStack;

/// `SIOCGSKNS` (`linux/sockios.h`): an fd of a socket's network namespace.
const SIOCGSKNS: u64 = 0x894C;

/// The maker's stack: a handful of small frames.
const MAKER_STACK: usize = 16 * 1024;

/// What the maker reads; it lives on the parent's heap until the maker
/// is reaped.
#[derive(Debug)]
struct MakerPlan {
    /// A pidfd of the spawn child whose user namespace to join first, or
    /// -1 to stay in the caller's (the maker was then cloned into a new
    /// network namespace).
    userns_of: RawFd,
    /// The maker's end of the socket pair (shared file table).
    sock: RawFd,
}

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
    /// Starts the maker for the spawn child `child`, which inherited its
    /// end of `channel` (made before the clone); the parent's copy of that
    /// end is closed here.
    ///
    /// With `user_namespace`, the maker joins the child's user namespace
    /// before creating the network namespace.
    ///
    /// The caller must block every signal around this call.
    pub(crate) fn start(channel: FdChannel, child: &Cloned, user_namespace: bool) -> io::Result<Maker> {
        let FdChannel { ours, theirs } = channel;
        drop(theirs);
        let plan = Box::new(MakerPlan {
            userns_of: if user_namespace { child.pidfd.as_raw_fd() } else { -1 },
            sock: ours.as_raw_fd(),
        });
        let stack = ChildStack::new(MAKER_STACK)?;
        let mut flags = libc::CLONE_FILES as u64;
        if !user_namespace {
            flags |= libc::CLONE_NEWNET as u64;
        }
        // SAFETY: `maker_main` follows the post-clone rules: it reads the
        // plan, which this `Maker` owns and keeps until the maker is
        // reaped (in `finish` or on drop), uses only its own stack and raw
        // system calls, and ends in exit_group.
        let cloned = unsafe {
            clone_on_stack(flags, true, None, &stack, maker_main, &*plan as *const MakerPlan as usize)
        }?;
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

/// Entry point of the maker.
///
/// # Safety
///
/// `arg` must point to a `MakerPlan` that stays alive until this process
/// exits.
unsafe extern "C" fn maker_main(arg: usize, _placed: usize) -> ! {
    // SAFETY: the caller keeps the plan alive until the maker is reaped.
    let plan = unsafe { &*(arg as *const MakerPlan) };
    // The maker shares the caller's memory: it must not outlive the
    // thread that started it (which reaps it before it returns).
    let _ = call::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as usize, 0, 0, 0);
    let sent = match make(plan) {
        Ok(fd) => {
            let sent = call::send_with_fd(plan.sock, &wire::encode(0, 0, 0), fd);
            // The fd is in the parent's file table (shared): the child
            // holds its own copy now.
            let _ = call::close(fd);
            sent
        }
        Err(Failure(step, errno, detail)) => {
            call::send_with_fd(plan.sock, &wire::encode(step, errno, detail), -1)
        }
    };
    call::exit(if sent.is_ok() { 0 } else { 1 })
}

/// Creates the namespace, brings up `lo` and returns an fd of it.
fn make(plan: &MakerPlan) -> Result<i32, Failure> {
    if plan.userns_of >= 0 {
        call::setns(plan.userns_of, libc::CLONE_NEWUSER).at(step::CREATE_NETWORK, 0)?;
        call::unshare(libc::CLONE_NEWNET).at(step::CREATE_NETWORK, 0)?;
    }
    call::link_up(b"lo").at(step::LOOPBACK_UP, 0)?;
    let sock = call::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
        .at(step::CREATE_NETWORK, 0)? as i32;
    let mut unused = 0i32;
    let fd = call::ioctl(sock, SIOCGSKNS, &mut unused).at(step::CREATE_NETWORK, 0);
    let _ = call::close(sock);
    Ok(fd? as i32)
}

/// In the spawn child: waits for the maker's namespace and joins it;
/// leaves if the caller (the pidfd `lifeline`) dies meanwhile.
pub(crate) fn child_join(sock: RawFd, lifeline: RawFd) -> Result<(), Failure> {
    if call::wait_readable(sock, lifeline).at(step::CREATE_NETWORK, 0)? == call::Ready::LifelineGone {
        call::exit(1);
    }
    let mut record = [0u8; wire::RECORD_LEN];
    let (got, fd) = call::recv_with_fd(sock, &mut record).at(step::CREATE_NETWORK, 0)?;
    let _ = call::close(sock);
    if got != wire::RECORD_LEN {
        if fd >= 0 {
            let _ = call::close(fd);
        }
        // The maker ended without a word.
        return Err(Failure(step::CREATE_NETWORK, libc::EPIPE, 0));
    }
    let (code, errno, detail) = wire::decode(&record);
    if code != 0 {
        return Err(Failure(code, errno, detail));
    }
    if fd < 0 {
        return Err(Failure(step::CREATE_NETWORK, libc::EBADF, 0));
    }
    let joined = call::setns(fd, libc::CLONE_NEWNET).at(step::JOIN_NETWORK, 0);
    let _ = call::close(fd);
    joined.map(|_| ())
}
