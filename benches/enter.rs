//! The hot path of a guest manager: `Guest::exec` of `/bin/true` + wait
//! beside a raw setns+fork+exec floor, and spawn latency from a small
//! and a large parent (a `CLONE_VM` spawn must not grow with it).
//!
//! After criterion's figures, both comparisons run again interleaved
//! (see `interleave/mod.rs`): exec beside its floor round by round, and
//! the two parent sizes in alternating blocks (the 1 GiB of touched
//! memory is made and freed between blocks, outside the timed part).
//!
//! Run as root: `cargo bench --bench enter`

#[path = "../tests/common/mod.rs"]
mod common;
mod floor;
mod interleave;

use std::os::fd::AsFd;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use interleave::{Ratio, Side, whole};
use vguest::{Command, Context, Filesystem, Guest, GuestBuilder, Namespaces};

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
    g.bench_function("floor_setns_vfork_exec", |b| {
        b.iter(|| floor::setns_vfork_exec_wait(guest.pidfd(), own_pidns.as_fd()))
    });
    g.bench_function("vguest_exec", |b| {
        b.iter(|| assert!(guest.exec(Command::new("/bin/true")).unwrap().wait().unwrap().success()))
    });
    g.finish();

    if interleave::rounds() == 0 {
        return;
    }
    let mut sides = [
        Side::new("floor setns(pidfd)+fork+exec", || {
            whole(|| floor::setns_fork_exec_wait(guest.pidfd(), own_pidns.as_fd()))
        }),
        Side::new("floor setns(pidfd)+vfork+exec", || {
            whole(|| floor::setns_vfork_exec_wait(guest.pidfd(), own_pidns.as_fd()))
        }),
        Side::new("vguest Guest::exec", || {
            whole(|| assert!(guest.exec(Command::new("/bin/true")).unwrap().wait().unwrap().success()))
        }),
    ];
    let r = interleave::measure(&mut sides);
    interleave::print_sides("exec_true", &r, false);
    interleave::print_ratios(
        &r,
        &[
            Ratio { what: "issue 6: exec / fork-style floor", num: 2, den: 0, goal: Some(1.15) },
            Ratio { what: "issue 6: exec / vfork-style floor", num: 2, den: 1, goal: Some(1.15) },
        ],
    );
}

/// `size` bytes of touched memory.
fn ballast(size: usize) -> Vec<u8> {
    let mut ballast = vec![0u8; size];
    for page in ballast.chunks_mut(4096) {
        page[0] = 1;
    }
    ballast
}

fn size_guest() -> GuestBuilder {
    let ns = Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC;
    Guest::builder("bench-size").context(Context::new().namespaces(ns)).command(Command::new("/bin/true"))
}

/// Holds `size` bytes of touched memory while benchmarking spawn + wait.
fn spawn_from_parent_of(c: &mut Criterion, label: &str, size: usize) {
    let ballast = ballast(size);
    let guest = size_guest();
    let mut g = c.benchmark_group("spawn_parent_size");
    g.sample_size(40).measurement_time(Duration::from_secs(6));
    g.bench_function(format!("vguest_spawn_{label}"), |b| {
        b.iter(|| assert!(guest.spawn().unwrap().wait().unwrap().success()))
    });
    g.bench_function(format!("floor_fork_clone_{label}"), |b| b.iter(|| floor::clone_exec_wait(floor::NS4)));
    g.bench_function(format!("floor_vfork_clone_{label}"), |b| b.iter(|| floor::vfork_exec_wait(floor::NS4)));
    g.finish();
    std::hint::black_box(&ballast);
}

fn parent_size(c: &mut Criterion) {
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    spawn_from_parent_of(c, "10MiB", 10 << 20);
    spawn_from_parent_of(c, "1GiB", 1 << 30);

    let rounds = interleave::rounds();
    if rounds == 0 {
        return;
    }
    // Blocks of `per_block` rounds, the parent's size alternating. The
    // fork-style floor copies (and tears down) the 1 GiB parent's page
    // tables, about 60 ms a run: it gets a few rounds per block, after the
    // other sides, so that its memory traffic does not disturb them.
    let (blocks, per_block) = (10, rounds.div_ceil(10));
    let guest = size_guest();
    let names = ["vguest spawn (CLONE_VM)", "floor vfork-style clone(NS4)", "floor fork-style clone(NS4)"];
    let mut medians: [[Vec<Duration>; 2]; 3] = Default::default();
    for block in 0..2 * blocks {
        let big = block % 2;
        let _ballast = ballast(if big == 1 { 1 << 30 } else { 10 << 20 });
        let mut sides = [
            Side::new(names[0], || whole(|| assert!(guest.spawn().unwrap().wait().unwrap().success()))),
            Side::new(names[1], || whole(|| floor::vfork_exec_wait(floor::NS4))),
        ];
        let r = interleave::measure_n(&mut sides, per_block, 2);
        let mut fork = [Side::new(names[2], || whole(|| floor::clone_exec_wait(floor::NS4)))];
        let f = interleave::measure_n(&mut fork, 5, 1);
        for (i, m) in r.iter().chain(&f).enumerate() {
            medians[i][big].push(m.total.median);
        }
    }
    println!(
        "\n== spawn_parent_size (alternating blocks: {blocks} x {per_block} rounds per size, fork floor 5 per block; load {})",
        interleave::loadavg()
    );
    for (i, name) in names.iter().enumerate() {
        // The median of the block medians, per size.
        let mid = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (small, big) = (mid(&mut medians[i][0]), mid(&mut medians[i][1]));
        let ratio = big.as_secs_f64() / small.as_secs_f64();
        let verdict = match (i, ratio <= 1.2) {
            (0, true) => "goal <= 1.20x: met",
            (0, false) => "goal <= 1.20x: MISSED",
            _ => "",
        };
        println!(
            "   {name:<30} 10 MiB parent {:>6.0} µs, 1 GiB parent {:>6.0} µs: {ratio:.2}x   {verdict}",
            interleave::us(small),
            interleave::us(big)
        );
    }
}

criterion_group!(benches, exec, parent_size);
criterion_main!(benches);
