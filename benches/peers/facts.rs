//! The machine facts a result depends on, printed before the results.

use std::path::Path;
use std::process::Command as StdCommand;

/// The first line of `program args` (stdout, else stderr), or why not.
fn first_line(program: &str, args: &[&str]) -> String {
    match StdCommand::new(program).args(args).output() {
        Ok(out) => {
            let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_string()
        }
        Err(e) => format!("not available ({e})"),
    }
}

pub fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn os_release() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let pretty = text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME="));
    pretty.unwrap_or("unknown").trim_matches('"').to_string()
}

fn cpu() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = text.lines().find_map(|l| l.strip_prefix("model name")).and_then(|l| l.split_once(':'));
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpus} x {}", model.map_or("unknown", |(_, m)| m.trim()))
}

fn cgroups() -> String {
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .or_else(|_| std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers"))
        .unwrap_or_default();
    let v2 = if v2.trim().is_empty() { "none" } else { v2.trim() };
    format!("{} (controllers on cgroup2: {v2})", crate::common::cgroup_layout())
}

fn vguest_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let rev = first_line("git", &["-C", dir, "rev-parse", "--short", "HEAD"]);
    let dirty = StdCommand::new("git")
        .args(["-C", dir, "status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    format!("{} (commit {rev}{})", env!("CARGO_PKG_VERSION"), if dirty { ", modified" } else { "" })
}

pub fn print(rootfs: &Path, n: usize, warmup: usize) {
    let kernel = nix::sys::utsname::uname().map_or_else(
        |e| e.to_string(),
        |u| format!("{} {}", u.release().to_string_lossy(), u.machine().to_string_lossy()),
    );
    println!("== machine facts");
    println!("   date          {}", first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    println!("   os            {}", os_release());
    println!("   kernel        {kernel}");
    println!("   cpu           {}", cpu());
    println!("   cgroups       {}", cgroups());
    println!("   load average  {} (other work shares this machine)", loadavg());
    println!("   vguest        {}", vguest_commit());
    println!("   bwrap         {}", first_line("bwrap", &["--version"]));
    println!("   unshare       {}", first_line("unshare", &["--version"]));
    println!("   nsenter       {}", first_line("nsenter", &["--version"]));
    println!("   runc          {}", first_line("runc", &["--version"]));
    println!("   crun          {}", first_line("crun", &["--version"]));
    println!("   busybox       {}", first_line(&crate::common::busybox().to_string_lossy(), &["--help"]));
    println!("   root fs       {} (busybox, built by tests/common)", rootfs.display());
    println!("   runs          {warmup} warm-up + {n} timed per side, interleaved");
}
