//! How guests end when things go wrong: killed with entered processes
//! still alive, dropped without a wait, and owned by a program that is
//! killed before, during and after its spawns.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio as HostStdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::netns::TestNet;
use common::*;
use vguest::{Command, Filesystem, Guest, Network, Resources, Stdio, Veth};

/// Runs `f` on a thread and returns its result, or panics if it has not
/// returned within `limit`: a deadlock fails the test instead of hanging
/// the suite. The limit is far above any honest run.
fn returns_within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("{what} did not return within {limit:?}: deadlock"))
}

fn sleeper(name: &str) -> Guest {
    Guest::builder(name)
        .filesystem(Filesystem::server(rootfs()))
        .resources(Resources::new().pids_max(64))
        .command(Command::new("/bin/sleep").arg("1000"))
        .spawn()
        .unwrap()
}

#[test]
fn a_guest_killed_with_entered_processes_alive_is_waited_for_and_they_report() {
    if !root_or_skip("lifecycle") {
        return;
    }
    let _s = shared();
    let mut guest = sleeper("lc-kill");
    let mut alive = guest.exec(Command::new("/bin/sleep").arg("1000")).unwrap();
    // Ended on its own and not waited for: a zombie the caller holds. Its
    // pidfd polls readable once it has exited (the kernel promises no time
    // for that; the bound only keeps a broken run from hanging).
    let mut ended = guest.exec(Command::new("/bin/true")).unwrap();
    let mut fds = [nix::poll::PollFd::new(ended.pidfd(), nix::poll::PollFlags::POLLIN)];
    assert_eq!(
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(30_000u16)).unwrap(),
        1,
        "true never ended"
    );
    // Dropped while running: its handle kills and reaps it.
    drop(guest.exec(Command::new("/bin/sleep").arg("1000")).unwrap());
    guest.kill().unwrap();
    let (guest, status) = returns_within("Guest::wait", Duration::from_secs(30), move || {
        let status = guest.wait();
        (guest, status)
    });
    assert_eq!(status.unwrap().signal(), Some(9));
    assert!(guest.cgroup_paths().is_empty(), "groups left: {:?}", guest.cgroup_paths());
    assert_eq!(alive.try_wait().unwrap().and_then(|s| s.signal()), Some(9), "the entered sleep");
    assert_eq!(alive.wait().unwrap().signal(), Some(9));
    assert_eq!(ended.wait().unwrap().code(), Some(0), "the entered true");
    assert!(groups_named("lc-kill.").is_empty());
}

#[test]
fn a_guest_dropped_with_entered_processes_alive_goes() {
    if !root_or_skip("lifecycle") {
        return;
    }
    let _s = shared();
    let guest = sleeper("lc-drop");
    let mut alive = guest.exec(Command::new("/bin/sleep").arg("1000")).unwrap();
    returns_within("dropping the guest", Duration::from_secs(30), move || drop(guest));
    assert_eq!(alive.wait().unwrap().signal(), Some(9));
    assert!(groups_named("lc-drop.").is_empty());
}

/// Prints a line tagged `@@` for the test to find, at once.
fn say(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "@@{line}");
    let _ = out.flush();
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is not set"))
}

/// The guests' resources: one limit, so each has groups.
fn limits() -> Resources {
    Resources::new().pids_max(16)
}

/// The name of the pids group process `pid` is in, if it has one of ours.
fn group_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find(|l| l.contains("vguest/")).map(|l| l.rsplit('/').next().unwrap_or_default().to_string())
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

/// How many guests an owner spawns.
const SPAWNS: usize = 6;

/// An owner: spawns guests (groups, a veth whose host end is in the test's
/// namespace, `sleep` as payload) one after another and keeps them, until
/// it is killed. In some rounds the first guest is spawned detached
/// (`kill_on_drop(false)`, named `…d…`), or detached after its spawn (and
/// said so).
#[test]
#[ignore = "a role of a_killed_owner_takes_its_guests_along_and_its_groups_are_swept"]
fn role_owner() {
    if !role::is("owner") {
        return;
    }
    let (prefix, round): (String, usize) = (env("LC_PREFIX"), env("LC_ROUND").parse().unwrap());
    let mut guests = Vec::new();
    say("READY");
    for n in 0..SPAWNS {
        say(format!("SPAWNING {n}"));
        let spawned_detached = round % 10 == 0 && n == 0;
        let name = match spawned_detached {
            true => format!("{prefix}d{round}"),
            false => format!("{prefix}g{round}n{n}"),
        };
        let link = Veth::new(format!("vgc{round}n{n}")).host_netns(env("LC_NETNS"));
        let guest = Guest::builder(name)
            .network(Network::new().veth(link))
            .resources(limits())
            .kill_on_drop(!spawned_detached)
            // Not this role's stdout: the reaper reads it to its end.
            .command(Command::new("/bin/sleep").arg("1000").stdout(Stdio::Null))
            .spawn()
            .unwrap();
        if round % 10 == 5 && n == 1 {
            let pid = guest.detach();
            say(format!("DETACHED {pid}"));
        } else {
            guests.push(guest);
        }
        say(format!("SPAWNED {n}"));
    }
    say("ALL");
    std::thread::sleep(Duration::from_secs(1000));
}

/// The reaper: a child subreaper that starts owners and kills each at a
/// random moment, so their guests become its children. Every guest that
/// was not detached must be gone within a second of its owner's death.
/// Then one spawn beneath the same parent must have removed the dead
/// owners' groups, and the documented sweep finds nothing more.
#[test]
#[ignore = "a role of a_killed_owner_takes_its_guests_along_and_its_groups_are_swept"]
fn role_crash_reaper() {
    if !role::is("crash_reaper") {
        return;
    }
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let prefix = env("LC_PREFIX");
    let rounds: usize = env("LC_ROUNDS").parse().unwrap();
    let reap = || {
        while nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
            .is_ok_and(|s| s.pid().is_some())
        {}
    };
    let (mut outlived, mut orphans, mut after_all) = (Vec::new(), 0, 0);
    let mut detached: Vec<u32> = Vec::new();
    let mut detached_leaves: Vec<String> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..rounds {
        let mut owner = role::host("owner")
            .env("LC_PREFIX", &prefix)
            .env("LC_ROUND", round.to_string())
            .env("LC_NETNS", env("LC_NETNS"))
            .stdout(HostStdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(owner.stdout.take().unwrap());
        // Where the kill lands: after one of the owner's reports (0 READY,
        // then SPAWNING and SPAWNED for each guest, 13 ALL), a little
        // later, so before, during and after spawns, on any host's speed.
        // Every run of two rounds or more has a kill after all spawns, and
        // round 0 (which spawns a detached guest first) is one.
        const ORDER: [usize; 2 * SPAWNS + 2] = [13, 0, 6, 3, 9, 1, 12, 5, 8, 2, 11, 4, 10, 7];
        let target = ORDER[round % ORDER.len()];
        let mut text = String::new();
        let mut reports = 0;
        let mut line = String::new();
        while reports <= target && out.read_line(&mut line).unwrap_or(0) > 0 {
            reports += usize::from(line.contains("@@"));
            text.push_str(&line);
            line.clear();
        }
        std::thread::sleep(Duration::from_micros(random_below(3_000)));
        owner.kill().unwrap();
        let killed = Instant::now();
        owner.wait().unwrap();
        let _ = out.read_to_string(&mut text);
        after_all += usize::from(text.contains("@@ALL"));
        let said: Vec<u32> =
            text.lines().filter_map(|l| l.split("@@DETACHED ").nth(1)?.trim().parse().ok()).collect();
        let mut must_end = Vec::new();
        for pid in children().into_iter().filter(|p| seen.insert(*p)) {
            orphans += 1;
            let leaf = group_of(pid).unwrap_or_default();
            // A complete guest's PID 1 is the init; a half-made one is
            // still this binary, and dies with its owner in any case.
            let complete =
                std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "vguest-init");
            let meant_detached = leaf.starts_with(&format!("{prefix}d")) || said.contains(&pid);
            match meant_detached && complete {
                true => {
                    detached.push(pid);
                    detached_leaves.push(leaf);
                }
                false => must_end.push(pid),
            }
        }
        // The kernel promises no time for a process to die; a second is
        // what the issue asks, and far more than it takes.
        while must_end.iter().any(|p| alive(*p)) && killed.elapsed() < Duration::from_secs(1) {
            reap();
            std::thread::sleep(Duration::from_millis(2));
        }
        outlived.extend(must_end.iter().filter(|p| alive(**p)).map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            (round, *p, comm.trim().to_string(), group_of(*p).unwrap_or_default())
        }));
        reap();
    }
    let detached_alive = detached.iter().filter(|p| alive(**p)).count();
    // Groups in every hierarchy: those of detached guests, and the others.
    let count = |want_detached: bool| {
        groups_named(&prefix)
            .iter()
            .filter(|g| {
                let leaf = g.file_name().unwrap_or_default().to_string_lossy().into_owned();
                detached_leaves.contains(&leaf) == want_detached
            })
            .count()
    };
    let (owned_before, detached_groups) = (count(false), count(true));
    // One spawn beneath the same parent sweeps the dead owners' groups.
    let mut guest =
        Guest::builder("lc-sweeper").resources(limits()).command(Command::new("/bin/true")).spawn().unwrap();
    guest.wait().unwrap();
    let owned_after_spawn = count(false);
    let swept = vguest::resources::sweep(&limits()).unwrap();
    let owned_after_sweep = count(false);
    // The detached guests are the test's to end.
    for pid in &detached {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    while nix::sys::wait::waitpid(None, None).is_ok() {}
    let mut left = groups_named(&prefix);
    left.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for dir in &left {
        let _ = std::fs::remove_dir(dir);
    }
    say(format!(
        "CRASH rounds={rounds} after_all={after_all} orphans={orphans} outlived={} detached={} \
         detached_alive={detached_alive} owned_before={owned_before} detached_groups={detached_groups} \
         owned_after_spawn={owned_after_spawn} swept_groups={} swept_killed={} owned_after_sweep={owned_after_sweep} \
         left={}",
        outlived.len(),
        detached.len(),
        swept.groups,
        swept.killed,
        groups_named(&prefix).len(),
    ));
    for (round, pid, comm, group) in outlived {
        say(format!("OUTLIVED round={round} pid={pid} comm={comm} group={group}"));
    }
}

#[test]
fn a_killed_owner_takes_its_guests_along_and_its_groups_are_swept() {
    if !root_or_skip("killed owner") {
        return;
    }
    let _s = shared();
    let before = HostState::capture();
    let prefix = format!("lc{}-", std::process::id());
    let rounds = repeats("killed owner", 50, 10);
    let net = TestNet::new();
    let reaper = role::host("crash_reaper")
        .env("LC_PREFIX", &prefix)
        .env("LC_ROUNDS", rounds.to_string())
        .env("LC_NETNS", net.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&reaper.stdout).into_owned();
    let line = out.lines().find_map(|l| l.split("@@CRASH ").nth(1)).unwrap_or_default();
    let summary: BTreeMap<&str, &str> = line.split_whitespace().filter_map(|w| w.split_once('=')).collect();
    println!("killed owners ({}): {summary:?}", cgroup_layout());
    // The links go with their guests' namespaces, which the kernel takes
    // down in the background: wait for that, generously.
    let links =
        || net.ip(&["-o", "link"]).lines().filter(|l| l.contains(": vgc") || l.contains(": vgx")).count();
    let deadline = Instant::now() + Duration::from_secs(30);
    while links() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let links_left = links();
    drop(net);
    before.assert_mounts_unchanged("killed owner");
    assert!(
        reaper.status.success() && !summary.is_empty(),
        "reaper: {}\n{out}\n{}",
        reaper.status,
        String::from_utf8_lossy(&reaper.stderr)
    );
    let n = |k: &str| summary.get(k).and_then(|v| v.parse::<usize>().ok()).unwrap_or(usize::MAX);
    assert_eq!(n("outlived"), 0, "guests outlived their owner by a second: {out}");
    assert!(
        n("orphans") > 0 && n("after_all") > 0,
        "no kill landed after a spawn, so nothing was tested: {summary:?}"
    );
    assert_eq!(n("detached_alive"), n("detached"), "a detached guest died with its owner: {summary:?}");
    assert!(n("detached") > 0 && n("detached_groups") > 0, "no detached guest was tested: {summary:?}");
    assert_eq!(n("owned_after_spawn"), 0, "the next spawn left dead owners' groups: {summary:?}");
    assert_eq!(n("owned_after_sweep"), 0);
    assert_eq!(n("left"), 0, "groups left: {summary:?}");
    assert_eq!(links_left, 0, "host ends of links outlived their guests by 30 s");
}
