//! Limits: checking a [`Resources`] before anything is created, and the
//! checked [`Limit`]s in the order they must be written (`write.rs` writes
//! each into the group of the hierarchy that serves it).

use super::Resources;
use super::error::ResourceError;
use super::hierarchies::Controller;
use super::placement::Wanted;

/// The smallest memory limit accepted: below it not even the built-in init
/// and a shell start, and the guest would only be OOM-killed at once.
pub(crate) const MIN_MEMORY: u64 = 4 << 20;

/// Which per-device I/O limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IoKind {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

/// One checked limit, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Limit {
    MemoryMax(u64),
    MemoryHigh(u64),
    /// Swap beyond `memory` bytes of memory.
    Swap {
        swap: u64,
        memory: u64,
    },
    /// v2 weight (1..=10000).
    CpuWeight(u64),
    CpuQuota {
        quota_us: u64,
        period_us: u64,
    },
    CpusetCpus(String),
    CpusetMems(String),
    PidsMax(u64),
    IoWeight(u64),
    Io {
        kind: IoKind,
        major: u64,
        minor: u64,
        value: u64,
    },
}

fn invalid(
    controller: &'static str,
    setting: &'static str,
    value: impl ToString,
    reason: &'static str,
) -> ResourceError {
    ResourceError::Invalid { controller, setting, value: value.to_string(), reason }
}

/// Checks a cpu or memory-node list: `0-3,5`.
fn check_list(controller: &'static str, setting: &'static str, list: &str) -> Result<(), ResourceError> {
    if list.trim().is_empty() {
        return Err(invalid(controller, setting, list, "the list is empty"));
    }
    for part in list.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        match (a.parse::<u32>(), b.parse::<u32>()) {
            (Ok(a), Ok(b)) if a <= b => {}
            _ => return Err(invalid(controller, setting, list, "expected numbers and ranges such as 0-3,5")),
        }
    }
    Ok(())
}

/// Checks every value and returns the limits in the order they must be
/// written (memory before swap: v1 keeps memsw >= memory at all times).
pub(crate) fn check(r: &Resources) -> Result<Vec<Limit>, ResourceError> {
    let mut out = Vec::new();
    if let Some(max) = r.memory_max {
        if max < MIN_MEMORY {
            return Err(invalid("memory", "memory.max", max, "below the minimum of 4 MiB"));
        }
        if max > i64::MAX as u64 {
            return Err(invalid("memory", "memory.max", max, "too large"));
        }
        out.push(Limit::MemoryMax(max));
    }
    if let Some(high) = r.memory_high {
        if high < MIN_MEMORY || high > i64::MAX as u64 {
            return Err(invalid("memory", "memory.high", high, "below the minimum of 4 MiB or too large"));
        }
        out.push(Limit::MemoryHigh(high));
    }
    if let Some(swap) = r.memory_swap_max {
        let Some(memory) = r.memory_max else {
            return Err(invalid("memory", "memory.swap.max", swap, "a swap limit needs a memory limit"));
        };
        if swap > i64::MAX as u64 - memory {
            return Err(invalid("memory", "memory.swap.max", swap, "too large"));
        }
        out.push(Limit::Swap { swap, memory });
    }
    if let Some(w) = r.cpu_weight {
        if !(1..=10_000).contains(&w) {
            return Err(invalid("cpu", "cpu.weight", w, "must be 1 to 10000"));
        }
        out.push(Limit::CpuWeight(w));
    }
    if let Some((quota, period)) = r.cpu_quota {
        let (quota_us, period_us) = (quota.as_micros(), period.as_micros());
        if !(1_000..=1_000_000).contains(&period_us) {
            return Err(invalid(
                "cpu",
                "cpu.max",
                format!("{quota_us} {period_us}"),
                "the period must be 1 ms to 1 s",
            ));
        }
        if !(1_000..=i64::MAX as u128).contains(&quota_us) {
            return Err(invalid(
                "cpu",
                "cpu.max",
                format!("{quota_us} {period_us}"),
                "the quota must be at least 1 ms",
            ));
        }
        out.push(Limit::CpuQuota { quota_us: quota_us as u64, period_us: period_us as u64 });
    }
    if let Some(cpus) = &r.cpuset_cpus {
        check_list("cpuset", "cpuset.cpus", cpus)?;
        out.push(Limit::CpusetCpus(cpus.trim().to_string()));
    }
    if let Some(mems) = &r.cpuset_mems {
        check_list("cpuset", "cpuset.mems", mems)?;
        out.push(Limit::CpusetMems(mems.trim().to_string()));
    }
    if let Some(max) = r.pids_max {
        if max == 0 || max > i64::MAX as u64 {
            return Err(invalid("pids", "pids.max", max, "must be at least 1"));
        }
        out.push(Limit::PidsMax(max));
    }
    if let Some(w) = r.io_weight {
        if !(1..=10_000).contains(&w) {
            return Err(invalid("io", "io.weight", w, "must be 1 to 10000"));
        }
        out.push(Limit::IoWeight(w));
    }
    for &(kind, major, minor, value) in &r.io_limits {
        if value == 0 {
            return Err(invalid("io", "io.max", format!("{major}:{minor} 0"), "a rate must be at least 1"));
        }
        out.push(Limit::Io { kind, major: major.into(), minor: minor.into(), value });
    }
    Ok(out)
}

/// The controllers the limits need, plus those every guest uses where
/// available: memory, pids and cpuacct for statistics, freezer for pause
/// and kill.
pub(crate) fn wanted(limits: &[Limit]) -> Wanted {
    Wanted {
        hard: limits.iter().map(Limit::controller).collect(),
        soft: [Controller::Memory, Controller::Pids, Controller::Cpuacct, Controller::Freezer].into(),
    }
}

impl Limit {
    pub(crate) fn controller(&self) -> Controller {
        match self {
            Limit::MemoryMax(_) | Limit::MemoryHigh(_) | Limit::Swap { .. } => Controller::Memory,
            Limit::CpuWeight(_) | Limit::CpuQuota { .. } => Controller::Cpu,
            Limit::CpusetCpus(_) | Limit::CpusetMems(_) => Controller::Cpuset,
            Limit::PidsMax(_) => Controller::Pids,
            Limit::IoWeight(_) | Limit::Io { .. } => Controller::Io,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bad_values_name_controller_and_value() {
        let cases: Vec<(Resources, &str, &str)> = vec![
            (Resources::new().memory_max(0), "memory", "0"),
            (Resources::new().memory_max(4096), "memory", "4096"),
            (Resources::new().memory_swap_max(0), "memory", "0"),
            (Resources::new().cpuset_cpus(""), "cpuset", ""),
            (Resources::new().cpuset_cpus("3-1"), "cpuset", "3-1"),
            (Resources::new().cpuset_mems("a"), "cpuset", "a"),
            (Resources::new().cpu_weight(0), "cpu", "0"),
            (
                Resources::new().cpu_quota(Duration::from_micros(10), Duration::from_millis(100)),
                "cpu",
                "10 100000",
            ),
            (
                Resources::new().cpu_quota(Duration::from_millis(10), Duration::from_secs(2)),
                "cpu",
                "10000 2000000",
            ),
            (Resources::new().pids_max(0), "pids", "0"),
            (Resources::new().io_weight(20_000), "io", "20000"),
            (Resources::new().io_read_bps(8, 0, 0), "io", "8:0 0"),
        ];
        for (r, controller, value) in cases {
            match check(&r) {
                Err(ResourceError::Invalid { controller: c, value: v, .. }) => {
                    assert_eq!((c, v.as_str()), (controller, value));
                }
                other => panic!("{r:?}: {other:?}"),
            }
        }
        assert_eq!(check(&Resources::new()).unwrap(), []);
        let w = wanted(&check(&Resources::new().pids_max(5).cpuset_cpus("0")).unwrap());
        assert_eq!(w.hard, [Controller::Cpuset, Controller::Pids].into());
    }
}
