//! Guests this process did not spawn: found by the host pid of their
//! PID 1, for a guest manager that starts guests in one command and
//! enters them from another (`vserver NAME enter`).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::command::Command;
use crate::context::last_cap;
use crate::error::Error;
use crate::launch::enter::EnterInfo;
use crate::plan::{CapsPlan, CredsPlan};
use crate::process::GuestProcess;
use crate::resources::{Cgroups, Stats};
use crate::running::{Running, login_shell};
use crate::signal::Signal;
use crate::status::ExitStatus;
use crate::sys::pidfd;

/// A running guest found by pid rather than spawned by this process.
///
/// Attaching opens a pidfd first and reads the guest's identity after,
/// then checks the process still runs, so a recycled pid can never be
/// mistaken for the guest. Processes started with [`exec`](Self::exec)
/// take on the ids, capability sets, rlimits and `no_new_privs` that the
/// guest's PID 1 has, which the spawn gave it equal to its payload's.
///
/// ```no_run
/// use vguest::{Command, Guest};
///
/// // In one program: start a guest and let it outlive us.
/// let pid = Guest::builder("web1").command(Command::new("/sbin/init")).spawn()?.detach();
/// // Later, in another: enter it.
/// let guest = Guest::attach(pid)?;
/// guest.exec(Command::new("/bin/hostname"))?.wait()?;
/// # Ok::<(), vguest::Error>(())
/// ```
#[derive(Debug)]
pub struct AttachedGuest {
    /// Its PID 1, how to enter it, and its own groups if it has any
    /// (kept when this is dropped).
    running: Running,
}

fn attach_err(pid: u32) -> impl Fn(std::io::Error) -> Error {
    move |e| match e.raw_os_error() {
        Some(libc::ESRCH | libc::ENOENT) => Error::Exited { guest: format!("pid {pid}") },
        _ => Error::Guest { op: "attaching to", guest: format!("pid {pid}"), source: e },
    }
}

/// Parses a `/proc/PID/status` line of whitespace-separated decimals.
fn numbers(status: &str, key: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|line| line.split_whitespace().filter_map(|w| w.parse().ok()).collect())
        .unwrap_or_default()
}

fn mask(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

/// Translates host id `id` into the guest's user namespace through the
/// text of its `uid_map`/`gid_map` (an identity map without one).
fn to_inside(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let v: Vec<u64> = l.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        let (inside, outside, count) = (*v.first()?, *v.get(1)?, *v.get(2)?);
        let id = u64::from(id);
        (id >= outside && id < outside + count).then(|| (inside + id - outside) as u32)
    })
}

impl AttachedGuest {
    pub(crate) fn attach(pid: u32) -> Result<AttachedGuest, Error> {
        let err = attach_err(pid);
        let raw =
            libc::pid_t::try_from(pid).map_err(|_| err(std::io::Error::from_raw_os_error(libc::ESRCH)))?;
        let pidfd = pidfd::open(raw).map_err(&err)?;
        let read = |file: &str| std::fs::read_to_string(format!("/proc/{pid}/{file}"));
        let status = read("status").map_err(&err)?;
        let (uid_map, gid_map) = (read("uid_map").map_err(&err)?, read("gid_map").map_err(&err)?);
        let rlimits: Vec<_> =
            (0..16u32).filter_map(|resource| Some((resource, pidfd::rlimit_of(raw, resource)?))).collect();
        let cgroups = Cgroups::adopt(raw)?;
        // Everything read above described the guest only if it still runs.
        pidfd::send_signal(pidfd.as_fd(), 0).map_err(&err)?;

        let host_uid = numbers(&status, "Uid");
        let host_gid = numbers(&status, "Gid");
        let host_groups = numbers(&status, "Groups");
        let inside_uid = |id| to_inside(&uid_map, id).unwrap_or(65_534);
        let inside_gid = |id| to_inside(&gid_map, id).unwrap_or(65_534);
        let creds = CredsPlan {
            uid: inside_uid(host_uid.get(1).copied().unwrap_or(0)),
            gid: inside_gid(host_gid.get(1).copied().unwrap_or(0)),
            groups: host_groups.iter().map(|g| inside_gid(*g)).collect(),
            set_groups: !read("setgroups").is_ok_and(|s| s.trim() == "deny"),
        };
        let caps = CapsPlan {
            last_cap: last_cap()?,
            bounding: mask(&status, "CapBnd"),
            effective: mask(&status, "CapEff"),
            permitted: mask(&status, "CapPrm"),
            inheritable: mask(&status, "CapInh"),
            ambient: mask(&status, "CapAmb"),
        };
        let no_new_privs = numbers(&status, "NoNewPrivs").first() == Some(&1);
        // A filtered guest (seccomp mode 2) has its filters found at the
        // first entry; an unfiltered one has none.
        let filters = match numbers(&status, "Seccomp").first() {
            Some(&2) => None,
            _ => Some(Arc::default()),
        };
        let enter = EnterInfo::new(creds, caps, no_new_privs, rlimits, filters);
        Ok(AttachedGuest {
            running: Running {
                name: format!("pid {pid}"),
                pid: raw,
                pidfd,
                enter,
                cgroups,
                entered: Default::default(),
            },
        })
    }

    /// The host pid of the guest's PID 1.
    ///
    /// ```no_run
    /// let guest = vguest::Guest::attach(4242)?;
    /// assert_eq!(guest.id(), 4242);
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn id(&self) -> u32 {
        self.running.id()
    }

    /// A pidfd of the guest's PID 1.
    ///
    /// ```no_run
    /// let guest = vguest::Guest::attach(4242)?;
    /// let fd = guest.pidfd();
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.running.pidfd()
    }

    /// Whether the guest still runs.
    ///
    /// ```no_run
    /// let guest = vguest::Guest::attach(4242)?;
    /// if !guest.is_running() {
    ///     println!("gone");
    /// }
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn is_running(&self) -> bool {
        self.running.signal(0).unwrap_or(false)
    }

    /// Starts `command` inside the guest, as [`Guest::exec`](crate::Guest::exec) does.
    ///
    /// ```no_run
    /// use vguest::{Command, Stdio};
    ///
    /// let guest = vguest::Guest::attach(4242)?;
    /// let out = guest.exec(Command::new("/bin/ps").stdout(Stdio::Piped))?.output()?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn exec(&self, command: Command) -> Result<GuestProcess, Error> {
        self.running.exec(&command)
    }

    /// Runs an interactive login shell inside the guest and waits for it.
    ///
    /// ```no_run
    /// let status = vguest::Guest::attach(4242)?.enter()?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn enter(&self) -> Result<ExitStatus, Error> {
        self.exec(login_shell())?.wait()
    }

    /// Sends `signal` to the guest's PID 1.
    ///
    /// ```no_run
    /// let guest = vguest::Guest::attach(4242)?;
    /// guest.signal(vguest::Signal::SIGTERM)?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        pidfd::send_signal(self.running.pidfd(), signal.as_raw()).map_err(attach_err(self.id()))
    }

    /// The guest's cgroup directories, found when attaching: in each
    /// hierarchy where its PID 1 sits in a group the resource layer made
    /// (named `NAME.PID.N`, beneath `vguest` or a group vguest marked) and
    /// the caller does not. Empty for a guest spawned without
    /// [`Resources`](crate::Resources).
    ///
    /// ```no_run
    /// let guest = vguest::Guest::attach(4242)?;
    /// for dir in guest.cgroup_paths() {
    ///     println!("{}", dir.display());
    /// }
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn cgroup_paths(&self) -> Vec<&Path> {
        self.running.cgroup_paths()
    }

    /// What the guest uses now, as its groups account it; see
    /// [`Guest::stats`](crate::Guest::stats).
    ///
    /// ```no_run
    /// let stats = vguest::Guest::attach(4242)?.stats()?;
    /// println!("{:?} bytes in {:?} processes", stats.memory_current, stats.pids_current);
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn stats(&self) -> Result<Stats, Error> {
        self.running.stats()
    }

    /// Freezes every process of the guest; see [`Guest::pause`](crate::Guest::pause).
    ///
    /// ```no_run
    /// let guest = vguest::Guest::attach(4242)?;
    /// guest.pause()?;
    /// guest.resume()?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn pause(&self) -> Result<(), Error> {
        self.running.pause()
    }

    /// Lets a paused guest run again.
    ///
    /// ```no_run
    /// vguest::Guest::attach(4242)?.resume()?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn resume(&self) -> Result<(), Error> {
        self.running.resume()
    }

    /// Kills every process of the guest at once (through its groups; with
    /// none, `SIGKILL` to its PID 1, which ends a PID namespace). Does not
    /// wait.
    ///
    /// ```no_run
    /// vguest::Guest::attach(4242)?.kill_all()?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn kill_all(&self) -> Result<(), Error> {
        if let Some(groups) = &self.running.cgroups {
            groups.kill_all()?;
        }
        self.running.signal(libc::SIGKILL).map(drop).map_err(attach_err(self.id()))
    }

    /// Waits until the guest's PID 1 has exited, at most `timeout`; returns
    /// whether it has. (Its exit status goes to its parent, which reaps it.)
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// let guest = vguest::Guest::attach(4242)?;
    /// guest.signal(vguest::Signal::SIGTERM)?;
    /// if !guest.wait_timeout(Duration::from_secs(10))? {
    ///     guest.kill_all()?;
    /// }
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        pidfd::wait_exit(self.running.pidfd(), timeout)
            .map_err(|source| self.running.err("waiting for", source))
    }

    /// Stops the guest as `vserver NAME stop` does: `SIGTERM` to its PID 1
    /// (the built-in init passes it to the payload), up to `grace` for it
    /// to end, then every process killed; once it is gone, its groups are
    /// removed. Its host-side links go with its network namespace.
    ///
    /// The guest's PID 1 finishes exiting only once every process of its
    /// PID namespace has been reaped (`pid_namespaces(7)`): processes this
    /// program started in it with [`exec`](Self::exec) must be waited for
    /// (from another thread) or dropped, or `stop` times out.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// vguest::Guest::attach(4242)?.stop(Duration::from_secs(10))?;
    /// # Ok::<(), vguest::Error>(())
    /// ```
    pub fn stop(mut self, grace: Duration) -> Result<(), Error> {
        self.running.signal(libc::SIGTERM).map_err(attach_err(self.id()))?;
        if !self.wait_timeout(grace)? {
            self.kill_all()?;
            if !self.wait_timeout(Duration::from_secs(10))? {
                let source = std::io::Error::from_raw_os_error(libc::ETIMEDOUT);
                return Err(self.running.err("killing", source));
            }
        }
        // Without a PID namespace, processes may outlive PID 1.
        self.running.remove_groups(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parsing() {
        let status = "Uid:\t33\t33\t33\t33\nGroups:\t4 24 \nCapEff:\t00000000a80425fb\nNoNewPrivs:\t1\n";
        assert_eq!(numbers(status, "Uid"), [33, 33, 33, 33]);
        assert_eq!(numbers(status, "Groups"), [4, 24]);
        assert_eq!(mask(status, "CapEff"), 0xa80425fb);
        assert_eq!(mask(status, "CapAmb"), 0);
    }

    #[test]
    fn id_translation() {
        let map = "         0     100000      65536\n";
        assert_eq!(to_inside(map, 100_033), Some(33));
        assert_eq!(to_inside(map, 5), None);
        assert_eq!(to_inside("0 0 4294967295\n", 1000), Some(1000));
    }
}
