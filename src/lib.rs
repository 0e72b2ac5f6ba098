//! Partition one Linux kernel into guests.
//!
//! A guest is a set of processes that looks and feels like a server of its
//! own: its own PID 1, hostname, root filesystem and mounts, network stack,
//! resource limits and fewer privileges. This is the idea of Linux-VServer
//! rebuilt on mainline kernel features: namespaces, capabilities,
//! `pivot_root`, overlayfs, cgroups, pidfds and rtnetlink.
//!
//! # Quickstart
//!
//! ```
//! use std::io::Read;
//! use vguest::{Command, Context, Guest, Stdio};
//!
//! # if !nix::unistd::Uid::effective().is_root() { return Ok(()); }
//! let mut guest = Guest::builder("web1")
//!     .context(Context::new().hostname("web1.example"))
//!     .command(Command::new("/bin/sh").args(["-c", "hostname; echo pid $$"]).stdout(Stdio::Piped))
//!     .spawn()?;
//! let mut out = String::new();
//! guest.stdout.take().expect("piped").read_to_string(&mut out).expect("read");
//! assert_eq!(out, "web1.example\npid 2\n");
//! assert!(guest.wait()?.success());
//! # Ok::<(), vguest::Error>(())
//! ```
//!
//! # Layers
//!
//! A guest is described by four independent layers, each a builder that
//! only records values; [`GuestBuilder::spawn`] checks them all, then
//! creates the guest:
//!
//! - [`context`]: namespaces, hostname, ids and id maps, capabilities,
//!   `no_new_privs`, rlimits, a time namespace ([`Context`]).
//! - [`fs`]: the root (a directory or an overlay of shared templates),
//!   mounts, masked and read-only paths ([`Filesystem`]).
//! - [`net`]: the guest's own stack, veth and macvlan links, the host's
//!   stack or an existing namespace ([`Network`]).
//! - [`resources`]: cgroup limits, statistics, pause and kill on v1,
//!   hybrid and v2 hosts ([`Resources`]).
//!
//! Each module's documentation explains the kernel mechanism and its
//! limits. The payload is a [`Command`]; the running guest is a [`Guest`],
//! modelled on `std::process::Child`, which can also [`exec`](Guest::exec)
//! more processes inside; [`Guest::attach`] finds a guest another process
//! started.
//!
//! # Security model
//!
//! Every process in a guest is assumed hostile and root inside. What a
//! guest with the defaults ([`Context::new`], [`Filesystem::server`]) can
//! and cannot reach:
//!
//! - **The caller's memory.** The processes vguest starts before a
//!   guest's payload runs (the guest's first process, the payload's first
//!   clone, the helper that makes a network namespace, a process entering
//!   the guest with [`Guest::exec`]) share the caller's address space, or
//!   a copy of it, until they exec. While any of them exists the caller's
//!   address space is not dumpable (`PR_SET_DUMPABLE`), so no guest
//!   process can open its `/proc/PID/mem` or `ptrace` it: that would take
//!   `CAP_SYS_PTRACE` in the caller's user namespace, which the default
//!   capabilities leave out (granting it to a guest without a user
//!   namespace of its own gives that guest the caller's memory). The
//!   caller's own dumpable flag
//!   comes back when the last of them has exec'd.
//! - **The caller's terminal.** Every guest process starts in a session
//!   of its own, so the caller's terminal is never its controlling
//!   terminal, even when it is the payload's stdin: `TIOCSTI` into it
//!   fails, and taking it over (`TIOCSCTTY`) needs `CAP_SYS_ADMIN`. The
//!   payload still reads and writes it as plain stdio; for an interactive
//!   shell it has no job control.
//! - **Device nodes.** The default capabilities lack `CAP_MKNOD`, so a
//!   guest cannot make block or character devices anywhere (a node left
//!   in a guest's directory would open a host disk for any host process
//!   that reaches it); the guest's writable mounts are `nodev` besides.
//!   Add the capability to opt in ([`CapSet::server_default`]).
//! - **Privilege.** Without a user namespace, guest root is the host's
//!   uid 0 with the server capability set ([`CapSet::server_default`]: no
//!   `CAP_SYS_ADMIN`, `CAP_SYS_PTRACE`, `CAP_SYS_MODULE`, `CAP_NET_ADMIN`,
//!   ...) and `no_new_privs`; with [`Namespaces::USER`] it is an unmapped
//!   id on the host. [`Guest::exec`] and [`AttachedGuest::exec`] give the
//!   new process the namespaces, cgroups, ids, capabilities, rlimits and
//!   `no_new_privs` of the guest's payload, never more.
//! - **The host's files and mounts.** The guest sees its own root after
//!   `pivot_root`, its mounts stay in its own mount namespace (propagation
//!   private), `/proc` and `/sys` paths that expose the host are masked or
//!   read-only ([`DEFAULT_MASKED`], [`DEFAULT_READ_ONLY`]).
//! - **A crashed caller.** Until a guest's payload starts, its processes
//!   die with the thread that is spawning it, and a guest process waiting
//!   for the caller gives up when the caller is gone.
//!
//! - **System calls** ([`Seccomp`]). Capabilities and namespaces leave a
//!   root guest much of the kernel to poke at; every guest gets a system
//!   call filter, [`Seccomp::default()`], loaded last before the exec and
//!   given to processes entering the guest too. It has a section for
//!   each architecture the host runs (x86_64 and i386; aarch64 and arm),
//!   so a 32-bit program cannot go round it; other architectures' calls
//!   kill the process and x32's get `ENOSYS`. It denies with `EPERM`:
//!   - new namespaces (`clone` and `unshare` with `CLONE_NEW*` flags, and
//!     `clone3`, whose flags a filter cannot see, with `ENOSYS` so libc
//!     falls back to `clone`): inside a new user namespace a process holds
//!     every capability, the door to most recent kernel escapes;
//!   - the keyring (`add_key`, `keyctl`, `request_key`): it is not
//!     namespaced, every guest would share the host's;
//!   - `io_uring_*`: a large, often-exploited surface whose operations
//!     this filter cannot see;
//!   - `bpf`, `perf_event_open`, `userfaultfd` (a tool of kernel exploits'
//!     races), `kexec_*`, module loading, `open_by_handle_at` (reads any
//!     file of a mounted filesystem by its handle), `acct`,
//!     `swapon`/`swapoff`, `reboot` when the guest shares the host's PID
//!     namespace, the mount family, `setns`, clock setting, `iopl`,
//!     `syslog`, NUMA policy, `vhangup`: each unless the guest holds the
//!     capability that governs it (as Docker's profile gates them);
//!   - `personality` other than Linux's own flavours (`READ_IMPLIES_EXEC`
//!     would make every mapping executable), and `ioctl` `TIOCSTI` and
//!     `TIOCLINUX` (typing into a terminal, the console's subcommands);
//!   - obsolete calls (`uselib`, `ustat`, `sysfs`, `_sysctl`, `vm86`, ...),
//!     and calls newer than the crate's tables (`ENOSYS`, as an older
//!     kernel answers).
//!
//!   Everything else is allowed; the kernel caches that per call, so it
//!   costs nothing. [`Seccomp::unconfined()`] turns the filter off,
//!   [`Seccomp::allow`] and [`Seccomp::rule`] open or add to it,
//!   [`Seccomp::with_default_action`] replaces it.
//!
//!   A rule may give a call to a supervisor instead
//!   ([`SeccompAction::Notify`]): the caller holds the listener
//!   ([`Guest::take_seccomp_listener`], [`SeccompListener`]), reads the
//!   calling process's memory (a copy, checked to be that process's),
//!   and answers with a value, an errno, or the kernel's own result. The
//!   guest never holds the listener; when the caller drops it, waiting
//!   and later intercepted calls fail with `ENOSYS` rather than hang. The
//!   calls vguest itself makes under the filter ([`Seccomp::SPAWN_CALLS`])
//!   may not be given to a supervisor (no one could answer them yet).
//!   `examples/notify.rs` lets a guest without `CAP_SYS_ADMIN` set a
//!   hostname that its supervisor approves.
//!
//! # Lifecycle
//!
//! A guest lives until it ends, its [`Guest`] handle is waited for or
//! dropped, or the process that spawned it dies, whichever comes first:
//!
//! - **The owner's death.** The built-in init of a guest watches a pipe
//!   whose only write end its owner process holds; when the process dies
//!   (a crash, `SIGKILL`, any thread's `exit`), the pipe hangs up and the
//!   init ends the guest. This follows the process, not the thread that
//!   spawned the guest, as `PR_SET_PDEATHSIG` would.
//!   [`GuestBuilder::kill_on_drop`]`(false)` and [`Guest::detach`] let a
//!   guest outlive its owner. A guest whose payload is its PID 1
//!   ([`Init::Payload`]) has no init to watch: the sweep ends it if it has
//!   groups.
//! - **What a dead owner leaves.** Links go with the guest's network
//!   namespace. Groups are marked with their owner (pid and start time)
//!   and swept by the next spawn beneath the same parent, or by
//!   [`resources::sweep`]; a detached guest's groups are never swept.
//! - **Entered processes.** Waiting for a guest, or dropping it, reaps the
//!   processes [`Guest::exec`] started that have ended (a dying PID 1 waits
//!   for them); their handles report the status.
//! - **Teardown.** Ending a guest removes its groups and frees the names
//!   of its host-side links at once; the kernel removes the links
//!   themselves with the guest's network namespace, in the background, so
//!   the caller does not wait for the kernel's grace period.
//! - **Descriptors.** A live guest holds one descriptor (its pidfd); a
//!   process holds three for all its guests (the init's image and the
//!   owner's pipe).
//!
//! # Requirements
//!
//! Guests need root (or `CAP_SYS_ADMIN` and friends) and Linux 5.12 or
//! later on x86_64 or aarch64: a [`Filesystem`] needs `mount_setattr(2)`
//! (5.12), [`Guest::exec`] a pidfd for `setns(2)` (5.8), and a guest
//! without either spawns from 5.4. [`Guest::kill_all`] uses `cgroup.kill`
//! where the kernel has it (5.14) and signals each process of the guest
//! otherwise. The README lists what needs which kernel.
//!
//! Building needs a linker for the target (`cc` by default): `build.rs`
//! links the built-in init as a small static executable.
//!
//! # Code layout
//!
//! For contributors (none of these modules is public beyond the layers').
//! Data flows one way, from the builder to a running guest:
//!
//! ```text
//!   GuestBuilder ──> spawn ──> the layers render plans ──> launch clones ──> child ──> exec
//!   (builder.rs)    (phases)   context, fs, net,           (parent side)    (after the
//!                              resources, command                            clone)
//!        Guest <── spawn hands over what it made (groups, links, pidfd, pipes)
//! ```
//!
//! From the bottom up, each standing only on those below it
//! (`scripts/structure.py` fails the build's checks on an import against
//! this order or a cycle):
//!
//! - `sys`: raw system calls and small wrappers (the only `unsafe`
//!   besides `child`); `signal`, `patience`: leaf helpers.
//! - `plan`: plain data the child follows, and `plan::wire`, the child's
//!   failure record that the init image and [`Step`] share; `status`.
//! - `child`: everything that runs after a clone sharing the caller's
//!   memory, up to the exec. It stands on `plan` and `sys` only and may
//!   name nothing that allocates, locks or panics (checked by the script,
//!   and at run time by `tests/child_alloc.rs`).
//! - The layers [`context`], [`fs`], [`net`], [`resources`] and
//!   `command`: builders, checks, rendering into plans, and their host
//!   objects (cgroups, links); none imports another layer or anything
//!   above.
//! - `error`, `process`; `launch`: the parent's side of one clone (pipes,
//!   stacks, reading the child's verdict), shared by spawning and
//!   entering.
//! - `running`: what [`Guest`] and [`AttachedGuest`] share; `attach`,
//!   `guest`; `spawn`: a spawn's five phases over one struct whose field
//!   order is the undo order; `builder`.

mod attach;
mod builder;
mod child;
mod command;
pub mod context;
mod error;
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
#[doc(hidden)]
pub mod failpoint;
pub mod fs;
mod guest;
mod launch;
pub mod net;
mod patience;
mod plan;
mod process;
pub mod resources;
mod running;
mod signal;
mod spawn;
mod status;
mod sys;

pub use attach::AttachedGuest;
pub use builder::GuestBuilder;
pub use command::{Command, CommandError, DEFAULT_PATH, Stdio};
pub use context::{
    CapSet, Capabilities, Capability, Context, ContextError, IdMap, Namespaces, RLIM_INFINITY, Rlimit,
    Seccomp, SeccompAction, SeccompCmp, SeccompListener, SeccompNotifyError, SeccompRequest, SeccompResponse,
    SeccompRule, Signal, User,
};
pub use error::{Error, Result, SetupError, SpawnError, Step};
pub use fs::{
    BindFlags, DEFAULT_MASKED, DEFAULT_READ_ONLY, Filesystem, FsError, Mount, Overlay, Propagation, Root,
    Upper,
};
pub use guest::Guest;
pub use net::{Macvlan, MacvlanMode, NetError, NetnsPool, Network, Veth};
pub use process::{GuestProcess, Output};
pub use resources::{CgroupLayout, ResourceError, Resources, Stats};
pub use status::{ExitStatus, Init};
