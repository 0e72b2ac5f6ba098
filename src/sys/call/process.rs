//! Wrappers acting on the calling process: its hostname and domain name,
//! its namespaces, resource limits, ids and capabilities, its signal mask
//! and dispositions, exec, exit and a new session, and its children
//! (signalling, reaping, waiting for a descriptor or a pidfd).
//!
//! Values flow from the caller to the kernel; only the wait calls bring
//! something back (what became ready, whether a process has ended).

use core::ffi::c_char;

use super::{Errno, SysResult, cstr, ptr, sys};
use crate::sys::raw::nr;

/// `sethostname(2)`.
pub(crate) fn sethostname(name: &[u8]) -> SysResult {
    sys(nr::SETHOSTNAME, name.as_ptr() as usize, name.len(), 0, 0, 0, 0)
}

/// `setdomainname(2)`.
pub(crate) fn setdomainname(name: &[u8]) -> SysResult {
    sys(nr::SETDOMAINNAME, name.as_ptr() as usize, name.len(), 0, 0, 0, 0)
}

/// `unshare(2)`.
pub(crate) fn unshare(flags: i32) -> SysResult {
    sys(nr::UNSHARE, flags as usize, 0, 0, 0, 0, 0)
}

/// `futex(FUTEX_WAKE_PRIVATE)`: wakes every waiter on `word` among the
/// processes sharing this address space.
pub(crate) fn futex_wake(word: &core::sync::atomic::AtomicU32) -> SysResult {
    let op = (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as usize;
    sys(nr::FUTEX, word.as_ptr() as usize, op, i32::MAX as usize, 0, 0, 0)
}

/// `futex(FUTEX_WAIT_PRIVATE)`: sleeps while `word` holds `expected`, at
/// most `timeout`, until woken (`EAGAIN` if it already differs,
/// `ETIMEDOUT`, `EINTR`).
pub(crate) fn futex_wait(
    word: &core::sync::atomic::AtomicU32,
    expected: u32,
    timeout: &libc::timespec,
) -> SysResult {
    let op = (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as usize;
    sys(nr::FUTEX, word.as_ptr() as usize, op, expected as usize, ptr(timeout), 0, 0)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`: installs the classic
/// BPF program of `len` instructions at `filter` (laid out as `struct
/// sock_filter`) for the calling thread. With
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`, returns the listener's fd.
pub(crate) fn seccomp_filter(filter: *const libc::sock_filter, len: u16, flags: usize) -> SysResult {
    let prog = libc::sock_fprog { len, filter: filter.cast_mut() };
    sys(nr::SECCOMP, libc::SECCOMP_SET_MODE_FILTER as usize, flags, ptr(&prog), 0, 0, 0)
}

/// `setns(2)`; `fd` may be a namespace file or a pidfd.
pub(crate) fn setns(fd: i32, nstype: i32) -> SysResult {
    sys(nr::SETNS, fd as usize, nstype as usize, 0, 0, 0, 0)
}

/// `prlimit64(0, resource, new, NULL)`: sets a limit of the caller.
pub(crate) fn setrlimit(resource: u32, limit: &libc::rlimit64) -> SysResult {
    sys(nr::PRLIMIT64, 0, resource as usize, ptr(limit), 0, 0, 0)
}

/// `prctl(2)` with up to four arguments.
pub(crate) fn prctl(option: i32, a2: usize, a3: usize, a4: usize, a5: usize) -> SysResult {
    sys(nr::PRCTL, option as usize, a2, a3, a4, a5, 0)
}

/// `setgroups(2)`.
pub(crate) fn setgroups(groups: &[libc::gid_t]) -> SysResult {
    sys(nr::SETGROUPS, groups.len(), groups.as_ptr() as usize, 0, 0, 0, 0)
}

/// `setresgid(2)` with all three ids equal.
pub(crate) fn setresgid(gid: libc::gid_t) -> SysResult {
    sys(nr::SETRESGID, gid as usize, gid as usize, gid as usize, 0, 0, 0)
}

/// `setresuid(2)` with all three ids equal.
pub(crate) fn setresuid(uid: libc::uid_t) -> SysResult {
    sys(nr::SETRESUID, uid as usize, uid as usize, uid as usize, 0, 0, 0)
}

/// The kernel's `__user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// The kernel's `__user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `capset(2)` (version 3, 64-bit sets) for the calling thread.
pub(crate) fn capset(effective: u64, permitted: u64, inheritable: u64) -> SysResult {
    let header = CapHeader { version: 0x2008_0522, pid: 0 };
    let data = [
        CapData { effective: effective as u32, permitted: permitted as u32, inheritable: inheritable as u32 },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    sys(nr::CAPSET, ptr(&header), data.as_ptr() as usize, 0, 0, 0, 0)
}

/// `rt_sigprocmask(2)` setting the whole mask.
pub(crate) fn set_sigmask(mask: u64) -> SysResult {
    sys(nr::RT_SIGPROCMASK, libc::SIG_SETMASK as usize, ptr(&mask), 0, 8, 0, 0)
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 layout).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Resets the disposition of `sig` to `SIG_DFL`.
pub(crate) fn default_signal(sig: i32) -> SysResult {
    let act = KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    sys(nr::RT_SIGACTION, sig as usize, ptr(&act), 0, 8, 0, 0)
}

/// `execve(2)`; returns only on failure.
pub(crate) fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> Errno {
    match sys(nr::EXECVE, path as usize, argv as usize, envp as usize, 0, 0, 0) {
        Err(e) => e,
        Ok(_) => libc::EINVAL,
    }
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`; returns only on failure.
pub(crate) fn fexecve(fd: i32, argv: *const *const c_char, envp: *const *const c_char) -> Errno {
    let empty = c"";
    match sys(
        nr::EXECVEAT,
        fd as usize,
        cstr(empty),
        argv as usize,
        envp as usize,
        libc::AT_EMPTY_PATH as usize,
        0,
    ) {
        Err(e) => e,
        Ok(_) => libc::EINVAL,
    }
}

/// `exit_group(2)`: ends the process at once, running nothing of the
/// parent's (no atexit handlers, no stdio flush).
pub(crate) fn exit(code: i32) -> ! {
    loop {
        let _ = sys(nr::EXIT_GROUP, code as usize, 0, 0, 0, 0, 0);
    }
}

/// `setsid(2)`: a new session and process group, without a controlling
/// terminal.
pub(crate) fn setsid() -> SysResult {
    sys(nr::SETSID, 0, 0, 0, 0, 0, 0)
}

/// `kill(2)`.
pub(crate) fn kill(pid: i32, sig: i32) -> SysResult {
    sys(nr::KILL, pid as usize, sig as usize, 0, 0, 0, 0)
}

/// `wait4(pid, NULL, __WALL, NULL)`, retried on `EINTR`: reaps one child.
pub(crate) fn reap(pid: i32) -> SysResult {
    loop {
        match sys(nr::WAIT4, pid as usize, 0, libc::__WALL as usize, 0, 0, 0) {
            Err(libc::EINTR) => continue,
            other => return other,
        }
    }
}

/// What [`wait_readable`] saw first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    /// `fd` is readable (data, end of file or an error to read).
    Fd,
    /// `lifeline` (a pidfd) is readable: that process has ended.
    LifelineGone,
}

/// `ppoll(2)` on `fds` for `POLLIN`, without a signal mask; `timeout`
/// `None` blocks. Retried on `EINTR`; returns how many fds are ready.
fn poll_in(fds: &mut [libc::pollfd], timeout: Option<&libc::timespec>) -> SysResult {
    let timeout = timeout.map_or(0, ptr);
    loop {
        // A negative fd in the set is ignored by poll(2).
        match sys(nr::PPOLL, fds.as_mut_ptr() as usize, fds.len(), timeout, 0, 8, 0) {
            Err(libc::EINTR) => continue,
            other => return other,
        }
    }
}

/// Blocks until `fd` is readable or the process behind the pidfd
/// `lifeline` has ended; `lifeline` -1 waits for `fd` alone.
pub(crate) fn wait_readable(fd: i32, lifeline: i32) -> Result<Ready, Errno> {
    let mut fds = [
        libc::pollfd { fd, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: lifeline, events: libc::POLLIN, revents: 0 },
    ];
    loop {
        poll_in(&mut fds, None)?;
        if fds[1].revents != 0 {
            return Ok(Ready::LifelineGone);
        }
        if fds[0].revents != 0 {
            return Ok(Ready::Fd);
        }
    }
}

/// Whether the process behind the pidfd `lifeline` has ended (a poll
/// that does not block); false for -1.
pub(crate) fn has_ended(lifeline: i32) -> bool {
    let mut fds = [libc::pollfd { fd: lifeline, events: libc::POLLIN, revents: 0 }];
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    matches!(poll_in(&mut fds, Some(&zero)), Ok(n) if n > 0)
}
