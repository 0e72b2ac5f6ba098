//! [`Group`]: one of a guest's groups, and what is done to one group
//! directory: opening it, listing and killing the processes in it and
//! beneath it, and removing it with the groups the guest made inside.
//!
//! The owner (`owner/`) makes a `Group` for each group it creates, and
//! `adopt.rs` for each group of a guest another process spawned; the owner,
//! `control.rs` and `stats.rs` read them. The helpers take a directory and
//! touch only it and the groups below it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::hierarchies::Controller;
use super::placement::GroupPlan;
use crate::patience::patiently;
use crate::sys::pidfd;

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

/// Kills every process in the group `dir` and beneath it without a
/// freezer (a guest's group whose owner is gone): v2 `cgroup.kill`, or
/// [`kill_listed`] until no new process shows up. Returns how many
/// processes it signalled (v2: how many were listed).
pub(super) fn kill_group(dir: &Path) -> usize {
    if dir.join("cgroup.kill").exists() {
        let listed = procs(dir).len();
        return match listed > 0 && fs::write(dir.join("cgroup.kill"), "1").is_ok() {
            true => listed,
            false => 0,
        };
    }
    let (mut signalled, mut total) = (BTreeMap::new(), 0);
    for _ in 0..16 {
        let fresh = kill_listed(|| procs(dir), &mut signalled);
        total += fresh;
        if fresh == 0 {
            break;
        }
    }
    total
}

/// Sends `SIGKILL` to every process `list` names that is not in
/// `signalled` already (by a pidfd that still refers to a live process),
/// and returns how many it signalled.
///
/// A pid read from `cgroup.procs` may belong to another process by the time
/// it is signalled: the listed one exited and the pid was reused. So each
/// pid is first opened as a pidfd, then the list is read again, and only
/// pidfds whose pid is still listed are signalled. A process that is alive
/// when its pidfd is signalled has held its pid since the pidfd was opened,
/// so the second reading listed that very process (`pidfd_open(2)`); one
/// that died meanwhile makes the signal fail with `ESRCH`, harmlessly.
pub(super) fn kill_listed(
    mut list: impl FnMut() -> Vec<i32>,
    signalled: &mut BTreeMap<i32, OwnedFd>,
) -> usize {
    let live = |fd: &OwnedFd| pidfd::send_signal(fd.as_fd(), 0).is_ok();
    let opened: Vec<(i32, OwnedFd)> = list()
        .into_iter()
        .filter(|pid| !signalled.get(pid).is_some_and(live))
        .filter_map(|pid| Some((pid, pidfd::open(pid).ok()?)))
        .collect();
    let still: BTreeSet<i32> = list().into_iter().collect();
    let mut fresh = 0;
    for (pid, fd) in opened {
        if still.contains(&pid) && pidfd::send_signal(fd.as_fd(), libc::SIGKILL).is_ok() {
            signalled.insert(pid, fd);
            fresh += 1;
        }
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid listed once but gone from the group by the second reading (it
    /// exited and the pid now names an outsider) is never signalled.
    #[test]
    fn a_pid_that_left_the_list_is_not_signalled() {
        let mut outsider = std::process::Command::new("sleep").arg("100").spawn().unwrap();
        let pid = outsider.id() as i32;
        let mut readings = [vec![pid], vec![]].into_iter();
        let mut signalled = BTreeMap::new();
        let fresh = kill_listed(|| readings.next().unwrap_or_default(), &mut signalled);
        assert_eq!(fresh, 0);
        assert!(outsider.try_wait().unwrap().is_none(), "a process outside the group was killed");

        // Listed both times: a member, signalled once.
        assert_eq!(kill_listed(|| vec![pid], &mut signalled), 1);
        assert_eq!(outsider.wait().unwrap().code(), None);
        assert!(signalled.contains_key(&pid));
    }
}
