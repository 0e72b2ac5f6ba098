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
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path: PathBuf = dir.join(name);
    if !path.exists() {
        eprintln!("SKIP example {name}: {} is not built here (cargo build --examples)", path.display());
        return None;
    }
    let out = std::process::Command::new(&path).output().unwrap();
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
    assert!(out.contains("    1 root     vguest-init"), "{out}");
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
