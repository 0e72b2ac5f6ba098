//! Spawn + wait of `/bin/true`, each vguest variant beside the raw
//! floor that does the same work (`benches/floor.rs`):
//!
//! - `spawn_true`: pid+mnt+uts+ipc, and +net, against a raw `clone` with
//!   the same flags + exec (issue 2: within 1.2x), fork-style and with
//!   `CLONE_VM | CLONE_VFORK` (the stricter floor, see `floor.rs`).
//! - `spawn_rootfs`: a busybox root + `/proc` + minimal `/dev` + a tmpfs
//!   against the same guest without a root (issue 3), and against a raw
//!   floor doing the same mounts and `pivot_root` (issue 6: a full spawn
//!   within 1.2x of the raw clone floor).
//! - `spawn_network`: no net namespace, `Network::new()` (own namespace,
//!   `lo` up) and a veth pair with IPv4 and IPv6 addresses (issue 5: what
//!   the network step costs). The veth side's `wait()` parks the host end
//!   (the kernel removes it with the namespace), and the interleaved part
//!   prints `spawn()` and `wait()` apart, and `wait()` alone of a veth
//!   guest against a `Network::new()` guest's (issue 17: within 2x).
//!   The same two with a `NetnsPool` (namespaces made ahead of time).
//!
//! After criterion's figures, the same sides run interleaved (see
//! `interleave/mod.rs`) and the goal ratios are printed with verdicts.
//!
//! Run as root: `cargo bench --bench spawn`

#[path = "../tests/common/mod.rs"]
mod common;
mod floor;
mod interleave;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use interleave::{Ratio, Side, spawn_then, whole};
use vguest::{
    Command, Context, Filesystem, Guest, GuestBuilder, Init, Namespaces, NetnsPool, Network, Overlay, Upper,
    Veth,
};

const NS4: Namespaces =
    Namespaces::PID.union(Namespaces::MOUNT).union(Namespaces::UTS).union(Namespaces::IPC);
const NS5: Namespaces = NS4.union(Namespaces::NET);
const TMP_SIZE: u64 = 16 << 20;

fn true_guest(ns: Namespaces) -> GuestBuilder {
    Guest::builder("bench").context(Context::new().namespaces(ns)).command(Command::new("/bin/true"))
}

fn run(b: &GuestBuilder) {
    let status = b.spawn().expect("spawn").wait().expect("wait");
    assert!(status.success());
}

/// Spawns a guest of `b`, then times its `wait()` alone.
fn wait_only(b: &GuestBuilder) -> interleave::Split {
    let mut guest = b.spawn().expect("spawn");
    whole(|| assert!(guest.wait().expect("wait").success()))
}

/// `run`, timing `spawn()` and `wait()` apart.
fn split(b: &GuestBuilder) -> interleave::Split {
    spawn_then(|| b.spawn().expect("spawn"), |mut g| assert!(g.wait().expect("wait").success()))
}

/// The full guest of the filesystem issue.
fn rootfs_guest() -> GuestBuilder {
    let fs = Filesystem::new(common::rootfs()).proc().dev().tmpfs("/tmp", TMP_SIZE);
    true_guest(NS4).filesystem(fs)
}

/// The veth of the network issue (host side `vgbench0`, 198.18.200.0/24
/// and fd42:200::/64; the host end is deleted by `wait()`).
fn veth_network() -> Network {
    Network::new().veth(
        Veth::new("vgbench0")
            .address("198.18.200.2/24")
            .address("fd42:200::2/64")
            .gateway("198.18.200.1")
            .host_address("198.18.200.1/24"),
    )
}

fn guest_floor() -> floor::GuestFloor {
    floor::GuestFloor::new(common::rootfs(), TMP_SIZE, floor::NS4, "bench")
}

fn spawn(c: &mut Criterion) {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIP spawn benchmarks: need root");
        return;
    }
    let ns4 = true_guest(NS4);
    let ns4_payload = true_guest(NS4).init(Init::Payload);
    let ns5 = true_guest(NS5);
    let ns5_payload = true_guest(NS5).init(Init::Payload);
    let with_root = rootfs_guest();
    let with_root_payload = rootfs_guest().init(Init::Payload);
    let full_floor = guest_floor();
    let netns = true_guest(NS4).network(Network::new());
    let veth = true_guest(NS4).network(veth_network());
    // Namespaces made ahead of time on another thread (issue 5's warm pool).
    let pool = NetnsPool::new(4).expect("netns pool");
    let netns_pooled = true_guest(NS4).network(Network::new().pool(&pool));
    let veth_pooled = true_guest(NS4).network(veth_network().pool(&pool));

    let mut g = c.benchmark_group("spawn_true");
    g.sample_size(40).measurement_time(Duration::from_secs(6));
    g.bench_function("floor_fork_exec", |b| b.iter(|| floor::clone_exec_wait(0)));
    g.bench_function("floor_clone_pid_mnt_uts_ipc", |b| b.iter(|| floor::clone_exec_wait(floor::NS4)));
    g.bench_function("floor_vfork_pid_mnt_uts_ipc", |b| b.iter(|| floor::vfork_exec_wait(floor::NS4)));
    g.bench_function("vguest_pid_mnt_uts_ipc", |b| b.iter(|| run(&ns4)));
    g.bench_function("vguest_pid_mnt_uts_ipc_payload_pid1", |b| b.iter(|| run(&ns4_payload)));
    g.bench_function("floor_clone_pid_mnt_uts_ipc_net", |b| {
        b.iter(|| floor::clone_exec_wait(floor::NS4 | libc::CLONE_NEWNET))
    });
    g.bench_function("floor_vfork_pid_mnt_uts_ipc_net", |b| {
        b.iter(|| floor::vfork_exec_wait(floor::NS4 | libc::CLONE_NEWNET))
    });
    g.bench_function("vguest_pid_mnt_uts_ipc_net", |b| b.iter(|| run(&ns5)));
    g.bench_function("vguest_pid_mnt_uts_ipc_net_payload_pid1", |b| b.iter(|| run(&ns5_payload)));
    g.finish();

    let mut g = c.benchmark_group("spawn_rootfs");
    g.sample_size(40).measurement_time(Duration::from_secs(6));
    g.bench_function("vguest_no_root", |b| b.iter(|| run(&ns4)));
    g.bench_function("floor_busybox_root_proc_dev_tmpfs", |b| b.iter(|| full_floor.run()));
    g.bench_function("floor_vfork_busybox_root_proc_dev_tmpfs", |b| b.iter(|| full_floor.run_vfork()));
    g.bench_function("vguest_busybox_root_proc_dev_tmpfs", |b| b.iter(|| run(&with_root)));
    g.bench_function("vguest_busybox_root_proc_dev_tmpfs_payload_pid1", |b| {
        b.iter(|| run(&with_root_payload))
    });
    let overlay =
        Filesystem::overlay(Overlay::new([common::rootfs()], Upper::Tmpfs { size: TMP_SIZE })).proc().dev();
    let with_overlay = true_guest(NS4).filesystem(overlay);
    g.bench_function("vguest_overlay_tmpfs_proc_dev", |b| b.iter(|| run(&with_overlay)));
    g.finish();

    let mut g = c.benchmark_group("spawn_network");
    g.sample_size(40).measurement_time(Duration::from_secs(6));
    g.bench_function("vguest_no_netns", |b| b.iter(|| run(&ns4)));
    g.bench_function("vguest_netns_lo", |b| b.iter(|| run(&netns)));
    g.bench_function("vguest_veth_v4_v6", |b| b.iter(|| run(&veth)));
    g.bench_function("vguest_netns_lo_pooled", |b| b.iter(|| run(&netns_pooled)));
    g.bench_function("vguest_veth_v4_v6_pooled", |b| b.iter(|| run(&veth_pooled)));
    g.finish();

    if interleave::rounds() == 0 {
        return;
    }
    let ns4_fork = || whole(|| floor::clone_exec_wait(floor::NS4));
    let ns4_vfork = || whole(|| floor::vfork_exec_wait(floor::NS4));
    let ns5_fork = || whole(|| floor::clone_exec_wait(floor::NS4 | libc::CLONE_NEWNET));
    let ns5_vfork = || whole(|| floor::vfork_exec_wait(floor::NS4 | libc::CLONE_NEWNET));
    let mut sides = [
        Side::new("floor fork-style clone(pid mnt uts ipc)", ns4_fork),
        Side::new("floor vfork-style clone(pid mnt uts ipc)", ns4_vfork),
        Side::new("vguest pid mnt uts ipc", || whole(|| run(&ns4))),
        Side::new("vguest pid mnt uts ipc, payload PID 1", || whole(|| run(&ns4_payload))),
        Side::new("floor fork-style clone(+net)", ns5_fork),
        Side::new("floor vfork-style clone(+net)", ns5_vfork),
        Side::new("vguest +net", || whole(|| run(&ns5))),
        Side::new("vguest +net, payload PID 1", || whole(|| run(&ns5_payload))),
    ];
    let r = interleave::measure(&mut sides);
    interleave::print_sides("spawn_true", &r, false);
    interleave::print_ratios(
        &r,
        &[
            Ratio { what: "issue 2: pid+mnt+uts+ipc / fork-style floor", num: 2, den: 0, goal: Some(1.2) },
            Ratio { what: "issue 2: pid+mnt+uts+ipc / vfork-style floor", num: 2, den: 1, goal: Some(1.2) },
            Ratio { what: "  same, payload as PID 1 / vfork-style floor", num: 3, den: 1, goal: Some(1.2) },
            Ratio { what: "issue 2: +net / fork-style floor +net", num: 6, den: 4, goal: Some(1.2) },
            Ratio { what: "issue 2: +net / vfork-style floor +net", num: 6, den: 5, goal: Some(1.2) },
            Ratio { what: "  same, payload as PID 1 / vfork-style floor", num: 7, den: 5, goal: Some(1.2) },
            Ratio { what: "  built-in init: default / payload PID 1", num: 2, den: 3, goal: None },
        ],
    );

    let mut sides = [
        Side::new("vguest no root (pid mnt uts ipc)", || whole(|| run(&ns4))),
        Side::new("floor fork-style: root+proc+dev+tmpfs", || whole(|| full_floor.run())),
        Side::new("floor vfork-style: root+proc+dev+tmpfs", || whole(|| full_floor.run_vfork())),
        Side::new("vguest root+proc+dev+tmpfs", || whole(|| run(&with_root))),
        Side::new("vguest root+proc+dev+tmpfs, payload PID 1", || whole(|| run(&with_root_payload))),
    ];
    let r = interleave::measure(&mut sides);
    interleave::print_sides("spawn_rootfs", &r, false);
    interleave::print_ratios(
        &r,
        &[
            Ratio { what: "issue 3: with root / without root", num: 3, den: 0, goal: None },
            Ratio { what: "issue 6: full guest / fork-style full floor", num: 3, den: 1, goal: Some(1.2) },
            Ratio { what: "issue 6: full guest / vfork-style full floor", num: 3, den: 2, goal: Some(1.2) },
            Ratio {
                what: "  same, payload as PID 1 / vfork-style full floor",
                num: 4,
                den: 2,
                goal: Some(1.2),
            },
        ],
    );

    let mut sides = [
        Side::new("floor vfork-style clone(pid mnt uts ipc)", ns4_vfork),
        Side::new("floor vfork-style clone(+net)", ns5_vfork),
        Side::new("vguest no net namespace", || split(&ns4)),
        Side::new("vguest Network::new() (lo)", || split(&netns)),
        Side::new("vguest veth + IPv4/IPv6 + gateway", || split(&veth)),
        Side::new("vguest Network::new(), pooled namespace", || split(&netns_pooled)),
        Side::new("vguest veth, pooled namespace", || split(&veth_pooled)),
        Side::new("wait() alone: Network::new()", || wait_only(&netns)),
        Side::new("wait() alone: veth", || wait_only(&veth)),
    ];
    let r = interleave::measure(&mut sides);
    interleave::print_sides("spawn_network", &r, true);
    interleave::print_ratios(
        &r,
        &[
            Ratio { what: "issue 5: kernel: floor +net / floor", num: 1, den: 0, goal: None },
            Ratio { what: "issue 5: Network::new() / no net namespace", num: 3, den: 2, goal: None },
            Ratio { what: "issue 5: veth / no net namespace", num: 4, den: 2, goal: None },
            Ratio { what: "issue 5: veth / Network::new()", num: 4, den: 3, goal: None },
            Ratio { what: "issue 5: pooled Network::new() / Network::new()", num: 5, den: 3, goal: None },
            Ratio {
                what: "issue 5: pooled Network::new() / vfork-style floor +net",
                num: 5,
                den: 1,
                goal: None,
            },
            Ratio { what: "issue 5: pooled veth / veth", num: 6, den: 4, goal: None },
            Ratio {
                what: "issue 17: wait() of a veth guest / of Network::new()",
                num: 8,
                den: 7,
                goal: Some(2.0),
            },
        ],
    );
}

criterion_group!(benches, spawn);
criterion_main!(benches);
