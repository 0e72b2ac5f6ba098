//! The racer's machinery: it predicts the pids of new processes, attacks
//! each one as soon as it exists (`/proc/PID/mem`, `ptrace`) until it is
//! allowed or gone, and counts what it got ([`Race`]).

use std::collections::HashSet;
use std::fmt;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::support::{fields, ppid_of};

/// What a racer did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Race {
    /// New processes it found (and was allowed to attack).
    pub(super) seen: u64,
    /// Successful `open("/proc/PID/mem", O_RDWR)`.
    pub(super) mem_open: u64,
    /// Of those, reads that met an address space (data or `EIO`), not
    /// the empty one of a zombie.
    pub(super) mem_mm: u64,
    /// Reads that returned the canary.
    pub(super) mem_hit: u64,
    /// Successful `PTRACE_SEIZE`.
    pub(super) ptrace_attach: u64,
    /// Tracees that reached a stop in which they could be read.
    pub(super) ptrace_stopped: u64,
    /// `PTRACE_PEEKDATA` reads that returned the canary.
    pub(super) ptrace_hit: u64,
}

impl fmt::Display for Race {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seen={} mem_open={} mem_mm={} mem_hit={} ptrace_attach={} ptrace_stopped={} ptrace_hit={}",
            self.seen,
            self.mem_open,
            self.mem_mm,
            self.mem_hit,
            self.ptrace_attach,
            self.ptrace_stopped,
            self.ptrace_hit
        )
    }
}

impl Race {
    pub(super) fn parse(line: &str) -> Race {
        let f = fields(line);
        let n = |k: &str| f.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Race {
            seen: n("seen"),
            mem_open: n("mem_open"),
            mem_mm: n("mem_mm"),
            mem_hit: n("mem_hit"),
            ptrace_attach: n("ptrace_attach"),
            ptrace_stopped: n("ptrace_stopped"),
            ptrace_hit: n("ptrace_hit"),
        }
    }
}

/// How one attempt on a process went.
enum Attempt {
    /// It does not exist (any more).
    Gone,
    /// Not allowed (yet): try again.
    Denied,
    /// Done with, whatever it showed.
    Done,
}

/// A process the racer works on until both attacks have been made.
pub(super) struct Target {
    pid: i32,
    mem: bool,
    ptrace: bool,
}

/// How many pids beyond the last one seen the racer watches for.
const WINDOW: i32 = 8;

/// The first pid the kernel hands out after wrapping around `pid_max`
/// (`RESERVED_PIDS`).
const FIRST_WRAPPED_PID: i32 = 300;

/// The racer: predicts the pids of new processes, and attacks each one as
/// soon as it exists, again and again until it is allowed or gone.
pub(super) struct Racer {
    pub(super) addr: u64,
    pub(super) canary: [u8; 16],
    /// Attack only descendants of this pid (in a PID namespace shared
    /// with the host, where other processes run too).
    pub(super) ancestor: Option<i32>,
    pub(super) me: i32,
    pub(super) pid_max: i32,
    pub(super) race: Race,
    pub(super) seen: Vec<i32>,
    pub(super) active: Vec<Target>,
    /// Pids already looked at (forgotten when they are gone, so that a
    /// reused pid is looked at again).
    pub(super) known: HashSet<i32>,
    /// The first pid of the watched window.
    pub(super) next: i32,
}

impl Racer {
    pub(super) fn wrap(&self, pid: i32) -> i32 {
        if pid >= self.pid_max { FIRST_WRAPPED_PID + (pid - self.pid_max) } else { pid.max(1) }
    }

    /// The processes listed in `/proc` now.
    pub(super) fn scan() -> HashSet<i32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// The last pid the kernel handed out in our PID namespace.
    pub(super) fn last_pid() -> Option<i32> {
        std::fs::read_to_string("/proc/sys/kernel/ns_last_pid").ok()?.trim().parse().ok()
    }

    /// None if `pid` does not exist; else whether it is one to attack.
    fn eligible(&self, pid: i32) -> Option<bool> {
        let mut parent = ppid_of(pid)?;
        if pid == self.me {
            return Some(false);
        }
        let Some(ancestor) = self.ancestor else { return Some(true) };
        // Guest payloads are the ancestor's grandchildren; no need to go
        // further up.
        for _ in 0..4 {
            if parent == ancestor {
                return Some(true);
            }
            match ppid_of(parent) {
                Some(p) if parent > 1 => parent = p,
                _ => break,
            }
        }
        Some(false)
    }

    /// Looks at a pid not looked at before; true if it exists.
    fn consider(&mut self, pid: i32) -> bool {
        let Some(eligible) = self.eligible(pid) else { return false };
        self.known.insert(pid);
        if eligible {
            self.race.seen += 1;
            self.seen.push(pid);
            self.active.push(Target { pid, mem: false, ptrace: false });
            self.attempt(self.active.len() - 1);
        }
        true
    }

    pub(super) fn run(&mut self, stop: &AtomicBool) {
        let mut last_scan = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            // The window: new processes appear there, in order.
            let window: Vec<i32> = (0..WINDOW).map(|k| self.wrap(self.next + k)).collect();
            let mut newest = None;
            for pid in window {
                if !self.known.contains(&pid) && self.consider(pid) {
                    newest = Some(pid);
                }
            }
            if let Some(pid) = newest {
                self.next = self.wrap(pid + 1);
            }
            // Everything seen but not yet attacked successfully, again.
            let mut i = 0;
            while i < self.active.len() {
                if self.attempt(i) {
                    i += 1;
                } else {
                    self.active.swap_remove(i);
                }
            }
            if last_scan.elapsed() > Duration::from_millis(20) {
                self.rescan();
                last_scan = Instant::now();
            }
        }
    }

    /// Catches up with processes the window missed, and with the kernel's
    /// pid counter when it ran ahead (or wrapped around).
    fn rescan(&mut self) {
        let now = Self::scan();
        let fresh: Vec<i32> = now.iter().copied().filter(|p| !self.known.contains(p)).collect();
        for pid in &fresh {
            self.consider(*pid);
        }
        if let Some(last) = Self::last_pid() {
            let ahead = (last - self.next).rem_euclid(self.pid_max);
            if ahead >= WINDOW / 2 && ahead < self.pid_max / 2 {
                self.next = self.wrap(last - WINDOW / 2 + 1);
            }
        }
        let active: HashSet<i32> = self.active.iter().map(|t| t.pid).collect();
        self.known.retain(|p| now.contains(p) || active.contains(p));
    }

    /// One round of attacks on target `i`; false once it is finished with.
    fn attempt(&mut self, i: usize) -> bool {
        let pid = self.active[i].pid;
        if !self.active[i].mem {
            match self.attack_mem(pid) {
                Attempt::Gone => return false,
                Attempt::Denied => {}
                Attempt::Done => self.active[i].mem = true,
            }
        }
        if !self.active[i].ptrace {
            match self.attack_ptrace(pid) {
                Attempt::Gone => return false,
                Attempt::Denied => {}
                Attempt::Done => self.active[i].ptrace = true,
            }
        }
        !(self.active[i].mem && self.active[i].ptrace)
    }

    /// Opens the process's memory and reads at the canary's address. An
    /// open file keeps the address space it was opened on: one open while
    /// the process shares the caller's memory is enough.
    fn attack_mem(&mut self, pid: i32) -> Attempt {
        let file = match std::fs::OpenOptions::new().read(true).write(true).open(format!("/proc/{pid}/mem")) {
            Ok(file) => file,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => return Attempt::Gone,
            Err(_) => return Attempt::Denied,
        };
        self.race.mem_open += 1;
        let mut buf = [0u8; 16];
        match file.read_at(&mut buf, self.addr) {
            // A zombie's file has no address space.
            Ok(0) => {}
            Ok(n) => {
                self.race.mem_mm += 1;
                if n == buf.len() && buf == self.canary {
                    self.race.mem_hit += 1;
                }
            }
            // An address space without anything at that address.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => self.race.mem_mm += 1,
            Err(_) => {}
        }
        Attempt::Done
    }

    /// Seizes the process, stops it, peeks at the canary's address and
    /// lets it go.
    fn attack_ptrace(&mut self, pid: i32) -> Attempt {
        let target = Pid::from_raw(pid);
        match ptrace::seize(target, ptrace::Options::empty()) {
            Ok(()) => {}
            Err(Errno::ESRCH) => return Attempt::Gone,
            Err(_) => return Attempt::Denied,
        }
        self.race.ptrace_attach += 1;
        let _ = ptrace::interrupt(target);
        // Every tracee stops or ends, and both are reported to the tracer
        // (its real parent learns of an end only after this wait).
        loop {
            match waitpid(target, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Stopped(_, signal)) => {
                    // A signal-delivery stop: hand the signal back.
                    self.peek(target);
                    let _ = ptrace::detach(target, signal);
                    break;
                }
                Ok(WaitStatus::PtraceEvent(..) | WaitStatus::PtraceSyscall(_)) => {
                    self.peek(target);
                    let _ = ptrace::detach(target, None);
                    break;
                }
                Ok(WaitStatus::StillAlive | WaitStatus::Continued(_)) | Err(Errno::EINTR) => {}
                Ok(_) | Err(_) => break,
            }
        }
        Attempt::Done
    }

    fn peek(&mut self, target: Pid) {
        self.race.ptrace_stopped += 1;
        let word = |addr: u64| ptrace::read(target, addr as ptrace::AddressType);
        if let (Ok(a), Ok(b)) = (word(self.addr), word(self.addr + 8)) {
            let mut got = [0u8; 16];
            got[..8].copy_from_slice(&a.to_ne_bytes());
            got[8..].copy_from_slice(&b.to_ne_bytes());
            if got == self.canary {
                self.race.ptrace_hit += 1;
            }
        }
    }
}
