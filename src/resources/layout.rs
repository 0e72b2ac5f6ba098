//! The public name of how a host mounts its cgroups. Detecting it is
//! `hierarchies.rs`'s job.

use std::fmt;

/// How the host mounts its cgroups.
///
/// ```no_run
/// use vguest::CgroupLayout;
///
/// match CgroupLayout::detect()? {
///     CgroupLayout::V2 => println!("unified hierarchy"),
///     CgroupLayout::Hybrid => println!("v1 controllers plus a v2 mount"),
///     CgroupLayout::V1 => println!("v1 only"),
///     _ => {}
/// }
/// # Ok::<(), vguest::ResourceError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CgroupLayout {
    /// Only v1 hierarchies, one (or a few co-mounted) controllers each.
    V1,
    /// v1 controller hierarchies plus a cgroup2 mount (often
    /// `/sys/fs/cgroup/unified`) with few or no controllers: the v1
    /// controllers carry the limits, the v2 mount tracks membership and
    /// offers `cgroup.kill` and `cgroup.freeze`.
    Hybrid,
    /// The unified hierarchy only (current distributions).
    V2,
}

impl fmt::Display for CgroupLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupLayout::V1 => "v1",
            CgroupLayout::Hybrid => "hybrid",
            CgroupLayout::V2 => "v2",
        })
    }
}
