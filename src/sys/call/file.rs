//! Wrappers for descriptors and paths: reading, writing, duplicating and
//! closing descriptors, opening, probing and creating files relative to a
//! directory descriptor, and changing the working directory.
//!
//! Paths and buffers are borrowed from the caller; descriptors and bytes
//! read come back as the [`SysResult`].

use core::ffi::CStr;

use super::{Errno, SysResult, cstr, ptr, sys};
use crate::sys::raw::nr;

/// `read(2)`.
pub(crate) fn read(fd: i32, buf: &mut [u8]) -> SysResult {
    sys(nr::READ, fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0)
}

/// `write(2)` of the whole buffer, retrying on short writes and `EINTR`.
pub(crate) fn write_all(fd: i32, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match sys(nr::WRITE, fd as usize, buf.as_ptr() as usize, buf.len(), 0, 0, 0) {
            Ok(0) => return Err(libc::EIO),
            Ok(n) => buf = &buf[n.min(buf.len())..],
            Err(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `close(2)`.
pub(crate) fn close(fd: i32) -> SysResult {
    sys(nr::CLOSE, fd as usize, 0, 0, 0, 0, 0)
}

/// `dup3(2)`: `newfd` becomes a copy of `oldfd` without `FD_CLOEXEC`.
pub(crate) fn dup2(oldfd: i32, newfd: i32) -> SysResult {
    sys(nr::DUP3, oldfd as usize, newfd as usize, 0, 0, 0, 0)
}

/// `fcntl(fd, F_SETFD, flags)`.
pub(crate) fn set_fd_flags(fd: i32, flags: i32) -> SysResult {
    sys(nr::FCNTL, fd as usize, libc::F_SETFD as usize, flags as usize, 0, 0, 0)
}

/// `close_range(2)`.
pub(crate) fn close_range(first: u32, last: u32, flags: u32) -> SysResult {
    sys(nr::CLOSE_RANGE, first as usize, last as usize, flags as usize, 0, 0, 0)
}

/// `openat(2)` relative to `dirfd` (`AT_FDCWD` for the working directory).
pub(crate) fn openat(dirfd: i32, path: &CStr, flags: i32, mode: u32) -> SysResult {
    sys(nr::OPENAT, dirfd as usize, cstr(path), flags as usize, mode as usize, 0, 0)
}

/// The kernel's `struct open_how` for `openat2(2)`.
#[repr(C)]
pub(crate) struct OpenHow {
    /// `O_*` flags.
    pub flags: u64,
    /// Creation mode.
    pub mode: u64,
    /// `RESOLVE_*` flags.
    pub resolve: u64,
}

/// `openat2(2)`.
pub(crate) fn openat2(dirfd: i32, path: &CStr, how: &OpenHow) -> SysResult {
    sys(nr::OPENAT2, dirfd as usize, cstr(path), ptr(how), core::mem::size_of::<OpenHow>(), 0, 0)
}

/// `faccessat(2)`.
pub(crate) fn faccessat(dirfd: i32, path: &CStr, mode: i32) -> SysResult {
    sys(nr::FACCESSAT, dirfd as usize, cstr(path), mode as usize, 0, 0, 0)
}

/// `newfstatat(2)`.
fn fstatat(dirfd: i32, path: &CStr, st: &mut libc::stat, flags: i32) -> SysResult {
    sys(nr::NEWFSTATAT, dirfd as usize, cstr(path), st as *mut libc::stat as usize, flags as usize, 0, 0)
}

/// `newfstatat(2)` returning only `st_mode` (file type and permissions).
pub(crate) fn stat_mode(dirfd: i32, path: &CStr, flags: i32) -> Result<u32, Errno> {
    // SAFETY: stat is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    fstatat(dirfd, path, &mut st, flags)?;
    Ok(st.st_mode)
}

/// `mkdirat(2)`.
pub(crate) fn mkdirat(dirfd: i32, path: &CStr, mode: u32) -> SysResult {
    sys(nr::MKDIRAT, dirfd as usize, cstr(path), mode as usize, 0, 0, 0)
}

/// `symlinkat(2)`: creates `path` (relative to `dirfd`) pointing to
/// `target`.
pub(crate) fn symlinkat(target: &CStr, dirfd: i32, path: &CStr) -> SysResult {
    sys(nr::SYMLINKAT, cstr(target), dirfd as usize, cstr(path), 0, 0, 0)
}

/// `chdir(2)`.
pub(crate) fn chdir(path: &CStr) -> SysResult {
    sys(nr::CHDIR, cstr(path), 0, 0, 0, 0, 0)
}

/// `fchdir(2)`.
pub(crate) fn fchdir(fd: i32) -> SysResult {
    sys(nr::FCHDIR, fd as usize, 0, 0, 0, 0, 0)
}
