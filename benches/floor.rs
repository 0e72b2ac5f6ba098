//! Raw-syscall floors the benchmarks compare vguest against: the least
//! work that can do the same job, with no library around it.
#![allow(dead_code)]

use std::ffi::CString;

/// `clone(flags | SIGCHLD)` (fork semantics), `execve("/bin/true")` in the
/// child, `waitpid` in the parent. Panics if the child fails.
pub fn clone_exec_wait(flags: libc::c_int) {
    let path = CString::new("/bin/true").unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: raw clone without CLONE_VM behaves like fork; the child only
    // calls execve and _exit, both async-signal-safe.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    assert_eq!(status, 0, "floor child failed");
}

/// The namespaces of the "pid+mnt+uts+ipc" benchmarks as clone flags.
pub const NS4: libc::c_int = libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;

/// Enters the namespaces of the process behind `pidfd` the way a minimal
/// tool would: the calling thread joins its PID namespace for children,
/// forks, the child joins the other namespaces with one `setns` and
/// execs `/bin/true`; the parent restores its PID namespace and waits.
pub fn setns_fork_exec_wait(pidfd: std::os::fd::BorrowedFd<'_>, own_pidns: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    let path = CString::new("/bin/true").unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let others = libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWCGROUP;
    // SAFETY: setns on our own thread with fds we hold.
    assert_eq!(unsafe { libc::setns(pidfd.as_raw_fd(), libc::CLONE_NEWPID) }, 0);
    // SAFETY: fork semantics; the child only calls setns, execve, _exit.
    let pid = unsafe {
        libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
    };
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            if libc::setns(pidfd.as_raw_fd(), others) != 0 {
                libc::_exit(126);
            }
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    // SAFETY: returning to our own PID namespace.
    assert_eq!(unsafe { libc::setns(own_pidns.as_raw_fd(), libc::CLONE_NEWPID) }, 0);
    assert!(pid > 0);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    assert_eq!(status, 0, "floor child failed");
}
