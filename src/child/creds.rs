//! The payload's capabilities and ids.
//!
//! ```text
//!   RUNS AFTER CLONE(CLONE_VM): the rules of `child/mod.rs` apply.
//! ```

use super::{At, Failure};
use crate::plan::ChildPlan;
use crate::plan::wire::step;
use crate::sys::call;

/// Drops capabilities and switches ids, in the order `capabilities(7)`
/// requires: bounding set first (needs CAP_SETPCAP), groups and gid while
/// still privileged, keep permitted caps across the uid change, then the
/// final sets, ambient raises and no_new_privs.
pub(super) fn apply(plan: &ChildPlan) -> Result<(), Failure> {
    let caps = &plan.caps;
    for cap in 0..=caps.last_cap.min(63) {
        if caps.bounding & (1 << cap) == 0 {
            call::prctl(libc::PR_CAPBSET_DROP, cap as usize, 0, 0, 0).at(step::DROP_BOUNDING, cap)?;
        }
    }
    let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as usize;
    call::prctl(libc::PR_CAP_AMBIENT, clear, 0, 0, 0).at(step::RAISE_AMBIENT, 64)?;
    let creds = &plan.creds;
    if creds.set_groups {
        call::setgroups(&creds.groups).at(step::SET_GROUPS, 0)?;
    }
    call::setresgid(creds.gid).at(step::SET_GID, 0)?;
    if creds.uid != 0 {
        call::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0).at(step::KEEP_CAPS, 0)?;
    }
    call::setresuid(creds.uid).at(step::SET_UID, 0)?;
    call::capset(caps.effective, caps.permitted, caps.inheritable).at(step::SET_CAPS, 0)?;
    for cap in 0..=caps.last_cap.min(63) {
        if caps.ambient & (1 << cap) != 0 {
            let raise = libc::PR_CAP_AMBIENT_RAISE as usize;
            call::prctl(libc::PR_CAP_AMBIENT, raise, cap as usize, 0, 0).at(step::RAISE_AMBIENT, cap)?;
        }
    }
    if plan.no_new_privs {
        call::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).at(step::NO_NEW_PRIVS, 0)?;
    }
    Ok(())
}
