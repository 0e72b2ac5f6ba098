//! Enter a running guest, as `vserver NAME exec` does: the new process
//! lands in the guest's namespaces, root and credentials.
//!
//! Run as root: `cargo run --example exec`

mod support;

use vguest::{Command, Filesystem, Guest, Stdio};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = support::BusyboxRoot::new("exec")?;
    let guest = Guest::builder("web1")
        .filesystem(Filesystem::server(root.path()))
        .command(Command::new("/bin/sleep").arg("60"))
        .spawn()?;
    let out = guest.exec(Command::new("/bin/ps").args(["-o", "pid,comm"]).stdout(Stdio::Piped))?.output()?;
    print!("inside {}:\n{}", guest.name(), String::from_utf8_lossy(&out.stdout));
    // Another program could do the same with only the pid.
    let attached = Guest::attach(guest.id())?;
    let out = attached.exec(Command::new("/bin/hostname").stdout(Stdio::Piped))?.output()?;
    print!("attached by pid {}: hostname {}", attached.id(), String::from_utf8_lossy(&out.stdout));
    Ok(())
}
