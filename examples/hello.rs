//! Spawns a guest and prints what it sees from inside: its PID, hostname,
//! capabilities and uptime, next to the host's.
//!
//! Run as root: `cargo run --example hello`

use std::io::Read;

use vguest::{Command, Context, Guest, Stdio};

const SCRIPT: &str = r#"
echo "inside:  pid $$, hostname $(hostname), uptime $(cut -d' ' -f1 /proc/uptime)s"
grep -E '^(Cap(Bnd|Eff|Amb)|NoNewPrivs)' /proc/self/status | tr '\t' ' ' | sed 's/^/         /'
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut guest = Guest::builder("hello")
        .context(Context::new().hostname("hello.guest").uptime_from_zero())
        .command(Command::new("/bin/sh").args(["-c", SCRIPT]).stdout(Stdio::Piped))
        .spawn()?;
    let mut out = String::new();
    guest.stdout.take().expect("piped").read_to_string(&mut out)?;
    let status = guest.wait()?;
    let uptime = std::fs::read_to_string("/proc/uptime")?;
    println!(
        "host:    pid {}, hostname {}, uptime {}s",
        std::process::id(),
        nix::unistd::gethostname()?.to_string_lossy(),
        uptime.split(' ').next().unwrap_or("?")
    );
    print!("{out}");
    println!("guest {} ended with {status}", guest.name());
    Ok(())
}
