//! Many live guests in one process: spawns `COUNT` guests, each with its
//! own network namespace and a veth, cgroups with limits, a read-only
//! busybox root and `sleep` as its payload, and keeps them all running;
//! prints how spawn latency, descriptors and memory grow with the number
//! of live guests; then stops them one after another and checks that
//! nothing is left on the host.
//!
//! Run as root: `cargo run --release --example many -- 5000` (CI runs it
//! with 500 through `tests/examples.rs`). Issue 17 asks for 10,000, but
//! the kernel's memory for guests that each have a memory cgroup and
//! their own superblocks grows with the square of their number (every
//! memory cgroup keeps state for every superblock's shrinker, and removing
//! one walks them all): on a 24 GiB machine about 9,500 exhaust it. Should
//! this process die, its guests end with it and the next spawn beneath
//! the same parents sweeps their groups.
//! Needs `/bin/busybox` (Debian: `apt-get install busybox-static`).

mod support;

use std::time::{Duration, Instant};

use vguest::{Command, Filesystem, Guest, Network, Resources, Veth};

/// The median of `samples` (which it sorts).
fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Memory in use on the host, from `/proc/meminfo` (total less available).
fn used_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |key: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
            * 1024
    };
    field("MemTotal:").saturating_sub(field("MemAvailable:"))
}

/// Host-side links whose name starts with `prefix`.
fn links(prefix: &str) -> usize {
    std::fs::read_dir("/sys/class/net")
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(prefix)).count())
        .unwrap_or(0)
}

/// Raises the soft limit on open files to the hard one, as servers do.
fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    hard
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(500);
    let root = support::BusyboxRoot::new("many")?;
    let nofile = raise_nofile();
    let guest = |i: usize| {
        let net = Network::new().veth(Veth::new(format!("vgm{i}")).address("198.18.0.2/30"));
        Guest::builder(format!("many{i}"))
            .filesystem(Filesystem::server(root.path()))
            .network(net)
            .resources(Resources::new().pids_max(16).memory_max(32 << 20))
            .command(Command::new("/bin/sleep").arg("100000"))
    };
    // The first spawn opens what a process keeps for all its guests (the
    // init's image): count from after it.
    let mut warm = guest(count).spawn()?;
    warm.kill()?;
    warm.wait()?;
    let (fds_before, memory_before) = (fds(), used_memory());
    println!("spawning {count} guests (open files limit {nofile})");

    let mut guests = Vec::with_capacity(count);
    let mut spawn_times = Vec::with_capacity(count);
    let started = Instant::now();
    for i in 0..count {
        let builder = guest(i);
        let t = Instant::now();
        let guest = builder.spawn()?;
        spawn_times.push(t.elapsed());
        guests.push(guest);
        if (i + 1) % 1000 == 0 {
            println!("  {} live after {:.1?}", i + 1, started.elapsed());
        }
    }
    let window = 10.min(count);
    let first = median(&mut spawn_times[..window].to_vec());
    let last = median(&mut spawn_times[count - window..].to_vec());
    println!("spawn, median of guests 1-{window}: {first:.2?}");
    println!("spawn, median of guests {}-{count}: {last:.2?}", count - window + 1);
    println!("last/first: {:.2}", last.as_secs_f64() / first.as_secs_f64());
    println!("all {count} spawned in {:.2?}", started.elapsed());
    let per_guest_fds = (fds() - fds_before) as f64 / count as f64;
    println!("descriptors per live guest: {per_guest_fds:.2}");
    let memory = used_memory().saturating_sub(memory_before) as f64 / count as f64;
    println!("host memory per live guest: {:.0} KiB", memory / 1024.0);

    let started = Instant::now();
    let mut stop_times = Vec::with_capacity(count);
    for mut guest in guests {
        let t = Instant::now();
        guest.kill()?;
        guest.wait()?;
        stop_times.push(t.elapsed());
    }
    let stopped = started.elapsed();
    println!("stopped one after another in {stopped:.2?} (median {:.2?} each)", median(&mut stop_times));
    let deadline = Instant::now() + Duration::from_secs(60);
    // Parked host ends (`vgx…`) go with their namespaces, moments later.
    while links("vgm") + links("vgx") > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = links("vgm") + links("vgx");
    println!("host-side links left: {left}; descriptors left: {}", fds() - fds_before);
    if left > 0 || fds() != fds_before {
        return Err("guests left something on the host".into());
    }
    Ok(())
}
