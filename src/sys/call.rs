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

/// A control message carrying one file descriptor (`SCM_RIGHTS`), laid
/// out as `CMSG_SPACE(sizeof(int))` bytes.
#[repr(C)]
struct FdMessage {
    header: libc::cmsghdr,
    fd: i32,
    _pad: i32,
}

impl FdMessage {
    fn new(fd: i32) -> Self {
        // SAFETY: cmsghdr is plain old data; all-zero is a valid value.
        let mut header: libc::cmsghdr = unsafe { core::mem::zeroed() };
        header.cmsg_len = (core::mem::size_of::<libc::cmsghdr>() + core::mem::size_of::<i32>()) as _;
        header.cmsg_level = libc::SOL_SOCKET;
        header.cmsg_type = libc::SCM_RIGHTS;
        FdMessage { header, fd, _pad: 0 }
    }
}

/// `sendmsg(2)` of `data` on a unix socket, with `fd` attached as
/// `SCM_RIGHTS` unless it is negative.
pub(crate) fn send_with_fd(sock: i32, data: &[u8], fd: i32) -> SysResult {
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut core::ffi::c_void, iov_len: data.len() };
    let mut control = FdMessage::new(fd);
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if fd >= 0 {
        msg.msg_control = (&mut control as *mut FdMessage).cast();
        msg.msg_controllen = core::mem::size_of::<FdMessage>() as _;
    }
    sys(nr::SENDMSG, sock as usize, ptr(&msg), libc::MSG_NOSIGNAL as usize, 0, 0, 0)
}

/// `recvmsg(2)` into `data` on a unix socket, retried on `EINTR`; returns
/// the bytes read and the fd that came with them (close-on-exec), or -1 if
/// none did.
pub(crate) fn recv_with_fd(sock: i32, data: &mut [u8]) -> Result<(usize, i32), Errno> {
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    let mut control = FdMessage::new(-1);
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut control as *mut FdMessage).cast();
    msg.msg_controllen = core::mem::size_of::<FdMessage>() as _;
    let msg_ptr = &mut msg as *mut libc::msghdr as usize;
    let n = loop {
        match sys(nr::RECVMSG, sock as usize, msg_ptr, libc::MSG_CMSG_CLOEXEC as usize, 0, 0, 0) {
            Err(libc::EINTR) => continue,
            other => break other?,
        }
    };
    let got_fd = msg.msg_controllen as usize
        >= core::mem::size_of::<libc::cmsghdr>() + core::mem::size_of::<i32>()
        && control.header.cmsg_level == libc::SOL_SOCKET
        && control.header.cmsg_type == libc::SCM_RIGHTS;
    Ok((n, if got_fd { control.fd } else { -1 }))
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

/// `fchdir(2)`.
pub(crate) fn fchdir(fd: i32) -> SysResult {
    sys(nr::FCHDIR, fd as usize, 0, 0, 0, 0, 0)
}

/// `mount(2)` changing only the propagation of `target` (no source, type
/// or data).
pub(crate) fn mount_propagation(target: &CStr, flags: u64) -> SysResult {
    sys(nr::MOUNT, 0, cstr(target), 0, flags as usize, 0, 0)
}

/// `umount2(2)`.
pub(crate) fn umount2(target: &CStr, flags: i32) -> SysResult {
    sys(nr::UMOUNT2, cstr(target), flags as usize, 0, 0, 0, 0)
}

/// `pivot_root(2)`.
pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> SysResult {
    sys(nr::PIVOT_ROOT, cstr(new_root), cstr(put_old), 0, 0, 0, 0)
}

/// `mkdirat(2)`.
pub(crate) fn mkdirat(dirfd: i32, path: &CStr, mode: u32) -> SysResult {
    sys(nr::MKDIRAT, dirfd as usize, cstr(path), mode as usize, 0, 0, 0)
}

/// `symlinkat(2)`: creates `path` (relative to `dirfd`) pointing to
/// `target`.
pub(crate) fn symlinkat(target: &CStr, dirfd: i32, path: &CStr) -> SysResult {
    sys(nr::SYMLINKAT, cstr(target), dirfd as usize, cstr(path), 0, 0, 0)
}

/// The kernel's `struct open_how` for `openat2(2)`.
#[repr(C)]
pub(crate) struct OpenHow {
    /// `O_*` flags.
    pub flags: u64,
    /// Creation mode.
    pub mode: u64,
    /// `RESOLVE_*` flags.
    pub resolve: u64,
}

/// `openat2(2)`.
pub(crate) fn openat2(dirfd: i32, path: &CStr, how: &OpenHow) -> SysResult {
    sys(nr::OPENAT2, dirfd as usize, cstr(path), ptr(how), core::mem::size_of::<OpenHow>(), 0, 0)
}

/// `fsopen(2)` with `FSOPEN_CLOEXEC`.
pub(crate) fn fsopen(fstype: &CStr) -> SysResult {
    const FSOPEN_CLOEXEC: usize = 1;
    sys(nr::FSOPEN, cstr(fstype), FSOPEN_CLOEXEC, 0, 0, 0, 0)
}

/// `fsconfig(2)` commands used here.
pub(crate) mod fsconfig_cmd {
    pub const SET_FLAG: u32 = 0;
    pub const SET_STRING: u32 = 1;
    pub const CMD_CREATE: u32 = 6;
}

/// `fsconfig(2)`.
pub(crate) fn fsconfig(fd: i32, cmd: u32, key: Option<&CStr>, value: Option<&CStr>) -> SysResult {
    sys(nr::FSCONFIG, fd as usize, cmd as usize, key.map_or(0, cstr), value.map_or(0, cstr), 0, 0)
}

/// `fsmount(2)` with `FSMOUNT_CLOEXEC` and the given `MOUNT_ATTR_*`.
pub(crate) fn fsmount(fd: i32, attrs: u64) -> SysResult {
    const FSMOUNT_CLOEXEC: usize = 1;
    sys(nr::FSMOUNT, fd as usize, FSMOUNT_CLOEXEC, attrs as usize, 0, 0, 0)
}

/// `open_tree(2)`.
pub(crate) fn open_tree(dirfd: i32, path: &CStr, flags: u32) -> SysResult {
    sys(nr::OPEN_TREE, dirfd as usize, cstr(path), flags as usize, 0, 0, 0)
}

/// `move_mount(2)`.
pub(crate) fn move_mount(from_fd: i32, from: &CStr, to_fd: i32, to: &CStr, flags: u32) -> SysResult {
    sys(nr::MOVE_MOUNT, from_fd as usize, cstr(from), to_fd as usize, cstr(to), flags as usize, 0)
}

/// The kernel's `struct mount_attr` for `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` setting `attrs` on the mount `fd` refers to.
pub(crate) fn mount_setattr(fd: i32, attrs: u64, recursive: bool) -> SysResult {
    let attr = MountAttr { attr_set: attrs, attr_clr: 0, propagation: 0, userns_fd: 0 };
    let mut flags = libc::AT_EMPTY_PATH as usize;
    if recursive {
        flags |= libc::AT_RECURSIVE as usize;
    }
    sys(nr::MOUNT_SETATTR, fd as usize, cstr(c""), flags, ptr(&attr), core::mem::size_of::<MountAttr>(), 0)
}

/// `newfstatat(2)` returning only `st_mode` (file type and permissions).
pub(crate) fn stat_mode(dirfd: i32, path: &CStr, flags: i32) -> Result<u32, Errno> {
    // SAFETY: stat is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    fstatat(dirfd, path, &mut st, flags)?;
    Ok(st.st_mode)
}

/// Sets `IFF_UP` on interface `name` of the caller's network namespace
/// with `SIOCGIFFLAGS`/`SIOCSIFFLAGS` (`netdevice(7)`).
pub(crate) fn link_up(name: &[u8]) -> Result<(), Errno> {
    let sock = socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)? as i32;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { core::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.iter().take(libc::IFNAMSIZ - 1)) {
        *dst = *src as core::ffi::c_char;
    }
    let result = ioctl(sock, libc::SIOCGIFFLAGS, &mut req).and_then(|_| {
        // SAFETY: SIOCGIFFLAGS filled in the flags member of the union.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as i16 };
        ioctl(sock, libc::SIOCSIFFLAGS, &mut req)
    });
    let _ = close(sock);
    result.map(|_| ())
}
