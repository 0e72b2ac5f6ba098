//! Keeping the caller's memory out of a guest's reach while a process of
//! ours shares it.
//!
//! The spawn child, the payload's first clone, the network namespace's
//! maker and the process entering a running guest all share the caller's
//! address space (`CLONE_VM`), or hold a copy of it, until they exec. Some
//! of them can be seen from inside a guest (an entering process is born in
//! the guest's PID namespace), and once they have taken on the guest's uid
//! and capabilities the kernel's ptrace check (`ptrace(2)`, "Ptrace access
//! mode checking") lets a guest process with the same uid open
//! `/proc/PID/mem` or attach, unless the address space is not dumpable:
//! then it also takes `CAP_SYS_PTRACE` in the caller's user namespace,
//! which the default capabilities leave out (a guest in a user namespace
//! of its own never has it there). Write access to that memory would be code
//! execution as the caller (runc's CVE-2016-9962 was this bug).
//!
//! The flag belongs to the address space (`PR_SET_DUMPABLE`, `prctl(2)`),
//! so clearing it in the caller before the clone covers every process
//! that shares it from its first instruction, and a `fork`ed copy inherits
//! it. A process-wide count of processes in flight restores the caller's
//! own value when the last of them has exec'd or been reaped, so the
//! embedding program keeps its core dumps and `/proc/PID` ownership.

use std::sync::Mutex;

/// `SUID_DUMP_USER`: the only value under which a same-uid process may
/// ptrace without `CAP_SYS_PTRACE`.
const DUMP_USER: i32 = 1;

/// (processes in flight, the caller's flag before the first of them).
static STATE: Mutex<(usize, i32)> = Mutex::new((0, DUMP_USER));

/// Held from before a clone that shares (or copies) the caller's memory
/// until that process has exec'd or been reaped; while any guard is held
/// the caller's address space is not dumpable.
pub(crate) struct DumpableGuard(());

impl DumpableGuard {
    pub(crate) fn hold() -> DumpableGuard {
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 == 0 {
            // SAFETY: PR_GET_DUMPABLE takes no pointers.
            state.1 = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
        }
        state.0 += 1;
        // Set on every hold, not only the first: a child that changed its
        // uid made the kernel reset the flag to `suid_dumpable`, and the
        // embedding program may have set it itself meanwhile. 0 and 2
        // (`SUID_DUMP_ROOT`) both refuse a same-uid ptrace.
        // SAFETY: PR_SET_DUMPABLE takes an integer.
        if unsafe { libc::prctl(libc::PR_GET_DUMPABLE) } == DUMP_USER {
            // SAFETY: as above.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong) };
        }
        DumpableGuard(())
    }
}

impl Drop for DumpableGuard {
    fn drop(&mut self) {
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        state.0 -= 1;
        // prctl accepts only 0 and 1; a caller that ran with 2
        // (`SUID_DUMP_ROOT`) was never changed by `hold`, since 2 already
        // keeps same-uid processes out.
        if state.0 == 0 && (state.1 == 0 || state.1 == DUMP_USER) {
            // SAFETY: PR_SET_DUMPABLE takes an integer.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, state.1 as libc::c_ulong) };
        }
    }
}
