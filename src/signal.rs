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

/// Defines a constant per standard signal, named as in `signal(7)`, and
/// [`NAMED`], the list of them with their names.
macro_rules! standard_signals {
    ($($name:ident),* $(,)?) => {
        impl Signal {
            $(
                #[doc = concat!("`", stringify!($name), "` (`signal(7)`).")]
                pub const $name: Signal = Signal(libc::$name);
            )*
        }

        /// The standard signals, with their names.
        const NAMED: &[(Signal, &str)] = &[$((Signal::$name, stringify!($name))),*];
    };
}

standard_signals! {
    SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT,
    SIGBUS, SIGFPE, SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2,
    SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT, SIGCHLD, SIGCONT,
    SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGXCPU,
    SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR,
    SIGSYS,
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
    fn standard_signals_are_one_to_31_each_with_its_name() {
        for &(sig, name) in NAMED {
            assert_eq!(Signal::from_raw(sig.as_raw()), Some(sig), "{name}");
            assert_eq!(format!("{sig:?}"), name);
        }
        let numbers: Vec<i32> = NAMED.iter().map(|(s, _)| s.as_raw()).collect();
        assert_eq!(numbers, (1..=31).collect::<Vec<_>>(), "one name per standard signal, in order");
        assert_eq!(Signal::from_raw(65), None);
        assert_eq!(Signal::realtime(-1), None);
        assert_eq!(Signal::from_raw(40).map(|s| s.to_string()), Some("signal 40".to_string()));
    }
}
