//! Making a guest's groups: [`Cgroups::create`] turns placement's plans
//! into groups with their limits written, and [`Cgroups::create_pending`]
//! makes the v1 groups a spawn deferred.
//!
//! `resources::create` calls it with the host's hierarchies, the caller's
//! `/proc/self/cgroup` text and the checked limits; `placement` decides
//! the groups, `make.rs` makes each one (and its missing parents), and
//! `Limit::apply` writes the limits. It produces the [`Cgroups`] that owns
//! them (`mod.rs`), whose drop removes everything made so far when a step
//! fails.

use std::fs;
use std::os::fd::RawFd;
use std::path::Path;

use super::Cgroups;
use crate::resources::error::ResourceError;
use crate::resources::group::{Group, open_dir};
use crate::resources::hierarchies::Hierarchies;
use crate::resources::limits::Limit;
use crate::resources::make::{make, prune};
use crate::resources::placement::{self, GroupPlan, Wanted};
use crate::resources::sweep;

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
        // What guests of owners that died left beneath the same parents.
        sweep::sweep_plans(&plans);
        // Until the end, a failure drops `owner`, which discards it all.
        let mut owner = Cgroups {
            layout,
            groups: Vec::with_capacity(plans.len()),
            pending: Vec::new(),
            pending_limits: Vec::new(),
            failed: true,
            detached: false,
            marked_detached: false,
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
        Ok(self.groups[first..].iter().map(|g| g.raw_fd()).collect())
    }

    /// Makes the group of `plan` and keeps it with an fd of its directory.
    fn add_group(&mut self, plan: GroupPlan) -> Result<(), ResourceError> {
        let dir = make(&plan)?;
        sweep::mark_group(&dir, self.marked_detached);
        match open_dir(&dir) {
            Ok(fd) => {
                self.groups.push(Group::new(plan, dir, fd));
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
}
