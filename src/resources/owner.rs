//! [`Cgroups`]: the owner of a guest's groups. It creates them (and any
//! missing `vguest` parent), applies the limits, hands out directory fds
//! for joining, freezes, thaws and kills, and removes everything it made
//! when dropped (unless detached).
//!
//! Intermediate groups (`vguest`, or the components of a configured
//! parent) that this layer creates carry the extended attribute
//! `trusted.vguest` (kernfs keeps xattrs on cgroup directories). Any vguest
//! process removes such a group once it is empty; a group without the mark
//! (made by an administrator, possibly with limits for all guests) is never
//! removed. Where the attribute cannot be set, the mark is kept in this
//! process only. Two spawns racing with a removal are safe: `rmdir` of a
//! group that still has children fails, and a spawn whose parent vanished
//! under it (`ENOENT`) creates it again.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cgroups_rs::fs::freezer::FreezerController;

use super::error::ResourceError;
use super::layout::{CgroupLayout, Controller, Hierarchies};
use super::limits::Limit;
use super::placement::{self, GroupPlan, Wanted};
use crate::sys::xattr;

/// The mark on intermediate groups this layer created.
const MARK: &std::ffi::CStr = c"trusted.vguest";
const MARK_VALUE: &[u8] = b"made";

/// How long removal retries `EBUSY` (the kernel may still be releasing the
/// last task) and freezing waits for the kernel to finish.
const PATIENCE: Duration = Duration::from_secs(2);

/// Marks kept in this process where xattrs are unavailable.
static MARKED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn mark(dir: &Path) {
    if xattr::set(dir, MARK, MARK_VALUE).is_err() {
        MARKED.lock().unwrap_or_else(|e| e.into_inner()).insert(dir.to_path_buf());
    }
}

fn is_marked(dir: &Path) -> bool {
    xattr::has(dir, MARK, MARK_VALUE) || MARKED.lock().unwrap_or_else(|e| e.into_inner()).contains(dir)
}

fn unmark(dir: &Path) {
    MARKED.lock().unwrap_or_else(|e| e.into_inner()).remove(dir);
}

/// Calls `f` until it returns true or [`PATIENCE`] runs out, sleeping a
/// little longer each time. Returns whether it succeeded.
pub(crate) fn patiently(mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > PATIENCE {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// One of the guest's groups.
#[derive(Debug)]
pub(crate) struct Group {
    pub plan: GroupPlan,
    pub dir: PathBuf,
    fd: OwnedFd,
}

impl Group {
    pub(crate) fn serves(&self, c: Controller) -> bool {
        self.plan.serves.contains(&c)
    }
}

/// The groups of one guest; removes them on drop unless detached.
#[derive(Debug)]
pub(crate) struct Cgroups {
    pub(crate) layout: CgroupLayout,
    groups: Vec<Group>,
    detached: bool,
}

/// Why making one group stopped: a parent vanished under us (try again), or
/// a real error.
enum Stop {
    Vanished,
    Failed(ResourceError),
}

impl From<ResourceError> for Stop {
    fn from(e: ResourceError) -> Self {
        Stop::Failed(e)
    }
}

fn create_err(dir: &Path) -> impl FnOnce(io::Error) -> Stop + '_ {
    move |e| match e.kind() {
        ErrorKind::NotFound => Stop::Vanished,
        _ => Stop::Failed(ResourceError::Create { group: dir.to_path_buf(), source: e }),
    }
}

/// v1 cpuset groups start with no cpus and no memory nodes, and refuse
/// tasks until both are set (`cpusets(7)`): copy them from the parent.
fn inherit_cpuset(dir: &Path) -> Result<(), Stop> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = fs::read_to_string(dir.join(file)).map_err(create_err(dir))?;
        if !own.trim().is_empty() {
            continue;
        }
        let parent = dir.parent().unwrap_or(dir);
        let value = fs::read_to_string(parent.join(file)).map_err(create_err(parent))?;
        fs::write(dir.join(file), value.trim()).map_err(|source| {
            Stop::Failed(ResourceError::SetLimit {
                controller: "cpuset",
                file,
                value: value.trim().to_string(),
                group: dir.to_path_buf(),
                source,
            })
        })?;
    }
    Ok(())
}

/// v2: makes `controllers` available to the children of `dir`.
fn enable(dir: &Path, controllers: &[&str]) -> Result<(), Stop> {
    if controllers.is_empty() {
        return Ok(());
    }
    let file = dir.join("cgroup.subtree_control");
    let have = fs::read_to_string(&file).map_err(create_err(dir))?;
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !have.split_whitespace().any(|h| h == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::write(&file, missing.join(" ")).map_err(|source| match source.kind() {
        ErrorKind::NotFound => Stop::Vanished,
        _ => Stop::Failed(ResourceError::Delegation {
            controllers: controllers.join(" "),
            group: dir.to_path_buf(),
            source,
        }),
    })
}

/// Removes the marked intermediate groups of `plan`, deepest first, up to
/// the first one that is unmarked, busy or gone.
fn prune(plan: &GroupPlan) {
    let mut dirs = Vec::new();
    let mut dir = plan.base.clone();
    for c in &plan.between {
        dir.push(c);
        dirs.push(dir.clone());
    }
    for dir in dirs.iter().rev() {
        if !is_marked(dir) || fs::remove_dir(dir).is_err() {
            return;
        }
        unmark(dir);
    }
}

/// Creates the group of `plan`, and its missing parents.
fn make(plan: &GroupPlan) -> Result<PathBuf, ResourceError> {
    let cpuset_v1 = !plan.v2 && plan.label.split(',').any(|c| c == "cpuset");
    let attempt = || -> Result<PathBuf, Stop> {
        let mut dir = plan.base.clone();
        if plan.v2 {
            enable(&dir, &plan.enable)?;
        }
        for c in &plan.between {
            dir.push(c);
            match fs::create_dir(&dir) {
                Ok(()) => mark(&dir),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(create_err(&dir)(e)),
            }
            if cpuset_v1 {
                inherit_cpuset(&dir)?;
            }
            if plan.v2 {
                enable(&dir, &plan.enable)?;
            }
        }
        let leaf = dir.join(&plan.leaf);
        fs::create_dir(&leaf).map_err(create_err(&leaf))?;
        if cpuset_v1 {
            inherit_cpuset(&leaf).inspect_err(|_| {
                let _ = fs::remove_dir(&leaf);
            })?;
        }
        Ok(leaf)
    };
    let mut tries = 0;
    loop {
        match attempt() {
            Ok(leaf) => return Ok(leaf),
            Err(Stop::Vanished) if tries < 8 => tries += 1,
            Err(Stop::Vanished) => {
                prune(plan);
                let source = io::Error::from(ErrorKind::NotFound);
                return Err(ResourceError::Create { group: plan.dir(), source });
            }
            Err(Stop::Failed(e)) => {
                prune(plan);
                return Err(e);
            }
        }
    }
}

fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    Ok(File::options().read(true).custom_flags(libc::O_DIRECTORY).open(dir)?.into())
}

/// Removes `dir` and any groups the guest made inside it, retrying `EBUSY`
/// while the kernel releases the last tasks.
fn remove_tree(dir: &Path) -> io::Result<()> {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path())?;
            }
        }
    }
    let mut last = Ok(());
    patiently(|| match fs::remove_dir(dir) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
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
    pub(crate) fn create(
        hier: &Hierarchies,
        own: &str,
        limits: &[Limit],
        wanted: &Wanted,
        parent: Option<&Path>,
        leaf: &str,
    ) -> Result<Cgroups, ResourceError> {
        let layout = hier.layout().ok_or(ResourceError::NoCgroupFs)?;
        let plans = placement::place(hier, own, wanted, parent, leaf)?;
        let mut owner = Cgroups { layout, groups: Vec::with_capacity(plans.len()), detached: false };
        for plan in plans {
            let dir = make(&plan)?;
            let fd = match open_dir(&dir) {
                Ok(fd) => fd,
                Err(source) => {
                    let _ = fs::remove_dir(&dir);
                    prune(&plan);
                    return Err(ResourceError::group("opening", dir, source));
                }
            };
            owner.groups.push(Group { plan, dir, fd });
        }
        for limit in limits {
            let c = limit.controller();
            // Placement guarantees a group for every controller a limit needs.
            if let Some(g) = owner.groups.iter().find(|g| g.serves(c)) {
                limit.apply(&g.dir, &g.plan.base, g.plan.v2)?;
            }
        }
        Ok(owner)
    }

    /// The groups' directory fds, in join order. When the first is a v2
    /// group, it can be given to `clone3` with `CLONE_INTO_CGROUP`.
    pub(crate) fn dir_fds(&self) -> Vec<RawFd> {
        self.groups.iter().map(|g| g.fd.as_raw_fd()).collect()
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

    /// Whether no process is left in the guest's groups.
    pub(crate) fn is_empty(&self) -> bool {
        self.groups.first().is_none_or(|g| procs(&g.dir).is_empty())
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

    /// The group that freezes: v2 `cgroup.freeze` (Linux 5.2) where there is
    /// a v2 group, else the v1 freezer.
    fn freezer(&self) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| g.plan.v2 && g.dir.join("cgroup.freeze").exists())
            .or_else(|| self.groups.iter().find(|g| !g.plan.v2 && g.serves(Controller::Freezer)))
    }

    /// Freezes (or thaws) every process of the guest and waits until the
    /// kernel reports it done.
    pub(crate) fn set_frozen(&self, frozen: bool) -> Result<(), ResourceError> {
        let op = if frozen { "freezing" } else { "thawing" };
        let Some(g) = self.freezer() else {
            return Err(ResourceError::MissingController {
                controller: "freezer",
                layout: self.layout,
                reason: "no v1 freezer hierarchy and no cgroup2 mount".into(),
            });
        };
        let ctl = FreezerController::new(g.dir.clone(), g.plan.base.clone(), g.plan.v2);
        let write = || if frozen { ctl.freeze() } else { ctl.thaw() };
        write().map_err(|e| ResourceError::group(op, &g.dir, io::Error::other(e)))?;
        let done = patiently(|| {
            if g.plan.v2 {
                // cgroup.freeze says what was asked; cgroup.events says
                // whether the kernel got there (cgroup-v2.rst).
                let events = fs::read_to_string(g.dir.join("cgroup.events")).unwrap_or_default();
                events.lines().any(|l| l == if frozen { "frozen 1" } else { "frozen 0" })
            } else {
                let state = fs::read_to_string(g.dir.join("freezer.state")).unwrap_or_default();
                let want = if frozen { "FROZEN" } else { "THAWED" };
                // A v1 freeze can stall in FREEZING; writing again retries it.
                state.trim() == want || write().is_err()
            }
        });
        if done {
            Ok(())
        } else {
            Err(ResourceError::group(op, &g.dir, io::Error::from(ErrorKind::TimedOut)))
        }
    }

    /// Kills every process of the guest: v2 `cgroup.kill` (Linux 5.14)
    /// where there is a v2 group, else freeze, `SIGKILL` each process, thaw,
    /// until no new process shows up. Does not wait for them to be gone.
    pub(crate) fn kill_all(&self) -> Result<(), ResourceError> {
        if let Some(g) = self.groups.iter().find(|g| g.plan.v2 && g.dir.join("cgroup.kill").exists()) {
            return fs::write(g.dir.join("cgroup.kill"), "1")
                .map_err(|source| ResourceError::group("killing the processes of", &g.dir, source));
        }
        let freezer = self.groups.iter().find(|g| !g.plan.v2 && g.serves(Controller::Freezer));
        let Some(g) = freezer.or(self.groups.first()) else {
            return Ok(());
        };
        let mut signalled = BTreeSet::new();
        for _ in 0..16 {
            // Frozen processes can neither fork nor exit, so the list is
            // complete and no pid is reused while we signal.
            let frozen = freezer.is_some() && self.set_frozen(true).is_ok();
            let fresh: Vec<i32> = procs(&g.dir).into_iter().filter(|p| signalled.insert(*p)).collect();
            for pid in &fresh {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::SIGKILL);
            }
            if frozen {
                self.set_frozen(false)?;
            }
            if fresh.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Removes every group (and marked parents left empty). Groups that
    /// could not be removed stay owned, so a later call (or drop) tries
    /// again; the first error is returned.
    pub(crate) fn remove(&mut self) -> Result<(), ResourceError> {
        let mut first = None;
        let mut kept = Vec::new();
        for g in self.groups.drain(..) {
            match remove_tree(&g.dir) {
                Ok(()) => prune(&g.plan),
                Err(source) => {
                    first.get_or_insert(ResourceError::group("removing", &g.dir, source));
                    kept.push(g);
                }
            }
        }
        self.groups = kept;
        first.map_or(Ok(()), Err)
    }

    /// Leaves the groups in place (for a detached guest).
    pub(crate) fn detach(&mut self) {
        self.detached = true;
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        if !self.detached {
            let _ = self.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Resources;
    use crate::resources::layout::tests::hybrid_mountinfo;
    use crate::resources::limits;

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
        let root = temp("create");
        hybrid_tree(&root);
        let hier = Hierarchies::parse(&hybrid_mountinfo(&root));
        let res = Resources::new().memory_max(32 << 20).pids_max(64).cpuset_cpus("1");
        let limits = limits::check(&res).unwrap();
        // The fake cpuset groups lack the files the kernel would give them,
        // so setting up `vguest` fails half way: a typed error, and nothing
        // of ours is left in any hierarchy.
        let err = Cgroups::create(&hier, OWN, &limits, &limits::wanted(&limits), None, "g.1.0").unwrap_err();
        assert!(matches!(err, ResourceError::Create { .. }), "{err}");
        assert!(!root.join("memory/process_api/abc/vguest").exists());
        assert!(!root.join("cpuset/vguest").exists(), "marked empty parent removed");
        assert!(!root.join("unified/vguest").exists());

        // Without cpuset the fake tree is complete.
        let res = Resources::new().memory_max(32 << 20).pids_max(64);
        let limits = limits::check(&res).unwrap();
        let mut owner =
            Cgroups::create(&hier, OWN, &limits, &limits::wanted(&limits), None, "g.1.1").unwrap();
        let paths: Vec<PathBuf> = owner.paths().map(Path::to_path_buf).collect();
        assert_eq!(paths[0], root.join("unified/vguest/g.1.1"));
        assert_eq!(owner.v2_fd(), Some(owner.dir_fds()[0]));
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
            assert!(!p.parent().unwrap().exists(), "{p:?} parent");
        }
        assert!(root.join("memory/process_api/abc").exists(), "the caller's own group stays");
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
        let mut owner = Cgroups::create(&hier, OWN, &[], &wanted, None, "g.2.0").unwrap();
        owner.remove().unwrap();
        assert!(root.join("pids/vguest/other").exists());
        assert!(!root.join("pids/vguest/g.2.0").exists());
        fs::remove_dir_all(root).unwrap();
    }
}
