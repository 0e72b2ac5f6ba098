//! What the resource layer adds to a guest's life: spawn and wait of
//! `/bin/true` with memory, pids and CPU limits, against the same guest
//! without cgroups (and with groups but no limits).
//!
//! All sides run in this one process; after criterion's figures an
//! interleaved run prints medians and ratios against the guest without
//! cgroups, so drift in the machine's load hits all sides alike.
//!
//! ```text
//! sudo cargo bench --bench resources
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vguest::{CgroupLayout, Command, Guest, GuestBuilder, Resources};

fn builders() -> [(&'static str, GuestBuilder); 3] {
    let base = |name: &str| Guest::builder(name).command(Command::new("/bin/true"));
    let limits = Resources::new()
        .memory_max(256 << 20)
        .pids_max(128)
        .cpu_quota(Duration::from_millis(50), Duration::from_millis(100));
    [
        ("no_cgroups", base("rb-plain")),
        ("groups_no_limits", base("rb-groups").resources(Resources::new())),
        ("memory_pids_cpu_limits", base("rb-limits").resources(limits)),
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
    let builders = builders();
    let mut group = c.benchmark_group(format!("spawn_wait_true_{layout}"));
    for (name, builder) in &builders {
        group.bench_function(*name, |b| b.iter(|| spawn_wait(black_box(builder))));
    }
    group.finish();

    // Interleaved, one of each per round, so that the machine's load hits
    // all sides alike; medians resist the preemption spikes of a busy host.
    let rounds = 400;
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for _ in 0..rounds {
        for (i, (_, builder)) in builders.iter().enumerate() {
            let start = Instant::now();
            spawn_wait(builder);
            samples[i].push(start.elapsed());
        }
    }
    let quantile = |i: usize, q: f64| {
        let mut v = samples[i].clone();
        v.sort();
        v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6
    };
    println!("\ninterleaved, {rounds} rounds, cgroup layout {layout}:");
    for (i, (name, _)) in builders.iter().enumerate() {
        println!(
            "  {name:<24} median {:>7.0} µs ({:+5.1}%)   p10 {:>7.0} µs ({:+5.1}%)",
            quantile(i, 0.5),
            (quantile(i, 0.5) / quantile(0, 0.5) - 1.0) * 100.0,
            quantile(i, 0.1),
            (quantile(i, 0.1) / quantile(0, 0.1) - 1.0) * 100.0,
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
