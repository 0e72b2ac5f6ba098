//! Randomized guest lives, one after another, each of a kind chosen at
//! random: a good guest, bad input, a kill from outside, a drop without a
//! wait, `kill_all`, an OOM kill, a fork bomb against `pids.max`, an exec
//! then a kill, a pause then a kill. After every life the caller holds no
//! new descriptor, child or zombie, and its mount table is unchanged;
//! every 50 lives and at the end no group or link of ours is left.
//!
//! CI runs 300 lives (100 on a slow host); the full count:
//! `VGUEST_TEST_CYCLES=10000 cargo test --release --test cycles -- --nocapture`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use vguest::{Command, Error, Filesystem, Guest, GuestBuilder, Network, Resources, Stdio, Veth};

const KINDS: [&str; 9] = [
    "good",
    "bad input",
    "outside kill",
    "drop",
    "kill_all",
    "oom",
    "fork bomb",
    "exec then kill",
    "pause then kill",
];

/// A guest with a busybox root; every other one with a veth, every third
/// with the payload as PID 1 (no init).
fn guest(n: usize, limits: Resources, script: &str) -> GuestBuilder {
    let mut b = Guest::builder(format!("cy-{n}"))
        .filesystem(Filesystem::server(rootfs()))
        .resources(limits)
        .command(Command::new("/bin/sh").args(["-c", script]).stdout(Stdio::Null).stderr(Stdio::Null));
    if n % 2 == 0 {
        b = b.network(Network::new().veth(Veth::new("vgcy0").address("198.18.203.2/30")));
    }
    b
}

fn limits() -> Resources {
    Resources::new().pids_max(16).memory_max(64 << 20)
}

/// One life of `kind`; returns what it saw, for the tally.
fn life(n: usize, kind: usize) -> Result<&'static str, Error> {
    Ok(match KINDS[kind] {
        "good" => {
            let status = guest(n, limits(), "exit 3").spawn()?.wait()?;
            assert_eq!(status.code(), Some(3));
            "exited"
        }
        "bad input" => {
            // A program the guest does not have: a typed setup error.
            let b = Guest::builder(format!("cy-{n}"))
                .filesystem(Filesystem::server(rootfs()))
                .resources(limits())
                .command(Command::new("/no/such/program"));
            match b.spawn() {
                Err(Error::Setup(_)) => "refused",
                Err(e) => panic!("bad input: not a setup error: {e} ({e:?})"),
                Ok(_) => panic!("bad input: spawned"),
            }
        }
        "outside kill" => {
            let mut g = guest(n, limits(), "sleep 1000").spawn()?;
            // Its PID 1 is our unreaped child: the pid is not reused.
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(g.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            assert_eq!(g.wait()?.signal(), Some(9));
            "killed"
        }
        "drop" => {
            drop(guest(n, limits(), "sleep 1000").spawn()?);
            "dropped"
        }
        "kill_all" => {
            let mut g = guest(n, limits(), "sleep 1000 & sleep 1000").spawn()?;
            g.kill_all()?;
            g.wait()?;
            "killed all"
        }
        "oom" => {
            let limits = Resources::new().pids_max(16).memory_max(16 << 20).memory_swap_max(0);
            let script = "x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo ${#x}";
            let status = guest(n, limits, script).spawn()?.wait()?;
            assert!(!status.success(), "a 100 MB string fit in 16 MiB: {status}");
            "oom"
        }
        "fork bomb" => {
            let mut g = guest(n, limits(), "while :; do sleep 1000 & done").spawn()?;
            // pids.max holds it: the shell's fork fails at 16 tasks, and
            // busybox's shell gives up then (the guest ends) or forks on.
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if g.try_wait()?.is_some() {
                    return Ok("bomb gave up");
                }
                if g.stats()?.pids_current.unwrap_or(0) >= 16 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            g.kill_all()?;
            g.wait()?;
            "bomb held"
        }
        "exec then kill" => {
            let mut g = guest(n, limits(), "sleep 1000").spawn()?;
            let mut p = g.exec(Command::new("/bin/sleep").arg("1000"))?;
            g.kill()?;
            g.wait()?;
            assert_eq!(p.wait()?.signal(), Some(9));
            "exec killed"
        }
        "pause then kill" => {
            let mut g = guest(n, limits(), "sleep 1000").spawn()?;
            g.pause()?;
            g.kill_all()?;
            g.wait()?;
            "paused killed"
        }
        _ => unreachable!(),
    })
}

/// No group of ours; no link of ours once the kernel has taken the parked
/// host ends down with their namespaces (generously waited for).
fn assert_nothing_left(what: &str) {
    let ours =
        || link_names().into_iter().filter(|l| l == "vgcy0" || l.starts_with("vgx")).collect::<Vec<_>>();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ours().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(ours().is_empty(), "{what}: links left: {:?}", ours());
    let groups = groups_named("cy-");
    assert!(groups.is_empty(), "{what}: groups left: {groups:?}");
}

#[test]
fn randomized_lives_leave_nothing() {
    if !root_or_skip("cycles") {
        return;
    }
    let _x = exclusive();
    let count = std::env::var("VGUEST_TEST_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| repeats("cycles", 300, 100));
    // A first life opens what a process keeps for all its guests.
    life(0, 0).unwrap();
    let before = HostState::capture();
    let mut tally = std::collections::BTreeMap::new();
    let started = Instant::now();
    for n in 1..=count {
        // Each kind in turn first, then at random.
        let kind = if n <= KINDS.len() { n - 1 } else { random_below(KINDS.len() as u64) as usize };
        let seen = life(n, kind).unwrap_or_else(|e| panic!("life {n} ({}): {e} ({e:?})", KINDS[kind]));
        *tally.entry(seen).or_insert(0) += 1;
        before.assert_unchanged(&format!("life {n} ({})", KINDS[kind]));
        if n % 50 == 0 {
            assert_nothing_left(&format!("after {n} lives"));
        }
    }
    assert_nothing_left("at the end");
    println!(
        "{count} lives in {:.1?} ({}): {tally:?}; no descriptor, child, zombie, mount, group or link left",
        started.elapsed(),
        cgroup_layout()
    );
}
