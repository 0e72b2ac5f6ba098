//! What the default system call filter costs (issue 14):
//!
//! - `seccomp/spawn`: spawn + wait of `/bin/true` in a guest with a busybox
//!   root, with [`Seccomp::default()`] against [`Seccomp::unconfined()`]
//!   (goal: at most 3% slower).
//! - `seccomp/getppid_loop`: a guest whose payload makes 1,000,000
//!   `getppid` calls (a static x86_64 program, assembled here with `as`
//!   and `ld`), filtered against unfiltered (goal: within 1.1x). The
//!   kernel caches calls a filter always allows, so allowed calls do not
//!   run the filter at all; a filter that allows everything shows what
//!   remains, the kernel's slower entry path for any filtered task.
//!
//! After criterion's figures the sides run interleaved (see
//! `interleave/mod.rs`) and the ratios are printed with verdicts.
//!
//! Run as root: `cargo bench --bench seccomp`

#[path = "../tests/common/mod.rs"]
mod common;
mod interleave;

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use interleave::{Ratio, Side, whole};
use vguest::{Command, Context, Filesystem, Guest, GuestBuilder, Namespaces, Seccomp};

/// 1,000,000 `getppid` calls through `syscall`, then `exit(0)`.
const LOOP: &str = r#"
    .globl _start
_start:
    movq $1000000, %r12
1:
    movl $110, %eax
    syscall
    decq %r12
    jnz 1b
    movl $60, %eax
    xorl %edi, %edi
    syscall
"#;

/// Assembles [`LOOP`] into `dir`.
fn getppid_loop(dir: &Path) -> Option<PathBuf> {
    let (src, obj, exe) = (dir.join("loop.s"), dir.join("loop.o"), dir.join("getppid-loop"));
    std::fs::create_dir_all(dir).ok()?;
    std::fs::write(&src, LOOP).ok()?;
    let ok = |c: &mut std::process::Command| c.status().is_ok_and(|s| s.success());
    (ok(std::process::Command::new("as").arg("-o").arg(&obj).arg(&src))
        && ok(std::process::Command::new("ld").arg("-static").arg("-o").arg(&exe).arg(&obj)))
    .then_some(exe)
}

fn guest(seccomp: Seccomp, fs: Filesystem, payload: Command) -> GuestBuilder {
    let ns = Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC;
    Guest::builder("bench-seccomp")
        .context(Context::new().namespaces(ns).seccomp(seccomp))
        .filesystem(fs)
        .command(payload)
}

fn run(b: &GuestBuilder) {
    assert!(b.spawn().expect("spawn").wait().expect("wait").success());
}

fn seccomp(c: &mut Criterion) {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIP seccomp benchmarks: need root");
        return;
    }
    let root = || Filesystem::new(common::rootfs()).proc().dev();
    let true_default = guest(Seccomp::default(), root(), Command::new("/bin/true"));
    let true_open = guest(Seccomp::unconfined(), root(), Command::new("/bin/true"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-seccomp");
    let looped = if cfg!(target_arch = "x86_64") { getppid_loop(&dir) } else { None };
    let loop_guest = |s: Seccomp, exe: &Path| guest(s, root().bind_ro(exe, "/loop"), Command::new("/loop"));
    // A filter that allows everything shows what any filter costs a call
    // (the kernel's slower entry path for a filtered task).
    let allow_all = || Seccomp::with_default_action(vguest::SeccompAction::Allow);
    let loops = looped.as_ref().map(|exe| {
        let guest = |s| loop_guest(s, exe);
        (guest(Seccomp::default()), guest(Seccomp::unconfined()), guest(allow_all()))
    });

    let mut g = c.benchmark_group("seccomp");
    g.bench_function("spawn/default", |b| b.iter(|| run(&true_default)));
    g.bench_function("spawn/unconfined", |b| b.iter(|| run(&true_open)));
    if let Some((filtered, open, _)) = &loops {
        g.sample_size(20);
        g.bench_function("getppid_loop/default", |b| b.iter(|| run(filtered)));
        g.bench_function("getppid_loop/unconfined", |b| b.iter(|| run(open)));
    } else {
        eprintln!("SKIP getppid loop: needs x86_64 and as/ld (Debian: binutils)");
    }
    g.finish();

    if interleave::rounds() == 0 {
        return;
    }
    let true_any = guest(allow_all(), root(), Command::new("/bin/true"));
    let mut sides = vec![
        Side::new("spawn+wait /bin/true, unconfined", || whole(|| run(&true_open))),
        Side::new("spawn+wait /bin/true, default filter", || whole(|| run(&true_default))),
        Side::new("spawn+wait /bin/true, allow-all filter", || whole(|| run(&true_any))),
    ];
    if let Some((filtered, open, any)) = &loops {
        sides.push(Side::new("1,000,000 getppid, unconfined", || whole(|| run(open))));
        sides.push(Side::new("1,000,000 getppid, default filter", || whole(|| run(filtered))));
        sides.push(Side::new("1,000,000 getppid, allow-all filter", || whole(|| run(any))));
    }
    let r = interleave::measure(&mut sides);
    interleave::print_sides("seccomp", &r, false);
    let ratio = |what, num, den, goal| Ratio { what, num, den, goal };
    let mut ratios = vec![
        ratio("issue 14: spawn, default filter / unconfined", 1, 0, Some(1.03)),
        ratio("  spawn, allow-all filter / unconfined", 2, 0, None),
    ];
    if loops.is_some() {
        ratios.push(ratio("issue 14: getppid loop, default filter / unconfined", 4, 3, Some(1.1)));
        ratios.push(ratio("  getppid loop, allow-all filter / unconfined", 5, 3, None));
        ratios.push(ratio("  getppid loop, default filter / allow-all filter", 4, 5, None));
    }
    interleave::print_ratios(&r, &ratios);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, seccomp);
criterion_main!(benches);
