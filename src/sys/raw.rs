//! System calls issued directly with `syscall`/`svc`, bypassing libc.
//!
//! The guest's first process is cloned with `CLONE_VM`: it shares memory,
//! and therefore the thread-local `errno`, with the thread that spawned it.
//! libc wrappers write `errno` on failure, which would race with the parent
//! thread. These functions return the kernel's raw result instead (`-errno`
//! on failure) and touch no memory but their arguments.
//!
//! This file is also compiled into the built-in init image (a `no_std`
//! executable, see `build.rs`), so it depends on `core` only.

#![allow(dead_code)]

use core::arch::asm;

/// Issues system call `nr` with six arguments and returns the raw result.
///
/// # Safety
///
/// The arguments must be valid for the system call: pointers must point to
/// memory of the size and mutability the kernel expects.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn syscall6(nr: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize, a6: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 Linux system call convention: number in rax,
    // arguments in rdi, rsi, rdx, r10, r8, r9; rcx and r11 are clobbered.
    // The caller vouches for the arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            in("r9") a6,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Issues system call `nr` with six arguments and returns the raw result.
///
/// # Safety
///
/// The arguments must be valid for the system call: pointers must point to
/// memory of the size and mutability the kernel expects.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub unsafe fn syscall6(nr: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize, a6: usize) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 Linux system call convention: number in x8,
    // arguments in x0..x5, result in x0. The caller vouches for the
    // arguments.
    unsafe {
        asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a1 as isize => ret,
            in("x1") a2,
            in("x2") a3,
            in("x3") a4,
            in("x4") a5,
            in("x5") a6,
            options(nostack),
        );
    }
    ret
}

/// Issues a process-creating system call (`clone` or `clone3`) whose child
/// starts on a fresh stack, and makes the child call `entry(arg, flag)`.
///
/// The parent gets the raw result (child pid or `-errno`). The child never
/// returns from this function: it runs `entry`, which must not return.
/// `flag` is a second word for the child (whether the kernel placed it in
/// a cgroup), passed separately so that `arg` stays an untouched pointer.
///
/// # Safety
///
/// The arguments must describe a valid stack for the child (for `clone3`,
/// inside the `clone_args` that `a1` points to; for `clone`, `a2`), and
/// `entry` must only use memory that stays valid until the child execs or
/// exits.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
pub unsafe fn spawn_on_stack(
    nr: usize,
    args: [usize; 5],
    entry: unsafe extern "C" fn(usize, usize) -> !,
    arg: usize,
    flag: usize,
) -> isize {
    let [a1, a2, a3, a4, a5] = args;
    let ret: isize;
    // SAFETY: in the parent this is an ordinary system call. In the child
    // (rax == 0) the kernel has switched to the new, 16-byte aligned stack;
    // the frame pointer is cleared so backtraces end here, and `entry` is
    // called with `arg` and `flag` and never returns (`ud2` traps if it
    // ever did). r12, r13 and r14 survive the system call in both
    // processes.
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "mov rsi, r14",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            in("r12") arg,
            in("r13") entry,
            in("r14") flag,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

/// Issues a process-creating system call (`clone` or `clone3`) whose child
/// starts on a fresh stack, and makes the child call `entry(arg)`.
///
/// # Safety
///
/// See the x86_64 version.
#[cfg(target_arch = "aarch64")]
#[inline(never)]
pub unsafe fn spawn_on_stack(
    nr: usize,
    args: [usize; 5],
    entry: unsafe extern "C" fn(usize, usize) -> !,
    arg: usize,
    flag: usize,
) -> isize {
    let [a1, a2, a3, a4, a5] = args;
    let ret: isize;
    // SAFETY: in the parent this is an ordinary system call. In the child
    // (x0 == 0) the kernel has switched to the new stack; the frame and
    // link registers are cleared and `entry(arg, flag)` never returns
    // (`brk` traps if it ever did). x9, x10 and x11 survive the system
    // call.
    unsafe {
        asm!(
            "svc 0",
            "cbnz x0, 2f",
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, x9",
            "mov x1, x11",
            "blr x10",
            "brk #1",
            "2:",
            in("x8") nr,
            inlateout("x0") a1 as isize => ret,
            in("x1") a2,
            in("x2") a3,
            in("x3") a4,
            in("x4") a5,
            in("x9") arg,
            in("x10") entry,
            in("x11") flag,
        );
    }
    ret
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("vguest supports x86_64 and aarch64 Linux");

/// System call numbers used by the spawn child and by the init image.
#[cfg(target_arch = "x86_64")]
pub mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const CLOSE: usize = 3;
    pub const RT_SIGACTION: usize = 13;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const IOCTL: usize = 16;
    pub const GETPID: usize = 39;
    pub const SOCKET: usize = 41;
    pub const SENDMSG: usize = 46;
    pub const RECVMSG: usize = 47;
    pub const CLONE: usize = 56;
    pub const EXECVE: usize = 59;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const FCNTL: usize = 72;
    pub const FCHDIR: usize = 81;
    pub const CHDIR: usize = 80;
    pub const SETRESUID: usize = 117;
    pub const SETRESGID: usize = 119;
    pub const SETGROUPS: usize = 116;
    pub const CAPSET: usize = 126;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const PRCTL: usize = 157;
    pub const CHROOT: usize = 161;
    pub const MOUNT: usize = 165;
    pub const UMOUNT2: usize = 166;
    pub const SETHOSTNAME: usize = 170;
    pub const SETDOMAINNAME: usize = 171;
    pub const PIVOT_ROOT: usize = 155;
    pub const EXIT_GROUP: usize = 231;
    pub const OPENAT: usize = 257;
    pub const MKDIRAT: usize = 258;
    pub const MKNODAT: usize = 259;
    pub const FCHOWNAT: usize = 260;
    pub const NEWFSTATAT: usize = 262;
    pub const UNLINKAT: usize = 263;
    pub const SYMLINKAT: usize = 266;
    pub const FCHMODAT: usize = 268;
    pub const FACCESSAT: usize = 269;
    pub const UNSHARE: usize = 272;
    pub const DUP3: usize = 292;
    pub const PRLIMIT64: usize = 302;
    pub const SETNS: usize = 308;
    pub const EXECVEAT: usize = 322;
    pub const SETSID: usize = 112;
    pub const PPOLL: usize = 271;
    pub const SIGNALFD4: usize = 289;
    pub const OPEN_TREE: usize = 428;
    pub const MOVE_MOUNT: usize = 429;
    pub const FSOPEN: usize = 430;
    pub const FSCONFIG: usize = 431;
    pub const FSMOUNT: usize = 432;
    pub const CLONE3: usize = 435;
    pub const CLOSE_RANGE: usize = 436;
    pub const OPENAT2: usize = 437;
    pub const MOUNT_SETATTR: usize = 442;
    pub const FUTEX: usize = 202;
    pub const SECCOMP: usize = 317;
}

/// System call numbers used by the spawn child and by the init image.
#[cfg(target_arch = "aarch64")]
pub mod nr {
    pub const READ: usize = 63;
    pub const WRITE: usize = 64;
    pub const CLOSE: usize = 57;
    pub const RT_SIGACTION: usize = 134;
    pub const RT_SIGPROCMASK: usize = 135;
    pub const IOCTL: usize = 29;
    pub const GETPID: usize = 172;
    pub const SOCKET: usize = 198;
    pub const SENDMSG: usize = 211;
    pub const RECVMSG: usize = 212;
    pub const CLONE: usize = 220;
    pub const EXECVE: usize = 221;
    pub const WAIT4: usize = 260;
    pub const KILL: usize = 129;
    pub const FCNTL: usize = 25;
    pub const FCHDIR: usize = 50;
    pub const CHDIR: usize = 49;
    pub const SETRESUID: usize = 147;
    pub const SETRESGID: usize = 149;
    pub const SETGROUPS: usize = 159;
    pub const CAPSET: usize = 91;
    pub const RT_SIGTIMEDWAIT: usize = 137;
    pub const PRCTL: usize = 167;
    pub const CHROOT: usize = 51;
    pub const MOUNT: usize = 40;
    pub const UMOUNT2: usize = 39;
    pub const SETHOSTNAME: usize = 161;
    pub const SETDOMAINNAME: usize = 162;
    pub const PIVOT_ROOT: usize = 41;
    pub const EXIT_GROUP: usize = 94;
    pub const OPENAT: usize = 56;
    pub const MKDIRAT: usize = 34;
    pub const MKNODAT: usize = 33;
    pub const FCHOWNAT: usize = 54;
    pub const NEWFSTATAT: usize = 79;
    pub const UNLINKAT: usize = 35;
    pub const SYMLINKAT: usize = 36;
    pub const FCHMODAT: usize = 53;
    pub const FACCESSAT: usize = 48;
    pub const UNSHARE: usize = 97;
    pub const DUP3: usize = 24;
    pub const PRLIMIT64: usize = 261;
    pub const SETNS: usize = 268;
    pub const EXECVEAT: usize = 281;
    pub const SETSID: usize = 157;
    pub const PPOLL: usize = 73;
    pub const SIGNALFD4: usize = 74;
    pub const OPEN_TREE: usize = 428;
    pub const MOVE_MOUNT: usize = 429;
    pub const FSOPEN: usize = 430;
    pub const FSCONFIG: usize = 431;
    pub const FSMOUNT: usize = 432;
    pub const CLONE3: usize = 435;
    pub const CLOSE_RANGE: usize = 436;
    pub const OPENAT2: usize = 437;
    pub const MOUNT_SETATTR: usize = 442;
    pub const FUTEX: usize = 98;
    pub const SECCOMP: usize = 277;
}
