//! Allocation-free, `errno`-free system call wrappers for the spawn child.
//!
//! Every function here is async-signal-safe: one system call through
//! [`raw`](super::raw), arguments borrowed from memory the parent prepared
//! before the clone, the error returned as a plain errno value. They are
//! also safe to call from the parent.

use core::ffi::{CStr, c_char};

use super::raw::{nr, syscall6};

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
    // SAFETY: each wrapper below passes arguments valid for `n`: integers,
    // or pointers derived from references that outlive the call.
    check(unsafe { syscall6(n, a, b, c, d, e, f) })
}

fn ptr<T>(r: &T) -> usize {
    r as *const T as usize
}

fn cstr(s: &CStr) -> usize {
    s.as_ptr() as usize
}

/// `read(2)`.
pub(crate) fn read(fd: i32, buf: &mut [u8]) -> SysResult {
    sys(nr::READ, fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0)
}

/// `write(2)` of the whole buffer, retrying on short writes and `EINTR`.
pub(crate) fn write_all(fd: i32, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match sys(nr::WRITE, fd as usize, buf.as_ptr() as usize, buf.len(), 0, 0, 0) {
            Ok(0) => return Err(libc::EIO),
            Ok(n) => buf = &buf[n.min(buf.len())..],
            Err(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `close(2)`.
pub(crate) fn close(fd: i32) -> SysResult {
    sys(nr::CLOSE, fd as usize, 0, 0, 0, 0, 0)
}

/// `dup3(2)`: `newfd` becomes a copy of `oldfd` without `FD_CLOEXEC`.
pub(crate) fn dup2(oldfd: i32, newfd: i32) -> SysResult {
    sys(nr::DUP3, oldfd as usize, newfd as usize, 0, 0, 0, 0)
}

/// `fcntl(fd, F_SETFD, flags)`.
pub(crate) fn set_fd_flags(fd: i32, flags: i32) -> SysResult {
    sys(nr::FCNTL, fd as usize, libc::F_SETFD as usize, flags as usize, 0, 0, 0)
}

/// `close_range(2)`.
pub(crate) fn close_range(first: u32, last: u32, flags: u32) -> SysResult {
    sys(nr::CLOSE_RANGE, first as usize, last as usize, flags as usize, 0, 0, 0)
}

/// `openat(2)` relative to `dirfd` (`AT_FDCWD` for the working directory).
pub(crate) fn openat(dirfd: i32, path: &CStr, flags: i32, mode: u32) -> SysResult {
    sys(nr::OPENAT, dirfd as usize, cstr(path), flags as usize, mode as usize, 0, 0)
}

/// `faccessat(2)`.
pub(crate) fn faccessat(dirfd: i32, path: &CStr, mode: i32) -> SysResult {
    sys(nr::FACCESSAT, dirfd as usize, cstr(path), mode as usize, 0, 0, 0)
}

/// `chdir(2)`.
pub(crate) fn chdir(path: &CStr) -> SysResult {
    sys(nr::CHDIR, cstr(path), 0, 0, 0, 0, 0)
}

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

/// `newfstatat(2)`.
pub(crate) fn fstatat(dirfd: i32, path: &CStr, st: &mut libc::stat, flags: i32) -> SysResult {
    sys(nr::NEWFSTATAT, dirfd as usize, cstr(path), st as *mut libc::stat as usize, flags as usize, 0, 0)
}

/// `socket(2)`.
pub(crate) fn socket(domain: i32, ty: i32, protocol: i32) -> SysResult {
    sys(nr::SOCKET, domain as usize, ty as usize, protocol as usize, 0, 0, 0)
}

/// `ioctl(2)` with a pointer argument.
pub(crate) fn ioctl<T>(fd: i32, request: u64, arg: &mut T) -> SysResult {
    sys(nr::IOCTL, fd as usize, request as usize, arg as *mut T as usize, 0, 0, 0)
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
