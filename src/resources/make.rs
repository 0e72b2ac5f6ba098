//! Creating one group and its missing parents, and removing parents
//! vguest made once they are empty.
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
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::error::ResourceError;
use super::placement::GroupPlan;
use crate::sys::xattr;

/// The mark on intermediate groups this layer created.
const MARK: &std::ffi::CStr = c"trusted.vguest";
const MARK_VALUE: &[u8] = b"made";

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

fn unmark(dir: &Path) {
    MARKED.lock().unwrap_or_else(|e| e.into_inner()).remove(dir);
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
pub(super) fn prune(plan: &GroupPlan) {
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
