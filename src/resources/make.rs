//! Creating one group and its missing parents, and removing parents
//! vguest made once they are empty.
//!
//! Intermediate groups (`vguest`, or the components of a configured
//! parent) that this layer creates carry the extended attribute
//! `trusted.vguest` (kernfs keeps xattrs on cgroup directories). A group
//! without the mark (made by an administrator, possibly with limits for
//! all guests) is never removed. Where the attribute cannot be set, the
//! mark is kept in this process only.
//!
//! Making, marking and removing the `vguest` parent in every hierarchy
//! for every guest cost as much as the guest's own groups, so a process
//! keeps the intermediate groups it made or found for its lifetime: later
//! guests only make their leaves. When the process exits normally
//! (`exit(3)`, also on return from `main`), or when
//! [`remove_empty_parents`] is called, every kept group that carries the
//! mark and is empty is removed, deepest first. Processes racing with a
//! removal are safe: `rmdir` of a group that still has children fails, and
//! a spawn whose parent vanished under it (`ENOENT`) forgets what it kept
//! and creates it again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::error::ResourceError;
use super::placement::GroupPlan;
use crate::sys::xattr;

// The mark on intermediate groups this layer created (kept with the sweep,
// which checks it too).
use super::sweep::{MARK, MARK_VALUE, made_by_vguest};

/// Marks kept in this process where xattrs are unavailable.
static MARKED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn mark(dir: &Path) {
    if xattr::set(dir, MARK, MARK_VALUE).is_err() {
        MARKED.lock().unwrap_or_else(|e| e.into_inner()).insert(dir.to_path_buf());
    }
}

pub(super) fn is_marked(dir: &Path) -> bool {
    xattr::has(dir, MARK, MARK_VALUE) || MARKED.lock().unwrap_or_else(|e| e.into_inner()).contains(dir)
}

/// [`is_marked`] for the exit handler, which never waits for a lock
/// (another thread may hold it, or have held it when a `fork(2)` copied
/// this process): `None` when it could not tell.
fn is_marked_at_exit(dir: &Path) -> Option<bool> {
    if made_by_vguest(dir) {
        return Some(true);
    }
    MARKED.try_lock().ok().map(|marked| marked.contains(dir))
}

fn unmark(dir: &Path) {
    MARKED.lock().unwrap_or_else(|e| e.into_inner()).remove(dir);
}

/// Intermediate groups (and, for v2, the caller's own group) known to
/// exist, each with the v2 controllers known to be enabled below it.
static KEPT: Mutex<BTreeMap<PathBuf, BTreeSet<&'static str>>> = Mutex::new(BTreeMap::new());

/// Whether `dir` is known to exist with `controllers` enabled below it.
fn is_kept(dir: &Path, controllers: &[&'static str]) -> bool {
    let kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    kept.get(dir).is_some_and(|on| controllers.iter().all(|c| on.contains(c)))
}

/// The process that registered the exit handler: a child made by
/// `fork(2)` inherits the handler and the kept groups, which are its
/// parent's to remove, not its own.
static OWNER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Remembers `dir` (with `controllers` enabled below it) until exit.
fn keep(dir: &Path, controllers: &[&'static str]) {
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| {
        extern "C" fn at_exit() {
            if OWNER.load(std::sync::atomic::Ordering::Relaxed) == std::process::id() {
                remove_kept(true);
            }
        }
        OWNER.store(std::process::id(), std::sync::atomic::Ordering::Relaxed);
        // `at_exit` never unwinds: it only ignores errors.
        crate::sys::atexit::register(at_exit);
    });
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    kept.entry(dir.to_path_buf()).or_default().extend(controllers.iter().copied());
}

/// Forgets what `plan` kept: a parent vanished (another process removed
/// it), so the next attempt checks every level again.
fn forget(plan: &GroupPlan) {
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    let mut dir = plan.base.clone();
    kept.remove(&dir);
    for c in &plan.between {
        dir.push(c);
        kept.remove(&dir);
    }
}

/// Removes the kept groups that vguest made and that are empty, deepest
/// first. Those still in use stay kept (for the next call, or exit); the
/// others are forgotten. At exit (`at_exit`), a lock held by another
/// thread is not waited for.
fn remove_kept(at_exit: bool) {
    // Held throughout, so that two callers never see half of the work.
    let mut kept = match at_exit {
        true => match KEPT.try_lock() {
            Ok(kept) => kept,
            Err(_) => return,
        },
        false => KEPT.lock().unwrap_or_else(|e| e.into_inner()),
    };
    let mut dirs: Vec<PathBuf> = kept.keys().cloned().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in dirs {
        let marked = match at_exit {
            true => match is_marked_at_exit(&dir) {
                Some(marked) => marked,
                None => continue,
            },
            false => is_marked(&dir),
        };
        if !marked {
            kept.remove(&dir);
            continue;
        }
        match fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(_) => continue,
        }
        if !at_exit {
            unmark(&dir);
        }
        kept.remove(&dir);
    }
}

/// Removes the intermediate cgroups (`vguest`, or the components of a
/// [`Resources::parent`](super::Resources::parent)) that vguest made and
/// that no guest uses any more.
///
/// A process keeps the intermediate groups its guests were placed in for
/// its lifetime, so that later guests make only their own groups; they
/// are removed when the process exits normally. A long-running program
/// that is done with guests for a while may call this to remove them
/// earlier (the next guest makes them again). Groups vguest did not make,
/// and groups that hold guests (of any process), are left alone.
///
/// ```no_run
/// use vguest::{Command, Guest, Resources};
///
/// let mut guest = Guest::builder("job")
///     .resources(Resources::new().pids_max(64))
///     .command(Command::new("/bin/true"))
///     .spawn()?;
/// guest.wait()?; // removes the guest's own groups
/// vguest::resources::remove_empty_parents(); // and now `vguest` too
/// # Ok::<(), vguest::Error>(())
/// ```
pub fn remove_empty_parents() {
    remove_kept(false);
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

/// After a guest's group was removed: its intermediate groups stay if this
/// process keeps them (it made or found them for its own guests), and are
/// pruned otherwise (the groups of a guest another process spawned).
pub(super) fn release(plan: &GroupPlan) {
    let mut dir = plan.base.clone();
    let kept = plan.between.iter().all(|c| {
        dir.push(c);
        is_kept(&dir, &[])
    });
    if !kept {
        prune(plan);
    }
}

/// After a failed creation: removes the marked intermediate groups of
/// `plan`, deepest first, up to the first one that is unmarked, busy or
/// gone, and forgets that they were kept.
pub(super) fn prune(plan: &GroupPlan) {
    forget(plan);
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
pub(super) fn make(plan: &GroupPlan) -> Result<PathBuf, ResourceError> {
    let cpuset_v1 = !plan.v2 && plan.label.split(',').any(|c| c == "cpuset");
    let attempt = || -> Result<PathBuf, Stop> {
        let mut dir = plan.base.clone();
        if plan.v2 && !is_kept(&dir, &plan.enable) {
            enable(&dir, &plan.enable)?;
            keep(&dir, &plan.enable);
        }
        for c in &plan.between {
            dir.push(c);
            if is_kept(&dir, &plan.enable) {
                continue;
            }
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
            keep(&dir, &plan.enable);
        }
        // Recorded before the leaf exists: should this process die right
        // after, the leaf is still found as its own (`sweep.rs`).
        super::sweep::register(&dir);
        let leaf = dir.join(&plan.leaf);
        crate::failpoint::check("cgroup.mkdir")
            .map_err(|e| Stop::Failed(ResourceError::Create { group: leaf.clone(), source: e }))?;
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
            Err(Stop::Vanished) if tries < 8 => {
                forget(plan);
                tries += 1;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vguest-make-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn v2_enables_only_what_is_missing_and_explains_refusals() {
        let dir = temp("enable");
        let file = dir.join("cgroup.subtree_control");
        fs::write(&file, "cpu pids\n").unwrap();
        assert!(enable(&dir, &["memory", "pids"]).is_ok());
        assert_eq!(fs::read_to_string(&file).unwrap(), "+memory");
        fs::write(&file, "memory pids\n").unwrap();
        assert!(enable(&dir, &["memory", "pids"]).is_ok());
        assert_eq!(fs::read_to_string(&file).unwrap(), "memory pids\n", "nothing written when all are there");

        // The kernel's EBUSY for a group holding processes cannot be staged
        // in a plain tree; any refused write must come back as a
        // Delegation error that explains the rule, not a bare errno. A file
        // nobody may write (not even root) stands in for it.
        fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink("/proc/version", &file).unwrap();
        let refused = match enable(&dir, &["memory"]) {
            Err(Stop::Failed(e)) => e,
            _ => panic!("a refused write was not reported"),
        };
        match &refused {
            ResourceError::Delegation { controllers, group, .. } => {
                assert_eq!(controllers, "memory");
                assert_eq!(group, &dir);
            }
            other => panic!("{other:?}"),
        }
        let text = refused.to_string();
        assert!(text.contains("no processes of their own") && text.contains("Resources::parent"), "{text}");
        fs::remove_dir_all(dir).unwrap();
    }
}
