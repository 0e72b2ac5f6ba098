//! Finding and removing what guests of a dead owner left: their groups.
//!
//! A guest's processes end with the process that spawned it (the built-in
//! init watches its owner, see `launch::owner_pipe`), and its links go
//! with its network namespace, but its groups stay until someone removes
//! them. So every group records who made it, and every parent who made
//! groups beneath it, in extended attributes (kernfs keeps them on cgroup
//! directories, v1 and v2):
//!
//! - a guest's own group: `trusted.vguest.owner` = `PID.START` of the
//!   process that spawned it (its pid and its start time in clock ticks
//!   after boot, which no later process with a reused pid shares), or
//!   `detached:PID.START` for a guest meant to outlive its owner;
//! - the parent of guests' groups: one `trusted.vguest.owner.PID.START`
//!   per process that placed guests there.
//!
//! Every spawn lists the attributes of the parents it places its guest in
//! (a few microseconds: one `listxattr(2)` per hierarchy, however many
//! guests exist) and sweeps each owner that has died: it kills whatever
//! still runs in that owner's groups (a guest whose payload is its PID 1
//! has no init to watch the owner), removes them, and drops the owner's
//! attribute. [`sweep`] does the same on request, and also finds groups
//! whose owner's record is gone. A detached guest is never touched; its
//! groups are removed once it has ended (a group with processes cannot
//! be removed).

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use super::error::ResourceError;
use super::group::{kill_group, remove_tree};
use super::placement::GroupPlan;
use crate::sys::xattr;

/// The attribute on a guest's own group.
const GROUP_MARK: &std::ffi::CStr = c"trusted.vguest.owner";
/// Whether `dir` carries the attribute vguest puts on the groups it makes
/// (`make.rs`, which also remembers those where it could not be set);
/// takes no lock.
pub(super) fn made_by_vguest(dir: &Path) -> bool {
    xattr::has(dir, MARK, MARK_VALUE)
}

/// The attribute, and its value, on the groups vguest makes.
pub(super) const MARK: &std::ffi::CStr = c"trusted.vguest";
pub(super) const MARK_VALUE: &[u8] = b"made";

/// The prefix of an owner's attribute on a parent.
const PARENT_PREFIX: &str = "trusted.vguest.owner.";
/// The prefix of the mark of a detached guest's group.
const DETACHED: &str = "detached:";

/// This process as an owner: `PID.START`.
pub(crate) fn me() -> &'static str {
    static ME: OnceLock<String> = OnceLock::new();
    ME.get_or_init(|| {
        let pid = std::process::id();
        format!("{pid}.{}", start_time(pid).unwrap_or(0))
    })
}

/// The start time of process `pid` in clock ticks after boot (field 22 of
/// `/proc/PID/stat`, counted after the parenthesised name).
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the owner `PID.START` still runs.
fn alive(owner: &str) -> bool {
    let Some((pid, start)) = owner.split_once('.') else {
        return false;
    };
    match (pid.parse(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => start_time(pid) == Some(start),
        _ => false,
    }
}

/// Marks a guest's group as this process's, or as a detached guest's.
pub(crate) fn mark_group(dir: &Path, detached: bool) {
    let value = match detached {
        true => format!("{DETACHED}{}", me()),
        false => me().to_string(),
    };
    let _ = xattr::set(dir, GROUP_MARK, value.as_bytes());
}

/// The parents this process recorded itself on, with their inodes.
static REGISTERED: Mutex<Vec<(PathBuf, u64)>> = Mutex::new(Vec::new());

/// Records this process as an owner of groups beneath `parent` (once per
/// parent and process; again if the parent was removed and made anew,
/// which a failed spawn or `remove_empty_parents` may do, and which takes
/// the records with it). At its exit the process takes its records back
/// where none of its groups remain ([`unregister_at_exit`]).
pub(crate) fn register(parent: &Path) {
    let Ok(ino) = fs::metadata(parent).map(|m| m.ino()) else {
        return;
    };
    let mut done = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|(d, i)| d == parent && *i == ino) {
        return;
    }
    if let Ok(name) = CString::new(format!("{PARENT_PREFIX}{}", me())) {
        if xattr::set(parent, &name, b"1").is_ok() {
            done.retain(|(d, _)| d != parent);
            done.push((parent.to_path_buf(), ino));
            AT_EXIT.call_once(|| {
                OWNER.store(std::process::id(), Ordering::Relaxed);
                crate::sys::atexit::register(unregister_at_exit);
            });
        }
    }
}

static AT_EXIT: Once = Once::new();
/// The process that registered the exit handler (a child forked without
/// exec inherits the handler, and must not take its parent's records).
static OWNER: AtomicU32 = AtomicU32::new(0);

/// At a normal exit: removes this process's record from each parent it
/// registered on where no group of its own remains beneath (groups it
/// leaves behind keep the record, for the next sweep to find them), and
/// then the parent too if nothing else is recorded on it or beneath it.
/// A lock held by another thread is not waited for.
extern "C" fn unregister_at_exit() {
    if OWNER.load(Ordering::Relaxed) != std::process::id() {
        return;
    }
    let Ok(done) = REGISTERED.try_lock() else {
        return;
    };
    let Ok(name) = CString::new(format!("{PARENT_PREFIX}{}", me())) else {
        return;
    };
    for (parent, _) in done.iter() {
        let ours = fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| xattr::get(&e.path(), GROUP_MARK).is_some_and(|mark| mark == me().as_bytes()));
        if !ours && xattr::remove(parent, &name).is_ok() {
            remove_abandoned(parent);
        }
    }
}

/// What a sweep removed.
///
/// ```no_run
/// let swept = vguest::resources::sweep(&vguest::Resources::new())?;
/// println!("{} groups of dead owners removed, {} processes killed", swept.groups, swept.killed);
/// # Ok::<(), vguest::Error>(())
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Groups removed.
    pub groups: usize,
    /// Processes killed in them (guests whose owner died and that had no
    /// init to end them).
    pub killed: usize,
}

/// The parent of the guest's group of `plan`.
fn parent_of(plan: &GroupPlan) -> PathBuf {
    let mut dir = plan.base.clone();
    dir.extend(&plan.between);
    dir
}

/// The spawn's sweep: the owners recorded on the parents of `plans` that
/// have died. Failures are left for the next sweep.
pub(crate) fn sweep_plans(plans: &[GroupPlan]) -> Swept {
    let mut swept = Swept::default();
    for plan in plans {
        sweep_parent(&parent_of(plan), false, &mut swept);
    }
    swept
}

/// Sweeps `parent`: each dead owner recorded there; with `thorough`, also
/// every group beneath it whose mark names a dead owner.
fn sweep_parent(parent: &Path, thorough: bool, swept: &mut Swept) {
    let Ok(names) = xattr::list(parent) else {
        return;
    };
    let mut dropped = false;
    for name in names {
        let Some(owner) = name.to_str().ok().and_then(|n| n.strip_prefix(PARENT_PREFIX)) else {
            continue;
        };
        if owner == me() || alive(owner) {
            continue;
        }
        let mut failed = 0;
        let pid = owner.split('.').next().unwrap_or_default();
        let suffix = format!(".{pid}.");
        let entries = fs::read_dir(parent).into_iter().flatten().flatten();
        for entry in entries.filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
            let leaf = entry.file_name();
            let named =
                leaf.to_string_lossy().rsplit_once(&suffix).is_some_and(|(_, n)| n.parse::<u64>().is_ok());
            if !named {
                continue;
            }
            let mark = xattr::get(&entry.path(), GROUP_MARK);
            match mark.as_deref().map(String::from_utf8_lossy) {
                Some(mark) if mark == owner => failed += usize::from(!remove_orphan(&entry.path(), swept)),
                // A detached guest's that has ended, or one made but not yet
                // marked when its owner died: removed if empty (the removal
                // of a group with processes fails, and it stays).
                Some(mark) if mark.strip_prefix(DETACHED) != Some(owner) => {}
                _ => swept.groups += usize::from(fs::remove_dir(entry.path()).is_ok()),
            }
        }
        // The record goes only with the last of the owner's groups, so
        // that a group whose removal failed is found again.
        if failed == 0 && xattr::remove(parent, &name).is_ok() {
            dropped = true;
        }
    }
    if dropped {
        remove_abandoned(parent);
    }
    if thorough {
        let entries = fs::read_dir(parent).into_iter().flatten().flatten();
        for entry in entries.filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
            let Some(mark) = xattr::get(&entry.path(), GROUP_MARK) else {
                continue;
            };
            let mark = String::from_utf8_lossy(&mark);
            match mark.strip_prefix(DETACHED) {
                Some(owner) if owner != me() && !alive(owner) => {
                    swept.groups += usize::from(fs::remove_dir(entry.path()).is_ok());
                }
                Some(_) => {}
                None if mark != me() && !alive(&mark) => {
                    remove_orphan(&entry.path(), swept);
                }
                None => {}
            }
        }
    }
}

/// Removes `parent`, whose last recorded owner was dead and has been
/// swept, if vguest made it and it is left empty: no group beneath it and
/// no owner recorded on it (its maker, killed, never removed it at its
/// exit). A spawn racing to make a group beneath it has recorded itself
/// first, or finds it gone and makes it again (`make.rs`).
fn remove_abandoned(parent: &Path) {
    let owned = xattr::list(parent)
        .map(|names| names.iter().any(|n| n.to_bytes().starts_with(PARENT_PREFIX.as_bytes())))
        .unwrap_or(true);
    let groups =
        fs::read_dir(parent).into_iter().flatten().flatten().any(|e| e.file_type().is_ok_and(|t| t.is_dir()));
    // The attribute alone (no lock: this runs at exit too).
    if !owned && !groups && made_by_vguest(parent) {
        let _ = fs::remove_dir(parent);
    }
}

/// Kills what runs in an orphaned group (and beneath it) and removes it;
/// whether it is gone.
fn remove_orphan(dir: &Path, swept: &mut Swept) -> bool {
    swept.killed += kill_group(dir);
    let removed = remove_tree(dir).is_ok();
    swept.groups += usize::from(removed);
    removed
}

/// Removes what guests of owners that have died left beneath the parents
/// `resources` places guests in: their groups, after killing whatever
/// still runs there. Guests marked detached (spawned with
/// [`kill_on_drop(false)`](crate::GuestBuilder::kill_on_drop), or
/// [`detach`](crate::Guest::detach)ed) are left alone while they run
/// (their groups go once they have ended), as are groups vguest did not
/// make.
///
/// Every spawn does this for the owners recorded on its parents, so a
/// program that spawns guests needs no call; this is for a manager that
/// wants the host clean before it starts, and it also finds groups whose
/// owner's record on the parent is gone.
///
/// ```no_run
/// use vguest::Resources;
///
/// let swept = vguest::resources::sweep(&Resources::new().pids_max(64))?;
/// println!("removed {} groups of guests whose owner died", swept.groups);
/// # Ok::<(), vguest::Error>(())
/// ```
pub fn sweep(resources: &super::Resources) -> Result<Swept, ResourceError> {
    let plans = super::plans(resources, "sweep")?;
    let mut swept = Swept::default();
    for plan in &plans {
        sweep_parent(&parent_of(plan), true, &mut swept);
    }
    Ok(swept)
}
