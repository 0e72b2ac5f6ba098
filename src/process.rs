//! Processes started inside a running guest with
//! [`Guest::exec`](crate::Guest::exec).

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{ChildStderr, ChildStdin, ChildStdout};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::context::SeccompListener;
use crate::error::Error;
use crate::signal::Signal;
use crate::status::ExitStatus;
use crate::sys::pidfd;

/// The collected result of [`GuestProcess::output`].
///
/// ```no_run
/// use vguest::{Command, Guest};
///
/// let guest = Guest::builder("g").command(Command::new("/bin/sleep").arg("60")).spawn()?;
/// let out = guest.exec(Command::new("/bin/hostname"))?.output()?;
/// assert_eq!(out.stdout, b"g\n");
/// # Ok::<(), vguest::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How the process ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (if piped).
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr (if piped).
    pub stderr: Vec<u8>,
}

/// Where an entered process stands, as whoever reaped it found.
#[derive(Debug, Clone, Copy)]
enum State {
    Running,
    Ended(ExitStatus),
    /// Reaped by someone else (`waitid` failed with `ECHILD`).
    Lost,
}

/// A process entered into a guest, shared by its [`GuestProcess`] and the
/// guest's handle: a guest's PID 1 ends only once every process of its
/// PID namespace is reaped (`pid_namespaces(7)`), and an entered process
/// is the caller's child, so waiting for the guest reaps those that have
/// ended and keeps their status for their handles.
#[derive(Debug)]
pub(crate) struct Entered {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    state: Mutex<State>,
}

impl Entered {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    fn ended(&self) -> bool {
        !matches!(*self.lock(), State::Running)
    }

    /// Reaps the process if it has exited; its status, or `None` while it
    /// runs.
    pub(crate) fn try_reap(&self) -> io::Result<Option<ExitStatus>> {
        let mut state = self.lock();
        if let State::Running = *state {
            *state = match pidfd::waitid(self.pidfd.as_fd(), true) {
                Ok(None) => State::Running,
                Ok(Some(raw)) => State::Ended(ExitStatus::from_raw(raw)),
                // Reaped by someone else: there is nothing left to reap.
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => State::Lost,
                // Still ours to reap (and the guest's wait depends on it).
                Err(e) => return Err(e),
            };
        }
        match *state {
            State::Running => Ok(None),
            State::Ended(status) => Ok(Some(status)),
            State::Lost => Err(io::Error::from_raw_os_error(libc::ECHILD)),
        }
    }

    /// Blocks until the process has ended and returns its status.
    fn reap(&self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_reap()? {
                return Ok(status);
            }
            // Readable once it has exited; whoever reaps it first (this
            // handle or the guest's) records the status.
            pidfd::wait_any(&[self.pidfd.as_fd()])?;
        }
    }
}

/// The processes entered into one guest, for reaping them when it ends.
#[derive(Debug, Default)]
pub(crate) struct EnteredSet(Mutex<Vec<Weak<Entered>>>);

impl EnteredSet {
    fn lock(&self) -> MutexGuard<'_, Vec<Weak<Entered>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `process`, forgetting those whose handles are gone or that
    /// have been reaped.
    pub(crate) fn add(&self, process: &Arc<Entered>) {
        let mut set = self.lock();
        set.retain(|w| w.upgrade().is_some_and(|e| !e.ended()));
        set.push(Arc::downgrade(process));
    }

    /// The entered processes whose handles live and that are not reaped.
    pub(crate) fn unreaped(&self) -> Vec<Arc<Entered>> {
        self.lock().iter().filter_map(Weak::upgrade).filter(|e| !e.ended()).collect()
    }
}

/// A process started inside a running guest, like `std::process::Child`.
///
/// It runs in every namespace of the guest (with a guest-side pid), in the
/// guest's cgroups, under the guest's root, with the guest's ids,
/// capabilities, limits and `no_new_privs`. Dropping the handle of a
/// process that is still running kills and reaps it. Waiting for the
/// guest reaps the entered processes that have ended (its PID 1 cannot
/// end before), and their handles then report the status so recorded.
///
/// ```no_run
/// use vguest::{Command, Guest, Stdio};
///
/// let guest = Guest::builder("g").command(Command::new("/bin/sleep").arg("60")).spawn()?;
/// let mut ps = guest.exec(Command::new("/bin/ps").stdout(Stdio::Piped))?;
/// let status = ps.wait()?;
/// # Ok::<(), vguest::Error>(())
/// ```
#[derive(Debug)]
pub struct GuestProcess {
    guest: String,
    process: Arc<Entered>,
    /// The listener of the guest's filter's `Notify` rules, as loaded
    /// for this process, until taken.
    listener: Option<SeccompListener>,
    /// The caller's end of the process's stdin, if piped.
    pub stdin: Option<ChildStdin>,
    /// The caller's end of the process's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The caller's end of the process's stderr, if piped.
    pub stderr: Option<ChildStderr>,
}

impl GuestProcess {
    pub(crate) fn new(
        guest: &str,
        pid: libc::pid_t,
        pidfd: OwnedFd,
        [stdin, stdout, stderr]: [Option<OwnedFd>; 3],
        listener: Option<SeccompListener>,
    ) -> Self {
        GuestProcess {
            guest: guest.to_string(),
            process: Arc::new(Entered { pid, pidfd, state: Mutex::new(State::Running) }),
            listener,
            stdin: stdin.map(ChildStdin::from),
            stdout: stdout.map(ChildStdout::from),
            stderr: stderr.map(ChildStderr::from),
        }
    }

    /// The process's pid on the host.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let p = guest.exec(vguest::Command::new("/bin/true"))?;
    /// println!("host pid {}", p.id());
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn id(&self) -> u32 {
        self.process.pid as u32
    }

    /// Takes the listener of the guest's [`SeccompAction::Notify`]
    /// rules for this process (each entered process loads the guest's
    /// filter anew, with a listener of its own): `None` if the filter has
    /// none, or it was taken already. Its intercepted calls fail with
    /// `ENOSYS` once it is dropped.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let mut p = guest.exec(vguest::Command::new("/bin/hostname").arg("web"))?;
    /// if let Some(listener) = p.take_seccomp_listener() {
    ///     let request = listener.receive();
    /// }
    /// # Ok::<(), vguest::Error>(())
    /// ```
    ///
    /// [`SeccompAction::Notify`]: crate::SeccompAction::Notify
    pub fn take_seccomp_listener(&mut self) -> Option<SeccompListener> {
        self.listener.take()
    }

    /// What the guest's handle keeps of this process, to reap it.
    pub(crate) fn shared(&self) -> &Arc<Entered> {
        &self.process
    }

    /// The process's pid inside the guest (the last `NSpid` entry of its
    /// `/proc/PID/status`), if it is still running.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let p = guest.exec(vguest::Command::new("/bin/sleep").arg("1"))?;
    /// assert!(p.guest_pid().unwrap() > 1);
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn guest_pid(&self) -> Option<u32> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid)).ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
        // Still ours: the pid was not reused while we read.
        pidfd::send_signal(self.process.pidfd(), 0).ok()?;
        line.split_whitespace().last()?.parse().ok()
    }

    /// A pidfd of the process.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let p = guest.exec(vguest::Command::new("/bin/true"))?;
    /// let fd = p.pidfd();
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.process.pidfd()
    }

    /// Sends `signal` to the process.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let p = guest.exec(vguest::Command::new("/bin/sleep").arg("60"))?;
    /// p.signal(vguest::Signal::SIGTERM)?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        if self.process.ended() {
            return Ok(());
        }
        match pidfd::send_signal(self.process.pidfd(), signal.as_raw()) {
            Err(e) if e.raw_os_error() != Some(libc::ESRCH) => Err(self.err("signalling", e)),
            _ => Ok(()),
        }
    }

    /// Kills the process (`SIGKILL`); does not wait.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let mut p = guest.exec(vguest::Command::new("/bin/sleep").arg("60"))?;
    /// p.kill()?;
    /// assert_eq!(p.wait()?.signal(), Some(9));
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn kill(&mut self) -> Result<(), Error> {
        self.signal(Signal::SIGKILL)
    }

    /// Waits for the process to end (closing its piped stdin first, and
    /// dropping its [`SeccompListener`] if it was not taken: no one would
    /// answer the calls it holds, which fail with `ENOSYS` instead).
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let status = guest.exec(vguest::Command::new("/bin/true"))?.wait()?;
    /// assert!(status.success());
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        drop(self.stdin.take());
        drop(self.listener.take());
        self.reap()
    }

    /// The status if the process has ended, without blocking.
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let mut p = guest.exec(vguest::Command::new("/bin/sleep").arg("1"))?;
    /// assert!(p.try_wait()?.is_none());
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        self.process.try_reap().map_err(|e| self.err("waiting for", e))
    }

    /// Waits for the process and collects its piped stdout and stderr
    /// (dropping a listener not taken, as [`wait`](Self::wait) does).
    ///
    /// ```no_run
    /// use vguest::{Command, Stdio};
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let out = guest.exec(Command::new("/bin/uname").arg("-n").stdout(Stdio::Piped))?.output()?;
    /// assert_eq!(out.stdout, b"g\n");
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn output(mut self) -> Result<Output, Error> {
        drop(self.stdin.take());
        drop(self.listener.take());
        let stderr = self.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = e.read_to_end(&mut buf);
                buf
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut out) = self.stdout.take() {
            out.read_to_end(&mut stdout).map_err(|e| self.err("reading the output of", e))?;
        }
        let stderr = stderr.map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        let status = self.wait()?;
        Ok(Output { status, stdout, stderr })
    }

    /// Waits for the process to end (if it has not been waited for yet).
    fn reap(&mut self) -> Result<ExitStatus, Error> {
        self.process.reap().map_err(|e| self.err("waiting for", e))
    }

    fn err(&self, op: &'static str, source: std::io::Error) -> Error {
        Error::Guest { op, guest: format!("{} (process {})", self.guest, self.process.pid), source }
    }
}

impl Drop for GuestProcess {
    fn drop(&mut self) {
        if !self.process.ended() {
            let _ = self.kill();
            let _ = self.reap();
        }
    }
}
