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

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, ErrorKind};

use cgroups_rs::fs::freezer::FreezerController;

use super::error::ResourceError;
use super::group::{Group, kill_listed, procs};
use super::hierarchies::Controller;
use super::owner::Cgroups;
use super::write::io_error;
use crate::patience::patiently;

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
