//! The VServer-style guest manager (`examples/vserver`), driven end to
//! end as a person would: two guests built on one busybox template,
//! started with veth links into one bridge, entered, inspected, talking
//! TCP to each other, stopped, and nothing left behind.
//!
//! A full `cargo test` builds the example first; alone, this binary needs
//! `cargo build --examples` beforehand.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command as Host, Output, Stdio as HostStdio};

use common::netns::TestNet;
use common::*;

/// The example binary, or `None` with a printed reason where examples
/// are not built (the v2 test VM carries only test binaries).
fn vserver_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent()?.parent()?.join("examples/vserver");
    if path.exists() {
        return Some(path);
    }
    println!("SKIP vserver: {} is not built here (cargo build --examples)", path.display());
    None
}

/// One manager, with its own configuration, run and layer directories.
struct Manager {
    bin: PathBuf,
    dir: PathBuf,
}

impl Manager {
    fn new(bin: PathBuf) -> Manager {
        let dir = std::env::temp_dir().join(format!("vguest-vserver-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Manager { bin, dir }
    }

    fn command(&self, args: &[&str]) -> Host {
        let mut cmd = Host::new(&self.bin);
        for (flag, sub) in [("--config-dir", "etc"), ("--run-dir", "run"), ("--guests-dir", "lib")] {
            cmd.arg(flag).arg(self.dir.join(sub));
        }
        cmd.args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(HostStdio::null()).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "vserver {args:?}: {}\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// Runs and expects a failure with a one-line message; returns it.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "vserver {args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.lines().count(), 1, "vserver {args:?}: not one line: {err}");
        err.trim_end().to_string()
    }

    fn config(&self, name: &str) -> PathBuf {
        self.dir.join("etc").join(format!("{name}.toml"))
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn two_guests_are_built_started_entered_linked_and_stopped() {
    if !root_or_skip("vserver") {
        return;
    }
    let Some(bin) = vserver_binary() else {
        return;
    };
    let _x = exclusive();
    let before = HostState::capture();
    let layout = cgroup_layout();
    let m = Manager::new(bin);
    // The "LAN": a bridge in a network namespace of the test's own.
    let lan = TestNet::new();
    lan.ip(&["link", "add", "br0", "type", "bridge"]);
    lan.ip(&["link", "set", "br0", "up"]);
    let tag = std::process::id() % 100_000;
    let guests = [("vs1", "198.18.70.2", "fd42:70::2"), ("vs2", "198.18.70.3", "fd42:70::3")];

    for (name, v4, v6) in guests {
        let name = format!("{name}-{tag}");
        let out = m.ok(&["build", &name, "--template", rootfs().to_str().unwrap()]);
        assert!(out.starts_with(&format!("built {name}")), "{out}");
        assert!(m.dir.join("lib").join(&name).join("upper").is_dir());
        let mut text = std::fs::read_to_string(m.config(&name)).unwrap();
        text.push_str(&format!(
            "\n[[network.veth]]\nhost_name = \"vg{tag}{}\"\nbridge = \"br0\"\nhost_netns = \"{}\"\naddresses = [\"{v4}/24\", \"{v6}/64\"]\n",
            &name[..3],
            lan.path().display()
        ));
        std::fs::write(m.config(&name), text).unwrap();
        let out = m.ok(&["start", &name]);
        assert!(out.starts_with(&format!("started {name} (pid ")), "{out}");
    }
    let [(a, a4, a6), (b, _, _)] = guests.map(|(n, v4, v6)| (format!("{n}-{tag}"), v4, v6));

    // Each guest is its own server: hostname, addresses, processes.
    for (name, v4) in [(&a, a4), (&b, guests[1].1)] {
        assert_eq!(m.ok(&["exec", name, "--", "hostname"]), format!("{name}\n"));
        let addrs = m.ok(&["exec", name, "--", "ip", "-o", "addr", "show", "dev", "eth0"]);
        assert!(addrs.contains(&format!("{v4}/24")), "{name}: {addrs}");
        let ps = m.ok(&["exec", name, "--", "ps", "-o", "pid,comm"]);
        let pids: Vec<&str> = ps.lines().skip(1).map(|l| l.split_whitespace().next().unwrap()).collect();
        assert_eq!(pids.first(), Some(&"1"), "{name}: {ps}");
        assert!(pids.len() <= 5, "{name} sees more than its own processes: {ps}");
    }
    // enter: a shell on stdin, exit code passed through.
    let mut shell =
        m.command(&["enter", &a]).stdin(HostStdio::piped()).stdout(HostStdio::piped()).spawn().unwrap();
    shell.stdin.take().unwrap().write_all(b"hostname; exit 3\n").unwrap();
    let entered = shell.wait_with_output().unwrap();
    assert_eq!(entered.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&entered.stdout).contains(&a));

    // status: both running, with memory and pids figures, and addresses.
    let status = m.ok(&["status"]);
    for (name, v4) in [(&a, a4), (&b, guests[1].1)] {
        let line =
            status.lines().find(|l| l.starts_with(name.as_str())).unwrap_or_else(|| panic!("{status}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], "running", "{line}");
        assert!(cols[3].ends_with('M') && cols[3] != "-", "memory figure: {line}");
        assert!(cols[5].parse::<u32>().is_ok_and(|n| n >= 2), "pids figure: {line}");
        assert!(line.contains(v4), "{line}");
    }
    println!("status [{layout}]:\n{status}");

    // TCP between the two guests, over IPv4 and IPv6.
    for (addr, port) in [(a4, "7070"), (a6, "7071")] {
        let mut server = m
            .command(&["exec", &a, "--", "nc", "-l", "-p", port])
            .stdin(HostStdio::piped())
            .stdout(HostStdio::piped())
            .spawn()
            .unwrap();
        let message = format!("hello from {b} over {addr}");
        let client = format!(
            "n=0; until echo '{message}' | nc -w2 {addr} {port}; do n=$((n+1)); [ $n -gt 50 ] && exit 1; sleep 0.1; done"
        );
        m.ok(&["exec", &b, "--", "sh", "-c", &client]);
        let got = std::io::read_to_string(server.stdout.take().unwrap()).unwrap();
        drop(server.stdin.take());
        assert!(server.wait().unwrap().success());
        assert_eq!(got.trim_end(), message);
    }

    // Errors a person can act on.
    let again = m.refused(&["start", &a]);
    assert!(again.contains(&format!("guest {a} is already running")), "{again}");
    let bad = format!("bad-{tag}");
    std::fs::write(m.config(&bad), "[filesystem]\nroot = \"/\"\n\n[resources]\nmemroy_max = 1\n").unwrap();
    let typo = m.refused(&["start", &bad]);
    assert!(typo.contains(&format!("{bad}.toml:5:1:")) && typo.contains("memroy_max"), "{typo}");
    std::fs::remove_file(m.config(&bad)).unwrap();
    let no_template = m.refused(&["build", "other", "--template", "/no/such/template"]);
    assert!(no_template.contains("/no/such/template"), "{no_template}");

    // Stop both; then nothing of them is left.
    let pids: Vec<String> = [&a, &b]
        .iter()
        .map(|n| std::fs::read_to_string(m.dir.join("run").join(format!("{n}.pid"))).unwrap())
        .map(|t| t.split_whitespace().next().unwrap().to_string())
        .collect();
    for name in [&a, &b] {
        assert_eq!(m.ok(&["stop", name, "--timeout", "5"]), format!("stopped {name}\n"));
    }
    let stopped = m.refused(&["enter", &a]);
    assert!(stopped.contains(&format!("guest {a} is not running")), "{stopped}");
    assert!(m.refused(&["stop", &b]).contains("is not running"));
    let status = m.ok(&["status"]);
    assert!(status.lines().skip(1).all(|l| l.split_whitespace().nth(1) == Some("stopped")), "{status}");
    for pid in &pids {
        // Ended; its parent now (the host's init, as the starting command
        // has exited) reaps it in its own time.
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while proc.exists() && std::time::Instant::now() < deadline {
            let state = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
            assert!(state.is_empty() || state.contains(") Z "), "guest pid {pid} still runs: {state}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!proc.exists(), "guest pid {pid} was never reaped");
    }
    assert!(
        groups_named(&format!("vs1-{tag}.")).is_empty() && groups_named(&format!("vs2-{tag}.")).is_empty()
    );
    lan.settle();
    let links = lan.ip(&["-o", "link"]);
    assert_eq!(links.lines().count(), 2, "only lo and br0 may be left in the LAN: {links}");
    let run: Vec<_> =
        std::fs::read_dir(m.dir.join("run")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(run.iter().all(|f| f.to_string_lossy().ends_with(".log")), "run directory: {run:?}");
    drop(lan);
    before.assert_unchanged("vserver");
    println!(
        "vserver [{layout}]: two guests built, started, entered, linked over TCP v4 and v6, stopped; host clean"
    );
}
