//! Unit tests of the owner: creating, limiting and removing groups on a
//! fake hierarchy tree (plain directories stand in for cgroupfs), deferred
//! v1 groups, v2 delegation along the path, and the v1 freezer on the real
//! kernel (as root).

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::patience::patiently;
use crate::resources::Resources;
use crate::resources::group::procs;
use crate::resources::hierarchies::tests::hybrid_mountinfo;
use crate::resources::hierarchies::{Controller, Hierarchies};
use crate::resources::limits;
use crate::resources::placement::Wanted;

/// Tests that check which intermediate groups are kept, and call
/// `remove_empty_parents` (which works on every test's kept groups),
/// run one at a time.
static KEPT_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vguest-owner-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fake hybrid tree: plain directories stand in for cgroupfs (whose
/// files the kernel creates; here they appear as they are written).
fn hybrid_tree(root: &Path) {
    for d in ["memory/process_api/abc", "cpu", "cpuacct", "pids", "freezer", "blkio", "devices", "systemd"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::create_dir_all(root.join("cpuset")).unwrap();
    fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
    fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
    fs::create_dir_all(root.join("unified")).unwrap();
    fs::write(root.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
    fs::write(root.join("unified/cgroup.subtree_control"), "").unwrap();
}

const OWN: &str =
    "8:pids:/\n7:blkio:/\n6:freezer:/\n4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

#[test]
fn creates_limits_and_removes_everything_it_made() {
    let _serial = KEPT_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let root = temp("create");
    hybrid_tree(&root);
    let hier = Hierarchies::parse(&hybrid_mountinfo(&root));
    let res = Resources::new().memory_max(32 << 20).pids_max(64).cpuset_cpus("1");
    let limits = limits::check(&res).unwrap();
    // The fake cpuset groups lack the files the kernel would give them,
    // so setting up `vguest` fails half way: a typed error, and nothing
    // of ours is left in any hierarchy.
    let err =
        Cgroups::create(&hier, OWN, &limits, &limits::wanted(&limits), None, "g.1.0", false).unwrap_err();
    assert!(matches!(err, ResourceError::Create { .. }), "{err}");
    assert!(!root.join("memory/process_api/abc/vguest").exists());
    assert!(!root.join("cpuset/vguest").exists(), "marked empty parent removed");
    assert!(!root.join("unified/vguest").exists());

    // Without cpuset the fake tree is complete.
    let res = Resources::new().memory_max(32 << 20).pids_max(64);
    let limits = limits::check(&res).unwrap();
    let mut owner =
        Cgroups::create(&hier, OWN, &limits, &limits::wanted(&limits), None, "g.1.1", false).unwrap();
    let paths: Vec<PathBuf> = owner.paths().map(Path::to_path_buf).collect();
    assert_eq!(paths[0], root.join("unified/vguest/g.1.1"));
    assert_eq!(owner.v2_fd(), Some(owner.dir_fds()[0].0));
    let mem = root.join("memory/process_api/abc/vguest/g.1.1");
    assert_eq!(fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap(), "33554432");
    assert_eq!(fs::read_to_string(root.join("pids/vguest/g.1.1/pids.max")).unwrap(), "64");
    // Plain directories are not empty once files were written: clear
    // them as the kernel would, then remove.
    for p in &paths {
        for f in fs::read_dir(p).unwrap().flatten() {
            fs::remove_file(f.path()).unwrap();
        }
    }
    owner.remove().unwrap();
    for p in &paths {
        assert!(!p.exists(), "{p:?}");
        assert!(p.parent().unwrap().exists(), "{p:?}: the parent is kept for later guests");
    }
    crate::resources::remove_empty_parents();
    for p in &paths {
        assert!(!p.parent().unwrap().exists(), "{p:?} parent");
    }
    assert!(root.join("memory/process_api/abc").exists(), "the caller's own group stays");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn deferred_v1_groups_are_made_with_their_limits_later() {
    let _serial = KEPT_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let root = temp("deferred");
    hybrid_tree(&root);
    let hier = Hierarchies::parse(&hybrid_mountinfo(&root));
    let res = Resources::new().memory_max(32 << 20).pids_max(64);
    let limits = limits::check(&res).unwrap();
    let mut owner =
        Cgroups::create(&hier, OWN, &limits, &limits::wanted(&limits), None, "g.4.0", true).unwrap();
    // Only the v2 group exists at the clone (for CLONE_INTO_CGROUP).
    assert_eq!(owner.paths().collect::<Vec<_>>(), [root.join("unified/vguest/g.4.0").as_path()]);
    assert_eq!(owner.dir_fds().len(), 1);
    assert!(owner.pending_count() > 0);
    let count = owner.pending_count();
    let mem = root.join("memory/process_api/abc/vguest/g.4.0");
    let pids = root.join("pids/vguest/g.4.0");
    assert!(!mem.exists() && !pids.exists());
    let fds = owner.create_pending().unwrap();
    assert_eq!(fds.len(), count);
    assert_eq!(owner.pending_count(), 0);
    assert_eq!(owner.dir_fds().len(), 1 + count);
    assert_eq!(&owner.dir_fds()[1..].iter().map(|d| d.0).collect::<Vec<_>>(), &fds);
    assert_eq!(fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap(), "33554432");
    assert_eq!(fs::read_to_string(pids.join("pids.max")).unwrap(), "64");
    let paths: Vec<PathBuf> = owner.paths().map(Path::to_path_buf).collect();
    for p in &paths {
        for f in fs::read_dir(p).unwrap().flatten() {
            fs::remove_file(f.path()).unwrap();
        }
    }
    owner.remove().unwrap();
    crate::resources::remove_empty_parents();
    for p in &paths {
        assert!(!p.exists() && !p.parent().unwrap().exists(), "{p:?}");
    }
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn unmarked_parents_and_foreign_groups_stay() {
    let root = temp("unmarked");
    hybrid_tree(&root);
    // An administrator's own `vguest` (no mark) survives the guest.
    fs::create_dir_all(root.join("pids/vguest/other")).unwrap();
    let hier = Hierarchies::parse(&hybrid_mountinfo(&root));
    let wanted = Wanted { hard: [Controller::Pids].into(), soft: Default::default() };
    let mut owner = Cgroups::create(&hier, OWN, &[], &wanted, None, "g.2.0", false).unwrap();
    owner.remove().unwrap();
    assert!(root.join("pids/vguest/other").exists());
    assert!(!root.join("pids/vguest/g.2.0").exists());
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn v2_delegates_controllers_along_the_path_and_limits_the_leaf() {
    let root = temp("v2");
    let own = root.join("user.slice/app");
    fs::create_dir_all(own.join("vguest")).unwrap();
    fs::write(own.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
    fs::write(own.join("cgroup.subtree_control"), "").unwrap();
    // Plain directories do not grow cgroup files on mkdir: `vguest`
    // exists already here (made by someone else: unmarked, kept).
    fs::write(own.join("vguest/cgroup.subtree_control"), "memory\n").unwrap();
    let hier = Hierarchies::parse(&crate::resources::hierarchies::tests::v2_mountinfo(&root));
    let res = Resources::new().memory_max(64 << 20).cpu_weight(50);
    let limits = limits::check(&res).unwrap();
    let mut owner = Cgroups::create(
        &hier,
        "0::/user.slice/app\n",
        &limits,
        &limits::wanted(&limits),
        None,
        "g.3.0",
        false,
    )
    .unwrap();
    assert_eq!(owner.layout, CgroupLayout::V2);
    let leaf = own.join("vguest/g.3.0");
    assert_eq!(owner.paths().collect::<Vec<_>>(), [leaf.as_path()]);
    assert_eq!(owner.v2_fd(), Some(owner.dir_fds()[0].0), "placed with CLONE_INTO_CGROUP");
    // Limits need memory and cpu: enabled in the caller's group and in
    // vguest (only what was missing), with pids for statistics.
    assert_eq!(fs::read_to_string(own.join("cgroup.subtree_control")).unwrap(), "+memory +cpu +pids");
    assert_eq!(fs::read_to_string(own.join("vguest/cgroup.subtree_control")).unwrap(), "+cpu +pids");
    assert_eq!(fs::read_to_string(leaf.join("memory.max")).unwrap(), "67108864");
    assert_eq!(fs::read_to_string(leaf.join("cpu.weight")).unwrap(), "50");
    for f in fs::read_dir(&leaf).unwrap().flatten() {
        fs::remove_file(f.path()).unwrap();
    }
    owner.remove().unwrap();
    assert!(!leaf.exists());
    assert!(own.join("vguest").exists(), "an unmarked vguest stays");
    fs::remove_dir_all(root).unwrap();
}

/// The v1 paths (freezer pause, freeze-kill-thaw) on the real kernel,
/// with the host's v2 mount hidden so they are taken even on a hybrid
/// host. Only the pids and freezer hierarchies are used.
#[test]
fn v1_freezer_pauses_and_kills_on_the_real_kernel() {
    use std::io::Write;
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIP v1 freezer: needs root");
        return;
    }
    let mut hier = Hierarchies::host().unwrap().clone();
    if hier.v1_for(Controller::Freezer).is_none() || hier.v1_for(Controller::Pids).is_none() {
        eprintln!("SKIP v1 freezer: no v1 freezer or pids hierarchy");
        return;
    }
    hier.v2 = None;
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let wanted = Wanted { hard: Default::default(), soft: [Controller::Freezer, Controller::Pids].into() };
    let leaf = format!("rt-unit-v1.{}", std::process::id());
    let mut owner = Cgroups::create(&hier, &own, &[], &wanted, None, &leaf, false).unwrap();
    assert_eq!(owner.layout, CgroupLayout::V1);
    let mut child = std::process::Command::new("/bin/sh")
        .args(["-c", "read x; sleep 1000 & sleep 1000 & wait"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    owner.join(child.id() as i32).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let pids = &owner.groups.iter().find(|g| g.serves(Controller::Pids)).unwrap().dir;
    assert!(patiently(|| procs(pids).len() == 3), "{:?}", procs(pids));

    let freezer = owner.groups.iter().find(|g| g.serves(Controller::Freezer)).unwrap().dir.clone();
    owner.set_frozen(true).unwrap();
    assert_eq!(fs::read_to_string(freezer.join("freezer.state")).unwrap().trim(), "FROZEN");
    owner.set_frozen(false).unwrap();
    assert_eq!(fs::read_to_string(freezer.join("freezer.state")).unwrap().trim(), "THAWED");

    owner.kill_all().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    assert!(patiently(|| procs(pids).is_empty()), "{:?}", procs(pids));
    let dirs: Vec<PathBuf> = owner.paths().map(Path::to_path_buf).collect();
    owner.remove().unwrap();
    for d in dirs {
        assert!(!d.exists(), "{d:?}");
    }
}
