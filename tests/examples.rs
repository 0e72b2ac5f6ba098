//! Every example runs and shows what it claims.
//!
//! A full `cargo test` builds the examples first; alone, this binary needs
//! `cargo build --examples` beforehand.

mod common;

use std::path::PathBuf;

use common::*;

/// Runs `target/<profile>/examples/<name>` (built by `cargo test`), or
/// returns `None` with a printed reason where examples are not built
/// (the v2 test VM carries only test binaries).
fn example(name: &str) -> Option<String> {
    example_with(name, &[])
}

/// [`example`] with arguments.
fn example_with(name: &str, args: &[&str]) -> Option<String> {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path: PathBuf = dir.join(name);
    if !path.exists() {
        eprintln!("SKIP example {name}: {} is not built here (cargo build --examples)", path.display());
        return None;
    }
    let out = std::process::Command::new(&path).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{name}: {}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    Some(text)
}

#[test]
fn hello_shows_a_fresh_guest() {
    if !root_or_skip("example hello") {
        return;
    }
    let _s = shared();
    let Some(out) = example("hello") else {
        return;
    };
    assert!(out.contains("inside:  pid 2, hostname hello.guest, uptime 0."), "{out}");
    assert!(out.contains("NoNewPrivs: 1"), "{out}");
}

#[test]
fn rootfs_shows_the_guests_own_tree() {
    if !root_or_skip("example rootfs") {
        return;
    }
    let _s = shared();
    let Some(out) = example("rootfs") else {
        return;
    };
    assert!(out.contains("/ ") && out.contains("/proc proc") && out.contains("/dev/pts devpts"), "{out}");
    // The built-in init's exec runs beside the payload's (issue 6): the
    // payload's `ps` may come before it is done, when PID 1 still shows
    // the spawn child's command line (the example's own).
    let pid1 = out.lines().find_map(|l| l.strip_prefix("    1 root     ")).unwrap_or_default();
    assert!(pid1.starts_with("vguest-init ") || pid1.ends_with("/examples/rootfs"), "{out}");
}

#[test]
fn overlay_guests_see_their_own_writes() {
    if !root_or_skip("example overlay") {
        return;
    }
    let _s = shared();
    let Some(out) = example("overlay") else {
        return;
    };
    for line in ["alpha reads: alpha", "beta reads: beta", "template untouched: true"] {
        assert!(out.contains(line), "{line} missing in {out}");
    }
}

#[test]
fn exec_enters_by_handle_and_by_pid() {
    if !root_or_skip("example exec") {
        return;
    }
    let _s = shared();
    let Some(out) = example("exec") else {
        return;
    };
    assert!(out.contains("    1 vguest-init\n    2 sleep\n    3 ps"), "{out}");
    assert!(out.contains("hostname web1"), "{out}");
}

#[test]
fn notify_supervisor_answers_the_guests_sethostname() {
    if !root_or_skip("example notify") {
        return;
    }
    let _s = shared();
    let host = nix::unistd::gethostname().unwrap();
    let Some(out) = example("notify") else {
        return;
    };
    for line in [
        "guest: hostname is notify",
        "supervisor: sethostname(\"web-1\") approved and done",
        "guest: hostname web-1 succeeded, hostname is now web-1",
        "supervisor: sethostname(\"mail.example.org\") refused",
        "guest: hostname mail.example.org failed, hostname is still web-1",
        "guest notify ended with exit code 0",
    ] {
        assert!(out.lines().any(|l| l == line), "no line {line:?} in {out}");
    }
    assert_eq!(nix::unistd::gethostname().unwrap(), host, "the host's hostname changed");
}

#[test]
fn userns_maps_root_to_an_unprivileged_uid() {
    if !root_or_skip("example userns") {
        return;
    }
    let _s = shared();
    let Some(out) = example("userns") else {
        return;
    };
    assert!(out.contains("Uid:\t100000\t100000"), "{out}");
    assert!(out.contains("inside: uid=0(root) gid=0(root)"), "{out}");
}

/// A `Duration`'s `Debug` text (`276.3ms`, `1.2s`, `80µs`) in milliseconds.
fn millis(debug: &str) -> f64 {
    let (number, scale) = if let Some(n) = debug.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = debug.strip_suffix("µs") {
        (n, 0.001)
    } else if let Some(n) = debug.strip_suffix("ns") {
        (n, 0.000_001)
    } else {
        (debug.strip_suffix('s').unwrap_or(debug), 1000.0)
    };
    number.parse::<f64>().unwrap_or_else(|e| panic!("{debug:?}: {e}")) * scale
}

#[test]
fn limits_holds_the_cpu_quota_pauses_and_reports_the_oom_kill() {
    if !root_or_skip("example limits") {
        return;
    }
    let _s = shared();
    let Some(out) = example("limits") else {
        return;
    };
    assert!(out.starts_with("cgroup layout: "), "{out}");
    assert!(out.lines().any(|l| l.starts_with("group:   ") && l.contains("/vguest/spinner.")), "{out}");
    // A quarter of a CPU (25 ms per 100 ms) for about a second.
    let used = out.lines().find_map(|l| l.strip_prefix("in 1 s:  ")?.split(' ').next()).unwrap_or_default();
    let used = millis(used);
    assert!(used > 0.0 && used < 600.0, "{used} ms of CPU in 1 s: {out}");
    // No CPU time passes while the guest is frozen.
    let paused = out.lines().find_map(|l| l.strip_prefix("paused:  CPU time ")).unwrap_or_default();
    let (before, after) = paused.split_once(" -> ").unwrap_or_else(|| panic!("{out}"));
    assert!(before.starts_with("Some(") && before == after, "{out}");
    assert!(out.contains("spinner: killed by SIGKILL\n"), "{out}");
    assert!(out.contains("hog:     ended by the OOM killer: killed by SIGKILL (out of memory)\n"), "{out}");
}

#[test]
fn many_holds_hundreds_of_live_guests_and_leaves_nothing() {
    if !root_or_skip("example many") {
        return;
    }
    // It counts the host's links and this process's descriptors.
    let _x = exclusive();
    let count = repeats("example many", 500, 100).to_string();
    let Some(out) = example_with("many", &[&count]) else {
        return;
    };
    println!("{out}");
    assert!(out.contains(&format!("spawning {count} guests")), "{out}");
    assert!(out.contains("descriptors per live guest: 1.00"), "{out}");
    assert!(out.contains("host-side links left: 0; descriptors left: 0"), "{out}");
}
