//! Network namespaces the tests make themselves, and iproute2 to set
//! them up (the tests may run `ip`; the library never does).

use std::path::PathBuf;
use std::process::{Child, Command as Host, Stdio as HostStdio};

/// iproute2's `ip` (not busybox's applet of that name, which may come
/// first in `PATH`, as in the v2 test VM, and lacks what the tests use).
pub fn iproute2() -> &'static str {
    static IP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IP.get_or_init(|| {
        ["/usr/bin/ip", "/usr/sbin/ip", "/bin/ip", "/sbin/ip"]
            .into_iter()
            .find(|p| {
                std::fs::canonicalize(p).is_ok_and(|real| real.file_name().is_some_and(|n| n != "busybox"))
            })
            .expect("iproute2's ip: run ./scripts/test.sh, which installs iproute2")
            .to_string()
    })
}

/// A network namespace of the test's own, held open by a sleeping child
/// (`unshare --net`), configured with iproute2 through `nsenter`.
pub struct TestNet {
    child: Child,
}

impl TestNet {
    pub fn new() -> TestNet {
        let child = Host::new("unshare")
            .args(["--net", "sleep", "1000000"])
            .stdin(HostStdio::null())
            .spawn()
            .expect("unshare (util-linux)");
        let net = TestNet { child };
        // The child is in its namespace once its ns link differs from ours.
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        for _ in 0..500 {
            if std::fs::read_link(net.path()).is_ok_and(|l| l != ours) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        net.ip(&["link", "set", "lo", "up"]);
        net
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.child.id()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (up to 30 s: the kernel promises no time) until no parked host
    /// end (`vgx…`, renamed when its guest ended) is left here: the kernel
    /// removes each with its guest's namespace, in the background.
    pub fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.ip(&["-o", "link"]).lines().any(|l| l.contains(": vgx"))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Runs `ip ARGS` in this namespace; panics if it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = Host::new("nsenter")
            .arg(format!("--net={}", self.path().display()))
            .arg(iproute2())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
