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

use crate::plan::{ChildPlan, MakerPlan};
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
/// The caller must block every signal around this call (so the child
/// never runs a handler of the parent's), keep `plan` alive and unchanged
/// until the child has exec'd or been reaped, and keep `stack` mapped as
/// long.
pub(crate) fn clone_child(
    plan: &ChildPlan,
    stack: &ChildStack,
    flags: u64,
    share_memory: bool,
    cgroup: Option<i32>,
) -> std::io::Result<Cloned> {
    crate::failpoint::check("clone")?;
    // SAFETY: `child_main` follows the post-clone rules above: it only
    // reads `plan` (and one init argv slot made for it), uses its own
    // stack, and ends in exec or exit_group. The caller keeps `plan` and
    // `stack` alive until the child is gone from them.
    unsafe {
        clone_on_stack(flags, share_memory, cgroup, stack, run::child_main, plan as *const ChildPlan as usize)
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
