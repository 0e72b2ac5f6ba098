//! Creating the spawn child: `clone3(2)` onto a separate stack, falling
//! back to `clone(2)` where `clone3` is refused (old kernels, or seccomp
//! profiles such as Docker's that answer `ENOSYS`).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::raw::{nr, spawn_on_stack};
use super::stack::ChildStack;

/// The kernel's `struct clone_args` (version 2, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (Linux 5.7), a 64-bit clone3-only flag.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The second argument of a child's entry point: the kernel placed it
/// into the cgroup it was asked to (`clone3` with `CLONE_INTO_CGROUP`).
pub(crate) const PLACED: usize = 1;

/// The second argument of a child's entry point: the kernel did not
/// place it into a cgroup (none was asked for, or the `clone(2)`
/// fallback ran, which cannot), so the child joins on its own.
pub(crate) const NOT_PLACED: usize = 0;

/// A child's entry point: `entry(arg, placed)`, where `placed` is
/// [`PLACED`] or [`NOT_PLACED`].
pub(crate) type Entry = unsafe extern "C" fn(usize, usize) -> !;

/// A freshly cloned child: its pid (in the caller's PID namespace) and a
/// pidfd for race-free signalling and waiting.
#[derive(Debug)]
pub(crate) struct Cloned {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
}

/// Clones a child that runs `entry(arg, placed)` on `stack`, sharing the caller's
/// memory (`CLONE_VM`, when `share_memory`) but not its filesystem
/// information or signal handlers, nor its file table unless `flags` has
/// `CLONE_FILES`. Without `share_memory` the
/// child gets a copy of the address space, as with `fork(2)`: slower for
/// large callers, but required where the kernel refuses a shared one
/// (joining a time namespace). `flags` adds namespace flags; `cgroup`, if given, is a
/// cgroup v2 directory fd for `CLONE_INTO_CGROUP`.
///
/// The child gets no exit signal: only a `waitid` with `__WALL` (as
/// [`waitid`](super::pidfd::waitid) does) reaps it, so an embedding
/// program's `waitpid(-1)` loop cannot steal its status.
///
/// # Safety
///
/// `entry` runs in a process that shares this address space. It must not
/// allocate, lock, unwind or return, and may only use memory that stays
/// valid and unchanged until it execs or exits. Every signal should be
/// blocked by the caller around this call, so the child starts with all
/// signals blocked and never runs a handler of the parent.
pub(crate) unsafe fn clone_on_stack(
    flags: u64,
    share_memory: bool,
    cgroup: Option<RawFd>,
    stack: &ChildStack,
    entry: Entry,
    arg: usize,
) -> io::Result<Cloned> {
    let mut base_flags = libc::CLONE_PIDFD as u64;
    if share_memory {
        base_flags |= libc::CLONE_VM as u64;
    }
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: base_flags | flags,
        pidfd: &mut pidfd as *mut RawFd as u64,
        stack: stack.base() as u64,
        stack_size: stack.len() as u64,
        ..CloneArgs::default()
    };
    let mut placed = NOT_PLACED;
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
        placed = PLACED;
    }
    // SAFETY: `args` and `pidfd` are live locals; the stack is mapped and
    // owned by the caller; the caller upholds the contract for `entry`.
    let mut ret = unsafe {
        spawn_on_stack(
            nr::CLONE3,
            [&mut args as *mut CloneArgs as usize, std::mem::size_of::<CloneArgs>(), 0, 0, 0],
            entry,
            arg,
            placed,
        )
    };
    if ret == -(libc::ENOSYS as isize) {
        // clone(2) takes the top of the stack, and stores the pidfd where
        // `parent_tid` points. It cannot place the child into a cgroup:
        // the child is told to join on its own.
        // SAFETY: as above; clone(2)'s argument order differs between
        // x86_64 (flags, stack, ptid, ctid, tls) and aarch64 (flags, stack,
        // ptid, tls, ctid), but ctid and tls are both zero here.
        ret = unsafe {
            spawn_on_stack(
                nr::CLONE,
                [
                    (base_flags | flags) as usize,
                    stack.top() as usize,
                    &mut pidfd as *mut RawFd as usize,
                    0,
                    0,
                ],
                entry,
                arg,
                NOT_PLACED,
            )
        };
    }
    if ret < 0 {
        return Err(io::Error::from_raw_os_error((-ret) as i32));
    }
    // SAFETY: the kernel stored a new, owned pidfd for the child.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Cloned { pid: ret as libc::pid_t, pidfd })
}

/// Clones a plain child of the caller (exit signal `SIGCHLD`, as `fork`
/// makes) that shares the caller's memory and runs `entry(arg, NOT_PLACED)` on the
/// stack ending at `top`. One raw system call, so the spawn child may
/// use it; it returns the child's pid or the errno.
///
/// # Safety
///
/// As for [`clone_on_stack`]: `entry` must follow the post-clone rules,
/// and `top` must be the top of a mapping that stays mapped, and is used by
/// nothing else, until the new process execs or exits.
pub(crate) unsafe fn clone_sharing_memory(top: usize, entry: Entry, arg: usize) -> Result<libc::pid_t, i32> {
    let flags = (libc::CLONE_VM | libc::SIGCHLD) as usize;
    // SAFETY: clone(2) with a fresh stack; the caller upholds the rest.
    let ret = unsafe { spawn_on_stack(nr::CLONE, [flags, top, 0, 0, 0], entry, arg, NOT_PLACED) };
    if ret < 0 { Err((-ret) as i32) } else { Ok(ret as libc::pid_t) }
}
