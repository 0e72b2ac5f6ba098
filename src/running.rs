//! What a running guest's two handles share: [`Guest`](crate::Guest) for
//! a guest this process spawned, [`AttachedGuest`](crate::AttachedGuest)
//! for one found by pid. Both hold a [`Running`] and forward to it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::command::Command;
use crate::error::Error;
use crate::launch::enter::{self, EnterInfo};
use crate::process::{EnteredSet, GuestProcess};
use crate::resources::{self, Cgroups, ResourceError, Stats};
use crate::sys::pidfd;

/// The login shell `enter` runs: `/bin/sh -l` with the caller's `TERM`.
pub(crate) fn login_shell() -> Command {
    Command::new("/bin/sh").arg("-l").env("TERM", std::env::var_os("TERM").unwrap_or_else(|| "dumb".into()))
}

/// A running guest: its PID 1, how to enter it, and its groups.
#[derive(Debug)]
pub(crate) struct Running {
    /// The guest's name, or `pid N` for an attached guest.
    pub name: String,
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
    /// What an entering process becomes.
    pub enter: EnterInfo,
    pub cgroups: Option<Cgroups>,
    /// The processes entered through this handle, reaped with the guest.
    pub entered: EnteredSet,
}

impl Running {
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Sends `signal` to the guest's PID 1; `Ok(false)` if it has exited
    /// already and awaits reaping (`ESRCH`).
    pub fn signal(&self, signal: i32) -> std::io::Result<bool> {
        match pidfd::send_signal(self.pidfd.as_fd(), signal) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn groups(&self) -> Result<&Cgroups, ResourceError> {
        self.cgroups.as_ref().ok_or_else(|| ResourceError::NoGroups { guest: self.name.clone() })
    }

    pub fn pause(&self) -> Result<(), Error> {
        Ok(self.groups()?.set_frozen(true)?)
    }

    pub fn resume(&self) -> Result<(), Error> {
        Ok(self.groups()?.set_frozen(false)?)
    }

    pub fn stats(&self) -> Result<Stats, Error> {
        Ok(resources::read_stats(self.groups()?.groups())?)
    }

    pub fn cgroup_paths(&self) -> Vec<&Path> {
        self.cgroups.as_ref().map(|g| g.paths().collect()).unwrap_or_default()
    }

    pub fn exec(&self, command: &Command) -> Result<GuestProcess, Error> {
        let process = enter::exec(
            &self.name,
            self.pid,
            self.pidfd.as_fd(),
            &self.enter,
            self.cgroups.as_ref(),
            command,
        )?;
        self.entered.add(process.shared());
        Ok(process)
    }

    /// Removes the guest's groups once its PID 1 has ended, killing what
    /// is left in them first if `leftovers` may exist (without a PID
    /// namespace, processes may outlive PID 1).
    pub fn remove_groups(&mut self, leftovers: bool) -> Result<(), Error> {
        let Some(groups) = self.cgroups.as_mut() else {
            return Ok(());
        };
        if leftovers && !groups.is_empty() {
            groups.kill_all()?;
        }
        groups.remove()?;
        self.cgroups = None;
        Ok(())
    }

    pub fn err(&self, op: &'static str, source: std::io::Error) -> Error {
        Error::Guest { op, guest: self.name.clone(), source }
    }
}
