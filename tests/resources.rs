//! The resource layer on the real kernel: placement and membership, the
//! pids, memory and CPU limits, pause and resume, kill-all, bad input, and
//! that no group is left behind in any hierarchy.
//!
//! Every test says which cgroup layout it ran on. Guest names start with
//! `rt-`, and each test checks afterwards that no group named after its
//! guests remains anywhere under `/sys/fs/cgroup`.
//!
//! The test VM (`tests/vm/run.sh`) also runs them the way a systemd host
//! would: from an occupied non-root leaf ([`occupied_leaf`]), where cgroup
//! v2 hands no controller to groups below the caller's own. There the tests
//! take the documented route for limits, a delegated group as
//! [`Resources::parent`] (`VGUEST_TEST_DELEGATED_PARENT`, an empty group
//! whose parent enables the controllers), and one test asserts what the
//! default placement does in the leaf itself.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use vguest::{Command, Context, Error, Guest, IdMap, Namespaces, ResourceError, Resources, Stdio, Step};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn layout(test: &str) -> &'static str {
    let layout = cgroup_layout();
    match delegated_parent() {
        Some(parent) => println!(
            "{test}: cgroup layout {layout}, caller in an occupied leaf, delegated parent {}",
            parent.display()
        ),
        None => println!("{test}: cgroup layout {layout}"),
    }
    layout
}

/// The delegated group of the occupied-leaf scenario, as an absolute
/// cgroup path (`/user.slice/delegated`); `None` outside that scenario.
fn delegated_parent() -> Option<PathBuf> {
    if !occupied_leaf() {
        return None;
    }
    let parent = std::env::var_os("VGUEST_TEST_DELEGATED_PARENT")
        .filter(|p| !p.is_empty())
        .expect("the occupied-leaf scenario needs VGUEST_TEST_DELEGATED_PARENT (tests/vm/init.sh sets it)");
    let parent = PathBuf::from(parent);
    assert!(parent.has_root(), "VGUEST_TEST_DELEGATED_PARENT {parent:?} is not an absolute cgroup path");
    Some(parent)
}

/// The delegated group's directory in the v2 hierarchy.
fn delegated_dir(parent: &Path) -> PathBuf {
    Path::new(CGROUP_ROOT).join(parent.strip_prefix("/").unwrap())
}

/// Where the tests' guests go: the default placement, or, from an occupied
/// leaf, beneath the delegated group (`Resources::parent`), since there the
/// kernel enables no controller below the caller's own group.
fn resources() -> Resources {
    match delegated_parent() {
        Some(parent) => Resources::new().parent(parent),
        None => Resources::new(),
    }
}

/// No group of guest `name` is left in any hierarchy.
fn assert_no_groups(name: &str) {
    let left = groups_named(&format!("{name}."));
    assert!(left.is_empty(), "groups of {name} left behind: {left:?}");
}

fn owned_paths(guest: &Guest) -> Vec<PathBuf> {
    guest.cgroup_paths().into_iter().map(Path::to_path_buf).collect()
}

/// The guest's group that has `file` (the one serving that controller).
fn group_with(guest: &Guest, file: &str) -> Option<PathBuf> {
    owned_paths(guest).into_iter().find(|p| p.join(file).exists())
}

fn procs(dir: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    text.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Reads the guest's stdout line by line until a line starts with `mark`.
fn read_until(reader: &mut impl BufRead, mark: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("end of output before {mark:?}: {lines:?}");
        }
        let done = line.starts_with(mark);
        lines.push(line.trim_end().to_string());
        if done {
            return lines;
        }
    }
}

fn shell(script: &str) -> Command {
    Command::new("/bin/sh").args(["-c", script])
}

#[test]
fn guest_sits_in_its_own_groups_beneath_vguest_and_sees_them_as_root() {
    if !root_or_skip("placement") {
        return;
    }
    let _s = shared();
    let layout = layout("placement");
    let name = "rt-place";
    let delegated = delegated_parent();
    let mut guest = Guest::builder(name)
        .resources(resources())
        .command(shell("cat /proc/self/cgroup; echo end; read x").stdin(Stdio::Piped).stdout(Stdio::Piped))
        .spawn()
        .unwrap();
    let mut out = BufReader::new(guest.stdout.take().unwrap());
    let inside = read_until(&mut out, "end");
    // The cgroup namespace is rooted at the guest's own groups.
    for line in &inside[..inside.len() - 1] {
        assert!(line.ends_with(":/"), "inside view {inside:?}");
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let paths = owned_paths(&guest);
    assert!(!paths.is_empty());
    for path in &paths {
        let leaf = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(leaf.starts_with(&format!("{name}.{}.", std::process::id())), "{path:?}");
        match &delegated {
            Some(parent) => assert_eq!(path.parent(), Some(delegated_dir(parent).as_path()), "{path:?}"),
            None => assert_eq!(path.parent().unwrap().file_name().unwrap(), "vguest", "{path:?}"),
        }
        assert!(procs(path).contains(&guest.id()), "guest pid {} not in {path:?}", guest.id());
    }
    // The memory group lies beneath the caller's own (here the
    // supervisor's) memory group: the guest cannot escape its limits.
    if let (Some(mine), None) =
        (own.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string())), &delegated)
    {
        let want = Path::new(CGROUP_ROOT).join("memory").join(mine.trim_start_matches('/')).join("vguest");
        assert!(paths.iter().any(|p| p.parent() == Some(&want)), "{paths:?} not below {want:?}");
    }
    let stats = guest.stats().unwrap();
    println!("placement [{layout}]: {paths:?}\n{stats:?}");
    assert!(stats.memory_current.unwrap() > 0);
    assert!(stats.cpu_usage.unwrap() > Duration::ZERO);
    // init, sh (and nothing else while sh waits in read).
    assert_eq!(stats.pids_current, Some(2));
    assert_eq!(stats.oom_kills, Some(0));
    guest.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(guest.wait().unwrap().success());
    assert!(guest.cgroup_paths().is_empty());
    for path in &paths {
        assert!(!path.exists(), "{path:?} left behind");
    }
    // vguest did not make the delegated group, so it never removes it.
    if let Some(parent) = &delegated {
        assert!(delegated_dir(parent).is_dir(), "the delegated group {parent:?} was removed");
    }
    assert_no_groups(name);
}

#[test]
fn fork_bomb_stays_at_pids_max_and_the_host_keeps_working() {
    if !root_or_skip("fork bomb") {
        return;
    }
    let _s = shared();
    let layout = layout("fork bomb");
    let name = "rt-bomb";
    // Half a CPU as well, to stay gentle with the shared machine.
    let res = resources().pids_max(64).cpu_quota(Duration::from_millis(50), Duration::from_millis(100));
    let mut guest = Guest::builder(name)
        .resources(res)
        // The shell stays (in a builtin read, which needs no fork) while
        // its orphans multiply under the init.
        .command(
            shell("f() { f | f & }; f; read x").stdin(Stdio::Piped).stdout(Stdio::Null).stderr(Stdio::Null),
        )
        .spawn()
        .unwrap();
    let started = Instant::now();
    // What the kernel promises is that no fork makes the group hold more
    // than 64 tasks. Its counter (pids.current) may read one above the
    // limit for a moment: a fork charges first and takes the charge back
    // when it is over the limit. So the tasks are counted, and the
    // counter only shows that the bomb reached the limit.
    let group = group_with(&guest, "pids.max").expect("a pids group");
    let tasks = || procs(&group).len();
    let mut highest = 0;
    while highest < 64 && started.elapsed() < Duration::from_secs(30) {
        let now = tasks();
        assert!(now <= 64, "{now} processes in a guest with pids.max 64");
        highest = highest.max(guest.stats().unwrap().pids_current.unwrap());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(highest >= 64, "the bomb never reached the limit: pids.current at most {highest}");
    // The host still forks.
    assert!(std::process::Command::new("/bin/true").status().unwrap().success());
    // The kernel counted refused forks (the bomb may reach the limit
    // exactly, with its next fork, the first refused, still to come).
    let events = group_with(&guest, "pids.events").unwrap().join("pids.events");
    let mut refused = keyed(&events, "max").unwrap();
    while refused == 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
        refused = keyed(&events, "max").unwrap();
    }
    assert!(refused > 0, "pids.events max {refused}");
    for _ in 0..20 {
        let now = tasks();
        assert!(now <= 64, "{now} processes in a guest with pids.max 64");
    }
    println!("fork bomb [{layout}]: held at {highest}, {refused} forks refused");
    guest.kill_all().unwrap();
    // The shell itself may have failed a fork and exited (code 2) before
    // the kill; either way nothing of the bomb is left.
    let status = guest.wait().unwrap();
    assert!(!status.success() && !status.oom_killed(), "{status}");
    assert_no_groups(name);
}

#[test]
fn memory_hog_is_oom_killed_and_the_caller_is_told() {
    if !root_or_skip("memory hog") {
        return;
    }
    let _s = shared();
    let layout = layout("memory hog");
    let limit = 32 << 20;
    let res = resources().memory_max(limit).memory_swap_max(0);
    let hog = |cmd: Command| cmd.args(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);

    // The payload itself is the hog.
    let name = "rt-oom";
    let (status, _, err) = run(Guest::builder(name)
        .resources(res.clone())
        .command(hog(Command::new(busybox())).stdout(Stdio::Piped).stderr(Stdio::Piped)));
    println!("memory hog [{layout}]: payload {status}");
    assert_eq!(status.signal(), Some(9), "{status}: {err}");
    assert!(status.oom_killed(), "{status}");
    assert!(status.to_string().contains("out of memory"), "{status}");
    assert_no_groups(name);

    // A child is the hog: the shell lives on, sees 137, and the group
    // counts the kill.
    let name = "rt-oom-child";
    let script = "\"$0\" dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?; read x";
    let mut guest = Guest::builder(name)
        .resources(res)
        .command(
            Command::new("/bin/sh")
                .args(["-c", script])
                .arg(busybox())
                .stdin(Stdio::Piped)
                .stdout(Stdio::Piped),
        )
        .spawn()
        .unwrap();
    let mut out = BufReader::new(guest.stdout.take().unwrap());
    let lines = read_until(&mut out, "dd=");
    assert_eq!(lines.last().unwrap(), "dd=137", "{lines:?}");
    let stats = guest.stats().unwrap();
    println!("memory hog [{layout}]: child {lines:?}, {stats:?}");
    assert!(stats.oom_kills.unwrap() >= 1, "{stats:?}");
    assert!(stats.memory_peak.unwrap() <= limit, "{stats:?}");
    guest.stdin.take().unwrap().write_all(b"\n").unwrap();
    let status = guest.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(status.oom_killed(), "the kill in the guest is reported: {status}");
    assert_no_groups(name);
}

#[test]
fn cpu_quota_of_20_percent_holds_by_the_guests_own_accounting() {
    if !root_or_skip("cpu quota") {
        return;
    }
    let _s = shared();
    let layout = layout("cpu quota");
    let name = "rt-cpu";
    let res = resources().cpu_quota(Duration::from_millis(20), Duration::from_millis(100));
    let mut guest =
        Guest::builder(name).resources(res).command(shell("while :; do :; done")).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let used = || guest.stats().unwrap().cpu_usage.unwrap();
    let (u0, t0) = (used(), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let (u1, t1) = (used(), Instant::now());
    let share = (u1 - u0).as_secs_f64() / (t1 - t0).as_secs_f64();
    println!("cpu quota [{layout}]: the guest used {:.1}% of a CPU with a 20% quota", share * 100.0);
    assert!((0.12..=0.30).contains(&share), "share {share}");
    guest.kill_all().unwrap();
    guest.wait().unwrap();
    assert_no_groups(name);
}

/// user + system clock ticks of a process (`proc(5)`, fields 14 and 15).
fn ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn frozen(guest: &Guest) -> bool {
    if let Some(dir) = group_with(guest, "cgroup.events") {
        return keyed(&dir.join("cgroup.events"), "frozen") == Some(1);
    }
    let dir = group_with(guest, "freezer.state").unwrap();
    std::fs::read_to_string(dir.join("freezer.state")).unwrap().trim() == "FROZEN"
}

#[test]
fn paused_guest_is_frozen_and_continues_after_resume() {
    if !root_or_skip("pause") {
        return;
    }
    let _s = shared();
    let layout = layout("pause");
    let name = "rt-pause";
    let mut guest =
        Guest::builder(name).resources(resources()).command(shell("while :; do :; done")).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let dir = owned_paths(&guest)[0].clone();
    let spinner = *procs(&dir).iter().find(|p| **p != guest.id()).unwrap();
    let used = || guest.stats().unwrap().cpu_usage.unwrap();

    guest.pause().unwrap();
    assert!(frozen(&guest));
    let (c0, k0) = (used(), ticks(spinner).unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let (c1, k1) = (used(), ticks(spinner).unwrap());
    let state = std::fs::read_to_string(format!("/proc/{spinner}/stat")).unwrap();
    println!("pause [{layout}]: frozen spinner: {state}");
    assert_eq!(c0, c1, "a frozen guest used CPU");
    assert_eq!(k0, k1, "a frozen process ran");

    guest.resume().unwrap();
    assert!(!frozen(&guest));
    std::thread::sleep(Duration::from_millis(500));
    let (c2, k2) = (used(), ticks(spinner).unwrap());
    assert!(c2 > c1 && k2 > k1, "no progress after resume: {c1:?} -> {c2:?}, {k1} -> {k2}");

    // A paused guest can still be killed, and removed.
    guest.pause().unwrap();
    guest.kill_all().unwrap();
    assert_eq!(guest.wait().unwrap().signal(), Some(9));
    assert_no_groups(name);
}

#[test]
fn kill_all_and_wait_end_processes_outside_a_pid_namespace() {
    if !root_or_skip("kill all") {
        return;
    }
    let _s = shared();
    let layout = layout("kill all");
    let ctx = || Context::new().namespaces(Namespaces::default() - Namespaces::PID);

    // Two sleeps beside the shell: kill_all reaches all three.
    let name = "rt-killall";
    let mut guest = Guest::builder(name)
        .context(ctx())
        .resources(resources())
        .command(shell("sleep 1000 & sleep 1000 & echo ready; wait").stdout(Stdio::Piped))
        .spawn()
        .unwrap();
    read_until(&mut BufReader::new(guest.stdout.take().unwrap()), "ready");
    let members = procs(&owned_paths(&guest)[0]);
    assert_eq!(members.len(), 3, "{members:?}");
    guest.kill_all().unwrap();
    assert_eq!(guest.wait().unwrap().signal(), Some(9));
    for pid in &members {
        assert!(dead(pid), "pid {pid} survived");
    }
    assert_no_groups(name);

    // The payload exits and leaves a daemon behind: wait ends it too, so
    // the groups can go.
    let name = "rt-orphan";
    let (status, out, _) = run(Guest::builder(name)
        .context(ctx())
        .resources(resources())
        .command(shell("sleep 1000 >/dev/null 2>&1 & echo $!").stdout(Stdio::Piped).stderr(Stdio::Piped)));
    assert!(status.success());
    let orphan = out.trim();
    println!("kill all [{layout}]: killed {members:?} and orphan {orphan}");
    assert!(dead(orphan), "orphan {orphan} survived");
    assert_no_groups(name);
}

/// Gone, or a zombie waiting for the host's init (the guest's orphans are
/// reparented there when it has no PID namespace).
fn dead(pid: impl std::fmt::Display) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'))
        }
        Err(_) => true,
    }
}

fn expect_resource_error(name: &str, res: Resources) -> ResourceError {
    let before = HostState::capture();
    let err = Guest::builder(name).resources(res).command(Command::new("/bin/true")).spawn().unwrap_err();
    before.assert_unchanged(name);
    assert_no_groups(name);
    match err {
        Error::Resources(e) => e,
        other => panic!("{name}: not a resource error: {other} ({other:?})"),
    }
}

#[test]
fn bad_input_gives_typed_errors_and_leaves_nothing() {
    if !root_or_skip("bad input") {
        return;
    }
    let _x = exclusive();
    let layout = layout("bad input");
    // The first spawn that gets past the clone loads the built-in init
    // into a memfd this process keeps: load it before counting fds.
    assert!(sh(Guest::builder("warm"), "true").0.success());
    // Refused before anything is created.
    let cases = [
        (Resources::new().memory_max(0), "memory", "0"),
        (Resources::new().memory_max(64 << 10), "memory", "65536"),
        (Resources::new().memory_swap_max(0), "memory", "0"),
        (Resources::new().cpuset_cpus(""), "cpuset", ""),
        (Resources::new().cpuset_cpus("1-x"), "cpuset", "1-x"),
        (Resources::new().pids_max(0), "pids", "0"),
        (Resources::new().cpu_weight(0), "cpu", "0"),
    ];
    for (res, controller, value) in cases {
        match expect_resource_error("rt-bad", res) {
            ResourceError::Invalid { controller: c, value: v, .. } => {
                assert_eq!((c, v.as_str()), (controller, value))
            }
            other => panic!("{other:?}"),
        }
    }
    let err = expect_resource_error("rt-bad", Resources::new().parent("../escape"));
    assert!(matches!(err, ResourceError::InvalidParent { .. }), "{err}");

    // Refused by the kernel after the groups were made: they are removed.
    let err = expect_resource_error("rt-bad-cpuset", resources().memory_max(64 << 20).cpuset_cpus("64"));
    println!("bad input [{layout}]: {err}");
    match &err {
        ResourceError::SetLimit { controller, file, value, source, .. } => {
            assert_eq!((*controller, *file, value.as_str()), ("cpuset", "cpuset.cpus", "64"));
            // cpulist_parse() says ERANGE for a cpu beyond the last.
            assert!(matches!(source.raw_os_error(), Some(libc::EINVAL | libc::ERANGE)), "{source}");
        }
        other => panic!("{other:?}"),
    }

    // Missing controllers and interface files cannot be staged on a live
    // host; the unit tests of `placement` and `limits` cover them on fake
    // v1, hybrid and v2 trees.
}

#[test]
fn setup_failures_after_the_groups_exist_remove_them() {
    if !root_or_skip("setup failure") {
        return;
    }
    let _x = exclusive();
    layout("setup failure");
    let name = "rt-noexec";
    let before = HostState::capture();
    let err = Guest::builder(name)
        .resources(resources().pids_max(10))
        .command(Command::new("/no/such/program"))
        .spawn()
        .unwrap_err();
    assert_eq!(err.step(), Some(Step::Exec), "{err}");
    before.assert_unchanged(name);
    assert_no_groups(name);
}

#[test]
fn user_namespace_guest_is_joined_by_the_parent() {
    if !root_or_skip("user namespace join") {
        return;
    }
    let _s = shared();
    let layout = layout("user namespace join");
    let name = "rt-userns";
    let ctx = Context::new()
        .namespaces(Namespaces::default() | Namespaces::USER)
        .uid_map(IdMap::new(0, 300_000, 65_536))
        .gid_map(IdMap::new(0, 300_000, 65_536));
    let mut guest = Guest::builder(name)
        .context(ctx)
        .resources(resources().pids_max(20))
        .command(shell("cat /proc/self/cgroup; echo end; read x").stdin(Stdio::Piped).stdout(Stdio::Piped))
        .spawn()
        .unwrap();
    let inside = read_until(&mut BufReader::new(guest.stdout.take().unwrap()), "end");
    for line in &inside[..inside.len() - 1] {
        assert!(line.ends_with(":/"), "{inside:?}");
    }
    for path in owned_paths(&guest) {
        assert!(procs(&path).contains(&guest.id()), "{path:?}");
    }
    println!("user namespace join [{layout}]: {inside:?}");
    guest.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(guest.wait().unwrap().success());
    assert_no_groups(name);
}

#[test]
fn a_relative_parent_is_made_beneath_the_callers_groups_kept_and_removed() {
    if !root_or_skip("parent") {
        return;
    }
    let _s = shared();
    let layout = layout("parent");
    let name = "rt-pool-guest";
    let mut guest = Guest::builder(name)
        .resources(Resources::new().parent("rt-pool/inner"))
        .command(Command::new("/bin/true"))
        .spawn()
        .unwrap();
    let paths = owned_paths(&guest);
    println!("parent [{layout}]: {paths:?}");
    for p in &paths {
        assert!(p.parent().unwrap().ends_with("rt-pool/inner"), "{p:?}");
    }
    assert!(guest.wait().unwrap().success());
    // The guest's own groups are gone; the parents stay for later guests
    // of this process, until it exits or asks for their removal.
    for p in &paths {
        assert!(!p.exists(), "{p:?} left behind");
        assert!(p.parent().unwrap().is_dir(), "{p:?}: parent not kept");
    }
    assert!(groups_named(name).is_empty());
    vguest::resources::remove_empty_parents();
    let left = groups_named("rt-pool");
    assert!(left.is_empty(), "{left:?}");
}

/// The caller's own group in the v2 hierarchy (the `0::` line of
/// `/proc/self/cgroup`).
fn own_v2_dir() -> PathBuf {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path =
        own.lines().find_map(|l| l.strip_prefix("0::")).expect("no cgroup v2 line in /proc/self/cgroup");
    Path::new(CGROUP_ROOT).join(path.trim_start_matches('/'))
}

/// The child groups of `dir`, sorted.
fn child_groups(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

#[test]
fn in_an_occupied_leaf_limits_need_delegation_and_guests_without_limits_work() {
    if !root_or_skip("occupied leaf") {
        return;
    }
    // expect_resource_error compares this process's fds and children.
    let _x = exclusive();
    let layout = layout("occupied leaf");
    if !occupied_leaf() {
        eprintln!(
            "SKIP occupied leaf: the caller is not in an occupied non-root leaf cgroup \
             (VGUEST_TEST_CGROUP_SCENARIO=occupied-leaf, set by tests/vm/run.sh's leaf phase)"
        );
        return;
    }
    let occupied = own_v2_dir();
    let others: Vec<u32> = procs(&occupied).into_iter().filter(|p| *p != std::process::id()).collect();
    assert!(!others.is_empty(), "{occupied:?} holds no process but this one: not the scenario");
    // Earlier tests of this process may have left `vguest` kept here.
    vguest::resources::remove_empty_parents();
    let before = child_groups(&occupied);

    // A limit with the default placement needs a controller enabled in the
    // occupied group's cgroup.subtree_control, which the kernel refuses
    // (EBUSY): a Delegation error that names the group and the way out,
    // before anything is created.
    let name = "rt-leaf-limit";
    let err = expect_resource_error(name, Resources::new().memory_max(64 << 20));
    println!("occupied leaf [{layout}]: {err}");
    match &err {
        ResourceError::Delegation { controllers, group, source } => {
            assert_eq!(group, &occupied, "{err}");
            assert!(controllers.split(' ').any(|c| c == "memory"), "{controllers}");
            assert_eq!(source.raw_os_error(), Some(libc::EBUSY), "{source}");
        }
        other => panic!("not a delegation error: {other} ({other:?})"),
    }
    let text = err.to_string();
    assert!(text.contains(&*occupied.to_string_lossy()), "the message does not name the group: {text}");
    assert!(text.contains("Resources::parent") && text.contains("delegated"), "{text}");
    assert_eq!(child_groups(&occupied), before, "groups left in {occupied:?}");

    // Without limits the default placement works there: the guest's group
    // goes beneath the occupied one (no controller to enable), and
    // membership, statistics of the core files, pause, kill-all and removal
    // need no controller.
    let name = "rt-leaf-plain";
    let mut guest = Guest::builder(name)
        .resources(Resources::new())
        .command(
            shell("cat /proc/self/cgroup; echo end; sleep 1000 & sleep 1000 & wait").stdout(Stdio::Piped),
        )
        .spawn()
        .unwrap_or_else(|e| panic!("a guest without limits in an occupied leaf: {e} ({e:?})"));
    let inside = read_until(&mut BufReader::new(guest.stdout.take().unwrap()), "end");
    for line in &inside[..inside.len() - 1] {
        assert!(line.ends_with(":/"), "inside view {inside:?}");
    }
    let paths = owned_paths(&guest);
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert_eq!(paths[0].parent(), Some(occupied.join("vguest").as_path()), "{paths:?}");
    let members = procs(&paths[0]);
    assert!(members.contains(&guest.id()), "{members:?}");
    // Statistics use only what the occupied group already delegates.
    let delegates = std::fs::read_to_string(occupied.join("cgroup.subtree_control")).unwrap();
    let has = |c: &str| delegates.split_whitespace().any(|d| d == c);
    let stats = guest.stats().unwrap();
    println!("occupied leaf [{layout}]: {paths:?} (the group delegates {delegates:?})\n{stats:?}");
    assert_eq!(stats.memory_current.is_some(), has("memory"), "{stats:?}");
    assert_eq!(stats.pids_current.is_some(), has("pids"), "{stats:?}");
    assert!(stats.cpu_usage.is_some(), "cpu.stat is in every v2 group: {stats:?}");
    guest.pause().unwrap();
    assert!(frozen(&guest));
    guest.resume().unwrap();
    assert!(!frozen(&guest));
    guest.kill_all().unwrap();
    assert_eq!(guest.wait().unwrap().signal(), Some(9));
    assert!(guest.cgroup_paths().is_empty());
    assert!(!paths[0].exists(), "{:?} left behind", paths[0]);
    // `vguest` stays for later guests of this process until it exits or
    // asks for its removal.
    vguest::resources::remove_empty_parents();
    assert_eq!(child_groups(&occupied), before, "groups left in {occupied:?}");
    assert_no_groups(name);
}

#[test]
fn concurrent_spawns_share_vguest_and_leave_nothing() {
    if !root_or_skip("concurrent") {
        return;
    }
    let _s = shared();
    let layout = layout("concurrent");
    let name = "rt-many";
    let res = resources().memory_max(64 << 20).pids_max(16);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let builder = Guest::builder(name).resources(res.clone()).command(Command::new("/bin/true"));
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let status = builder.spawn().unwrap().wait().unwrap();
                    assert!(status.success());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    println!("concurrent [{layout}]: 40 guests");
    assert_no_groups(name);
}

/// A whole disk (not loop, ram or zram) as `major:minor`.
fn some_disk() -> Option<(u32, u32)> {
    for entry in std::fs::read_dir("/sys/block").ok()?.flatten() {
        let n = entry.file_name().to_string_lossy().into_owned();
        if ["loop", "ram", "zram"].iter().any(|p| n.starts_with(p)) {
            continue;
        }
        let dev = std::fs::read_to_string(entry.path().join("dev")).ok()?;
        let (major, minor) = dev.trim().split_once(':')?;
        return Some((major.parse().ok()?, minor.parse().ok()?));
    }
    None
}

#[test]
fn io_bandwidth_limits_land_in_the_guests_group() {
    if !root_or_skip("io limits") {
        return;
    }
    let _s = shared();
    let layout = layout("io limits");
    let Some((major, minor)) = some_disk() else {
        eprintln!("SKIP io limits: no disk");
        return;
    };
    let name = "rt-io";
    let res = resources().io_read_bps(major, minor, 1 << 20).io_write_iops(major, minor, 100).io_weight(500);
    let mut guest =
        Guest::builder(name).resources(res).command(shell("read x").stdin(Stdio::Piped)).spawn().unwrap();
    let (read_file, want_read, write_file, want_write) = match group_with(&guest, "io.max") {
        Some(dir) => (
            dir.join("io.max"),
            format!("{major}:{minor} rbps=1048576"),
            dir.join("io.max"),
            "wiops=100".into(),
        ),
        None => {
            let dir = group_with(&guest, "blkio.throttle.read_bps_device").unwrap();
            (
                dir.join("blkio.throttle.read_bps_device"),
                format!("{major}:{minor} 1048576"),
                dir.join("blkio.throttle.write_iops_device"),
                format!("{major}:{minor} 100"),
            )
        }
    };
    let read = std::fs::read_to_string(&read_file).unwrap();
    let write = std::fs::read_to_string(&write_file).unwrap();
    let weight = ["io.weight", "io.bfq.weight", "blkio.weight", "blkio.bfq.weight"]
        .iter()
        .find_map(|f| Some(std::fs::read_to_string(group_with(&guest, f)?.join(f)).unwrap()));
    println!("io limits [{layout}]: {read:?} {write:?} weight {weight:?}");
    match weight {
        Some(w) => assert!(w.contains("500"), "{w}"),
        None => panic!("io_weight was accepted but no weight file exists"),
    }
    assert!(read.contains(&want_read), "{read}");
    assert!(write.contains(&want_write), "{write}");
    guest.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(guest.wait().unwrap().success());
    assert_no_groups(name);
}
