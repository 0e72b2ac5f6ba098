//! The default profile: what every guest is denied unless its filter says
//! otherwise.
//!
//! It is a list of denials in front of "allow": a guest's ordinary
//! userland needs nothing it denies, and the kernel's per-architecture
//! cache of always-allowed calls then lets every other call through
//! without running the filter. Calls newer than this crate's tables get
//! `ENOSYS` (what an older kernel answers, so libc falls back), which is
//! the closed-by-default property of an allow list.
//!
//! Groups gated by a capability open when the guest's bounding set holds
//! it, as Docker's profile gates them: the capability already lets the
//! guest reach beyond itself, and the kernel checks it again.

use super::arch::Arch;
use super::{SeccompAction, SeccompCmp, SeccompRule};
use crate::{CapSet, Capability};

/// What calls newer than the tables get.
pub(super) const NEWER: SeccompAction = SeccompAction::Errno(libc::ENOSYS as u16);

const EPERM: SeccompAction = SeccompAction::Errno(libc::EPERM as u16);

/// The `CLONE_NEW*` flags of `clone(2)`: cgroup, ipc, net, mount, pid,
/// user, uts (`CLONE_NEWTIME` shares its bit with the exit signal there).
const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWUTS) as u64;

/// `unshare(2)`'s namespace flags: the above and `CLONE_NEWTIME`.
const UNSHARE_NAMESPACES: u64 = CLONE_NAMESPACES | libc::CLONE_NEWTIME as u64;

/// `ioctl(2)` requests: typing into a terminal, the console's subcommands
/// (the same numbers on x86 and arm).
pub(super) const TIOCSTI: u64 = 0x5412;
pub(super) const TIOCLINUX: u64 = 0x541C;

/// `personality(2)` values a guest may set (or query): Linux, with the
/// 32-bit and 2.6-uname flavours, and `0xffffffff` (query).
const PERSONALITIES: [u64; 5] = [0, 0x0008, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Denied unless the guest holds one of the capabilities.
const GATED: &[(&[Capability], &[&str])] = &[
    (
        &[Capability::CAP_SYS_ADMIN],
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "open_tree_attr",
            "mount_setattr",
            "setns",
            "swapon",
            "swapoff",
            "quotactl",
            "quotactl_fd",
            "fanotify_init",
            "lookup_dcookie",
        ],
    ),
    (&[Capability::CAP_SYS_ADMIN, Capability::CAP_BPF], &["bpf"]),
    (&[Capability::CAP_SYS_ADMIN, Capability::CAP_PERFMON], &["perf_event_open"]),
    (&[Capability::CAP_SYS_MODULE], &["init_module", "finit_module", "delete_module"]),
    (&[Capability::CAP_SYS_BOOT], &["kexec_load", "kexec_file_load"]),
    (&[Capability::CAP_SYS_PTRACE], &["userfaultfd"]),
    (&[Capability::CAP_DAC_READ_SEARCH], &["open_by_handle_at"]),
    (&[Capability::CAP_SYS_PACCT], &["acct"]),
    (&[Capability::CAP_SYS_TIME], &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    (&[Capability::CAP_SYS_RAWIO], &["iopl", "ioperm"]),
    (&[Capability::CAP_SYSLOG], &["syslog"]),
    (
        &[Capability::CAP_SYS_NICE],
        &["mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages"],
    ),
    (&[Capability::CAP_SYS_TTY_CONFIG], &["vhangup"]),
];

/// Denied whatever the guest holds: not namespaced, or obsolete.
const ALWAYS: &[&str] = &[
    // The keyring is the host's (keyrings(7)), shared by every guest.
    "add_key",
    "keyctl",
    "request_key",
    // A large, often-exploited surface that bypasses this filter's view
    // of the calls it makes on the caller's behalf.
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // Obsolete interfaces.
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "nfsservctl",
    "vm86",
    "vm86old",
    "create_module",
    "get_kernel_syms",
    "query_module",
];

/// The profile's rules for a guest whose bounding set is `caps`.
pub(super) fn rules(caps: CapSet, own_pid_ns: bool) -> Vec<SeccompRule> {
    let held = |any: &[Capability]| any.iter().any(|c| caps.contains(*c));
    let admin = held(&[Capability::CAP_SYS_ADMIN]);
    let mut names: Vec<&str> = ALWAYS.to_vec();
    for (any, calls) in GATED {
        if !held(any) {
            names.extend_from_slice(calls);
        }
    }
    // reboot(2) in a PID namespace of its own ends only the guest.
    if !own_pid_ns || !held(&[Capability::CAP_SYS_BOOT]) {
        names.push("reboot");
    }
    let mut out: Vec<SeccompRule> = names.into_iter().map(|n| SeccompRule::new(n, EPERM)).collect();
    if !admin {
        let masked = |mask| SeccompCmp::MaskedEq { mask, value: 0 };
        // New namespaces, a new user namespace above all: inside one the
        // guest holds every capability, the door to most kernel escapes.
        out.push(SeccompRule::new("clone", SeccompAction::Allow).arg(0, masked(CLONE_NAMESPACES)));
        out.push(SeccompRule::new("clone", EPERM));
        out.push(SeccompRule::new("unshare", SeccompAction::Allow).arg(0, masked(UNSHARE_NAMESPACES)));
        out.push(SeccompRule::new("unshare", EPERM));
        // clone3 passes its flags in memory, which a filter cannot read:
        // "not implemented" makes libc fall back to clone(2).
        out.push(SeccompRule::new("clone3", SeccompAction::Errno(libc::ENOSYS as u16)));
        // Typing into another session's terminal, and the console's
        // subcommands.
        for value in [TIOCSTI, TIOCLINUX] {
            let request = SeccompCmp::MaskedEq { mask: 0xffff_ffff, value };
            out.push(SeccompRule::new("ioctl", EPERM).arg(1, request));
        }
    }
    for value in PERSONALITIES {
        out.push(SeccompRule::new("personality", SeccompAction::Allow).arg(0, SeccompCmp::Eq(value)));
    }
    out.push(SeccompRule::new("personality", EPERM));
    // Names this host's tables lack (`vm86` off x86) are no rule here.
    out.retain(|r| match &r.call {
        super::Call::Name(name) => Arch::host().iter().any(|a| a.number(name).is_some()),
        super::Call::Number(_) => true,
    });
    out
}
