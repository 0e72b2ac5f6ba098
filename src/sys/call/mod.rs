//! Allocation-free, `errno`-free system call wrappers for the spawn child.
//!
//! Every function here is async-signal-safe: one system call through
//! [`raw`](super::raw), arguments borrowed from memory the parent prepared
//! before the clone, the error returned as a plain errno value. They are
//! also safe to call from the parent.
//!
//! This file holds what every wrapper shares (the [`Errno`] and
//! [`SysResult`] types, the one call into [`raw`](super::raw), argument
//! helpers) and re-exports the wrappers, one file per family, so callers
//! name each as `sys::call::NAME`:
//!
//! - [`file`]: descriptors and paths (read, write, open, stat, create,
//!   close, the working directory).
//! - [`process`]: the calling process itself (hostname, namespaces,
//!   limits, ids, capabilities, signals, exec and exit) and its children.
//! - [`mount`]: the mount API (`fsopen`, `open_tree`, `move_mount`,
//!   `mount_setattr`) and `pivot_root`.
//! - [`socket`]: sockets (a descriptor passed over a unix socket, a link
//!   brought up with an `ioctl`).
//!
//! Data flows one way: arguments in from the caller, the kernel's result
//! out; nothing is kept between calls.

mod file;
mod mount;
mod process;
mod socket;

use core::ffi::CStr;

use super::raw::syscall6;

pub(crate) use self::file::{
    OpenHow, chdir, close, close_range, dup2, faccessat, fchdir, mkdirat, openat, openat2, read,
    set_fd_flags, stat_mode, symlinkat, write_all,
};
pub(crate) use self::mount::{
    fsconfig, fsconfig_cmd, fsmount, fsopen, mount_propagation, mount_setattr, move_mount, open_tree,
    pivot_root, umount2,
};
pub(crate) use self::process::{
    Ready, capset, default_signal, execve, exit, fexecve, futex_wait, futex_wake, has_ended, kill, prctl,
    reap, seccomp_filter, set_sigmask, setdomainname, setgroups, sethostname, setns, setresgid, setresuid,
    setrlimit, setsid, unshare, wait_readable,
};
pub(crate) use self::socket::{ioctl, link_up, recv_with_fd, send_with_fd, socket};

/// An errno value as the kernel returned it (positive).
pub(crate) type Errno = i32;

/// Result of a raw system call: the non-negative return value or the errno.
pub(crate) type SysResult = Result<usize, Errno>;

#[inline(always)]
fn check(ret: isize) -> SysResult {
    if ret < 0 { Err((-ret) as Errno) } else { Ok(ret as usize) }
}

#[inline(always)]
fn sys(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> SysResult {
    // SAFETY: each wrapper in this module's files passes arguments valid
    // for `n`: integers, or pointers derived from references that outlive
    // the call.
    check(unsafe { syscall6(n, a, b, c, d, e, f) })
}

fn ptr<T>(r: &T) -> usize {
    r as *const T as usize
}

fn cstr(s: &CStr) -> usize {
    s.as_ptr() as usize
}

/// `n` in decimal, most significant digit first, written into `buf`;
/// returns the digits. Allocation-free, for the spawn child (a pid for
/// the init, an fd in a `/proc/self/fd` path).
pub(crate) fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[start..]
}
