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

/// Takes ownership of `fd`, which the kernel just gave this process and
/// nothing else owns (received with `SCM_RIGHTS`).
pub(crate) fn own(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: the caller passes an fd that is open and owned by no one.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
