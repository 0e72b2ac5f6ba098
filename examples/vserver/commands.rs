//! The commands: each returns the exit code, or a one-line message.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use vguest::{Command, ExitStatus, Stdio};

use crate::Dirs;
use crate::config::{self, GuestConfig};
use crate::state;

type Outcome = Result<ExitCode, String>;

pub fn run(dirs: &Dirs, args: &[String]) -> Outcome {
    let (command, rest) = args.split_first().ok_or_else(String::new)?;
    let name = || rest.first().map(String::as_str).ok_or_else(|| format!("{command} needs a guest name"));
    match command.as_str() {
        "build" => build(dirs, name()?, &rest[1..]),
        "start" => start(dirs, name()?, after_dashes(&rest[1..])),
        "enter" => enter(dirs, name()?),
        "exec" => {
            let cmd = after_dashes(&rest[1..]).ok_or("exec needs a command after --")?;
            exec(dirs, name()?, cmd)
        }
        "stop" => stop(dirs, name()?, &rest[1..]),
        "status" => status(dirs, rest.first().map(String::as_str)),
        "list" => status(dirs, None),
        other => Err(format!("unknown command {other:?}")),
    }
}

/// The words after `--`, if any.
fn after_dashes(args: &[String]) -> Option<&[String]> {
    let at = args.iter().position(|a| a == "--")?;
    Some(&args[at + 1..]).filter(|c| !c.is_empty())
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(format!("{name:?} is not a guest name (letters, digits, '.', '_', '-')")) }
}

fn config_path(dirs: &Dirs, name: &str) -> PathBuf {
    dirs.config.join(format!("{name}.toml"))
}

fn load(dirs: &Dirs, name: &str) -> Result<GuestConfig, String> {
    check_name(name)?;
    let path = config_path(dirs, name);
    if !path.exists() {
        return Err(format!(
            "no guest {name}: {} does not exist (vserver build {name} --template DIR)",
            path.display()
        ));
    }
    config::load(&path)
}

/// `build NAME --template DIR`: the guest's writable layer on the shared
/// template, and a starter configuration.
fn build(dirs: &Dirs, name: &str, args: &[String]) -> Outcome {
    check_name(name)?;
    let template = match args {
        [flag, dir] if flag == "--template" => PathBuf::from(dir),
        _ => return Err("build needs --template DIR".into()),
    };
    if !template.join("bin").is_dir() {
        return Err(format!("template {} does not exist or has no /bin", template.display()));
    }
    let path = config_path(dirs, name);
    if path.exists() {
        return Err(format!("guest {name} exists already ({})", path.display()));
    }
    let layer = dirs.guests.join(name);
    for dir in ["upper", "work"] {
        std::fs::create_dir_all(layer.join(dir))
            .map_err(|e| format!("{}: {e}", layer.join(dir).display()))?;
    }
    let template = template.canonicalize().map_err(|e| format!("{}: {e}", template.display()))?;
    let text = toml::to_string_pretty(&GuestConfig::starter(&template, &layer)).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&dirs.config).map_err(|e| format!("{}: {e}", dirs.config.display()))?;
    let header =
        format!("# Guest {name}: made by `vserver build {name} --template {}`.\n\n", template.display());
    let network = "\n# Networking (default: a stack of its own with only lo). For example:\n\
        # [[network.veth]]\n\
        # host_name = \"vg{name}\"\n\
        # addresses = [\"198.18.0.2/24\", \"fd42::2/64\"]\n\
        # gateways = [\"198.18.0.1\"]\n\
        # host_addresses = [\"198.18.0.1/24\"]\n";
    let text = header + &text + &network.replace("{name}", name);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("built {name}: layer {}, configuration {}", layer.display(), path.display());
    Ok(ExitCode::SUCCESS)
}

/// `start NAME [-- CMD...]`: a detached guest that outlives this command.
fn start(dirs: &Dirs, name: &str, cmd: Option<&[String]>) -> Outcome {
    let config = load(dirs, name)?;
    if let Some(guest) = state::running(&dirs.run, name) {
        return Err(format!("guest {name} is already running (pid {})", guest.id()));
    }
    std::fs::create_dir_all(&dirs.run).map_err(|e| format!("{}: {e}", dirs.run.display()))?;
    let log_path = dirs.run.join(format!("{name}.log"));
    let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    let command = cmd.map(|c| Command::new(&c[0]).args(&c[1..]));
    let stdio = [Stdio::Null, Stdio::from(log), Stdio::from(err_log)];
    let guest = config
        .builder(name, command, stdio)?
        .spawn()
        .map_err(|e| format!("starting {name}: {}", chain(&e)))?;
    let pid = guest.detach();
    state::record(&dirs.run, name, pid)?;
    println!("started {name} (pid {pid}, output in {})", log_path.display());
    Ok(ExitCode::SUCCESS)
}

fn not_running(name: &str) -> String {
    format!("guest {name} is not running (vserver start {name})")
}

/// `enter NAME`: a login shell inside, on this terminal.
fn enter(dirs: &Dirs, name: &str) -> Outcome {
    load(dirs, name)?;
    let guest = state::running(&dirs.run, name).ok_or_else(|| not_running(name))?;
    let status = guest.enter().map_err(|e| format!("entering {name}: {}", chain(&e)))?;
    Ok(exit_code(status))
}

/// `exec NAME -- CMD...`: CMD inside, with this terminal's stdio.
fn exec(dirs: &Dirs, name: &str, cmd: &[String]) -> Outcome {
    load(dirs, name)?;
    let guest = state::running(&dirs.run, name).ok_or_else(|| not_running(name))?;
    let command = Command::new(&cmd[0]).args(&cmd[1..]);
    let status = guest
        .exec(command)
        .and_then(|mut p| p.wait())
        .map_err(|e| format!("running {:?} in {name}: {}", cmd[0], chain(&e)))?;
    Ok(exit_code(status))
}

/// `stop NAME [--timeout S]`.
fn stop(dirs: &Dirs, name: &str, args: &[String]) -> Outcome {
    let config = load(dirs, name)?;
    let grace = match args {
        [] => Duration::from_secs(10),
        [flag, secs] if flag == "--timeout" => Duration::from_secs(
            secs.parse().map_err(|_| format!("--timeout {secs:?} is not a number of seconds"))?,
        ),
        _ => return Err("stop takes only --timeout SECONDS".into()),
    };
    let guest = state::running(&dirs.run, name).ok_or_else(|| not_running(name))?;
    guest.stop(grace).map_err(|e| format!("stopping {name}: {}", chain(&e)))?;
    // The kernel removes the guest's veth pairs with its network
    // namespace, in the background: wait until their host sides are gone.
    for veth in &config.network.veth {
        wait_link_gone(&veth.host_name, veth.host_netns.as_deref())?;
    }
    state::forget(&dirs.run, name);
    println!("stopped {name}");
    Ok(ExitCode::SUCCESS)
}

/// Waits (up to 5 s) until no link `link` exists in the network namespace
/// `netns` (the caller's when `None`).
fn wait_link_gone(link: &str, netns: Option<&Path>) -> Result<(), String> {
    let link_name = link.to_string();
    // `/proc/thread-self/net` shows the calling thread's namespace.
    let poll = move || {
        let listed = || {
            std::fs::read_to_string("/proc/thread-self/net/dev")
                .unwrap_or_default()
                .lines()
                .any(|l| l.split(':').next().map(str::trim) == Some(link_name.as_str()))
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while listed() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    };
    let gone = match netns {
        None => poll(),
        // Look from a thread that joined `netns` (a per-thread setting).
        Some(path) => {
            let Ok(ns) = File::open(path) else {
                return Ok(()); // The namespace itself is gone.
            };
            std::thread::spawn(move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).is_ok() && poll()
            })
            .join()
            .unwrap_or(false)
        }
    };
    if gone { Ok(()) } else { Err(format!("link {link} is still there after the guest stopped")) }
}

/// `status [NAME]` and `list`.
fn status(dirs: &Dirs, only: Option<&str>) -> Outcome {
    let names: Vec<String> = match only {
        Some(name) => {
            load(dirs, name)?;
            vec![name.to_string()]
        }
        None => {
            let mut names: Vec<String> = std::fs::read_dir(&dirs.config)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".toml").map(str::to_string))
                .collect();
            names.sort();
            names
        }
    };
    println!(
        "{:<16} {:<8} {:>8} {:>10} {:>9} {:>5}  ADDRESSES",
        "NAME", "STATE", "PID", "MEMORY", "CPU", "PIDS"
    );
    for name in names {
        let addresses =
            config::load(&config_path(dirs, &name)).map(|c| c.addresses().join(",")).unwrap_or_default();
        let Some(guest) = state::running(&dirs.run, &name) else {
            println!("{name:<16} {:<8} {:>8} {:>10} {:>9} {:>5}  {addresses}", "stopped", "-", "-", "-", "-");
            continue;
        };
        let stats = guest.stats().ok().unwrap_or_default();
        let memory =
            stats.memory_current.map_or("-".into(), |b| format!("{:.1}M", b as f64 / (1 << 20) as f64));
        let cpu = stats.cpu_usage.map_or("-".into(), |d| format!("{:.2}s", d.as_secs_f64()));
        let pids = stats.pids_current.map_or("-".into(), |n| n.to_string());
        println!(
            "{name:<16} {:<8} {:>8} {memory:>10} {cpu:>9} {pids:>5}  {addresses}",
            "running",
            guest.id()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The exit code a shell would give for `status`.
fn exit_code(status: ExitStatus) -> ExitCode {
    let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// An error and its causes on one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
