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

/// `getxattr(2)`: the value of `name` on `path`, or `None` if it has
/// none.
pub(crate) fn get(path: &Path, name: &CStr) -> Option<Vec<u8>> {
    let path = c_path(path).ok()?;
    // Owner marks fit the first try; a larger value is sized and read
    // again (it may change in between: then ERANGE, and another round).
    let mut buf = vec![0u8; 64];
    for _ in 0..4 {
        // SAFETY: both strings are NUL-terminated; the buffer is live and
        // its length is passed, so the kernel writes within it.
        let ret = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if ret >= 0 {
            buf.truncate(ret as usize);
            return Some(buf);
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::ERANGE) {
            return None;
        }
        // SAFETY: as above; a null buffer of size 0 asks for the size.
        let size = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
        if size < 0 {
            return None;
        }
        buf = vec![0u8; size as usize];
    }
    None
}

/// `listxattr(2)`: the names of the attributes on `path`.
pub(crate) fn list(path: &Path) -> io::Result<Vec<CString>> {
    let path = c_path(path)?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: the path is NUL-terminated; the buffer is live and its
        // length is passed, so the kernel writes within it.
        let ret = unsafe { libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if ret >= 0 {
            buf.truncate(ret as usize);
            return Ok(buf
                .split(|b| *b == 0)
                .filter(|n| !n.is_empty())
                .filter_map(|n| CString::new(n).ok())
                .collect());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) || buf.len() >= 1 << 20 {
            return Err(err);
        }
        let len = buf.len() * 4;
        buf.resize(len, 0);
    }
}

/// `removexattr(2)`.
pub(crate) fn remove(path: &Path, name: &CStr) -> io::Result<()> {
    let path = c_path(path)?;
    // SAFETY: both strings are NUL-terminated and live for the call.
    let ret = unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}
