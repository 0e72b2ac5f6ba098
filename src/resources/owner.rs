//! [`Cgroups`]: the owner of a guest's groups. It creates them (see
//! `make.rs`), applies the limits, hands out directory fds for joining, and
//! removes everything it made when dropped (unless detached). Freezing and
//! killing are in `control.rs`.

use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::ResourceError;
use super::hierarchies::{Controller, Hierarchies};
use super::layout::CgroupLayout;
use super::limits::Limit;
use super::make::{make, prune, release};
use super::placement::{self, GroupPlan, Wanted};
use crate::patience::patiently;

/// One of the guest's groups.
#[derive(Debug)]
pub(crate) struct Group {
    pub plan: GroupPlan,
    pub dir: PathBuf,
    fd: OwnedFd,
}

impl Group {
    pub(super) fn new(plan: GroupPlan, dir: PathBuf, fd: OwnedFd) -> Group {
        Group { plan, dir, fd }
    }

    pub(crate) fn serves(&self, c: Controller) -> bool {
        self.plan.serves.contains(&c)
    }
}

/// The groups of one guest; removes them on drop unless detached.
#[derive(Debug)]
pub(crate) struct Cgroups {
    pub(crate) layout: CgroupLayout,
    groups: Vec<Group>,
    /// v1 groups to make later ([`Cgroups::create_pending`]), with their
    /// limits: the spawn makes them while the child builds its mounts.
    pending: Vec<GroupPlan>,
    pending_limits: Vec<Limit>,
    /// Set while creating and after a failed creation: the drop then also
    /// removes the intermediate groups made for this guest.
    failed: bool,
    detached: bool,
}

pub(super) fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    Ok(File::options().read(true).custom_flags(libc::O_DIRECTORY).open(dir)?.into())
}

/// Removes `dir` and any groups the guest made inside it, retrying `EBUSY`
/// while the kernel releases the last tasks.
fn remove_tree(dir: &Path) -> io::Result<()> {
    let mut last = Ok(());
    let mut children_removed = false;
    patiently(|| match fs::remove_dir(dir) {
        // A group with child groups is busy too: remove those (made by the
        // guest inside its cgroup namespace) once, then retry.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            if !children_removed {
                children_removed = true;
                for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        if let Err(e) = remove_tree(&entry.path()) {
                            last = Err(e);
                            return true;
                        }
                    }
                }
            }
            last = Err(e);
            false
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            last = Ok(());
            true
        }
        other => {
            last = other;
            true
        }
    });
    last
}

/// The pids listed in `cgroup.procs` of `dir` and the groups below it.
pub(crate) fn procs(dir: &Path) -> Vec<i32> {
    let mut out: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(procs(&entry.path()));
            }
        }
    }
    out
}

impl Cgroups {
    /// Creates the groups for a guest: decides placement from the mount
    /// table and the caller's own groups (`own`, the text of
    /// `/proc/self/cgroup`), creates them, writes the limits. On failure
    /// everything made so far is removed.
    ///
    /// With `defer_v1`, the v1 groups (and their limits) are only planned:
    /// [`Cgroups::create_pending`] makes them.
    pub(crate) fn create(
        hier: &Hierarchies,
        own: &str,
        limits: &[Limit],
        wanted: &Wanted,
        parent: Option<&Path>,
        leaf: &str,
        defer_v1: bool,
    ) -> Result<Cgroups, ResourceError> {
        let layout = hier.layout().ok_or(ResourceError::NoCgroupFs)?;
        let plans = placement::place(hier, own, wanted, parent, leaf)?;
        // Until the end, a failure drops `owner`, which discards it all.
        let mut owner = Cgroups {
            layout,
            groups: Vec::with_capacity(plans.len()),
            pending: Vec::new(),
            pending_limits: Vec::new(),
            failed: true,
            detached: false,
        };
        for mut plan in plans {
            if !plan.fallback.is_empty() {
                // The v2 group comes first and exists by now: keep the v1
                // group only for what the v2 group cannot do.
                if let Some(v2) = owner.groups.first_mut().filter(|g| g.plan.v2) {
                    for (c, file) in std::mem::take(&mut plan.fallback) {
                        match v2.dir.join(file).exists() {
                            true => plan.serves.retain(|s| *s != c),
                            false => v2.plan.serves.retain(|s| *s != c),
                        }
                    }
                }
                if plan.serves.is_empty() {
                    continue;
                }
            }
            match defer_v1 && !plan.v2 {
                true => owner.pending.push(plan),
                false => owner.add_group(plan)?,
            }
        }
        for limit in limits {
            // Placement guarantees a group for every controller a limit
            // needs: one made now or a pending one.
            if !owner.apply_limit(limit, 0)? {
                owner.pending_limits.push(limit.clone());
            }
        }
        owner.failed = false;
        Ok(owner)
    }

    /// How many v1 groups wait for [`Cgroups::create_pending`].
    pub(crate) fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Makes the deferred v1 groups and writes their limits; returns their
    /// directory fds in join order. On failure the groups are left for
    /// the drop, which removes them (and the intermediate groups made for
    /// them) once the caller has ended the child that may be in the v2
    /// group by then.
    pub(crate) fn create_pending(&mut self) -> Result<Vec<RawFd>, ResourceError> {
        let first = self.groups.len();
        self.failed = true;
        for plan in std::mem::take(&mut self.pending) {
            self.add_group(plan)?;
        }
        for limit in std::mem::take(&mut self.pending_limits) {
            self.apply_limit(&limit, first)?;
        }
        self.failed = false;
        Ok(self.groups[first..].iter().map(|g| g.fd.as_raw_fd()).collect())
    }

    /// Makes the group of `plan` and keeps it with an fd of its directory.
    fn add_group(&mut self, plan: GroupPlan) -> Result<(), ResourceError> {
        let dir = make(&plan)?;
        match open_dir(&dir) {
            Ok(fd) => {
                self.groups.push(Group { plan, dir, fd });
                Ok(())
            }
            Err(source) => {
                let _ = fs::remove_dir(&dir);
                prune(&plan);
                Err(ResourceError::group("opening", dir, source))
            }
        }
    }

    /// Writes `limit` into the group (from `groups[from..]`) that serves
    /// its controller; false if none does yet.
    fn apply_limit(&self, limit: &Limit, from: usize) -> Result<bool, ResourceError> {
        let c = limit.controller();
        match self.groups[from..].iter().find(|g| g.serves(c)) {
            Some(g) => limit.apply(&g.dir, &g.plan.base, g.plan.v2).map(|()| true),
            None => Ok(false),
        }
    }

    /// After a failed creation: removes the groups and the intermediate
    /// groups made for them, so a spawn that failed leaves nothing.
    fn discard(&mut self) {
        let plans: Vec<GroupPlan> = self.groups.iter().map(|g| g.plan.clone()).collect();
        let _ = self.remove();
        for plan in &plans {
            prune(plan);
        }
    }

    /// The groups' directory fds, in join order, each with whether it is
    /// a v2 group. When the first is, it can be given to `clone3` with
    /// `CLONE_INTO_CGROUP`.
    pub(crate) fn dir_fds(&self) -> Vec<(RawFd, bool)> {
        self.groups.iter().map(|g| (g.fd.as_raw_fd(), g.plan.v2)).collect()
    }

    /// The v2 group's fd, for `CLONE_INTO_CGROUP`.
    pub(crate) fn v2_fd(&self) -> Option<RawFd> {
        self.groups.first().filter(|g| g.plan.v2).map(|g| g.fd.as_raw_fd())
    }

    /// The groups' directories, in join order.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &Path> {
        self.groups.iter().map(|g| g.dir.as_path())
    }

    pub(crate) fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Whether no process is left in the guest's groups: v2's recursive
    /// `populated` flag (one read), else the listed processes.
    pub(crate) fn is_empty(&self) -> bool {
        let Some(g) = self.groups.first() else {
            return true;
        };
        match g.plan.v2 {
            true => fs::read_to_string(g.dir.join("cgroup.events"))
                .map_or_else(|_| procs(&g.dir).is_empty(), |e| e.lines().any(|l| l == "populated 0")),
            false => procs(&g.dir).is_empty(),
        }
    }

    /// Moves `pid` into every group (the parent's side of the join, for a
    /// child whose credentials no longer allow it to join itself).
    pub(crate) fn join(&self, pid: i32) -> Result<(), ResourceError> {
        for g in &self.groups {
            fs::write(g.dir.join("cgroup.procs"), pid.to_string()).map_err(|source| ResourceError::Join {
                pid,
                group: g.dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Removes every group; the intermediate groups stay if this process
    /// keeps them for later guests (see `make.rs`), else marked ones left
    /// empty go too. Groups that could not be removed stay owned, so a
    /// later call (or drop) tries again; the first error is returned.
    pub(crate) fn remove(&mut self) -> Result<(), ResourceError> {
        let mut first = None;
        let mut kept = Vec::new();
        for g in self.groups.drain(..) {
            match remove_tree(&g.dir) {
                Ok(()) => release(&g.plan),
                Err(source) => {
                    first.get_or_insert(ResourceError::group("removing", &g.dir, source));
                    kept.push(g);
                }
            }
        }
        self.groups = kept;
        first.map_or(Ok(()), Err)
    }

    /// Groups of a guest another process spawned, found by
    /// [`Cgroups::adopt`]: kept on drop.
    pub(super) fn adopted(layout: CgroupLayout, groups: Vec<Group>) -> Cgroups {
        Cgroups {
            layout,
            groups,
            pending: Vec::new(),
            pending_limits: Vec::new(),
            failed: false,
            detached: true,
        }
    }

    /// Leaves the groups in place (for a detached guest).
    pub(crate) fn detach(&mut self) {
        self.detached = true;
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        match (self.detached, self.failed) {
            (true, _) => {}
            (false, true) => self.discard(),
            (false, false) => {
                let _ = self.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Resources;
    use crate::resources::hierarchies::tests::hybrid_mountinfo;
    use crate::resources::limits;

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
        for d in
            ["memory/process_api/abc", "cpu", "cpuacct", "pids", "freezer", "blkio", "devices", "systemd"]
        {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::create_dir_all(root.join("cpuset")).unwrap();
        fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
        fs::create_dir_all(root.join("unified")).unwrap();
        fs::write(root.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
        fs::write(root.join("unified/cgroup.subtree_control"), "").unwrap();
    }

    const OWN: &str = "8:pids:/\n7:blkio:/\n6:freezer:/\n4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

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
        let wanted =
            Wanted { hard: Default::default(), soft: [Controller::Freezer, Controller::Pids].into() };
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
}
