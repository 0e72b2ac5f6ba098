//! How a guest ends: reaping its PID 1, the payload's own status from the
//! built-in init, removing its groups and links (kept for a retry when a
//! removal fails), and what dropping the handle does.

use super::Guest;
use crate::error::Error;
use crate::resources;
use crate::status::ExitStatus;
use crate::sys::pidfd;

impl Guest {
    /// Waits for the guest's first process to end (if it has not been
    /// waited for yet) and returns the payload's status, once everything
    /// made for the guest is removed.
    pub(super) fn reap(&mut self) -> Result<ExitStatus, Error> {
        if let Some(status) = self.status {
            return self.teardown(status);
        }
        loop {
            // The kernel holds a dying PID 1 back until every process of
            // its namespace is reaped, and the entered ones are ours: reap
            // them as they end, or this wait would never return.
            let entered = self.running.entered.unreaped();
            let fds: Vec<_> =
                std::iter::once(self.running.pidfd()).chain(entered.iter().map(|e| e.pidfd())).collect();
            let ready = pidfd::wait_any(&fds).map_err(|e| self.err("waiting for", e))?;
            for (process, _) in entered.iter().zip(&ready[1..]).filter(|(_, ready)| **ready) {
                // Its own handle reports a failure to reap it.
                let _ = process.try_reap();
            }
            if ready[0]
                && pidfd::peek(self.running.pidfd(), true).map_err(|e| self.err("waiting for", e))?.is_some()
            {
                return self.reaped();
            }
        }
    }

    /// Reaps the entered processes that have ended, so that a dying PID 1
    /// can finish.
    pub(super) fn reap_entered(&self) {
        for process in self.running.entered.unreaped() {
            let _ = process.try_reap();
        }
    }

    /// The guest's first process has exited (a zombie still): reaps it,
    /// records the payload's status and removes the guest's cgroups and
    /// links.
    pub(super) fn reaped(&mut self) -> Result<ExitStatus, Error> {
        // Read while PID 1 is a zombie, before its pid can be reused.
        let payload = self.builtin_init.then(|| payload_status(self.running.pid)).flatten();
        let raw = pidfd::waitid(self.running.pidfd(), true)
            .map_err(|e| self.err("waiting for", e))?
            .ok_or_else(|| self.err("waiting for", std::io::Error::from_raw_os_error(libc::ECHILD)))?;
        // With the built-in init, its status stands for the payload's
        // only if it could not report the payload's own (it was killed).
        let mut status = payload.unwrap_or(ExitStatus::from_raw(raw));
        if let Some(groups) = &self.running.cgroups {
            // Read before the group goes away.
            let oom_kills = resources::oom_kills(groups.groups()).ok().flatten().unwrap_or(0);
            status = status.with_oom_killed(oom_kills > 0);
        }
        self.status = Some(status);
        crate::launch::enter::forget_filters(self.running.pid);
        self.teardown(status)
    }

    /// Removes what is left of the guest's cgroups and links (each tried
    /// even if the other fails). A failure comes back with the status, and
    /// what failed stays for the next call.
    pub(super) fn teardown(&mut self, status: ExitStatus) -> Result<ExitStatus, Error> {
        let groups = self.remove_cgroups().err();
        let links = match self.links.as_mut().map(|l| l.remove()) {
            Some(Err(e)) => Some(Error::from(e)),
            Some(Ok(())) => {
                self.links = None;
                None
            }
            None => None,
        };
        match groups.or(links) {
            None => Ok(status),
            Some(first) => {
                Err(Error::Teardown { guest: self.running.name.clone(), status, source: Box::new(first) })
            }
        }
    }

    /// After the guest's first process is reaped: kills what is left in its
    /// groups (a guest without a PID namespace may leave processes behind)
    /// and removes them.
    fn remove_cgroups(&mut self) -> Result<(), Error> {
        self.running.remove_groups(!self.own_pid_ns)
    }

    pub(super) fn err(&self, op: &'static str, source: std::io::Error) -> Error {
        self.running.err(op, source)
    }
}

/// The payload's wait status as the built-in init left it in its name
/// (`vgst:` and eight hex digits) before exiting: read from the zombie's
/// `/proc/PID/comm`. `None` if the init was killed before it could.
fn payload_status(pid: libc::pid_t) -> Option<ExitStatus> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let hex = name.trim_end().strip_prefix("vgst:")?;
    let raw = u32::from_str_radix(hex, 16).ok()?;
    Some(ExitStatus::from_raw(raw as i32))
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(status) = self.status {
            // Ended, but a removal failed before: one more try.
            let _ = self.teardown(status);
        } else if self.kill_on_drop {
            let _ = self.kill_all();
            let _ = self.kill();
            let _ = self.reap();
        } else {
            // The guest runs on: its groups and links stay.
            if let Some(groups) = self.running.cgroups.as_mut() {
                groups.detach();
            }
            if let Some(links) = self.links.as_mut() {
                links.detach();
            }
        }
    }
}
