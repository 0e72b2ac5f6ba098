//! The core: spawn, the context layer, the built-in init, exit statuses,
//! bad input and spawning from busy multi-threaded programs.
//!
//! These guests have no root filesystem of their own yet, so they run the
//! host's `/bin/sh` and look at themselves through `/proc/self`.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::*;
use vguest::{
    CapSet, Capabilities, Command, Context, ContextError, Error, Guest, IdMap, Init, Namespaces, Rlimit,
    Signal, Stdio, Step, User,
};

#[test]
fn payload_is_pid_2_under_builtin_init_and_pid_1_alone() {
    if !root_or_skip("pid namespace") {
        return;
    }
    let _s = shared();
    // The shell reads its own status (a child like grep would be pid 3).
    let script =
        "echo $$; while read -r k v; do [ \"$k\" = NSpid: ] && echo \"$v\"; done < /proc/self/status; true";
    let (status, out, _) = sh(Guest::builder("pid2"), script);
    assert!(status.success(), "{status}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "2", "{out}");
    // NSpid lists the pid in every namespace from the host down.
    assert!(lines[1].ends_with(" 2") || lines[1].ends_with("\t2"), "{out}");
    let (status, out, _) = sh(Guest::builder("pid1").init(Init::Payload), "echo $$");
    assert!(status.success());
    assert_eq!(out.trim(), "1");
}

#[test]
fn hostname_inside_is_set_and_host_keeps_its_own() {
    if !root_or_skip("hostname") {
        return;
    }
    let _s = shared();
    let before = nix::unistd::gethostname().unwrap();
    let ctx = Context::new().hostname("web1.inside").domainname("example.test");
    let (status, out, _) =
        sh(Guest::builder("web1").context(ctx), "hostname; cat /proc/sys/kernel/domainname");
    assert!(status.success());
    assert_eq!(out, "web1.inside\nexample.test\n");
    // Without an explicit hostname, the guest's name is used.
    let (_, out, _) = sh(Guest::builder("named-guest"), "hostname");
    assert_eq!(out.trim(), "named-guest");
    assert_eq!(nix::unistd::gethostname().unwrap(), before, "host hostname changed");
}

fn status_of(builder: vguest::GuestBuilder) -> String {
    let (status, out, err) = sh(builder, "cat /proc/self/status");
    assert!(status.success(), "{status}: {err}");
    out
}

#[test]
fn capability_sets_and_no_new_privs_are_exact() {
    if !root_or_skip("capabilities") {
        return;
    }
    let _s = shared();
    let hex = |set: CapSet| format!("{:016x}", set.bits());
    // Default: the server set for a root payload, nothing ambient.
    let text = status_of(Guest::builder("caps-default"));
    let server = CapSet::server_default();
    assert_eq!(status_field(&text, "CapBnd"), Some(hex(server).as_str()));
    assert_eq!(status_field(&text, "CapEff"), Some(hex(server).as_str()));
    assert_eq!(status_field(&text, "CapPrm"), Some(hex(server).as_str()));
    assert_eq!(status_field(&text, "CapAmb"), Some(hex(CapSet::EMPTY).as_str()));
    assert_eq!(status_field(&text, "NoNewPrivs"), Some("1"));
    assert!(!server.contains(vguest::Capability::CAP_SYS_ADMIN));

    // Exactly two capabilities for a non-root payload, via ambient.
    let two: CapSet = "net_bind_service,kill".parse().unwrap();
    let ctx = Context::new().user(User::Id { uid: 1000, gid: 1000 }).capabilities(Capabilities::only(two));
    let text = status_of(Guest::builder("caps-user").context(ctx));
    for field in ["CapBnd", "CapEff", "CapPrm", "CapAmb", "CapInh"] {
        assert_eq!(status_field(&text, field), Some(hex(two).as_str()), "{field}\n{text}");
    }
    assert_eq!(status_field(&text, "Uid"), Some("1000\t1000\t1000\t1000"));
    assert_eq!(status_field(&text, "Groups"), Some(""), "supplementary groups must be dropped");

    // No capabilities at all, and no_new_privs off on request.
    let ctx = Context::new().capabilities(Capabilities::none()).no_new_privs(false);
    let text = status_of(Guest::builder("caps-none").context(ctx));
    assert_eq!(status_field(&text, "CapBnd"), Some(hex(CapSet::EMPTY).as_str()));
    assert_eq!(status_field(&text, "CapEff"), Some(hex(CapSet::EMPTY).as_str()));
    assert_eq!(status_field(&text, "NoNewPrivs"), Some("0"));
}

#[test]
fn rlimits_show_in_proc_limits() {
    if !root_or_skip("rlimits") {
        return;
    }
    let _s = shared();
    let ctx = Context::new().rlimit(Rlimit::RLIMIT_NOFILE, 256, 1024).rlimit(Rlimit::RLIMIT_CORE, 0, 0);
    let (status, out, _) = sh(Guest::builder("limits").context(ctx), "cat /proc/self/limits");
    assert!(status.success());
    let line = |name: &str| -> Vec<String> {
        let l = out.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {out}"));
        l[name.len()..].split_whitespace().map(String::from).collect()
    };
    assert_eq!(&line("Max open files")[..2], ["256", "1024"]);
    assert_eq!(&line("Max core file size")[..2], ["0", "0"]);
}

#[test]
fn user_namespace_maps_ids() {
    if !root_or_skip("user namespace") {
        return;
    }
    let _s = shared();
    let ctx = Context::new()
        .namespaces(Namespaces::default() | Namespaces::USER)
        .uid_map(IdMap::new(0, 200_000, 65_536))
        .gid_map(IdMap::new(0, 200_000, 65_536))
        .user(User::Id { uid: 33, gid: 33 });
    let (status, out, err) =
        sh(Guest::builder("userns").context(ctx), "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g");
    assert!(status.success(), "{status} {err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["0", "200000", "65536", "0", "200000", "65536", "33", "33"], "{out}");
}

fn uptime_secs(text: &str) -> f64 {
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn time_namespace_uptime_starts_near_zero() {
    if !root_or_skip("time namespace") {
        return;
    }
    let _s = shared();
    let host_before = uptime_secs(&std::fs::read_to_string("/proc/uptime").unwrap());
    let started = Instant::now();
    let (status, out, err) =
        sh(Guest::builder("uptime").context(Context::new().uptime_from_zero()), "cat /proc/uptime");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(status.success(), "{err}");
    let guest = uptime_secs(&out);
    // The guest's clock cannot have run longer than the spawn took.
    assert!(guest <= elapsed + 0.02, "guest uptime {guest} > {elapsed}");
    assert!(host_before > guest, "host {host_before} vs guest {guest}");

    // Fixed offsets: a guest that looks booted ten days earlier.
    let ten_days = 10 * 86_400;
    let (_, out, _) =
        sh(Guest::builder("uptime2").context(Context::new().clock_offsets(0, ten_days)), "cat /proc/uptime");
    let host = uptime_secs(&std::fs::read_to_string("/proc/uptime").unwrap());
    let diff = uptime_secs(&out) - host;
    assert!((diff - ten_days as f64).abs() < 5.0, "offset {diff}");
}

#[test]
fn orphans_are_reaped_by_the_builtin_init() {
    if !root_or_skip("orphans") {
        return;
    }
    let _s = shared();
    // Three orphans that die quickly, then a payload that lives on.
    let script = "for i in 1 2 3; do (sleep 0.1 &) ; done; echo started; sleep 60";
    let mut guest = Guest::builder("reaper")
        .command(Command::new("/bin/sh").args(["-c", script]).stdout(Stdio::Piped))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(guest.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "started\n");
    // PID 1's children: once the orphans are gone (they sleep 0.1 s),
    // only the payload, and it is no zombie. Polled, not timed.
    let init = guest.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let kids = loop {
        let text = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap();
        let kids: Vec<String> = text.split_whitespace().map(String::from).collect();
        if kids.len() == 1 || Instant::now() > deadline {
            break kids;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(kids.len(), 1, "init's children: {kids:?}");
    let state = std::fs::read_to_string(format!("/proc/{}/status", kids[0])).unwrap();
    assert_ne!(status_field(&state, "State").map(|s| &s[..1]), Some("Z"));
    guest.kill().unwrap();
    assert_eq!(guest.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn signals_reach_the_payload_and_statuses_come_back_exactly() {
    if !root_or_skip("signals") {
        return;
    }
    let _s = shared();
    let script = r#"trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.02; done"#;
    let mut guest = Guest::builder("sig")
        .command(Command::new("/bin/sh").args(["-c", script]).stdout(Stdio::Piped))
        .spawn()
        .unwrap();
    let mut out = BufReader::new(guest.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    guest.signal(Signal::SIGTERM).unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "got TERM\n");
    assert_eq!(guest.wait().unwrap().code(), Some(42));

    for code in [0, 1, 7, 255] {
        let (status, _, _) = sh(Guest::builder("code"), &format!("exit {code}"));
        assert_eq!(status.code(), Some(code), "{status}");
    }
    // Killed by a signal: the status says which, not 128 + n.
    let (status, _, _) = sh(Guest::builder("killed"), "kill -USR1 $$; sleep 5");
    assert_eq!((status.code(), status.signal()), (None, Some(libc::SIGUSR1)), "{status}");
    let (status, _, _) = sh(Guest::builder("killed-alone").init(Init::Payload), "exit 3");
    assert_eq!(status.code(), Some(3));
}

#[test]
fn builtin_init_forwards_hangup_interrupt_and_user_signals() {
    if !root_or_skip("signal forwarding") {
        return;
    }
    let _s = shared();
    // The payload (pid 2, behind the built-in init) traps each signal and
    // says which it got; its own child `sleep` keeps default handlers.
    let script = r#"for s in HUP INT USR1 USR2; do trap "echo got $s" $s; done
        trap 'echo got TERM; exit 0' TERM
        echo ready; while :; do sleep 0.02; done"#;
    let mut guest = Guest::builder("sigfwd")
        .command(Command::new("/bin/sh").args(["-c", script]).stdout(Stdio::Piped))
        .spawn()
        .unwrap();
    let mut out = BufReader::new(guest.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    for (signal, name) in [
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGINT, "INT"),
        (Signal::SIGUSR1, "USR1"),
        (Signal::SIGUSR2, "USR2"),
        (Signal::SIGTERM, "TERM"),
    ] {
        assert_eq!(guest.try_wait().unwrap(), None, "the guest ended before {name}");
        guest.signal(signal).unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, format!("got {name}\n"));
    }
    assert_eq!(guest.wait().unwrap().code(), Some(0));
}

/// Spawns a bad guest and checks the error and that nothing leaked.
fn expect_spawn_error(builder: vguest::GuestBuilder, check: impl Fn(&Error) -> bool) -> Error {
    let before = HostState::capture();
    let err = builder.spawn().map(|_| ()).expect_err("spawn should fail");
    assert!(check(&err), "unexpected error: {err} ({err:?})");
    before.assert_unchanged(&err.to_string());
    err
}

#[test]
fn bad_input_gives_typed_errors_and_leaves_nothing() {
    if !root_or_skip("bad input") {
        return;
    }
    let _x = exclusive();
    // The first spawn of a process loads the built-in init into a memfd
    // that stays open for later spawns; load it before counting fds.
    assert!(sh(Guest::builder("warm"), "true").0.success());
    let err = expect_spawn_error(Guest::builder("bad").command(Command::new("/no/such/program")), |e| {
        e.step() == Some(Step::Exec) && e.raw_os_error() == Some(libc::ENOENT)
    });
    assert!(err.to_string().contains("/no/such/program"), "{err}");
    // With a time namespace the init forks the payload (the payload's
    // process may not share memory then): its failed exec is reported too.
    let timed = Guest::builder("bad").context(Context::new().uptime_from_zero());
    expect_spawn_error(timed.command(Command::new("/no/such/program")), |e| {
        e.step() == Some(Step::Exec) && e.raw_os_error() == Some(libc::ENOENT)
    });
    expect_spawn_error(Guest::builder("bad").command(Command::new("no-such-program-in-path")), |e| {
        e.step() == Some(Step::ResolveProgram) && e.raw_os_error() == Some(libc::ENOENT)
    });
    let plain = std::env::temp_dir().join(format!("vguest-not-executable-{}", std::process::id()));
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    for init in [Init::Builtin, Init::Payload] {
        expect_spawn_error(Guest::builder("bad").init(init).command(Command::new(&plain)), |e| {
            e.step() == Some(Step::Exec) && e.raw_os_error() == Some(libc::EACCES)
        });
    }
    std::fs::remove_file(&plain).unwrap();
    expect_spawn_error(Guest::builder("bad").context(Context::new().hostname("h".repeat(65))), |e| {
        matches!(e, Error::Context(ContextError::InvalidName { what: "hostname", .. }))
    });
    expect_spawn_error(Guest::builder("bad").context(Context::new().hostname("a\0b")), |e| {
        matches!(e, Error::Context(ContextError::InvalidName { what: "hostname", .. }))
    });
    // This machine's root may lack some capabilities (CAP_SYS_RESOURCE on
    // the development VM): asking for all of them names what is missing.
    let held: CapSet = caps_held();
    if held != CapSet::all() {
        expect_spawn_error(
            Guest::builder("bad").context(Context::new().capabilities(Capabilities::only(CapSet::all()))),
            |e| matches!(e, Error::Context(ContextError::CapabilityNotHeld { missing }) if !missing.is_empty()),
        );
    }
    // Capability names reach a guest through CapSet's parser: an unknown
    // one, alone or in a list, fails with the name as given, and `?`
    // carries that into the crate's Error before anything is created.
    let spawn_with_caps = |names: &str| -> Result<(), Error> {
        let caps = Capabilities::only(names.parse::<CapSet>()?);
        Guest::builder("bad").context(Context::new().capabilities(caps)).spawn().map(drop)
    };
    for (names, unknown) in [
        ("CAP_FLY", "CAP_FLY"),
        ("chown, fly, kill", "fly"),
        ("net_bind_service,CAP_SYS_TELEPORT", "CAP_SYS_TELEPORT"),
    ] {
        let before = HostState::capture();
        let err = spawn_with_caps(names).unwrap_err();
        assert!(
            matches!(&err, Error::Context(ContextError::UnknownCapability { name }) if name == unknown),
            "{names}: {err}"
        );
        assert_eq!(err.to_string(), format!("unknown capability {unknown:?}"));
        before.assert_unchanged(&err.to_string());
    }
    let ctx = Context::new()
        .namespaces(Namespaces::default() | Namespaces::USER)
        .uid_map(IdMap::new(0, 300_000, 100))
        .user(User::Id { uid: 500, gid: 0 });
    expect_spawn_error(Guest::builder("bad").context(ctx), |e| {
        matches!(e, Error::Context(ContextError::UnmappedId { kind: "uid", id: 500 }))
    });
    expect_spawn_error(
        Guest::builder("bad").context(Context::new().user(User::Name("nosuchuser".into()))),
        |e| matches!(e, Error::Context(ContextError::UnknownUser { .. })),
    );
    let err = expect_spawn_error(
        Guest::builder("bad").command(Command::new("/bin/true").current_dir("/no/dir")),
        |e| e.step() == Some(Step::Chdir) && e.raw_os_error() == Some(libc::ENOENT),
    );
    assert!(err.to_string().contains("/no/dir"), "{err}");
    expect_spawn_error(Guest::builder("bad/name"), |e| matches!(e, Error::InvalidName { .. }));
}

fn caps_held() -> CapSet {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bits = u64::from_str_radix(status_field(&status, "CapPrm").unwrap(), 16).unwrap();
    CapSet::all().iter().filter(|c| bits & c.bitmask() != 0).collect()
}

#[test]
fn spawning_from_busy_allocating_threads_never_hangs() {
    if !root_or_skip("busy threads") {
        return;
    }
    let _s = shared();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut keep = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let v: Vec<u8> = vec![i as u8; 64 + (keep.len() % 4096)];
                    keep.push(v);
                    if keep.len() > 256 {
                        keep.clear();
                    }
                }
            })
        })
        .collect();
    let spawns = repeats("busy threads", 2000, 100);
    let (tx, rx) = std::sync::mpsc::channel();
    let spawner = std::thread::spawn(move || {
        let builder = Guest::builder("busy").command(Command::new("/bin/true"));
        for i in 0..spawns {
            let status = builder.spawn().unwrap().wait().unwrap();
            assert!(status.success(), "spawn {i}: {status}");
        }
        tx.send(()).unwrap();
    });
    let done = rx.recv_timeout(Duration::from_secs(600));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(done.is_ok(), "{spawns} spawns did not finish in 10 minutes: hang");
    spawner.join().unwrap();
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn four_threads_spawn_concurrently() {
    if !root_or_skip("concurrent spawns") {
        return;
    }
    let _s = shared();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..50 {
                    let name = format!("conc-{t}-{i}");
                    let (status, out, _) = sh(Guest::builder(&name), "hostname");
                    assert!(status.success());
                    assert_eq!(out.trim(), name);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn kill_on_drop_and_detach() {
    if !root_or_skip("drop") {
        return;
    }
    let _s = shared();
    let guest = Guest::builder("dropped").command(Command::new("/bin/sleep").arg("30")).spawn().unwrap();
    let pid = guest.id();
    drop(guest);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "guest survived its drop");

    let guest = Guest::builder("detached").command(Command::new("/bin/sleep").arg("0.3")).spawn().unwrap();
    let pidfd = guest.pidfd().try_clone_to_owned().unwrap();
    let pid = guest.detach();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "detached guest was killed");
    // Still our child: reap it so the test leaves no zombie.
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    use std::os::fd::AsFd;
    waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED | WaitPidFlag::__WALL).unwrap();
}

#[test]
fn stdin_pipes_to_the_payload() {
    if !root_or_skip("stdin") {
        return;
    }
    let _s = shared();
    use std::io::{Read, Write};
    let mut guest = Guest::builder("cat")
        .command(Command::new("/bin/cat").stdin(Stdio::Piped).stdout(Stdio::Piped))
        .spawn()
        .unwrap();
    guest.stdin.take().unwrap().write_all(b"through the guest\n").unwrap();
    let mut out = String::new();
    guest.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out, "through the guest\n");
    assert!(guest.wait().unwrap().success());
}

#[test]
fn the_caller_stays_dumpable_after_guests_change_ids() {
    if !root_or_skip("dumpable") {
        return;
    }
    // Exclusive: while any spawn is in flight the flag is cleared on
    // purpose (it protects our memory from the child's new identity).
    let _x = exclusive();
    let dumpable = || nix::sys::prctl::get_dumpable().unwrap();
    assert!(dumpable(), "precondition");
    let ctx = Context::new().user(User::Id { uid: 1000, gid: 1000 });
    let (status, _, _) = sh(Guest::builder("dumpable").context(ctx), "true");
    assert!(status.success());
    assert!(dumpable(), "the caller lost its dumpable flag");
}

#[test]
fn parent_death_signal_ends_the_guest_with_its_spawning_thread() {
    if !root_or_skip("parent death signal") {
        return;
    }
    let _s = shared();
    // PR_SET_PDEATHSIG fires when the spawning *thread* ends.
    let spawner = std::thread::spawn(|| {
        let ctx = Context::new().parent_death_signal(Signal::SIGKILL);
        Guest::builder("orphaned").context(ctx).command(Command::new("/bin/sleep").arg("60")).spawn().unwrap()
    });
    let mut guest = spawner.join().unwrap();
    let status = guest.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");

    // Without it, the guest outlives its spawning thread.
    let spawner = std::thread::spawn(|| {
        Guest::builder("kept").command(Command::new("/bin/sleep").arg("60")).spawn().unwrap()
    });
    let mut guest = spawner.join().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(guest.try_wait().unwrap(), None);
}
