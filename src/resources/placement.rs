//! Where a guest's groups go: one group per hierarchy that serves one of
//! the controllers it needs, beneath `vguest` in the caller's own group of
//! that hierarchy (or beneath a configured parent).
//!
//! The caller's groups come from `/proc/self/cgroup` text (`cgroups(7)`:
//! `hierarchy-ID:controller-list:cgroup-path`, `0::path` for v2), the
//! hierarchies from the mount table; the only file system access is reading
//! `cgroup.controllers` and `cgroup.subtree_control` below the mount points
//! given, so the decisions are unit-tested on a temporary tree.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::error::ResourceError;
use super::hierarchies::{Controller, Hierarchies};
use super::layout::CgroupLayout;

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

/// The caller's groups, parsed from `/proc/self/cgroup`.
#[derive(Debug, Default)]
struct OwnGroups<'a> {
    /// (controllers, path) for each v1 hierarchy.
    v1: Vec<(Vec<&'a str>, &'a str)>,
    v2: Option<&'a str>,
}

fn parse_own(text: &str) -> OwnGroups<'_> {
    let mut own = OwnGroups::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(list), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" && list.is_empty() {
            own.v2 = Some(path);
        } else {
            own.v1.push((list.split(',').collect(), path));
        }
    }
    own
}

/// The caller's group directory in a hierarchy mounted at `point` whose
/// mount root is `root`.
fn own_dir(label: &str, group: &str, point: &Path, root: &Path) -> Result<PathBuf, ResourceError> {
    let bad =
        || ResourceError::Placement { hierarchy: label.into(), group: group.into(), mount: point.into() };
    let path = Path::new(group);
    // A group outside our cgroup namespace shows as `/..`.
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(bad());
    }
    let rel = path.strip_prefix(root).map_err(|_| bad())?;
    Ok(point.join(rel))
}

/// Checks a configured parent and splits it into components.
pub(crate) fn parent_components(parent: &Path) -> Result<Vec<OsString>, ResourceError> {
    let bad = |reason| ResourceError::InvalidParent { parent: parent.into(), reason };
    let mut out = Vec::new();
    for c in parent.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(name) => out.push(name.to_os_string()),
            _ => return Err(bad("only plain names are allowed (no '.' or '..')")),
        }
    }
    if out.is_empty() {
        return Err(bad("it names the hierarchy's root"));
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::hierarchies::tests::{hybrid_mountinfo, v1_mountinfo, v2_mountinfo};

    const HYBRID_SELF: &str = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n\
        4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vguest-placement-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn wanted(hard: &[Controller]) -> Wanted {
        Wanted {
            hard: hard.iter().copied().collect(),
            soft: [Controller::Memory, Controller::Pids, Controller::Cpuacct, Controller::Freezer].into(),
        }
    }

    #[test]
    fn hybrid_uses_v1_for_limits_and_the_unified_mount_for_membership() {
        let root = temp("hybrid");
        std::fs::create_dir_all(root.join("unified")).unwrap();
        std::fs::write(root.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
        std::fs::write(root.join("unified/cgroup.subtree_control"), "").unwrap();
        let hier = Hierarchies::parse(&hybrid_mountinfo(&root));
        let plans = place(&hier, HYBRID_SELF, &wanted(&[Controller::Memory, Controller::Cpu]), None, "g.1.0")
            .unwrap();
        let labels: Vec<&str> = plans.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["unified", "memory", "cpu", "cpuacct", "pids", "freezer"]);
        let unified = &plans[0];
        assert!(unified.v2 && unified.enable.is_empty());
        // cpuacct and freezer are v1 fallbacks for what the v2 group offers.
        assert_eq!(unified.serves, [Controller::Cpuacct, Controller::Freezer]);
        assert_eq!(plans[3].fallback, [(Controller::Cpuacct, "cpu.stat")]);
        assert_eq!(plans[5].fallback, [(Controller::Freezer, "cgroup.kill")]);
        assert!(plans[1].fallback.is_empty());
        assert_eq!(unified.dir(), root.join("unified/vguest/g.1.0"));
        // The memory group goes below the caller's own memory group.
        assert_eq!(plans[1].dir(), root.join("memory/process_api/abc/vguest/g.1.0"));
        assert_eq!(plans[4].dir(), root.join("pids/vguest/g.1.0"));
        // A configured parent replaces `vguest`: absolute from the
        // hierarchy's root, relative beneath the caller's own group.
        let plans =
            place(&hier, HYBRID_SELF, &wanted(&[]), Some(Path::new("/machine/web")), "g.1.1").unwrap();
        assert_eq!(plans[1].dir(), root.join("memory/machine/web/g.1.1"));
        let plans = place(&hier, HYBRID_SELF, &wanted(&[]), Some(Path::new("pool/a")), "g.1.2").unwrap();
        assert_eq!(plans[1].dir(), root.join("memory/process_api/abc/pool/a/g.1.2"));
        assert_eq!(plans[3].dir(), root.join("pids/pool/a/g.1.2"));
        // Without the caller's v1 lines its groups cannot be found.
        let err = place(&hier, "0::/\n", &wanted(&[Controller::Io]), None, "x").unwrap_err();
        assert!(matches!(err, ResourceError::Placement { .. }), "{err}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn v1_co_mounted_cpu_and_cpuacct_share_one_group() {
        let root = temp("v1");
        let hier = Hierarchies::parse(&v1_mountinfo(&root));
        let own = "6:pids:/\n5:blkio:/\n4:freezer:/\n3:memory:/user\n2:cpuset:/\n1:cpu,cpuacct:/svc\n";
        let plans = place(&hier, own, &wanted(&[Controller::Cpu, Controller::Cpuset]), None, "l").unwrap();
        let labels: Vec<&str> = plans.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["memory", "cpu,cpuacct", "cpuset", "pids", "freezer"]);
        assert_eq!(plans[1].serves, [Controller::Cpu, Controller::Cpuacct]);
        assert_eq!(plans[1].dir(), root.join("cpu,cpuacct/svc/vguest/l"));
        assert!(plans.iter().all(|p| !p.v2));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn v2_enables_limit_controllers_and_reports_missing_ones() {
        let root = temp("v2");
        let own = root.join("user.slice/app");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        std::fs::write(own.join("cgroup.subtree_control"), "").unwrap();
        let hier = Hierarchies::parse(&v2_mountinfo(&root));
        let plans = place(&hier, "0::/user.slice/app\n", &wanted(&[Controller::Memory]), None, "l").unwrap();
        assert_eq!(plans.len(), 1);
        let p = &plans[0];
        assert_eq!(p.dir(), root.join("user.slice/app/vguest/l"));
        // The limit forces a subtree_control write, so the accounting
        // controllers come along.
        assert_eq!(p.enable, ["memory", "pids"]);
        assert_eq!(
            p.serves,
            [Controller::Memory, Controller::Cpuacct, Controller::Freezer, Controller::Pids]
        );

        // Without limits nothing is written to the caller's group, and
        // controllers it does not already delegate are left out.
        let plans = place(&hier, "0::/user.slice/app\n", &wanted(&[]), None, "l").unwrap();
        assert!(plans[0].enable.is_empty());
        std::fs::write(own.join("cgroup.subtree_control"), "pids\n").unwrap();
        let plans = place(&hier, "0::/user.slice/app\n", &wanted(&[]), None, "l").unwrap();
        assert_eq!(plans[0].enable, ["pids"]);

        // cpuset is not delegated: a typed error naming it.
        let err =
            place(&hier, "0::/user.slice/app\n", &wanted(&[Controller::Cpuset]), None, "l").unwrap_err();
        match err {
            ResourceError::MissingController { controller, layout, reason } => {
                assert_eq!(controller, "cpuset");
                assert_eq!(layout, CgroupLayout::V2);
                assert!(reason.contains("does not delegate"), "{reason}");
            }
            other => panic!("{other}"),
        }
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn foreign_namespace_and_bad_parents_are_refused() {
        let root = temp("ns");
        let hier = Hierarchies::parse(&v1_mountinfo(&root));
        let own = "3:memory:/../outside\n6:pids:/\n4:freezer:/\n1:cpu,cpuacct:/\n";
        let err = place(&hier, own, &wanted(&[]), None, "l").unwrap_err();
        assert!(
            matches!(err, ResourceError::Placement { ref hierarchy, .. } if hierarchy == "memory"),
            "{err}"
        );
        for bad in ["/", "", "a/../b", "./a"] {
            let err = place(&hier, own, &wanted(&[]), Some(Path::new(bad)), "l").unwrap_err();
            assert!(matches!(err, ResourceError::InvalidParent { .. }), "{bad:?}: {err}");
        }
        // A mount whose root is a subgroup (bind mount, cgroup namespace).
        let text = format!("32 31 0:29 /lxc/c1 {}/pids rw - cgroup cgroup rw,pids\n", root.display());
        let hier = Hierarchies::parse(&text);
        let plans = place(&hier, "1:pids:/lxc/c1/app\n", &wanted(&[Controller::Pids]), None, "l").unwrap();
        assert_eq!(plans[0].dir(), root.join("pids/app/vguest/l"));
        std::fs::remove_dir_all(root).unwrap();
    }
}
