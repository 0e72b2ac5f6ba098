//! Freezing, thawing and killing every process of a guest.
//!
//! v2 offers both in every group, controller or not: `cgroup.freeze`
//! (Linux 5.2; `cgroup.events` reports when the kernel got there) and
//! `cgroup.kill` (5.14). On v1 the freezer controller pauses
//! (`freezer.state`, which may stall in `FREEZING` and is written again),
//! and killing freezes, signals every listed process and thaws, until no
//! new process shows up: frozen processes can neither fork nor exit, so the
//! list is complete. Each process is signalled through a pidfd opened
//! before a second reading of the list, so a pid reused by a process
//! outside the guest is never signalled, with or without a freezer.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, OwnedFd};

use cgroups_rs::fs::freezer::FreezerController;

use super::error::ResourceError;
use super::group::{Group, procs};
use super::hierarchies::Controller;
use super::owner::Cgroups;
use super::write::io_error;
use crate::patience::patiently;
use crate::sys::pidfd;

impl Cgroups {
    /// The group that freezes: v2 `cgroup.freeze` (Linux 5.2) where there is
    /// a v2 group, else the v1 freezer.
    fn freezer(&self) -> Option<&Group> {
        self.groups()
            .iter()
            .find(|g| g.plan.v2 && g.dir.join("cgroup.freeze").exists())
            .or_else(|| self.groups().iter().find(|g| !g.plan.v2 && g.serves(Controller::Freezer)))
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
        write().map_err(|e| ResourceError::group(op, &g.dir, io_error(e)))?;
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
        if let Some(g) = self.groups().iter().find(|g| g.plan.v2 && g.dir.join("cgroup.kill").exists()) {
            return fs::write(g.dir.join("cgroup.kill"), "1")
                .map_err(|source| ResourceError::group("killing the processes of", &g.dir, source));
        }
        let freezer = self.groups().iter().find(|g| !g.plan.v2 && g.serves(Controller::Freezer));
        let Some(g) = freezer.or(self.groups().first()) else {
            return Ok(());
        };
        let mut signalled = BTreeMap::new();
        for _ in 0..16 {
            // Frozen processes can neither fork nor exit, so the list is
            // complete; the pidfds keep a pid that was reused meanwhile
            // (no freezer, or a freeze that failed) from being signalled.
            let frozen = freezer.is_some() && self.set_frozen(true).is_ok();
            let fresh = kill_listed(|| procs(&g.dir), &mut signalled);
            if frozen {
                self.set_frozen(false)?;
            }
            if fresh == 0 {
                break;
            }
        }
        Ok(())
    }
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
fn kill_listed(mut list: impl FnMut() -> Vec<i32>, signalled: &mut BTreeMap<i32, OwnedFd>) -> usize {
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
