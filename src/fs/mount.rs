//! What a guest's tree is made of: where its root comes from (a directory
//! or an overlay) and the entries of its mount table.

use std::path::PathBuf;

/// Where the guest's root comes from: [`Filesystem::new`](crate::Filesystem::new)
/// makes a [`Root::Dir`], [`Filesystem::overlay`](crate::Filesystem::overlay) a
/// [`Root::Overlay`].
///
/// ```
/// use vguest::{Overlay, Root, Upper};
///
/// let dir = Root::Dir("/srv/guests/web1".into());
/// let overlay = Root::Overlay(Overlay::new(["/srv/templates/base"], Upper::Tmpfs { size: 64 << 20 }));
/// assert_ne!(dir, overlay);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// A directory of the host, bind-mounted as `/` (recursively).
    Dir(PathBuf),
    /// An overlay: read-only templates plus a writable layer.
    Overlay(Overlay),
}

/// An overlay root: `lower` templates (first is topmost), never written,
/// and an `upper` layer that takes every change.
///
/// ```
/// use vguest::{Overlay, Upper};
///
/// let shared = Overlay::new(["/srv/templates/debian"], Upper::Tmpfs { size: 256 << 20 });
/// assert_eq!(shared.lower.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// Template directories, topmost first.
    pub lower: Vec<PathBuf>,
    /// Where changes go.
    pub upper: Upper,
}

impl Overlay {
    /// An overlay of `lower` templates with the given writable layer.
    ///
    /// ```
    /// use std::path::Path;
    /// use vguest::{Overlay, Upper};
    ///
    /// // An application layer over a base system: files in the first win.
    /// let o = Overlay::new(["/srv/templates/app", "/srv/templates/base"], Upper::Tmpfs { size: 64 << 20 });
    /// assert_eq!(o.lower[1], Path::new("/srv/templates/base"));
    /// ```
    pub fn new<I, P>(lower: I, upper: Upper) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Overlay { lower: lower.into_iter().map(Into::into).collect(), upper }
    }
}

/// The writable layer of an overlay root.
///
/// ```
/// use vguest::Upper;
///
/// // Kept on disk across runs (both directories must exist, on one filesystem).
/// let persistent = Upper::Dir { upper: "/var/lib/guests/web1/upper".into(), work: "/var/lib/guests/web1/work".into() };
/// // Thrown away when the guest ends.
/// let scratch = Upper::Tmpfs { size: 64 << 20 };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upper {
    /// Directories on disk: `upper` holds the changes, `work` is overlayfs
    /// scratch space on the same filesystem.
    Dir {
        /// The upper directory.
        upper: PathBuf,
        /// The work directory.
        work: PathBuf,
    },
    /// A size-limited tmpfs that disappears with the guest.
    Tmpfs {
        /// Maximum size in bytes.
        size: u64,
    },
}

/// Mount flags of a bind mount.
///
/// ```
/// use vguest::BindFlags;
///
/// let flags = BindFlags { read_only: true, ..BindFlags::default() };
/// assert!(flags.recursive && flags.nosuid && flags.nodev);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindFlags {
    /// Refuse writes (`EROFS`).
    pub read_only: bool,
    /// Include the source's submounts (default true; required when the
    /// source has submounts locked by a user namespace).
    pub recursive: bool,
    /// Ignore set-user-id bits and file capabilities (default true).
    pub nosuid: bool,
    /// Refuse to open device nodes (default true).
    pub nodev: bool,
    /// Refuse to execute files (default false).
    pub noexec: bool,
}

impl Default for BindFlags {
    fn default() -> Self {
        BindFlags { read_only: false, recursive: true, nosuid: true, nodev: true, noexec: false }
    }
}

/// One entry of the guest's mount table, applied in order.
///
/// Targets are absolute paths inside the guest; missing target
/// directories (or files, for file binds) are created.
///
/// ```
/// use vguest::{BindFlags, Mount};
///
/// let m = Mount::Bind {
///     source: "/srv/www".into(),
///     target: "/var/www".into(),
///     flags: BindFlags { read_only: true, ..BindFlags::default() },
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mount {
    /// A host path bound into the guest.
    Bind {
        /// Host path.
        source: PathBuf,
        /// Guest path.
        target: PathBuf,
        /// Flags.
        flags: BindFlags,
    },
    /// A tmpfs of at most `size` bytes with permissions `mode`.
    Tmpfs {
        /// Guest path.
        target: PathBuf,
        /// Maximum size in bytes (at least a page).
        size: u64,
        /// Permissions of its root, e.g. `0o1777`.
        mode: u32,
    },
    /// A procfs of the guest's own PID namespace.
    Proc {
        /// Guest path, normally `/proc`.
        target: PathBuf,
    },
    /// A read-only sysfs showing the guest's network namespace.
    Sysfs {
        /// Guest path, normally `/sys`.
        target: PathBuf,
    },
    /// A minimal `/dev`: a small tmpfs with `null`, `zero`, `full`,
    /// `random`, `urandom` and `tty` bound from the host, its own devpts
    /// instance with `ptmx`, `/dev/shm`, and the `fd`, `stdin`, `stdout`,
    /// `stderr` links.
    Dev {
        /// Guest path, normally `/dev`.
        target: PathBuf,
    },
    /// A POSIX message queue filesystem of the guest's IPC namespace.
    Mqueue {
        /// Guest path, normally `/dev/mqueue`.
        target: PathBuf,
    },
    /// A directory created in the guest's root.
    Dir {
        /// Guest path.
        path: PathBuf,
        /// Permissions.
        mode: u32,
    },
    /// A symbolic link created in the guest's root.
    Symlink {
        /// Guest path of the link.
        path: PathBuf,
        /// What it points to (not resolved).
        target: PathBuf,
    },
    /// A small file written into the guest's root (replacing any file
    /// there), e.g. `/etc/hostname`.
    File {
        /// Guest path.
        path: PathBuf,
        /// Contents.
        contents: Vec<u8>,
        /// Permissions.
        mode: u32,
    },
}

/// How mount events propagate between the host and the guest.
///
/// ```
/// use vguest::Propagation;
///
/// assert_eq!(Propagation::default(), Propagation::Private);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Nothing propagates either way (the default).
    #[default]
    Private,
    /// Host mounts propagate into the guest, never the other way.
    Slave,
}

impl Propagation {
    /// The `mount(2)` flags applied recursively to `/`.
    pub(crate) fn flags(self) -> u64 {
        libc::MS_REC
            | match self {
                Propagation::Private => libc::MS_PRIVATE,
                Propagation::Slave => libc::MS_SLAVE,
            }
    }
}
