//! Entering a running guest: `Guest::exec` lands in every namespace, the
//! root and the credentials of the guest, and leaves nothing behind.

mod common;

use common::*;
use vguest::{
    CapSet, Capabilities, Command, Context, Error, Filesystem, Guest, IdMap, Namespaces, Rlimit, Stdio, Step,
    User,
};

/// A long-running busybox guest.
fn sleeper(name: &str, ctx: Context) -> Guest {
    Guest::builder(name)
        .context(ctx)
        .filesystem(Filesystem::server(rootfs()))
        .command(Command::new("/bin/sleep").arg("1000"))
        .spawn()
        .unwrap()
}

fn exec_sh(guest: &Guest, script: &str) -> String {
    let out = guest
        .exec(Command::new("/bin/sh").args(["-c", script]).stdout(Stdio::Piped).stderr(Stdio::Piped))
        .unwrap()
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn status_lines(text: &str, keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| format!("{k}: {}", status_field(text, k).unwrap_or("-"))).collect()
}

#[test]
fn entered_process_sees_what_the_guest_sees() {
    if !root_or_skip("enter") {
        return;
    }
    let _s = shared();
    let caps: CapSet = "chown,kill,net_bind_service".parse().unwrap();
    let ctx = Context::new()
        .hostname("entered")
        .user(User::Id { uid: 33, gid: 33 })
        .capabilities(Capabilities::only(caps))
        .rlimit(Rlimit::RLIMIT_NOFILE, 100, 200);
    let guest = sleeper("enter1", ctx);
    let out = exec_sh(
        &guest,
        r#"
        hostname
        ls / | tr '\n' ' '; echo
        cmp -s /proc/self/mountinfo /proc/1/mountinfo && echo same-mounts
        cmp -s /proc/self/net/dev /proc/1/net/dev && echo same-net
        cmp -s /proc/self/cgroup /proc/1/cgroup && echo same-cgroup
        [ "$(readlink /proc/self/ns/pid)" = "$(readlink /proc/1/ns/pid)" ] && echo same-pidns
        echo "pid $$"
        ps -o pid= > /tmp/ps; wc -l < /tmp/ps
        cat /proc/self/status
        echo ===
        cat /proc/2/status
        grep 'open files' /proc/self/limits
        "#,
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("entered"));
    let mut listing: Vec<String> =
        std::fs::read_dir(rootfs()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    listing.sort();
    assert_eq!(lines.next().unwrap(), listing.join(" ") + " ");
    assert_eq!(
        lines.by_ref().take(4).collect::<Vec<_>>(),
        ["same-mounts", "same-net", "same-cgroup", "same-pidns"]
    );
    let pid: u32 = lines.next().unwrap().strip_prefix("pid ").unwrap().parse().unwrap();
    assert!(pid > 2 && pid < 100, "guest-side pid {pid}");
    // init, sleep, the shell, ps: nothing of the host.
    let count: u32 = lines.next().unwrap().trim().parse().unwrap();
    assert_eq!(count, 4, "{out}");
    let rest: Vec<&str> = lines.collect();
    let split = rest.iter().position(|l| *l == "===").unwrap();
    let (mine, payload) = (rest[..split].join("\n"), rest[split + 1..].join("\n"));
    let keys =
        ["Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"];
    assert_eq!(status_lines(&mine, &keys), status_lines(&payload, &keys));
    assert_eq!(status_field(&mine, "CapEff"), Some(format!("{:016x}", caps.bits()).as_str()));
    assert_eq!(status_field(&mine, "Uid"), Some("33\t33\t33\t33"));
    assert!(
        rest.last().unwrap().split_whitespace().collect::<Vec<_>>().ends_with(&["100", "200", "files"]),
        "{out}"
    );
}

#[test]
fn exec_follows_user_and_time_namespaces() {
    if !root_or_skip("enter userns") {
        return;
    }
    let _s = shared();
    let ctx = Context::new()
        .namespaces(Namespaces::default() | Namespaces::USER)
        .uid_map(IdMap::new(0, 400_000, 65_536))
        .gid_map(IdMap::new(0, 400_000, 65_536))
        .uptime_from_zero();
    let guest = sleeper("enter-ns", ctx);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = exec_sh(
        &guest,
        "cat /proc/self/uid_map; id -u; cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time",
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&words[..4], ["0", "400000", "65536", "0"], "{out}");
    let uptime: u64 = words[4].parse().unwrap();
    assert!(uptime < 60, "guest uptime {uptime}");
    // The guest's time namespace is the one its PID 1 gives its children
    // (PID 1 itself stays in the host's where exec does not switch).
    let init_time = std::fs::read_link(format!("/proc/{}/ns/time_for_children", guest.id())).unwrap();
    assert_eq!(words[5], init_time.to_str().unwrap(), "not in the guest's time namespace");
}

#[test]
fn exec_errors_are_typed_and_leave_nothing() {
    if !root_or_skip("enter errors") {
        return;
    }
    let _x = exclusive();
    let mut guest = sleeper("enter-err", Context::new());
    let before = HostState::capture();
    let err = guest.exec(Command::new("/no/such/program")).map(|_| ()).unwrap_err();
    assert_eq!((err.step(), err.raw_os_error()), (Some(Step::Exec), Some(libc::ENOENT)), "{err}");
    let err = guest.exec(Command::new("no-such-program")).map(|_| ()).unwrap_err();
    assert_eq!(err.step(), Some(Step::ResolveProgram), "{err}");
    before.assert_unchanged("failed execs");

    guest.kill().unwrap();
    guest.wait().unwrap();
    let before = HostState::capture();
    let err = guest.exec(Command::new("/bin/true")).map(|_| ()).unwrap_err();
    assert!(matches!(&err, Error::Exited { guest } if guest == "enter-err"), "{err}");
    before.assert_unchanged("exec into an exited guest");

    // Exited but not yet reaped: the pidfd still names a zombie.
    let mut guest = sleeper("enter-zombie", Context::new());
    let p = guest.exec(Command::new("/bin/true")).unwrap();
    drop(p);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(guest.id() as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = HostState::capture();
    let err = guest.exec(Command::new("/bin/true")).map(|_| ()).unwrap_err();
    assert!(matches!(&err, Error::Exited { .. }), "{err}");
    before.assert_unchanged("exec into a dead guest");
    guest.wait().unwrap();
}

#[test]
fn a_thousand_execs_leave_no_zombies() {
    if !root_or_skip("1000 execs") {
        return;
    }
    let _s = shared();
    let guest = sleeper("enter-many", Context::new());
    for i in 0..1000 {
        let status = guest.exec(Command::new("/bin/true")).unwrap().wait().unwrap();
        assert!(status.success(), "exec {i}: {status}");
    }
    // Inside: only init, the sleeping payload, the shell and ps.
    let out = exec_sh(&guest, "ps -o stat=,pid= > /tmp/ps; cat /tmp/ps");
    assert!(!out.lines().any(|l| l.trim_start().starts_with('Z')), "zombies inside: {out}");
    assert_eq!(out.lines().count(), 4, "{out}");
    // Outside: the guest's init is our only child from this guest, and
    // no zombie of ours remains.
    for pid in children() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(!stat.contains(") Z "), "zombie child {pid}: {stat}");
    }
}

#[test]
fn attach_enters_a_guest_by_pid_with_its_identity() {
    if !root_or_skip("attach") {
        return;
    }
    let _s = shared();
    let caps: CapSet = "kill,setuid".parse().unwrap();
    let ctx = Context::new()
        .namespaces(Namespaces::default() | Namespaces::USER)
        .uid_map(IdMap::new(0, 500_000, 65_536))
        .gid_map(IdMap::new(0, 500_000, 65_536))
        .user(User::Id { uid: 70, gid: 71 })
        .groups([72])
        .capabilities(Capabilities::only(caps))
        .rlimit(Rlimit::RLIMIT_NOFILE, 77, 88);
    let guest = sleeper("attached", ctx);
    let attached = Guest::attach(guest.id()).unwrap();
    assert!(attached.is_running());
    let out = attached
        .exec(
            Command::new("/bin/sh")
                .args(["-c", "hostname; id; cat /proc/self/status; grep 'open files' /proc/self/limits"])
                .stdout(Stdio::Piped),
        )
        .unwrap()
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = String::from_utf8(out.stdout).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("attached"));
    assert_eq!(lines.next(), Some("uid=70 gid=71 groups=72"), "{out}");
    assert_eq!(status_field(&out, "CapEff"), Some(format!("{:016x}", caps.bits()).as_str()));
    assert_eq!(status_field(&out, "CapBnd"), Some(format!("{:016x}", caps.bits()).as_str()));
    assert_eq!(status_field(&out, "NoNewPrivs"), Some("1"));
    assert!(out.contains("77                   88"), "{out}");
    drop(guest);
    assert!(!attached.is_running());
    let err = attached.exec(Command::new("/bin/true")).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Exited { .. }), "{err}");
    let err = Guest::attach(attached.id()).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Exited { .. }), "{err}");
}

/// The pids listed in `cgroup.procs` of `dir`.
fn procs_of(dir: &std::path::Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn entered_processes_join_the_guests_cgroups_and_obey_its_limits() {
    if !root_or_skip("enter cgroups") {
        return;
    }
    // Exclusive: other tests count this process's children.
    let _x = exclusive();
    if occupied_leaf() {
        // Limits need a delegated parent there, which the resource tests
        // cover; the join itself is the same code path.
        println!("SKIP enter cgroups: occupied leaf, limits need delegation (see tests/resources.rs)");
        return;
    }
    println!("enter cgroups: cgroup layout {}", cgroup_layout());
    let mut guest = Guest::builder("enter-cg")
        .filesystem(Filesystem::server(rootfs()))
        .resources(vguest::Resources::new().pids_max(8))
        .command(Command::new("/bin/sleep").arg("1000"))
        .spawn()
        .unwrap();
    let dirs: Vec<_> = guest.cgroup_paths().into_iter().map(|p| p.to_path_buf()).collect();
    assert!(!dirs.is_empty());
    // An entered process is in every group of the guest, seen from the host.
    let mut sleeper = guest.exec(Command::new("/bin/sleep").arg("1000")).unwrap();
    for dir in &dirs {
        assert!(procs_of(dir).contains(&sleeper.id()), "{} does not list {}", dir.display(), sleeper.id());
    }
    // The guest's pids limit covers it: with the payload, its init and
    // this sleep in the group, a fork bomb entered later stops at 8.
    // busybox sh exits when a fork fails: the loop runs in a subshell.
    let bomb = "(i=0; while [ $i -lt 20 ]; do sleep 100 </dev/null >/dev/null 2>&1 & i=$((i+1)); done) 2>/dev/null || echo refused";
    assert_eq!(exec_sh(&guest, bomb), "refused\n");
    let stats = guest.stats().unwrap();
    assert!(stats.pids_current.is_some_and(|n| (4..=8).contains(&n)), "{stats:?}");
    // And kill_all reaches it.
    guest.kill_all().unwrap();
    let status = sleeper.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");
    guest.wait().unwrap();
    for dir in &dirs {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    println!(
        "enter cgroups [{}]: entered processes joined {dirs:?} and were held at pids.max 8",
        cgroup_layout()
    );
}

#[test]
fn an_attached_guest_reports_stats_and_stops_with_its_groups_removed() {
    if !root_or_skip("attach stop") {
        return;
    }
    let _x = exclusive();
    if occupied_leaf() {
        println!("SKIP attach stop: occupied leaf, limits need delegation (see tests/resources.rs)");
        return;
    }
    let mut guest = Guest::builder("attach-stop")
        .filesystem(Filesystem::server(rootfs()))
        .resources(vguest::Resources::new().memory_max(64 << 20).pids_max(32))
        .command(
            Command::new("/bin/sh")
                .args(["-c", "trap 'exit 0' TERM; echo ready; sleep 1000 & wait"])
                .stdout(Stdio::Piped),
        )
        .spawn()
        .unwrap();
    // The payload must have installed its trap before stop sends SIGTERM.
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(guest.stdout.take().unwrap()), &mut ready)
        .unwrap();
    assert_eq!(ready, "ready\n");
    let dirs: Vec<_> = guest.cgroup_paths().into_iter().map(|p| p.to_path_buf()).collect();
    let pid = guest.detach();
    let attached = Guest::attach(pid).unwrap();
    let mut found: Vec<_> = attached.cgroup_paths().into_iter().map(|p| p.to_path_buf()).collect();
    let mut made = dirs.clone();
    found.sort();
    made.sort();
    assert_eq!(found, made, "attach found other groups than spawn made");
    let entered = attached.exec(Command::new("/bin/sleep").arg("1000")).unwrap();
    assert!(dirs.iter().all(|d| procs_of(d).contains(&entered.id())));
    let stats = attached.stats().unwrap();
    assert!(stats.pids_current.is_some_and(|n| n >= 3), "{stats:?}");
    assert!(stats.memory_current.is_some_and(|n| n > 0), "{stats:?}");
    attached.pause().unwrap();
    attached.resume().unwrap();
    // PID 1 of a PID namespace finishes exiting only once every process
    // of the namespace has been reaped (pid_namespaces(7)), and the
    // entered process is ours to reap: wait for it meanwhile.
    let mut entered = entered;
    let reaper = std::thread::spawn(move || entered.wait().unwrap());
    attached.stop(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(reaper.join().unwrap().signal(), Some(9));
    // This process spawned the guest, so it reaps its PID 1.
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None).unwrap();
    assert!(matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)), "{status:?}");
    for dir in &dirs {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    println!("attach stop [{}]: stats {stats:?}; stopped, groups removed", cgroup_layout());
}
