//! The spawn child: the guest's first process, from clone to exec.
//!
//! ```text
//!   RUNS AFTER CLONE(CLONE_VM), SHARING THE PARENT'S MEMORY:
//!   no allocation, no locks, no logging, no panics, no libc calls that
//!   write errno; only the raw system calls of `sys::call`. Exit with
//!   `sys::call::exit` (exit_group), never `std::process::exit`.
//! ```
//!
//! The embedding program may be multi-threaded: another thread may hold
//! the allocator's or stdio's lock at the moment of the clone, and that
//! lock is never released in this process. Everything the child needs was
//! laid out by the parent in a [`ChildPlan`]; the child only reads it
//! (apart from one slot of the init's argv) and works on its own stack.
//!
//! A failure is reported as one fixed-size record on the error pipe (see
//! `plan/wire.rs`) and the child exits; the parent reaps it and returns a typed
//! error. End of file on the pipe means the exec succeeded.

//!
//! # Layout
//!
//! This module is the door: [`clone_child`] and [`clone_maker`] run in
//! the parent and hold the one contract (`sys::clone`'s) for the entry
//! points behind them. Everything in the files below runs after the
//! clone, and `scripts/check.sh` refuses a name there that could
//! allocate, lock or format (`tests/child_alloc.rs` checks the same at
//! run time):
//!
//! - `run.rs`: the spawn child's steps, from clone to the payload's
//!   stdio (`child_main`).
//! - `creds.rs`: capabilities and ids, in the order the kernel needs.
//! - `fs.rs`: the guest's mount table and root.
//! - `exec.rs`: finding the program, the built-in init beside the
//!   payload, the exec.
//! - `netns.rs`: the network namespace's maker, and the child's join.
//! - `init/main.rs`: the built-in init, a separate static program.

mod creds;
mod exec;
mod fs;
mod netns;
mod run;

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::plan::{ChildPlan, MakerPlan, SharedFiles};
use crate::sys::call;
use crate::sys::call::Errno;
use crate::sys::clone::{Cloned, clone_on_stack};
use crate::sys::stack::ChildStack;

/// A failed step: (step, errno, detail index).
pub(crate) struct Failure(pub u32, pub Errno, pub u32);

/// Tags raw results with the step they belong to.
pub(crate) trait At<T> {
    /// Tags a raw result with the step (and detail) it belongs to.
    fn at(self, step: u32, detail: u32) -> Result<T, Failure>;
}

impl<T> At<T> for Result<T, Errno> {
    #[inline(always)]
    fn at(self, step: u32, detail: u32) -> Result<T, Failure> {
        if crate::failpoint::child_fails(step) {
            return Err(Failure(step, libc::EIO, detail));
        }
        self.map_err(|e| Failure(step, e, detail))
    }
}

/// Clones the spawn child onto `stack`; it follows `plan` and execs.
///
/// A child that shares our memory starts sharing our file table too, and
/// copies only the part of it that it uses (`SharedFiles`); this returns
/// once it has, so the caller may close its ends at once.
///
/// The caller must block every signal around this call (so the child
/// never runs a handler of the parent's), keep `plan` alive and unchanged
/// until the child has exec'd or been reaped, and keep `stack` mapped as
/// long.
pub(crate) fn clone_child(
    plan: &mut ChildPlan,
    stack: &ChildStack,
    flags: u64,
    share_memory: bool,
    cgroup: Option<i32>,
) -> std::io::Result<Cloned> {
    crate::failpoint::check("clone")?;
    let mut flags = flags;
    plan.files = SharedFiles::default();
    if share_memory {
        // Only a child that shares our memory can tell us, through the
        // plan, that it has its own table (`SharedFiles`).
        plan.files.keep_below = (plan.highest_fd() + 1).max(3) as u32;
        flags |= libc::CLONE_FILES as u64;
    }
    let plan = &*plan;
    // SAFETY: `child_main` follows the post-clone rules above: it only
    // reads `plan` (and one init argv slot made for it, and the flag of
    // `plan.files`), uses its own stack, and ends in exec or exit_group.
    // The caller keeps `plan` and `stack` alive until the child is gone
    // from them.
    let cloned = unsafe {
        clone_on_stack(flags, share_memory, cgroup, stack, run::child_main, plan as *const ChildPlan as usize)
    }?;
    if share_memory {
        wait_for_own_files(&plan.files, cloned.pidfd.as_fd());
    }
    Ok(cloned)
}

/// Returns once a child cloned with `CLONE_FILES` has a file table of its
/// own, or has exited: until then, closing an fd here would close it in
/// the child too.
fn wait_for_own_files(files: &SharedFiles, pidfd: BorrowedFd<'_>) {
    let tick = libc::timespec { tv_sec: 0, tv_nsec: 10_000_000 };
    while files.unshared.load(Ordering::Acquire) == 0 {
        if crate::sys::pidfd::wait_exit(pidfd, Duration::ZERO).unwrap_or(true) {
            return;
        }
        let _ = call::futex_wait(&files.unshared, 0, &tick);
    }
}

/// Clones the network namespace's maker onto `stack`: it creates the
/// namespace (joining the user namespace `plan` names first, if any),
/// sends it on `plan.sock` and exits.
///
/// `flags` adds to the `CLONE_VM` the maker always has (`CLONE_FILES`,
/// `CLONE_NEWNET`). The caller must block every signal around this call,
/// keep `plan` alive until the maker is reaped, and keep `stack` mapped as
/// long.
pub(crate) fn clone_maker(plan: &MakerPlan, stack: &ChildStack, flags: u64) -> std::io::Result<Cloned> {
    crate::failpoint::check("clone")?;
    // SAFETY: `maker_main` follows the post-clone rules: it reads the
    // plan, uses only its own stack and raw system calls, and ends in
    // exit_group. The caller keeps `plan` and `stack` alive until the
    // maker is reaped.
    unsafe { clone_on_stack(flags, true, None, stack, netns::maker_main, plan as *const MakerPlan as usize) }
}
