//! Spawning a guest: the parent's side.
//!
//! 1. Check every layer and render it into a [`ChildPlan`] (C strings,
//!    pointer arrays, masks, fds): nothing is created yet. Then create the
//!    guest's cgroups with their limits; the child joins them first thing
//!    (or the kernel places it there with `CLONE_INTO_CGROUP`).
//! 2. Create the pipes (error, handshake, init status, stdio).
//! 3. Clone the child with `CLONE_VM` onto its own stack, with every
//!    signal blocked (`sys::clone`). Sharing memory makes the clone's cost
//!    independent of the parent's size; the child's rules are in
//!    [`child`].
//! 4. If needed, do what only the parent can (write the user namespace's
//!    id maps) and release the child through the handshake pipe.
//! 5. Read the error pipe: end of file means the payload (or the built-in
//!    init) exec'd; a record means a step failed, and the parent reaps the
//!    child before returning the [`SetupError`](crate::SetupError).
//!
//! Until the child has exec'd or been reaped, its stack and the plan must
//! stay mapped: [`Spawned`] owns both and kills and reaps the child if
//! the parent leaves early (an error or a panic).

pub(crate) mod child;
pub(crate) mod enter;
pub(crate) mod netns;
pub(crate) mod plan;
pub(crate) mod wire;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use crate::builder::GuestBuilder;
use crate::command::{RenderedCommand, Stdio};
use crate::context::{self, Namespaces};
use crate::error::{Error, SetupError, SpawnError, Step};
use crate::fs::FsError;
use crate::guest::{Guest, HostObjects};
use crate::resources;
use crate::status::Init;
use crate::sys::{dumpable::DumpableGuard, memfd, pidfd, signals::BlockedSignals, stack::ChildStack};
use plan::{ChildPlan, ExecPlan};

/// Stack of the spawn child. Its deepest frame holds a PATH buffer; the
/// rest is a few hundred bytes.
pub(crate) const CHILD_STACK: usize = 64 * 1024;

/// Stack of the payload's process between its clone by the spawn child
/// and its exec: two small frames.
pub(crate) const PAYLOAD_STACK: usize = 16 * 1024;

/// Upper bound for the child's close-on-exec sweep where `close_range`
/// is missing: the soft `RLIMIT_NOFILE`, capped.
pub(crate) fn max_fd() -> u32 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft.min(65_536) as u32)
}

pub(crate) fn spawn_err(op: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |e| SpawnError::new(op, e).into()
}

/// `pipe2(O_CLOEXEC)` with both ends above the standard streams, so that
/// the child's `dup2` onto 0, 1, 2 can never clobber one of them.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// A close-on-exec `SOCK_SEQPACKET` pair on which the parent's side (the
/// parent, or a helper sharing its file table) passes fds to the spawn
/// child, one per message; both ends above stdio. Made before the clone,
/// so that the child inherits `theirs`.
pub(crate) struct FdChannel {
    pub ours: OwnedFd,
    pub theirs: OwnedFd,
}

impl FdChannel {
    pub(crate) fn new() -> io::Result<FdChannel> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let (ours, theirs) =
            socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        Ok(FdChannel { ours: above_stdio(ours)?, theirs: above_stdio(theirs)? })
    }

    /// The child's view, for its plan.
    pub(crate) fn child_ends(&self) -> plan::ChildEnds {
        plan::ChildEnds { sock: self.theirs.as_raw_fd(), peer: self.ours.as_raw_fd() }
    }
}

/// A pidfd of the calling process, for a child's plan: the child stops
/// waiting for us when it becomes readable (we died). Close-on-exec, so
/// the guest's payload never holds it.
pub(crate) fn lifeline() -> Result<OwnedFd, Error> {
    let pid = libc::pid_t::try_from(std::process::id()).unwrap_or(libc::pid_t::MAX);
    pidfd::open(pid).map_err(spawn_err("opening a pidfd of the calling process"))
}

fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    crate::sys::fd::dup_at_least(fd, 3)
}

/// One standard stream: the fd the child puts on 0/1/2 (if any) and the
/// caller's end of a pipe (if piped).
pub(crate) struct StdioPair {
    pub child: Option<OwnedFd>,
    pub parent: Option<OwnedFd>,
}

pub(crate) fn stdio_pair(stdio: &Stdio, input: bool) -> io::Result<StdioPair> {
    Ok(match stdio {
        Stdio::Inherit => StdioPair { child: None, parent: None },
        Stdio::Null => {
            let file = File::options().read(input).write(!input).open("/dev/null")?;
            StdioPair { child: Some(above_stdio(file.into())?), parent: None }
        }
        Stdio::Piped => {
            let (r, w) = pipe()?;
            if input {
                StdioPair { child: Some(r), parent: Some(w) }
            } else {
                StdioPair { child: Some(w), parent: Some(r) }
            }
        }
        Stdio::Fd(fd) => StdioPair { child: Some(above_stdio(fd.try_clone()?)?), parent: None },
    })
}

fn check_guest_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 64 {
        Some("it is longer than 64 bytes")
    } else if name.starts_with(['.', '-']) {
        Some("it starts with '.' or '-'")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        Some("only ASCII letters, digits, '.', '_' and '-' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName { name: name.to_string(), reason }),
        None => Ok(()),
    }
}

/// A cloned child and what it runs on. Until [`Spawned::released`] is
/// called (after the child exec'd), dropping it kills and reaps the child
/// before the stack is unmapped.
pub(crate) struct Spawned {
    pub pid: libc::pid_t,
    pub pidfd: Option<OwnedFd>,
    pub stack: Option<ChildStack>,
    /// Restores our dumpable flag once the child is done with our memory.
    pub dumpable: Option<DumpableGuard>,
}

impl Spawned {
    /// Kills the child (if still running) and reaps it.
    fn reap(&mut self) -> Option<i32> {
        let pidfd = self.pidfd.take()?;
        let _ = pidfd::send_signal(pidfd.as_fd(), libc::SIGKILL);
        pidfd::waitid(pidfd.as_fd(), false).ok().flatten()
    }

    /// The child exec'd: its stack is free, and the pidfd goes to the
    /// [`Guest`]. Only [`reap`](Self::reap) takes the pidfd earlier, and
    /// nothing is released after that; should it happen, the caller gets
    /// an error rather than a guest without a pidfd.
    fn released(mut self) -> Result<OwnedFd, SpawnError> {
        self.stack = None;
        self.dumpable = None;
        self.pidfd.take().ok_or_else(|| {
            SpawnError::new("keeping the child's pidfd", io::Error::other("the child was already reaped"))
        })
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.reap();
        // The stack is unmapped only now, after the child is gone.
        self.stack = None;
        self.dumpable = None;
    }
}

/// Spawns the guest described by `b`.
pub(crate) fn spawn(b: &GuestBuilder) -> Result<Guest, Error> {
    check_guest_name(&b.name)?;

    // 1. Check and render everything; nothing on the host changes yet.
    let fs = match &b.filesystem {
        Some(fs) if !b.context.effective_namespaces().contains(Namespaces::MOUNT) => {
            return Err(FsError::MountNamespaceRequired.into());
        }
        Some(fs) => Some(fs.plan()?),
        None => None,
    };
    let lookup_root = b.filesystem.as_ref().map_or_else(|| Path::new("/").to_path_buf(), |f| f.lookup_root());
    let ctx = b.context.plan(&b.name, &lookup_root)?;
    let mut ns = ctx.namespaces;
    let net = match &b.network {
        Some(network) => {
            let plan = network.plan(ns.contains(Namespaces::USER))?;
            // A pooled namespace is joined, not created.
            ns.set(Namespaces::NET, network.owns_namespace() && plan.pooled.is_none());
            Some(plan)
        }
        None => None,
    };
    let net_parent = net.as_ref().is_some_and(|n| n.needs_parent());
    // A fresh namespace with only `lo` is made beside the child, on
    // another CPU, while the child builds its mount table (`netns.rs`).
    // Without a mount table to build, the child would only wait for it:
    // the clone makes it then, which is cheaper than a helper.
    let maker_channel = match ns.contains(Namespaces::NET) && !net_parent && b.filesystem.is_some() {
        true => Some(FdChannel::new().map_err(spawn_err("creating the network namespace's socket pair"))?),
        false => None,
    };
    if maker_channel.is_some() {
        ns.remove(Namespaces::NET);
    }
    let RenderedCommand { program, argv, envp, search_path, cwd } = b.command.render()?;
    let use_init = ns.contains(Namespaces::PID) && b.init == Init::Builtin;
    // The guest's groups, with their limits; removed again if anything
    // below fails (dropped after `spawned`, so after the child is reaped).
    // Without a user namespace the child joins its groups itself, so the
    // v1 groups can be made after the clone, while it builds its mounts.
    let mut cgroups = match &b.resources {
        Some(r) => Some(resources::create(r, &b.name, ctx.userns.is_none())?),
        None => None,
    };
    let late_channel = match cgroups.as_ref().is_some_and(|g| g.pending_count() > 0) {
        true => Some(FdChannel::new().map_err(spawn_err("creating the cgroups' socket pair"))?),
        false => None,
    };
    // A namespace from a pool exists already: its links are made now,
    // before there is a process to wait on them.
    let pre_links = match net.as_ref() {
        Some(n) if !n.links.is_empty() => match &n.pooled {
            Some(fd) => Some(crate::net::setup(n, fd.as_fd(), Path::new("a pooled network namespace"))?),
            None => None,
        },
        _ => None,
    };

    // 2. Pipes and stdio.
    let (err_r, err_w) = pipe().map_err(spawn_err("creating the error pipe"))?;
    let sync = match ctx.userns.is_some() || net_parent {
        true => Some(pipe().map_err(spawn_err("creating the handshake pipe"))?),
        false => None,
    };
    let status = match use_init {
        true => Some(pipe().map_err(spawn_err("creating the status pipe"))?),
        false => None,
    };
    let stdin = stdio_pair(&b.command.stdin, true).map_err(spawn_err("opening stdin"))?;
    let stdout = stdio_pair(&b.command.stdout, false).map_err(spawn_err("opening stdout"))?;
    let stderr = stdio_pair(&b.command.stderr, false).map_err(spawn_err("opening stderr"))?;
    let raw = |fd: &Option<OwnedFd>| fd.as_ref().map_or(-1, |f| f.as_raw_fd());
    let init_fds = match &status {
        Some((_, status_w)) => {
            let memfd = memfd::init_image().map_err(spawn_err("loading the built-in init"))?;
            Some((memfd.as_raw_fd(), err_w.as_raw_fd(), status_w.as_raw_fd()))
        }
        None => None,
    };

    let lifeline = lifeline()?;
    let mut plan = ChildPlan {
        err_fd: err_w.as_raw_fd(),
        sync_fd: sync.as_ref().map_or(-1, |(r, _)| r.as_raw_fd()),
        sync_peer: sync.as_ref().map_or(-1, |(_, w)| w.as_raw_fd()),
        lifeline: lifeline.as_raw_fd(),
        status_fd: status.as_ref().map_or(-1, |(_, w)| w.as_raw_fd()),
        become_root: ctx.userns.as_ref().is_some_and(|u| u.maps_root),
        pdeathsig: ctx.pdeathsig,
        // A child with a user namespace may not write the host's cgroup
        // files: the parent moves it during the handshake instead.
        cgroup_dirs: match (&cgroups, &ctx.userns) {
            (Some(groups), None) => groups.dir_fds(),
            _ => Vec::new(),
        },
        into_cgroup: ctx.userns.is_none() && cgroups.as_ref().is_some_and(|g| g.v2_fd().is_some()),
        late_cgroups: match (&late_channel, &cgroups) {
            (Some(channel), Some(groups)) => Some(plan::LateCgroups {
                ends: channel.child_ends(),
                count: groups.pending_count() as u32,
                first_index: groups.groups().len() as u32,
            }),
            _ => None,
        },
        unshare_cgroup: ns.contains(Namespaces::CGROUP),
        time_offsets: None,
        netns_fd: net.as_ref().and_then(|n| n.join_fd()).unwrap_or(-1),
        loopback_up: ns.contains(Namespaces::NET),
        netns_maker: maker_channel.as_ref().map(|channel| plan::NetnsJoin {
            ends: channel.child_ends(),
            before_mounts: b.filesystem.as_ref().is_some_and(|f| f.mounts_sysfs()),
        }),
        hostname: ctx.hostname.clone(),
        domainname: ctx.domainname.clone(),
        mount_propagation: match (ns.contains(Namespaces::MOUNT), &b.filesystem) {
            (false, _) => 0,
            (true, Some(f)) => f.propagation.flags(),
            (true, None) => crate::fs::Propagation::Private.flags(),
        },
        fs,
        rlimits: ctx.rlimits.clone(),
        cwd,
        creds: ctx.creds.clone(),
        caps: ctx.caps,
        no_new_privs: ctx.no_new_privs,
        stdio: [raw(&stdin.child), raw(&stdout.child), raw(&stderr.child)],
        max_fd: max_fd(),
        exec: ExecPlan::new(program, search_path, argv, envp, init_fds),
        join: None,
    };

    // 3. Clone. Namespaces that must be created after the child joined
    // its cgroups (cgroup) or wrote its offsets (time) are left to it.
    let clone_flags = (ns - Namespaces::CGROUP - Namespaces::TIME).bits() as u64;
    if let Some(clocks) = ctx.clocks {
        plan.time_offsets = Some(context::time_offsets(clocks));
    }
    let stack = ChildStack::new(CHILD_STACK).map_err(spawn_err("mapping the child's stack"))?;
    if let Some(init) = plan.exec.init.as_mut() {
        init.payload_stack =
            Some(ChildStack::new(PAYLOAD_STACK).map_err(spawn_err("mapping the payload's first stack"))?);
    }
    let dumpable = DumpableGuard::hold();
    // `maker` is bound after `spawned`, so on an early return it is killed
    // and reaped before the child: it uses the child's pidfd by number.
    let (spawned, maker) = {
        let _blocked = BlockedSignals::block_all().map_err(spawn_err("blocking signals"))?;
        let cloned =
            child::clone_child(&plan, &stack, clone_flags, true, cgroups.as_ref().and_then(|g| g.v2_fd()))
                .map_err(|e| SpawnError::new(format!("cloning with flags {ns:?}"), e))?;
        let maker = match maker_channel {
            Some(channel) => Some(
                netns::Maker::start(channel, &cloned, ctx.userns.is_some())
                    .map_err(spawn_err("starting the network namespace's maker")),
            ),
            None => None,
        };
        let spawned = Spawned {
            pid: cloned.pid,
            pidfd: Some(cloned.pidfd),
            stack: Some(stack),
            dumpable: Some(dumpable),
        };
        (spawned, maker.transpose()?)
    };
    let pid = spawned.pid;
    // The child has its own copies of these now.
    drop(err_w);
    drop((stdin.child, stdout.child, stderr.child));
    let status_r = status.map(|(r, _w)| r);

    // 4. The handshake: only the parent may write the id maps, and it
    // makes the guest's links (removed again if anything below fails).
    let mut links = pre_links;
    if let Some((sync_r, sync_w)) = sync {
        if let Some(userns) = &ctx.userns {
            userns.write(spawned.pid).map_err(|(path, e)| SpawnError::new(format!("writing {path}"), e))?;
            if let Some(groups) = &cgroups {
                groups.join(spawned.pid)?;
            }
        }
        if let Some(net) = net.as_ref().filter(|n| n.needs_parent()) {
            let (ns, path) = crate::net::child_netns(spawned.pid)?;
            links = Some(crate::net::setup(net, ns.as_fd(), &path)?);
        }
        // Our read end stays open until the byte is written: should the
        // child have died meanwhile, the write still succeeds (the pipe
        // has a reader), where it would otherwise raise SIGPIPE, which
        // kills an embedding program that does not ignore it.
        File::from(sync_w).write_all(&[1]).map_err(spawn_err("releasing the child"))?;
        drop(sync_r);
    }
    // The v1 groups, made while the child builds its mounts; it joins
    // them once their fds arrive. Should it have failed meanwhile, the
    // sends fail and its report waits on the error pipe.
    if let (Some(channel), Some(groups)) = (late_channel, cgroups.as_mut()) {
        drop(channel.theirs);
        for fd in groups.create_pending()? {
            let _ = crate::sys::call::send_with_fd(channel.ours.as_raw_fd(), &[1], fd);
        }
    }
    if let Some(maker) = maker {
        maker.finish().map_err(spawn_err("reaping the network namespace's maker"))?;
    }

    // 5. Wait for the exec.
    let pidfd = finish(spawned, err_r, &plan, b.command.get_program()).map_err(|e| match (e, &cgroups) {
        // Only the parent knows the paths of the cgroups the child joins.
        (Error::Setup(mut s), Some(groups)) if s.step == Step::JoinCgroup => {
            let index = cgroup_dirs_index(&s.subject);
            s.subject = groups.paths().nth(index).map(|p| p.display().to_string()).unwrap_or_default();
            Error::Setup(s)
        }
        (Error::Setup(mut s), _) if s.step == Step::JoinNetwork => {
            s.subject = net.as_ref().map(|n| n.join_label.clone()).unwrap_or_default();
            Error::Setup(s)
        }
        (e, _) => e,
    })?;
    let enter = enter::EnterInfo::new(plan.creds.clone(), plan.caps, plan.no_new_privs, plan.rlimits.clone());
    Ok(Guest::new(
        b,
        pid,
        pidfd,
        status_r,
        enter,
        [stdin.parent, stdout.parent, stderr.parent],
        HostObjects { cgroups, links },
    ))
}

/// Waits until the child has exec'd (end of file on the error pipe) and
/// returns its pidfd; if a step failed, reaps the child and returns the
/// step's error.
pub(crate) fn finish(
    mut spawned: Spawned,
    err_r: OwnedFd,
    plan: &ChildPlan,
    program: &OsStr,
) -> Result<OwnedFd, Error> {
    let mut record = [0u8; wire::RECORD_LEN];
    let got = read_record(err_r, &mut record).map_err(spawn_err("reading the error pipe"))?;
    if got == 0 {
        return Ok(spawned.released()?);
    }
    spawned.reap();
    drop(spawned);
    if got != wire::RECORD_LEN {
        let short = io::Error::new(io::ErrorKind::UnexpectedEof, "short failure record");
        return Err(SpawnError::new("reading the error pipe", short).into());
    }
    let (code, errno, detail) = wire::decode(&record);
    let step = Step::from_wire(code).ok_or_else(|| {
        SpawnError::new("reading the error pipe", io::Error::other(format!("unknown step {code}")))
    })?;
    Err(SetupError {
        step,
        subject: describe(program, plan, step, detail),
        source: io::Error::from_raw_os_error(errno),
    }
    .into())
}

/// The index in a `cgroup #N` subject made by [`describe`].
fn cgroup_dirs_index(subject: &str) -> usize {
    subject.strip_prefix("cgroup #").and_then(|n| n.parse().ok()).unwrap_or(usize::MAX)
}

/// Reads one failure record or end of file; returns the bytes read.
fn read_record(fd: OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut file = File::from(fd);
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Names the value a failed step worked on.
fn describe(program: &OsStr, plan: &ChildPlan, step: Step, detail: u32) -> String {
    let lossy = |bytes: &Option<Vec<u8>>| {
        bytes.as_deref().map(|b| format!("{:?}", String::from_utf8_lossy(b))).unwrap_or_default()
    };
    let cap = |n: u32| {
        caps::all()
            .into_iter()
            .find(|c| u32::from(c.index()) == n)
            .map_or_else(|| format!("capability {n}"), |c| c.to_string())
    };
    match step {
        Step::SetHostname => lossy(&plan.hostname),
        Step::SetDomainname => lossy(&plan.domainname),
        Step::SetRlimit => plan.rlimits.get(detail as usize).map_or_else(String::new, |(resource, limit)| {
            format!("{} to {}/{}", context::rlimit_name_of(*resource), limit.rlim_cur, limit.rlim_max)
        }),
        Step::DropBounding | Step::RaiseAmbient => cap(detail),
        Step::SetUid => format!("{}", plan.creds.uid),
        Step::SetGid => format!("{}", plan.creds.gid),
        Step::SetGroups => format!("{:?}", plan.creds.groups),
        Step::SetCaps => format!("effective {:#x} permitted {:#x}", plan.caps.effective, plan.caps.permitted),
        Step::Chdir => plan.cwd.as_ref().map_or_else(String::new, |c| format!("{c:?}")),
        Step::Stdio => ["stdin", "stdout", "stderr"].get(detail as usize).unwrap_or(&"").to_string(),
        Step::Signals => format!("signal {detail}"),
        Step::LoopbackUp => "lo".into(),
        Step::Mount if detail == u32::MAX => "/ (making propagation private)".into(),
        Step::Mount => plan.fs.as_ref().map_or_else(String::new, |fs| fs.describe(detail)),
        Step::PivotRoot => plan.fs.as_ref().map_or_else(String::new, |fs| fs.root_description().to_string()),
        Step::SetTimeOffsets => "/proc/self/timens_offsets".into(),
        Step::Exec | Step::ResolveProgram | Step::ExecInit | Step::InitFork => format!("{program:?}"),
        Step::JoinGuest => "the guest's namespaces".into(),
        Step::CreateNetwork => "the guest's network namespace".into(),
        Step::JoinCgroup => format!("cgroup #{detail}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    #[test]
    fn guest_names() {
        assert!(check_guest_name("web-1.example_a").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_guest_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers_as_c_strings() {
        assert_eq!(plan::c_decimal(0), CString::from(c"0"));
        assert_eq!(plan::c_decimal(-1), CString::from(c"-1"));
        assert_eq!(plan::c_decimal(u64::MAX).to_str(), Ok("18446744073709551615"));
        assert_eq!(plan::c_octal(0o1777), CString::from(c"1777"));
    }

    #[test]
    fn exec_plan_pointers() {
        let plan = ExecPlan::new(
            CString::from(c"sh"),
            Vec::new(),
            vec![CString::from(c"sh"), CString::from(c"-c")],
            vec![CString::from(c"A=1")],
            Some((10, 11, 12)),
        );
        assert_eq!(plan.argv.len(), 3);
        assert!(plan.argv[2].is_null());
        let init = plan.init.as_ref().unwrap();
        let ptrs: Vec<_> = init.argv.iter().map(|c| c.get()).collect();
        assert_eq!(ptrs.len(), 8);
        let owned =
            |text: &std::ffi::CStr| plan._strings.iter().find(|s| s.as_c_str() == text).unwrap().as_ptr();
        assert_eq!(ptrs[0], owned(c"vguest-init"));
        assert_eq!(ptrs[1], owned(c"12"));
        assert_eq!(ptrs[2], init.pid_text.as_ptr().cast());
        assert_eq!(ptrs[3], owned(c"11"));
        assert_eq!(ptrs[plan::INIT_PROGRAM_SLOT], plan.program.as_ptr());
        assert_eq!(&ptrs[5..7], &plan.argv[..2]);
        assert!(ptrs[7].is_null());
    }
}
