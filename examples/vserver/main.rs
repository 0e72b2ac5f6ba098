//! A Linux-VServer style guest manager on vguest: named guests described
//! by TOML files, built on a shared template, started in one command and
//! entered, inspected and stopped from others.
//!
//! ```text
//! vserver [--config-dir DIR] [--run-dir DIR] [--guests-dir DIR] COMMAND
//!   build NAME --template DIR   writable layer on DIR + starter NAME.toml
//!   start NAME [-- CMD...]      start detached (its init, or CMD)
//!   enter NAME                  interactive shell inside
//!   exec NAME -- CMD...         run CMD inside, exit with its status
//!   stop NAME [--timeout S]     SIGTERM, wait S seconds (10), kill the rest
//!   status [NAME] | list        state, pid, memory, CPU, pids, addresses
//! ```
//!
//! Defaults: configurations in `/etc/vguest`, state in `/run/vguest`,
//! writable layers in `/var/lib/vguest`. Run as root:
//!
//! ```text
//! cargo run --example vserver -- build web1 --template /srv/templates/busybox
//! cargo run --example vserver -- start web1
//! cargo run --example vserver -- exec web1 -- ps
//! cargo run --example vserver -- status
//! cargo run --example vserver -- stop web1
//! ```

mod commands;
mod config;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;

/// Where things live.
struct Dirs {
    /// `NAME.toml` files.
    config: PathBuf,
    /// `NAME.pid` and `NAME.log` of started guests.
    run: PathBuf,
    /// Each guest's writable layer (`NAME/upper`, `NAME/work`).
    guests: PathBuf,
}

const USAGE: &str = "usage: vserver [--config-dir DIR] [--run-dir DIR] [--guests-dir DIR] COMMAND
  build NAME --template DIR | start NAME [-- CMD...] | enter NAME | exec NAME -- CMD...
  stop NAME [--timeout SECONDS] | status [NAME] | list";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut dirs =
        Dirs { config: "/etc/vguest".into(), run: "/run/vguest".into(), guests: "/var/lib/vguest".into() };
    // Global options come before the command.
    while let Some(flag) = args.first().filter(|a| a.starts_with("--")).cloned() {
        let slot = match flag.as_str() {
            "--config-dir" => &mut dirs.config,
            "--run-dir" => &mut dirs.run,
            "--guests-dir" => &mut dirs.guests,
            "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => return fail(&format!("unknown option {flag}\n{USAGE}")),
        };
        if args.len() < 2 {
            return fail(&format!("{flag} needs a directory"));
        }
        *slot = args[1].clone().into();
        args.drain(..2);
    }
    match commands::run(&dirs, &args) {
        Ok(code) => code,
        Err(message) if message.is_empty() => fail(USAGE),
        Err(message) => fail(&message),
    }
}

/// A one-line message a person can act on, and a failing exit.
fn fail(message: &str) -> ExitCode {
    eprintln!("vserver: {message}");
    ExitCode::from(1)
}
