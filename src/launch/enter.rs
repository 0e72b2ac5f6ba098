//! Starting a process inside a running guest: the parent's side of
//! [`Guest::exec`](crate::Guest::exec).
//!
//! The new process must be a child of the caller (so it can be waited
//! for) yet live in the guest's PID namespace. Joining a PID namespace
//! only affects later children (`pid_namespaces(7)`), so the calling
//! thread joins the guest's for the moment of the clone and leaves it
//! again (a per-thread setting, safe in multi-threaded programs), with
//! every signal blocked so no handler can fork meanwhile. The child then
//! joins the guest's other namespaces with one `setns(2)` on the guest's
//! pidfd, takes the guest's credentials and execs, following the same
//! allocation-free path as a spawn.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use nix::sched::CloneFlags;

use super::{CHILD_STACK, Spawned, Subjects, finish, max_fd, pipe, spawn_err, stdio_pair};
use crate::child;
use crate::command::{Command, RenderedCommand};
use crate::context::Namespaces;
use crate::error::{Error, SpawnError};
use crate::plan::{BpfInsn, CapsPlan, ChildPlan, CredsPlan, ExecPlan, Filters, JoinPlan, SECCOMP_NOTE};
use crate::process::GuestProcess;
use crate::resources::Cgroups;
use crate::sys::{dumpable::DumpableGuard, signals::BlockedSignals, stack::ChildStack};

/// What a process entering a guest takes on: the guest's payload's
/// credentials, capabilities and limits, and its namespaces.
#[derive(Debug)]
pub(crate) struct EnterInfo {
    pub creds: CredsPlan,
    pub caps: CapsPlan,
    pub no_new_privs: bool,
    pub rlimits: Vec<(u32, libc::rlimit64)>,
    /// The guest's system call filters, which entering processes get too:
    /// known from the spawn, else found on first use ([`Self::filters`]).
    filters: OnceLock<Arc<Filters>>,
    /// The guest's namespaces that differ from the caller's, and its time
    /// namespace if it has its own, found on first use.
    namespaces: OnceLock<(Namespaces, Option<OwnedFd>)>,
}

impl EnterInfo {
    pub(crate) fn new(
        creds: CredsPlan,
        caps: CapsPlan,
        no_new_privs: bool,
        rlimits: Vec<(u32, libc::rlimit64)>,
        filters: Option<Arc<Filters>>,
    ) -> Self {
        let known = OnceLock::new();
        if let Some(filters) = filters {
            let _ = known.set(filters);
        }
        EnterInfo { creds, caps, no_new_privs, rlimits, filters: known, namespaces: OnceLock::new() }
    }

    /// The filters of the guest whose PID 1 is `pid`: known since its
    /// spawn; else, for an attached guest, those this process recorded if
    /// it spawned it, else those read from PID 1 itself (`ptrace`, which
    /// stops it a moment: done at the first entry, not at attach), else
    /// the guest's own that its spawner kept on its groups. `Err` (why)
    /// when none of these works, so that entering is refused rather than
    /// widening what the guest can do.
    fn filters(&self, pid: libc::pid_t, cgroups: Option<&Cgroups>) -> Result<Arc<Filters>, String> {
        if let Some(known) = self.filters.get() {
            return Ok(known.clone());
        }
        let found = match spawned_filters(pid) {
            Some(ours) => ours,
            None => Arc::new(filters_of(pid, cgroups)?),
        };
        Ok(self.filters.get_or_init(|| found).clone())
    }

    /// The namespaces of process `pid` (our guest's PID 1, pinned by
    /// `pidfd`) that differ from the caller's. The time namespace is the
    /// one PID 1 gives its children: on kernels where an exec does not switch
    /// time namespaces (Debian's 6.1, for one), PID 1 itself stays in the
    /// host's while its children run in the guest's.
    fn namespaces(
        &self,
        pid: libc::pid_t,
        pidfd: BorrowedFd<'_>,
    ) -> std::io::Result<(Namespaces, Option<i32>)> {
        if let Some((ns, time)) = self.namespaces.get() {
            return Ok((*ns, time.as_ref().map(|f| f.as_raw_fd())));
        }
        use std::os::unix::fs::MetadataExt;
        let mut differ = Namespaces::empty();
        let same = |ours: &str, theirs: &str| -> std::io::Result<bool> {
            let ours = std::fs::metadata(format!("/proc/thread-self/ns/{ours}"))?;
            let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{theirs}"))?;
            Ok((ours.dev(), ours.ino()) == (theirs.dev(), theirs.ino()))
        };
        for (name, ns) in [
            ("user", Namespaces::USER),
            ("mnt", Namespaces::MOUNT),
            ("pid", Namespaces::PID),
            ("uts", Namespaces::UTS),
            ("ipc", Namespaces::IPC),
            ("net", Namespaces::NET),
            ("cgroup", Namespaces::CGROUP),
        ] {
            if !same(name, name)? {
                differ |= ns;
            }
        }
        let time = match same("time", "time_for_children")? {
            true => None,
            false => Some(OwnedFd::from(File::open(format!("/proc/{pid}/ns/time_for_children"))?)),
        };
        // The pid still names the guest only if the guest still runs.
        crate::sys::pidfd::send_signal(pidfd, 0)?;
        let (ns, time) = self.namespaces.get_or_init(|| (differ, time));
        Ok((*ns, time.as_ref().map(|f| f.as_raw_fd())))
    }
}

/// While alive, children of the calling thread are born in another PID
/// namespace; dropping it restores the thread's own.
struct PidNsForChildren {
    own: OwnedFd,
}

impl PidNsForChildren {
    fn enter(pidfd: BorrowedFd<'_>) -> std::io::Result<Self> {
        crate::failpoint::check("setns")?;
        let own = File::open("/proc/thread-self/ns/pid_for_children")?.into();
        nix::sched::setns(pidfd, CloneFlags::CLONE_NEWPID)?;
        Ok(PidNsForChildren { own })
    }
}

impl Drop for PidNsForChildren {
    fn drop(&mut self) {
        // Returning to the namespace we came from is always permitted.
        let _ = nix::sched::setns(self.own.as_fd(), CloneFlags::CLONE_NEWPID);
    }
}

/// What [`EnterInfo::filters`] reads from a PID 1 this process did not
/// spawn, or from its groups.
fn filters_of(pid: libc::pid_t, cgroups: Option<&Cgroups>) -> Result<Filters, String> {
    let read = crate::sys::ptrace::seccomp_filters(pid, std::time::Duration::from_secs(2));
    let why = match read {
        Ok(filters) if !filters.is_empty() => {
            let insn = |i: &libc::sock_filter| BpfInsn { code: i.code, jt: i.jt, jf: i.jf, k: i.k };
            return Ok(filters.iter().map(|f| f.iter().map(insn).collect()).collect());
        }
        Ok(_) => "the process has none, though its status says filtered".to_string(),
        Err(e) => format!("reading them from process {pid}: {e}"),
    };
    match cgroups.and_then(|g| g.note(SECCOMP_NOTE)).as_deref().and_then(BpfInsn::decode) {
        Some(program) => Ok(vec![program]),
        None => Err(format!("{why}; none kept on its groups (trusted.vguest.seccomp)")),
    }
}

/// The filters of the guests this process spawned, by their PID 1's pid,
/// for `attach` of one of them: while the spawner's handle lives and has
/// not reaped PID 1, the pid is that guest's (a zombie keeps its pid).
fn spawned() -> std::sync::MutexGuard<'static, HashMap<libc::pid_t, Weak<Filters>>> {
    static SPAWNED: OnceLock<Mutex<HashMap<libc::pid_t, Weak<Filters>>>> = OnceLock::new();
    SPAWNED.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the filters of the guest whose PID 1 is `pid`, just spawned.
pub(crate) fn keep_filters(pid: libc::pid_t, filters: &Arc<Filters>) {
    let mut spawned = spawned();
    // Handles dropped without reaping (`kill_on_drop(false)`) leave dead
    // entries: cleared now and then, at a cost spread over the spawns.
    if spawned.len() >= 64 && spawned.len().is_power_of_two() {
        spawned.retain(|_, kept| kept.strong_count() > 0);
    }
    spawned.insert(pid, Arc::downgrade(filters));
}

/// Forgets them once PID 1 is reaped (its pid may be reused).
pub(crate) fn forget_filters(pid: libc::pid_t) {
    spawned().remove(&pid);
}

/// The filters of a guest this process spawned and has not reaped.
fn spawned_filters(pid: libc::pid_t) -> Option<Arc<Filters>> {
    spawned().get(&pid)?.upgrade()
}

/// Starts `cmd` inside the guest whose PID 1 is `pid` (pinned by `pidfd`).
pub(crate) fn exec(
    guest: &str,
    pid: libc::pid_t,
    pidfd: BorrowedFd<'_>,
    info: &EnterInfo,
    cgroups: Option<&Cgroups>,
    cmd: &Command,
) -> Result<GuestProcess, Error> {
    let exited = || Error::Exited { guest: guest.to_string() };
    let seccomp = info.filters(pid, cgroups).map_err(|why| {
        let unknown = std::io::Error::other(format!("its system call filter is not known ({why})"));
        SpawnError::new(format!("entering guest {guest:?}"), unknown)
    })?;
    let (ns, time_fd) = info.namespaces(pid, pidfd).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH | libc::ENOENT) => exited(),
        _ => SpawnError::new(format!("reading the namespaces of guest {guest:?}"), e).into(),
    })?;
    let RenderedCommand { program, argv, envp, search_path, cwd } = cmd.render()?;
    let (err_r, err_w) = pipe().map_err(spawn_err("creating the error pipe"))?;
    let stdin = stdio_pair(&cmd.stdin, true).map_err(spawn_err("opening stdin"))?;
    let stdout = stdio_pair(&cmd.stdout, false).map_err(spawn_err("opening stdout"))?;
    let stderr = stdio_pair(&cmd.stderr, false).map_err(spawn_err("opening stderr"))?;
    let raw = |fd: &Option<OwnedFd>| fd.as_ref().map_or(-1, |f| f.as_raw_fd());
    let lifeline = super::lifeline()?;
    let (listener_plan, mut listener) = super::ListenerChannel::for_filters(&seccomp)?;
    let groups = cgroups
        .map(|g| g.open_dirs())
        .transpose()
        .map_err(spawn_err("opening the guest's cgroups"))?
        .unwrap_or_default();
    // The guest's pidfd sits high (`park_high`), and the child copies our
    // table only up to the highest fd it uses: it gets a low duplicate.
    let join_pidfd =
        crate::sys::fd::dup_at_least(pidfd, 3).map_err(spawn_err("duplicating the guest's pidfd"))?;
    let mut plan = ChildPlan {
        err_fd: err_w.as_raw_fd(),
        sync_fd: -1,
        sync_peer: -1,
        lifeline: lifeline.as_raw_fd(),
        owner_fd: -1,
        become_root: false,
        pdeathsig: 0,
        // The guest's groups, joined before its namespaces: with
        // nsdelegate, a process may not cross the boundary of a cgroup
        // namespace it is in (cgroup-v2.rst).
        cgroup_dirs: groups.raw(),
        into_cgroup: groups.v2().is_some(),
        unshare_cgroup: false,
        time_offsets: None,
        netns_fd: -1,
        loopback_up: false,
        netns_maker: None,
        late_cgroups: None,
        hostname: None,
        domainname: None,
        mount_propagation: 0,
        fs: None,
        rlimits: info.rlimits.clone(),
        cwd,
        creds: info.creds.clone(),
        caps: info.caps,
        no_new_privs: info.no_new_privs,
        seccomp,
        listener: listener_plan,
        stdio: [raw(&stdin.child), raw(&stdout.child), raw(&stderr.child)],
        max_fd: max_fd(),
        exec: ExecPlan::new(program, search_path, argv, envp, None),
        join: Some(JoinPlan {
            pidfd: join_pidfd.as_raw_fd(),
            nstype: (ns - Namespaces::PID).bits() as i32,
            time_fd: time_fd.unwrap_or(-1),
        }),
        files: Default::default(),
    };
    // A process sharing our memory may not join a time namespace
    // (`setns(2)`, EINVAL/EUSERS): copy the memory for such guests.
    let share_memory = time_fd.is_none();
    let stack = ChildStack::new(CHILD_STACK).map_err(spawn_err("mapping the child's stack"))?;
    let dumpable = DumpableGuard::hold();
    let cloned = {
        let _blocked = BlockedSignals::block_all().map_err(spawn_err("blocking signals"))?;
        let _pidns = match ns.contains(Namespaces::PID) {
            true => Some(PidNsForChildren::enter(pidfd).map_err(|e| match e.raw_os_error() {
                Some(libc::ESRCH) => exited(),
                _ => SpawnError::new(format!("joining the PID namespace of guest {guest:?}"), e).into(),
            })?),
            false => None,
        };
        child::clone_child(&mut plan, &stack, 0, share_memory, groups.v2())
    };
    let cloned = cloned.map_err(spawn_err("cloning into the guest"))?;
    let spawned =
        Spawned { pid: cloned.pid, pidfd: Some(cloned.pidfd), stack: Some(stack), dumpable: Some(dumpable) };
    drop(err_w);
    drop((stdin.child, stdout.child, stderr.child));
    if let Some(listener) = listener.as_mut() {
        listener.cloned();
    }
    let pidfd =
        finish(spawned, err_r, &plan, &Subjects { program: cmd.get_program(), ..Subjects::default() })
            .map_err(|e| match &e {
                Error::Setup(s) if s.step() == crate::Step::JoinGuest && s.raw_os_error() == libc::ESRCH => {
                    exited()
                }
                _ => e,
            })?;
    let listener = listener.map(super::ListenerChannel::receive).transpose()?;
    Ok(GuestProcess::new(guest, cloned.pid, pidfd, [stdin.parent, stdout.parent, stderr.parent], listener))
}
