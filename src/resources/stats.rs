//! A guest's resource usage, read from its own groups.
//!
//! Each figure is one small file read. `cgroups-rs`'s aggregate readers
//! (`MemController::memory_stat`, `CpuAcctController::cpuacct`) read a dozen
//! files per call and panic on unexpected `memory.oom_control` text, so
//! the few figures here are read directly.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use super::error::ResourceError;
use super::group::Group;
use super::hierarchies::Controller;

/// What a guest uses, as its own groups account it. A figure is `None`
/// where the host has no controller for it.
///
/// ```no_run
/// use vguest::{Guest, Resources};
///
/// let guest = Guest::builder("web1").resources(Resources::new()).spawn()?;
/// let stats = guest.stats()?;
/// println!(
///     "memory {:?} (peak {:?}), cpu {:?}, {:?} processes, {:?} OOM kills",
///     stats.memory_current, stats.memory_peak, stats.cpu_usage, stats.pids_current, stats.oom_kills
/// );
/// # Ok::<(), vguest::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Memory charged to the guest now, in bytes (v1
    /// `memory.usage_in_bytes`, v2 `memory.current`).
    pub memory_current: Option<u64>,
    /// The most memory charged at once, in bytes (v1
    /// `memory.max_usage_in_bytes`, v2 `memory.peak`, Linux 5.19).
    pub memory_peak: Option<u64>,
    /// CPU time used by all the guest's processes (v1 `cpuacct.usage`, v2
    /// `usage_usec` of `cpu.stat`).
    pub cpu_usage: Option<Duration>,
    /// Processes (and threads) in the guest now (`pids.current`).
    pub pids_current: Option<u64>,
    /// Processes the kernel's OOM killer ended because the guest hit its
    /// memory limit (`oom_kill` of v1 `memory.oom_control`, v2
    /// `memory.events`).
    pub oom_kills: Option<u64>,
}

/// Reads a number from a one-value file; `None` if the file is missing.
fn number(dir: &Path, file: &str) -> Result<Option<u64>, ResourceError> {
    match fs::read_to_string(dir.join(file)) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ResourceError::group("reading statistics of", dir.join(file), e)),
    }
}

/// Reads `key` of a flat-keyed file (`key value` lines).
fn keyed(dir: &Path, file: &str, key: &str) -> Result<Option<u64>, ResourceError> {
    match fs::read_to_string(dir.join(file)) {
        Ok(text) => {
            Ok(text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok()))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ResourceError::group("reading statistics of", dir.join(file), e)),
    }
}

fn serving(groups: &[Group], c: Controller) -> Option<&Group> {
    groups.iter().find(|g| g.serves(c))
}

/// The number of OOM kills in the guest's memory group.
pub(crate) fn oom_kills(groups: &[Group]) -> Result<Option<u64>, ResourceError> {
    match serving(groups, Controller::Memory) {
        Some(g) if g.plan.v2 => keyed(&g.dir, "memory.events", "oom_kill"),
        Some(g) => keyed(&g.dir, "memory.oom_control", "oom_kill"),
        None => Ok(None),
    }
}

/// Reads all figures.
pub(crate) fn read(groups: &[Group]) -> Result<Stats, ResourceError> {
    let mut stats = Stats { oom_kills: oom_kills(groups)?, ..Stats::default() };
    if let Some(g) = serving(groups, Controller::Memory) {
        let (current, peak) = if g.plan.v2 {
            ("memory.current", "memory.peak")
        } else {
            ("memory.usage_in_bytes", "memory.max_usage_in_bytes")
        };
        stats.memory_current = number(&g.dir, current)?;
        stats.memory_peak = number(&g.dir, peak)?;
    }
    // cpuacct on v1; on v2 (and for hybrid hosts without cpuacct) every
    // group has cpu.stat.
    stats.cpu_usage = match serving(groups, Controller::Cpuacct) {
        Some(g) if !g.plan.v2 => number(&g.dir, "cpuacct.usage")?.map(Duration::from_nanos),
        Some(g) => keyed(&g.dir, "cpu.stat", "usage_usec")?.map(Duration::from_micros),
        None => None,
    };
    if let Some(g) = serving(groups, Controller::Pids) {
        stats.pids_current = number(&g.dir, "pids.current")?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let dir = std::env::temp_dir().join(format!("vguest-stats-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").unwrap();
        fs::write(dir.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        assert_eq!(keyed(&dir, "memory.oom_control", "oom_kill").unwrap(), Some(3));
        assert_eq!(keyed(&dir, "cpu.stat", "usage_usec").unwrap(), Some(1500));
        assert_eq!(keyed(&dir, "cpu.stat", "usage").unwrap(), None);
        assert_eq!(keyed(&dir, "memory.events", "oom_kill").unwrap(), None);
        fs::remove_dir_all(dir).unwrap();
    }
}
