//! Checking a [`Filesystem`] and rendering it into the flat list of
//! operations the spawn child performs (parent side).

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

use super::{BindFlags, Filesystem, FsError, Mount, Root, Upper};
use crate::plan::fs::{FsPlan, Op, RootPlan, UpperPlan, attr};
use crate::plan::{c_decimal, c_octal};

fn cstring(what: &str, bytes: &[u8]) -> Result<CString, FsError> {
    CString::new(bytes).map_err(|_| FsError::InvalidPath {
        what: what.to_string(),
        path: OsStr::from_bytes(bytes).to_owned(),
        reason: "it contains a NUL byte",
    })
}

/// Renders an absolute guest path as a path relative to the guest root.
fn guest_path(what: &str, path: &Path) -> Result<CString, FsError> {
    let bad =
        |reason| FsError::InvalidPath { what: what.to_string(), path: path.as_os_str().to_owned(), reason };
    if !path.is_absolute() {
        return Err(bad("it is not absolute"));
    }
    let mut rel = Vec::new();
    for comp in path.components() {
        match comp {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => {
                if !rel.is_empty() {
                    rel.push(b'/');
                }
                rel.extend_from_slice(name.as_bytes());
            }
            Component::ParentDir => return Err(bad("it contains '..'")),
            Component::Prefix(_) => return Err(bad("it has a prefix")),
        }
    }
    if rel.is_empty() {
        return Err(bad("it is the root itself"));
    }
    cstring(what, &rel)
}

fn host_path(what: &str, path: &Path) -> Result<CString, FsError> {
    cstring(what, path.as_os_str().as_bytes())
}

fn dir_exists(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() { Ok(()) } else { Err(std::io::Error::from_raw_os_error(libc::ENOTDIR)) }
}

/// Memory plus swap of this machine, the ceiling for a tmpfs size.
fn memory_ceiling() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (kib("MemTotal:") + kib("SwapTotal:")).saturating_mul(1024)
}

fn check_size(target: &str, size: u64) -> Result<CString, FsError> {
    let bad = |reason: String| FsError::InvalidTmpfsSize { target: target.to_string(), size, reason };
    if size == 0 {
        return Err(bad("zero, which tmpfs would take as unlimited".into()));
    }
    if size < 4096 {
        return Err(bad("below one page".into()));
    }
    let ceiling = memory_ceiling();
    if ceiling > 0 && size > ceiling {
        return Err(bad(format!("more than this machine's memory and swap ({ceiling} bytes)")));
    }
    Ok(c_decimal(size))
}

fn opt(key: &CStr, value: impl Into<CString>) -> (CString, Option<CString>) {
    (key.to_owned(), Some(value.into()))
}

fn bind_attrs(flags: &BindFlags) -> u64 {
    let mut a = 0;
    if flags.read_only {
        a |= attr::RDONLY;
    }
    if flags.nosuid {
        a |= attr::NOSUID;
    }
    if flags.nodev {
        a |= attr::NODEV;
    }
    if flags.noexec {
        a |= attr::NOEXEC;
    }
    a
}

impl Filesystem {
    /// Checks every path and size and renders the plan.
    pub(crate) fn plan(&self) -> Result<FsPlan, FsError> {
        let (root, root_description) = self.plan_root()?;
        let mut ops = Vec::new();
        let mut descriptions = Vec::new();
        let mut push = |op: Op, description: String| {
            ops.push(op);
            descriptions.push(description);
        };
        for mount in &self.mounts {
            for (op, description) in render_mount(mount)? {
                push(op, description);
            }
        }
        for path in &self.masked {
            let what = format!("mask {}", path.display());
            push(Op::Mask { path: guest_path(&what, path)? }, what);
        }
        for path in &self.read_only {
            let what = format!("read-only {}", path.display());
            push(Op::ReadOnly { path: guest_path(&what, path)? }, what);
        }
        let mut root_attrs = 0;
        for (on, a) in [
            (self.read_only_root, attr::RDONLY),
            (self.root_nosuid, attr::NOSUID),
            (self.root_nodev, attr::NODEV),
        ] {
            if on {
                root_attrs |= a;
            }
        }
        Ok(FsPlan { root, ops, root_attrs, descriptions, root_description })
    }

    fn plan_root(&self) -> Result<(RootPlan, String), FsError> {
        match &self.root {
            Root::Dir(path) => {
                dir_exists(path).map_err(|source| FsError::RootMissing { path: path.clone(), source })?;
                let description = format!("root {}", path.display());
                Ok((RootPlan::Dir { path: host_path(&description, path)? }, description))
            }
            Root::Overlay(o) => {
                let Some(top) = o.lower.first() else {
                    return Err(FsError::InvalidOverlay { reason: "it has no template".into() });
                };
                let mut lowerdir = Vec::new();
                for lower in &o.lower {
                    dir_exists(lower)
                        .map_err(|source| FsError::TemplateMissing { path: lower.clone(), source })?;
                    let bytes = lower.as_os_str().as_bytes();
                    if bytes.contains(&b':') {
                        let reason = format!("template {} contains ':'", lower.display());
                        return Err(FsError::InvalidOverlay { reason });
                    }
                    if !lowerdir.is_empty() {
                        lowerdir.push(b':');
                    }
                    lowerdir.extend_from_slice(bytes);
                }
                let upper = match &o.upper {
                    Upper::Dir { upper, work } => {
                        let check = |which, path: &Path| {
                            dir_exists(path).map_err(|source| FsError::UpperMissing {
                                which,
                                path: path.into(),
                                source,
                            })
                        };
                        check("upper", upper)?;
                        check("work", work)?;
                        let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
                        if dev(upper) != dev(work) {
                            let reason = format!(
                                "upper {} and work {} are on different filesystems",
                                upper.display(),
                                work.display()
                            );
                            return Err(FsError::InvalidOverlay { reason });
                        }
                        UpperPlan::Dir { upper: host_path("upper", upper)?, work: host_path("work", work)? }
                    }
                    Upper::Tmpfs { size } => UpperPlan::Tmpfs { size: check_size("overlay upper", *size)? },
                };
                let description = format!("overlay root on {}", top.display());
                let top_len = top.as_os_str().len();
                let lower_rest = cstring("overlay", &lowerdir[top_len..])?;
                let lowerdir = cstring("overlay", &lowerdir)?;
                let attach = host_path("overlay", top)?;
                Ok((RootPlan::Overlay { lowerdir, lower_rest, upper, attach }, description))
            }
        }
    }
}

/// Expands one mount into child operations with descriptions.
fn render_mount(mount: &Mount) -> Result<Vec<(Op, String)>, FsError> {
    const HARDENED: u64 = attr::NOSUID | attr::NODEV | attr::NOEXEC;
    let new_fs = |fstype, options, target: &Path, attrs, what: String| -> Result<(Op, String), FsError> {
        let target = guest_path(&what, target)?;
        Ok((Op::NewFs { fstype, options, target, attrs }, what))
    };
    Ok(match mount {
        Mount::Bind { source, target, flags } => {
            let what = format!("bind {} on {}", source.display(), target.display());
            let meta = std::fs::metadata(source).map_err(|e| FsError::BindSourceMissing {
                source_path: source.clone(),
                target: target.clone(),
                source: e,
            })?;
            let op = Op::Bind {
                source: host_path(&what, source)?,
                target: guest_path(&what, target)?,
                file: !meta.is_dir(),
                recursive: flags.recursive,
                attrs: bind_attrs(flags),
            };
            vec![(op, what)]
        }
        Mount::Tmpfs { target, size, mode } => {
            let what = format!("tmpfs on {}", target.display());
            let size = check_size(&target.display().to_string(), *size)?;
            let options = vec![(c"size".to_owned(), Some(size)), opt(c"mode", c_octal(*mode))];
            vec![new_fs(c"tmpfs", options, target, attr::NOSUID | attr::NODEV, what)?]
        }
        Mount::Proc { target } => {
            vec![new_fs(c"proc", Vec::new(), target, HARDENED, format!("proc on {}", target.display()))?]
        }
        Mount::Sysfs { target } => {
            let what = format!("sysfs on {}", target.display());
            vec![new_fs(c"sysfs", Vec::new(), target, HARDENED | attr::RDONLY, what)?]
        }
        Mount::Mqueue { target } => {
            vec![new_fs(c"mqueue", Vec::new(), target, HARDENED, format!("mqueue on {}", target.display()))?]
        }
        Mount::Dev { target } => render_dev(target)?,
        Mount::Dir { path, mode } => {
            let what = format!("directory {}", path.display());
            vec![(Op::Dir { path: guest_path(&what, path)?, mode: *mode }, what)]
        }
        Mount::Symlink { path, target } => {
            let what = format!("symlink {} -> {}", path.display(), target.display());
            let op = Op::Symlink { path: guest_path(&what, path)?, target: host_path(&what, target)? };
            vec![(op, what)]
        }
        Mount::File { path, contents, mode } => {
            let what = format!("file {}", path.display());
            vec![(Op::File { path: guest_path(&what, path)?, contents: contents.clone(), mode: *mode }, what)]
        }
    })
}

/// The minimal `/dev` of [`Mount::Dev`], as individual operations.
fn render_dev(target: &Path) -> Result<Vec<(Op, String)>, FsError> {
    let base = target.display().to_string();
    let under = |name: &str| target.join(name);
    let rel = |name: &str, what: &str| guest_path(what, &under(name));
    let mut ops = Vec::new();
    let what = format!("tmpfs on {base}");
    let options = vec![opt(c"size", c"65536"), opt(c"mode", c"755")];
    let op = Op::NewFs {
        fstype: c"tmpfs",
        options,
        target: guest_path(&what, target)?,
        // nodev: a guest holding CAP_MKNOD could otherwise make a node for
        // a host disk here. The device files are bind mounts of their own.
        attrs: attr::NOSUID | attr::NODEV | attr::NOEXEC,
    };
    ops.push((op, what));
    for (dev, source) in [
        ("null", c"/dev/null"),
        ("zero", c"/dev/zero"),
        ("full", c"/dev/full"),
        ("random", c"/dev/random"),
        ("urandom", c"/dev/urandom"),
        ("tty", c"/dev/tty"),
    ] {
        let what = format!("/dev/{dev} on {base}/{dev}");
        let op = Op::Bind {
            source: source.to_owned(),
            target: rel(dev, &what)?,
            file: true,
            recursive: false,
            attrs: attr::NOSUID | attr::NOEXEC,
        };
        ops.push((op, what));
    }
    let what = format!("devpts on {base}/pts");
    let options = vec![(c"newinstance".to_owned(), None), opt(c"ptmxmode", c"0666"), opt(c"mode", c"0620")];
    let op = Op::NewFs {
        fstype: c"devpts",
        options,
        target: rel("pts", &what)?,
        attrs: attr::NOSUID | attr::NOEXEC,
    };
    ops.push((op, what));
    let what = format!("tmpfs on {base}/shm");
    let options = vec![opt(c"size", c_decimal(64u64 << 20)), opt(c"mode", c"1777")];
    let op = Op::NewFs {
        fstype: c"tmpfs",
        options,
        target: rel("shm", &what)?,
        attrs: attr::NOSUID | attr::NODEV,
    };
    ops.push((op, what));
    for (name, link) in [
        ("ptmx", c"pts/ptmx"),
        ("fd", c"/proc/self/fd"),
        ("stdin", c"/proc/self/fd/0"),
        ("stdout", c"/proc/self/fd/1"),
        ("stderr", c"/proc/self/fd/2"),
    ] {
        let what = format!("symlink {base}/{name} -> {}", link.to_string_lossy());
        let op = Op::Symlink { path: rel(name, &what)?, target: link.to_owned() };
        ops.push((op, what));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_are_relative_and_checked() {
        assert_eq!(guest_path("t", Path::new("/etc//hosts")).unwrap().as_bytes(), b"etc/hosts");
        assert_eq!(guest_path("t", Path::new("/./proc/")).unwrap().as_bytes(), b"proc");
        for bad in ["relative", "/", "/a/../b"] {
            assert!(guest_path("t", Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_sizes() {
        assert!(check_size("/tmp", 0).unwrap_err().to_string().contains("unlimited"));
        assert!(check_size("/tmp", 100).is_err());
        assert!(check_size("/tmp", u64::MAX).unwrap_err().to_string().contains("memory and swap"));
        assert_eq!(check_size("/tmp", 1 << 20).unwrap().as_bytes(), b"1048576");
    }

    #[test]
    fn plan_expands_dev_and_masks() {
        let fs = Filesystem::new("/").dev().tmpfs("/tmp", 1 << 20);
        let plan = fs.plan().unwrap();
        // tmpfs, 6 device binds, devpts, shm, 5 symlinks, tmpfs /tmp, then masks.
        assert!(matches!(plan.ops[0], Op::NewFs { fstype, .. } if fstype == c"tmpfs"));
        assert_eq!(plan.ops.iter().filter(|o| matches!(o, Op::Bind { file: true, .. })).count(), 6);
        let masks = plan.ops.iter().filter(|o| matches!(o, Op::Mask { .. })).count();
        assert_eq!(masks, super::super::DEFAULT_MASKED.len());
        assert_eq!(plan.describe(1), "/dev/null on /dev/null");
        let plan = Filesystem::new("/").no_default_masks().plan().unwrap();
        assert!(plan.ops.is_empty());
    }

    #[test]
    fn missing_paths_are_named() {
        let err = Filesystem::new("/no/such/root").plan().unwrap_err();
        assert!(matches!(err, FsError::RootMissing { .. }), "{err}");
        let err = Filesystem::new("/").bind("/no/such/src", "/x").plan().unwrap_err();
        assert!(err.to_string().contains("/no/such/src"), "{err}");
        let o = super::super::Overlay::new(["/no/template"], Upper::Tmpfs { size: 1 << 20 });
        let err = Filesystem::overlay(o).plan().unwrap_err();
        assert!(matches!(err, FsError::TemplateMissing { .. }), "{err}");
    }
}
