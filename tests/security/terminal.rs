//! The caller's terminal: a guest process that inherited it (a spawned
//! payload, a process exec'd into a guest) tries to push input into it
//! (`TIOCSTI`, `TIOCLINUX`) and to take it as its controlling terminal,
//! directly and from a session of its own. The test runs the caller on a
//! pty of its own and plays the terminal's user.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio as HostStdio;
use std::time::{Duration, Instant};

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use vguest::{Command, Guest, Stdio};

use crate::common::*;
use crate::support::*;

/// The controlling terminal's device number (0 for none).
fn tty_nr(pid: impl fmt::Display) -> Option<i64> {
    stat_fields(pid)?.get(4)?.parse().ok()
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
        guest_role(module_path!(), "tty_attacker")
            .env("VGUEST_SECURITY_LABEL", label)
            .env("VGUEST_SECURITY_MARKER", &marker)
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
        let mut cmd = role::host_in(module_path!(), "tty_caller");
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
