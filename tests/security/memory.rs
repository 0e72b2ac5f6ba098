//! The caller's memory: while a spawn or an exec runs, processes of ours
//! share (or copy) the caller's memory; a racer inside a guest attacks
//! every new process it can see (`/proc/PID/mem`, `ptrace`) and must
//! never read the canary planted there. The `dumpable` role checks that
//! spawns leave the caller's own dumpable flag as it was.

mod racer;

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use vguest::{Command, Context, Filesystem, Guest, Namespaces, Stdio};

use self::racer::{Race, Racer};
use crate::common::*;
use crate::support::*;

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
        let mut cmd = guest_role(module_path!(), "racer")
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
    let role = role::host_in(module_path!(), "dumpable").output().unwrap();
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
