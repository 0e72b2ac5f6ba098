//! A caller killed during the spawn's handshake: a reaper (a child
//! subreaper) starts callers that spawn guests in a loop and kills each
//! at a random moment; a half-made guest left behind must end by itself
//! within a second, and the groups and links the callers made must go.

use std::collections::HashSet;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::Stdio as HostStdio;
use std::time::{Duration, Instant};

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use vguest::{Command, Context, Guest, Namespaces, Network, Resources, Veth};

use crate::common::netns::TestNet;
use crate::common::*;
use crate::support::*;

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
        let mut caller = role::host_in(module_path!(), "spawn_loop")
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
    let reaper = role::host_in(module_path!(), "reaper")
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

    // Whatever the dead callers left: their groups, their records on the
    // `vguest` parents, and host sides of links. A link
    // whose guest side's namespace died goes with it, but the kernel
    // dismantles namespaces in the background (a workqueue, usually done
    // within milliseconds): wait for that first, generously, since the
    // kernel promises no time.
    let groups_left = remove_groups(&prefix);
    // And the dead callers' records on the parents (the parents with them,
    // unless a live process still has guests there): the documented sweep.
    vguest::resources::sweep(&Resources::new().pids_max(64)).unwrap();
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
    net.settle();
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
