//! Soundness of the spawn and teardown paths under faults: a child that
//! dies during the handshake, an init whose exec fails after the payload
//! started, a teardown that fails after the guest ended, and a process
//! that forks after it spawned guests.
//!
//! Tests that need a process of their own (a signal disposition, a fork)
//! run the test binary again as a *role* (`common/role.rs`).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use vguest::{Command, Context, Guest, Init, Namespaces, Network, Resources, Rlimit, Step, Veth};

/// Runs role `name` of this binary and returns how it ended and what it
/// printed.
fn run_role(name: &str) -> std::process::Output {
    role::host(name).output().unwrap()
}

/// Polls `f` until it returns true or `limit` passes.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The spawn's handshake write must not raise SIGPIPE when the child died
/// during the handshake: an embedding program that keeps SIGPIPE's
/// default disposition (a C program, or Rust with `-Zon-broken-pipe`)
/// would be killed by it. The role kills the spawn child while the
/// parent sets up its veth link, many times.
#[test]
fn a_child_dying_in_the_handshake_does_not_kill_the_caller() {
    if !root_or_skip("handshake SIGPIPE") {
        return;
    }
    // The role's output pipes must not show in another test's fd count.
    let _s = shared();
    let out = run_role("handshake_with_sigpipe_default");
    let text = String::from_utf8_lossy(&out.stdout);
    let result = text.lines().find_map(|l| l.find("ROLE-RESULT").map(|i| &l[i..])).unwrap_or("");
    println!("{result}");
    assert!(
        out.status.success(),
        "the caller died ({:?}): {result}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Not vacuous: some kill landed inside the handshake.
    assert!(
        result.split_whitespace().any(|w| w.strip_prefix("killed_in_handshake=").is_some_and(|n| n != "0")),
        "no child died during the handshake, so nothing was tested: {result}"
    );
    assert!(
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("vgpipe")),
        "a host-side link was left behind"
    );
}

#[test]
#[ignore = "a role of a_child_dying_in_the_handshake_does_not_kill_the_caller"]
fn role_handshake_with_sigpipe_default() {
    if !role::is("handshake_with_sigpipe_default") {
        return;
    }
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: restores the default disposition; no handler is installed.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
    let rounds = repeats("handshake SIGPIPE", 30, 8);
    let (mut killed_in_handshake, mut spawned, mut refused) = (0, 0, 0);
    for round in 0..rounds {
        let link = format!("vgpipe{}", (std::process::id() as usize * 31 + round) % 100_000);
        let stop = Arc::new(AtomicBool::new(false));
        // Kill every child of this process once the host-side link
        // exists: the parent is then inside the handshake, between
        // reading the child's namespace and releasing it.
        let killer = {
            let (link, stop) = (link.clone(), stop.clone());
            std::thread::spawn(move || {
                let path = Path::new("/sys/class/net").join(&link);
                within(Duration::from_secs(10), || {
                    if path.exists() {
                        for pid in children() {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid as i32),
                                nix::sys::signal::SIGKILL,
                            );
                        }
                        return true;
                    }
                    stop.load(Ordering::Relaxed)
                }) && !stop.load(Ordering::Relaxed)
            })
        };
        let result = Guest::builder("sound-pipe")
            .context(Context::new().namespaces(Namespaces::default() | Namespaces::USER))
            .network(Network::new().veth(Veth::new(&link).address("198.18.77.2/30")))
            .command(Command::new("/bin/true"))
            .spawn();
        stop.store(true, Ordering::Relaxed);
        let killed = killer.join().unwrap();
        match result {
            Ok(mut guest) => {
                spawned += 1;
                let status = guest.wait().unwrap();
                if killed && status.signal() == Some(9) {
                    killed_in_handshake += 1;
                }
            }
            Err(_) => refused += 1,
        }
    }
    println!(
        "ROLE-RESULT rounds={rounds} killed_in_handshake={killed_in_handshake} spawned={spawned} refused={refused}"
    );
}

/// A guest that ended but whose groups could not be removed yet: `wait`
/// reports the status with the failure, removes the links regardless,
/// and a later `wait` finishes the removal.
#[test]
fn wait_reports_the_status_when_teardown_fails() {
    if !root_or_skip("teardown failure") {
        return;
    }
    let _s = shared();
    println!("cgroup layout {}", cgroup_layout());
    let mut outer = Guest::builder("sound-outer")
        .resources(Resources::new().pids_max(64))
        .network(Network::new().veth(Veth::new("vgsndouter")))
        .command(Command::new("/bin/sleep").arg("1000"))
        .spawn()
        .unwrap();
    // A second guest whose process sits inside the first one's groups
    // keeps them from being removed while it runs.
    let mut inner = match cgroup_layout() {
        // Below a group that holds a process, v2 enables no controller
        // ("no internal processes"), so a guest with limits cannot be
        // placed there: a plain guest is moved into a group made there.
        "v2" => {
            let busy = outer.cgroup_paths()[0].join("busy");
            std::fs::create_dir(&busy).unwrap();
            let inner = Guest::builder("sound-inner")
                .command(Command::new("/bin/sleep").arg("1000"))
                .spawn()
                .unwrap();
            std::fs::write(busy.join("cgroup.procs"), inner.id().to_string()).unwrap();
            inner
        }
        _ => {
            let leaf = outer.cgroup_paths()[0].file_name().unwrap().to_string_lossy().into_owned();
            Guest::builder("sound-inner")
                .resources(Resources::new().pids_max(8).parent(format!("vguest/{leaf}")))
                .command(Command::new("/bin/sleep").arg("1000"))
                .spawn()
                .unwrap()
        }
    };
    outer.kill().unwrap();
    let err = outer.wait().unwrap_err();
    assert_eq!(err.status().and_then(|s| s.signal()), Some(9), "{err}");
    assert!(matches!(err, vguest::Error::Teardown { .. }), "{err:?}");
    assert!(!Path::new("/sys/class/net/vgsndouter").exists(), "the link stayed after the guest ended");
    assert!(!outer.cgroup_paths().is_empty(), "the busy groups were forgotten");

    inner.kill().unwrap();
    inner.wait().unwrap();
    let status = outer.wait().unwrap();
    assert_eq!(status.signal(), Some(9));
    assert!(outer.cgroup_paths().is_empty());
    assert!(groups_named("sound-outer").is_empty(), "{:?}", groups_named("sound-outer"));
}

/// A process that forks after spawning a guest: the child's exit (which
/// runs `atexit` handlers) must leave the parent's kept intermediate
/// groups alone, and never wait for a lock another thread held at the
/// fork.
#[test]
fn a_forked_childs_exit_leaves_the_parents_groups() {
    if !root_or_skip("fork and exit") {
        return;
    }
    let _s = shared();
    let out = run_role("fork_and_exit");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("ROLE-RESULT kept"), "{text}");
}

#[test]
#[ignore = "a role of a_forked_childs_exit_leaves_the_parents_groups"]
fn role_fork_and_exit() {
    if !role::is("fork_and_exit") {
        return;
    }
    let parent = format!("vguest-sound-fork-{}", std::process::id());
    let mut guest = Guest::builder("sound-fork")
        .resources(Resources::new().parent(&parent).pids_max(16))
        .command(Command::new("/bin/true"))
        .spawn()
        .unwrap();
    guest.wait().unwrap();
    let kept = groups_named(&parent);
    assert!(!kept.is_empty(), "no intermediate group was kept");
    // SAFETY: the child only calls exit(3), which runs the atexit
    // handlers this test is about; glibc's fork makes malloc usable in it.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            // SAFETY: exit(3) in the forked child, on purpose: it runs the
            // atexit handlers.
            unsafe { libc::exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let exited = within(Duration::from_secs(10), || {
                matches!(
                    nix::sys::wait::waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
                    Ok(nix::sys::wait::WaitStatus::Exited(..))
                )
            });
            if !exited {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(child, None);
                panic!("the forked child hung in its exit handlers");
            }
        }
    }
    let gone: Vec<_> = kept.iter().filter(|d| !d.exists()).collect();
    assert!(gone.is_empty(), "the forked child's exit removed the parent's groups {gone:?}");
    vguest::resources::remove_empty_parents();
    assert!(groups_named(&parent).is_empty(), "{:?}", groups_named(&parent));
    println!("ROLE-RESULT kept {} groups across the child's exit", kept.len());
}

/// The built-in init's exec can fail after the payload's process was
/// started beside it (here: the init's arguments are a few bytes longer
/// than the payload's, which just fit). The spawn reports the init's
/// step and errno, and nothing of the guest is left.
#[test]
fn an_init_that_cannot_exec_is_reported_and_leaves_nothing() {
    if !root_or_skip("init exec failure") {
        return;
    }
    let _x = exclusive();
    // A 1 MiB stack limit caps arguments and environment at 256 KiB
    // (execve(2), "Limits on size of arguments and environment").
    let ctx = || Context::new().rlimit(Rlimit::RLIMIT_STACK, 1 << 20, 1 << 20);
    let spawn = |len: usize, init: Init| {
        let chunk = 100_000;
        let args: Vec<String> =
            (0..len.div_ceil(chunk)).map(|i| "x".repeat(chunk.min(len - i * chunk).max(1))).collect();
        Guest::builder("sound-e2big")
            .context(ctx())
            .init(init)
            .command(Command::new("/bin/true").args(args).env_clear())
            .spawn()
            .and_then(|mut g| g.wait())
    };
    // The init's image is loaded once per process: before counting fds.
    assert!(spawn(0, Init::Builtin).is_ok());
    let before = HostState::capture();
    // The longest arguments the payload alone can exec with.
    let (mut fits, mut too_long) = (0, 300_000);
    assert!(spawn(fits, Init::Payload).is_ok());
    assert!(spawn(too_long, Init::Payload).is_err());
    while too_long - fits > 1 {
        let mid = (fits + too_long) / 2;
        match spawn(mid, Init::Payload) {
            Ok(_) => fits = mid,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::E2BIG), "{e}");
                too_long = mid;
            }
        }
    }
    for _ in 0..repeats("init exec failure", 20, 5) {
        let err = spawn(fits, Init::Builtin).unwrap_err();
        assert_eq!(err.step(), Some(Step::ExecInit), "{err}");
        assert_eq!(err.raw_os_error(), Some(libc::E2BIG), "{err}");
    }
    before.assert_unchanged("init exec failure");
}
