//! Resource limits of the payload (`setrlimit(2)`).

/// A resource limit of the payload (`setrlimit(2)`), named as in
/// `getrlimit(2)`; set with [`Context::rlimit`](crate::Context::rlimit).
///
/// ```
/// use vguest::{Context, Rlimit};
///
/// let ctx = Context::new().rlimit(Rlimit::RLIMIT_NOFILE, 1024, 4096);
/// assert_eq!(Rlimit::RLIMIT_NOFILE.as_raw(), libc::RLIMIT_NOFILE as u32);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)] // The names of getrlimit(2).
#[non_exhaustive]
pub enum Rlimit {
    /// Size of the virtual address space.
    RLIMIT_AS,
    /// Size of a core dump.
    RLIMIT_CORE,
    /// CPU time, in seconds.
    RLIMIT_CPU,
    /// Size of the data segment.
    RLIMIT_DATA,
    /// Size of a file the process may create.
    RLIMIT_FSIZE,
    /// Number of file locks.
    RLIMIT_LOCKS,
    /// Bytes of memory that may be locked.
    RLIMIT_MEMLOCK,
    /// Bytes in POSIX message queues.
    RLIMIT_MSGQUEUE,
    /// Ceiling of the nice value.
    RLIMIT_NICE,
    /// Number of open file descriptors (one more than the highest).
    RLIMIT_NOFILE,
    /// Number of processes (threads) of the real user id.
    RLIMIT_NPROC,
    /// Resident set size (no effect on current kernels).
    RLIMIT_RSS,
    /// Ceiling of the real-time priority.
    RLIMIT_RTPRIO,
    /// CPU time of a real-time task without a blocking call, in
    /// microseconds.
    RLIMIT_RTTIME,
    /// Number of queued signals of the real user id.
    RLIMIT_SIGPENDING,
    /// Size of the stack.
    RLIMIT_STACK,
}

impl Rlimit {
    /// Every resource, in the order of the enum.
    const ALL: [Rlimit; 16] = [
        Rlimit::RLIMIT_AS,
        Rlimit::RLIMIT_CORE,
        Rlimit::RLIMIT_CPU,
        Rlimit::RLIMIT_DATA,
        Rlimit::RLIMIT_FSIZE,
        Rlimit::RLIMIT_LOCKS,
        Rlimit::RLIMIT_MEMLOCK,
        Rlimit::RLIMIT_MSGQUEUE,
        Rlimit::RLIMIT_NICE,
        Rlimit::RLIMIT_NOFILE,
        Rlimit::RLIMIT_NPROC,
        Rlimit::RLIMIT_RSS,
        Rlimit::RLIMIT_RTPRIO,
        Rlimit::RLIMIT_RTTIME,
        Rlimit::RLIMIT_SIGPENDING,
        Rlimit::RLIMIT_STACK,
    ];

    /// The resource's number for `setrlimit(2)` (`RLIMIT_*`).
    ///
    /// ```
    /// assert_eq!(vguest::Rlimit::RLIMIT_CORE.as_raw(), 4);
    /// ```
    #[allow(clippy::unnecessary_cast)] // The constants are `c_int` on musl.
    pub fn as_raw(self) -> u32 {
        use Rlimit::*;
        (match self {
            RLIMIT_AS => libc::RLIMIT_AS,
            RLIMIT_CORE => libc::RLIMIT_CORE,
            RLIMIT_CPU => libc::RLIMIT_CPU,
            RLIMIT_DATA => libc::RLIMIT_DATA,
            RLIMIT_FSIZE => libc::RLIMIT_FSIZE,
            RLIMIT_LOCKS => libc::RLIMIT_LOCKS,
            RLIMIT_MEMLOCK => libc::RLIMIT_MEMLOCK,
            RLIMIT_MSGQUEUE => libc::RLIMIT_MSGQUEUE,
            RLIMIT_NICE => libc::RLIMIT_NICE,
            RLIMIT_NOFILE => libc::RLIMIT_NOFILE,
            RLIMIT_NPROC => libc::RLIMIT_NPROC,
            RLIMIT_RSS => libc::RLIMIT_RSS,
            RLIMIT_RTPRIO => libc::RLIMIT_RTPRIO,
            RLIMIT_RTTIME => libc::RLIMIT_RTTIME,
            RLIMIT_SIGPENDING => libc::RLIMIT_SIGPENDING,
            RLIMIT_STACK => libc::RLIMIT_STACK,
        }) as u32
    }
}

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
    Rlimit::ALL.iter().find(|r| r.as_raw() == id).map_or_else(|| format!("rlimit {id}"), |r| name(*r))
}
