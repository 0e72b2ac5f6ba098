//! Resource limits of the payload (`setrlimit(2)`).

/// A resource limit of the payload (`setrlimit(2)`), as the `nix` crate
/// names it; set with [`Context::rlimit`](crate::Context::rlimit).
///
/// ```
/// use vguest::{Context, Rlimit};
///
/// let ctx = Context::new().rlimit(Rlimit::RLIMIT_NOFILE, 1024, 4096);
/// ```
pub use nix::sys::resource::Resource as Rlimit;

/// The value meaning "no limit" for [`Context::rlimit`](crate::Context::rlimit).
///
/// ```
/// use vguest::{Context, RLIM_INFINITY, Rlimit};
///
/// // Core dumps of any size, and no cap on the payload's CPU time.
/// let ctx = Context::new()
///     .rlimit(Rlimit::RLIMIT_CORE, RLIM_INFINITY, RLIM_INFINITY)
///     .rlimit(Rlimit::RLIMIT_CPU, RLIM_INFINITY, RLIM_INFINITY);
/// assert_eq!(RLIM_INFINITY, u64::MAX);
/// ```
pub const RLIM_INFINITY: u64 = libc::RLIM_INFINITY;

/// One limit to apply: (resource, soft, hard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RlimitSetting {
    pub resource: Rlimit,
    pub soft: u64,
    pub hard: u64,
}

/// The name the kernel shows in `/proc/PID/limits`-style messages.
pub(crate) fn name(resource: Rlimit) -> String {
    format!("{resource:?}")
}

/// The name of resource number `id` (`RLIMIT_*`), for error messages.
pub(crate) fn name_of(id: u32) -> String {
    use Rlimit::*;
    const ALL: [Rlimit; 16] = [
        RLIMIT_AS,
        RLIMIT_CORE,
        RLIMIT_CPU,
        RLIMIT_DATA,
        RLIMIT_FSIZE,
        RLIMIT_LOCKS,
        RLIMIT_MEMLOCK,
        RLIMIT_MSGQUEUE,
        RLIMIT_NICE,
        RLIMIT_NOFILE,
        RLIMIT_NPROC,
        RLIMIT_RSS,
        RLIMIT_RTPRIO,
        RLIMIT_RTTIME,
        RLIMIT_SIGPENDING,
        RLIMIT_STACK,
    ];
    ALL.iter().find(|r| **r as u32 == id).map_or_else(|| format!("rlimit {id}"), |r| name(*r))
}
