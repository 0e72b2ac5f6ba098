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

mod attach;
mod builder;
mod command;
pub mod context;
mod error;
pub mod fs;
mod guest;
pub mod net;
mod process;
pub mod resources;
mod spawn;
mod status;
mod sys;

pub use attach::AttachedGuest;
pub use builder::GuestBuilder;
pub use command::{Command, CommandError, DEFAULT_PATH, Stdio};
pub use context::{
    CapSet, Capabilities, Capability, Context, ContextError, IdMap, Namespaces, RLIM_INFINITY, Rlimit,
    Signal, User,
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
