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
//! `wire.rs`) and the child exits; the parent reaps it and returns a typed
//! error. End of file on the pipe means the exec succeeded.

use core::convert::Infallible;
use core::ffi::{CStr, c_char};

use super::plan::{ChildPlan, INIT_PROGRAM_SLOT, LateCgroups, PID_TEXT};
use super::wire::{self, step};
use crate::sys::call::{self, Errno};
use crate::sys::clone::{Cloned, PLACED, clone_on_stack, clone_sharing_memory};
use crate::sys::stack::ChildStack;

/// Size of the buffer for a program path found in `PATH`.
const PATH_BUF: usize = 4096;

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
    // SAFETY: `child_main` follows the post-clone rules above: it only
    // reads `plan` (and one init argv slot made for it), uses its own
    // stack, and ends in exec or exit_group. The caller keeps `plan` and
    // `stack` alive until the child is gone from them.
    unsafe {
        clone_on_stack(flags, share_memory, cgroup, stack, child_main, plan as *const ChildPlan as usize)
    }
}

/// Entry point of the spawn child, called on its own stack by
/// `clone_on_stack` with a pointer to the plan and whether the kernel
/// placed it into the cgroup it asked for.
///
/// # Safety
///
/// `arg` must point to a `ChildPlan` that stays alive and unchanged until
/// this process execs or exits.
unsafe extern "C" fn child_main(arg: usize, placed: usize) -> ! {
    // SAFETY: the caller guarantees the plan outlives this process's use
    // of the parent's memory.
    let plan = unsafe { &*(arg as *const ChildPlan) };
    let placed = plan.into_cgroup && placed == PLACED;
    let Err(Failure(step, errno, detail)) = child_run(plan, placed);
    let record = wire::encode(step, errno, detail);
    let _ = call::write_all(plan.err_fd, &record);
    call::exit(127)
}

fn child_run(plan: &ChildPlan, placed: bool) -> Result<Infallible, Failure> {
    // Until the exec this process dies with the thread that is spawning
    // it: a half-made guest must not live on after a crashed caller
    // (`prctl(2)`, PR_SET_PDEATHSIG). Should the caller have died before
    // this line, the lifeline says so.
    child_die_with_parent(plan)?;
    for peer in [plan.netns_maker.map(|n| n.ends.peer), plan.late_cgroups.map(|l| l.ends.peer)]
        .into_iter()
        .flatten()
        .chain([plan.sync_peer])
    {
        if peer >= 0 {
            let _ = call::close(peer);
        }
    }
    // A new session has no controlling terminal, and nothing in the guest
    // can make the caller's terminal its own: `TIOCSCTTY` on a terminal
    // that is another session's needs CAP_SYS_ADMIN (`ioctl_tty(2)`), and
    // without it `TIOCSTI` into that terminal fails.
    call::setsid().at(step::NEW_SESSION, 0)?;
    if plan.sync_fd >= 0 {
        child_wait_for_parent(plan.sync_fd, plan.lifeline)?;
    }
    child_namespaces(plan, placed)?;
    if plan.become_root {
        // Born into a new user namespace with the creator's ids, which
        // are not mapped in it: files this process creates (mount points,
        // /dev entries) would fail with EOVERFLOW. Become the namespace's
        // root now that the parent wrote the maps; the capabilities stay,
        // since the old ids were not this namespace's root
        // (capabilities(7), "Effect of user ID changes"). This comes after
        // the time offsets: changing ids makes /proc/self root-owned.
        call::setresgid(0).at(step::SET_GID, 0)?;
        call::setresuid(0).at(step::SET_UID, 0)?;
        // A change of ids clears the parent-death signal.
        child_die_with_parent(plan)?;
    }
    if let Some(name) = &plan.hostname {
        call::sethostname(name).at(step::SET_HOSTNAME, 0)?;
    }
    if let Some(name) = &plan.domainname {
        call::setdomainname(name).at(step::SET_DOMAINNAME, 0)?;
    }
    if plan.mount_propagation != 0 {
        // A new mount namespace copies the host's propagation: with shared
        // mounts, anything mounted below them would appear on the host
        // (mount_namespaces(7), "Shared subtrees").
        call::mount_propagation(c"/", plan.mount_propagation).at(step::MOUNT, u32::MAX)?;
    }
    let netns = plan.netns_maker;
    if let Some(join) = netns.filter(|n| n.before_mounts) {
        super::netns::child_join(join.ends.sock, plan.lifeline)?;
    }
    if let Some(fs) = &plan.fs {
        crate::fs::child_filesystem(fs)?;
    }
    if let Some(join) = netns.filter(|n| !n.before_mounts) {
        super::netns::child_join(join.ends.sock, plan.lifeline)?;
    }
    if let Some(late) = &plan.late_cgroups {
        child_join_late(plan, late)?;
    }
    for (i, (resource, limit)) in plan.rlimits.iter().enumerate() {
        call::setrlimit(*resource, limit).at(step::SET_RLIMIT, i as u32)?;
    }
    if let Some(dir) = &plan.cwd {
        call::chdir(dir).at(step::CHDIR, 0)?;
    }
    child_credentials(plan)?;
    child_die_with_parent(plan)?;
    child_fds(plan)?;
    child_exec(plan)
}

/// Makes `SIGKILL` this process's parent-death signal, then leaves if the
/// caller has died already (a parent that died before the signal was set
/// sends none).
fn child_die_with_parent(plan: &ChildPlan) -> Result<(), Failure> {
    call::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as usize, 0, 0, 0).at(step::PARENT_DEATH_SIGNAL, 0)?;
    if call::has_ended(plan.lifeline) {
        call::exit(1);
    }
    Ok(())
}

/// Blocks until the parent has written the id maps and done its part;
/// end of file, or the caller's death, means the parent gave up.
fn child_wait_for_parent(fd: i32, lifeline: i32) -> Result<(), Failure> {
    let mut byte = [0u8; 1];
    loop {
        match call::wait_readable(fd, lifeline).at(step::WAIT_FOR_PARENT, 0)? {
            call::Ready::LifelineGone => call::exit(1),
            call::Ready::Fd => {}
        }
        match call::read(fd, &mut byte) {
            Ok(1) => break,
            Ok(_) => call::exit(0),
            Err(libc::EINTR) => continue,
            Err(e) => return Err(Failure(step::WAIT_FOR_PARENT, e, 0)),
        }
    }
    let _ = call::close(fd);
    Ok(())
}

/// Joins the cgroups, then creates the namespaces that must come after
/// that (cgroup: rooted at the guest's group; time: offsets written before
/// any process enters it, `time_namespaces(7)`), and sets up the network.
fn child_namespaces(plan: &ChildPlan, placed: bool) -> Result<(), Failure> {
    // Cgroups first: with nsdelegate, a process may not move itself
    // across the boundary of a cgroup namespace it has joined.
    for (i, &(dir, v2)) in plan.cgroup_dirs.iter().enumerate() {
        if placed && i == 0 {
            continue;
        }
        join_group(dir, v2, i as u32)?;
    }
    if let Some(join) = &plan.join {
        // One atomic setns(2) with a pidfd (Linux 5.8): the user
        // namespace first, then the rest.
        call::setns(join.pidfd, join.nstype).at(step::JOIN_GUEST, 0)?;
        if join.time_fd >= 0 {
            call::setns(join.time_fd, libc::CLONE_NEWTIME).at(step::JOIN_GUEST, 1)?;
        }
    }
    if plan.unshare_cgroup && plan.late_cgroups.is_none() {
        call::unshare(libc::CLONE_NEWCGROUP).at(step::UNSHARE_CGROUP, 0)?;
    }
    if let Some(offsets) = &plan.time_offsets {
        call::unshare(libc::CLONE_NEWTIME).at(step::UNSHARE_TIME, 0)?;
        let fd =
            call::openat(libc::AT_FDCWD, c"/proc/self/timens_offsets", libc::O_WRONLY | libc::O_CLOEXEC, 0)
                .at(step::SET_TIME_OFFSETS, 0)? as i32;
        let written = call::write_all(fd, offsets).at(step::SET_TIME_OFFSETS, 0);
        let _ = call::close(fd);
        written?;
    }
    if plan.netns_fd >= 0 {
        call::setns(plan.netns_fd, libc::CLONE_NEWNET).at(step::JOIN_NETWORK, 0)?;
    }
    if plan.loopback_up {
        // Two ioctls on a socket: cheaper than a netlink exchange.
        call::link_up(b"lo").at(step::LOOPBACK_UP, 0)?;
    }
    Ok(())
}

/// Moves this process into the group whose directory fd is `dir`.
fn join_group(dir: i32, v2: bool, index: u32) -> Result<(), Failure> {
    // This process has one thread, so moving the thread moves it. On v1,
    // moving the calling thread ("0" to `tasks`) skips the global
    // threadgroup lock whose first writer after a quiet spell waits for an
    // RCU grace period (milliseconds); `cgroup.procs` takes it. v2 allows
    // threads only in threaded subtrees: `cgroup.procs`.
    let file = if v2 { c"cgroup.procs" } else { c"tasks" };
    let fd =
        call::openat(dir, file, libc::O_WRONLY | libc::O_CLOEXEC, 0).at(step::JOIN_CGROUP, index)? as i32;
    // "0" means the writing process (cgroups(7)).
    let joined = call::write_all(fd, b"0").at(step::JOIN_CGROUP, index);
    let _ = call::close(fd);
    joined
}

/// Joins the groups the parent made after the clone (their fds arrive on
/// the socket, one per message), then creates the cgroup namespace, which
/// must come after every join (with `nsdelegate`, a process may not move
/// itself across the boundary of a cgroup namespace it is in).
fn child_join_late(plan: &ChildPlan, late: &LateCgroups) -> Result<(), Failure> {
    for i in 0..late.count {
        let index = late.first_index + i;
        if call::wait_readable(late.ends.sock, plan.lifeline).at(step::JOIN_CGROUP, index)?
            == call::Ready::LifelineGone
        {
            call::exit(1);
        }
        let mut byte = [0u8; 1];
        let (got, fd) = call::recv_with_fd(late.ends.sock, &mut byte).at(step::JOIN_CGROUP, index)?;
        if got == 0 || fd < 0 {
            // The parent went away, or sent no fd.
            return Err(Failure(step::JOIN_CGROUP, libc::EPIPE, index));
        }
        let joined = join_group(fd, false, index);
        let _ = call::close(fd);
        joined?;
    }
    let _ = call::close(late.ends.sock);
    if plan.unshare_cgroup {
        call::unshare(libc::CLONE_NEWCGROUP).at(step::UNSHARE_CGROUP, 0)?;
    }
    Ok(())
}

/// Drops capabilities and switches ids, in the order `capabilities(7)`
/// requires: bounding set first (needs CAP_SETPCAP), groups and gid while
/// still privileged, keep permitted caps across the uid change, then the
/// final sets, ambient raises and no_new_privs.
fn child_credentials(plan: &ChildPlan) -> Result<(), Failure> {
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

/// Puts the payload's stdio on 0, 1, 2 and marks every other inherited fd
/// close-on-exec, so nothing of the embedding program leaks into the guest.
fn child_fds(plan: &ChildPlan) -> Result<(), Failure> {
    for (target, &fd) in plan.stdio.iter().enumerate() {
        if fd >= 0 {
            call::dup2(fd, target as i32).at(step::STDIO, target as u32)?;
        }
    }
    if call::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC).is_err() {
        for fd in 3..plan.max_fd {
            let _ = call::set_fd_flags(fd as i32, libc::FD_CLOEXEC);
        }
    }
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            call::default_signal(sig).at(step::SIGNALS, sig as u32)?;
        }
    }
    Ok(())
}

/// Executes the payload; with the built-in init, clones the payload's
/// process first and execs the init, so the two execs run side by side.
fn child_exec(plan: &ChildPlan) -> Result<Infallible, Failure> {
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
fn child_exec_init(plan: &ChildPlan, init: &super::plan::InitPlan) -> Result<Infallible, Failure> {
    // The init needs its status pipe across its exec; it marks it
    // close-on-exec again. Unless the init forks the payload, the error
    // pipe stays close-on-exec: end of file on it then means both execs
    // succeeded. Should the init's exec fail, the parent kills this
    // process, the PID namespace's init, and the payload with it.
    call::set_fd_flags(plan.status_fd, 0).at(step::EXEC_INIT, 0)?;
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
