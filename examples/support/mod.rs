//! Shared by the examples: a throw-away busybox root filesystem.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A busybox root filesystem in a temporary directory, removed on drop.
/// Needs `/bin/busybox` (Debian: `apt-get install busybox-static`).
pub struct BusyboxRoot {
    dir: PathBuf,
}

impl BusyboxRoot {
    /// Builds the root: `/bin/busybox`, a symlink per applet, a passwd
    /// and group file, and empty mount points.
    pub fn new(tag: &str) -> std::io::Result<BusyboxRoot> {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let dir = std::env::temp_dir().join(format!("vguest-example-{tag}-{}", std::process::id()));
        let root = BusyboxRoot { dir };
        let busybox = Path::new("/bin/busybox");
        if !busybox.exists() {
            return Err(std::io::Error::other("/bin/busybox is missing: apt-get install busybox-static"));
        }
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "run", "root"] {
            std::fs::create_dir_all(root.dir.join(d))?;
        }
        std::fs::copy(busybox, root.dir.join("bin/busybox"))?;
        std::fs::set_permissions(root.dir.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
        let list = std::process::Command::new(busybox).arg("--list").output()?;
        for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| *a != "busybox") {
            symlink("busybox", root.dir.join("bin").join(applet))?;
        }
        std::fs::write(root.dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
        std::fs::write(root.dir.join("etc/group"), "root:x:0:\n")?;
        Ok(root)
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for BusyboxRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
