//! The guest handle: the running guest, modelled on
//! `std::process::Child`. `spawn` makes it from [`GuestParts`]; how it
//! ends (reaping, teardown, drop) is `end.rs`; what it shares with
//! [`AttachedGuest`] is `running.rs`.

mod end;

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::{ChildStderr, ChildStdin, ChildStdout};

use crate::attach::AttachedGuest;
use crate::command::Command;
use crate::context::SeccompListener;
use crate::error::Error;
use crate::launch::enter::EnterInfo;
use crate::net::NetLinks;
use crate::process::GuestProcess;
use crate::resources::{Cgroups, Stats};
use crate::running::{Running, login_shell};
use crate::signal::Signal;
use crate::status::ExitStatus;
use crate::sys::pidfd;

/// What a spawn hands to the guest's handle.
pub(crate) struct GuestParts {
    pub name: String,
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
    pub builtin_init: bool,
    pub kill_on_drop: bool,
    pub own_pid_ns: bool,
    pub enter: EnterInfo,
    /// The caller's ends of the payload's piped stdin, stdout, stderr.
    pub stdio: [Option<OwnedFd>; 3],
    pub cgroups: Option<Cgroups>,
    pub links: Option<NetLinks>,
    pub listener: Option<SeccompListener>,
}

/// A running guest.
///
/// Like `std::process::Child`: wait for it, signal it, read and write
/// its piped standard streams. Unlike `Child`, dropping a `Guest` kills
/// it and removes everything made for it, and so does the death of the
/// process that spawned it (unless
/// [`kill_on_drop(false)`](crate::GuestBuilder::kill_on_drop) or
/// [`detach`](Guest::detach)).
///
/// ```no_run
/// use std::io::Read;
/// use vguest::{Command, Guest, Stdio};
///
/// let mut guest = Guest::builder("hello")
///     .command(Command::new("/bin/hostname").stdout(Stdio::Piped))
///     .spawn()?;
/// let mut out = String::new();
/// guest.stdout.take().unwrap().read_to_string(&mut out).unwrap();
/// assert_eq!(out.trim(), "hello");
/// assert!(guest.wait()?.success());
/// # Ok::<(), vguest::Error>(())
/// ```
#[derive(Debug)]
pub struct Guest {
    /// Its name, PID 1, how to enter it, and its cgroups (until it has
    /// ended and they are removed).
    running: Running,
    /// Whether PID 1 is the built-in init, which reports the payload's
    /// wait status and, while `kill_on_drop` holds, ends the guest when
    /// this process dies.
    builtin_init: bool,
    status: Option<ExitStatus>,
    kill_on_drop: bool,
    /// Whether the guest has its own PID namespace: then nothing of it
    /// outlives its PID 1 (the kernel kills the rest before PID 1 is
    /// reaped).
    own_pid_ns: bool,
    /// The host side of the guest's links, until it has ended.
    links: Option<NetLinks>,
    /// The listener of its filter's `Notify` rules, until taken.
    listener: Option<SeccompListener>,
    /// The caller's end of the payload's stdin, if piped.
    pub stdin: Option<ChildStdin>,
    /// The caller's end of the payload's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The caller's end of the payload's stderr, if piped.
    pub stderr: Option<ChildStderr>,
}

impl Guest {
    pub(crate) fn new(parts: GuestParts) -> Guest {
        let GuestParts {
            name,
            pid,
            pidfd,
            builtin_init,
            kill_on_drop,
            own_pid_ns,
            enter,
            stdio,
            cgroups,
            links,
            listener,
        } = parts;
        let [stdin, stdout, stderr] = stdio;
        Guest {
            running: Running { name, pid, pidfd, enter, cgroups, entered: Default::default() },
            builtin_init,
            status: None,
            kill_on_drop,
            own_pid_ns,
            links,
            listener,
            stdin: stdin.map(ChildStdin::from),
            stdout: stdout.map(ChildStdout::from),
            stderr: stderr.map(ChildStderr::from),
        }
    }

    /// The guest's name.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("web1").spawn()?;
    /// assert_eq!(guest.name(), "web1");
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.running.name
    }

    /// The host pid of the guest's first process (its PID 1).
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// println!("guest runs as host pid {}", guest.id());
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn id(&self) -> u32 {
        self.running.id()
    }

    /// A pidfd of the guest's first process: readable when it exits,
    /// usable with `setns(2)` and `pidfd_send_signal(2)`.
    ///
    /// ```no_run
    /// use std::os::fd::AsRawFd;
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let fd = guest.pidfd().as_raw_fd();
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.running.pidfd()
    }

    /// Takes the listener of the guest's [`SeccompAction::Notify`]
    /// rules: `None` if its filter has none, or it was taken already.
    /// The calls those rules intercept wait until the listener answers
    /// them, and fail with `ENOSYS` once it is dropped (with the handle,
    /// if it is never taken).
    ///
    /// ```no_run
    /// use vguest::{Context, Guest, Seccomp, SeccompAction, SeccompRule};
    ///
    /// let filter = Seccomp::default().rule(SeccompRule::new("sethostname", SeccompAction::Notify));
    /// let mut guest = Guest::builder("g").context(Context::new().seccomp(filter)).spawn()?;
    /// let listener = guest.take_seccomp_listener().unwrap();
    /// # Ok::<(), vguest::Error>(())
    /// ```
    ///
    /// [`SeccompAction::Notify`]: crate::SeccompAction::Notify
    pub fn take_seccomp_listener(&mut self) -> Option<SeccompListener> {
        self.listener.take()
    }

    /// Sends `signal` to the guest. With the built-in init, termination
    /// and job-control signals are forwarded to the payload; `SIGKILL`
    /// ends the whole guest; `SIGRTMAX` is the init's own (see
    /// [`detach`](Self::detach)).
    ///
    /// ```no_run
    /// use vguest::Signal;
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// guest.signal(Signal::SIGTERM)?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        if self.status.is_some() {
            return Ok(());
        }
        // ESRCH: it already exited and awaits reaping.
        self.running.signal(signal.as_raw()).map(drop).map_err(|e| self.running.err("signalling", e))
    }

    /// Kills the guest: `SIGKILL` to its PID 1, which (with a PID
    /// namespace) ends every process in it. Does not wait.
    ///
    /// ```no_run
    /// # let mut guest = vguest::Guest::builder("g").spawn()?;
    /// guest.kill()?;
    /// let status = guest.wait()?;
    /// assert_eq!(status.signal(), Some(9));
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn kill(&mut self) -> Result<(), Error> {
        self.signal(Signal::SIGKILL)
    }

    /// Kills every process of the guest at once, wherever it sits in the
    /// guest's process tree (v2 `cgroup.kill`, or freeze, kill and thaw on
    /// v1). Without [`Resources`](crate::Resources) this is [`kill`](Self::kill), which
    /// reaches every process only with a PID namespace. Does not wait.
    ///
    /// ```no_run
    /// use vguest::{Command, Guest, Namespaces, Context, Resources};
    ///
    /// let mut guest = Guest::builder("g")
    ///     .context(Context::new().namespaces(Namespaces::default() - Namespaces::PID))
    ///     .resources(Resources::new())
    ///     .command(Command::new("/bin/sh").args(["-c", "sleep 100 & sleep 100"]))
    ///     .spawn()?;
    /// guest.kill_all()?; // both sleeps, not only the shell
    /// guest.wait()?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn kill_all(&mut self) -> Result<(), Error> {
        match &self.running.cgroups {
            Some(groups) if self.status.is_none() => Ok(groups.kill_all()?),
            _ => self.kill(),
        }
    }

    /// Freezes every process of the guest (v2 `cgroup.freeze`, v1
    /// freezer): they stop where they are, use no CPU and do not see
    /// signals until [`resume`](Self::resume). Returns once the kernel
    /// reports them frozen.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").resources(vguest::Resources::new()).spawn()?;
    /// guest.pause()?;
    /// // ... snapshot, inspect ...
    /// guest.resume()?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn pause(&self) -> Result<(), Error> {
        self.running.pause()
    }

    /// Lets a [`pause`](Self::pause)d guest run again.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").resources(vguest::Resources::new()).spawn()?;
    /// # guest.pause()?;
    /// guest.resume()?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn resume(&self) -> Result<(), Error> {
        self.running.resume()
    }

    /// What the guest uses now: memory, CPU time, processes, OOM kills, as
    /// its own groups account it.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").resources(vguest::Resources::new()).spawn()?;
    /// let stats = guest.stats()?;
    /// println!("{:?} bytes, {:?} of CPU", stats.memory_current, stats.cpu_usage);
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn stats(&self) -> Result<Stats, Error> {
        self.running.stats()
    }

    /// The guest's cgroup directories, one per hierarchy (empty without
    /// [`Resources`](crate::Resources), and once the guest has ended).
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").resources(vguest::Resources::new()).spawn()?;
    /// for dir in guest.cgroup_paths() {
    ///     println!("{}", dir.display()); // e.g. /sys/fs/cgroup/pids/vguest/g.4242.0
    /// }
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn cgroup_paths(&self) -> Vec<&Path> {
        self.running.cgroup_paths()
    }

    /// The names of the guest's host-side links (the veth ends), while it
    /// runs.
    ///
    /// ```no_run
    /// use vguest::{Guest, Network, Veth};
    ///
    /// let guest = Guest::builder("g").network(Network::new().veth(Veth::new("vgg"))).spawn()?;
    /// assert_eq!(guest.host_links(), ["vgg"]);
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn host_links(&self) -> Vec<&str> {
        self.links.as_ref().map(|l| l.names().collect()).unwrap_or_default()
    }

    /// Waits for the guest to end and returns the payload's status
    /// (closing the payload's piped stdin first, and dropping the
    /// [`SeccompListener`] if it was not taken: no one would answer the
    /// calls it holds, which fail with `ENOSYS` instead).
    ///
    /// ```no_run
    /// # let mut guest = vguest::Guest::builder("g").spawn()?;
    /// let status = guest.wait()?;
    /// println!("guest ended: {status}");
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        drop(self.stdin.take());
        drop(self.listener.take());
        self.reap()
    }

    /// Returns the payload's status if the guest has ended, without
    /// blocking.
    ///
    /// ```no_run
    /// # let mut guest = vguest::Guest::builder("g").spawn()?;
    /// if guest.try_wait()?.is_none() {
    ///     println!("still running");
    /// }
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        if let Some(status) = self.status {
            return self.teardown(status).map(Some);
        }
        self.reap_entered();
        match pidfd::peek(self.running.pidfd(), true).map_err(|e| self.err("waiting for", e))? {
            Some(_) => self.reaped().map(Some),
            None => Ok(None),
        }
    }

    /// Starts `command` inside the running guest: in all its namespaces
    /// (with a guest-side pid), its root, and with the ids, capabilities,
    /// limits and `no_new_privs` of the guest's payload: never more
    /// privilege than the guest has. This is `vserver NAME exec`.
    ///
    /// Fails with [`Error::Exited`] once the guest has ended.
    ///
    /// ```no_run
    /// use vguest::{Command, Guest, Stdio};
    ///
    /// let guest = Guest::builder("web1").command(Command::new("/bin/sleep").arg("60")).spawn()?;
    /// let out = guest.exec(Command::new("/bin/hostname").stdout(Stdio::Piped))?.output()?;
    /// assert_eq!(out.stdout, b"web1\n");
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn exec(&self, command: Command) -> Result<GuestProcess, Error> {
        if self.status.is_some() {
            return Err(Error::Exited { guest: self.running.name.clone() });
        }
        self.running.exec(&command)
    }

    /// Runs an interactive login shell (`/bin/sh -l`) inside the guest on
    /// the caller's standard streams and waits for it: `vserver NAME
    /// enter`. The shell has a session of its own, so the caller's terminal
    /// is not its controlling terminal (see the crate's security model):
    /// it reads and writes it, without job control.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let status = guest.enter()?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn enter(&self) -> Result<ExitStatus, Error> {
        self.exec(login_shell())?.wait()
    }

    /// Finds a running guest by the host pid of its PID 1 (as
    /// [`detach`](Self::detach) or [`id`](Self::id) returned it), to
    /// enter a guest that another process spawned.
    ///
    /// Processes started through it get the guest's system call filters:
    /// this process's own record of them if it spawned the guest, else
    /// those of the guest's PID 1, read with `ptrace` at the first entry
    /// (which stops that process for a moment, and needs `CAP_SYS_ADMIN`),
    /// else the guest's
    /// own filter its spawner kept on its cgroups. Should none of these
    /// work (another process traces PID 1, and the guest has no groups),
    /// [`AttachedGuest::exec`] refuses rather than widen what the guest
    /// can do.
    ///
    /// ```no_run
    /// let guest = vguest::Guest::attach(4242)?;
    /// let status = guest.exec(vguest::Command::new("/bin/true"))?.wait()?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn attach(pid: u32) -> Result<AttachedGuest, Error> {
        AttachedGuest::attach(pid)
    }

    /// Lets the guest run on after this handle is dropped, and after this
    /// process ends: nothing is killed or removed. Returns the guest's host
    /// pid.
    ///
    /// Until then, a guest with the built-in init ends when the process
    /// that spawned it dies, however it dies; detaching sends the init
    /// `SIGRTMAX`, which it takes (only from outside the guest) as the
    /// word to stop watching.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let pid = guest.detach();
    /// println!("guest keeps running as pid {pid}");
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn detach(mut self) -> u32 {
        let watched = self.builtin_init && self.kill_on_drop;
        self.kill_on_drop = false;
        // Marked first: a sweep after this process has gone must find the
        // groups of a guest that outlives it as intended.
        if let Some(groups) = self.running.cgroups.as_mut() {
            groups.detach();
        }
        if watched && self.status.is_none() {
            // The init stops watching this process; should it have ended
            // already, there is nothing left to watch for.
            let _ = self.running.signal(crate::plan::wire::DETACH_SIGNAL);
        }
        self.id()
    }
}
