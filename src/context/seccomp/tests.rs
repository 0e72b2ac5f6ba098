//! The compiled default profile and user filters, run on the BPF
//! interpreter of `bpf.rs` for each architecture's numbers.

use super::arch::{Arch, X32_SYSCALL_BIT};
use super::bpf::{ret_value, run::run};
use super::*;
use crate::Capability;

const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

fn default_program(caps: CapSet) -> Vec<BpfInsn> {
    Seccomp::default().compile(caps, true).unwrap().unwrap()
}

/// What `program` answers to call `name` from `arch`.
fn answer(program: &[BpfInsn], arch: Arch, name: &str, args: [u64; 6]) -> u32 {
    let nr = arch.number(name).unwrap_or_else(|| panic!("{name} on {}", arch.name()));
    run(program, arch.audit(), nr, args)
}

#[test]
fn default_denies_on_every_architecture() {
    let p = default_program(CapSet::server_default());
    for &arch in Arch::host() {
        for name in ["keyctl", "add_key", "io_uring_setup", "bpf", "perf_event_open", "kexec_load"] {
            assert_eq!(answer(&p, arch, name, [0; 6]), EPERM, "{name} on {}", arch.name());
        }
        for name in ["finit_module", "open_by_handle_at", "acct", "swapon", "mount", "userfaultfd"] {
            assert_eq!(answer(&p, arch, name, [0; 6]), EPERM, "{name} on {}", arch.name());
        }
        assert_eq!(answer(&p, arch, "clone3", [0; 6]), ENOSYS, "clone3 on {}", arch.name());
        for name in ["getppid", "read", "openat", "execve", "wait4", "chroot"] {
            assert_eq!(answer(&p, arch, name, [0; 6]), ALLOW, "{name} on {}", arch.name());
        }
        // A newer call than the tables know.
        assert_eq!(run(&p, arch.audit(), arch.last() + 1, [0; 6]), ENOSYS);
    }
}

#[test]
fn namespaces_terminals_and_personality_by_argument() {
    let p = default_program(CapSet::server_default());
    let thread = (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_THREAD) as u64;
    for &arch in Arch::host() {
        assert_eq!(answer(&p, arch, "clone", [thread, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(answer(&p, arch, "clone", [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), ALLOW, "fork");
        for flag in [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET, libc::CLONE_NEWPID] {
            let flags = thread | flag as u64;
            assert_eq!(answer(&p, arch, "clone", [flags, 0, 0, 0, 0, 0]), EPERM, "{flag:#x}");
            assert_eq!(answer(&p, arch, "unshare", [flag as u64, 0, 0, 0, 0, 0]), EPERM, "{flag:#x}");
        }
        assert_eq!(answer(&p, arch, "unshare", [libc::CLONE_NEWTIME as u64, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(answer(&p, arch, "unshare", [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0]), ALLOW);
        let tiocsti = super::profile::TIOCSTI;
        assert_eq!(answer(&p, arch, "ioctl", [0, tiocsti, 0, 0, 0, 0]), EPERM);
        assert_eq!(answer(&p, arch, "ioctl", [0, 0xdead_0000_0000_0000 | tiocsti, 0, 0, 0, 0]), EPERM);
        assert_eq!(answer(&p, arch, "ioctl", [0, super::profile::TIOCLINUX, 0, 0, 0, 0]), EPERM);
        assert_eq!(answer(&p, arch, "ioctl", [0, 0x5413, 0, 0, 0, 0]), ALLOW, "TIOCGWINSZ");
        for value in [0, 8, 0x2_0000, 0xffff_ffff] {
            assert_eq!(answer(&p, arch, "personality", [value, 0, 0, 0, 0, 0]), ALLOW, "{value:#x}");
        }
        let read_implies_exec = 0x40_0000;
        assert_eq!(answer(&p, arch, "personality", [read_implies_exec, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            answer(&p, arch, "personality", [1 << 32, 0, 0, 0, 0, 0]),
            EPERM,
            "upper bits fail closed"
        );
    }
}

#[test]
fn capabilities_open_their_groups() {
    let mut caps = CapSet::server_default();
    caps.insert(Capability::CAP_SYS_ADMIN);
    caps.insert(Capability::CAP_SYS_BOOT);
    let p = default_program(caps);
    let native = Arch::host()[0];
    assert_eq!(answer(&p, native, "mount", [0; 6]), ALLOW);
    assert_eq!(answer(&p, native, "bpf", [0; 6]), ALLOW);
    assert_eq!(answer(&p, native, "clone", [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(answer(&p, native, "reboot", [0; 6]), ALLOW, "ends only its own PID namespace");
    assert_eq!(answer(&p, native, "keyctl", [0; 6]), EPERM, "never opened");
    let shared_pid_ns = Seccomp::default().compile(caps, false).unwrap().unwrap();
    assert_eq!(answer(&shared_pid_ns, native, "reboot", [0; 6]), EPERM, "would reboot the host");
}

#[test]
fn other_architectures_and_x32_cannot_go_round() {
    let p = default_program(CapSet::server_default());
    let foreign = 0xC000_0016; // s390x
    assert_eq!(run(&p, foreign, 0, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
    if Arch::host()[0] == Arch::X86_64 {
        let x32_getppid = X32_SYSCALL_BIT | 110;
        assert_eq!(run(&p, Arch::X86_64.audit(), x32_getppid, [0; 6]), ENOSYS);
    }
}

#[test]
fn user_rules_come_first_and_replace() {
    let native = Arch::host()[0];
    let p = Seccomp::default().allow("keyctl").compile(CapSet::server_default(), true).unwrap().unwrap();
    assert_eq!(answer(&p, native, "keyctl", [0; 6]), ALLOW);
    assert_eq!(answer(&p, native, "add_key", [0; 6]), EPERM);

    let only = Seccomp::with_default_action(SeccompAction::Errno(13))
        .allow("read")
        .rule(SeccompRule::new("write", SeccompAction::Allow).arg(0, SeccompCmp::Le(2)))
        .rule(SeccompRule::number(native.number("getppid").unwrap(), SeccompAction::KillThread));
    let p = only.compile(CapSet::EMPTY, true).unwrap().unwrap();
    assert_eq!(answer(&p, native, "read", [0; 6]), ALLOW);
    assert_eq!(answer(&p, native, "write", [2, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(answer(&p, native, "write", [3, 0, 0, 0, 0, 0]), ret_value(SeccompAction::Errno(13)));
    assert_eq!(answer(&p, native, "getppid", [0; 6]), libc::SECCOMP_RET_KILL_THREAD);
    assert_eq!(answer(&p, native, "keyctl", [0; 6]), ret_value(SeccompAction::Errno(13)));
    assert!(Seccomp::unconfined().compile(CapSet::EMPTY, true).unwrap().is_none());
    let started = Seccomp::unconfined().errno("keyctl", libc::EPERM);
    let p = started.compile(CapSet::EMPTY, true).unwrap().unwrap();
    assert_eq!(answer(&p, native, "keyctl", [0; 6]), EPERM);
    assert_eq!(answer(&p, native, "add_key", [0; 6]), ALLOW);
}

#[test]
fn bad_rules_are_named() {
    let err = Seccomp::default().allow("no_such_call").compile(CapSet::EMPTY, true).unwrap_err();
    assert!(matches!(&err, ContextError::UnknownSyscall { name } if name == "no_such_call"), "{err}");
    assert!(err.to_string().contains("no_such_call"), "{err}");
    let rule = SeccompRule::new("write", SeccompAction::Allow).arg(6, SeccompCmp::Eq(0));
    let err = Seccomp::default().rule(rule).compile(CapSet::EMPTY, true).unwrap_err();
    assert!(err.to_string().contains("argument 6"), "{err}");
    assert!(err.to_string().contains("write"), "{err}");
}

#[test]
fn notify_rules_compile_to_user_notification_and_mark_the_program() {
    let filter = Seccomp::default().rule(SeccompRule::new("mknodat", SeccompAction::Notify));
    let p = filter.compile(CapSet::server_default(), true).unwrap().unwrap();
    assert!(BpfInsn::notifies(&p));
    assert!(!BpfInsn::notifies(&default_program(CapSet::server_default())));
    for &arch in Arch::host() {
        assert_eq!(answer(&p, arch, "mknodat", [0; 6]), libc::SECCOMP_RET_USER_NOTIF, "{}", arch.name());
        assert_eq!(answer(&p, arch, "keyctl", [0; 6]), EPERM, "the profile still applies");
    }
}

#[test]
fn notify_for_the_spawns_own_calls_is_refused() {
    let caps = CapSet::server_default();
    let refused = |filter: Seccomp| match filter.compile(caps, true) {
        Err(ContextError::InvalidSeccompRule { call, reason }) => format!("{call}: {reason}"),
        other => panic!("{filter:?} compiled: {other:?}"),
    };
    for name in ["execve", "sendmsg", "wait4", "signalfd4", "prctl"] {
        let why = refused(Seccomp::default().rule(SeccompRule::new(name, SeccompAction::Notify)));
        assert!(why.contains(name), "{why}");
    }
    // By number, and even when arguments narrow it.
    let write = Arch::host()[0].number("write").unwrap();
    refused(Seccomp::default().rule(SeccompRule::number(write, SeccompAction::Notify)));
    refused(
        Seccomp::default().rule(SeccompRule::new("clone", SeccompAction::Notify).arg(0, SeccompCmp::Eq(0))),
    );
    assert!(refused(Seccomp::with_default_action(SeccompAction::Notify)).contains("default"));
    // Every name of the list is a call of x86_64's or aarch64's table.
    for name in Seccomp::SPAWN_CALLS {
        let known = [Arch::X86_64, Arch::Aarch64].iter().any(|a| a.number(name).is_some());
        assert!(known, "{name}");
    }
}
