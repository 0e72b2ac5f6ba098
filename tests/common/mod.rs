//! Helpers shared by the integration tests. The tests run as root on a
//! real kernel; each checks from inside the guest and then checks the host.
#![allow(dead_code)]

pub mod netns;
pub mod role;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use vguest::{ExitStatus, GuestBuilder, Stdio};

/// Returns false (and says why) when the test cannot run here.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    eprintln!("SKIP {test}: needs root");
    false
}

/// The cgroup layout of this host, as the tests report it.
pub fn cgroup_layout() -> &'static str {
    let fstype = |p: &str| nix::sys::statfs::statfs(p).map(|s| s.filesystem_type());
    match (fstype("/sys/fs/cgroup"), fstype("/sys/fs/cgroup/unified")) {
        (Ok(t), _) if t == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "v2",
        (_, Ok(t)) if t == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "hybrid",
        _ => "v1",
    }
}

/// True on a host where fork+exec costs far more than on hardware: the
/// pure cgroup v2 test VM (`tests/vm/run.sh`) runs under software
/// emulation, about 20 times slower, and sets `VGUEST_TEST_SLOW_HOST=1`.
pub fn slow_host() -> bool {
    std::env::var_os("VGUEST_TEST_SLOW_HOST").is_some_and(|v| !v.is_empty() && v != "0")
}

/// How many times a test repeats its work: `normal`, or `slow` on a slow
/// host, which the test then says (never silently).
pub fn repeats(test: &str, normal: usize, slow: usize) -> usize {
    if slow_host() {
        eprintln!(
            "SCALED {test}: {slow} instead of {normal} rounds (VGUEST_TEST_SLOW_HOST: fork+exec is slow here)"
        );
        return slow;
    }
    normal
}

/// True when the test VM runs this binary the way a systemd host would:
/// from a non-root leaf cgroup that already holds another process, where
/// the kernel refuses to enable controllers below it ("no internal
/// processes", cgroups(7)). Tests assert what the library does there.
pub fn occupied_leaf() -> bool {
    std::env::var_os("VGUEST_TEST_CGROUP_SCENARIO").is_some_and(|v| v == "occupied-leaf")
}

/// Tests that count this process's fds or children take the write side;
/// every other test takes the read side, so counts are not disturbed.
static SERIAL: RwLock<()> = RwLock::new(());

pub fn shared() -> RwLockReadGuard<'static, ()> {
    SERIAL.read().unwrap_or_else(|e| e.into_inner())
}

pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SERIAL.write().unwrap_or_else(|e| e.into_inner())
}

/// Open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// This process's open fds and what they are, for a failure message.
pub fn fd_list() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).map(|p| p.display().to_string()).unwrap_or_default();
            format!("{} -> {target}", e.file_name().to_string_lossy())
        })
        .collect();
    out.sort();
    out
}

/// Children of this process (all threads), zombies included.
pub fn children() -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    out
}

/// Host-side state a test must leave as it found it.
#[derive(Debug, PartialEq, Eq)]
pub struct HostState {
    fds: usize,
    fd_list: Vec<String>,
    children: Vec<u32>,
    mounts: String,
}

impl HostState {
    pub fn capture() -> HostState {
        HostState {
            fds: fd_count(),
            fd_list: fd_list(),
            children: children(),
            mounts: std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
        }
    }

    /// Panics if the host's mount table changed (safe in shared tests).
    pub fn assert_mounts_unchanged(&self, what: &str) {
        let now = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        assert_eq!(self.mounts, now, "{what}: host mount table changed");
    }

    /// Panics if anything changed (needs `exclusive()`).
    pub fn assert_unchanged(&self, what: &str) {
        let now = HostState::capture();
        assert_eq!(
            self.fds, now.fds,
            "{what}: fd count changed: before {:?}, after {:?}",
            self.fd_list, now.fd_list
        );
        assert_eq!(self.children, now.children, "{what}: children changed");
        assert_eq!(self.mounts, now.mounts, "{what}: host mount table changed");
    }
}

/// Spawns `builder` (whose command pipes stdout and stderr, as [`sh`]
/// sets up), waits, and returns the status and both outputs.
pub fn run(builder: GuestBuilder) -> (ExitStatus, String, String) {
    finish(builder.spawn().unwrap_or_else(|e| panic!("spawn failed: {e} ({e:?})")))
}

/// Reads a running guest's piped stdout and stderr to the end, waits,
/// and returns the status and both outputs.
pub fn finish(mut guest: vguest::Guest) -> (ExitStatus, String, String) {
    let mut out = String::new();
    let mut err = String::new();
    let mut stderr = guest.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    if let Some(mut o) = guest.stdout.take() {
        o.read_to_string(&mut out).unwrap();
    }
    err.push_str(&reader.join().unwrap());
    let status = guest.wait().unwrap();
    (status, out, err)
}

/// `run` for a shell script (the host's `/bin/sh`, or the guest's when
/// the guest has a root filesystem).
pub fn sh(builder: GuestBuilder, script: &str) -> (ExitStatus, String, String) {
    run(builder.command(
        vguest::Command::new("/bin/sh").args(["-c", script]).stdout(Stdio::Piped).stderr(Stdio::Piped),
    ))
}

/// The busybox binary the test root filesystem is built from.
pub fn busybox() -> PathBuf {
    std::env::var_os("VGUEST_TEST_BUSYBOX").map_or_else(|| PathBuf::from("/bin/busybox"), PathBuf::from)
}

/// A minimal root filesystem built from busybox-static under cargo's
/// target directory (once; shared by all test binaries): `/bin/busybox`
/// plus a symlink per applet, `/etc/passwd` and `/etc/group`, and empty
/// mount points. Tests only read it; writes go to an overlay or a copy.
pub fn rootfs() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rootfs");
        if !dir.join("etc/group").exists() {
            std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
            let tmp = dir.with_file_name(format!("rootfs.{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            build_rootfs(&tmp);
            // Another test binary may have won the race; its copy is as good.
            if std::fs::rename(&tmp, &dir).is_err() {
                std::fs::remove_dir_all(&tmp).unwrap();
            }
        }
        dir
    })
}

/// Builds a busybox root filesystem at `dir` (which must not exist).
pub fn build_rootfs(dir: &Path) {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let bb = busybox();
    assert!(bb.exists(), "{} is missing: run ./scripts/test.sh, which installs busybox-static", bb.display());
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var/tmp",
        "home",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(&bb, dir.join("bin/busybox")).unwrap();
    std::fs::set_permissions(dir.join("bin/busybox"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let list = std::process::Command::new(&bb).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nwww:x:33:\nnogroup:x:65534:\n").unwrap();
}

/// Cgroup directories anywhere below `/sys/fs/cgroup` whose name starts
/// with `prefix`.
pub fn groups_named(prefix: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                out.push(entry.path());
            }
            walk(&entry.path(), prefix, out);
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), prefix, &mut out);
    out
}

/// Reads a `Name:\tvalue` line of a `/proc/PID/status`-style text.
pub fn status_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

/// A random number below `n` (from `/dev/urandom`).
pub fn random_below(n: u64) -> u64 {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    u64::from_ne_bytes(bytes) % n
}

/// The names of this network namespace's links (`/proc/net/dev`).
pub fn link_names() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    text.lines().skip(2).filter_map(|l| Some(l.split(':').next()?.trim().to_string())).collect()
}
