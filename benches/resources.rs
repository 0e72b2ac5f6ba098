//! What the resource layer adds to a guest's life: spawn and wait of
//! `/bin/true` with memory, pids and CPU limits, against the same guest
//! without cgroups (and with groups but no limits).
//!
//! The goal (issue 4: "the cgroup step adds under 15% to a full guest
//! spawn") is measured on a full guest: the default namespaces, a busybox
//! root with `/proc`, a minimal `/dev` and a tmpfs on `/tmp`. The same
//! three variants of a bare guest (default namespaces, no root) show the
//! cgroup step's cost against a smaller base. `wait()` removes the
//! groups, so the figures cover the whole life of the groups.
//!
//! Back-to-back spawns hide a cost that a guest manager meets all the
//! time: on cgroup v1 and hybrid hosts, the first write to a
//! `cgroup.procs` file after a quiet spell waits for an RCU grace period
//! (the kernel's cgroup_threadgroup_rwsem leaves its fast mode only after
//! one). A last part spawns the full guest once every 200 ms
//! (`VGUEST_BENCH_IDLE_ROUNDS`, default 20 per side; the pause is not
//! timed) to show it.
//!
//! All sides run in this one process; after criterion's figures an
//! interleaved run prints medians and ratios against the guest without
//! cgroups (see `interleave/mod.rs`), with `spawn()` and `wait()` apart.
//!
//! ```text
//! sudo cargo bench --bench resources
//! ```

#[path = "../tests/common/mod.rs"]
mod common;
mod interleave;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use interleave::{Ratio, Side, spawn_then};
use vguest::{CgroupLayout, Command, Filesystem, Guest, GuestBuilder, Resources};

fn limits() -> Resources {
    Resources::new()
        .memory_max(256 << 20)
        .pids_max(128)
        .cpu_quota(Duration::from_millis(50), Duration::from_millis(100))
}

/// No cgroups, groups without limits, memory+pids+cpu limits; on a full
/// guest (`full`) or a bare one.
fn builders(full: bool) -> [(&'static str, GuestBuilder); 3] {
    let base = |name: &str| {
        let b = Guest::builder(name).command(Command::new("/bin/true"));
        match full {
            true => b.filesystem(Filesystem::new(common::rootfs()).proc().dev().tmpfs("/tmp", 16 << 20)),
            false => b,
        }
    };
    [
        ("no_cgroups", base("rb-plain")),
        ("groups_no_limits", base("rb-groups").resources(Resources::new())),
        ("memory_pids_cpu_limits", base("rb-limits").resources(limits())),
    ]
}

fn spawn_wait(b: &GuestBuilder) {
    let status = b.spawn().expect("spawn").wait().expect("wait");
    assert!(status.success());
}

fn bench(c: &mut Criterion) {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIP resources bench: needs root");
        return;
    }
    let layout = CgroupLayout::detect().map_or_else(|e| e.to_string(), |l| l.to_string());
    let full = builders(true);
    let bare = builders(false);
    for (label, builders) in [("full_guest", &full), ("bare_guest", &bare)] {
        let mut group = c.benchmark_group(format!("spawn_wait_true_{label}_{layout}"));
        group.sample_size(40).measurement_time(Duration::from_secs(6));
        for (name, builder) in builders {
            group.bench_function(*name, |b| b.iter(|| spawn_wait(black_box(builder))));
        }
        group.finish();
    }

    if interleave::rounds() == 0 {
        return;
    }
    for (label, builders) in [("full guest (root+proc+dev+tmpfs)", &full), ("bare guest (no root)", &bare)] {
        let mut sides: Vec<Side<'_>> = builders
            .iter()
            .map(|(name, b)| {
                Side::new(*name, move || {
                    spawn_then(
                        || b.spawn().expect("spawn"),
                        |mut g| assert!(g.wait().expect("wait").success()),
                    )
                })
            })
            .collect();
        let r = interleave::measure(&mut sides);
        interleave::print_sides(&format!("{label}, cgroup layout {layout}"), &r, true);
        let goal = if label.starts_with("full") { Some(1.15) } else { None };
        interleave::print_ratios(
            &r,
            &[
                Ratio { what: "issue 4: limits / no cgroups", num: 2, den: 0, goal },
                Ratio { what: "  groups without limits / no cgroups", num: 1, den: 0, goal: None },
            ],
        );
    }
    beside_a_running_guest(&full, &layout);
    idle(&full, &layout);
}

/// The full guest's variants while another guest with limits runs, as on
/// a guest manager's host: the intermediate `vguest` groups then exist
/// already, and each spawn makes and removes only the guest's own groups.
fn beside_a_running_guest(full: &[(&'static str, GuestBuilder); 3], layout: &str) {
    let mut resident = Guest::builder("rb-resident")
        .resources(limits())
        .command(Command::new("/bin/sleep").arg("100000"))
        .spawn()
        .expect("resident guest");
    let mut sides: Vec<Side<'_>> = full
        .iter()
        .map(|(name, b)| {
            Side::new(*name, move || {
                spawn_then(|| b.spawn().expect("spawn"), |mut g| assert!(g.wait().expect("wait").success()))
            })
        })
        .collect();
    let r = interleave::measure(&mut sides);
    interleave::print_sides(&format!("full guest beside a running guest, cgroup layout {layout}"), &r, true);
    interleave::print_ratios(
        &r,
        &[
            Ratio {
                what: "issue 4 (vguest parents exist): limits / no cgroups",
                num: 2,
                den: 0,
                goal: Some(1.15),
            },
            Ratio { what: "  groups without limits / no cgroups", num: 1, den: 0, goal: None },
        ],
    );
    resident.kill().expect("kill resident");
    resident.wait().expect("wait resident");
}

/// Spawns of the full guest's variants, one every 200 ms, interleaved.
fn idle(full: &[(&'static str, GuestBuilder); 3], layout: &str) {
    let rounds = std::env::var("VGUEST_BENCH_IDLE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    if rounds == 0 {
        return;
    }
    let mut sides: Vec<Side<'_>> = full
        .iter()
        .map(|(name, b)| {
            Side::new(*name, move || {
                std::thread::sleep(Duration::from_millis(200));
                spawn_then(|| b.spawn().expect("spawn"), |mut g| assert!(g.wait().expect("wait").success()))
            })
        })
        .collect();
    let r = interleave::measure_n(&mut sides, rounds, 1);
    println!(
        "\n== full guest after 200 ms idle, cgroup layout {layout} ({rounds} rounds, load {})",
        interleave::loadavg()
    );
    for m in &r {
        println!(
            "   {:<40} median {:>7.0} µs  p10 {:>7.0} µs  | spawn() median {:>6.0} µs",
            m.name,
            interleave::us(m.total.median),
            interleave::us(m.total.p10),
            interleave::us(m.first.median)
        );
    }
    interleave::print_ratios(
        &r,
        &[
            Ratio { what: "issue 4 (idle): limits / no cgroups", num: 2, den: 0, goal: Some(1.15) },
            Ratio { what: "  groups without limits / no cgroups", num: 1, den: 0, goal: None },
        ],
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
