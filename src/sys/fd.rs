//! File descriptor plumbing the parent needs beyond `nix`.

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

/// A close-on-exec duplicate of `fd` numbered `min` or above
/// (`fcntl(F_DUPFD_CLOEXEC)`).
pub(crate) fn dup_at_least(fd: impl AsFd, min: i32) -> io::Result<OwnedFd> {
    let dup = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}
