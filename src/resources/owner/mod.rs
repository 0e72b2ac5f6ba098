//! [`Cgroups`]: the owner of a guest's groups. It creates them (see
//! `create.rs` here and `make.rs`), applies the limits, hands out directory
//! fds for joining, and removes everything it made when dropped (unless
//! detached). Freezing and killing are in `control.rs`.
//!
//! Data flows one way: `resources::create` (at spawn) and `adopt.rs` (at
//! attach) produce a `Cgroups`; the spawn and `Guest::enter` take its
//! directory fds for the child to join, or have the parent move the child
//! in ([`Cgroups::join`]); the guest's handle keeps it, `control.rs` and
//! `stats.rs` read its [`Group`]s, and [`Cgroups::remove`] or the drop
//! ends it. This file holds the type, its views, joining and removal;
//! `create.rs` makes the groups from placement's plans, and `tests.rs`
//! tests both on a fake hierarchy tree (and the v1 freezer on the real
//! kernel).

mod create;
#[cfg(test)]
mod tests;

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::error::ResourceError;
use super::group::{Group, open_dir, procs, remove_tree};
use super::layout::CgroupLayout;
use super::limits::Limit;
use super::make::{prune, release};
use super::placement::GroupPlan;
use super::sweep;

/// The directories of a guest's groups, opened for one process to join
/// them: each fd with whether its group is a v2 group.
#[derive(Debug, Default)]
pub(crate) struct GroupDirs(Vec<(OwnedFd, bool)>);

impl GroupDirs {
    /// As [`Cgroups::dir_fds`].
    pub(crate) fn raw(&self) -> Vec<(RawFd, bool)> {
        self.0.iter().map(|(fd, v2)| (fd.as_raw_fd(), *v2)).collect()
    }

    /// As [`Cgroups::v2_fd`].
    pub(crate) fn v2(&self) -> Option<RawFd> {
        self.0.first().filter(|(_, v2)| *v2).map(|(fd, _)| fd.as_raw_fd())
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
    /// Whether the groups are marked as a detached guest's (never swept)
    /// rather than this process's (see `sweep.rs`).
    marked_detached: bool,
}

impl Cgroups {
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
        self.groups.iter().map(|g| (g.raw_fd(), g.plan.v2)).collect()
    }

    /// Closes the directory fds once the spawn has joined the groups: a
    /// live guest holds no descriptor for them ([`open_dirs`] opens them
    /// again for a process entering the guest).
    ///
    /// [`open_dirs`]: Cgroups::open_dirs
    pub(crate) fn close_fds(&mut self) {
        for group in &mut self.groups {
            group.close_fd();
        }
    }

    /// The groups' directories opened again, in join order, for a process
    /// entering the guest.
    pub(crate) fn open_dirs(&self) -> io::Result<GroupDirs> {
        let fds =
            self.groups.iter().map(|g| Ok((open_dir(&g.dir)?, g.plan.v2))).collect::<io::Result<_>>()?;
        Ok(GroupDirs(fds))
    }

    /// The v2 group's fd, for `CLONE_INTO_CGROUP`.
    pub(crate) fn v2_fd(&self) -> Option<RawFd> {
        self.groups.first().filter(|g| g.plan.v2).map(|g| g.raw_fd())
    }

    /// Keeps `value` as `name` (a `trusted.` attribute, which only root of
    /// the host's user namespace can write) on the first group's
    /// directory, for a process that attaches to the guest later.
    pub(crate) fn set_note(&self, name: &std::ffi::CStr, value: &[u8]) -> io::Result<()> {
        let Some(g) = self.groups.first() else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        crate::sys::xattr::set(&g.dir, name, value)
    }

    /// What [`set_note`](Self::set_note) kept under `name`, on whichever
    /// group it is (an adopted guest's groups come in `/proc`'s order).
    pub(crate) fn note(&self, name: &std::ffi::CStr) -> Option<Vec<u8>> {
        self.groups.iter().find_map(|g| crate::sys::xattr::get(&g.dir, name))
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
            // Whose they are is for their owner to say.
            marked_detached: true,
        }
    }

    /// Leaves the groups in place (for a detached guest), marked so that
    /// no sweep removes them once this process is gone.
    pub(crate) fn detach(&mut self) {
        self.detached = true;
        self.mark(true);
    }

    /// Marks the groups (and those made later) as this process's, to be
    /// swept when it dies, or as a detached guest's.
    pub(crate) fn mark(&mut self, detached: bool) {
        if self.marked_detached == detached {
            return;
        }
        self.marked_detached = detached;
        for group in &self.groups {
            sweep::mark_group(&group.dir, detached);
        }
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
