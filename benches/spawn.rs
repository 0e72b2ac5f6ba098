//! Spawn + wait of `/bin/true`: vguest beside the raw-syscall floor with
//! the same namespaces, and a guest with its own root filesystem beside
//! one without.
//!
//! Run as root: `cargo bench --bench spawn`

#[path = "../tests/common/mod.rs"]
mod common;
mod floor;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vguest::{Command, Context, Filesystem, Guest, Init, Namespaces, Overlay, Upper};

fn true_guest(name: &str, ns: Namespaces) -> vguest::GuestBuilder {
    Guest::builder(name).context(Context::new().namespaces(ns)).command(Command::new("/bin/true"))
}

fn run(b: &vguest::GuestBuilder) {
    let status = b.spawn().expect("spawn").wait().expect("wait");
    assert!(status.success());
}

fn spawn(c: &mut Criterion) {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIP spawn benchmarks: need root");
        return;
    }
    let ns4 = Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC;
    let mut g = c.benchmark_group("spawn_true");
    g.sample_size(40).measurement_time(Duration::from_secs(6));
    g.bench_function("floor_fork_exec", |b| b.iter(|| floor::clone_exec_wait(0)));
    g.bench_function("floor_clone_pid_mnt_uts_ipc", |b| b.iter(|| floor::clone_exec_wait(floor::NS4)));
    let guest = true_guest("bench", ns4);
    g.bench_function("vguest_pid_mnt_uts_ipc", |b| b.iter(|| run(&guest)));
    let guest1 = true_guest("bench", ns4).init(Init::Payload);
    g.bench_function("vguest_pid_mnt_uts_ipc_payload_pid1", |b| b.iter(|| run(&guest1)));
    g.bench_function("floor_clone_pid_mnt_uts_ipc_net", |b| {
        b.iter(|| floor::clone_exec_wait(floor::NS4 | libc::CLONE_NEWNET))
    });
    let guest_net = true_guest("bench", ns4 | Namespaces::NET);
    g.bench_function("vguest_pid_mnt_uts_ipc_net", |b| b.iter(|| run(&guest_net)));
    g.finish();

    let root = common::rootfs();
    let mut g = c.benchmark_group("spawn_rootfs");
    g.sample_size(40).measurement_time(Duration::from_secs(6));
    let no_root = true_guest("bench", ns4);
    g.bench_function("vguest_no_root", |b| b.iter(|| run(&no_root)));
    let fs = Filesystem::new(root).proc().dev().tmpfs("/tmp", 16 << 20);
    let with_root = true_guest("bench", ns4).filesystem(fs);
    g.bench_function("vguest_busybox_root_proc_dev_tmpfs", |b| b.iter(|| run(&with_root)));
    let overlay = Filesystem::overlay(Overlay::new([root], Upper::Tmpfs { size: 16 << 20 })).proc().dev();
    let with_overlay = true_guest("bench", ns4).filesystem(overlay);
    g.bench_function("vguest_overlay_tmpfs_proc_dev", |b| b.iter(|| run(&with_overlay)));
    g.finish();
}

criterion_group!(benches, spawn);
criterion_main!(benches);
