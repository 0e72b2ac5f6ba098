//! Reading another process's system call filters
//! (`PTRACE_SECCOMP_GET_FILTER`, `ptrace(2)`), for entering a guest that
//! this process did not spawn.

use std::io;
use std::time::{Duration, Instant};

/// `PTRACE_SECCOMP_GET_FILTER` (`linux/ptrace.h`).
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;

/// Detaches from a seized process when dropped (it then runs on).
struct Seized(libc::pid_t);

impl Drop for Seized {
    fn drop(&mut self) {
        // SAFETY: detaching a process we seized; no memory is passed.
        unsafe { libc::ptrace(libc::PTRACE_DETACH, self.0, 0usize, 0usize) };
    }
}

fn last() -> io::Error {
    io::Error::last_os_error()
}

/// The classic BPF filters of process `pid`, oldest first (the order to
/// load them in again): the process is seized and stopped for the
/// reading, then let go. Needs `CAP_SYS_ADMIN` (and the right to trace
/// `pid`). A process that does not stop within `patience` (a frozen
/// guest) is an `ETIMEDOUT` error.
pub(crate) fn seccomp_filters(
    pid: libc::pid_t,
    patience: Duration,
) -> io::Result<Vec<Vec<libc::sock_filter>>> {
    // SAFETY: PTRACE_SEIZE takes no memory; it does not stop the process.
    if unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0usize, 0usize) } < 0 {
        return Err(last());
    }
    let _seized = Seized(pid);
    // SAFETY: as above; the process stops at its next chance.
    if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0usize, 0usize) } < 0 {
        return Err(last());
    }
    let deadline = Instant::now() + patience;
    loop {
        let mut status = 0;
        // SAFETY: `status` is a live local the kernel writes.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::__WALL | libc::WNOHANG) };
        if got == pid {
            if !libc::WIFSTOPPED(status) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            break;
        }
        if got < 0 && last().raw_os_error() != Some(libc::EINTR) {
            return Err(last());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut filters = Vec::new();
    for index in 0usize.. {
        // SAFETY: a null buffer asks for the filter's length only.
        let len = unsafe { libc::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, std::ptr::null_mut::<u8>()) };
        if len < 0 {
            match last().raw_os_error() {
                Some(libc::ENOENT) => break,
                _ => return Err(last()),
            }
        }
        let mut program = vec![libc::sock_filter { code: 0, jt: 0, jf: 0, k: 0 }; len as usize];
        // SAFETY: the buffer holds `len` instructions, what the kernel
        // said the filter has; filters never change once installed.
        let got = unsafe { libc::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, program.as_mut_ptr()) };
        if got < 0 {
            return Err(last());
        }
        program.truncate(got as usize);
        filters.push(program);
    }
    // Index 0 is the filter installed last.
    filters.reverse();
    Ok(filters)
}
