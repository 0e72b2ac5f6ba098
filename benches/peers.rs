//! vguest beside the peer tools, on the same work, in one process tree
//! (STYLE practice 16): bubblewrap, util-linux `unshare` and `nsenter`,
//! and `runc run` (crun where the host allows it).
//!
//! Each pair runs the peer tool (started with `std::process::Command`
//! and waited for) and the vguest call that does the same work, both
//! ending in `/bin/true`. Before timing, both sides of a pair run once
//! with a probe script instead of `/bin/true` that prints what the setup
//! produced (namespaces, capabilities, `no_new_privs`, id map, hostname,
//! its pid, `RLIMIT_NOFILE`, mount table); the differences are printed so
//! the reader can judge how equal the work is. Then each side gets a
//! warm-up and `VGUEST_PEERS_N` timed runs, interleaved (peer, vguest,
//! vguest, peer, ...) so both see the same load from whatever else runs
//! on the machine. Only the start + wait is timed; building commands,
//! bundles and guests is not.
//!
//! Run as root: `benches/compare.sh` (installs the tools first), or
//! `cargo bench --bench peers [-- PAIR-NAME-SUBSTRING...]`.
//!
//!   VGUEST_PEERS_N       timed runs per side (default 1000: about
//!                        three minutes on 2 cores)
//!   VGUEST_PEERS_WARMUP  untimed runs per side first (default 20)

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "peers/facts.rs"]
mod facts;
mod floor;
#[path = "peers/pairs.rs"]
mod pairs;
#[path = "peers/probe.rs"]
mod probe;
#[path = "peers/runc.rs"]
mod runc;
#[path = "peers/stats.rs"]
mod stats;
#[path = "peers/tool.rs"]
mod tool;

use std::path::PathBuf;

use stats::Row;

fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a count")),
        Err(_) => default,
    }
}

/// A directory under cargo's target directory for everything the run
/// writes (runc bundles and state); removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vguest-peers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the scratch directory");
        Scratch { dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIP peer comparison: needs root (run: sudo benches/compare.sh)");
        return;
    }
    // cargo passes `--bench`; anything else selects pairs by name.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n = env_count("VGUEST_PEERS_N", 1000).max(1);
    let warmup = env_count("VGUEST_PEERS_WARMUP", 20);

    let children_before = common::children();
    let root = common::rootfs();
    let scratch = Scratch::new();
    facts::print(root, n, warmup);

    let mut rows: Vec<Row> = Vec::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    for entry in pairs::all(root, &scratch) {
        if !filters.is_empty() && !filters.iter().any(|f| entry.name.contains(f.as_str())) {
            continue;
        }
        println!("\n== {}", entry.name);
        let result = (entry.build)().and_then(|mut pair| {
            for line in &pair.notes {
                println!("   {line}");
            }
            pair.run(n, warmup)
        });
        match result {
            Ok(row) => {
                println!("   {}", row.summary());
                rows.push(row);
            }
            Err(reason) => {
                println!("   SKIP: {reason}");
                skipped.push((entry.name.to_string(), reason));
            }
        }
    }
    let leftovers = pairs::cleanup_report(&scratch);
    drop(scratch);

    println!(
        "\n== results: {n} interleaved runs per side; ratio = peer / vguest at the median, p90 and p10\n"
    );
    stats::print_table(&rows);
    for (name, reason) in &skipped {
        println!("\nskipped: {name}: {reason}");
    }
    println!("\nload average at the end: {}", facts::loadavg());

    let mut problems = leftovers;
    if common::children() != children_before {
        problems.push("child processes of the benchmark are left over".into());
    }
    // Other work on this machine changes the host's mount table too, so
    // look only for mounts of the paths this run used.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let ours = [root.to_string_lossy().into_owned(), format!("vguest-peers-{}", std::process::id())];
    for line in mounts.lines().filter(|l| ours.iter().any(|p| l.contains(p.as_str()))) {
        problems.push(format!("host mount: {line}"));
    }
    if problems.is_empty() {
        println!("cleanup: no containers, cgroups, bundles, mounts or processes left behind");
    } else {
        for p in &problems {
            eprintln!("LEFT BEHIND: {p}");
        }
        std::process::exit(1);
    }
}
