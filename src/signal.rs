//! Signals, by the names `signal(7)` gives them: what a guest is sent,
//! what its parent-death signal is, what ended it.

use std::fmt;

/// A signal: what [`Guest::signal`](crate::Guest::signal) sends,
/// [`Context::parent_death_signal`](crate::Context::parent_death_signal)
/// delivers and [`ExitStatus`](crate::ExitStatus) reports.
///
/// The standard signals are constants named as in `signal(7)`; a
/// real-time signal comes from [`Signal::realtime`], any number the
/// kernel knows from [`Signal::from_raw`].
///
/// ```
/// use vguest::{Context, Signal};
///
/// // The guest gets SIGTERM when the thread that spawned it ends.
/// let ctx = Context::new().parent_death_signal(Signal::SIGTERM);
/// assert_eq!(Signal::SIGTERM.as_raw(), libc::SIGTERM);
/// assert_eq!(Signal::from_raw(15), Some(Signal::SIGTERM));
/// assert_eq!(Signal::SIGTERM.to_string(), "SIGTERM");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

/// The standard signals, with their names.
const NAMED: [(Signal, &str); 31] = [
    (Signal::SIGHUP, "SIGHUP"),
    (Signal::SIGINT, "SIGINT"),
    (Signal::SIGQUIT, "SIGQUIT"),
    (Signal::SIGILL, "SIGILL"),
    (Signal::SIGTRAP, "SIGTRAP"),
    (Signal::SIGABRT, "SIGABRT"),
    (Signal::SIGBUS, "SIGBUS"),
    (Signal::SIGFPE, "SIGFPE"),
    (Signal::SIGKILL, "SIGKILL"),
    (Signal::SIGUSR1, "SIGUSR1"),
    (Signal::SIGSEGV, "SIGSEGV"),
    (Signal::SIGUSR2, "SIGUSR2"),
    (Signal::SIGPIPE, "SIGPIPE"),
    (Signal::SIGALRM, "SIGALRM"),
    (Signal::SIGTERM, "SIGTERM"),
    (Signal::SIGSTKFLT, "SIGSTKFLT"),
    (Signal::SIGCHLD, "SIGCHLD"),
    (Signal::SIGCONT, "SIGCONT"),
    (Signal::SIGSTOP, "SIGSTOP"),
    (Signal::SIGTSTP, "SIGTSTP"),
    (Signal::SIGTTIN, "SIGTTIN"),
    (Signal::SIGTTOU, "SIGTTOU"),
    (Signal::SIGURG, "SIGURG"),
    (Signal::SIGXCPU, "SIGXCPU"),
    (Signal::SIGXFSZ, "SIGXFSZ"),
    (Signal::SIGVTALRM, "SIGVTALRM"),
    (Signal::SIGPROF, "SIGPROF"),
    (Signal::SIGWINCH, "SIGWINCH"),
    (Signal::SIGIO, "SIGIO"),
    (Signal::SIGPWR, "SIGPWR"),
    (Signal::SIGSYS, "SIGSYS"),
];

#[allow(missing_docs)] // Each is the signal of the same name in signal(7).
impl Signal {
    pub const SIGHUP: Signal = Signal(libc::SIGHUP);
    pub const SIGINT: Signal = Signal(libc::SIGINT);
    pub const SIGQUIT: Signal = Signal(libc::SIGQUIT);
    pub const SIGILL: Signal = Signal(libc::SIGILL);
    pub const SIGTRAP: Signal = Signal(libc::SIGTRAP);
    pub const SIGABRT: Signal = Signal(libc::SIGABRT);
    pub const SIGBUS: Signal = Signal(libc::SIGBUS);
    pub const SIGFPE: Signal = Signal(libc::SIGFPE);
    pub const SIGKILL: Signal = Signal(libc::SIGKILL);
    pub const SIGUSR1: Signal = Signal(libc::SIGUSR1);
    pub const SIGSEGV: Signal = Signal(libc::SIGSEGV);
    pub const SIGUSR2: Signal = Signal(libc::SIGUSR2);
    pub const SIGPIPE: Signal = Signal(libc::SIGPIPE);
    pub const SIGALRM: Signal = Signal(libc::SIGALRM);
    pub const SIGTERM: Signal = Signal(libc::SIGTERM);
    pub const SIGSTKFLT: Signal = Signal(libc::SIGSTKFLT);
    pub const SIGCHLD: Signal = Signal(libc::SIGCHLD);
    pub const SIGCONT: Signal = Signal(libc::SIGCONT);
    pub const SIGSTOP: Signal = Signal(libc::SIGSTOP);
    pub const SIGTSTP: Signal = Signal(libc::SIGTSTP);
    pub const SIGTTIN: Signal = Signal(libc::SIGTTIN);
    pub const SIGTTOU: Signal = Signal(libc::SIGTTOU);
    pub const SIGURG: Signal = Signal(libc::SIGURG);
    pub const SIGXCPU: Signal = Signal(libc::SIGXCPU);
    pub const SIGXFSZ: Signal = Signal(libc::SIGXFSZ);
    pub const SIGVTALRM: Signal = Signal(libc::SIGVTALRM);
    pub const SIGPROF: Signal = Signal(libc::SIGPROF);
    pub const SIGWINCH: Signal = Signal(libc::SIGWINCH);
    pub const SIGIO: Signal = Signal(libc::SIGIO);
    pub const SIGPWR: Signal = Signal(libc::SIGPWR);
    pub const SIGSYS: Signal = Signal(libc::SIGSYS);
}

impl Signal {
    /// The highest signal number the kernel knows (`_NSIG - 1`).
    const MAX: i32 = 64;

    /// The signal with number `n`, if the kernel knows one (1 to 64).
    ///
    /// ```
    /// use vguest::Signal;
    ///
    /// assert_eq!(Signal::from_raw(9), Some(Signal::SIGKILL));
    /// assert_eq!(Signal::from_raw(0), None);
    /// ```
    pub const fn from_raw(n: i32) -> Option<Signal> {
        if n >= 1 && n <= Self::MAX { Some(Signal(n)) } else { None }
    }

    /// The real-time signal `SIGRTMIN+n` as the C library counts it
    /// (`SIGRTMIN` is the first one the C library leaves to programs),
    /// if there is one: systemd, for one, halts on `SIGRTMIN+3`.
    ///
    /// ```
    /// use vguest::Signal;
    ///
    /// let halt = Signal::realtime(3).expect("a real-time signal");
    /// assert_eq!(halt.as_raw(), libc::SIGRTMIN() + 3);
    /// ```
    pub fn realtime(n: i32) -> Option<Signal> {
        let sig = libc::SIGRTMIN().checked_add(n)?;
        if n >= 0 && sig <= libc::SIGRTMAX() { Some(Signal(sig)) } else { None }
    }

    /// The signal's number.
    ///
    /// ```
    /// assert_eq!(vguest::Signal::SIGTERM.as_raw(), 15);
    /// ```
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// The signal's name in `signal(7)` for a standard signal.
    ///
    /// ```
    /// use vguest::Signal;
    ///
    /// assert_eq!(Signal::SIGHUP.name(), Some("SIGHUP"));
    /// assert_eq!(Signal::realtime(1).and_then(Signal::name), None);
    /// ```
    pub fn name(self) -> Option<&'static str> {
        NAMED.iter().find(|(s, _)| *s == self).map(|(_, name)| *name)
    }
}

impl TryFrom<i32> for Signal {
    type Error = i32;

    /// The signal with number `n`, or `n` back if there is none.
    fn try_from(n: i32) -> Result<Signal, i32> {
        Signal::from_raw(n).ok_or(n)
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "signal {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_c_library() {
        for (sig, name) in NAMED {
            assert_eq!(Signal::from_raw(sig.as_raw()), Some(sig), "{name}");
            assert_eq!(format!("{sig:?}"), name);
        }
        let mut numbers: Vec<i32> = NAMED.iter().map(|(s, _)| s.as_raw()).collect();
        numbers.dedup();
        assert_eq!(numbers, (1..=31).collect::<Vec<_>>(), "one name per standard signal, in order");
        assert_eq!(Signal::from_raw(65), None);
        assert_eq!(Signal::realtime(-1), None);
        assert_eq!(Signal::from_raw(40).map(|s| s.to_string()), Some("signal 40".to_string()));
    }
}
