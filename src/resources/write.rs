//! Writing each checked limit into the group of the hierarchy that serves it.
//!
//! The writes go through `cgroups-rs` controllers built on the guest's own
//! group directory (never through its hierarchy discovery, which assumes
//! the hierarchy's root, not the caller's group). Where v1 and v2 differ in
//! meaning, the value is converted here:
//!
//! | setting       | v1 file                                   | v2 file          |
//! |---------------|-------------------------------------------|------------------|
//! | memory max    | `memory.limit_in_bytes`                   | `memory.max`     |
//! | memory high   | `memory.soft_limit_in_bytes`              | `memory.high`    |
//! | swap          | `memory.memsw.limit_in_bytes` (mem+swap)  | `memory.swap.max` (swap only) |
//! | cpu weight    | `cpu.shares` (= weight × 1024 / 100)      | `cpu.weight`     |
//! | cpu quota     | `cpu.cfs_quota_us`, `cpu.cfs_period_us`   | `cpu.max`        |
//! | cpuset        | `cpuset.cpus`, `cpuset.mems`              | the same         |
//! | pids          | `pids.max`                                | `pids.max`       |
//! | io weight     | `blkio.weight` or `blkio.bfq.weight`      | `io.weight` or `io.bfq.weight` |
//! | io bandwidth  | `blkio.throttle.{read,write}_{bps,iops}_device` | `io.max`   |

use std::io;
use std::path::Path;

use cgroups_rs::fs::MaxValue;
use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;

use super::error::ResourceError;
use super::limits::{IoKind, Limit};

/// The first of `files` present in `dir`.
fn present(dir: &Path, files: &[&'static str]) -> Option<&'static str> {
    files.iter().copied().find(|f| dir.join(f).exists())
}

/// Recovers the errno from a `cgroups-rs` error.
pub(super) fn io_error(err: cgroups_rs::fs::error::Error) -> io::Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return match io.raw_os_error() {
                Some(code) => io::Error::from_raw_os_error(code),
                None => io::Error::new(io.kind(), io.to_string()),
            };
        }
        source = e.source();
    }
    io::Error::other(err.to_string())
}

impl Limit {
    /// The setting's name, for messages.
    fn setting(&self) -> &'static str {
        match self {
            Limit::MemoryMax(_) => "memory.max",
            Limit::MemoryHigh(_) => "memory.high",
            Limit::Swap { .. } => "memory.swap.max",
            Limit::CpuWeight(_) => "cpu.weight",
            Limit::CpuQuota { .. } => "cpu.max",
            Limit::CpusetCpus(_) => "cpuset.cpus",
            Limit::CpusetMems(_) => "cpuset.mems",
            Limit::PidsMax(_) => "pids.max",
            Limit::IoWeight(_) => "io.weight",
            Limit::Io { .. } => "io.max",
        }
    }

    /// The file written in `dir` and the text written to it.
    pub(crate) fn file_and_value(&self, dir: &Path, v2: bool) -> Option<(&'static str, String)> {
        let pick = |v1: &'static str, v2name: &'static str| if v2 { v2name } else { v1 };
        Some(match self {
            Limit::MemoryMax(b) => (pick("memory.limit_in_bytes", "memory.max"), b.to_string()),
            Limit::MemoryHigh(b) => (pick("memory.soft_limit_in_bytes", "memory.high"), b.to_string()),
            Limit::Swap { swap, memory } => match v2 {
                true => ("memory.swap.max", swap.to_string()),
                false => ("memory.memsw.limit_in_bytes", (swap + memory).to_string()),
            },
            Limit::CpuWeight(w) => match v2 {
                true => ("cpu.weight", w.to_string()),
                // systemd's mapping: the defaults (100 and 1024) match.
                false => ("cpu.shares", (w * 1024 / 100).clamp(2, 262_144).to_string()),
            },
            Limit::CpuQuota { quota_us, period_us } => match v2 {
                true => ("cpu.max", format!("{quota_us} {period_us}")),
                false => ("cpu.cfs_quota_us", quota_us.to_string()),
            },
            Limit::CpusetCpus(s) => ("cpuset.cpus", s.clone()),
            Limit::CpusetMems(s) => ("cpuset.mems", s.clone()),
            Limit::PidsMax(n) => ("pids.max", n.to_string()),
            Limit::IoWeight(w) => {
                let files: &[&'static str] = match v2 {
                    true => &["io.weight", "io.bfq.weight"],
                    false => &["blkio.weight", "blkio.bfq.weight"],
                };
                let file = present(dir, files)?;
                // BFQ takes 1..=1000.
                let w = if file.contains("bfq") { (*w).min(1000) } else { *w };
                (file, w.to_string())
            }
            Limit::Io { kind, major, minor, value } => {
                let (v1file, key) = match kind {
                    IoKind::ReadBps => ("blkio.throttle.read_bps_device", "rbps"),
                    IoKind::WriteBps => ("blkio.throttle.write_bps_device", "wbps"),
                    IoKind::ReadIops => ("blkio.throttle.read_iops_device", "riops"),
                    IoKind::WriteIops => ("blkio.throttle.write_iops_device", "wiops"),
                };
                match v2 {
                    true => ("io.max", format!("{major}:{minor} {key}={value}")),
                    false => (v1file, format!("{major}:{minor} {value}")),
                }
            }
        })
    }

    /// Writes the limit into the group `dir` of a hierarchy mounted at
    /// `mount`.
    pub(crate) fn apply(&self, dir: &Path, mount: &Path, v2: bool) -> Result<(), ResourceError> {
        let controller = match (self.controller(), v2) {
            (c, true) => c.v2_name().unwrap_or(c.v1_name()),
            (c, false) => c.v1_name(),
        };
        let unsupported = |file| ResourceError::Unsupported {
            controller,
            file,
            group: dir.to_path_buf(),
            setting: self.setting(),
        };
        let Some((file, value)) = self.file_and_value(dir, v2) else {
            return Err(unsupported(if v2 { "io.weight" } else { "blkio.weight" }));
        };
        // Files the kernel only offers with an option (swap accounting)
        // are checked first: writing a missing cgroup file fails with a
        // bare EACCES that names nothing.
        if matches!(self, Limit::Swap { .. }) && !v2 && !dir.join(file).exists() {
            return Err(unsupported(file));
        }
        let (d, m) = (dir.to_path_buf(), mount.to_path_buf());
        let cg = |r: cgroups_rs::fs::error::Result<()>| r.map_err(io_error);
        // What cgroups-rs maps differently (v2 `memory.high`, the I/O
        // weight files of today's schedulers) is a plain write.
        let plain = || std::fs::write(dir.join(file), &value);
        let result = crate::failpoint::check("cgroup.write").and_then(|()| match self {
            Limit::MemoryMax(b) => cg(MemController::new(d, m, v2).set_limit(*b as i64)),
            Limit::MemoryHigh(_) if v2 => plain(),
            Limit::MemoryHigh(b) => cg(MemController::new(d, m, v2).set_soft_limit(*b as i64)),
            Limit::Swap { .. } => {
                let v: i64 = value.parse().unwrap_or(i64::MAX);
                cg(MemController::new(d, m, v2).set_memswap_limit(v))
            }
            Limit::CpuWeight(_) => cg(CpuController::new(d, m, v2).set_shares(value.parse().unwrap_or(100))),
            Limit::CpuQuota { quota_us, period_us } => cg(CpuController::new(d, m, v2)
                .set_cfs_quota_and_period(Some(*quota_us as i64), Some(*period_us))),
            Limit::CpusetCpus(s) => cg(CpuSetController::new(d, m, v2).set_cpus(s)),
            Limit::CpusetMems(s) => cg(CpuSetController::new(d, m, v2).set_mems(s)),
            Limit::PidsMax(n) => cg(PidController::new(d, m, v2).set_pid_max(MaxValue::Value(*n as i64))),
            Limit::IoWeight(_) => plain(),
            Limit::Io { kind, major, minor, value } => {
                let c = BlkIoController::new(d, m, v2);
                cg(match kind {
                    IoKind::ReadBps => c.throttle_read_bps_for_device(*major, *minor, *value),
                    IoKind::WriteBps => c.throttle_write_bps_for_device(*major, *minor, *value),
                    IoKind::ReadIops => c.throttle_read_iops_for_device(*major, *minor, *value),
                    IoKind::WriteIops => c.throttle_write_iops_for_device(*major, *minor, *value),
                })
            }
        });
        result.map_err(|source| ResourceError::SetLimit {
            controller,
            file,
            value,
            group: dir.to_path_buf(),
            source,
        })
    }
}

/// The files in `dir` and their contents, sorted.
#[cfg(test)]
fn written(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Resources;
    use crate::resources::limits::check;
    use std::path::PathBuf;
    use std::time::Duration;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vguest-limits-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn all() -> Resources {
        Resources::new()
            .memory_max(64 << 20)
            .memory_high(48 << 20)
            .memory_swap_max(0)
            .cpu_weight(200)
            .cpu_quota(Duration::from_millis(20), Duration::from_millis(100))
            .cpuset_cpus("0-1")
            .cpuset_mems("0")
            .pids_max(64)
            .io_read_bps(8, 0, 1 << 20)
            .io_write_iops(8, 0, 100)
    }

    #[test]
    fn v1_files_and_values() {
        let dir = temp("v1");
        for limit in check(&all()).unwrap() {
            limit.apply(&dir, &dir, false).unwrap_or_else(|e| {
                // memsw is checked for before writing: absent in a temp tree.
                assert!(
                    matches!(e, ResourceError::Unsupported { file: "memory.memsw.limit_in_bytes", .. }),
                    "{e}"
                );
            });
        }
        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "").unwrap();
        Limit::Swap { swap: 0, memory: 64 << 20 }.apply(&dir, &dir, false).unwrap();
        let got = written(&dir);
        let want = [
            ("blkio.throttle.read_bps_device", "8:0 1048576"),
            ("blkio.throttle.write_iops_device", "8:0 100"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "20000"),
            ("cpu.shares", "2048"),
            ("cpuset.cpus", "0-1"),
            ("cpuset.mems", "0"),
            ("memory.limit_in_bytes", "67108864"),
            ("memory.memsw.limit_in_bytes", "67108864"),
            ("memory.soft_limit_in_bytes", "50331648"),
            ("pids.max", "64"),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(got, want);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn v2_files_and_values() {
        let dir = temp("v2");
        // cgroups-rs reads cpu.max before writing it.
        std::fs::write(dir.join("cpu.max"), "max 100000\n").unwrap();
        let limits: Vec<Limit> =
            check(&all()).unwrap().into_iter().filter(|l| !matches!(l, Limit::Io { .. })).collect();
        for limit in &limits {
            limit.apply(&dir, &dir, true).unwrap();
        }
        let got = written(&dir);
        let got: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            got,
            [
                ("cpu.max", "20000 100000"),
                ("cpu.weight", "200"),
                ("cpuset.cpus", "0-1"),
                ("cpuset.mems", "0"),
                ("memory.high", "50331648"),
                ("memory.max", "67108864"),
                ("memory.swap.max", "0"),
                ("pids.max", "64"),
            ]
        );
        let io = Limit::Io { kind: IoKind::ReadBps, major: 8, minor: 0, value: 5 };
        assert_eq!(io.file_and_value(&dir, true), Some(("io.max", "8:0 rbps=5".into())));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn io_weight_needs_a_weight_file() {
        let dir = temp("io");
        let err = Limit::IoWeight(500).apply(&dir, &dir, false).unwrap_err();
        assert!(matches!(err, ResourceError::Unsupported { controller: "blkio", .. }), "{err}");
        std::fs::write(dir.join("blkio.bfq.weight"), "100").unwrap();
        assert_eq!(
            Limit::IoWeight(5000).file_and_value(&dir, false),
            Some(("blkio.bfq.weight", "1000".into()))
        );
        std::fs::write(dir.join("io.weight"), "default 100").unwrap();
        Limit::IoWeight(5000).apply(&dir, &dir, true).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("io.weight")).unwrap(), "5000");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
