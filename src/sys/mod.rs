//! The few raw system calls the crate needs beyond `nix`, and every
//! `unsafe` block outside the spawn child.
//!
//! - [`raw`]: inline-assembly system calls that never write `errno`.
//! - [`call`]: typed, allocation-free wrappers over [`raw`] for the spawn
//!   child (async-signal-safe by construction).
//! - [`clone`]: `clone3` (falling back to `clone`) onto a separate stack.
//! - [`pidfd`]: `pidfd_send_signal`, `waitid(P_PIDFD)`, `pidfd_open`,
//!   waiting for an exit with a timeout, reading another process's rlimits.
//! - [`stack`]: the mapped stack the spawn child runs on.
//! - [`memfd`]: the sealed memfd holding the built-in init image.
//! - [`signals`]: blocking every signal around the clone.
//! - [`dumpable`]: keeping the caller's dumpable flag across spawns.
//! - [`fd`]: duplicating descriptors above the standard streams.
//! - [`xattr`]: extended attributes marking the cgroups vguest created.
//! - [`ptrace`]: reading another process's system call filters.
//! - [`notify`]: a seccomp listener's ioctls.

pub(crate) mod atexit;
pub(crate) mod call;
pub(crate) mod clone;
pub(crate) mod dumpable;
pub(crate) mod fd;
pub(crate) mod memfd;
pub(crate) mod notify;
pub(crate) mod pidfd;
pub(crate) mod ptrace;
pub(crate) mod raw;
pub(crate) mod signals;
pub(crate) mod stack;
pub(crate) mod xattr;

#[cfg(test)]
mod tests {
    use super::raw::nr;

    /// The hand-written numbers must match libc's for this architecture.
    #[test]
    fn syscall_numbers_match_libc() {
        let pairs: &[(usize, libc::c_long)] = &[
            (nr::READ, libc::SYS_read),
            (nr::WRITE, libc::SYS_write),
            (nr::CLOSE, libc::SYS_close),
            (nr::RT_SIGACTION, libc::SYS_rt_sigaction),
            (nr::RT_SIGPROCMASK, libc::SYS_rt_sigprocmask),
            (nr::IOCTL, libc::SYS_ioctl),
            (nr::GETPID, libc::SYS_getpid),
            (nr::SOCKET, libc::SYS_socket),
            (nr::CLONE, libc::SYS_clone),
            (nr::EXECVE, libc::SYS_execve),
            (nr::WAIT4, libc::SYS_wait4),
            (nr::KILL, libc::SYS_kill),
            (nr::FCNTL, libc::SYS_fcntl),
            (nr::FCHDIR, libc::SYS_fchdir),
            (nr::CHDIR, libc::SYS_chdir),
            (nr::SETRESUID, libc::SYS_setresuid),
            (nr::SETRESGID, libc::SYS_setresgid),
            (nr::SETGROUPS, libc::SYS_setgroups),
            (nr::CAPSET, libc::SYS_capset),
            (nr::RT_SIGTIMEDWAIT, libc::SYS_rt_sigtimedwait),
            (nr::PRCTL, libc::SYS_prctl),
            (nr::CHROOT, libc::SYS_chroot),
            (nr::MOUNT, libc::SYS_mount),
            (nr::UMOUNT2, libc::SYS_umount2),
            (nr::SETHOSTNAME, libc::SYS_sethostname),
            (nr::SETDOMAINNAME, libc::SYS_setdomainname),
            (nr::PIVOT_ROOT, libc::SYS_pivot_root),
            (nr::EXIT_GROUP, libc::SYS_exit_group),
            (nr::OPENAT, libc::SYS_openat),
            (nr::MKDIRAT, libc::SYS_mkdirat),
            (nr::MKNODAT, libc::SYS_mknodat),
            (nr::FCHOWNAT, libc::SYS_fchownat),
            (nr::NEWFSTATAT, libc::SYS_newfstatat),
            (nr::UNLINKAT, libc::SYS_unlinkat),
            (nr::SYMLINKAT, libc::SYS_symlinkat),
            (nr::FCHMODAT, libc::SYS_fchmodat),
            (nr::FACCESSAT, libc::SYS_faccessat),
            (nr::UNSHARE, libc::SYS_unshare),
            (nr::DUP3, libc::SYS_dup3),
            (nr::PRLIMIT64, libc::SYS_prlimit64),
            (nr::SETNS, libc::SYS_setns),
            (nr::EXECVEAT, libc::SYS_execveat),
            (nr::SETSID, libc::SYS_setsid),
            (nr::PPOLL, libc::SYS_ppoll),
            (nr::OPEN_TREE, libc::SYS_open_tree),
            (nr::MOVE_MOUNT, libc::SYS_move_mount),
            (nr::FSOPEN, libc::SYS_fsopen),
            (nr::FSCONFIG, libc::SYS_fsconfig),
            (nr::FSMOUNT, libc::SYS_fsmount),
            (nr::CLONE3, libc::SYS_clone3),
            (nr::CLOSE_RANGE, libc::SYS_close_range),
            (nr::OPENAT2, libc::SYS_openat2),
            (nr::MOUNT_SETATTR, libc::SYS_mount_setattr),
        ];
        for (i, (ours, theirs)) in pairs.iter().enumerate() {
            assert_eq!(*ours, *theirs as usize, "entry {i}");
        }
    }
}
