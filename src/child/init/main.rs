//! The built-in init: PID 1 of a guest's PID namespace.
//!
//! This is a separate, static, `no_std` executable of about 2 KiB,
//! built by `build.rs` and executed from a sealed memfd. The spawn child
//! execs it as its last step, so the guest's PID 1 never keeps a copy of
//! the embedding program's address space (which a long-lived forked init
//! would pin, and which would make every spawn cost grow with the parent's
//! size).
//!
//! Arguments: `vguest-init OWNERFD PAYLOAD_PID ERRFD PROGRAM ARGV0
//! ARGS...`; the environment is the payload's. Normally the spawn child
//! clones the payload's process (which execs the payload) just before it
//! execs this image, so both execs run at once, and passes its pid. Where
//! the kernel refuses that clone (it shares memory, which a process
//! entering a new time namespace may not), PAYLOAD_PID is 0 and the init
//! forks the payload itself, which execs PROGRAM; a failed exec is then
//! reported on ERRFD with the record format of `wire.rs` (in the other
//! case ERRFD is closed already and unused). The init then reaps every
//! child (orphans included) and forwards job-control and termination
//! signals to the payload (see `pid_namespaces(7)`: PID 1 only receives
//! signals it waits for).
//!
//! OWNERFD (`-` for none) is the read end of a pipe whose only write end
//! is the caller's, held for its whole life: when the caller process dies,
//! the pipe hangs up and the init exits, which ends every process of the
//! guest. `wire::DETACH_SIGNAL` sent from outside the guest's PID namespace (the
//! guest's own processes cannot forge that) stops this watch, for a guest
//! detached from its owner.
//!
//! When the payload ends, the init puts its raw wait status into its own
//! name (`vgst:` and eight hex digits, `PR_SET_NAME`), which the kernel
//! keeps while the init is a zombie, and exits with the payload's code (or
//! 128 + signal). The caller reads it from `/proc/PID/comm` before it
//! reaps the init, so a guest needs no status pipe.
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
const SFD_NONBLOCK: usize = 0o4000;
const SFD_CLOEXEC: usize = 0o2000000;
const POLLIN: i16 = 1;
/// `si_code` of a signal sent with `kill(2)` or `pidfd_send_signal(2)`.
const SI_USER: i32 = 0;

/// The signal that stops the watch on the owner. Only one sent from
/// outside the guest's PID namespace counts (its sender's pid reads as 0
/// there).
const DETACH: usize = wire::DETACH_SIGNAL as usize;

/// `struct signalfd_siginfo`: the fields read here, padded to its size.
#[repr(C)]
struct SignalInfo {
    signo: u32,
    errno: i32,
    code: i32,
    pid: u32,
    rest: [u8; 112],
}

/// `struct pollfd`.
#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

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
    let (owner, pid, errfd, program, payload_argv, envp) = unsafe {
        (
            match **argv.add(1) {
                b'-' => None,
                _ => Some(parse_number(*argv.add(1))),
            },
            parse_number(*argv.add(2)) as isize,
            parse_number(*argv.add(3)),
            *argv.add(4),
            argv.add(5),
            argv.add(argc + 1),
        )
    };
    // Show as "vguest-init" in ps rather than the memfd's name.
    set_name(b"vguest-init\0");
    // The owner's pipe may not reach processes the payload leaves behind.
    if let Some(fd) = owner {
        sys(nr::FCNTL, fd, F_SETFD, FD_CLOEXEC, 0);
    }

    // The spawn child execs this image with every signal blocked, so none
    // sent before this point is lost (a SIGCHLD from a payload that ended
    // already included): it stays pending for the signalfd. Block the
    // wanted set anyway, for an init started some other way.
    let mut wanted: u64 = 1 << (SIGCHLD - 1) | 1 << (DETACH - 1);
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
    let mut signals =
        Signals { fd: sys(nr::SIGNALFD4, usize::MAX, &wanted as *const u64 as usize, 8, SFD_NONBLOCK | SFD_CLOEXEC), wanted };
    let mut owner = owner.map(|fd| fd as i32);

    loop {
        let Some(info) = signals.next(&mut owner) else {
            // The owner is gone: so is the guest (exiting as PID 1 ends
            // every process of the namespace).
            exit(128 + 9);
        };
        let sig = info.signo as usize;
        if sig == DETACH {
            if info.pid == 0 && info.code == SI_USER {
                if let Some(fd) = owner.take() {
                    sys(nr::CLOSE, fd as usize, 0, 0, 0);
                }
            }
            continue;
        }
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
                report_status(status);
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

fn set_name(name: &[u8]) {
    const PR_SET_NAME: usize = 15;
    sys(nr::PRCTL, PR_SET_NAME, name.as_ptr() as usize, 0, 0);
}

/// Puts the payload's raw wait status into the init's name, where the
/// caller reads it once the init is a zombie: `vgst:` and 8 hex digits.
fn report_status(status: i32) {
    let mut name = *b"vgst:00000000\0";
    for i in 0..8 {
        let nibble = (status as u32 >> (28 - 4 * i)) & 0xf;
        name[5 + i] = b"0123456789abcdef"[nibble as usize];
    }
    set_name(&name);
}

/// Where the init's signals come from: a signalfd polled beside the
/// owner's pipe, or (should the kernel refuse a signalfd) `sigtimedwait`
/// without the watch.
struct Signals {
    fd: isize,
    wanted: u64,
}

impl Signals {
    /// The next signal; `None` once the owner's pipe hangs up (`owner` is
    /// the pipe's read end while watched).
    fn next(&mut self, owner: &mut Option<i32>) -> Option<SignalInfo> {
        let mut info = SignalInfo { signo: 0, errno: 0, code: 0, pid: 0, rest: [0; 112] };
        loop {
            if self.fd < 0 {
                // `siginfo_t` and `signalfd_siginfo` agree on the first
                // three fields; si_pid sits at offset 16 on 64-bit.
                let mut raw = [0i32; 32];
                let sig = sys(nr::RT_SIGTIMEDWAIT, &self.wanted as *const u64 as usize, raw.as_mut_ptr() as usize, 0, 8);
                if sig > 0 {
                    (info.signo, info.code, info.pid) = (sig as u32, raw[2], raw[4] as u32);
                    return Some(info);
                }
                continue;
            }
            let size = core::mem::size_of::<SignalInfo>();
            if sys(nr::READ, self.fd as usize, &mut info as *mut SignalInfo as usize, size, 0) == size as isize {
                return Some(info);
            }
            let mut fds = [
                PollFd { fd: self.fd as i32, events: POLLIN, revents: 0 },
                PollFd { fd: owner.unwrap_or(-1), events: POLLIN, revents: 0 },
            ];
            // A negative fd is ignored by ppoll; no timeout, no mask.
            if sys(nr::PPOLL, fds.as_mut_ptr() as usize, 2, 0, 0) > 0 && owner.is_some() && fds[1].revents != 0 {
                // Nothing is ever written: any event is the hang-up.
                return None;
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
