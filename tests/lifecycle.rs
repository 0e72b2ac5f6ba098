//! How guests end when things go wrong: killed with entered processes
//! still alive, dropped without a wait.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use vguest::{Command, Filesystem, Guest, Resources};

/// Runs `f` on a thread and returns its result, or panics if it has not
/// returned within `limit`: a deadlock fails the test instead of hanging
/// the suite. The limit is far above any honest run.
fn returns_within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("{what} did not return within {limit:?}: deadlock"))
}

fn sleeper(name: &str) -> Guest {
    Guest::builder(name)
        .filesystem(Filesystem::server(rootfs()))
        .resources(Resources::new().pids_max(64))
        .command(Command::new("/bin/sleep").arg("1000"))
        .spawn()
        .unwrap()
}

#[test]
fn a_guest_killed_with_entered_processes_alive_is_waited_for_and_they_report() {
    if !root_or_skip("lifecycle") {
        return;
    }
    let _s = shared();
    let mut guest = sleeper("lc-kill");
    let mut alive = guest.exec(Command::new("/bin/sleep").arg("1000")).unwrap();
    // Ended on its own and not waited for: a zombie the caller holds.
    let mut ended = guest.exec(Command::new("/bin/true")).unwrap();
    // Dropped while running: its handle kills and reaps it.
    drop(guest.exec(Command::new("/bin/sleep").arg("1000")).unwrap());
    guest.kill().unwrap();
    let (guest, status) = returns_within("Guest::wait", Duration::from_secs(30), move || {
        let status = guest.wait();
        (guest, status)
    });
    assert_eq!(status.unwrap().signal(), Some(9));
    assert!(guest.cgroup_paths().is_empty(), "groups left: {:?}", guest.cgroup_paths());
    assert_eq!(alive.try_wait().unwrap().and_then(|s| s.signal()), Some(9), "the entered sleep");
    assert_eq!(alive.wait().unwrap().signal(), Some(9));
    assert_eq!(ended.wait().unwrap().code(), Some(0), "the entered true");
    assert!(groups_named("lc-kill.").is_empty());
}

#[test]
fn a_guest_dropped_with_entered_processes_alive_goes() {
    if !root_or_skip("lifecycle") {
        return;
    }
    let _s = shared();
    let guest = sleeper("lc-drop");
    let mut alive = guest.exec(Command::new("/bin/sleep").arg("1000")).unwrap();
    returns_within("dropping the guest", Duration::from_secs(30), move || drop(guest));
    assert_eq!(alive.wait().unwrap().signal(), Some(9));
    assert!(groups_named("lc-drop.").is_empty());
}
