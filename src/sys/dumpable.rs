//! Keeping the caller's "dumpable" flag across spawns.
//!
//! The flag belongs to the address space (`PR_SET_DUMPABLE`, `prctl(2)`),
//! and the spawn child shares ours (`CLONE_VM`). When the child changes
//! its uid or gid, the kernel clears the flag, which also protects our
//! memory from the guest while the child runs; but it would stay cleared
//! for the embedding program afterwards (no core dumps, `/proc/PID` owned
//! by root). A process-wide count of spawns in flight restores the
//! caller's value when the last one has exec'd.

use std::sync::Mutex;

/// (spawns in flight, the caller's flag before the first of them).
static STATE: Mutex<(usize, i32)> = Mutex::new((0, 1));

/// Held from before a clone until the child has exec'd or been reaped.
pub(crate) struct DumpableGuard(());

impl DumpableGuard {
    pub(crate) fn hold() -> DumpableGuard {
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 == 0 {
            // SAFETY: PR_GET_DUMPABLE takes no pointers.
            state.1 = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
        }
        state.0 += 1;
        DumpableGuard(())
    }
}

impl Drop for DumpableGuard {
    fn drop(&mut self) {
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        state.0 -= 1;
        // prctl accepts only 0 and 1; a value of 2 (suid_dumpable) was
        // never cleared by us in a way we could undo.
        if state.0 == 0 && (state.1 == 0 || state.1 == 1) {
            // SAFETY: PR_SET_DUMPABLE takes an integer.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, state.1 as libc::c_ulong) };
        }
    }
}
