//! The filesystem layer: the guest's root, mounts and hidden paths.
//!
//! A guest gets its own mount namespace (`mount_namespaces(7)`) whose
//! propagation is made private (or slave) first, so nothing it mounts
//! reaches the host. Its root is a directory, or an overlay
//! (`overlayfs`) of read-only templates plus a per-guest writable layer:
//! Linux-VServer's "unification", where many guests share one template
//! and each stores only what it changed. The guest's first process builds
//! the mount table with the file-descriptor mount API (`open_tree(2)`,
//! `fsopen(2)`, `move_mount(2)`, `mount_setattr(2)`), then switches root
//! with `pivot_root(".", ".")` and detaches the old root, so no path of
//! the host stays reachable.
//!
//! Every mount target and every file created in the guest is resolved
//! with `openat2(2)` and `RESOLVE_BENEATH` against the guest's root: a
//! symlink in the guest's tree that points outside (`/etc -> /host/etc`,
//! `../../..`) fails the spawn with `EXDEV` instead of landing on the
//! host. Targets therefore must not pass through absolute symlinks (use
//! `/run`, not `/var/run`).
//!
//! Limits: the overlay's upper and work directories must be on the same
//! filesystem, and the kernel refuses some upper filesystems (NFS, another
//! overlay). Bind-mounted device nodes keep their host permissions; the
//! guest's capabilities and cgroup device rules decide what it can do with
//! them.

mod error;
mod mount;
mod plan;

use std::path::{Path, PathBuf};

pub use error::FsError;
pub use mount::{BindFlags, Mount, Overlay, Propagation, Root, Upper};

/// The paths masked by default: read as empty or refused.
///
/// ```
/// use vguest::{DEFAULT_MASKED, DEFAULT_READ_ONLY, Filesystem};
///
/// assert!(DEFAULT_MASKED.contains(&"/proc/kcore"));
/// // The defaults, except that the guest may read /proc/scsi.
/// let fs = DEFAULT_MASKED
///     .iter()
///     .filter(|p| **p != "/proc/scsi")
///     .fold(Filesystem::new("/srv/g").proc().no_default_masks(), |fs, p| fs.mask(p));
/// let fs = DEFAULT_READ_ONLY.iter().fold(fs, |fs, p| fs.read_only_path(p));
/// ```
pub const DEFAULT_MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths made read-only by default.
///
/// ```
/// use vguest::{DEFAULT_READ_ONLY, Filesystem};
///
/// assert!(DEFAULT_READ_ONLY.contains(&"/proc/sys"));
/// // Keep the default masks but let the guest tune its own sysctls
/// // (those of its network namespace, for example).
/// let fs = DEFAULT_READ_ONLY
///     .iter()
///     .filter(|p| **p != "/proc/sys")
///     .fold(Filesystem::server("/srv/g").no_default_masks(), |fs, p| fs.read_only_path(p));
/// let fs = vguest::DEFAULT_MASKED.iter().fold(fs, |fs, p| fs.mask(p));
/// ```
pub const DEFAULT_READ_ONLY: &[&str] =
    &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The guest's root filesystem and mount table.
///
/// Needs [`Namespaces::MOUNT`](crate::Namespaces::MOUNT) (on by default).
/// Masked and read-only paths (defaults: [`DEFAULT_MASKED`],
/// [`DEFAULT_READ_ONLY`]) are applied after all mounts; paths that do not
/// exist in the guest are skipped.
///
/// ```
/// use vguest::Filesystem;
///
/// let fs = Filesystem::new("/srv/guests/web1")
///     .proc()
///     .sysfs()
///     .dev()
///     .tmpfs("/tmp", 64 << 20)
///     .bind_ro("/etc/resolv.conf", "/etc/resolv.conf")
///     .file("/etc/hostname", "web1\n")
///     .read_only_root(true);
/// ```
#[derive(Debug, Clone)]
pub struct Filesystem {
    pub(crate) root: Root,
    pub(crate) read_only_root: bool,
    pub(crate) root_nosuid: bool,
    pub(crate) root_nodev: bool,
    pub(crate) mounts: Vec<Mount>,
    pub(crate) masked: Vec<PathBuf>,
    pub(crate) read_only: Vec<PathBuf>,
    pub(crate) propagation: Propagation,
}

impl Filesystem {
    fn with_root(root: Root) -> Self {
        Filesystem {
            root,
            read_only_root: false,
            root_nosuid: false,
            root_nodev: true,
            mounts: Vec::new(),
            masked: DEFAULT_MASKED.iter().map(PathBuf::from).collect(),
            read_only: DEFAULT_READ_ONLY.iter().map(PathBuf::from).collect(),
            propagation: Propagation::Private,
        }
    }

    /// A guest whose root is the host directory `root`.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/guests/db1");
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_root(Root::Dir(root.into()))
    }

    /// A guest whose root is an overlay of templates and a writable layer.
    ///
    /// ```
    /// use vguest::{Filesystem, Overlay, Upper};
    ///
    /// let fs = Filesystem::overlay(Overlay::new(["/srv/templates/base"], Upper::Tmpfs { size: 128 << 20 }));
    /// ```
    pub fn overlay(overlay: Overlay) -> Self {
        Self::with_root(Root::Overlay(overlay))
    }

    /// The usual mounts of a server guest on `root`: `/proc`, a read-only
    /// `/sys`, a minimal `/dev`, `/dev/mqueue`, and a 64 MiB tmpfs on
    /// `/tmp` and on `/run`.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::server("/srv/guests/web1");
    /// ```
    pub fn server(root: impl Into<PathBuf>) -> Self {
        Self::new(root).with_server_mounts()
    }

    /// Adds the mounts of [`server`](Self::server) to any root.
    ///
    /// ```
    /// use vguest::{Filesystem, Overlay, Upper};
    ///
    /// let fs = Filesystem::overlay(Overlay::new(["/srv/t"], Upper::Tmpfs { size: 1 << 26 })).with_server_mounts();
    /// ```
    pub fn with_server_mounts(self) -> Self {
        self.proc().sysfs().dev().mqueue().tmpfs("/tmp", 64 << 20).tmpfs("/run", 64 << 20)
    }

    /// Adds a mount (see [`Mount`]).
    ///
    /// ```
    /// use vguest::{Filesystem, Mount};
    ///
    /// let fs = Filesystem::new("/srv/g").mount(Mount::Dir { path: "/data".into(), mode: 0o750 });
    /// ```
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// Binds host path `source` on guest path `target`, read-write.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").bind("/srv/data/g", "/data");
    /// ```
    pub fn bind(self, source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        let flags = BindFlags::default();
        self.mount(Mount::Bind { source: source.into(), target: target.into(), flags })
    }

    /// Binds host path `source` on guest path `target`, read-only.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").bind_ro("/usr/share/zoneinfo", "/usr/share/zoneinfo");
    /// ```
    pub fn bind_ro(self, source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        let flags = BindFlags { read_only: true, ..BindFlags::default() };
        self.mount(Mount::Bind { source: source.into(), target: target.into(), flags })
    }

    /// Mounts a tmpfs of at most `size` bytes (mode `1777`) on `target`.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").tmpfs("/tmp", 32 << 20);
    /// ```
    pub fn tmpfs(self, target: impl Into<PathBuf>, size: u64) -> Self {
        self.mount(Mount::Tmpfs { target: target.into(), size, mode: 0o1777 })
    }

    /// Mounts a procfs on `/proc`.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").proc();
    /// ```
    pub fn proc(self) -> Self {
        self.mount(Mount::Proc { target: "/proc".into() })
    }

    /// Mounts a read-only sysfs on `/sys`.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").sysfs();
    /// ```
    pub fn sysfs(self) -> Self {
        self.mount(Mount::Sysfs { target: "/sys".into() })
    }

    /// Mounts a minimal `/dev` (see [`Mount::Dev`]).
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").dev();
    /// ```
    pub fn dev(self) -> Self {
        self.mount(Mount::Dev { target: "/dev".into() })
    }

    /// Mounts an mqueue filesystem on `/dev/mqueue`.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").dev().mqueue();
    /// ```
    pub fn mqueue(self) -> Self {
        self.mount(Mount::Mqueue { target: "/dev/mqueue".into() })
    }

    /// Creates a directory in the guest's root.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").dir("/var/log/app", 0o755);
    /// ```
    pub fn dir(self, path: impl Into<PathBuf>, mode: u32) -> Self {
        self.mount(Mount::Dir { path: path.into(), mode })
    }

    /// Creates a symlink at `path` pointing to `target`.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").symlink("/etc/mtab", "/proc/self/mounts");
    /// ```
    pub fn symlink(self, path: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        self.mount(Mount::Symlink { path: path.into(), target: target.into() })
    }

    /// Writes a small file (mode `0644`) into the guest's root.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").file("/etc/hosts", "127.0.0.1 localhost\n");
    /// ```
    pub fn file(self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        self.mount(Mount::File { path: path.into(), contents: contents.into(), mode: 0o644 })
    }

    /// Makes the root mount read-only (submounts keep their own flags).
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").tmpfs("/tmp", 1 << 24).read_only_root(true);
    /// ```
    pub fn read_only_root(mut self, on: bool) -> Self {
        self.read_only_root = on;
        self
    }

    /// Ignores set-user-id bits and file capabilities on the root mount
    /// (default off; `no_new_privs`, on by default, already keeps them from
    /// granting privileges).
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").root_nosuid(true);
    /// ```
    pub fn root_nosuid(mut self, on: bool) -> Self {
        self.root_nosuid = on;
        self
    }

    /// Refuses to open device nodes on the root mount (default on: the
    /// guest's devices come from [`dev`](Self::dev), a separate mount).
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// // A guest whose own tree carries the device nodes it needs.
    /// let fs = Filesystem::new("/srv/g").root_nodev(false);
    /// ```
    pub fn root_nodev(mut self, on: bool) -> Self {
        self.root_nodev = on;
        self
    }

    /// Masks a path: a directory is covered by an empty read-only tmpfs,
    /// a file by the host's `/dev/null`.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").proc().mask("/proc/cpuinfo");
    /// ```
    pub fn mask(mut self, path: impl Into<PathBuf>) -> Self {
        self.masked.push(path.into());
        self
    }

    /// Makes a path (and everything below it) read-only.
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").read_only_path("/etc");
    /// ```
    pub fn read_only_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.read_only.push(path.into());
        self
    }

    /// Drops the default masked and read-only paths (keeps ones added
    /// explicitly afterwards).
    ///
    /// ```
    /// # use vguest::Filesystem;
    /// let fs = Filesystem::new("/srv/g").proc().no_default_masks().mask("/proc/kcore");
    /// ```
    pub fn no_default_masks(mut self) -> Self {
        self.masked.clear();
        self.read_only.clear();
        self
    }

    /// Sets mount propagation (default [`Propagation::Private`]).
    ///
    /// ```
    /// use vguest::{Filesystem, Propagation};
    ///
    /// let fs = Filesystem::new("/srv/g").propagation(Propagation::Slave);
    /// ```
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        self.propagation = propagation;
        self
    }

    /// Whether a sysfs is mounted: it shows the network namespace of the
    /// process that mounts it, so the guest's must be joined before.
    pub(crate) fn mounts_sysfs(&self) -> bool {
        self.mounts.iter().any(|m| matches!(m, Mount::Sysfs { .. }))
    }

    /// The directory to read the guest's `/etc/passwd` from before the
    /// spawn: the root directory, the upper layer, or the top template.
    pub(crate) fn lookup_root(&self) -> PathBuf {
        match &self.root {
            Root::Dir(dir) => dir.clone(),
            Root::Overlay(o) => {
                let upper = match &o.upper {
                    Upper::Dir { upper, .. } => Some(upper.as_path()),
                    Upper::Tmpfs { .. } => None,
                };
                upper
                    .into_iter()
                    .chain(o.lower.iter().map(PathBuf::as_path))
                    .find(|p| p.join("etc/passwd").exists())
                    .or(o.lower.first().map(PathBuf::as_path))
                    .unwrap_or(Path::new("/"))
                    .to_path_buf()
            }
        }
    }
}
