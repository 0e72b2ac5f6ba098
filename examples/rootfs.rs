//! A guest with its own root filesystem: a busybox root with `/proc`,
//! `/sys`, a minimal `/dev` and a tmpfs on `/tmp`. Prints what the guest
//! sees: its files, processes and mount table.
//!
//! Run as root: `cargo run --example rootfs`

mod support;

use vguest::{Command, Filesystem, Guest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = support::BusyboxRoot::new("rootfs")?;
    let fs = Filesystem::server(root.path()).read_only_root(true);
    let script = r#"echo '# ls /'; ls /; echo '# ps'; ps; echo '# mounts'
        awk '{ for (i = 7; i <= NF; i++) if ($i == "-") print $5, $(i + 1) }' /proc/self/mountinfo"#;
    let status = Guest::builder("rootfs")
        .filesystem(fs)
        .command(Command::new("/bin/sh").args(["-c", script]))
        .spawn()?
        .wait()?;
    println!("guest ended with {status}");
    Ok(())
}
