//! The run directory: one `NAME.pid` file per started guest, holding the
//! host pid of its PID 1 and that process's start time, so a pid the
//! kernel has since given to another process is never taken for the guest.

use std::path::{Path, PathBuf};

use vguest::{AttachedGuest, Guest};

fn file(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("{name}.pid"))
}

/// The start time of process `pid` in clock ticks after boot
/// (`/proc/PID/stat` field 22, `proc(5)`).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses.
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split(' ').nth(19)?.parse().ok()
}

/// Records a started guest.
pub fn record(run_dir: &Path, name: &str, pid: u32) -> Result<(), String> {
    let started = start_time(pid).ok_or_else(|| format!("guest {name} (pid {pid}) ended at once"))?;
    std::fs::create_dir_all(run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    let path = file(run_dir, name);
    std::fs::write(&path, format!("{pid} {started}\n")).map_err(|e| format!("{}: {e}", path.display()))
}

/// Forgets a guest.
pub fn forget(run_dir: &Path, name: &str) {
    let _ = std::fs::remove_file(file(run_dir, name));
}

/// The running guest `name`, attached: `None` if it was never started or
/// has ended (a stale state file is removed).
pub fn running(run_dir: &Path, name: &str) -> Option<AttachedGuest> {
    let text = std::fs::read_to_string(file(run_dir, name)).ok()?;
    let mut words = text.split_whitespace().map(str::parse::<u64>);
    let (Some(Ok(pid)), Some(Ok(started))) = (words.next(), words.next()) else {
        forget(run_dir, name);
        return None;
    };
    let pid = u32::try_from(pid).ok()?;
    // Attaching pins the process with a pidfd; the start time read after
    // that tells whether it is still the process we started.
    match Guest::attach(pid) {
        Ok(guest) if start_time(pid) == Some(started) && guest.is_running() => Some(guest),
        _ => {
            forget(run_dir, name);
            None
        }
    }
}
