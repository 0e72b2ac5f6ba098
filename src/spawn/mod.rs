//! Spawning a guest: the parent's side, in five phases.
//!
//! ```text
//!   GuestSpec ─1─> Rendered (checked layers) ─2─> Spawn (made objects + ChildPlan)
//!        ─3─> clone: child (+ maker) ─4─> handshake ─5─> exec seen ─> Guest
//! ```
//!
//! 1. [`Rendered::new`]: check every layer and render it; nothing on the
//!    host changes yet.
//! 2. [`Spawn::prepare`]: create the guest's cgroups with their limits,
//!    the links of a pooled network namespace, the pipes and stdio, and
//!    lay out the [`ChildPlan`](crate::plan::ChildPlan).
//! 3. [`Spawn::clone`]: clone the child with `CLONE_VM` onto its own
//!    stack, with every signal blocked (`sys::clone`); its rules are in
//!    `child`. A maker may make the network namespace beside it.
//! 4. [`Spawn::handshake`]: do what only the parent can (the user
//!    namespace's id maps, the links in the child's network namespace, the
//!    v1 groups made while the child mounts) and release the child.
//! 5. [`Spawn::finish`]: read the error pipe; end of file means the
//!    payload (or the built-in init) exec'd, a record means a step failed.
//!
//! [`Spawn`] owns everything the phases made. Its fields drop in the order
//! they are declared, which is the one order that undoes a spawn that
//! failed anywhere: the maker and the child are killed and reaped before
//! the plan and the stacks they read are freed, and the links and cgroups
//! go last, once no process of the guest is left in them.

mod render;

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use crate::command::RenderedCommand;
use crate::context::{self, Namespaces};
use crate::error::{Error, SpawnError};
use crate::guest::{Guest, GuestParts};
use crate::launch::enter::{self, EnterInfo};
use crate::launch::maker::Maker;
use crate::launch::{
    self, CHILD_STACK, FdChannel, ListenerChannel, PAYLOAD_STACK, Spawned, StdioPair, Subjects, pipe,
    spawn_err, stdio_pair,
};
use crate::net::{self, NetLinks};
use crate::plan::{BpfInsn, ChildPlan, ExecPlan, LateCgroups, NetnsJoin};
use crate::resources::{self, Cgroups};
use crate::sys::{dumpable::DumpableGuard, memfd, signals::BlockedSignals, stack::ChildStack};

pub(crate) use self::render::GuestSpec;
use self::render::{ForPlan, Rendered};

/// Spawns the guest `b` describes.
pub(crate) fn spawn(b: GuestSpec<'_>) -> Result<Guest, Error> {
    let (rendered, for_plan) = Rendered::new(b)?;
    let mut spawn = Spawn::prepare(&rendered, for_plan)?;
    spawn.clone(&rendered)?;
    if let Err(e) = spawn.handshake(&rendered) {
        // A child that failed first explains why the parent's part failed
        // (its namespaces gone, its pipes closed): its own report names
        // the step.
        return Err(spawn.child_failure(&rendered).unwrap_or(e));
    }
    spawn.finish(rendered)
}

/// What a spawn made, in the order it is undone on an early return.
struct Spawn {
    /// Uses the child's pidfd by number: killed and reaped first.
    maker: Option<Maker>,
    /// Killed and reaped, then its stack unmapped.
    child: Option<Spawned>,
    /// Read by the child (and by the payload's first clone, whose stack
    /// it holds) until they are gone.
    plan: ChildPlan,
    err_r: Option<OwnedFd>,
    err_w: Option<OwnedFd>,
    sync: Option<(OwnedFd, OwnedFd)>,
    stdio: [StdioPair; 3],
    maker_channel: Option<FdChannel>,
    late_channel: Option<FdChannel>,
    /// Where the filter's listener comes back, if it has one.
    listener: Option<ListenerChannel>,
    _lifeline: OwnedFd,
    /// The guest's host-side links: removed on drop.
    links: Option<NetLinks>,
    /// The guest's groups: removed on drop, once nothing runs in them.
    cgroups: Option<Cgroups>,
}

impl Spawn {
    /// Phase 2: the host objects, pipes and stdio, and the child's plan.
    fn prepare(r: &Rendered<'_>, for_plan: ForPlan) -> Result<Spawn, Error> {
        let ForPlan { command: RenderedCommand { program, argv, envp, search_path, cwd }, fs } = for_plan;
        let ctx = &r.ctx;
        // Without a user namespace the child joins its groups itself, so
        // the v1 groups can be made after the clone, while it builds its
        // mounts.
        let cgroups = match r.resources {
            Some(resources) => {
                Some(resources::create(resources, r.name, ctx.userns.is_none(), !r.kill_on_drop)?)
            }
            None => None,
        };
        let channel = |what| FdChannel::new().map_err(spawn_err(what));
        let maker_channel = match r.maker {
            true => Some(channel("creating the network namespace's socket pair")?),
            false => None,
        };
        let late_channel = match cgroups.as_ref().is_some_and(|g| g.pending_count() > 0) {
            true => Some(channel("creating the cgroups' socket pair")?),
            false => None,
        };
        // A namespace from a pool exists already: its links are made now,
        // before there is a process to wait on them.
        let links = match &r.net {
            Some(n) if !n.links.is_empty() => match &n.pooled {
                Some(fd) => Some(net::setup(n, fd.as_fd(), Path::new("a pooled network namespace"))?),
                None => None,
            },
            _ => None,
        };

        let (err_r, err_w) = pipe().map_err(spawn_err("creating the error pipe"))?;
        let sync = match ctx.userns.is_some() || r.net_parent {
            true => Some(pipe().map_err(spawn_err("creating the handshake pipe"))?),
            false => None,
        };
        // The init ends a guest whose owner dies, unless it may outlive
        // its handle from the start.
        let owner = match r.use_init && r.kill_on_drop {
            true => Some(launch::owner_pipe()?.as_raw_fd()),
            false => None,
        };
        let [stdin, stdout, stderr] = r.stdio;
        let stdio = [
            stdio_pair(stdin, true).map_err(spawn_err("opening stdin"))?,
            stdio_pair(stdout, false).map_err(spawn_err("opening stdout"))?,
            stdio_pair(stderr, false).map_err(spawn_err("opening stderr"))?,
        ];
        let init_fds = match r.use_init {
            true => {
                let memfd = memfd::init_image().map_err(spawn_err("loading the built-in init"))?;
                Some((memfd.as_raw_fd(), err_w.as_raw_fd(), owner))
            }
            false => None,
        };
        let lifeline = launch::lifeline()?;
        let seccomp: Arc<crate::plan::Filters> = Arc::new(ctx.seccomp.iter().cloned().collect());
        let (listener_plan, listener) = ListenerChannel::for_filters(&seccomp)?;
        let raw = |fd: Option<&OwnedFd>| fd.map_or(-1, |f| f.as_raw_fd());
        let mut plan = ChildPlan {
            err_fd: err_w.as_raw_fd(),
            sync_fd: raw(sync.as_ref().map(|(r, _)| r)),
            sync_peer: raw(sync.as_ref().map(|(_, w)| w)),
            lifeline: lifeline.as_raw_fd(),
            owner_fd: owner.unwrap_or(-1),
            become_root: ctx.userns.as_ref().is_some_and(|u| u.maps_root),
            pdeathsig: ctx.pdeathsig,
            // A child with a user namespace may not write the host's
            // cgroup files: the parent moves it during the handshake.
            cgroup_dirs: match (&cgroups, &ctx.userns) {
                (Some(groups), None) => groups.dir_fds(),
                _ => Vec::new(),
            },
            into_cgroup: ctx.userns.is_none() && cgroups.as_ref().is_some_and(|g| g.v2_fd().is_some()),
            late_cgroups: match (&late_channel, &cgroups) {
                (Some(channel), Some(groups)) => Some(LateCgroups {
                    ends: channel.child_ends(),
                    count: groups.pending_count() as u32,
                    first_index: groups.groups().len() as u32,
                }),
                _ => None,
            },
            unshare_cgroup: r.ns.contains(Namespaces::CGROUP),
            time_offsets: ctx.clocks.map(context::time_offsets),
            netns_fd: r.net.as_ref().and_then(|n| n.join_fd()).unwrap_or(-1),
            loopback_up: r.ns.contains(Namespaces::NET),
            netns_maker: maker_channel
                .as_ref()
                .map(|channel| NetnsJoin { ends: channel.child_ends(), before_mounts: r.net_before_mounts }),
            hostname: ctx.hostname.clone(),
            domainname: ctx.domainname.clone(),
            mount_propagation: r.propagation,
            fs,
            rlimits: ctx.rlimits.clone(),
            cwd,
            creds: ctx.creds.clone(),
            caps: ctx.caps,
            no_new_privs: ctx.no_new_privs,
            seccomp,
            listener: listener_plan,
            stdio: [raw(stdio[0].child.as_ref()), raw(stdio[1].child.as_ref()), raw(stdio[2].child.as_ref())],
            max_fd: launch::max_fd(),
            exec: ExecPlan::new(program, search_path, argv, envp, init_fds),
            join: None,
            files: Default::default(),
        };
        if let Some(init) = plan.exec.init.as_mut() {
            let payload =
                ChildStack::new(PAYLOAD_STACK).map_err(spawn_err("mapping the payload's first stack"))?;
            init.payload_stack_top = payload.top() as usize;
            init.payload_stack = Some(payload);
        }
        Ok(Spawn {
            maker: None,
            child: None,
            plan,
            err_r: Some(err_r),
            err_w: Some(err_w),
            sync,
            stdio,
            maker_channel,
            late_channel,
            listener,
            _lifeline: lifeline,
            links,
            cgroups,
        })
    }

    /// Phase 3: clones the child, and the maker beside it.
    fn clone(&mut self, r: &Rendered<'_>) -> Result<(), Error> {
        // Namespaces that must be created after the child joined its
        // cgroups (cgroup) or wrote its offsets (time) are left to it.
        let ns = r.ns;
        let flags = (ns - Namespaces::CGROUP - Namespaces::TIME).bits() as u64;
        let stack = ChildStack::new(CHILD_STACK).map_err(spawn_err("mapping the child's stack"))?;
        let dumpable = DumpableGuard::hold();
        let _blocked = BlockedSignals::block_all().map_err(spawn_err("blocking signals"))?;
        let cgroup = self.cgroups.as_ref().and_then(|g| g.v2_fd());
        let cloned = crate::child::clone_child(&mut self.plan, &stack, flags, true, cgroup)
            .map_err(|e| SpawnError::new(format!("cloning with flags {ns:?}"), e))?;
        let spawned = self.child.insert(Spawned {
            pid: cloned.pid,
            pidfd: Some(cloned.pidfd),
            stack: Some(stack),
            dumpable: Some(dumpable),
        });
        if let Some(channel) = self.maker_channel.take() {
            let child = spawned.pidfd.as_ref().map(|fd| fd.as_raw_fd()).unwrap_or(-1);
            self.maker = Some(
                Maker::start(channel, child, r.ctx.userns.is_some())
                    .map_err(spawn_err("starting the network namespace's maker"))?,
            );
        }
        // The child has its own copies of these now.
        self.err_w = None;
        if let Some(listener) = self.listener.as_mut() {
            listener.cloned();
        }
        for pair in &mut self.stdio {
            pair.child = None;
        }
        Ok(())
    }

    /// Phase 4: the handshake. Only the parent may write the id maps, and
    /// it makes the guest's links; then the late v1 groups, and the maker
    /// is reaped.
    fn handshake(&mut self, r: &Rendered<'_>) -> Result<(), Error> {
        let pid = self.child.as_ref().map_or(0, |c| c.pid);
        if let Some((sync_r, sync_w)) = self.sync.take() {
            if let Some(userns) = &r.ctx.userns {
                userns.write(pid).map_err(|(path, e)| SpawnError::new(format!("writing {path}"), e))?;
                if let Some(groups) = &self.cgroups {
                    groups.join(pid)?;
                }
            }
            if let Some(plan) = r.net.as_ref().filter(|n| n.needs_parent()) {
                let (ns, path) = net::child_netns(pid)?;
                self.links = Some(net::setup(plan, ns.as_fd(), &path)?);
            }
            // Our read end stays open until the byte is written: should
            // the child have died meanwhile, the write still succeeds (the
            // pipe has a reader), where it would otherwise raise SIGPIPE,
            // which kills an embedding program that does not ignore it.
            File::from(sync_w).write_all(&[1]).map_err(spawn_err("releasing the child"))?;
            drop(sync_r);
        }
        // The v1 groups, made while the child builds its mounts; it joins
        // them once their fds arrive. Should it have failed meanwhile, the
        // sends fail and its report waits on the error pipe.
        if let (Some(channel), Some(groups)) = (self.late_channel.take(), self.cgroups.as_mut()) {
            drop(channel.theirs);
            for fd in groups.create_pending()? {
                let _ = crate::sys::call::send_with_fd(channel.ours.as_raw_fd(), &[1], fd);
            }
        }
        if let Some(maker) = self.maker.take() {
            maker.finish().map_err(spawn_err("reaping the network namespace's maker"))?;
        }
        Ok(())
    }

    /// What a failed step's error names: the program, the groups, the
    /// network.
    fn subjects<'a>(&'a self, r: &'a Rendered<'_>) -> Subjects<'a> {
        Subjects {
            program: r.program,
            cgroups: self.cgroups.as_ref(),
            network: r.net.as_ref().map_or("", |n| n.join_label.as_str()),
        }
    }

    /// The child's own failure report, if it has written one: a child
    /// writes it before it starts to exit, so before its namespaces go,
    /// which is what the parent may have tripped over. A report of `EPIPE`
    /// says the opposite: the child's sender (this process, or the maker
    /// beside it) gave up first, without a word (`child/run.rs`,
    /// `child/netns.rs`), so the parent's own error is the cause.
    fn child_failure(&self, r: &Rendered<'_>) -> Option<Error> {
        launch::reported_failure(self.err_r.as_ref()?, &self.plan, &self.subjects(r))
            .filter(|e| e.raw_os_error() != Some(libc::EPIPE))
    }

    /// Phase 5: waits for the exec and hands what the guest keeps to its
    /// [`Guest`].
    fn finish(mut self, r: Rendered<'_>) -> Result<Guest, Error> {
        let child =
            self.child.take().ok_or_else(|| SpawnError::new("waiting for the exec", already("reaped")))?;
        let pid = child.pid;
        let err_r =
            self.err_r.take().ok_or_else(|| SpawnError::new("reading the error pipe", already("read")))?;
        let pidfd = launch::finish(child, err_r, &self.plan, &self.subjects(&r))?;
        let listener = self.listener.take().map(ListenerChannel::receive).transpose()?;
        let plan = &self.plan;
        let filters = plan.seccomp.clone();
        enter::keep_filters(pid, &filters);
        let enter = EnterInfo::new(
            plan.creds.clone(),
            plan.caps,
            plan.no_new_privs,
            plan.rlimits.clone(),
            Some(filters),
        );
        let [stdin, stdout, stderr] = std::mem::take(&mut self.stdio).map(|p| p.parent);
        let mut cgroups = self.cgroups.take();
        if let Some(groups) = cgroups.as_mut() {
            if let Some(program) = plan.seccomp.first() {
                // Without it, a later `attach` refuses to enter the guest
                // rather than widen its filter.
                let _ = groups.set_note(crate::plan::SECCOMP_NOTE, &BpfInsn::encode(program));
            }
            groups.close_fds();
        }
        Ok(Guest::new(GuestParts {
            name: r.name.to_string(),
            pid,
            pidfd,
            builtin_init: r.use_init,
            kill_on_drop: r.kill_on_drop,
            own_pid_ns: r.own_pid_ns,
            enter,
            stdio: [stdin, stdout, stderr],
            cgroups,
            links: self.links.take(),
            listener,
        }))
    }
}

/// The error for a phase that finds its object gone (a phase run twice).
fn already(what: &str) -> std::io::Error {
    std::io::Error::other(format!("the child was already {what}"))
}
