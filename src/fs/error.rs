//! Errors of the filesystem layer.

use std::ffi::OsString;
use std::path::PathBuf;

/// A filesystem setting that cannot work, found before anything is
/// created.
///
/// ```
/// use vguest::{Error, Filesystem, FsError, Guest};
///
/// let err = Guest::builder("doc-fs").filesystem(Filesystem::new("/no/such/root")).spawn().unwrap_err();
/// match &err {
///     Error::Fs(FsError::RootMissing { path, .. }) => assert_eq!(path.to_str(), Some("/no/such/root")),
///     other => panic!("unexpected {other}"),
/// }
/// assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// The filesystem layer needs a mount namespace.
    #[error("a root filesystem needs the mount namespace, which the context does not include")]
    MountNamespaceRequired,
    /// The root directory is missing or not a directory.
    #[error("root directory {path} is not usable")]
    RootMissing {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An overlay template is missing or not a directory.
    #[error("overlay template {path} is not usable")]
    TemplateMissing {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The overlay's upper or work directory is missing.
    #[error("overlay {which} directory {path} is not usable")]
    UpperMissing {
        /// `upper` or `work`.
        which: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The overlay has no template, or its upper and work directories are
    /// on different filesystems.
    #[error("invalid overlay: {reason}")]
    InvalidOverlay {
        /// What is wrong.
        reason: String,
    },
    /// A bind source is missing.
    #[error("bind source {source_path} for {target} is not usable")]
    BindSourceMissing {
        /// Host path.
        source_path: PathBuf,
        /// Guest path.
        target: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A guest path is not absolute, is `/`, or contains NUL or `..`.
    #[error("invalid guest path {path:?} for {what}: {reason}")]
    InvalidPath {
        /// Which mount or file.
        what: String,
        /// The path.
        path: OsString,
        /// What is wrong.
        reason: &'static str,
    },
    /// A tmpfs size is zero, below a page, or beyond memory and swap.
    #[error("tmpfs on {target}: size {size} bytes is {reason}")]
    InvalidTmpfsSize {
        /// Guest path (or `overlay upper`).
        target: String,
        /// The size given.
        size: u64,
        /// Why it is refused.
        reason: String,
    },
}
