//! The payload's exec: finding the program, cloning the payload's process
//! beside the built-in init, and the two execs.
//!
//! ```text
//!   RUNS AFTER CLONE(CLONE_VM): the rules of `child/mod.rs` apply.
//! ```

use core::convert::Infallible;
use core::ffi::{CStr, c_char};

use super::{At, Failure};
use crate::plan::wire::{self, step};
use crate::plan::{ChildPlan, INIT_PROGRAM_SLOT, InitPlan, PID_TEXT};
use crate::sys::call;
use crate::sys::clone::clone_sharing_memory;

/// Size of the buffer for a program path found in `PATH`.
const PATH_BUF: usize = 4096;

/// Executes the payload; with the built-in init, clones the payload's
/// process first and execs the init, so the two execs run side by side.
pub(super) fn child_exec(plan: &ChildPlan) -> Result<Infallible, Failure> {
    let exec = &plan.exec;
    let mut buf = [0u8; PATH_BUF];
    let path = child_resolve(&exec.program, &exec.search_path, &mut buf)?;
    // From here on, the caller's death no longer ends the guest, unless
    // the user asked for a parent-death signal of the payload's own.
    call::prctl(libc::PR_SET_PDEATHSIG, plan.pdeathsig as usize, 0, 0, 0).at(step::PARENT_DEATH_SIGNAL, 0)?;
    let start =
        PayloadStart { path, argv: exec.argv.as_ptr(), envp: exec.envp.as_ptr(), err_fd: plan.err_fd };
    let Some(init) = &exec.init else { start_payload(&start) };
    if let Some(slot) = init.argv.get(INIT_PROGRAM_SLOT) {
        slot.set(path);
    }
    if plan.time_offsets.is_some() {
        // A process entering a new time namespace may not share memory
        // (clone(2), EINVAL): the init forks the payload, and needs the
        // error pipe across its exec to report the payload's failed exec.
        write_decimal(&init.pid_text, 0);
        call::set_fd_flags(plan.err_fd, 0).at(step::EXEC_INIT, 0)?;
        return child_exec_init(plan, init);
    }
    let Some(stack) = &init.payload_stack else {
        return Err(Failure(step::INIT_FORK, libc::EINVAL, 0));
    };
    // SAFETY: `payload_main` follows the post-clone rules (one
    // sigprocmask, the execve, a failure record, exit_group). `start` and
    // `buf` lie in this frame of the spawn child's stack, which stays
    // untouched until the payload is gone from them: either the parent
    // sees the error pipe close, which needs the payload's exec (the pipe
    // is close-on-exec in it), or this frame kills and reaps the payload
    // before it returns. The payload's stack is the plan's and lives as
    // long.
    let pid =
        unsafe { clone_sharing_memory(stack.top() as usize, payload_main, &start as *const _ as usize) }
            .at(step::INIT_FORK, 0)?;
    write_decimal(&init.pid_text, pid as u32);
    let failure = child_exec_init(plan, init);
    // The init's exec failed, and the payload may still be reading
    // `start` and `buf` on its way to its own exec: end it before this
    // frame is given up and the stack below it is reused.
    let _ = call::kill(pid, libc::SIGKILL);
    let _ = call::reap(pid);
    failure
}

/// Execs the built-in init; returns only on failure.
fn child_exec_init(plan: &ChildPlan, init: &InitPlan) -> Result<Infallible, Failure> {
    // The init needs the owner's pipe across its exec; it marks it
    // close-on-exec again. Unless the init forks the payload, the error
    // pipe stays close-on-exec: end of file on it then means both execs
    // succeeded. Should the init's exec fail, the parent kills this
    // process, the PID namespace's init, and the payload with it.
    if plan.owner_fd >= 0 {
        call::set_fd_flags(plan.owner_fd, 0).at(step::EXEC_INIT, 0)?;
    }
    // Signals stay blocked: the init waits for them synchronously.
    let argv = init.argv.as_ptr().cast::<*const c_char>();
    let err = call::fexecve(init.memfd, argv, plan.exec.envp.as_ptr());
    let _ = call::set_fd_flags(plan.err_fd, libc::FD_CLOEXEC);
    Err(Failure(step::EXEC_INIT, err, 0))
}

/// What the payload's process needs for its exec.
struct PayloadStart {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    err_fd: i32,
}

/// Entry point of the payload's process, cloned by the spawn child.
///
/// # Safety
///
/// `arg` must point to a `PayloadStart` that stays valid until this
/// process execs or exits.
unsafe extern "C" fn payload_main(arg: usize, _placed: usize) -> ! {
    // SAFETY: the spawn child keeps it valid (see `child_exec`).
    let start = unsafe { &*(arg as *const PayloadStart) };
    start_payload(start)
}

/// Unblocks signals and execs the payload; reports a failure on the
/// error pipe and exits.
fn start_payload(start: &PayloadStart) -> ! {
    let err = match call::set_sigmask(0) {
        Ok(_) => Failure(step::EXEC, call::execve(start.path, start.argv, start.envp), 0),
        Err(e) => Failure(step::SIGNALS, e, 0),
    };
    let Failure(step, errno, detail) = err;
    let _ = call::write_all(start.err_fd, &wire::encode(step, errno, detail));
    call::exit(127)
}

/// Writes `n` in decimal and a NUL into `out`.
fn write_decimal(out: &[core::cell::Cell<u8>; PID_TEXT], n: u32) {
    let mut buf = [0u8; 10];
    let digits = call::decimal(n, &mut buf);
    for (i, cell) in out.iter().enumerate() {
        cell.set(digits.get(i).copied().unwrap_or(0));
    }
}

/// Finds the program as `execvp(3)` would: as given if it has a slash,
/// else the first executable regular file in the `PATH` list.
fn child_resolve(program: &CStr, search: &[u8], buf: &mut [u8; PATH_BUF]) -> Result<*const c_char, Failure> {
    let name = program.to_bytes();
    if name.contains(&b'/') {
        return Ok(program.as_ptr());
    }
    let mut last = libc::ENOENT;
    for dir in search.split(|b| *b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let len = dir.len() + 1 + name.len();
        if len + 1 > PATH_BUF {
            last = libc::ENAMETOOLONG;
            continue;
        }
        let (head, rest) = buf.split_at_mut(dir.len());
        head.copy_from_slice(dir);
        let (slash, rest) = rest.split_at_mut(1);
        slash[0] = b'/';
        let (tail, rest) = rest.split_at_mut(name.len());
        tail.copy_from_slice(name);
        rest[0] = 0;
        let Ok(candidate) = CStr::from_bytes_with_nul(&buf[..len + 1]) else {
            continue;
        };
        match call::stat_mode(libc::AT_FDCWD, candidate, 0) {
            Ok(mode) if mode & libc::S_IFMT == libc::S_IFREG => {
                match call::faccessat(libc::AT_FDCWD, candidate, libc::X_OK) {
                    Ok(_) => return Ok(buf.as_ptr().cast()),
                    Err(e) => last = e,
                }
            }
            Ok(_) => last = libc::EACCES,
            Err(libc::ENOENT | libc::ENOTDIR) => {}
            Err(e) => last = e,
        }
    }
    Err(Failure(step::RESOLVE_PROGRAM, last, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    fn text(n: u32) -> Vec<u8> {
        let out: [Cell<u8>; PID_TEXT] = std::array::from_fn(|_| Cell::new(b'x'));
        write_decimal(&out, n);
        out.iter().map(Cell::get).collect()
    }

    #[test]
    fn pids_in_decimal_with_a_nul() {
        assert_eq!(&text(2)[..2], b"2\0");
        assert_eq!(&text(4_194_304)[..8], b"4194304\0");
        assert!(text(7).iter().skip(1).all(|&b| b == 0), "stale bytes after the NUL");
        assert_eq!(&text(u32::MAX)[..11], b"4294967295\0");
    }
}
