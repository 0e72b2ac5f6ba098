//! Extended attributes (`xattr(7)`) on directories: the resource layer marks
//! the intermediate cgroups it creates, so that any vguest process (not only
//! the one that made it) may remove such a group once it is empty, while a
//! group an administrator made stays untouched.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `setxattr(2)`: sets `name` on `path` to `value`.
pub(crate) fn set(path: &Path, name: &CStr, value: &[u8]) -> io::Result<()> {
    let path = c_path(path)?;
    // SAFETY: both strings are NUL-terminated and live for the call; the
    // value pointer and length describe a live slice.
    let ret = unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `getxattr(2)`: whether `path` carries `name` with exactly `value`.
pub(crate) fn has(path: &Path, name: &CStr, value: &[u8]) -> bool {
    let Ok(path) = c_path(path) else {
        return false;
    };
    let mut buf = [0u8; 16];
    // SAFETY: both strings are NUL-terminated; the buffer is live and
    // its length is passed, so the kernel writes within it.
    let ret = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    ret >= 0 && buf.get(..ret as usize) == Some(value)
}
