//! How a guest starts and ends: what runs as its PID 1, and the exit
//! status of its payload.

use std::fmt;

use crate::signal::Signal;

/// What runs as PID 1 of a guest with its own PID namespace.
///
/// ```
/// use vguest::Init;
///
/// assert_eq!(Init::default(), Init::Builtin);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Init {
    /// A built-in, allocation-free init of about 2 KiB: it reaps
    /// orphans, forwards `SIGHUP`, `SIGINT`, `SIGQUIT`, `SIGUSR1`,
    /// `SIGUSR2`, `SIGPIPE`, `SIGALRM`, `SIGTERM`, `SIGCONT`, `SIGTSTP`,
    /// `SIGTTIN`, `SIGTTOU`, `SIGURG` and `SIGWINCH` to the payload, and
    /// exits with the payload's status (as `tini` does).
    #[default]
    Builtin,
    /// The payload itself is PID 1 (a guest running its own
    /// `/sbin/init`). It must reap its orphans, and receives only the
    /// signals it installs handlers for (`pid_namespaces(7)`).
    Payload,
}

/// How a guest's payload ended.
///
/// ```
/// use vguest::ExitStatus;
///
/// let status = ExitStatus::from_raw(3 << 8);
/// assert_eq!(status.code(), Some(3));
/// assert!(!status.success());
/// assert_eq!(ExitStatus::from_raw(9).signal(), Some(9));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus {
    raw: i32,
    oom_killed: bool,
}

impl ExitStatus {
    /// A status from a raw `waitpid` status word.
    ///
    /// ```
    /// use vguest::ExitStatus;
    ///
    /// // exit(3): waitpid(2) keeps the code in the second byte.
    /// let status = ExitStatus::from_raw(3 << 8);
    /// assert_eq!(status.code(), Some(3));
    /// ```
    pub fn from_raw(raw: i32) -> Self {
        ExitStatus { raw, oom_killed: false }
    }

    /// The raw `waitpid` status word.
    ///
    /// ```
    /// use vguest::ExitStatus;
    ///
    /// assert_eq!(ExitStatus::from_raw(0x0100).into_raw(), 0x0100);
    /// ```
    pub fn into_raw(self) -> i32 {
        self.raw
    }

    /// The exit code, if the payload exited.
    ///
    /// ```
    /// use vguest::ExitStatus;
    ///
    /// assert_eq!(ExitStatus::from_raw(42 << 8).code(), Some(42));
    /// // Killed by a signal: no exit code (not 128 + n, as a shell shows it).
    /// assert_eq!(ExitStatus::from_raw(libc::SIGKILL).code(), None);
    /// ```
    pub fn code(&self) -> Option<i32> {
        libc::WIFEXITED(self.raw).then(|| libc::WEXITSTATUS(self.raw))
    }

    /// The signal that killed the payload, if one did.
    ///
    /// ```
    /// use vguest::ExitStatus;
    ///
    /// assert_eq!(ExitStatus::from_raw(libc::SIGTERM).signal(), Some(libc::SIGTERM));
    /// assert_eq!(ExitStatus::from_raw(0).signal(), None);
    /// ```
    pub fn signal(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.raw).then(|| libc::WTERMSIG(self.raw))
    }

    /// Whether the payload dumped core when killed.
    ///
    /// ```
    /// use vguest::ExitStatus;
    ///
    /// // The kernel sets 0x80 next to the signal number when it wrote a core.
    /// let dumped = ExitStatus::from_raw(libc::SIGSEGV | 0x80);
    /// assert_eq!(dumped.signal(), Some(libc::SIGSEGV));
    /// assert!(dumped.core_dumped());
    /// assert!(!ExitStatus::from_raw(libc::SIGKILL).core_dumped());
    /// ```
    pub fn core_dumped(&self) -> bool {
        libc::WIFSIGNALED(self.raw) && libc::WCOREDUMP(self.raw)
    }

    /// Whether the payload exited with code 0.
    ///
    /// ```
    /// use vguest::ExitStatus;
    ///
    /// assert!(ExitStatus::from_raw(0).success());
    /// assert!(!ExitStatus::from_raw(1 << 8).success());
    /// assert!(!ExitStatus::from_raw(libc::SIGKILL).success());
    /// ```
    pub fn success(&self) -> bool {
        self.code() == Some(0)
    }

    /// Whether the kernel's OOM killer ended a process of the guest
    /// because it reached its memory limit ([`Resources::memory_max`](crate::Resources::memory_max)),
    /// read from the guest's memory group when it was reaped. The payload
    /// itself may have been the victim (then [`signal`](Self::signal) is
    /// `Some(9)`) or one of its children (then the payload's own status
    /// tells how it took that).
    ///
    /// ```
    /// # use vguest::ExitStatus;
    /// assert!(!ExitStatus::from_raw(9).oom_killed());
    /// ```
    pub fn oom_killed(&self) -> bool {
        self.oom_killed
    }

    /// The same status, marked as ended (or not) by the OOM killer.
    pub(crate) fn with_oom_killed(self, oom_killed: bool) -> Self {
        ExitStatus { oom_killed, ..self }
    }
}

impl fmt::Debug for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExitStatus({self})")
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code(), self.signal()) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (_, Some(sig)) => match Signal::try_from(sig) {
                Ok(s) => write!(f, "killed by {s}"),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
            _ => write!(f, "wait status {:#x}", self.raw),
        }?;
        if self.oom_killed { f.write_str(" (out of memory)") } else { Ok(()) }
    }
}
