//! Spawns a guest with memory, process and CPU limits, shows its usage as
//! its own cgroups count it, pauses it, and shows what happens when a guest
//! outgrows its memory.
//!
//! Run as root: `cargo run --example limits`

use std::time::Duration;

use vguest::{CgroupLayout, Command, Guest, Resources};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cgroup layout: {}", CgroupLayout::detect()?);
    let limits = Resources::new()
        .memory_max(64 << 20)
        .memory_swap_max(0)
        .pids_max(32)
        .cpu_quota(Duration::from_millis(25), Duration::from_millis(100));

    // A CPU-bound guest held to a quarter of a CPU.
    let mut spinner = Guest::builder("spinner")
        .resources(limits.clone())
        .command(Command::new("/bin/sh").args(["-c", "while :; do :; done"]))
        .spawn()?;
    for dir in spinner.cgroup_paths() {
        println!("group:   {}", dir.display());
    }
    let before = spinner.stats()?.cpu_usage.unwrap_or_default();
    std::thread::sleep(Duration::from_secs(1));
    let stats = spinner.stats()?;
    let used = stats.cpu_usage.unwrap_or_default() - before;
    println!(
        "in 1 s:  {used:?} of CPU, {:?} bytes, {:?} processes",
        stats.memory_current, stats.pids_current
    );
    spinner.pause()?;
    let frozen = spinner.stats()?.cpu_usage;
    std::thread::sleep(Duration::from_millis(300));
    println!("paused:  CPU time {:?} -> {:?}", frozen, spinner.stats()?.cpu_usage);
    spinner.resume()?;
    spinner.kill_all()?;
    println!("spinner: {}", spinner.wait()?);

    // A guest that asks for more memory than it may have.
    let hog = Guest::builder("hog")
        .resources(limits)
        .command(Command::new("/bin/busybox").args([
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=128M",
            "count=1",
        ]))
        .spawn()?
        .wait()?;
    match hog.oom_killed() {
        true => println!("hog:     ended by the OOM killer: {hog}"),
        false => println!("hog:     {hog}"),
    }
    Ok(())
}
