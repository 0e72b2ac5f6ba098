//! Where a guest's groups go: one group per hierarchy that serves one of
//! the controllers it needs, beneath `vguest` in the caller's own group of
//! that hierarchy (or beneath a configured parent).
//!
//! The caller's groups come from `/proc/self/cgroup` text (`cgroups(7)`:
//! `hierarchy-ID:controller-list:cgroup-path`, `0::path` for v2), the
//! hierarchies from the mount table; the only file system access is reading
//! `cgroup.controllers` and `cgroup.subtree_control` below the mount points
//! given, so the decisions are unit-tested on a temporary tree.
//!
//! Data flows one way: the owner (`owner/create.rs`) calls [`place`] with
//! the host's hierarchies, that text and the [`Wanted`] controllers (from
//! `limits.rs`), and gets a [`GroupPlan`] per group, which `make.rs`
//! makes. This file holds the plans and the decision; `paths.rs` turns
//! the caller's groups and a configured parent into paths, and `tests.rs`
//! tests the decision on v1, hybrid and v2 trees.

mod paths;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use self::paths::{own_dir, parse_own};
use super::error::ResourceError;
use super::hierarchies::{Controller, Hierarchies};
use super::layout::CgroupLayout;

pub(crate) use self::paths::parent_components;

/// The name of the group, beneath the caller's own, that holds the guests'
/// groups by default.
pub(crate) const DEFAULT_PARENT: &str = "vguest";

/// Which controllers a guest needs: `hard` ones for its limits (missing
/// means failure), `soft` ones for statistics, pause and kill (used where
/// available).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub hard: BTreeSet<Controller>,
    pub soft: BTreeSet<Controller>,
}

/// One group to create for the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupPlan {
    /// The hierarchy, for messages: `memory`, `cpu,cpuacct`, `unified`.
    pub label: String,
    /// Whether the hierarchy is cgroup v2.
    pub v2: bool,
    /// An existing group beneath which everything is created.
    pub base: PathBuf,
    /// Groups between `base` and the leaf, created if missing.
    pub between: Vec<OsString>,
    /// The guest's own group.
    pub leaf: String,
    /// The controllers this group serves for the guest.
    pub serves: Vec<Controller>,
    /// v1: controllers this group serves only if the guest's v2 group lacks
    /// the file named (an older kernel), with the file.
    pub fallback: Vec<(Controller, &'static str)>,
    /// v2: controllers to enable in `cgroup.subtree_control` of `base` and
    /// every group in `between`.
    pub enable: Vec<&'static str>,
}

impl GroupPlan {
    /// The guest's group directory.
    pub(crate) fn dir(&self) -> PathBuf {
        let mut dir = self.base.clone();
        dir.extend(&self.between);
        dir.push(&self.leaf);
        dir
    }
}

fn read_list(path: &Path) -> Result<Vec<String>, ResourceError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ResourceError::Detect { path: path.into(), source })?;
    Ok(text.split_whitespace().map(String::from).collect())
}

/// Decides the guest's groups.
///
/// `own` is the text of `/proc/self/cgroup`; `parent`, if given, replaces
/// `vguest`: a relative path lies beneath the caller's own group, an
/// absolute one beneath the hierarchy's mount point.
pub(crate) fn place(
    hier: &Hierarchies,
    own: &str,
    wanted: &Wanted,
    parent: Option<&Path>,
    leaf: &str,
) -> Result<Vec<GroupPlan>, ResourceError> {
    let layout = hier.layout().ok_or(ResourceError::NoCgroupFs)?;
    let own = parse_own(own);
    let (absolute, between) = match parent {
        Some(p) => (p.has_root(), parent_components(p)?),
        None => (false, vec![OsString::from(DEFAULT_PARENT)]),
    };
    let base_of = |label: &str, group: Option<&str>, point: &Path, root: &Path| match absolute {
        true => Ok(point.to_path_buf()),
        false => {
            let group = group.ok_or_else(|| ResourceError::Placement {
                hierarchy: label.into(),
                group: String::new(),
                mount: point.into(),
            })?;
            own_dir(label, group, point, root)
        }
    };
    let plan = |label: String, v2: bool, base: PathBuf| GroupPlan {
        label,
        v2,
        base,
        between: between.clone(),
        leaf: leaf.to_string(),
        serves: Vec::new(),
        fallback: Vec::new(),
        enable: Vec::new(),
    };

    // The v2 group always exists where v2 is mounted: membership,
    // `cgroup.kill`, `cgroup.freeze`, `cpu.stat` come with every v2 group.
    let mut v2_plan = match &hier.v2 {
        Some(m) => Some(plan("unified".into(), true, base_of("unified", own.v2, &m.point, &m.root)?)),
        None => None,
    };
    // The v2 base's controller lists matter only for controllers no v1
    // hierarchy holds (on a hybrid host usually none): read them only then.
    let v2_candidate = Controller::ALL.iter().any(|c| {
        (wanted.hard.contains(c) || wanted.soft.contains(c))
            && c.v2_name().is_some()
            && hier.v1_for(*c).is_none()
    });
    let (v2_available, v2_delegated) = match &v2_plan {
        Some(p) if v2_candidate => (
            read_list(&p.base.join("cgroup.controllers"))?,
            read_list(&p.base.join("cgroup.subtree_control"))?,
        ),
        _ => (Vec::new(), Vec::new()),
    };
    let mut v1_plans: Vec<(usize, GroupPlan)> = Vec::new();
    let mut v2_soft = Vec::new();

    for c in Controller::ALL {
        let hard = wanted.hard.contains(&c);
        if !hard && !wanted.soft.contains(&c) {
            continue;
        }
        if let Some(i) = hier.v1_for(c) {
            let m = &hier.v1[i];
            if !v1_plans.iter().any(|(j, _)| *j == i) {
                let label = m.controllers.join(",");
                let group =
                    own.v1.iter().find(|(list, _)| m.controllers.iter().all(|n| list.contains(&n.as_str())));
                let base = base_of(&label, group.map(|(_, p)| *p), &m.point, &m.root)?;
                v1_plans.push((i, plan(label, false, base)));
            }
            if let Some((_, p)) = v1_plans.iter_mut().find(|(j, _)| *j == i) {
                p.serves.push(c);
                // What every v2 group offers makes a v1 group needed for
                // statistics or freezing alone redundant: one group less
                // to create, join and remove.
                let core = match c {
                    Controller::Cpuacct => Some("cpu.stat"),
                    Controller::Freezer => Some("cgroup.kill"),
                    _ => None,
                };
                if let (Some(file), Some(v2), false) = (core, v2_plan.as_mut(), hard) {
                    p.fallback.push((c, file));
                    v2.serves.push(c);
                }
            }
            continue;
        }
        let Some(v2) = v2_plan.as_mut() else {
            if hard {
                return Err(missing(
                    c,
                    layout,
                    "no v1 hierarchy has it mounted and there is no cgroup2 mount".into(),
                ));
            }
            continue;
        };
        match c.v2_name() {
            None => v2.serves.push(c),
            Some(name) if v2_available.iter().any(|a| a == name) => {
                if hard {
                    v2.serves.push(c);
                    v2.enable.push(name);
                } else {
                    v2_soft.push((c, name));
                }
            }
            Some(name) => {
                if hard {
                    let reason = format!(
                        "{} does not list {name}: {}",
                        v2.base.join("cgroup.controllers").display(),
                        match layout {
                            CgroupLayout::Hybrid => "it is bound to no v1 hierarchy and not enabled for v2",
                            _ => "the group's parent does not delegate it",
                        }
                    );
                    return Err(missing(c, layout, reason));
                }
            }
        }
    }
    if let Some(v2) = v2_plan.as_mut() {
        // Accounting controllers come along when limits force a write to
        // the base's subtree_control anyway, or when it already has them;
        // the layer never writes to a group it did not create just for
        // statistics.
        let writing = v2.enable.iter().any(|n| !v2_delegated.iter().any(|d| d == n));
        for (c, name) in v2_soft {
            if writing || v2_delegated.iter().any(|d| d == name) {
                v2.serves.push(c);
                v2.enable.push(name);
            }
        }
    }
    Ok(v2_plan.into_iter().chain(v1_plans.into_iter().map(|(_, p)| p)).collect())
}

fn missing(c: Controller, layout: CgroupLayout, reason: String) -> ResourceError {
    let controller = match layout {
        CgroupLayout::V2 => c.v2_name().unwrap_or(c.v1_name()),
        _ => c.v1_name(),
    };
    ResourceError::MissingController { controller, layout, reason }
}
