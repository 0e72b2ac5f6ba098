//! A guest with its own user namespace: root inside is an unprivileged
//! uid on the host, so the guest's root has no power over host objects.
//!
//! Run as root: `cargo run --example userns`

mod support;

use vguest::{Command, Context, Filesystem, Guest, IdMap, Namespaces};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = support::BusyboxRoot::new("userns")?;
    let ctx = Context::new()
        .namespaces(Namespaces::default() | Namespaces::USER)
        .uid_map(IdMap::new(0, 100_000, 65_536))
        .gid_map(IdMap::new(0, 100_000, 65_536));
    let script = "echo \"inside: $(id)\"; echo uid_map: $(cat /proc/self/uid_map); sleep 0.2";
    let guest = Guest::builder("userns")
        .context(ctx)
        .filesystem(Filesystem::server(root.path()))
        .command(Command::new("/bin/sh").args(["-c", script]))
        .spawn()?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", guest.id()))?;
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or("Uid: ?");
    println!("host sees the guest's PID 1 as {uid}");
    let mut guest = guest;
    guest.wait()?;
    Ok(())
}
