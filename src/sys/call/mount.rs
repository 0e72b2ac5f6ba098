//! Wrappers for the mount API: building a filesystem (`fsopen`,
//! `fsconfig`, `fsmount`), cloning and moving mounts (`open_tree`,
//! `move_mount`), setting their attributes (`mount_setattr`) and
//! propagation, detaching them, and `pivot_root`.
//!
//! Paths and options are borrowed from the caller; new mounts and
//! filesystem contexts come back as descriptors in the [`SysResult`].

use core::ffi::CStr;

use super::{SysResult, cstr, ptr, sys};
use crate::sys::raw::nr;

/// `mount(2)` changing only the propagation of `target` (no source, type
/// or data).
pub(crate) fn mount_propagation(target: &CStr, flags: u64) -> SysResult {
    sys(nr::MOUNT, 0, cstr(target), 0, flags as usize, 0, 0)
}

/// `umount2(2)`.
pub(crate) fn umount2(target: &CStr, flags: i32) -> SysResult {
    sys(nr::UMOUNT2, cstr(target), flags as usize, 0, 0, 0, 0)
}

/// `pivot_root(2)`.
pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> SysResult {
    sys(nr::PIVOT_ROOT, cstr(new_root), cstr(put_old), 0, 0, 0, 0)
}

/// `fsopen(2)` with `FSOPEN_CLOEXEC`.
pub(crate) fn fsopen(fstype: &CStr) -> SysResult {
    const FSOPEN_CLOEXEC: usize = 1;
    sys(nr::FSOPEN, cstr(fstype), FSOPEN_CLOEXEC, 0, 0, 0, 0)
}

/// `fsconfig(2)` commands used here.
pub(crate) mod fsconfig_cmd {
    pub const SET_FLAG: u32 = 0;
    pub const SET_STRING: u32 = 1;
    pub const CMD_CREATE: u32 = 6;
}

/// `fsconfig(2)`.
pub(crate) fn fsconfig(fd: i32, cmd: u32, key: Option<&CStr>, value: Option<&CStr>) -> SysResult {
    sys(nr::FSCONFIG, fd as usize, cmd as usize, key.map_or(0, cstr), value.map_or(0, cstr), 0, 0)
}

/// `fsmount(2)` with `FSMOUNT_CLOEXEC` and the given `MOUNT_ATTR_*`.
pub(crate) fn fsmount(fd: i32, attrs: u64) -> SysResult {
    const FSMOUNT_CLOEXEC: usize = 1;
    sys(nr::FSMOUNT, fd as usize, FSMOUNT_CLOEXEC, attrs as usize, 0, 0, 0)
}

/// `open_tree(2)`.
pub(crate) fn open_tree(dirfd: i32, path: &CStr, flags: u32) -> SysResult {
    sys(nr::OPEN_TREE, dirfd as usize, cstr(path), flags as usize, 0, 0, 0)
}

/// `move_mount(2)`.
pub(crate) fn move_mount(from_fd: i32, from: &CStr, to_fd: i32, to: &CStr, flags: u32) -> SysResult {
    sys(nr::MOVE_MOUNT, from_fd as usize, cstr(from), to_fd as usize, cstr(to), flags as usize, 0)
}

/// The kernel's `struct mount_attr` for `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` setting `attrs` on the mount `fd` refers to.
pub(crate) fn mount_setattr(fd: i32, attrs: u64, recursive: bool) -> SysResult {
    let attr = MountAttr { attr_set: attrs, attr_clr: 0, propagation: 0, userns_fd: 0 };
    let mut flags = libc::AT_EMPTY_PATH as usize;
    if recursive {
        flags |= libc::AT_RECURSIVE as usize;
    }
    sys(nr::MOUNT_SETATTR, fd as usize, cstr(c""), flags, ptr(&attr), core::mem::size_of::<MountAttr>(), 0)
}
