//! The filesystem layer's child side: building the guest's mount table
//! and switching root.
//!
//! ```text
//!   RUNS IN THE SPAWN CHILD (see src/child/mod.rs):
//!   no allocation, no locks, no panics; only `sys::call` system calls.
//!   Paths are assembled in fixed stack buffers.
//! ```
//!
//! Everything happens through file descriptors: the new root is a mount
//! fd, each target is opened with `openat2(RESOLVE_BENEATH)` relative to
//! it (so a symlink can never lead out of the guest's tree), and each
//! mount is attached with `move_mount` onto that fd. Only bind sources,
//! `/dev/null` and the overlay's layers are host paths, resolved in the
//! host's view before the root switch.

use core::ffi::CStr;

use super::{At, Failure};
use crate::plan::fs::{FsPlan, Op, RootPlan, UpperPlan, attr, detail};
use crate::plan::wire::step;
use crate::sys::call::{self, Errno, OpenHow, fsconfig_cmd};

const OPEN_TREE_CLONE: u32 = 1;
const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const BOTH_EMPTY: u32 = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH;
/// Stay beneath the guest root; refuse `/proc/self/fd`-style magic links.
const RESOLVE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
const PATH_MAX: usize = 4096;

/// An fd closed when dropped (dropping allocates nothing).
struct Fd(i32);

impl Drop for Fd {
    fn drop(&mut self) {
        let _ = call::close(self.0);
    }
}

fn fd(result: call::SysResult) -> Result<Fd, Errno> {
    result.map(|n| Fd(n as i32))
}

/// Builds the guest's mount table under its new root and switches to it.
pub(crate) fn child_filesystem(plan: &FsPlan) -> Result<(), Failure> {
    let root = child_root(&plan.root).at(step::MOUNT, detail::ROOT)?;
    for (i, op) in plan.ops.iter().enumerate() {
        child_op(root.0, op).at(step::MOUNT, i as u32)?;
    }
    if plan.root_attrs != 0 {
        call::mount_setattr(root.0, plan.root_attrs, false).at(step::MOUNT, detail::ROOT_ATTRS)?;
    }
    // pivot_root(".", ".") stacks the old root on top of the new one;
    // detaching it leaves only the guest's tree (pivot_root(2), NOTES).
    call::fchdir(root.0).at(step::PIVOT_ROOT, 0)?;
    call::pivot_root(c".", c".").at(step::PIVOT_ROOT, 0)?;
    call::umount2(c".", libc::MNT_DETACH).at(step::PIVOT_ROOT, 0)?;
    call::chdir(c"/").at(step::PIVOT_ROOT, 0)?;
    Ok(())
}

/// Mounts the new root and attaches it (in this private namespace only)
/// over a host path, so `pivot_root` can take it. Returns its mount fd.
fn child_root(root: &RootPlan) -> Result<Fd, Errno> {
    match root {
        RootPlan::Dir { path } => {
            let flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32;
            let tree = fd(call::open_tree(libc::AT_FDCWD, path, flags))?;
            call::move_mount(tree.0, c"", libc::AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH)?;
            Ok(tree)
        }
        RootPlan::Overlay { lowerdir, lower_rest, upper, attach } => {
            let mut lower_buf = [0u8; PATH_MAX];
            let mut upper_buf = [0u8; 64];
            let mut work_buf = [0u8; 64];
            // Hold the template and the scratch tmpfs open until the
            // overlay has taken its own references to them.
            let (_top, _scratch);
            let (lowerdir, upperdir, workdir): (&CStr, &CStr, &CStr) = match upper {
                UpperPlan::Dir { upper, work } => (lowerdir, upper, work),
                UpperPlan::Tmpfs { size } => {
                    // Overlayfs takes layers only from attached mounts
                    // (clone_private_mount() before Linux 6.15), so the
                    // scratch tmpfs is attached over the top template,
                    // which stays reachable through an fd opened first.
                    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
                    let top = fd(call::openat(libc::AT_FDCWD, attach, flags, 0))?;
                    let tmp = new_fs(c"tmpfs", &[(c"size", Some(size)), (c"mode", Some(c"755"))], 0)?;
                    call::move_mount(tmp.0, c"", libc::AT_FDCWD, attach, MOVE_MOUNT_F_EMPTY_PATH)?;
                    call::mkdirat(tmp.0, c"upper", 0o755)?;
                    call::mkdirat(tmp.0, c"work", 0o755)?;
                    let lower = fd_path(&mut lower_buf, top.0, lower_rest.to_bytes())?;
                    let up = fd_path(&mut upper_buf, tmp.0, b"/upper")?;
                    let work = fd_path(&mut work_buf, tmp.0, b"/work")?;
                    (_top, _scratch) = (top, tmp);
                    (lower, up, work)
                }
            };
            let options =
                [(c"lowerdir", Some(lowerdir)), (c"upperdir", Some(upperdir)), (c"workdir", Some(workdir))];
            let overlay = new_fs(c"overlay", &options, 0)?;
            call::move_mount(overlay.0, c"", libc::AT_FDCWD, attach, MOVE_MOUNT_F_EMPTY_PATH)?;
            Ok(overlay)
        }
    }
}

/// Writes `/proc/self/fd/<fd><suffix>` into `buf` as a C string.
fn fd_path<'a>(buf: &'a mut [u8], fd: i32, suffix: &[u8]) -> Result<&'a CStr, Errno> {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    let mut digit_buf = [0u8; 10];
    let digits = call::decimal(fd.max(0) as u32, &mut digit_buf);
    let len = digits.len();
    let total = PREFIX.len() + len + suffix.len();
    if total + 1 > buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    buf[PREFIX.len()..PREFIX.len() + len].copy_from_slice(digits);
    buf[PREFIX.len() + len..total].copy_from_slice(suffix);
    buf[total] = 0;
    CStr::from_bytes_with_nul(&buf[..=total]).map_err(|_| libc::EINVAL)
}

/// Creates a new filesystem instance with `options` (a `None` value sets
/// a flag) and returns its detached mount.
fn new_fs(fstype: &CStr, options: &[(&CStr, Option<&CStr>)], attrs: u64) -> Result<Fd, Errno> {
    let ctx = fd(call::fsopen(fstype))?;
    for (key, value) in options {
        let cmd = if value.is_some() { fsconfig_cmd::SET_STRING } else { fsconfig_cmd::SET_FLAG };
        call::fsconfig(ctx.0, cmd, Some(key), *value)?;
    }
    call::fsconfig(ctx.0, fsconfig_cmd::CMD_CREATE, None, None)?;
    fd(call::fsmount(ctx.0, attrs))
}

fn child_op(root: i32, op: &Op) -> Result<(), Errno> {
    match op {
        Op::Bind { source, target, file, recursive, attrs } => {
            let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
            if *recursive {
                flags |= libc::AT_RECURSIVE as u32;
            }
            let tree = fd(call::open_tree(libc::AT_FDCWD, source, flags))?;
            if *attrs != 0 {
                call::mount_setattr(tree.0, *attrs, *recursive)?;
            }
            let target = ensure(root, target, *file, if *file { 0o644 } else { 0o755 })?;
            call::move_mount(tree.0, c"", target.0, c"", BOTH_EMPTY)?;
        }
        Op::NewFs { fstype, options, target, attrs } => {
            let ctx = fd(call::fsopen(fstype))?;
            for (key, value) in options {
                let cmd = if value.is_some() { fsconfig_cmd::SET_STRING } else { fsconfig_cmd::SET_FLAG };
                call::fsconfig(ctx.0, cmd, Some(key), value.as_deref())?;
            }
            call::fsconfig(ctx.0, fsconfig_cmd::CMD_CREATE, None, None)?;
            let mount = fd(call::fsmount(ctx.0, *attrs))?;
            let target = ensure(root, target, false, 0o755)?;
            call::move_mount(mount.0, c"", target.0, c"", BOTH_EMPTY)?;
        }
        Op::Dir { path, mode } => {
            ensure(root, path, false, *mode)?;
        }
        Op::Symlink { path, target } => {
            let mut name = [0u8; 256];
            let (parent, name) = ensure_parent(root, path, &mut name)?;
            call::symlinkat(target, parent.as_ref().map_or(root, |p| p.0), name)?;
        }
        Op::File { path, contents, mode } => {
            let mut name = [0u8; 256];
            ensure_parent(root, path, &mut name)?;
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC;
            let how = OpenHow { flags: flags as u64, mode: u64::from(*mode), resolve: RESOLVE };
            let file = fd(call::openat2(root, path, &how))?;
            call::write_all(file.0, contents)?;
        }
        Op::Mask { path } => {
            let target = match resolve(root, path, 0) {
                Ok(t) => t,
                Err(libc::ENOENT) => return Ok(()),
                Err(e) => return Err(e),
            };
            let mode = call::stat_mode(target.0, c"", libc::AT_EMPTY_PATH)?;
            let cover = if mode & libc::S_IFMT == libc::S_IFDIR {
                let hardened = attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC;
                new_fs(c"tmpfs", &[(c"size", Some(c"4096")), (c"mode", Some(c"555"))], hardened)?
            } else {
                fd(call::open_tree(libc::AT_FDCWD, c"/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC))?
            };
            call::move_mount(cover.0, c"", target.0, c"", BOTH_EMPTY)?;
        }
        Op::ReadOnly { path } => {
            let target = match resolve(root, path, 0) {
                Ok(t) => t,
                Err(libc::ENOENT) => return Ok(()),
                Err(e) => return Err(e),
            };
            let flags =
                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32 | libc::AT_RECURSIVE as u32;
            let tree = fd(call::open_tree(target.0, c"", flags))?;
            call::mount_setattr(tree.0, attr::RDONLY, true)?;
            call::move_mount(tree.0, c"", target.0, c"", BOTH_EMPTY)?;
        }
    }
    Ok(())
}

/// Opens `rel` (relative to the guest root) as an `O_PATH` fd without
/// leaving the root.
fn resolve(root: i32, rel: &CStr, flags: i32) -> Result<Fd, Errno> {
    let how = OpenHow { flags: (libc::O_PATH | libc::O_CLOEXEC | flags) as u64, mode: 0, resolve: RESOLVE };
    fd(call::openat2(root, rel, &how))
}

/// Copies `bytes` into `buf` as a C string.
fn to_cstr<'a>(buf: &'a mut [u8], bytes: &[u8]) -> Result<&'a CStr, Errno> {
    if bytes.len() >= buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()] = 0;
    CStr::from_bytes_with_nul(&buf[..=bytes.len()]).map_err(|_| libc::EINVAL)
}

/// Resolves `rel` beneath the root, creating it if it is missing: the
/// last component as a directory or (with `file`) an empty file with
/// `mode`, and missing parents as directories. The usual case, a fresh
/// mount point in an existing directory, costs one failed lookup, one of
/// the parent and the creation, whose fd is the result.
fn ensure(root: i32, rel: &CStr, file: bool, mode: u32) -> Result<Fd, Errno> {
    match resolve(root, rel, 0) {
        Err(libc::ENOENT) => {}
        other => return other,
    }
    let mut name = [0u8; 256];
    let (parent, name) = ensure_parent(root, rel, &mut name)?;
    let at = parent.as_ref().map_or(root, |p| p.0);
    if file {
        let flags = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        match call::openat(at, name, flags, mode) {
            Ok(created) => return Ok(Fd(created as i32)),
            Err(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
    } else {
        match call::mkdirat(at, name, mode) {
            Ok(_) | Err(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    // Created by us or, in a race, by someone else: open it in place,
    // never following a symlink.
    let dir_flag = if file { 0 } else { libc::O_DIRECTORY };
    fd(call::openat(at, name, libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC | dir_flag, 0))
}

/// Resolves the directory `rel` beneath the root, creating each missing
/// component (mode 0755) from the top down.
fn make_dirs(root: i32, rel: &CStr) -> Result<Fd, Errno> {
    let bytes = rel.to_bytes();
    let mut prefix_buf = [0u8; PATH_MAX];
    let mut name_buf = [0u8; 256];
    let mut parent: Option<Fd> = None;
    let mut start = 0;
    while start <= bytes.len() {
        let end = bytes[start..].iter().position(|b| *b == b'/').map_or(bytes.len(), |p| start + p);
        let prefix = to_cstr(&mut prefix_buf, &bytes[..end])?;
        let found = match resolve(root, prefix, libc::O_DIRECTORY) {
            Err(libc::ENOENT) => {
                let name = to_cstr(&mut name_buf, &bytes[start..end])?;
                match call::mkdirat(parent.as_ref().map_or(root, |p| p.0), name, 0o755) {
                    Ok(_) | Err(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                resolve(root, prefix, libc::O_DIRECTORY)?
            }
            other => other?,
        };
        if end == bytes.len() {
            return Ok(found);
        }
        parent = Some(found);
        start = end + 1;
    }
    Err(libc::EINVAL)
}

/// Ensures the parent directory of `rel` exists; returns it (`None` for
/// the root itself) and the last component as a C string in `name`.
fn ensure_parent<'a>(
    root: i32,
    rel: &CStr,
    name: &'a mut [u8; 256],
) -> Result<(Option<Fd>, &'a CStr), Errno> {
    let bytes = rel.to_bytes();
    match bytes.iter().rposition(|b| *b == b'/') {
        None => Ok((None, to_cstr(name, bytes)?)),
        Some(slash) => {
            let mut dir_buf = [0u8; PATH_MAX];
            let dir = to_cstr(&mut dir_buf, &bytes[..slash])?;
            let parent = match resolve(root, dir, libc::O_DIRECTORY) {
                Err(libc::ENOENT) => make_dirs(root, dir)?,
                other => other?,
            };
            Ok((Some(parent), to_cstr(name, &bytes[slash + 1..])?))
        }
    }
}
