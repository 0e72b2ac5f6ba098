//! Resource limits of the payload (`setrlimit(2)`).

pub use nix::sys::resource::Resource as Rlimit;

/// The value meaning "no limit" for [`Context::rlimit`](crate::Context::rlimit).
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
