//! Failure injection for the crate's own tests (cargo feature
//! `failpoints`, off by default; without it every check compiles to
//! nothing).
//!
//! Each fallible operation on the parent's side of spawning, entering,
//! waiting and teardown passes one of the named [`SITES`] first (a pipe, a
//! netlink request, a cgroup write, ...); the child's side reports every
//! step through one function (`child::At`), where a [`Step`](crate::Step)
//! can be made to fail. A test counts how often a full guest's life passes
//! each site (`hits`), then fails each pass once (`arm`) and checks
//! the typed error and that nothing is left (`tests/failpoints.rs`).
//! The registry is global: one test at a time may use it.

#[cfg(feature = "failpoints")]
mod registry {
    use std::collections::BTreeMap;
    use std::io;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The errno an injected failure carries (`EIO`: no real step of a
    /// healthy host fails with it, so a test can tell injected from real).
    pub const INJECTED: i32 = libc::EIO;

    #[derive(Default)]
    struct State {
        hits: BTreeMap<&'static str, u32>,
        armed: Option<(&'static str, u32)>,
    }

    static STATE: Mutex<State> = Mutex::new(State { hits: BTreeMap::new(), armed: None });
    /// The child step to fail (its wire code), or 0: read by the child,
    /// which shares or copies this memory, with a plain atomic load.
    static CHILD_STEP: AtomicU32 = AtomicU32::new(0);

    fn state() -> std::sync::MutexGuard<'static, State> {
        STATE.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a pass of `site`; fails it if it is the armed pass.
    pub(crate) fn check(site: &'static str) -> io::Result<()> {
        let mut state = state();
        let n = state.hits.entry(site).or_default();
        *n += 1;
        let n = *n;
        if state.armed == Some((site, n)) {
            state.armed = None;
            return Err(io::Error::from_raw_os_error(INJECTED));
        }
        Ok(())
    }

    /// Whether the child is to fail `step` (then it fails once per arming:
    /// each child process reads the same value, so a test arms a step for
    /// one spawn).
    pub(crate) fn child_fails(step: u32) -> bool {
        step != 0 && CHILD_STEP.load(Ordering::Relaxed) == step
    }

    /// Forgets the counts and disarms.
    pub fn reset() {
        *state() = State::default();
        CHILD_STEP.store(0, Ordering::Relaxed);
    }

    /// How often each site was passed since [`reset`].
    pub fn hits() -> Vec<(&'static str, u32)> {
        state().hits.iter().map(|(s, n)| (*s, *n)).collect()
    }

    /// Fails the `nth` pass (1 for the first) of `site` from now; the
    /// counts start again.
    pub fn arm(site: &'static str, nth: u32) {
        let mut state = state();
        state.hits.clear();
        state.armed = Some((site, nth));
    }

    /// Fails the child's step with wire code `code` (`plan/wire.rs`; the
    /// error names the [`Step`](crate::Step)) in every spawn until
    /// [`reset`].
    pub fn arm_child(code: u32) {
        CHILD_STEP.store(code, Ordering::Relaxed);
    }
}

#[cfg(feature = "failpoints")]
pub use registry::{INJECTED, arm, arm_child, hits, reset};
#[cfg(feature = "failpoints")]
pub(crate) use registry::{check, child_fails};

/// Every site on the parent's side, for a test that walks them all.
pub const SITES: &[&str] = &[
    "pipe",
    "socketpair",
    "stack",
    "clone",
    "pidfd.open",
    "pidfd.signal",
    "pidfd.wait",
    "netlink.open",
    "netlink.request",
    "sysctl",
    "cgroup.mkdir",
    "cgroup.write",
    "cgroup.remove",
    "setns",
];

/// Without the feature: never fails, compiles to nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn check(_site: &'static str) -> std::io::Result<()> {
    Ok(())
}

/// Without the feature: the child fails no step.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn child_fails(_step: u32) -> bool {
    false
}
