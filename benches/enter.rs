//! The hot path of a guest manager: `Guest::exec` of `/bin/true` + wait
//! beside a raw setns+fork+exec floor, and spawn latency from a small
//! and a large parent (a `CLONE_VM` spawn must not grow with it).
//!
//! Run as root: `cargo bench --bench enter`

#[path = "../tests/common/mod.rs"]
mod common;
mod floor;

use std::os::fd::AsFd;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vguest::{Command, Context, Filesystem, Guest, Namespaces};

fn exec(c: &mut Criterion) {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIP enter benchmarks: need root");
        return;
    }
    let guest = Guest::builder("bench-enter")
        .filesystem(Filesystem::server(common::rootfs()))
        .command(Command::new("/bin/sleep").arg("100000"))
        .spawn()
        .unwrap();
    let own_pidns = std::fs::File::open("/proc/thread-self/ns/pid_for_children").unwrap();
    let mut g = c.benchmark_group("exec_true");
    g.sample_size(60).measurement_time(Duration::from_secs(8));
    g.bench_function("floor_setns_fork_exec", |b| {
        b.iter(|| floor::setns_fork_exec_wait(guest.pidfd(), own_pidns.as_fd()))
    });
    g.bench_function("vguest_exec", |b| {
        b.iter(|| assert!(guest.exec(Command::new("/bin/true")).unwrap().wait().unwrap().success()))
    });
    g.finish();
}

/// Holds `size` bytes of touched memory while benchmarking spawn + wait.
fn spawn_from_parent_of(c: &mut Criterion, label: &str, size: usize) {
    let mut ballast = vec![0u8; size];
    for page in ballast.chunks_mut(4096) {
        page[0] = 1;
    }
    let ns = Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC;
    let guest = Guest::builder("bench-size")
        .context(Context::new().namespaces(ns))
        .command(Command::new("/bin/true"));
    let mut g = c.benchmark_group("spawn_parent_size");
    g.sample_size(40).measurement_time(Duration::from_secs(6));
    g.bench_function(format!("vguest_spawn_{label}"), |b| {
        b.iter(|| assert!(guest.spawn().unwrap().wait().unwrap().success()))
    });
    g.bench_function(format!("floor_fork_clone_{label}"), |b| b.iter(|| floor::clone_exec_wait(floor::NS4)));
    g.finish();
    std::hint::black_box(&ballast);
}

fn parent_size(c: &mut Criterion) {
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    spawn_from_parent_of(c, "10MiB", 10 << 20);
    spawn_from_parent_of(c, "1GiB", 1 << 30);
}

criterion_group!(benches, exec, parent_size);
criterion_main!(benches);
