//! The spawn child's steps, from the clone to the payload's stdio; the
//! exec itself is `exec.rs`.
//!
//! ```text
//!   RUNS AFTER CLONE(CLONE_VM): the rules of `child/mod.rs` apply.
//! ```

use core::convert::Infallible;

use super::{At, Failure};
use crate::plan::wire::{self, step};
use crate::plan::{ChildPlan, LateCgroups};
use crate::sys::call;
use crate::sys::clone::PLACED;

/// placed it into the cgroup it asked for.
///
/// # Safety
///
/// `arg` must point to a `ChildPlan` that stays alive and unchanged until
/// this process execs or exits.
pub(super) unsafe extern "C" fn child_main(arg: usize, placed: usize) -> ! {
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
    // First of all, before any fd is opened, closed or moved: a table of
    // our own, should we share the caller's.
    child_own_files(plan)?;
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
        super::fs::child_filesystem(fs)?;
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
    if !plan.no_new_privs {
        child_seccomp(plan)?;
    }
    super::creds::apply(plan)?;
    if plan.no_new_privs {
        child_seccomp(plan)?;
    }
    child_die_with_parent(plan)?;
    child_fds(plan)?;
    super::exec::child_exec(plan)
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

/// Takes a copy of the fds below `keep_below` of the caller's file
/// table the child was cloned sharing (see `SharedFiles`), and tells the
/// parent, which waits for it before it closes anything. Kernels before
/// 5.9 lack `close_range`: `unshare(CLONE_FILES)` copies the whole table.
/// Should both fail, the child reports and exits still sharing the table,
/// which it has not touched.
fn child_own_files(plan: &ChildPlan) -> Result<(), Failure> {
    let files = &plan.files;
    if files.keep_below == 0 {
        return Ok(());
    }
    call::close_range(files.keep_below, u32::MAX, libc::CLOSE_RANGE_UNSHARE)
        .or_else(|_| call::unshare(libc::CLONE_FILES))
        .at(step::UNSHARE_FILES, 0)?;
    files.unshared.store(1, core::sync::atomic::Ordering::Release);
    let _ = call::futex_wake(&files.unshared);
    Ok(())
}

/// Loads the guest's system call filters, if it has any. What the child
/// does after it (reset signals, resolve the program, clone the payload's
/// process, exec) passes the filter too.
///
/// The filter the plan names gets a listener: sent to the caller at once,
/// and this copy closed, so that the caller's is the only one (when it
/// closes it, waiting and later intercepted calls fail with `ENOSYS`).
/// The calls from here to the exec may not be intercepted (no one could
/// answer them yet); `Seccomp` refuses rules that would.
fn child_seccomp(plan: &ChildPlan) -> Result<(), Failure> {
    for (i, program) in plan.seccomp.iter().enumerate() {
        let len = u16::try_from(program.len()).map_err(|_| Failure(step::SECCOMP, libc::E2BIG, i as u32))?;
        let listener = plan.listener.filter == i as i32;
        let flags = if listener { libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as usize } else { 0 };
        let fd = call::seccomp_filter(program.as_ptr().cast(), len, flags).at(step::SECCOMP, i as u32)?;
        if listener {
            let sent = call::send_with_fd(plan.listener.sock, &[1], fd as i32).at(step::HAND_LISTENER, 0);
            let _ = call::close(fd as i32);
            let _ = call::close(plan.listener.sock);
            sent?;
        }
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
