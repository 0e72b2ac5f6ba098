//! Which cgroup hierarchies the host mounts, read from `/proc/self/mountinfo`
//! text (`proc(5)`), and which controller lives where.
//!
//! Everything here works on text and paths passed in, so the decisions are
//! unit-tested against fake mount tables for v1, hybrid and v2 hosts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::error::ResourceError;
use super::layout::CgroupLayout;

impl CgroupLayout {
    /// Detects this host's layout from `/proc/self/mountinfo` (read once
    /// per process).
    ///
    /// ```no_run
    /// println!("cgroups here: {}", vguest::CgroupLayout::detect()?);
    /// # Ok::<(), vguest::ResourceError>(())
    /// ```
    pub fn detect() -> Result<CgroupLayout, ResourceError> {
        Hierarchies::host()?.layout().ok_or(ResourceError::NoCgroupFs)
    }
}

/// The controllers the resource layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Controller {
    Memory,
    Cpu,
    Cpuacct,
    Cpuset,
    Pids,
    Io,
    Freezer,
}

impl Controller {
    pub(crate) const ALL: [Controller; 7] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Pids,
        Controller::Io,
        Controller::Freezer,
    ];

    /// The name in a v1 mount's options and `/proc/self/cgroup`.
    pub(crate) fn v1_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Pids => "pids",
            Controller::Io => "blkio",
            Controller::Freezer => "freezer",
        }
    }

    /// The name in v2's `cgroup.controllers`; `None` for what v2 offers
    /// in every group without a controller (`cpu.stat`, `cgroup.freeze`).
    pub(crate) fn v2_name(self) -> Option<&'static str> {
        match self {
            Controller::Memory => Some("memory"),
            Controller::Cpu => Some("cpu"),
            Controller::Cpuset => Some("cpuset"),
            Controller::Pids => Some("pids"),
            Controller::Io => Some("io"),
            Controller::Cpuacct | Controller::Freezer => None,
        }
    }
}

/// A mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V1Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// Which group of the hierarchy is the mount's root (`/` unless bind
    /// mounted or mounted inside a cgroup namespace).
    pub root: PathBuf,
    /// Its controllers, and `name=...` for named hierarchies.
    pub controllers: Vec<String>,
}

/// The mounted v2 (unified) hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V2Mount {
    pub point: PathBuf,
    pub root: PathBuf,
}

/// The cgroup hierarchies a mount table shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Hierarchies {
    pub v1: Vec<V1Mount>,
    pub v2: Option<V2Mount>,
}

/// v1 controller names; other super options (`rw`, `xattr`,
/// `release_agent=...`) are not controllers.
const V1_CONTROLLERS: [&str; 14] = [
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Undoes the octal escapes (`\040` for a space) of mountinfo fields.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(u8::is_ascii_digit));
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

impl Hierarchies {
    /// Parses `/proc/self/mountinfo` text. The first mount of each
    /// hierarchy wins (later ones are bind mounts of the same tree).
    pub(crate) fn parse(mountinfo: &str) -> Hierarchies {
        let mut out = Hierarchies::default();
        for line in mountinfo.lines() {
            let Some((head, tail)) = line.split_once(" - ") else {
                continue;
            };
            let head: Vec<&str> = head.split(' ').collect();
            let mut tail = tail.split(' ');
            let (Some(root), Some(point)) = (head.get(3), head.get(4)) else {
                continue;
            };
            let (fstype, super_opts) = (tail.next(), tail.nth(1).unwrap_or(""));
            match fstype {
                Some("cgroup2") if out.v2.is_none() => {
                    out.v2 = Some(V2Mount { point: unescape(point), root: unescape(root) });
                }
                Some("cgroup") => {
                    let controllers: Vec<String> = super_opts
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(String::from)
                        .collect();
                    if controllers.is_empty() || out.v1.iter().any(|m| m.controllers == controllers) {
                        continue;
                    }
                    out.v1.push(V1Mount { point: unescape(point), root: unescape(root), controllers });
                }
                _ => {}
            }
        }
        out
    }

    /// This host's hierarchies, parsed from `/proc/self/mountinfo` once
    /// per process.
    pub(crate) fn host() -> Result<&'static Hierarchies, ResourceError> {
        static HOST: OnceLock<Hierarchies> = OnceLock::new();
        if let Some(h) = HOST.get() {
            return Ok(h);
        }
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path)
            .map_err(|source| ResourceError::Detect { path: path.into(), source })?;
        Ok(HOST.get_or_init(|| Hierarchies::parse(&text)))
    }

    /// The layout: hybrid when v1 controllers and a cgroup2 mount exist
    /// side by side. A named v1 hierarchy alone (`name=systemd`) carries no
    /// controllers and does not make a host hybrid.
    pub(crate) fn layout(&self) -> Option<CgroupLayout> {
        let v1_controllers = self.v1.iter().any(|m| m.controllers.iter().any(|c| !c.starts_with("name=")));
        match (v1_controllers, self.v2.is_some()) {
            (true, true) => Some(CgroupLayout::Hybrid),
            (true, false) => Some(CgroupLayout::V1),
            (false, true) => Some(CgroupLayout::V2),
            (false, false) => None,
        }
    }

    /// The v1 hierarchy `controller` is bound to, if any (a controller
    /// bound to v1 is not available in v2).
    pub(crate) fn v1_for(&self, controller: Controller) -> Option<usize> {
        self.v1.iter().position(|m| m.controllers.iter().any(|c| c == controller.v1_name()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// This machine's table: v1 controllers each on its own, a named
    /// systemd hierarchy, and cgroup2 at `unified`.
    pub(crate) fn hybrid_mountinfo(root: &Path) -> String {
        let r = root.display();
        let mut s = format!("31 23 0:28 / {r} rw,relatime - tmpfs tmpfs rw,mode=755\n");
        for (i, c) in
            ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"].iter().enumerate()
        {
            s += &format!("{} 31 0:{} / {r}/{c} rw,relatime - cgroup cgroup rw,{c}\n", 32 + i, 29 + i);
        }
        s += &format!("40 31 0:37 / {r}/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n");
        s += &format!("41 31 0:38 / {r}/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n");
        s
    }

    pub(crate) fn v1_mountinfo(root: &Path) -> String {
        let r = root.display();
        let mut s = String::new();
        for (i, c) in ["cpu,cpuacct", "cpuset", "memory", "freezer", "blkio", "pids"].iter().enumerate() {
            s += &format!("{} 31 0:{} / {r}/{c} rw,nosuid - cgroup cgroup rw,{c}\n", 32 + i, 29 + i);
        }
        s
    }

    pub(crate) fn v2_mountinfo(root: &Path) -> String {
        format!(
            "22 1 0:21 / /proc rw - proc proc rw\n\
             30 23 0:26 / {} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
            root.display()
        )
    }

    #[test]
    fn detects_the_three_layouts() {
        let root = Path::new("/sys/fs/cgroup");
        let h = Hierarchies::parse(&hybrid_mountinfo(root));
        assert_eq!(h.layout(), Some(CgroupLayout::Hybrid));
        assert_eq!(h.v1.len(), 9);
        assert_eq!(h.v2.as_ref().unwrap().point, root.join("unified"));
        assert_eq!(h.v1[h.v1_for(Controller::Memory).unwrap()].point, root.join("memory"));
        assert_ne!(h.v1_for(Controller::Cpu), h.v1_for(Controller::Cpuacct));

        let h = Hierarchies::parse(&v1_mountinfo(root));
        assert_eq!(h.layout(), Some(CgroupLayout::V1));
        assert_eq!(h.v1_for(Controller::Cpu), h.v1_for(Controller::Cpuacct), "co-mounted");
        assert_eq!(h.v1[h.v1_for(Controller::Io).unwrap()].controllers, ["blkio"]);

        let h = Hierarchies::parse(&v2_mountinfo(root));
        assert_eq!(h.layout(), Some(CgroupLayout::V2));
        assert_eq!(h.v1_for(Controller::Memory), None);

        assert_eq!(Hierarchies::parse("").layout(), None);
        // A named hierarchy alone does not make a host hybrid.
        let named = format!(
            "{}40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n",
            v2_mountinfo(root)
        );
        assert_eq!(Hierarchies::parse(&named).layout(), Some(CgroupLayout::V2));
    }

    #[test]
    fn bind_mounts_and_escapes() {
        let text = "32 31 0:29 / /a\\040b rw - cgroup cgroup rw,memory\n\
                    99 31 0:29 /sub /other rw - cgroup cgroup rw,memory\n\
                    33 31 0:30 /ns /c rw - cgroup2 cgroup2 rw\n";
        let h = Hierarchies::parse(text);
        assert_eq!(h.v1.len(), 1, "second mount of the same hierarchy ignored");
        assert_eq!(h.v1[0].point, Path::new("/a b"));
        assert_eq!(h.v2.as_ref().unwrap().root, Path::new("/ns"));
    }
}
