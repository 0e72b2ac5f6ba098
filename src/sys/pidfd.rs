//! pidfd system calls: signalling and waiting without pid reuse races.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `pidfd_send_signal(2)`.
pub(crate) fn send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    crate::failpoint::check("pidfd.signal")?;
    // SAFETY: plain integer arguments; a null siginfo means "as kill(2)".
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `waitid(P_PIDFD, pidfd, WEXITED | __WALL [| WNOHANG])`, retrying on
/// `EINTR`. Returns the raw wait status (as `waitpid` encodes it), or
/// `None` if `nohang` and the process has not exited.
pub(crate) fn waitid(pidfd: BorrowedFd<'_>, nohang: bool) -> io::Result<Option<i32>> {
    waitid_flags(pidfd, nohang, false)
}

/// [`waitid`] with `WNOWAIT`: the status of an exited process, which is
/// left a zombie (its `/proc` entry readable) for a later [`waitid`].
pub(crate) fn peek(pidfd: BorrowedFd<'_>, nohang: bool) -> io::Result<Option<i32>> {
    waitid_flags(pidfd, nohang, true)
}

fn waitid_flags(pidfd: BorrowedFd<'_>, nohang: bool, nowait: bool) -> io::Result<Option<i32>> {
    crate::failpoint::check("pidfd.wait")?;
    let mut flags = libc::WEXITED | libc::__WALL;
    if nohang {
        flags |= libc::WNOHANG;
    }
    if nowait {
        flags |= libc::WNOWAIT;
    }
    loop {
        // SAFETY: siginfo_t is plain old data; zeroed is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a live, writable siginfo_t.
        let ret = unsafe { libc::waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, flags) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        // SAFETY: after a successful waitid the pid and status fields are
        // initialised; a zero pid means WNOHANG found nothing.
        let (pid, status, code) = unsafe { (info.si_pid(), info.si_status(), info.si_code) };
        if pid == 0 {
            return Ok(None);
        }
        let raw = match code {
            libc::CLD_EXITED => (status & 0xff) << 8,
            libc::CLD_DUMPED => (status & 0x7f) | 0x80,
            _ => status & 0x7f,
        };
        return Ok(Some(raw));
    }
}

/// `pidfd_open(2)`: a pidfd for `pid`, close-on-exec.
pub(crate) fn open(pid: libc::pid_t) -> io::Result<std::os::fd::OwnedFd> {
    crate::failpoint::check("pidfd.open")?;
    use std::os::fd::FromRawFd;
    // SAFETY: plain integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that we now own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(ret as i32) })
}

/// Waits until the process behind `pidfd` has exited (a pidfd polls
/// readable then, whether or not it was reaped, `pidfd_open(2)`), at most
/// `timeout`. Returns whether it has.
pub(crate) fn wait_exit(pidfd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms =
            PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pidfd, PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Blocks until at least one of `pidfds` polls readable (its process has
/// exited) and says which do.
pub(crate) fn wait_any(pidfds: &[BorrowedFd<'_>]) -> io::Result<Vec<bool>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds: Vec<_> = pidfds.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)).collect();
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return Ok(fds.iter().map(|f| f.any().unwrap_or(true)).collect()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The resource limit `resource` of process `pid` (`prlimit(2)` reading
/// only), or `None` where the kernel has no such limit.
pub(crate) fn rlimit_of(pid: libc::pid_t, resource: u32) -> Option<libc::rlimit64> {
    let mut limit = libc::rlimit64 { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: prlimit64 with a null new limit only writes `limit`.
    let ret = unsafe { libc::prlimit64(pid, resource as _, std::ptr::null(), &mut limit) };
    (ret == 0).then_some(limit)
}
