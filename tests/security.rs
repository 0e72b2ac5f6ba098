//! Attack tests: a hostile guest against the promises of the security
//! model (DESIGN.md, "Security model"). Each test plays the attacker and
//! fails while its attack works:
//!
//! - a guest process reads the caller's memory through a process of ours
//!   that shares it (`/proc/PID/mem`, `ptrace`) during an exec or a spawn;
//! - a guest process pushes input into the caller's terminal (`TIOCSTI`)
//!   or takes that terminal as its controlling terminal;
//! - a default guest makes device nodes;
//! - a caller killed during the spawn's handshake leaves a half-made guest
//!   waiting forever;
//! - and a check of the test setup: a run meant to refuse `clone3(2)`
//!   really does (`tests/support/no_clone3.rs`).
//!
//! Several tests need a second program. It is this test binary run again
//! with one `#[ignore]`d *role* test selected (`--exact role_...`) and
//! `VGUEST_TEST_ROLE` naming it (`common/role.rs`); every role returns at once without
//! that variable, so a plain `cargo test -- --ignored` does nothing
//! harmful. Inside a guest the binary runs from the busybox root with the
//! host's library directories bound read-only ([`role_filesystem`]).
//! Roles report on stdout in lines tagged `@@`, which the tests parse.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio as HostStdio;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::netns::TestNet;
use common::*;
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use vguest::{
    Capabilities, Capability, Command, Context, Filesystem, Guest, Namespaces, Network, Overlay, Resources,
    Stdio, Upper, Veth,
};

// ---------------------------------------------------------------------
// Roles: this binary as a second program.
// ---------------------------------------------------------------------

/// Where the test binary appears inside a guest.
const GUEST_EXE: &str = "/vguest-security";

/// This binary as a guest payload (or exec'd process) playing `name`;
/// the guest needs [`role_filesystem`].
fn guest_role(name: &str) -> Command {
    Command::new(GUEST_EXE).args(role::args(name)).env(role::ENV, name)
}

/// A busybox guest root in which this (dynamically linked) binary runs:
/// an overlay on the shared busybox root with a throw-away upper layer, so
/// the mount points made here never touch the shared tree; the server
/// mounts; the host's library directories, bound read-only (or, where the
/// host has a symlink such as merged-usr's `/lib -> usr/lib`, the same
/// symlink); and the binary at [`GUEST_EXE`].
fn role_filesystem() -> Filesystem {
    let upper = Upper::Tmpfs { size: 16 << 20 };
    let mut fs = Filesystem::overlay(Overlay::new([rootfs()], upper)).with_server_mounts();
    for dir in ["/lib", "/lib64", "/usr/lib", "/usr/lib64"] {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => fs = fs.symlink(dir, std::fs::read_link(dir).unwrap()),
            Ok(m) if m.is_dir() => fs = fs.bind_ro(dir, dir),
            _ => {}
        }
    }
    fs.bind_ro(std::env::current_exe().unwrap(), GUEST_EXE)
}

/// Prints one tagged report line and flushes it at once (the reader may be
/// waiting for it).
fn say(line: impl fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "@@{line}");
    let _ = out.flush();
}

/// The tagged lines of a role's output, tag removed. libtest may print
/// "test role_x ... " just before a role's first line, and echoed
/// terminal input may precede one, so the tag is searched anywhere.
fn tagged(text: &str) -> Vec<&str> {
    text.lines().filter_map(|l| l.find("@@").map(|i| l[i + 2..].trim_end_matches('\r'))).collect()
}

/// The first tagged line starting with `word` (without the word).
fn tagged_line<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    tagged(text).into_iter().find_map(|l| l.strip_prefix(word)?.strip_prefix(' '))
}

/// The `key=value` words of a line.
fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace().filter_map(|w| w.split_once('=')).collect()
}

/// Reads lines from `reader` into `text` until one carries the tag
/// `word`; false at end of file.
fn read_until_tag(reader: &mut impl BufRead, word: &str, text: &mut String) -> bool {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        text.push_str(&line);
        if tagged(&line).iter().any(|l| l.split_whitespace().next() == Some(word)) {
            return true;
        }
    }
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is not set"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// The fields of `/proc/PID/stat` after the command name: state, ppid,
/// pgrp, session, tty_nr, ... (`proc_pid_stat(5)` fields 3 and on).
fn stat_fields(pid: impl fmt::Display) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn ppid_of(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

// ---------------------------------------------------------------------
// 1. The caller's memory.
// ---------------------------------------------------------------------

/// Sixteen random bytes in this process's memory, whose address and value
/// the racer gets: reading them through another process means reading
/// memory shared with (or copied from) ours.
static CANARY: [AtomicU8; 16] = [const { AtomicU8::new(0) }; 16];

/// Fills the canary (once) and returns its address and value.
fn canary() -> (usize, [u8; 16]) {
    static VALUE: OnceLock<[u8; 16]> = OnceLock::new();
    let value = *VALUE.get_or_init(|| {
        let mut bytes = [0u8; 16];
        File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
        for (cell, byte) in CANARY.iter().zip(bytes) {
            cell.store(byte, Ordering::SeqCst);
        }
        bytes
    });
    (CANARY.as_ptr() as usize, value)
}

/// What a racer did.
#[derive(Debug, Default, Clone, Copy)]
struct Race {
    /// New processes it found (and was allowed to attack).
    seen: u64,
    /// Successful `open("/proc/PID/mem", O_RDWR)`.
    mem_open: u64,
    /// Of those, reads that met an address space (data or `EIO`), not
    /// the empty one of a zombie.
    mem_mm: u64,
    /// Reads that returned the canary.
    mem_hit: u64,
    /// Successful `PTRACE_SEIZE`.
    ptrace_attach: u64,
    /// Tracees that reached a stop in which they could be read.
    ptrace_stopped: u64,
    /// `PTRACE_PEEKDATA` reads that returned the canary.
    ptrace_hit: u64,
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
    fn parse(line: &str) -> Race {
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
struct Target {
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
struct Racer {
    addr: u64,
    canary: [u8; 16],
    /// Attack only descendants of this pid (in a PID namespace shared
    /// with the host, where other processes run too).
    ancestor: Option<i32>,
    me: i32,
    pid_max: i32,
    race: Race,
    seen: Vec<i32>,
    active: Vec<Target>,
    /// Pids already looked at (forgotten when they are gone, so that a
    /// reused pid is looked at again).
    known: HashSet<i32>,
    /// The first pid of the watched window.
    next: i32,
}

impl Racer {
    fn wrap(&self, pid: i32) -> i32 {
        if pid >= self.pid_max { FIRST_WRAPPED_PID + (pid - self.pid_max) } else { pid.max(1) }
    }

    /// The processes listed in `/proc` now.
    fn scan() -> HashSet<i32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// The last pid the kernel handed out in our PID namespace.
    fn last_pid() -> Option<i32> {
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

    fn run(&mut self, stop: &AtomicBool) {
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

/// The racer, run inside a guest as the guest's root with the guest's
/// capabilities: attacks every new process until its stdin closes, then
/// reports what it did (`COUNTS`) and the pids it saw (`SEEN`).
#[test]
#[ignore = "a role of guest_cannot_read_callers_memory_during_exec_or_spawn"]
fn role_racer() {
    if !role::is("racer") {
        return;
    }
    let canary: [u8; 16] = unhex(&env("VGUEST_SECURITY_CANARY")).try_into().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Started before the first scan, so its thread id is not a new pid.
    std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut buf = [0u8; 64];
            while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
            stop.store(true, Ordering::SeqCst);
        }
    });
    let known = Racer::scan();
    let last = Racer::last_pid().unwrap_or_else(|| known.iter().copied().max().unwrap_or(1));
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
    let mut racer = Racer {
        addr: u64::from_str_radix(&env("VGUEST_SECURITY_ADDR"), 16).unwrap(),
        canary,
        ancestor: std::env::var("VGUEST_SECURITY_ANCESTOR").ok().map(|p| p.parse().unwrap()),
        me: std::process::id() as i32,
        pid_max,
        race: Race::default(),
        seen: Vec::new(),
        active: Vec::new(),
        known,
        next: 0,
    };
    racer.next = racer.wrap(last + 1);
    say("READY");
    racer.run(&stop);
    say(format!("COUNTS {}", racer.race));
    let seen: Vec<String> = racer.seen.iter().map(i32::to_string).collect();
    say(format!("SEEN {}", seen.join(" ")));
}

/// A racer running as the payload of a guest of its own.
struct RacerGuest {
    guest: Guest,
    out: BufReader<std::process::ChildStdout>,
    err: std::thread::JoinHandle<String>,
    text: String,
}

/// What a racer reported.
struct RaceReport {
    race: Race,
    seen: HashSet<u32>,
    text: String,
}

impl RacerGuest {
    /// Starts a racer in a guest with `namespaces`, attacking descendants
    /// of `ancestor` (if given), and waits until it runs.
    fn start(name: &str, namespaces: Namespaces, ancestor: Option<u32>) -> RacerGuest {
        let (addr, value) = canary();
        let mut cmd = guest_role("racer")
            .env("VGUEST_SECURITY_ADDR", format!("{addr:x}"))
            .env("VGUEST_SECURITY_CANARY", hex(&value))
            .stdin(Stdio::Piped)
            .stdout(Stdio::Piped)
            .stderr(Stdio::Piped);
        if let Some(pid) = ancestor {
            cmd = cmd.env("VGUEST_SECURITY_ANCESTOR", pid.to_string());
        }
        let mut guest = Guest::builder(name)
            .context(Context::new().namespaces(namespaces))
            .filesystem(role_filesystem())
            .command(cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("racer guest {name}: {e} ({e:?})"));
        let mut stderr = guest.stderr.take().unwrap();
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut out = BufReader::new(guest.stdout.take().unwrap());
        let mut text = String::new();
        if !read_until_tag(&mut out, "READY", &mut text) {
            let _ = guest.wait();
            panic!("racer {name} ended before it was ready:\n{text}\n{}", err.join().unwrap());
        }
        RacerGuest { guest, out, err, text }
    }

    /// Stops the racer (its stdin closes) and returns its report.
    fn stop(mut self) -> RaceReport {
        drop(self.guest.stdin.take());
        let _ = self.out.read_to_string(&mut self.text);
        let status = self.guest.wait().unwrap();
        let err = self.err.join().unwrap();
        let text = self.text;
        assert!(status.success(), "racer: {status}\n{text}\n{err}");
        let race = Race::parse(tagged_line(&text, "COUNTS").unwrap_or_else(|| panic!("no counts: {text}")));
        let seen = tagged_line(&text, "SEEN").unwrap_or("").split_whitespace().flat_map(str::parse).collect();
        RaceReport { race, seen, text }
    }
}

/// The caller's own dumpable flag.
fn dumpable() -> bool {
    nix::sys::prctl::get_dumpable().unwrap()
}

/// Spawns and execs whose first processes change ids (which makes the
/// kernel clear the dumpable flag of the memory they share with us).
fn id_changing_guests() {
    let www = vguest::User::Id { uid: 33, gid: 33 };
    let userns = Context::new()
        .namespaces(Namespaces::default() | Namespaces::USER)
        .uid_map(vguest::IdMap::new(0, 300_000, 65_536))
        .gid_map(vguest::IdMap::new(0, 300_000, 65_536));
    for ctx in [Context::new(), Context::new().user(www), userns] {
        let mut guest = Guest::builder("sec-dump")
            .context(ctx)
            .command(Command::new("sleep").arg("100"))
            .spawn()
            .unwrap();
        assert!(guest.exec(Command::new("true")).unwrap().wait().unwrap().success());
        guest.kill().unwrap();
        guest.wait().unwrap();
    }
}

/// Checks, in a process of its own, that spawns and execs leave the
/// caller's dumpable flag as it was, whether 1 or 0.
#[test]
#[ignore = "a role of guest_cannot_read_callers_memory_during_exec_or_spawn"]
fn role_dumpable() {
    if !role::is("dumpable") {
        return;
    }
    for initial in [true, false, true] {
        nix::sys::prctl::set_dumpable(initial).unwrap();
        id_changing_guests();
        say(format!("DUMPABLE before={} after={}", initial as u8, dumpable() as u8));
    }
}

#[test]
fn guest_cannot_read_callers_memory_during_exec_or_spawn() {
    if !root_or_skip("caller's memory") {
        return;
    }
    // The racer in the host's PID namespace would attack the processes of
    // tests running beside this one; and this test counts children.
    let _x = exclusive();
    // The built-in init's image stays loaded once used: load it first.
    assert!(sh(Guest::builder("warm"), "true").0.success());
    let before = HostState::capture();
    let dumpable_before = dumpable();
    let execs = repeats("caller's memory", 2000, 200);
    let spawns = repeats("caller's memory", 200, 40);
    let started = Instant::now();

    // (a) Execs into a guest with its own PID namespace, whose racer sees
    // each new process by its guest pid.
    let racer = RacerGuest::start("sec-mem-a", Namespaces::default(), None);
    let attached = Guest::attach(racer.guest.id()).unwrap();
    let mut exec_pids = Vec::new();
    for i in 0..execs {
        let cmd = Command::new("/bin/true");
        let mut p = if i % 4 == 3 { attached.exec(cmd) } else { racer.guest.exec(cmd) }.unwrap();
        exec_pids.extend(p.guest_pid());
        let status = p.wait().unwrap();
        assert!(status.success(), "exec {i}: {status}");
    }
    drop(attached);
    let a = racer.stop();
    let a_time = started.elapsed();

    // (b) Fresh guests of every kind (with the built-in init, which clones
    // the payload's process; with a user namespace; with a filesystem, so
    // that the network namespace's maker runs; with a time namespace) and
    // execs into them, seen from a guest without a PID namespace of its
    // own: it sees host pids.
    let racer =
        RacerGuest::start("sec-mem-b", Namespaces::default() - Namespaces::PID, Some(std::process::id()));
    let userns = || Context::new().namespaces(Namespaces::default() | Namespaces::USER);
    let busybox = || Filesystem::server(rootfs());
    let mut host_pids = Vec::new();
    for i in 0..spawns {
        // The last two kinds live on, to be exec'd into; execs into a
        // guest with a time namespace copy the caller's memory instead of
        // sharing it (`setns(2)` refuses a shared one).
        let kind = i % 6;
        let long_lived = kind >= 4;
        let name = format!("sec-mem-b{i}");
        let builder = match kind {
            0 | 4 => Guest::builder(name).filesystem(busybox()),
            1 => Guest::builder(name).context(userns()),
            2 => Guest::builder(name).context(userns()).filesystem(busybox()),
            3 => Guest::builder(name),
            _ => Guest::builder(name).context(Context::new().uptime_from_zero()).filesystem(busybox()),
        };
        let payload = match long_lived {
            true => Command::new("/bin/sleep").arg("100"),
            false => Command::new("/bin/true"),
        };
        let builder = builder.command(payload);
        let mut guest = builder.spawn().unwrap_or_else(|e| panic!("spawn {i}: {e} ({e:?})"));
        host_pids.push(guest.id());
        if long_lived {
            let attached = Guest::attach(guest.id()).unwrap();
            for j in 0..4 {
                let cmd = Command::new("/bin/true");
                let mut p = if j % 2 == 1 { attached.exec(cmd) } else { guest.exec(cmd) }.unwrap();
                host_pids.push(p.id());
                assert!(p.wait().unwrap().success());
            }
            guest.kill().unwrap();
            guest.wait().unwrap();
        } else {
            let status = guest.wait().unwrap();
            assert!(status.success(), "guest {i}: {status}");
        }
    }
    let b = racer.stop();
    let b_time = started.elapsed() - a_time;

    // The flag of the caller itself, here (1) and in a process of its own
    // (1 and 0), with guests whose first processes change ids.
    let dumpable_after = dumpable();
    let role = role::host("dumpable").output().unwrap();
    let role_out = String::from_utf8_lossy(&role.stdout).into_owned();

    let mut problems = Vec::new();
    for (label, report, expected, time) in [
        ("(a) execs into a guest, racer inside it", &a, &exec_pids, a_time),
        ("(b) spawns and execs, racer in a guest without a PID namespace", &b, &host_pids, b_time),
    ] {
        let covered = expected.iter().filter(|p| report.seen.contains(p)).count();
        let r = report.race;
        println!("{label}: {r}; saw {covered} of our {} processes; {time:.1?}", expected.len());
        if r.mem_hit + r.ptrace_hit > 0 {
            problems.push(format!(
                "{label}: the guest read the caller's memory: {} hits via /proc/PID/mem, {} via ptrace",
                r.mem_hit, r.ptrace_hit
            ));
        }
        // The racer must have been in a position to win: seen many new
        // processes (on an idle host nearly all; the bar is low so that a
        // busy CI machine does not fail it) and opened some of them (the
        // payloads, after their exec, are the guest's own and fair game).
        if covered * 10 < expected.len() {
            problems.push(format!("{label}: racer too slow: saw {covered} of {}", expected.len()));
        }
        if r.mem_mm == 0 || r.ptrace_stopped == 0 {
            problems.push(format!("{label}: racer never got into any process: {r}\n{}", report.text));
        }
    }
    if dumpable_before != dumpable_after {
        problems.push(format!("caller's dumpable flag changed from {dumpable_before} to {dumpable_after}"));
    }
    let flags: Vec<&str> = tagged(&role_out).into_iter().filter(|l| l.starts_with("DUMPABLE")).collect();
    println!("dumpable role: {flags:?}");
    if !role.status.success() || flags.len() != 3 {
        problems.push(format!(
            "dumpable role failed: {}\n{role_out}\n{}",
            role.status,
            String::from_utf8_lossy(&role.stderr)
        ));
    }
    for line in flags {
        let f = fields(line);
        if f.get("before") != f.get("after") {
            problems.push(format!("a spawn changed the caller's dumpable flag: {line}"));
        }
    }
    before.assert_unchanged("caller's memory");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------
// 2. The caller's terminal.
// ---------------------------------------------------------------------

/// The last errno (no allocation: usable after fork, too).
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

/// "ok" or the errno's name.
fn outcome(errno: i32) -> String {
    match errno {
        0 => "ok".to_string(),
        e => format!("{:?}", Errno::from_raw(e)),
    }
}

/// The controlling terminal's device number (0 for none).
fn tty_nr(pid: impl fmt::Display) -> Option<i64> {
    stat_fields(pid)?.get(4)?.parse().ok()
}

/// A random number below `n`, from the kernel.
fn random_below(n: u64) -> u64 {
    let mut bytes = [0u8; 8];
    File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    u64::from_ne_bytes(bytes) % n
}

/// Injects `text` into the input of the terminal on fd 0, a byte at a
/// time; 0 or the first errno.
fn push_input(text: &[u8]) -> i32 {
    for byte in text {
        // SAFETY: TIOCSTI reads one byte through the pointer, which points
        // into `text`.
        if unsafe { libc::ioctl(0, libc::TIOCSTI, byte as *const u8) } < 0 {
            return errno();
        }
    }
    0
}

/// `TIOCLINUX` with the "paste selection" subcode: input injection on a
/// virtual console.
fn paste_selection() -> i32 {
    let mut subcode = [3u8];
    // SAFETY: TIOCLINUX reads its subcode from the first byte of the
    // buffer (and may write into it); the buffer outlives the call.
    if unsafe { libc::ioctl(0, libc::TIOCLINUX, subcode.as_mut_ptr()) } < 0 { errno() } else { 0 }
}

/// The attacker, on a terminal it inherited from the caller: shows it can
/// use its stdio, then tries to push input into the terminal directly and
/// from a session of its own after taking the terminal as its controlling
/// terminal. Reports what worked, never the marker itself.
#[test]
#[ignore = "a role of guest_cannot_push_input_into_callers_terminal"]
fn role_tty_attacker() {
    if !role::is("tty_attacker") {
        return;
    }
    let label = env("VGUEST_SECURITY_LABEL");
    let marker = env("VGUEST_SECURITY_MARKER");
    let own = stat_fields("self").unwrap();
    say(format!("ATTACKER {label} tty_nr={} session={} pgrp={}", own[4], own[3], own[2]));
    say(format!("READY {label}"));
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    say(format!("GOT {label} {}", line.trim_end()));

    let direct = push_input(format!("{marker}{label}1\n").as_bytes());
    let linux = paste_selection();
    // A session of its own: a forked child is no group leader, so setsid
    // works; then it asks for the terminal (arg 0: if free; arg 1: steal,
    // which needs CAP_SYS_ADMIN) and tries again.
    let mut ends = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array.
    assert_eq!(unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let later = format!("{marker}{label}2\n");
    // SAFETY: the child makes only async-signal-safe calls (setsid, ioctl,
    // write, _exit) on memory prepared before the fork.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: setsid takes no arguments.
        let setsid = if unsafe { libc::setsid() } < 0 { errno() } else { 0 };
        let mut results = [setsid, 0, 0, 0, 0];
        for (slot, arg) in [(1, 0), (2, 1)] {
            // SAFETY: TIOCSCTTY takes an integer argument.
            results[slot] = if unsafe { libc::ioctl(0, libc::TIOCSCTTY, arg) } < 0 { errno() } else { 0 };
        }
        results[3] = push_input(later.as_bytes());
        results[4] = paste_selection();
        // SAFETY: writes the array's bytes to our pipe, then exits without
        // running anything of the parent's.
        unsafe {
            libc::write(ends[1], results.as_ptr().cast(), std::mem::size_of_val(&results));
            libc::_exit(0);
        }
    }
    assert!(child > 0, "fork: {}", outcome(errno()));
    // SAFETY: closes our copy of the write end, which nothing else uses.
    unsafe { libc::close(ends[1]) };
    let mut bytes = Vec::new();
    // SAFETY: the read end is ours alone; the File takes it over.
    let mut pipe = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(ends[0]) };
    pipe.read_to_end(&mut bytes).unwrap();
    waitpid(Pid::from_raw(child), None).unwrap();
    let r: Vec<String> =
        bytes.chunks(4).map(|c| outcome(i32::from_ne_bytes(c.try_into().unwrap()))).collect();
    assert_eq!(r.len(), 5, "child reported {bytes:?}");
    say(format!(
        "REPORT {label} TIOCSTI={} TIOCLINUX={} setsid={} TIOCSCTTY(0)={} TIOCSCTTY(1)={} \
         TIOCSTI-own-session={} TIOCLINUX-own-session={}",
        outcome(direct),
        outcome(linux),
        r[0],
        r[1],
        r[2],
        r[3],
        r[4]
    ));
}

/// Reports (and removes) whatever waits in our terminal's input queue:
/// non-canonical mode counts partial lines too.
fn drain_input(label: &str) {
    use nix::sys::termios::{LocalFlags, SetArg, SpecialCharacterIndices as C, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(stdin.as_fd()).unwrap();
    let mut raw = saved.clone();
    raw.local_flags.remove(LocalFlags::ICANON | LocalFlags::ECHO);
    raw.control_chars[C::VMIN as usize] = 0;
    raw.control_chars[C::VTIME as usize] = 0;
    tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).unwrap();
    let mut queued: libc::c_int = 0;
    // SAFETY: FIONREAD writes an int through the pointer.
    unsafe { libc::ioctl(0, libc::FIONREAD, &mut queued) };
    let mut bytes = Vec::new();
    let mut buf = [0u8; 256];
    // With VMIN = VTIME = 0 a read returns what is there, or 0.
    while let Ok(n @ 1..) = nix::unistd::read(stdin.as_fd(), &mut buf) {
        bytes.extend_from_slice(&buf[..n]);
    }
    tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &saved).unwrap();
    say(format!("QUEUE {label} n={queued} bytes={}", hex(&bytes)));
}

/// The caller: a session leader whose controlling terminal is its stdin.
/// (i) Spawns a guest whose payload is the attacker, on our stdio; (ii)
/// execs the attacker into a running guest, on our stdio.
#[test]
#[ignore = "a role of guest_cannot_push_input_into_callers_terminal"]
fn role_tty_caller() {
    if !role::is("tty_caller") {
        return;
    }
    let marker = env("VGUEST_SECURITY_MARKER");
    let attacker = |label: &str| {
        guest_role("tty_attacker").env("VGUEST_SECURITY_LABEL", label).env("VGUEST_SECURITY_MARKER", &marker)
    };
    say(format!("CALLER tty_nr={}", tty_nr("self").unwrap()));

    let mut guest = Guest::builder("sec-tty-spawn")
        .filesystem(role_filesystem())
        .command(attacker("spawn"))
        .spawn()
        .unwrap();
    say(format!("INIT tty_nr={}", tty_nr(guest.id()).unwrap_or(-1)));
    say(format!("STATUS spawn {}", guest.wait().unwrap()));
    drain_input("spawn");

    let quiet =
        Command::new("/bin/sleep").arg("1000").stdin(Stdio::Null).stdout(Stdio::Null).stderr(Stdio::Null);
    let mut guest =
        Guest::builder("sec-tty-exec").filesystem(role_filesystem()).command(quiet).spawn().unwrap();
    let mut entered = guest.exec(attacker("exec")).unwrap();
    say(format!("ENTERED tty_nr={}", tty_nr(entered.id()).unwrap_or(-1)));
    say(format!("STATUS exec {}", entered.wait().unwrap()));
    guest.kill().unwrap();
    guest.wait().unwrap();
    drain_input("exec");
}

/// A new pseudo-terminal: (master, slave), both close-on-exec from the
/// start, so that no process another test starts meanwhile keeps the
/// terminal open (`openpty(3)` makes inheritable fds).
fn open_pty() -> (OwnedFd, OwnedFd) {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).unwrap();
    nix::pty::grantpt(&master).unwrap();
    nix::pty::unlockpt(&master).unwrap();
    let path = nix::pty::ptsname_r(&master).unwrap();
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let slave = nix::fcntl::open(path.as_str(), flags, nix::sys::stat::Mode::empty()).unwrap();
    (OwnedFd::from(master), slave)
}

/// Plays the terminal's user: reads everything the terminal shows until
/// every process has closed it (or the deadline), answering each
/// attacker's prompt with a line. Returns the transcript, and whether the
/// terminal was closed by all (no process of the test is left holding it).
fn converse(master: OwnedFd, deadline: Instant) -> (String, bool) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut master = File::from(master);
    let mut shown = Vec::new();
    let mut answered = HashSet::new();
    let mut closed = false;
    while !closed && Instant::now() < deadline {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            // EIO: no process has the terminal open any more.
            Ok(0) | Err(_) => closed = true,
            Ok(n) => shown.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&shown).into_owned();
        // Our own answer's echo can land right after a prompt, before its
        // line ends ("READY spawnhello spawn"): match the known labels,
        // not the rest of the line.
        for line in tagged(&text) {
            for label in ["spawn", "exec"] {
                let prompt = line.strip_prefix("READY ").is_some_and(|rest| rest.starts_with(label));
                if prompt && answered.insert(label) {
                    master.write_all(format!("hello {label}\n").as_bytes()).unwrap();
                }
            }
        }
    }
    (String::from_utf8_lossy(&shown).into_owned(), closed)
}

#[test]
fn guest_cannot_push_input_into_callers_terminal() {
    if !root_or_skip("caller's terminal") {
        return;
    }
    let _s = shared();
    let before = HostState::capture();
    let marker = format!("QZJX{}", random_below(1_000_000));
    let (master, slave) = open_pty();
    let slave_stdio = || HostStdio::from(slave.try_clone().unwrap());
    let mut caller = {
        let mut cmd = role::host("tty_caller");
        cmd.env("VGUEST_SECURITY_MARKER", &marker)
            .stdin(slave_stdio())
            .stdout(slave_stdio())
            .stderr(slave_stdio());
        // SAFETY: runs between fork and exec, making only async-signal-safe
        // calls: a new session whose controlling terminal is stdin (the
        // pty's slave), as a login shell's would be.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // The command (and its copies of the slave) ends here: only the
        // caller and its guests keep the terminal open.
        cmd.spawn().unwrap()
    };
    drop(slave);
    let (shown, closed) = converse(master, Instant::now() + Duration::from_secs(30));
    let status = match caller.try_wait().unwrap() {
        Some(status) => status,
        None => {
            caller.kill().unwrap();
            caller.wait().unwrap()
        }
    };
    println!("terminal transcript:\n{shown}");

    let lines = tagged(&shown);
    let mut problems = Vec::new();
    let field = |word: &str, key: &str| -> Option<String> {
        fields(tagged_line(&shown, word)?).get(key).map(|v| v.to_string())
    };
    if !status.success() {
        problems.push(format!("caller failed: {status}"));
    }
    if !closed {
        problems.push("the terminal was still open after 30 s: a process was left behind".to_string());
    }
    // The setup is right: the caller's terminal is the pty.
    if field("CALLER", "tty_nr").is_none_or(|n| n == "0") {
        problems.push("the caller has no controlling terminal: test setup broken".to_string());
    }
    for (word, what) in [("INIT", "the spawned guest's init"), ("ENTERED", "the process exec'd into a guest")]
    {
        if field(word, "tty_nr").is_none_or(|n| n != "0") {
            problems.push(format!(
                "{what} has the caller's terminal as controlling terminal: {word} {:?}",
                field(word, "tty_nr")
            ));
        }
    }
    for label in ["spawn", "exec"] {
        let find =
            |word: &str| lines.iter().find_map(|l| l.strip_prefix(word)?.strip_prefix(label)).map(str::trim);
        let attacker = find("ATTACKER ").map(fields).unwrap_or_default();
        if attacker.get("tty_nr") != Some(&"0") {
            problems.push(format!("{label}: the attacker has a controlling terminal: {attacker:?}"));
        }
        // Its stdio works: it read our line, and we saw what it wrote.
        if find("GOT ") != Some(format!("hello {label}").as_str()) {
            problems.push(format!("{label}: the attacker did not read our line: {:?}", find("GOT ")));
        }
        match find("REPORT ") {
            Some(report) => {
                let worked: Vec<&str> = report
                    .split_whitespace()
                    .filter(|w| w.ends_with("=ok") && !w.starts_with("setsid"))
                    .collect();
                if !worked.is_empty() {
                    problems.push(format!("{label}: attacks that worked: {worked:?} ({report})"));
                }
            }
            None => problems.push(format!("{label}: no report from the attacker")),
        }
        let queue = find("QUEUE ").map(fields).unwrap_or_default();
        if queue.get("n") != Some(&"0") || queue.get("bytes").is_some_and(|b| !b.is_empty()) {
            let bytes = String::from_utf8_lossy(&unhex(queue.get("bytes").unwrap_or(&""))).into_owned();
            problems.push(format!("{label}: input waiting in the caller's terminal: {queue:?} = {bytes:?}"));
        }
    }
    if shown.contains(&marker) {
        problems.push("the attacker's input showed on the caller's terminal".to_string());
    }
    before.assert_mounts_unchanged("caller's terminal");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------
// 3. Device nodes.
// ---------------------------------------------------------------------

/// Tries `mknod` of a block (8,0: a disk) and a character device (1,3:
/// null) in each of `places`; prints "made" or "refused" for each, and
/// whether a made character device opens (a mount without `nodev`).
fn mknod_script(places: &[&str]) -> String {
    format!(
        r#"for d in {}; do
             for n in "b 8 0" "c 1 3"; do
               set -- $n
               node="$d/sec-node-$1"
               if mknod "$node" $n 2>/dev/null; then
                 opens=""
                 [ "$1" = c ] && (echo > "$node") 2>/dev/null && opens=" (and it opens)"
                 echo "made $d $n$opens"
               else
                 echo "refused $d $n"
               fi
             done
           done"#,
        places.join(" ")
    )
}

/// A scratch directory of this test run under cargo's, removed with
/// everything in it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("security-{name}-{}", std::process::id()));
        // An earlier run of this pid may have left it.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Device nodes named `sec-node-*` below `dir` (on the host).
fn nodes_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            out.extend(nodes_below(&entry.path()));
        } else if (kind.is_block_device() || kind.is_char_device())
            && entry.file_name().to_string_lossy().starts_with("sec-node-")
        {
            out.push(entry.path());
        }
    }
    out
}

#[test]
fn guest_cannot_make_device_nodes_by_default() {
    if !root_or_skip("device nodes") {
        return;
    }
    let _s = shared();
    let before = HostState::capture();
    let dir = Scratch::new("mknod");
    // A private copy as a root directory (the shared one is read-only for
    // tests), and an overlay whose upper layer is on disk.
    let root = dir.0.join("root");
    build_rootfs(&root);
    let (upper, work) = (dir.0.join("upper"), dir.0.join("work"));
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let overlay = Overlay::new([rootfs()], Upper::Dir { upper: upper.clone(), work });

    let mut made = Vec::new();
    for (root_kind, fs, places) in [
        ("root directory", Filesystem::server(&root), &["/", "/tmp", "/dev"][..]),
        ("overlay root, upper layer on disk", Filesystem::overlay(overlay).with_server_mounts(), &["/"][..]),
    ] {
        let (status, out, err) = sh(Guest::builder("sec-mknod").filesystem(fs), &mknod_script(places));
        assert!(status.success(), "{status}: {out}{err}");
        for line in out.lines() {
            println!("default guest, {root_kind}: {line}");
            if line.starts_with("made") {
                made.push(format!("{line} [{root_kind}]"));
            }
        }
    }
    let landed: Vec<PathBuf> = nodes_below(&root).into_iter().chain(nodes_below(&upper)).collect();

    // Opting in gives it back.
    let mut caps = Capabilities::default();
    for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
        set.insert(Capability::CAP_MKNOD);
    }
    let opted_in = Guest::builder("sec-mknod-opt")
        .context(Context::new().capabilities(caps))
        .filesystem(Filesystem::server(&root));
    let (status, out, err) = sh(opted_in, &mknod_script(&["/tmp"]));
    println!("guest with CAP_MKNOD: {}", out.trim().replace('\n', "; "));

    drop(dir);
    before.assert_mounts_unchanged("device nodes");
    assert!(status.success(), "{status}: {out}{err}");
    assert!(out.contains("made /tmp c 1 3"), "CAP_MKNOD was asked for: {out}");
    assert!(made.is_empty(), "a default guest made device nodes: {made:#?}\non the host: {landed:#?}");
}

// ---------------------------------------------------------------------
// 4. A caller killed during the handshake.
// ---------------------------------------------------------------------

/// Removes the cgroups whose name starts with `prefix`, children first,
/// once their processes are gone (waiting up to 30 s, far more than it
/// takes); returns those left.
fn remove_groups(prefix: &str) -> Vec<PathBuf> {
    let mut groups = groups_named(prefix);
    groups.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    let deadline = Instant::now() + Duration::from_secs(30);
    groups
        .into_iter()
        .filter(|dir| {
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => return false,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
                    Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                    Err(_) => return true,
                }
            }
        })
        .collect()
}

/// Reaps every child of ours that has ended.
fn reap_ended() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Spawns guests with a handshake, one after another, until killed.
#[test]
#[ignore = "a role of killed_caller_leaves_no_waiting_guest"]
fn role_spawn_loop() {
    if !role::is("spawn_loop") {
        return;
    }
    let prefix = env("VGUEST_SECURITY_PREFIX");
    let veth = env("VGUEST_SECURITY_VETH");
    say("SPAWNING");
    for n in 0.. {
        // The parent writes the id maps and joins the cgroups (and makes
        // the link) while the child waits.
        let mut builder = Guest::builder(format!("{prefix}-{n}"))
            .context(Context::new().namespaces(Namespaces::default() | Namespaces::USER))
            .resources(Resources::new().pids_max(64))
            .command(Command::new("/bin/true"));
        if !veth.is_empty() {
            let link = Veth::new(format!("{veth}n{n}")).host_netns(env("VGUEST_SECURITY_NETNS"));
            builder = builder.network(Network::new().veth(link));
        }
        match builder.spawn() {
            Ok(mut guest) => drop(guest.wait()),
            Err(e) => panic!("spawn {n}: {e} ({e:?})"),
        }
    }
}

/// The reaper: a child subreaper that starts spawning callers and kills
/// each after a random delay; their orphans become its children. Every
/// orphan that has not exec'd (a half-made guest's first process, or a
/// helper) must end by itself within a second; the rest (complete guests,
/// whose owner is gone) it kills. Then it removes what the callers left.
#[test]
#[ignore = "a role of killed_caller_leaves_no_waiting_guest"]
fn role_reaper() {
    if !role::is("reaper") {
        return;
    }
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let prefix = env("VGUEST_SECURITY_PREFIX");
    let rounds: usize = env("VGUEST_SECURITY_ROUNDS").parse().unwrap();
    let own_exe = std::fs::read_link("/proc/self/exe").unwrap();
    let exe_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let kill = |pid: i32| {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    };
    // Every orphan once: (pid, round) of those that had not exec'd.
    let mut orphans = HashSet::new();
    let mut unexeced: Vec<(i32, usize)> = Vec::new();
    let (mut complete, mut ended, mut early) = (0, 0, 0);
    for round in 0..rounds {
        // Every other caller also makes a veth link in the handshake.
        let veth = if round % 2 == 1 { format!("vs4r{round}") } else { String::new() };
        let mut caller = role::host("spawn_loop")
            .env("VGUEST_SECURITY_PREFIX", format!("{prefix}-{round}"))
            .env("VGUEST_SECURITY_VETH", veth)
            .stdout(HostStdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(caller.stdout.take().unwrap());
        read_until_tag(&mut out, "SPAWNING", &mut String::new());
        // Not for correctness: where in a spawn the kill lands. A spawn
        // takes about 1 ms here, some 20 times that under emulation, and
        // a caller's first one longer (it reads the host's layout).
        let span = if slow_host() { 400_000 } else { 20_000 };
        std::thread::sleep(Duration::from_micros(random_below(span)));
        if caller.try_wait().unwrap().is_some() {
            early += 1;
        }
        let _ = caller.kill();
        caller.wait().unwrap();
        for pid in children() {
            let pid = pid as i32;
            if !orphans.insert(pid) {
                continue;
            }
            match exe_of(pid) {
                Some(exe) if exe == own_exe => unexeced.push((pid, round)),
                Some(_) => {
                    kill(pid);
                    complete += 1;
                }
                // A zombie: it ended by itself already.
                None => ended += 1,
            }
        }
        reap_ended();
    }
    // Each caller died at least this long ago.
    let deadline = Instant::now() + Duration::from_secs(1);
    let alive = |pid: i32| stat_fields(pid).is_some_and(|f| f[0] != "Z");
    while unexeced.iter().any(|(p, _)| alive(*p)) && Instant::now() < deadline {
        reap_ended();
        std::thread::sleep(Duration::from_millis(5));
    }
    reap_ended();
    let mut waited = 0;
    for (pid, round) in &unexeced {
        if !alive(*pid) {
            continue;
        }
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if exe_of(*pid).is_some_and(|e| e == own_exe) {
            waited += 1;
            say(format!("WAITED pid={pid} round={round} wchan={wchan}"));
        } else {
            // Released before its caller died, and exec'd since.
            complete += 1;
        }
        kill(*pid);
    }
    for pid in children() {
        kill(pid as i32);
    }
    while waitpid(None, Some(WaitPidFlag::__WALL)).is_ok() {}
    let left = remove_groups(&prefix);
    say(format!(
        "REAPER rounds={rounds} orphans={} unexeced={} ended={ended} waited={waited} complete={complete} \
         early={early} groups_left={}",
        orphans.len(),
        unexeced.len(),
        left.len()
    ));
}

#[test]
fn killed_caller_leaves_no_waiting_guest() {
    if !root_or_skip("killed caller") {
        return;
    }
    let _s = shared();
    let before = HostState::capture();
    let prefix = format!("sec4-{}", std::process::id());
    let rounds = repeats("killed caller", 60, 12);
    // The links' host sides live in a namespace of the test's own.
    let net = TestNet::new();
    let reaper = role::host("reaper")
        .env("VGUEST_SECURITY_PREFIX", &prefix)
        .env("VGUEST_SECURITY_ROUNDS", rounds.to_string())
        .env("VGUEST_SECURITY_NETNS", net.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&reaper.stdout).into_owned();
    let err = String::from_utf8_lossy(&reaper.stderr).into_owned();
    let summary = tagged_line(&out, "REAPER").map(fields).unwrap_or_default();
    let waits: Vec<&str> = tagged(&out).into_iter().filter(|l| l.starts_with("WAITED")).collect();
    println!("killed callers: {summary:?}");
    for line in &waits {
        println!("  {line}");
    }

    // Whatever the dead callers left: their groups (the `vguest` parents
    // stay, as the library keeps them), and host sides of links. A link
    // whose guest side's namespace died goes with it, but the kernel
    // dismantles namespaces in the background (a workqueue, usually done
    // within milliseconds): wait for that first, generously, since the
    // kernel promises no time.
    let groups_left = remove_groups(&prefix);
    let ours = |net: &TestNet| -> Vec<String> {
        let text = net.ip(&["-o", "link"]);
        let names = text.lines().filter_map(|l| Some(l.split(": ").nth(1)?.split('@').next()?.to_string()));
        names.filter(|n| n.starts_with("vs4r")).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ours(&net).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stale = ours(&net);
    for link in &stale {
        net.ip(&["link", "del", link]);
    }
    let links = net.ip(&["-o", "link"]);
    drop(net);
    before.assert_mounts_unchanged("killed caller");
    assert!(reaper.status.success() && !summary.is_empty(), "reaper: {}\n{out}\n{err}", reaper.status);
    assert!(
        groups_left.is_empty() && summary.get("groups_left") == Some(&"0"),
        "groups left: {groups_left:?}"
    );
    assert_eq!(links.lines().count(), 1, "links left in the test's namespace: {links}");
    assert!(stale.is_empty(), "host sides of links outlived their guests by 30 s: {stale:?}");
    assert!(
        summary.get("orphans").is_some_and(|n| *n != "0"),
        "no kill landed in a spawn, so nothing was tested: {summary:?}"
    );
    assert!(
        waits.is_empty(),
        "{} half-made guests still waited a second after their caller died",
        waits.len()
    );
}

// ---------------------------------------------------------------------
// 5. clone3 refused (a check of the test setup).
// ---------------------------------------------------------------------

/// With `VGUEST_TEST_EXPECT_NO_CLONE3=1` (a run under
/// `tests/support/no_clone3.rs`), `clone3` must answer ENOSYS, so that the
/// suite really exercised the library's `clone(2)` fallback.
#[test]
fn clone3_is_refused_when_asked() {
    if !root_or_skip("clone3") {
        return;
    }
    // SAFETY: a null argument of size 0 creates nothing: the kernel
    // refuses the size (EINVAL) before reading it, or a filter answers
    // ENOSYS.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    let err = errno();
    assert_eq!(ret, -1, "clone3 with no arguments returned {ret}");
    let expect_none = std::env::var_os("VGUEST_TEST_EXPECT_NO_CLONE3").is_some_and(|v| v == "1");
    match err {
        libc::ENOSYS if expect_none => println!("clone3 is refused (ENOSYS), as asked"),
        libc::ENOSYS => {
            println!("SKIP clone3: refused (ENOSYS) here, though VGUEST_TEST_EXPECT_NO_CLONE3 is not set")
        }
        _ if expect_none => {
            panic!("VGUEST_TEST_EXPECT_NO_CLONE3=1, but clone3 exists (it answered {})", outcome(err))
        }
        libc::EINVAL | libc::EFAULT => println!("clone3 exists here ({})", outcome(err)),
        _ => panic!("clone3 answered {}", outcome(err)),
    }
}
