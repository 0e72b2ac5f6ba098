//! VServer-style unification: two guests share one read-only template
//! through overlayfs; each keeps only its own changes, on a small tmpfs.
//!
//! Run as root: `cargo run --example overlay`

mod support;

use vguest::{Command, Filesystem, Guest, Overlay, Stdio, Upper};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let template = support::BusyboxRoot::new("template")?;
    let mut guests = Vec::new();
    for name in ["alpha", "beta"] {
        let overlay = Overlay::new([template.path()], Upper::Tmpfs { size: 8 << 20 });
        let script =
            format!("echo {name} > /etc/motd; sleep 0.2; echo \"$(hostname) reads: $(cat /etc/motd)\"");
        let guest = Guest::builder(name)
            .filesystem(Filesystem::overlay(overlay).proc().dev())
            .command(Command::new("/bin/sh").args(["-c", &script]).stdout(Stdio::Inherit))
            .spawn()?;
        guests.push(guest);
    }
    for mut guest in guests {
        guest.wait()?;
    }
    let untouched = !template.path().join("etc/motd").exists();
    println!("template untouched: {untouched}");
    Ok(())
}
