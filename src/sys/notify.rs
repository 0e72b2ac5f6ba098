//! The ioctls of a seccomp listener (`seccomp_unotify(2)`): receiving a
//! guest's intercepted call, checking that it still waits, answering it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `SECCOMP_IOCTL_NOTIF_ID_VALID` as kernels before 5.17 spell it
/// (`_IOR`); later kernels take both spellings.
const ID_VALID_OLD: libc::Ioctl = 0x8008_2102_u32 as libc::Ioctl;

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Waits for the next intercepted call (`SECCOMP_IOCTL_NOTIF_RECV`),
/// retried on `EINTR`. `ENOENT`: the caller went away between the
/// listener's readiness and the read.
pub(crate) fn receive(listener: BorrowedFd<'_>) -> io::Result<libc::seccomp_notif> {
    loop {
        // SAFETY: seccomp_notif is plain old data, and the kernel wants it
        // zeroed (EINVAL otherwise).
        let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: the pointer is to a live struct of the size the request
        // encodes; the kernel writes only within it.
        let ret = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif) };
        match check(ret) {
            Ok(()) => return Ok(notif),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Answers call `id` (`SECCOMP_IOCTL_NOTIF_SEND`): its return value, or
/// an errno, or with `flags` `SECCOMP_USER_NOTIF_FLAG_CONTINUE`, to let
/// the kernel make it. `ENOENT`: the caller is gone (or was interrupted).
pub(crate) fn respond(listener: BorrowedFd<'_>, id: u64, val: i64, error: i32, flags: u32) -> io::Result<()> {
    let mut resp = libc::seccomp_notif_resp { id, val, error, flags };
    loop {
        // SAFETY: the pointer is to a live struct of the size the request
        // encodes.
        let ret = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
        match check(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Whether call `id` still waits for an answer
/// (`SECCOMP_IOCTL_NOTIF_ID_VALID`): `Ok` if so, `ENOENT` if its caller
/// is gone.
pub(crate) fn id_valid(listener: BorrowedFd<'_>, id: u64) -> io::Result<()> {
    let mut id = id;
    // SAFETY: the pointer is to a live u64, which the kernel only reads.
    let ret = unsafe { libc::ioctl(listener.as_raw_fd(), ID_VALID_OLD, &mut id) };
    check(ret)
}

#[cfg(test)]
mod tests {
    /// The old spelling differs from libc's only in the direction bits.
    /// (`Ioctl` is `c_int` on musl: the casts are not all no-ops.)
    #[test]
    #[allow(clippy::unnecessary_cast)]
    fn id_valid_spellings() {
        let new = libc::SECCOMP_IOCTL_NOTIF_ID_VALID as u64;
        assert_eq!(new & 0x3fff_ffff, super::ID_VALID_OLD as u64 & 0x3fff_ffff);
        assert_eq!(new >> 30, 1, "_IOW");
        assert_eq!(super::ID_VALID_OLD as u64 >> 30, 2, "_IOR");
    }
}
