//! [`Group`]: one of a guest's groups, and what is done to one group
//! directory: opening it, listing the processes in it and beneath it, and
//! removing it with the groups the guest made inside.
//!
//! The owner (`owner/`) makes a `Group` for each group it creates, and
//! `adopt.rs` for each group of a guest another process spawned; the owner,
//! `control.rs` and `stats.rs` read them. The helpers take a directory and
//! touch only it and the groups below it.

use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::hierarchies::Controller;
use super::placement::GroupPlan;
use crate::patience::patiently;

/// One of the guest's groups.
#[derive(Debug)]
pub(crate) struct Group {
    pub plan: GroupPlan,
    pub dir: PathBuf,
    /// The directory's fd while a spawn needs it (`None` afterwards: a
    /// live guest holds no descriptor for its groups).
    fd: Option<OwnedFd>,
}

impl Group {
    pub(super) fn new(plan: GroupPlan, dir: PathBuf, fd: OwnedFd) -> Group {
        Group { plan, dir, fd: Some(fd) }
    }

    /// A group known by its directory alone (an attached guest's).
    pub(super) fn unopened(plan: GroupPlan, dir: PathBuf) -> Group {
        Group { plan, dir, fd: None }
    }

    pub(crate) fn serves(&self, c: Controller) -> bool {
        self.plan.serves.contains(&c)
    }

    /// The fd of the group's directory, for joining it (-1 once closed).
    pub(super) fn raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |fd| fd.as_raw_fd())
    }

    pub(super) fn close_fd(&mut self) {
        self.fd = None;
    }
}

pub(super) fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    Ok(File::options().read(true).custom_flags(libc::O_DIRECTORY).open(dir)?.into())
}

/// Removes `dir` and any groups the guest made inside it, retrying `EBUSY`
/// while the kernel releases the last tasks.
pub(super) fn remove_tree(dir: &Path) -> io::Result<()> {
    crate::failpoint::check("cgroup.remove")?;
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
