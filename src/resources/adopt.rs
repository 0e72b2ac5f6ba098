//! Finding the groups of a running guest that another process spawned
//! (for [`Guest::attach`](crate::Guest::attach)), from its PID 1's
//! `/proc/PID/cgroup` and the host's mount table.
//!
//! A group counts as the guest's only if it looks like one the resource
//! layer made: its name is `NAME.PID.N` and it lies beneath a group named
//! `vguest` or one marked as made by vguest, and it is not the caller's
//! own. So a process attached to by mistake never makes its cgroups ours
//! to remove.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::error::ResourceError;
use super::group::Group;
use super::hierarchies::{Controller, Hierarchies};
use super::make::is_marked;
use super::owner::Cgroups;
use super::placement::{DEFAULT_PARENT, GroupPlan};

/// One line of `/proc/PID/cgroup`: (v1 controllers, or empty for v2; path).
fn lines(text: &str) -> impl Iterator<Item = (Vec<&str>, &str)> {
    text.lines().filter_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, list, path) = (parts.next()?, parts.next()?, parts.next()?);
        let controllers = if id == "0" && list.is_empty() { Vec::new() } else { list.split(',').collect() };
        Some((controllers, path))
    })
}

/// Whether `name` is a leaf the resource layer names: `NAME.PID.N`.
fn leaf_name(name: &str) -> bool {
    let mut parts = name.rsplitn(3, '.');
    let digits = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_some_and(|n| !n.is_empty())
}

/// The marked intermediate groups directly above `dir`, outermost first,
/// and the first unmarked one (where removal stops).
fn marked_parents(dir: &Path) -> (PathBuf, Vec<std::ffi::OsString>) {
    let mut between = Vec::new();
    let mut base = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    while is_marked(&base) {
        let Some(name) = base.file_name().map(|n| n.to_os_string()) else {
            break;
        };
        between.insert(0, name);
        base.pop();
    }
    (base, between)
}

impl Cgroups {
    /// The groups of the guest whose PID 1 is `pid`, as its
    /// `/proc/PID/cgroup` and the host's mount table show them; `None` when
    /// it has none. The groups are not removed on drop (their guest is not
    /// ours); [`Cgroups::remove`] removes them.
    pub(crate) fn adopt(pid: i32) -> Result<Option<Cgroups>, ResourceError> {
        let hier = Hierarchies::host()?;
        let read = |path: PathBuf| {
            fs::read_to_string(&path).map_err(|source| ResourceError::Detect { path: path.clone(), source })
        };
        let theirs = read(PathBuf::from(format!("/proc/{pid}/cgroup")))?;
        let ours = read(PathBuf::from("/proc/self/cgroup"))?;
        let Some(layout) = hier.layout() else {
            return Ok(None);
        };
        let mut groups: Vec<Group> = Vec::new();
        for (controllers, path) in lines(&theirs) {
            if lines(&ours).any(|(c, p)| c == controllers && p == path) {
                continue;
            }
            let (point, root, v2) = match controllers.is_empty() {
                true => match &hier.v2 {
                    Some(m) => (&m.point, &m.root, true),
                    None => continue,
                },
                false => match hier
                    .v1
                    .iter()
                    .find(|m| m.controllers.iter().map(String::as_str).eq(controllers.iter().copied()))
                {
                    Some(m) => (&m.point, &m.root, false),
                    None => continue,
                },
            };
            let Ok(rel) = Path::new(path).strip_prefix(root) else {
                continue;
            };
            let dir = point.join(rel);
            let Some(leaf) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            let beneath_vguest = rel.components().any(|c| c == Component::Normal(DEFAULT_PARENT.as_ref()));
            let (base, between) = marked_parents(&dir);
            let made_by_vguest = beneath_vguest || !between.is_empty();
            if !leaf_name(&leaf) || !made_by_vguest {
                continue;
            }
            let serves: Vec<Controller> = match v2 {
                true => {
                    let offered = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
                    Controller::ALL
                        .into_iter()
                        .filter(|c| c.v2_name().is_none_or(|n| offered.split_whitespace().any(|o| o == n)))
                        .collect()
                }
                false => Controller::ALL.into_iter().filter(|c| controllers.contains(&c.v1_name())).collect(),
            };
            if !fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let label = if v2 { "unified".to_string() } else { controllers.join(",") };
            let plan = GroupPlan {
                label,
                v2,
                base,
                between,
                leaf,
                serves,
                fallback: Vec::new(),
                enable: Vec::new(),
            };
            // The v2 group first, as spawn orders them.
            let group = Group::unopened(plan, dir);
            match v2 {
                true => groups.insert(0, group),
                false => groups.push(group),
            }
        }
        if groups.is_empty() {
            return Ok(None);
        }
        // A controller served by a v1 group (hybrid host) is not the v2
        // group's, which keeps cgroup.freeze, cgroup.kill and cpu.stat.
        if let Some((first, rest)) = groups.split_first_mut().filter(|(g, _)| g.plan.v2) {
            first.plan.serves.retain(|c| !rest.iter().any(|g| g.serves(*c)));
        }
        Ok(Some(Cgroups::adopted(layout, groups)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_leaves_named_like_ours_are_adopted() {
        assert!(leaf_name("web1.4242.0"));
        assert!(leaf_name("a.b.1.2"));
        for bad in ["web1", "web1.4242", ".1.2", "web1.x.0", "web1.1.", "session.scope", "4242.0"] {
            assert!(!leaf_name(bad), "{bad}");
        }
        let text = "4:memory:/process_api/x/vguest/web1.7.0\n0::/vguest/web1.7.0\n9:name=systemd:/\n";
        let parsed: Vec<_> = lines(text).collect();
        assert_eq!(parsed[0], (vec!["memory"], "/process_api/x/vguest/web1.7.0"));
        assert_eq!(parsed[1], (vec![], "/vguest/web1.7.0"));
        assert_eq!(parsed[2], (vec!["name=systemd"], "/"));
    }
}
