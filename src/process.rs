//! Processes started inside a running guest with
//! [`Guest::exec`](crate::Guest::exec).

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{ChildStderr, ChildStdin, ChildStdout};

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

/// A process started inside a running guest, like `std::process::Child`.
///
/// It runs in every namespace of the guest (with a guest-side pid), in the
/// guest's cgroups, under the guest's root, with the guest's ids,
/// capabilities, limits and `no_new_privs`. Dropping the handle of a
/// process that is still running kills and reaps it.
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
    pid: libc::pid_t,
    pidfd: OwnedFd,
    status: Option<ExitStatus>,
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
    ) -> Self {
        GuestProcess {
            guest: guest.to_string(),
            pid,
            pidfd,
            status: None,
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
        self.pid as u32
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
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
        // Still ours: the pid was not reused while we read.
        pidfd::send_signal(self.pidfd.as_fd(), 0).ok()?;
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
        self.pidfd.as_fd()
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
        if self.status.is_some() {
            return Ok(());
        }
        match pidfd::send_signal(self.pidfd.as_fd(), signal.as_raw()) {
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

    /// Waits for the process to end (closing its piped stdin first).
    ///
    /// ```no_run
    /// # let guest = vguest::Guest::builder("g").spawn()?;
    /// let status = guest.exec(vguest::Command::new("/bin/true"))?.wait()?;
    /// assert!(status.success());
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        drop(self.stdin.take());
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
        if self.status.is_none() {
            let raw = pidfd::waitid(self.pidfd.as_fd(), true).map_err(|e| self.err("waiting for", e))?;
            self.status = raw.map(ExitStatus::from_raw);
        }
        Ok(self.status)
    }

    /// Waits for the process and collects its piped stdout and stderr.
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
        if let Some(status) = self.status {
            return Ok(status);
        }
        let raw = pidfd::wait(self.pidfd.as_fd()).map_err(|e| self.err("waiting for", e))?;
        Ok(*self.status.insert(ExitStatus::from_raw(raw)))
    }

    fn err(&self, op: &'static str, source: std::io::Error) -> Error {
        Error::Guest { op, guest: format!("{} (process {})", self.guest, self.pid), source }
    }
}

impl Drop for GuestProcess {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.kill();
            let _ = self.reap();
        }
    }
}
