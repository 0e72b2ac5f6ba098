//! The built-in init: PID 1 of a guest's PID namespace.
//!
//! This is a separate, static, `no_std` executable of about 2 KiB,
//! built by `build.rs` and executed from a sealed memfd. The spawn child
//! execs it as its last step, so the guest's PID 1 never keeps a copy of
//! the embedding program's address space (which a long-lived forked init
//! would pin, and which would make every spawn cost grow with the parent's
//! size).
//!
//! Arguments: `vguest-init STATUSFD PAYLOAD_PID ERRFD PROGRAM ARGV0
//! ARGS...`; the environment is the payload's. Normally the spawn child
//! clones the payload's process (which execs the payload) just before it
//! execs this image, so both execs run at once, and passes its pid. Where
//! the kernel refuses that clone (it shares memory, which a process
//! entering a new time namespace may not), PAYLOAD_PID is 0 and the init
//! forks the payload itself, which execs PROGRAM; a failed exec is then
//! reported on ERRFD with the record format of `wire.rs` (in the other
//! case ERRFD is closed already and unused). The init then reaps every
//! child (orphans included), forwards job-control and termination signals
//! to the payload (see `pid_namespaces(7)`: PID 1 only receives signals it
//! waits for), and when the payload ends writes its raw wait status to
//! `STATUSFD` and exits with its code (or 128 + signal).
//!
//! Everything here is a raw system call: no allocation, no libc.

#![no_std]
#![no_main]

#[path = "../../sys/raw.rs"]
mod raw;
#[path = "../../plan/wire.rs"]
mod wire;

use raw::{nr, syscall6};

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym entry,
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "mov x29, xzr",
    "mov x30, xzr",
    "mov x0, sp",
    "bl {entry}",
    "brk #1",
    entry = sym entry,
);

const SIGCHLD: usize = 17;
const WNOHANG: usize = 1;
const WALL: usize = 0x4000_0000;
const F_SETFD: usize = 2;
const FD_CLOEXEC: usize = 1;
const SIG_BLOCK: usize = 0;
const SIG_SETMASK: usize = 2;

/// Signals forwarded to the payload; all others stay blocked and pending.
const FORWARD: [usize; 14] = [1, 2, 3, 10, 12, 13, 14, 15, 18, 20, 21, 22, 23, 28];

fn sys(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    // SAFETY: every call site passes arguments valid for system call `n`:
    // plain integers, or pointers to live locals of the right size.
    unsafe { syscall6(n, a, b, c, d, 0, 0) }
}

fn exit(code: usize) -> ! {
    loop {
        sys(nr::EXIT_GROUP, code, 0, 0, 0);
    }
}

fn report(errfd: usize, step: u32, ret: isize) {
    let rec = wire::encode(step, (-ret) as i32, 0);
    sys(nr::WRITE, errfd, rec.as_ptr() as usize, rec.len(), 0);
}

/// Parses a small decimal number from a NUL-terminated string.
///
/// # Safety
///
/// `s` must point to a NUL-terminated string.
unsafe fn parse_number(mut s: *const u8) -> usize {
    let mut n = 0usize;
    // SAFETY: the caller guarantees a NUL terminator ends the loop.
    unsafe {
        while *s >= b'0' && *s <= b'9' {
            n = n * 10 + (*s - b'0') as usize;
            s = s.add(1);
        }
    }
    n
}

/// Entry point: `sp` points at argc, followed by argv and envp.
///
/// # Safety
///
/// Called once by `_start` with the initial stack pointer.
unsafe extern "C" fn entry(sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack layout: argc, argv[argc], NULL,
    // envp..., NULL.
    let (argc, argv) = unsafe { (*sp, sp.add(1) as *const *const u8) };
    if argc < 5 {
        exit(127);
    }
    // SAFETY: argc >= 5, so argv[0..5] are valid string pointers and envp
    // starts after argv's terminating NULL.
    let (statusfd, pid, errfd, program, payload_argv, envp) = unsafe {
        (
            parse_number(*argv.add(1)),
            parse_number(*argv.add(2)) as isize,
            parse_number(*argv.add(3)),
            *argv.add(4),
            argv.add(5),
            argv.add(argc + 1),
        )
    };
    // Show as "vguest-init" in ps rather than the memfd's name.
    const PR_SET_NAME: usize = 15;
    sys(nr::PRCTL, PR_SET_NAME, b"vguest-init\0".as_ptr() as usize, 0, 0);
    // The status pipe may not reach processes the payload leaves behind.
    sys(nr::FCNTL, statusfd, F_SETFD, FD_CLOEXEC, 0);

    // The spawn child execs this image with every signal blocked, so none
    // sent before this point is lost (a SIGCHLD from a payload that ended
    // already included): it stays pending for sigtimedwait. Block the
    // wanted set anyway, for an init started some other way.
    let mut wanted: u64 = 1 << (SIGCHLD - 1);
    for sig in FORWARD {
        wanted |= 1 << (sig - 1);
    }
    sys(nr::RT_SIGPROCMASK, SIG_BLOCK, &wanted as *const u64 as usize, 0, 8);
    let pid = match pid {
        0 => fork_payload(errfd, program, payload_argv, envp),
        pid => pid,
    };
    // The init writes nothing; closing its stdio lets a reader of the
    // payload's output see end of file when the payload's side closes.
    for fd in 0..3 {
        sys(nr::CLOSE, fd, 0, 0, 0);
    }

    loop {
        let sig = sys(nr::RT_SIGTIMEDWAIT, &wanted as *const u64 as usize, 0, 0, 8);
        if sig < 0 {
            continue;
        }
        let sig = sig as usize;
        if sig != SIGCHLD {
            sys(nr::KILL, pid as usize, sig, 0, 0);
            continue;
        }
        loop {
            let mut status: i32 = 0;
            let reaped = sys(
                nr::WAIT4,
                usize::MAX, // -1: any child, orphans included
                &mut status as *mut i32 as usize,
                WNOHANG | WALL,
                0,
            );
            if reaped <= 0 {
                break;
            }
            if reaped == pid {
                let bytes = status.to_ne_bytes();
                sys(nr::WRITE, statusfd, bytes.as_ptr() as usize, 4, 0);
                let code = if status & 0x7f == 0 {
                    ((status >> 8) & 0xff) as usize
                } else {
                    128 + (status & 0x7f) as usize
                };
                exit(code);
            }
        }
    }
}

/// Forks the payload, which execs `program`; reports a failure on
/// `errfd` (the exec's in the payload's process). Returns the payload's
/// pid, having closed `errfd`.
fn fork_payload(errfd: usize, program: *const u8, argv: *const *const u8, envp: *const *const u8) -> isize {
    sys(nr::FCNTL, errfd, F_SETFD, FD_CLOEXEC, 0);
    let pid = sys(nr::CLONE, SIGCHLD, 0, 0, 0);
    if pid == 0 {
        let empty: u64 = 0;
        sys(nr::RT_SIGPROCMASK, SIG_SETMASK, &empty as *const u64 as usize, 0, 8);
        let err = sys(nr::EXECVE, program as usize, argv as usize, envp as usize, 0);
        report(errfd, wire::step::EXEC, err);
        exit(127);
    }
    if pid < 0 {
        report(errfd, wire::step::INIT_FORK, pid);
        exit(127);
    }
    sys(nr::CLOSE, errfd, 0, 0, 0);
    pid
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(127)
}
