//! Starting one child on a plan, the parent's side: what `spawn` (a new
//! guest) and `enter` (a process entering a running guest) share.
//!
//! The pipes and socket pairs the child inherits, its stack, the clone
//! (through the door in `child`), and reading the child's verdict from the
//! error pipe: end of file means it exec'd; a record (`plan::wire`) names
//! the step that failed, and the parent reaps the child before it returns
//! the step's [`SetupError`](crate::SetupError).
//!
//! Until the child has exec'd or been reaped, its stack and the plan must
//! stay mapped: [`Spawned`] owns the stack and kills and reaps the child
//! if the parent leaves early (an error or a panic).

mod describe;
pub(crate) mod enter;
pub(crate) mod maker;

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use crate::command::Stdio;
use crate::error::{Error, SetupError, SpawnError, Step};
use crate::plan::{self, ChildPlan, wire};
use crate::sys::{dumpable::DumpableGuard, pidfd, stack::ChildStack};

pub(crate) use self::describe::Subjects;

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
    crate::failpoint::check("pipe")?;
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
        crate::failpoint::check("socketpair")?;
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

/// Where a filter's listener comes back from the child
/// ([`plan::ListenerPlan`]): a socket pair, made only when the filters
/// want a listener.
pub(crate) struct ListenerChannel {
    ours: OwnedFd,
    /// Dropped once the child has its copy.
    theirs: Option<OwnedFd>,
}

impl ListenerChannel {
    /// The plan's part, and the channel if one of `filters` notifies.
    pub(crate) fn for_filters(
        filters: &plan::Filters,
    ) -> Result<(plan::ListenerPlan, Option<ListenerChannel>), Error> {
        let Some(index) = plan::ListenerPlan::wanted(filters) else {
            return Ok((plan::ListenerPlan::NONE, None));
        };
        let FdChannel { ours, theirs } =
            FdChannel::new().map_err(spawn_err("creating the socket pair for the filter's listener"))?;
        let plan = plan::ListenerPlan { filter: index as i32, sock: theirs.as_raw_fd() };
        Ok((plan, Some(ListenerChannel { ours, theirs: Some(theirs) })))
    }

    /// After the clone: the child holds its end.
    pub(crate) fn cloned(&mut self) {
        self.theirs = None;
    }

    /// After the exec: the listener the child sent before it.
    pub(crate) fn receive(mut self) -> Result<crate::SeccompListener, Error> {
        self.theirs = None;
        let fail = |e: io::Error| SpawnError::new("receiving the system call filter's listener", e);
        nix::fcntl::fcntl(&self.ours, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
            .map_err(|e| fail(e.into()))?;
        let mut byte = [0u8; 1];
        let (_, fd) = crate::sys::call::recv_with_fd(self.ours.as_raw_fd(), &mut byte)
            .map_err(|e| fail(io::Error::from_raw_os_error(e)))?;
        if fd < 0 {
            return Err(fail(io::Error::other("the child sent none")).into());
        }
        Ok(crate::SeccompListener::new(crate::sys::fd::own(fd)))
    }
}

/// A pidfd of the calling process, for a child's plan: the child stops
/// waiting for us when it becomes readable (we died). Close-on-exec, so
/// the guest's payload never holds it.
pub(crate) fn lifeline() -> Result<OwnedFd, Error> {
    let pid = libc::pid_t::try_from(std::process::id()).unwrap_or(libc::pid_t::MAX);
    pidfd::open(pid).map_err(spawn_err("opening a pidfd of the calling process"))
}

/// The read end of the owner's pipe, made on first use and kept, with
/// its write end, for the life of the process (two descriptors per
/// process, none per guest).
///
/// Nothing is ever written to it: its write end is held by this process
/// only (close-on-exec, so a child that execs drops its copy), so the pipe
/// hangs up when this process dies, however that happens and whichever of
/// its threads spawned the guest. The built-in init of every guest that
/// should not outlive its owner polls the read end and ends the guest then
/// (`PR_SET_PDEATHSIG` would follow the spawning thread instead). A child
/// this process forks without exec keeps the write end, and so the
/// guests, until it exits.
pub(crate) fn owner_pipe() -> Result<BorrowedFd<'static>, Error> {
    static PIPE: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();
    if let Some((read, _)) = PIPE.get() {
        return Ok(read.as_fd());
    }
    let ends = pipe().map_err(spawn_err("creating the owner's pipe"))?;
    // A racing thread may have won; either pipe is equally good.
    Ok(PIPE.get_or_init(|| ends).0.as_fd())
}

fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    crate::sys::fd::dup_at_least(fd, 3)
}

/// Moves an fd that lives as long as a guest (its pidfd) above the range
/// where the fds of a spawn are made, so that those stay low however many
/// guests live: a spawn child copies the caller's file table only up to
/// the highest fd it uses (`SharedFiles`). The range starts at a quarter
/// of the soft open-files limit, at most 1024; where nothing is free up
/// there, the fd stays where it is.
fn park_high(fd: OwnedFd) -> OwnedFd {
    let base = (max_fd() / 4).clamp(64, 1024) as i32;
    if fd.as_raw_fd() >= base {
        return fd;
    }
    crate::sys::fd::dup_at_least(&fd, base).unwrap_or(fd)
}

/// One standard stream: the fd the child puts on 0/1/2 (if any) and the
/// caller's end of a pipe (if piped).
#[derive(Default)]
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
    /// guest's handle. Only [`reap`](Self::reap) takes the pidfd earlier, and
    /// nothing is released after that; should it happen, the caller gets
    /// an error rather than a guest without a pidfd.
    fn released(mut self) -> Result<OwnedFd, SpawnError> {
        self.stack = None;
        self.dumpable = None;
        let pidfd = self.pidfd.take().ok_or_else(|| {
            SpawnError::new("keeping the child's pidfd", io::Error::other("the child was already reaped"))
        })?;
        Ok(park_high(pidfd))
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

/// Waits until the child has exec'd (end of file on the error pipe) and
/// returns its pidfd; if a step failed, reaps the child and returns the
/// step's error.
pub(crate) fn finish(
    mut spawned: Spawned,
    err_r: OwnedFd,
    plan: &ChildPlan,
    subjects: &Subjects<'_>,
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
    Err(record_error(&record, plan, subjects))
}

/// The error a child's failure record stands for.
fn record_error(record: &[u8; wire::RECORD_LEN], plan: &ChildPlan, subjects: &Subjects<'_>) -> Error {
    let (code, errno, detail) = wire::decode(record);
    match Step::from_wire(code) {
        Some(step) => SetupError::new(step, subjects.describe(plan, step, detail), errno).into(),
        None => {
            SpawnError::new("reading the error pipe", io::Error::other(format!("unknown step {code}"))).into()
        }
    }
}

/// The failure record a child has written on the error pipe, as the error
/// [`finish`] would return; `None` if there is none yet. Reads without
/// blocking (a record is one atomic write, so it is whole or absent).
pub(crate) fn reported_failure(err_r: &OwnedFd, plan: &ChildPlan, subjects: &Subjects<'_>) -> Option<Error> {
    let mut record = [0u8; wire::RECORD_LEN];
    let mut fds = [nix::poll::PollFd::new(err_r.as_fd(), nix::poll::PollFlags::POLLIN)];
    if nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).ok()? == 0 {
        return None;
    }
    let got = nix::unistd::read(err_r, &mut record).ok()?;
    (got == wire::RECORD_LEN).then(|| record_error(&record, plan, subjects))
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
