//! pidfd system calls: signalling and waiting without pid reuse races.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `pidfd_send_signal(2)`.
pub(crate) fn send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
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
    let mut flags = libc::WEXITED | libc::__WALL;
    if nohang {
        flags |= libc::WNOHANG;
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
