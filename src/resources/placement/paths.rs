//! The paths a guest's groups start from: the caller's own group in each
//! hierarchy, parsed from `/proc/self/cgroup` text and resolved to a
//! directory below the hierarchy's mount point, and a configured parent,
//! checked and split into the groups to create on the way.
//!
//! [`place`](super::place) calls these with text and paths only; nothing
//! here touches the file system. `resources::create` also checks a
//! configured parent with [`parent_components`] before anything is made.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::resources::error::ResourceError;

/// The caller's groups, parsed from `/proc/self/cgroup`.
#[derive(Debug, Default)]
pub(super) struct OwnGroups<'a> {
    /// (controllers, path) for each v1 hierarchy.
    pub(super) v1: Vec<(Vec<&'a str>, &'a str)>,
    pub(super) v2: Option<&'a str>,
}

pub(super) fn parse_own(text: &str) -> OwnGroups<'_> {
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
pub(super) fn own_dir(label: &str, group: &str, point: &Path, root: &Path) -> Result<PathBuf, ResourceError> {
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
