//! Raw-syscall floors the benchmarks compare vguest against: the least
//! work that can do the same job, with no library around it.
//!
//! Each comes in two styles: a fork-style `clone` (the child gets a copy
//! of this process's page tables, torn down again at exec, so its cost
//! grows with the benchmark process) and a memory-sharing
//! `CLONE_VM | CLONE_VFORK` clone as `posix_spawn(3)` and vguest use. The
//! second is the stricter floor.
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

/// Stack of a memory-sharing floor child (it runs a few C calls).
const VM_STACK: usize = 256 * 1024;

/// Runs `child` in a clone that shares our memory and suspends us until
/// it execs or exits (`CLONE_VM | CLONE_VFORK`, as `posix_spawn(3)` does),
/// with `flags` added, on a fresh stack; returns its pid. Its cost does
/// not depend on the size of this process, unlike a fork-style clone,
/// which copies the page tables and then tears the copy down at exec.
/// `child`'s return value is the child's exit status.
fn clone_vm(flags: libc::c_int, child: &dyn Fn() -> libc::c_int) -> libc::pid_t {
    extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` points to the `&dyn Fn` below, alive while we run
        // (the parent is suspended until we exec or exit).
        let child = unsafe { &*(arg as *const &dyn Fn() -> libc::c_int) };
        child()
    }
    let mut stack: Vec<u8> = Vec::with_capacity(VM_STACK);
    // SAFETY: the stack grows down from the end of our allocation, 16-byte
    // aligned; the child only runs raw calls on it and on memory prepared
    // before the clone, and the parent waits (CLONE_VFORK) until it is
    // done with both.
    let pid = unsafe {
        let top = (stack.as_mut_ptr().add(VM_STACK) as usize & !15) as *mut libc::c_void;
        let arg = &child as *const &dyn Fn() -> libc::c_int as *mut libc::c_void;
        libc::clone(trampoline, top, flags | libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD, arg)
    };
    assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
    drop(stack);
    pid
}

fn wait_ok(pid: libc::pid_t, what: &str) {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(status, 0, "{what} child failed: exit status {}", libc::WEXITSTATUS(status));
}

/// As [`clone_exec_wait`], but with `CLONE_VM | CLONE_VFORK` (see
/// [`clone_vm`]): the stricter floor for a library that clones with
/// `CLONE_VM`, as vguest does.
pub fn vfork_exec_wait(flags: libc::c_int) {
    let path = CString::new("/bin/true").unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let pid = clone_vm(flags, &|| {
        // SAFETY: execve on C strings prepared before the clone.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        127
    });
    wait_ok(pid, "vfork floor");
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

/// As [`setns_fork_exec_wait`], with a memory-sharing clone (see
/// [`clone_vm`]) as vguest's exec uses.
pub fn setns_vfork_exec_wait(pidfd: std::os::fd::BorrowedFd<'_>, own_pidns: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    let path = CString::new("/bin/true").unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let others = libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWCGROUP;
    let fd = pidfd.as_raw_fd();
    // SAFETY: setns on our own thread with fds we hold.
    assert_eq!(unsafe { libc::setns(fd, libc::CLONE_NEWPID) }, 0);
    let pid = clone_vm(0, &|| {
        // SAFETY: raw calls on fds and C strings prepared before the clone.
        unsafe {
            if libc::setns(fd, others) != 0 {
                return 126;
            }
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        }
        127
    });
    // SAFETY: returning to our own PID namespace.
    assert_eq!(unsafe { libc::setns(own_pidns.as_raw_fd(), libc::CLONE_NEWPID) }, 0);
    wait_ok(pid, "setns vfork floor");
}

/// One step of [`GuestFloor`], with every path already a C string.
enum RawOp {
    /// `mount(2)`.
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// An empty file to mount a device node on.
    Touch(CString),
    Mkdir(CString),
    Symlink {
        target: CString,
        path: CString,
    },
    /// A directory gets an empty read-only tmpfs, a file `/dev/null`;
    /// a missing path is skipped.
    Mask(CString),
    /// Bind onto itself, then remount read-only; skipped if missing.
    ReadOnly(CString, libc::c_ulong),
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The raw-syscall floor of a full guest: what
/// `Filesystem::new(ROOT).proc().dev().tmpfs("/tmp", SIZE)` and the
/// default `Context` make a guest's first process do, done with classic
/// `mount(2)` calls by a plain `clone`d child and no library: hostname;
/// private propagation; bind the root; `/proc`; the minimal `/dev` (tmpfs,
/// six device binds made nosuid,noexec, devpts, `/dev/shm`, five
/// symlinks); the tmpfs; the default masked and read-only paths; the root
/// made nodev; `pivot_root` with the old root detached; the bounding set
/// cut to the default capabilities, `capset`, `no_new_privs`; exec. Not
/// done: an init as PID 1, resetting signal handlers, `close_range`, the
/// error pipe (the exit status names a failing step instead).
pub struct GuestFloor {
    flags: libc::c_int,
    hostname: CString,
    root: CString,
    ops: Vec<RawOp>,
    drop_caps: Vec<libc::c_ulong>,
    caps: [CapData; 2],
}

impl GuestFloor {
    /// The floor for a guest on `root` with a tmpfs of `tmp_size` bytes on
    /// `/tmp`, in a clone with `flags` (which must include a new mount
    /// namespace) and hostname `hostname`.
    pub fn new(root: &std::path::Path, tmp_size: u64, flags: libc::c_int, hostname: &str) -> GuestFloor {
        use libc::{MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT};
        let c = |s: &str| CString::new(s).unwrap();
        let under = |p: &str| c(&format!("{}{p}", root.display()));
        let mount = |source: Option<&str>,
                     target: CString,
                     fstype: Option<&str>,
                     flags,
                     data: Option<&str>| {
            RawOp::Mount { source: source.map(c), target, fstype: fstype.map(c), flags, data: data.map(c) }
        };
        let r = root.to_str().unwrap();
        let mut ops = vec![
            mount(None, c("/"), None, MS_REC | MS_PRIVATE, None),
            mount(Some(r), c(r), None, MS_BIND | MS_REC, None),
            mount(Some("proc"), under("/proc"), Some("proc"), MS_NOSUID | MS_NODEV | MS_NOEXEC, None),
            mount(
                Some("tmpfs"),
                under("/dev"),
                Some("tmpfs"),
                MS_NOSUID | MS_NODEV | MS_NOEXEC,
                Some("size=65536,mode=755"),
            ),
        ];
        for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
            let target = format!("/dev/{dev}");
            ops.push(RawOp::Touch(under(&target)));
            ops.push(mount(Some(&target), under(&target), None, MS_BIND, None));
            ops.push(mount(None, under(&target), None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC, None));
        }
        ops.push(RawOp::Mkdir(under("/dev/pts")));
        ops.push(mount(
            Some("devpts"),
            under("/dev/pts"),
            Some("devpts"),
            MS_NOSUID | MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        ));
        ops.push(RawOp::Mkdir(under("/dev/shm")));
        let shm = format!("size={},mode=1777", 64u64 << 20);
        ops.push(mount(Some("tmpfs"), under("/dev/shm"), Some("tmpfs"), MS_NOSUID | MS_NODEV, Some(&shm)));
        for (name, link) in [
            ("ptmx", "pts/ptmx"),
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            ops.push(RawOp::Symlink { target: c(link), path: under(&format!("/dev/{name}")) });
        }
        let tmp = format!("size={tmp_size},mode=1777");
        ops.push(mount(Some("tmpfs"), under("/tmp"), Some("tmpfs"), MS_NOSUID | MS_NODEV, Some(&tmp)));
        ops.extend(vguest::DEFAULT_MASKED.iter().map(|p| RawOp::Mask(under(p))));
        let proc_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
        ops.extend(vguest::DEFAULT_READ_ONLY.iter().map(|p| RawOp::ReadOnly(under(p), proc_flags)));
        ops.push(mount(None, c(r), None, MS_REMOUNT | MS_BIND | MS_NODEV, None));
        let _ = MS_RDONLY;

        let caps = vguest::Capabilities::default();
        let last_cap: u64 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40);
        let drop_caps =
            (0..=last_cap.min(63)).filter(|n| caps.bounding.bits() & (1 << n) == 0).map(|n| n as _).collect();
        let word = |set: vguest::CapSet, i: u32| (set.bits() >> (32 * i)) as u32;
        let data = |i| CapData {
            effective: word(caps.effective, i),
            permitted: word(caps.permitted, i),
            inheritable: word(caps.inheritable, i),
        };
        GuestFloor { flags, hostname: c(hostname), root: c(r), ops, drop_caps, caps: [data(0), data(1)] }
    }

    /// As [`run`](Self::run), with a memory-sharing clone (see
    /// [`clone_vm`]), as vguest's spawn uses.
    pub fn run_vfork(&self) {
        let path = CString::new("/bin/true").unwrap();
        let argv = [path.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        let pid = clone_vm(self.flags, &|| {
            let step = self.child();
            if step != 0 {
                return step;
            }
            // SAFETY: execve on C strings prepared before the clone.
            unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            1
        });
        wait_ok(pid, "guest vfork floor");
    }

    /// Clones, sets the guest up, execs `/bin/true` and waits. Panics with
    /// the number of the failing step if the child fails.
    pub fn run(&self) {
        let path = CString::new("/bin/true").unwrap();
        let argv = [path.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        // SAFETY: raw clone without CLONE_VM behaves like fork; the child
        // only reads memory prepared before the clone and makes raw system
        // calls until it execs or _exits.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (self.flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid == 0 {
            let step = self.child();
            // SAFETY: see above.
            unsafe {
                if step == 0 {
                    libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                }
                libc::_exit(if step == 0 { 1 } else { step });
            }
        }
        assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        assert_eq!(status, 0, "guest floor child failed at step {}", libc::WEXITSTATUS(status));
    }

    /// The child's work; returns 0 or the 2-based number of the failing
    /// step (1 is a failed exec).
    fn child(&self) -> i32 {
        let p = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        // SAFETY: a raw system call on a buffer prepared before the clone.
        unsafe {
            let name = self.hostname.as_bytes();
            if libc::sethostname(name.as_ptr().cast(), name.len()) != 0 {
                return 2;
            }
        }
        for (i, op) in self.ops.iter().enumerate() {
            let step = 10 + i as i32;
            // SAFETY: raw system calls on C strings prepared before the
            // clone and a `stat` buffer on this stack.
            let ok = unsafe {
                match op {
                    RawOp::Mount { source, target, fstype, flags, data } => {
                        libc::mount(p(source), target.as_ptr(), p(fstype), *flags, p(data).cast()) == 0
                    }
                    RawOp::Touch(path) => {
                        let fd = libc::open(
                            path.as_ptr(),
                            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                            0o644,
                        );
                        fd >= 0 && libc::close(fd) == 0
                    }
                    RawOp::Mkdir(path) => libc::mkdir(path.as_ptr(), 0o755) == 0,
                    RawOp::Symlink { target, path } => libc::symlink(target.as_ptr(), path.as_ptr()) == 0,
                    RawOp::Mask(path) => {
                        let mut st: libc::stat = std::mem::zeroed();
                        if libc::stat(path.as_ptr(), &mut st) != 0 {
                            true
                        } else if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                            let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                            let data = c"size=4096,mode=555";
                            libc::mount(
                                c"tmpfs".as_ptr(),
                                path.as_ptr(),
                                c"tmpfs".as_ptr(),
                                flags,
                                data.as_ptr().cast(),
                            ) == 0
                        } else {
                            let null = c"/dev/null".as_ptr();
                            libc::mount(
                                null,
                                path.as_ptr(),
                                std::ptr::null(),
                                libc::MS_BIND,
                                std::ptr::null(),
                            ) == 0
                        }
                    }
                    RawOp::ReadOnly(path, flags) => {
                        let mut st: libc::stat = std::mem::zeroed();
                        if libc::stat(path.as_ptr(), &mut st) != 0 {
                            true
                        } else {
                            let bind = libc::MS_BIND | libc::MS_REC;
                            let ro = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | flags;
                            let none = std::ptr::null();
                            libc::mount(path.as_ptr(), path.as_ptr(), none, bind, none.cast()) == 0
                                && libc::mount(none, path.as_ptr(), none, ro, none.cast()) == 0
                        }
                    }
                }
            };
            if !ok {
                return step;
            }
        }
        // SAFETY: raw system calls on static C strings and a capability
        // header and data laid out as capset(2) wants them.
        unsafe {
            let dot = c".".as_ptr();
            if libc::chdir(self.root.as_ptr()) != 0
                || libc::syscall(libc::SYS_pivot_root, dot, dot) != 0
                || libc::umount2(dot, libc::MNT_DETACH) != 0
                || libc::chdir(c"/".as_ptr()) != 0
            {
                return 3;
            }
            for &cap in &self.drop_caps {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                    return 4;
                }
            }
            let mut header = CapHeader { version: 0x2008_0522, pid: 0 };
            let data = self.caps;
            if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) != 0 {
                return 5;
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return 6;
            }
        }
        0
    }
}
