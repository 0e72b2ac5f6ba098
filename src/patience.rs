//! Waiting for the kernel to finish something it does asynchronously (a
//! cgroup's last task leaving, a link's deletion), with a bound: a small
//! helper that the resources and network layers both need.

use std::time::{Duration, Instant};

/// How long [`patiently`] keeps trying: removal retries `EBUSY` (the
/// kernel may still be releasing the last task), freezing waits for the
/// kernel to finish, a deleted link to disappear.
const PATIENCE: Duration = Duration::from_secs(2);

/// Calls `f` until it returns true or [`PATIENCE`] runs out, sleeping a
/// little longer each time. Returns whether it succeeded.
pub(crate) fn patiently(mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > PATIENCE {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
