//! The resource layer: what a guest may use, on cgroups v1, hybrid and v2.
//!
//! A [`Resources`] describes a guest's limits: memory (max, high, swap),
//! CPU (weight, bandwidth quota), cpuset, process count and block I/O. Like
//! Linux-VServer's per-context limits, but on mainline control groups
//! (`cgroups(7)`).
//!
//! At spawn the layer detects how the host mounts its cgroups
//! ([`CgroupLayout`]: v1, hybrid or v2, once per process), and gives the
//! guest one group per hierarchy it needs, by default at
//! `<the caller's own group>/vguest/<name>.<pid>.<n>` in each hierarchy, so
//! that a guest never escapes the limits of its creator (or beneath
//! another [`Resources::parent`]). It writes the limits, and the guest's first
//! process is in its groups before the payload runs: the kernel places it
//! with `CLONE_INTO_CGROUP` where there is a v2 group (`clone(2)`), and it
//! joins the v1 groups itself just before its exec: the parent makes them,
//! with their limits, while the child builds the guest's mount table, and
//! passes their directory fds to it (so the kernel memory of those mounts
//! is charged to the caller's memory group, not the guest's). With a user
//! namespace all groups are made before the clone and the parent moves the
//! child during the spawn handshake, since its new credentials may not
//! write to the host's cgroup files. The guest then gets its own cgroup
//! namespace and sees its group as `/`.
//!
//! On a hybrid host the v1 controllers carry the limits and the v2 mount,
//! which needs no controller for it, tracks membership: `cgroup.kill`
//! kills every process at once (Linux 5.14), `cgroup.freeze` pauses them
//! (5.2) and `cpu.stat` counts their CPU time, so no v1 `freezer` or
//! `cpuacct` group is made unless the kernel lacks those files. On v1
//! alone, pause uses the freezer controller, and killing freezes, signals
//! every listed process and thaws, until none is left.
//!
//! Limits worth knowing:
//! - cgroup v2 hands controllers to a group's children only if the group
//!   holds no processes itself (the "no internal processes" rule of
//!   `Documentation/admin-guide/cgroup-v2.rst`). Under the caller's own v2
//!   group, limits therefore work only from the root group (a guest
//!   without limits works anywhere); elsewhere run the caller
//!   in a leaf of a delegated group and set [`Resources::parent`] to the
//!   delegated group. The layer enables the controllers a limit needs in
//!   the parent's `cgroup.subtree_control` (and leaves them enabled, as
//!   other guests may rely on them), and fails with
//!   [`ResourceError::Delegation`] where the kernel refuses. For
//!   statistics alone it uses only what the parent already delegates.
//! - Groups are removed when the guest ends ([`Guest::wait`]) or its handle
//!   is dropped, on every failure path of spawn, and never for a detached
//!   guest. An intermediate `vguest` group that vguest created is kept
//!   while the process runs, so later guests make only their own groups
//!   (making and removing it in every hierarchy for every guest cost as
//!   much as the guest's groups); it is removed, if empty, when the
//!   process exits normally, when [`remove_empty_parents`] is called, or
//!   after a spawn that failed.
//! - A guest spawned without [`GuestBuilder::resources`] gets no groups.
//!
//! [`Guest::wait`]: crate::Guest::wait
//! [`GuestBuilder::resources`]: crate::GuestBuilder::resources

mod adopt;
mod control;
mod error;
mod group;
mod hierarchies;
mod layout;
mod limits;
mod make;
mod owner;
mod placement;
mod stats;
mod sweep;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use self::error::ResourceError;
pub use self::layout::CgroupLayout;
pub use self::make::remove_empty_parents;
pub use self::stats::Stats;
pub use self::sweep::{Swept, sweep};

use self::hierarchies::Hierarchies;
use self::limits::IoKind;
pub(crate) use self::owner::Cgroups;
pub(crate) use self::stats::{oom_kills, read as read_stats};

/// What a guest may use: memory, CPU, cpuset, processes, block I/O.
///
/// Every setter only records a value; [`spawn`](crate::GuestBuilder::spawn)
/// checks them all and fails with a [`ResourceError`] naming the bad value
/// before anything is created. A `Resources` with no limit still gives the
/// guest its own groups, for [`stats`](crate::Guest::stats),
/// [`pause`](crate::Guest::pause) and [`kill_all`](crate::Guest::kill_all).
///
/// ```
/// use std::time::Duration;
/// use vguest::{Guest, Resources};
///
/// let limits = Resources::new()
///     .memory_max(256 << 20)
///     .memory_swap_max(0)
///     .pids_max(128)
///     .cpu_quota(Duration::from_millis(50), Duration::from_millis(100)); // half a CPU
/// let builder = Guest::builder("web1").resources(limits);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub(crate) memory_max: Option<u64>,
    pub(crate) memory_high: Option<u64>,
    pub(crate) memory_swap_max: Option<u64>,
    pub(crate) cpu_weight: Option<u64>,
    pub(crate) cpu_quota: Option<(Duration, Duration)>,
    pub(crate) cpuset_cpus: Option<String>,
    pub(crate) cpuset_mems: Option<String>,
    pub(crate) pids_max: Option<u64>,
    pub(crate) io_weight: Option<u64>,
    pub(crate) io_limits: Vec<(IoKind, u32, u32, u64)>,
    pub(crate) parent: Option<PathBuf>,
}

impl Resources {
    /// No limits: the guest gets its own groups for accounting, pause and
    /// kill, and shares its creator's limits.
    ///
    /// ```
    /// use vguest::Resources;
    ///
    /// assert_eq!(Resources::new(), Resources::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The most memory the guest may use, in bytes (v2 `memory.max`, v1
    /// `memory.limit_in_bytes`); over it, the kernel reclaims and then
    /// OOM-kills inside the guest. At least 4 MiB.
    ///
    /// ```
    /// let r = vguest::Resources::new().memory_max(512 << 20);
    /// ```
    pub fn memory_max(mut self, bytes: u64) -> Self {
        self.memory_max = Some(bytes);
        self
    }

    /// Where the kernel starts throttling and reclaiming the guest's
    /// memory (v2 `memory.high`); on v1 the soft limit
    /// (`memory.soft_limit_in_bytes`), reclaimed first under host memory
    /// pressure. At least 4 MiB.
    ///
    /// ```
    /// let r = vguest::Resources::new().memory_high(384 << 20).memory_max(512 << 20);
    /// ```
    pub fn memory_high(mut self, bytes: u64) -> Self {
        self.memory_high = Some(bytes);
        self
    }

    /// How much swap the guest may use on top of
    /// [`memory_max`](Self::memory_max), which it needs; 0 for none (v2
    /// `memory.swap.max`; v1 `memory.memsw.limit_in_bytes` = memory + swap,
    /// which needs swap accounting).
    ///
    /// ```
    /// let r = vguest::Resources::new().memory_max(64 << 20).memory_swap_max(0);
    /// ```
    pub fn memory_swap_max(mut self, bytes: u64) -> Self {
        self.memory_swap_max = Some(bytes);
        self
    }

    /// The guest's share of CPU time when CPUs are contended, 1 to 10000,
    /// default 100 (v2 `cpu.weight`; v1 `cpu.shares` = weight × 1024 / 100).
    ///
    /// ```
    /// let r = vguest::Resources::new().cpu_weight(200); // twice the default share
    /// ```
    pub fn cpu_weight(mut self, weight: u64) -> Self {
        self.cpu_weight = Some(weight);
        self
    }

    /// The CPU time the guest may use per period, across all CPUs (v2
    /// `cpu.max`, v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`). The period
    /// is 1 ms to 1 s, the quota at least 1 ms; a quota of twice the period
    /// is two CPUs.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // A fifth of one CPU.
    /// let r = vguest::Resources::new().cpu_quota(Duration::from_millis(20), Duration::from_millis(100));
    /// ```
    pub fn cpu_quota(mut self, quota: Duration, period: Duration) -> Self {
        self.cpu_quota = Some((quota, period));
        self
    }

    /// The CPUs the guest may run on, as a list such as `0-3,6`
    /// (`cpuset.cpus`); they must be among its parent's.
    ///
    /// ```
    /// let r = vguest::Resources::new().cpuset_cpus("0-1");
    /// ```
    pub fn cpuset_cpus(mut self, cpus: impl Into<String>) -> Self {
        self.cpuset_cpus = Some(cpus.into());
        self
    }

    /// The memory nodes the guest may allocate from (`cpuset.mems`).
    ///
    /// ```
    /// let r = vguest::Resources::new().cpuset_mems("0");
    /// ```
    pub fn cpuset_mems(mut self, mems: impl Into<String>) -> Self {
        self.cpuset_mems = Some(mems.into());
        self
    }

    /// The most processes and threads the guest may have at once
    /// (`pids.max`); `fork` fails with `EAGAIN` beyond it. At least 1 (the
    /// built-in init counts).
    ///
    /// ```
    /// let r = vguest::Resources::new().pids_max(64);
    /// ```
    pub fn pids_max(mut self, max: u64) -> Self {
        self.pids_max = Some(max);
        self
    }

    /// The guest's share of block I/O, 1 to 10000, default 100 (v2
    /// `io.weight` with the iocost controller, or `io.bfq.weight`; v1
    /// `blkio.weight` or `blkio.bfq.weight`). BFQ caps it at 1000. Hosts
    /// without a proportional I/O scheduler refuse it with
    /// [`ResourceError::Unsupported`].
    ///
    /// ```
    /// let r = vguest::Resources::new().io_weight(50);
    /// ```
    pub fn io_weight(mut self, weight: u64) -> Self {
        self.io_weight = Some(weight);
        self
    }

    /// Limits reads from the block device `major:minor` to
    /// `bytes_per_second` (v2 `io.max rbps`, v1
    /// `blkio.throttle.read_bps_device`).
    ///
    /// ```
    /// let r = vguest::Resources::new().io_read_bps(8, 0, 10 << 20); // /dev/sda, 10 MiB/s
    /// ```
    pub fn io_read_bps(mut self, major: u32, minor: u32, bytes_per_second: u64) -> Self {
        self.io_limits.push((IoKind::ReadBps, major, minor, bytes_per_second));
        self
    }

    /// Limits writes to the block device `major:minor` to
    /// `bytes_per_second` (v2 `io.max wbps`, v1
    /// `blkio.throttle.write_bps_device`).
    ///
    /// ```
    /// let r = vguest::Resources::new().io_write_bps(8, 0, 5 << 20);
    /// ```
    pub fn io_write_bps(mut self, major: u32, minor: u32, bytes_per_second: u64) -> Self {
        self.io_limits.push((IoKind::WriteBps, major, minor, bytes_per_second));
        self
    }

    /// Limits read operations on the block device `major:minor` per second
    /// (v2 `io.max riops`, v1 `blkio.throttle.read_iops_device`).
    ///
    /// ```
    /// let r = vguest::Resources::new().io_read_iops(8, 0, 1000);
    /// ```
    pub fn io_read_iops(mut self, major: u32, minor: u32, per_second: u64) -> Self {
        self.io_limits.push((IoKind::ReadIops, major, minor, per_second));
        self
    }

    /// Limits write operations on the block device `major:minor` per
    /// second (v2 `io.max wiops`, v1 `blkio.throttle.write_iops_device`).
    ///
    /// ```
    /// let r = vguest::Resources::new().io_write_iops(8, 0, 500);
    /// ```
    pub fn io_write_iops(mut self, major: u32, minor: u32, per_second: u64) -> Self {
        self.io_limits.push((IoKind::WriteIops, major, minor, per_second));
        self
    }

    /// Creates the guest's groups beneath `parent` instead of `vguest`: a
    /// relative path lies beneath the caller's own group in each hierarchy
    /// (the guest stays within its creator's limits), an absolute one
    /// beneath each hierarchy's root (such as a delegated
    /// `/system.slice/vguest.service` on cgroup v2). Missing groups on the
    /// way are created; those vguest created are removed once empty, as
    /// `vguest` is (see the [module](self) documentation).
    ///
    /// ```
    /// let pool = vguest::Resources::new().parent("web-pool");
    /// let delegated = vguest::Resources::new().parent("/system.slice/vguest.service");
    /// ```
    pub fn parent(mut self, parent: impl Into<PathBuf>) -> Self {
        self.parent = Some(parent.into());
        self
    }
}

/// The caller's own groups: the text of `/proc/self/cgroup`.
fn own_groups() -> Result<String, ResourceError> {
    let own_path = Path::new("/proc/self/cgroup");
    std::fs::read_to_string(own_path)
        .map_err(|source| ResourceError::Detect { path: own_path.into(), source })
}

/// What placing a guest of `r` needs: its checked limits, the host's
/// hierarchies and the caller's own groups (`/proc/self/cgroup`).
fn inputs(r: &Resources) -> Result<(Vec<limits::Limit>, &'static Hierarchies, String), ResourceError> {
    let limits = limits::check(r)?;
    if let Some(parent) = &r.parent {
        placement::parent_components(parent)?;
    }
    Ok((limits, Hierarchies::host()?, own_groups()?))
}

/// Checks `r` and creates the groups for a guest called `name`; with
/// `defer_v1`, the v1 groups only when [`Cgroups::create_pending`] is
/// called. The groups are marked as this process's, or as a detached
/// guest's (`detached`), for the sweep (`sweep.rs`).
pub(crate) fn create(
    r: &Resources,
    name: &str,
    defer_v1: bool,
    detached: bool,
) -> Result<Cgroups, ResourceError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let (limits, hier, own) = inputs(r)?;
    // Names repeat (one builder spawned many times, even at once): the
    // spawner's pid and a counter make the leaf unique.
    let leaf = format!("{name}.{}.{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut groups =
        Cgroups::create(hier, &own, &limits, &limits::wanted(&limits), r.parent.as_deref(), &leaf, defer_v1)?;
    groups.mark(detached);
    Ok(groups)
}

/// Where a guest of `r` called `leaf` would be placed, without creating
/// anything.
fn plans(r: &Resources, leaf: &str) -> Result<Vec<placement::GroupPlan>, ResourceError> {
    let (limits, hier, own) = inputs(r)?;
    placement::place(hier, &own, &limits::wanted(&limits), r.parent.as_deref(), leaf)
}
