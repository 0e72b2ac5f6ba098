//! The pairs: a peer tool and the vguest call that does the same work.
//!
//! "The same work" is decided per pair below and checked by the probe
//! (see `probe.rs`): both sides end with the same namespaces, ids,
//! capabilities, `no_new_privs` and, where there is a root filesystem,
//! the same mount table, as far as the tools allow; the comments say
//! where they cannot be made equal.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use vguest::{CapSet, Capabilities, Command, Context, Filesystem, Guest, Init, Namespaces, Resources};

use crate::probe::{Known, SCRIPT, State, differences};
use crate::runc::{self, Oci};
use crate::stats::{self, Row};
use crate::tool::{Exec, Floor, Side, Spawn, Tool};

/// A pair ready to run.
pub struct Pair {
    pub name: &'static str,
    /// What each side does, and the deliberate differences.
    pub notes: Vec<String>,
    peer: Box<dyn Side>,
    vguest: Box<dyn Side>,
    /// The raw-syscall floor with the same namespaces (no mounts, no init).
    floor: Option<Box<dyn Side>>,
    /// The PID 1 of the guest the enter pair runs in.
    guest_pid: Option<u32>,
}

/// A pair by name, built only when it is selected.
pub struct Entry {
    pub name: &'static str,
    pub build: Box<dyn FnOnce() -> Result<Pair, String>>,
}

/// The caller's own capabilities as the payload's: what bwrap (as root),
/// `unshare` and `nsenter` leave a program with.
fn own_caps() -> Capabilities {
    let set: CapSet =
        caps::read(None, caps::CapSet::Effective).expect("reading our capabilities").into_iter().collect();
    Capabilities {
        bounding: set,
        effective: set,
        permitted: set,
        inheritable: CapSet::EMPTY,
        ambient: CapSet::EMPTY,
    }
}

fn true_guest(name: &str, context: Context) -> vguest::GuestBuilder {
    Guest::builder(name).context(context).command(Command::new("/bin/true"))
}

/// `clone(flags)` + `execve("/bin/true")` + `waitpid`, nothing else.
fn clone_floor(flags: libc::c_int, what: &str) -> Option<Box<dyn Side>> {
    Some(Box::new(Floor {
        label: format!("floor: raw clone({what}) + execve(/bin/true) + waitpid, no mounts, no init"),
        run: Box::new(move || crate::floor::clone_exec_wait(flags)),
    }))
}

const NET5: libc::c_int = crate::floor::NS4 | libc::CLONE_NEWNET;

/// A missing tool is a reason to skip, not a failure.
fn tool_present(name: &str) -> Result<(), String> {
    match std::process::Command::new(name).arg("--version").output() {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{name} is not installed ({e}); benches/compare.sh installs it")),
    }
}

pub fn all(root: &'static Path, scratch: &crate::Scratch) -> Vec<Entry> {
    let (dir, dir2) = (scratch.dir.clone(), scratch.dir.clone());
    vec![
        Entry { name: "isolated start (bwrap --unshare-all)", build: Box::new(move || bwrap_all(root)) },
        Entry { name: "isolated start, no user namespace", build: Box::new(move || bwrap_no_user(root)) },
        Entry { name: "namespaces only", build: Box::new(unshare) },
        Entry { name: "enter a running guest", build: Box::new(move || nsenter(root)) },
        Entry { name: "container run (runc)", build: Box::new(move || oci("runc", root, &dir)) },
        Entry { name: "container run (crun)", build: Box::new(move || oci("crun", root, &dir2)) },
    ]
}

const BWRAP_ROOT: [&str; 4] = ["--proc", "/proc", "--dev", "/dev"];

/// What `--ro-bind ROOT / --proc /proc --dev /dev` makes: a read-only
/// root, procfs with `/proc/irq` and `/proc/bus` read-only, a minimal
/// `/dev`; none of vguest's default masks.
fn bwrap_like(root: &Path) -> Filesystem {
    Filesystem::new(root)
        .proc()
        .dev()
        .read_only_root(true)
        .root_nosuid(true)
        .no_default_masks()
        .read_only_path("/proc/irq")
        .read_only_path("/proc/bus")
}

/// `bwrap --unshare-all` as the filesystem issue asks. As root,
/// `--unshare-all` is `--unshare-user-try --unshare-ipc --unshare-pid
/// --unshare-net --unshare-uts --unshare-cgroup-try` (bwrap(1)), and both
/// tries succeed here: a user namespace mapping uid and gid 0 to 0, and
/// a cgroup namespace. Run by root, bwrap keeps the caller's capabilities
/// (`--cap-drop` is opt-in), always sets `no_new_privs`, brings `lo` up
/// in its network namespace, binds the root `nosuid,nodev`, makes
/// `/proc/irq` and `/proc/bus` read-only (the probe shows only these two
/// here, with and without a user namespace; `/proc/sysrq-trigger` does
/// not exist on this kernel) and, without `--as-pid-1`, keeps a reaper as
/// PID 1 that forks the command. vguest's root is `nodev` by default and
/// made `nosuid` here to match; its minimal `/dev` adds a `/dev/shm`
/// tmpfs where bwrap makes a directory.
fn bwrap_all(root: &'static Path) -> Result<Pair, String> {
    tool_present("bwrap")?;
    let mut argv = vec!["bwrap", "--unshare-all", "--hostname", "peers", "--ro-bind", root_str(root), "/"];
    argv.extend(BWRAP_ROOT);
    let context =
        Context::new().namespaces(Namespaces::default() | Namespaces::USER).capabilities(own_caps());
    let fs = bwrap_like(root);
    Ok(Pair {
        name: "isolated start (bwrap --unshare-all)",
        notes: vec![
            "peer: as root --unshare-all adds a user namespace (0 -> 0) and a cgroup namespace; caller's capabilities, no_new_privs, lo up, reaper as PID 1, /proc/irq and /proc/bus read-only".into(),
            "vguest: the same namespaces (default | USER, guest root = caller's uid 0), caller's capabilities, no_new_privs, lo up, built-in init as PID 1 (the payload is its child), no default masks, /proc/irq and /proc/bus read-only".into(),
            "both set the hostname: --hostname is given to bwrap because vguest always sets one".into(),
            "both bind the root read-only, nosuid, nodev; not equal: vguest's /dev adds a /dev/shm tmpfs".into(),
        ],
        peer: Box::new(Tool::new(argv, "/bin/busybox")),
        vguest: Box::new(Spawn {
            label: "spawn()+wait(): namespaces default|USER, caller's caps, Filesystem::new(ROOT).proc().dev().read_only_root(true), /proc/irq+/proc/bus ro".into(),
            builder: true_guest("peers", context).filesystem(fs),
            busybox: "/bin/busybox".into(),
        }),
        floor: clone_floor(NET5 | libc::CLONE_NEWCGROUP | libc::CLONE_NEWUSER, "user pid mnt uts ipc net cgroup"),
        guest_pid: None,
    })
}

/// The same start without a user namespace: the namespaces a vguest guest
/// gets by default, named one by one to bwrap.
fn bwrap_no_user(root: &'static Path) -> Result<Pair, String> {
    tool_present("bwrap")?;
    let mut argv =
        vec!["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup"];
    argv.extend(["--hostname", "peers", "--ro-bind", root_str(root), "/"]);
    argv.extend(BWRAP_ROOT);
    let context = Context::new().capabilities(own_caps());
    let fs = bwrap_like(root);
    Ok(Pair {
        name: "isolated start, no user namespace",
        notes: vec![
            "peer: pid, mount, uts, ipc, net and cgroup namespaces (explicit --unshare-* flags, no user namespace); otherwise as above".into(),
            "vguest: Namespaces::default() (the same six), otherwise as above".into(),
        ],
        peer: Box::new(Tool::new(argv, "/bin/busybox")),
        vguest: Box::new(Spawn {
            label: "spawn()+wait(): namespaces default, caller's caps, Filesystem::new(ROOT).proc().dev().read_only_root(true), /proc/irq+/proc/bus ro".into(),
            builder: true_guest("peers", context).filesystem(fs),
            busybox: "/bin/busybox".into(),
        }),
        floor: clone_floor(NET5 | libc::CLONE_NEWCGROUP, "pid mnt uts ipc net cgroup"),
        guest_pid: None,
    })
}

/// util-linux `unshare`: unshare(2) of the five namespaces, fork (the
/// child is PID 1 of the new PID namespace), exec, wait. `--propagation
/// unchanged` because without a `Filesystem` vguest leaves the mount
/// namespace's propagation as it was copied (unshare would otherwise add
/// a recursive `mount(MS_PRIVATE)` of `/`). vguest: the payload as PID 1,
/// the caller's capabilities and no `no_new_privs`, as unshare leaves
/// them. vguest still sets a hostname, brings `lo` up and goes through
/// its capability and signal steps (ending in the same state), which
/// unshare does not do.
fn unshare() -> Result<Pair, String> {
    tool_present("unshare")?;
    let argv =
        ["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "--propagation", "unchanged"];
    let ns = Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC | Namespaces::NET;
    let context = Context::new().namespaces(ns).capabilities(own_caps()).no_new_privs(false);
    let busybox = crate::common::busybox();
    Ok(Pair {
        name: "namespaces only",
        notes: vec![
            "peer: unshare(pid mnt uts ipc net), fork, exec; the child is PID 1; caller's capabilities; no filesystem changes".into(),
            "vguest: the same five namespaces, Init::Payload (payload is PID 1), caller's capabilities, no_new_privs off, no Filesystem".into(),
            "vguest does a little more: it sets the hostname to the guest's name and brings lo up".into(),
        ],
        peer: Box::new(Tool::new(argv, busybox.clone())),
        vguest: Box::new(Spawn {
            label: "spawn()+wait(): PID|MOUNT|UTS|IPC|NET, Init::Payload, caller's caps, no_new_privs off".into(),
            builder: true_guest("peers", context).init(Init::Payload),
            busybox,
        }),
        floor: clone_floor(NET5, "pid mnt uts ipc net"),
        guest_pid: None,
    })
}

/// `nsenter -a -t PID` into a running busybox guest: it opens
/// `/proc/PID/ns/*` (skipping the user namespace, which is the caller's),
/// joins each, forks because it joined a PID namespace, and execs with
/// the caller's ids and capabilities. vguest joins them all with one
/// `setns` on the pidfd and takes the guest payload's ids, capabilities,
/// limits and `no_new_privs`; the guest runs with the caller's
/// capabilities and without `no_new_privs`, so both end in one state.
fn nsenter(root: &'static Path) -> Result<Pair, String> {
    tool_present("nsenter")?;
    let context = Context::new().capabilities(own_caps()).no_new_privs(false);
    let guest = Guest::builder("peers-enter")
        .context(context)
        .filesystem(Filesystem::server(root))
        .command(Command::new("/bin/sleep").arg("100000"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawning the guest to enter: {e}"));
    let pid = guest.id();
    let guest = Rc::new(guest);
    let own_pidns =
        std::fs::File::open("/proc/thread-self/ns/pid_for_children").map_err(|e| e.to_string())?;
    let floor_guest = Rc::clone(&guest);
    let floor = Floor {
        label: "floor: setns(pid) + fork + setns(others) + execve(/bin/true) + waitpid".into(),
        run: Box::new(move || {
            use std::os::fd::AsFd;
            crate::floor::setns_fork_exec_wait(floor_guest.pidfd(), own_pidns.as_fd())
        }),
    };
    Ok(Pair {
        name: "enter a running guest",
        notes: vec![
            format!("the guest: Filesystem::server(ROOT), default namespaces, payload /bin/sleep, PID 1 = host pid {pid}"),
            "peer: setns into each of the guest's namespaces, fork, exec; caller's ids and capabilities".into(),
            "vguest: Guest::exec, one setns on the pidfd, the guest's ids/caps (= the caller's here), signals reset, fds closed".into(),
        ],
        peer: Box::new(Tool::new(["nsenter".to_string(), "-a".into(), "-t".into(), pid.to_string()], "/bin/busybox")),
        vguest: Box::new(Exec { guest }),
        floor: Some(Box::new(floor)),
        guest_pid: Some(pid),
    })
}

/// `runc run` of a bundle from `runc spec` (see `runc::make_bundle`)
/// beside the guest that follows the same spec: its namespaces (no
/// cgroup namespace), hostname, capabilities, `RLIMIT_NOFILE`,
/// `no_new_privs`, read-only root, `/proc`, `/dev` (with `pts`, `shm`),
/// `/dev/mqueue`, read-only `/sys`, masked and read-only paths, and the
/// payload as PID 1. runc also creates a cgroup in every hierarchy with
/// the spec's device rules and removes it afterwards; vguest's side gets
/// groups too (`Resources::new()`: a group per hierarchy, no limits, and
/// removed by `wait()`), but no device rules (vguest has no devices
/// controller setting).
fn oci(runtime: &'static str, root: &'static Path, dir: &Path) -> Result<Pair, String> {
    tool_present("runc")?;
    tool_present(runtime)?;
    let bundle = dir.join(format!("{runtime}-bundle"));
    let spec = runc::make_bundle(root, &bundle).map_err(|e| e.to_string())?;
    let (context, fs, mut notes) =
        runc::follow_spec(&spec, root).map_err(|e| format!("reading runc's spec: {e}"))?;
    let state = dir.join(format!("{runtime}-state"));
    let peer = Oci::new(runtime, &bundle, spec, &state).map_err(|e| e.to_string())?;
    notes.insert(0, format!("peer: `{runtime} run` in the foreground, the container process as PID 1; the runtime deletes the container (and its cgroups) when it ends"));
    notes.push(format!("not equal: {runtime} also makes and removes a cgroup in each v1 hierarchy (device rules of the spec), vguest's side makes and removes its groups (Resources::new(), no limits) but sets no device rules; {runtime} makes the /dev nodes with mknod, vguest binds the host's"));
    Ok(Pair {
        name: if runtime == "runc" { "container run (runc)" } else { "container run (crun)" },
        notes,
        peer: Box::new(peer),
        vguest: Box::new(Spawn {
            label: "spawn()+wait() following the same spec, Init::Payload, Resources::new()".into(),
            builder: true_guest("peers-oci", context)
                .filesystem(fs)
                .init(Init::Payload)
                .resources(Resources::new()),
            busybox: "/bin/busybox".into(),
        }),
        floor: clone_floor(NET5, "pid mnt uts ipc net"),
        guest_pid: None,
    })
}

fn root_str(root: &'static Path) -> &'static str {
    root.to_str().expect("the root filesystem's path is UTF-8")
}

impl Pair {
    /// Probes both sides, prints how their work compares, then times them.
    /// A peer that fails is a reason to skip; vguest failing is a bug.
    pub fn run(&mut self, n: usize, warmup: usize) -> Result<Row, String> {
        println!("   peer:   {}", self.peer.label());
        println!("   vguest: {}", self.vguest.label());
        let peer_out = self.peer.probe(SCRIPT).map_err(|e| format!("the peer does not work here: {e}"))?;
        let vguest_out = self.vguest.probe(SCRIPT).unwrap_or_else(|e| panic!("vguest probe failed: {e}"));
        let known = Known::new(self.guest_pid);
        let (p, v) = (State::parse(&peer_out, &known), State::parse(&vguest_out, &known));
        let other = if self.guest_pid.is_some() { "guest" } else { "new" };
        println!(
            "   probe: {other} namespaces: peer [{}], vguest [{}]; pid inside: peer {}, vguest {}; mounts: peer {}, vguest {}",
            p.namespaces(other),
            v.namespaces(other),
            p.fact("pid"),
            v.fact("pid"),
            p.mount_count(),
            v.mount_count()
        );
        // In a running guest the pid is only a counter.
        let ignore: &[&str] = if self.guest_pid.is_some() { &["pid"] } else { &[] };
        let diffs = differences(&p, &v, ignore);
        if diffs.is_empty() {
            println!("   probe: no difference in any probed fact or mount");
        }
        let root = crate::common::rootfs().to_string_lossy().into_owned();
        for d in diffs {
            println!("   probe differs: {}", d.replace(&root, "ROOT"));
        }
        if let Some(floor) = &self.floor {
            println!("   {}", floor.label());
        }
        let mut sides: Vec<&mut dyn Side> = vec![self.peer.as_mut(), self.vguest.as_mut()];
        if let Some(floor) = self.floor.as_mut() {
            sides.push(floor.as_mut());
        }
        match stats::measure(&mut sides, n, warmup) {
            Ok(times) => Ok(Row {
                pair: self.name.to_string(),
                peer: short_label(&self.peer.label()),
                peer_time: times[0],
                vguest_time: times[1],
                floor_time: times.get(2).copied(),
            }),
            Err((0, e)) => Err(format!("the peer failed: {e}")),
            Err((_, e)) => panic!("{}: {e}", self.name),
        }
    }
}

/// The peer's command line without the long root path.
fn short_label(label: &str) -> String {
    let root = crate::common::rootfs().to_string_lossy().into_owned();
    let label = label.replace(&root, "ROOT");
    match label.split_once(" (") {
        Some((head, _)) if label.contains("run (bundle") => head.to_string(),
        _ => label,
    }
}

/// What the run left behind: containers the runtimes still know, cgroups
/// named after our container id.
pub fn cleanup_report(scratch: &crate::Scratch) -> Vec<String> {
    let mut left = Vec::new();
    for runtime in ["runc", "crun"] {
        let state: PathBuf = scratch.dir.join(format!("{runtime}-state"));
        if !state.exists() {
            continue;
        }
        let out = std::process::Command::new(runtime).arg("--root").arg(&state).args(["list", "-q"]).output();
        if let Ok(out) = out {
            for id in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()) {
                left.push(format!("{runtime} container {id}"));
            }
        }
    }
    left.extend(runc::leftover_cgroups().into_iter().map(|p| format!("cgroup {}", p.display())));
    left
}
