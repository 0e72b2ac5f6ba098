//! System calls a root guest should not reach: a default guest (and a
//! process entering it) tries the kernel surfaces the default filter
//! closes (a new user namespace, the host's keyring, io_uring, perf,
//! bpf, module loading, kexec, ...), natively and as a 32-bit i386
//! program; the same attack succeeds from an unconfined guest, which is
//! what the filter is for.

use std::collections::BTreeMap;
use std::path::Path;

use vguest::{Context, Guest, Seccomp, SeccompAction, SeccompCmp, SeccompRule};

use crate::common::*;
use crate::support::{errno, fields, guest_role, role_filesystem, say, tagged_line, warm_state};

/// The calls the prober makes, each with harmless arguments: what the
/// default filter answers (`EPERM`, `ENOSYS` for `clone3`).
const DENIED: &[(&str, i32)] = &[
    ("unshare_user", libc::EPERM),
    ("clone_user", libc::EPERM),
    ("clone3", libc::ENOSYS),
    ("keyctl", libc::EPERM),
    ("add_key", libc::EPERM),
    ("request_key", libc::EPERM),
    ("io_uring_setup", libc::EPERM),
    ("perf_event_open", libc::EPERM),
    ("bpf", libc::EPERM),
    ("userfaultfd", libc::EPERM),
    ("kexec_load", libc::EPERM),
    ("finit_module", libc::EPERM),
    ("open_by_handle_at", libc::EPERM),
    ("acct", libc::EPERM),
    ("swapoff", libc::EPERM),
    ("mount", libc::EPERM),
    ("personality_exec", libc::EPERM),
    ("tiocsti", libc::EPERM),
    ("tioclinux", libc::EPERM),
];

/// `syscall(2)` returning 0 or the errno; a call that made something (an
/// fd, a child) has it undone.
fn call(name: &str) -> i32 {
    let cstr = |s: &str| std::ffi::CString::new(s).unwrap();
    let (key_type, desc, path) = (cstr("user"), cstr("vguest-probe"), cstr("/nonexistent"));
    // SAFETY: every call gets arguments valid for it (zeroed buffers of
    // the size it reads, NUL-terminated strings, fds it may refuse);
    // what succeeds is closed or reaped below.
    let ret = unsafe {
        match name {
            "unshare_user" => libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER),
            "clone_user" => {
                let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong;
                let pid = libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize);
                if pid == 0 {
                    libc::_exit(0);
                }
                if pid > 0 {
                    libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
                    0
                } else {
                    pid
                }
            }
            "clone3" => libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize),
            "keyctl" => libc::syscall(libc::SYS_keyctl, 0, -3i32, 0), // GET_KEYRING_ID of the session
            "add_key" => libc::syscall(
                libc::SYS_add_key,
                key_type.as_ptr(),
                desc.as_ptr(),
                b"x".as_ptr(),
                1usize,
                -2i32, // the process keyring
            ),
            "request_key" => {
                libc::syscall(libc::SYS_request_key, key_type.as_ptr(), desc.as_ptr(), 0usize, 0usize)
            }
            "io_uring_setup" => {
                let mut params = [0u8; 120];
                libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr())
            }
            "perf_event_open" => {
                let mut attr = [0u8; 128];
                attr[4..8].copy_from_slice(&128u32.to_ne_bytes()); // size; type 0 (hardware)
                libc::syscall(libc::SYS_perf_event_open, attr.as_mut_ptr(), 0, -1i32, -1i32, 0usize)
            }
            "bpf" => libc::syscall(libc::SYS_bpf, 0usize, std::ptr::null::<u8>(), 0usize),
            "userfaultfd" => libc::syscall(libc::SYS_userfaultfd, 1usize), // UFFD_USER_MODE_ONLY
            "kexec_load" => libc::syscall(libc::SYS_kexec_load, 0usize, 0usize, 0usize, 0usize),
            "finit_module" => libc::syscall(libc::SYS_finit_module, -1i32, c"".as_ptr(), 0usize),
            "open_by_handle_at" => libc::syscall(libc::SYS_open_by_handle_at, -1i32, 0usize, 0usize),
            "acct" => libc::syscall(libc::SYS_acct, path.as_ptr()),
            "swapoff" => libc::syscall(libc::SYS_swapoff, path.as_ptr()),
            "mount" => libc::syscall(
                libc::SYS_mount,
                c"none".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                0usize,
                0usize,
            ),
            "personality_exec" => libc::syscall(libc::SYS_personality, 0x40_0000usize), // READ_IMPLIES_EXEC
            "personality_query" => libc::syscall(libc::SYS_personality, 0xffff_ffffusize),
            "tiocsti" => libc::syscall(libc::SYS_ioctl, 0i32, libc::TIOCSTI, b"x".as_ptr()),
            "tioclinux" => {
                let mut sub = [0u8; 1];
                libc::syscall(libc::SYS_ioctl, 0i32, libc::TIOCLINUX, sub.as_mut_ptr())
            }
            "getpgid_self" => libc::syscall(libc::SYS_getpgid, 0),
            "getpgid_init" => libc::syscall(libc::SYS_getpgid, 1),
            other => panic!("no such probe {other}"),
        }
    };
    if ret < 0 {
        return errno();
    }
    if matches!(name, "io_uring_setup" | "perf_event_open" | "userfaultfd") {
        // SAFETY: these return a new fd, ours to close.
        unsafe { libc::close(ret as i32) };
    }
    0
}

/// A guest process: makes each probe call and reports the errnos on one
/// line (`CALLS name=errno ...`), then whether a thread starts (glibc
/// tries `clone3` first) and whether it may query its personality.
#[test]
#[ignore = "a role of the seccomp tests"]
fn role_seccomp_prober() {
    if !crate::common::role::is("seccomp_prober") {
        return;
    }
    let names = DENIED.iter().map(|(n, _)| *n).chain(["personality_query", "getpgid_self", "getpgid_init"]);
    let line: Vec<String> = names.map(|n| format!("{n}={}", call(n))).collect();
    say(format!("CALLS {}", line.join(" ")));
    let thread = std::thread::spawn(|| 42).join().map_or(0, |v| v);
    say(format!("THREAD {thread}"));
}

/// The probe results of a guest's (or entered process's) output.
fn results(out: &str) -> BTreeMap<String, i32> {
    let line = tagged_line(out, "CALLS").unwrap_or_else(|| panic!("no CALLS line in {out:?}"));
    fields(line).into_iter().map(|(k, v)| (k.to_string(), v.parse().unwrap())).collect()
}

fn prober() -> vguest::Command {
    let piped = || vguest::Stdio::Piped;
    guest_role(module_path!(), "seccomp_prober").stdout(piped()).stderr(piped())
}

/// Checks that every probe was refused as the default filter refuses it.
fn assert_denied(got: &BTreeMap<String, i32>, who: &str) {
    for &(name, want) in DENIED {
        assert_eq!(
            got.get(name),
            Some(&want),
            "{who}: {name} was not refused as the filter refuses it: {got:?}"
        );
    }
    assert_eq!(got.get("personality_query"), Some(&0), "{who}: {got:?}");
}

#[test]
fn default_guest_cannot_reach_closed_kernel_surfaces() {
    if !root_or_skip("seccomp default") {
        return;
    }
    let _x = exclusive();
    let before = warm_state();
    let (status, out, err) =
        run(Guest::builder("sec-seccomp").filesystem(role_filesystem()).command(prober()));
    assert!(status.success(), "{status:?}: {out} {err}");
    assert_denied(&results(&out), "payload");
    assert_eq!(tagged_line(&out, "THREAD"), Some("42"), "a thread starts (clone3 falls back): {out}");

    // The ordinary userland still works: busybox sh, ps, ip; mount is
    // refused as before.
    let script = "ps -o pid,comm | wc -l; ip -o link show lo | wc -l; mount -t tmpfs none /mnt 2>/dev/null || echo refused";
    let (status, out, err) = sh(Guest::builder("sec-seccomp-sh").filesystem(role_filesystem()), script);
    assert!(status.success(), "{status:?}: {out} {err}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert!(lines.len() == 3 && lines[0].parse::<u32>().unwrap() >= 3, "{out}");
    assert_eq!(lines[1..], ["1", "refused"], "{out}");
    before.assert_unchanged("seccomp default");
}

#[test]
fn entered_process_gets_the_guests_filter() {
    if !root_or_skip("seccomp exec") {
        return;
    }
    let _x = exclusive();
    let before = warm_state();
    let mut guest = Guest::builder("sec-seccomp-exec")
        .filesystem(role_filesystem())
        .command(vguest::Command::new("/bin/sleep").arg("600"))
        .spawn()
        .unwrap();
    let entered = guest.exec(prober()).unwrap();
    let (status, out, _) = finish_process(entered);
    assert!(status.success(), "{status:?}: {out}");
    assert_denied(&results(&out), "Guest::exec");
    // Attaching by pid (as another program would) finds the filter the
    // spawner kept on the guest's group.
    let attached = Guest::attach(guest.id()).unwrap();
    let (status, out, _) = finish_process(attached.exec(prober()).unwrap());
    assert!(status.success(), "{status:?}: {out}");
    assert_denied(&results(&out), "AttachedGuest::exec");

    // A custom filter follows into the guest as well, exactly: getpgid(0)
    // answers the rule's errno, getpgid(1) is allowed.
    let rule = SeccompRule::new("getpgid", SeccompAction::Errno(77)).arg(0, SeccompCmp::Eq(0));
    let ctx = Context::new().seccomp(Seccomp::default().rule(rule));
    let mut custom = Guest::builder("sec-seccomp-rule")
        .context(ctx)
        .filesystem(role_filesystem())
        .command(vguest::Command::new("/bin/sleep").arg("600"))
        .spawn()
        .unwrap();
    let (_, out, _) = finish_process(custom.exec(prober()).unwrap());
    let got = results(&out);
    assert_eq!((got["getpgid_self"], got["getpgid_init"]), (77, 0), "{got:?}");
    for g in [&mut guest, &mut custom] {
        g.kill().unwrap();
        g.wait().unwrap();
    }
    drop((guest, custom, attached));
    before.assert_unchanged("seccomp exec");
}

/// Waits for an entered process and returns its status and stdout.
fn finish_process(p: vguest::GuestProcess) -> (vguest::ExitStatus, String, ()) {
    let out = p.output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned(), ())
}

/// Another process than the spawner: attaches to the guest whose PID 1
/// is `VGUEST_SECURITY_PID` and execs the prober into it, passing on its
/// report (`CALLS ...`).
#[test]
#[ignore = "a role of the seccomp tests"]
fn role_seccomp_attacher() {
    if !crate::common::role::is("seccomp_attacher") {
        return;
    }
    let pid: u32 = crate::support::env("VGUEST_SECURITY_PID").parse().unwrap();
    let attached = Guest::attach(pid).unwrap();
    match attached.exec(prober()) {
        Ok(process) => {
            let (status, out, _) = finish_process(process);
            say(format!("ATTACHED status={}", status.code().unwrap_or(-1)));
            print!("{out}");
        }
        Err(e) => say(format!("REFUSED {e:?}")),
    }
}

/// Whether this process runs under a seccomp filter of its own (as under
/// `tests/support/no_clone3.rs`, or in a container): the kernel then
/// refuses it other processes' filters (`PTRACE_SECCOMP_GET_FILTER`,
/// `EACCES`).
fn filtered_here() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    crate::common::status_field(&status, "Seccomp") == Some("2")
}

#[test]
fn another_process_attaching_gets_the_guests_filter() {
    if !root_or_skip("seccomp attach") {
        return;
    }
    let _x = exclusive();
    let before = warm_state();
    // With groups and without: the filters come from PID 1 (ptrace), the
    // spawner's record of them being this process's only; a caller that
    // is filtered itself may not read them, and falls back on the copy
    // kept on the guest's groups.
    for resources in [None, Some(vguest::Resources::new().pids_max(16))] {
        let mut builder = Guest::builder("sec-seccomp-attach")
            .filesystem(role_filesystem())
            .command(vguest::Command::new("/bin/sleep").arg("600"));
        if let Some(r) = resources.clone() {
            builder = builder.resources(r);
        }
        let mut guest = builder.spawn().unwrap();
        let other = crate::common::role::host_in(module_path!(), "seccomp_attacher")
            .env("VGUEST_SECURITY_PID", guest.id().to_string())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&other.stdout).into_owned();
        let err = String::from_utf8_lossy(&other.stderr).into_owned();
        if resources.is_none() && filtered_here() {
            // Nowhere to find the filters: entering is refused, never
            // done without them.
            let refused = tagged_line(&out, "REFUSED").unwrap_or_else(|| panic!("not refused: {out} {err}"));
            assert!(refused.contains("system call filter is not known"), "{refused}");
        } else {
            assert_eq!(tagged_line(&out, "ATTACHED"), Some("status=0"), "groups {resources:?}: {out} {err}");
            assert_denied(&results(&out), "another process's AttachedGuest::exec");
        }
        // PID 1 was stopped a moment and let go: it still runs.
        assert_eq!(guest.try_wait().unwrap(), None, "the guest's PID 1 ended after the attach");
        guest.kill().unwrap();
        guest.wait().unwrap();
    }
    before.assert_unchanged("seccomp attach");
}

#[test]
fn unconfined_guest_reaches_them_which_is_what_the_filter_stops() {
    if !root_or_skip("seccomp unconfined") {
        return;
    }
    let _s = shared();
    let builder = Guest::builder("sec-seccomp-open")
        .context(Context::new().seccomp(Seccomp::unconfined()))
        .filesystem(role_filesystem())
        .command(prober());
    let (status, out, err) = run(builder);
    assert!(status.success(), "{status:?}: {out} {err}");
    let got = results(&out);
    // A root guest without the filter makes a user namespace (and with
    // it a full set of capabilities), and reaches the host's keyring.
    // (unshare answers EINVAL here only because the prober has threads.)
    assert_eq!(got["clone_user"], 0, "{got:?}");
    assert_ne!(got["unshare_user"], libc::EPERM, "{got:?}");
    assert_ne!(got["keyctl"], libc::EPERM, "{got:?}");
    // (Unless the whole run refuses clone3: `tests/support/no_clone3.rs`.)
    if std::env::var_os("VGUEST_TEST_EXPECT_NO_CLONE3").is_none_or(|v| v != "1") {
        assert_ne!(got["clone3"], libc::ENOSYS, "{got:?}");
    }
}

/// A static i386 program: `keyctl(GET_KEYRING_ID, session)` and
/// `unshare(CLONE_NEWUSER)` through the 32-bit table (`int 0x80`); exits
/// with the first errno plus 16 times the second.
const I386_PROBE: &str = r#"
    .globl _start
_start:
    movl $288, %eax
    xorl %ebx, %ebx
    movl $-3, %ecx
    xorl %edx, %edx
    int $0x80
    negl %eax
    movl %eax, %esi
    movl $310, %eax
    movl $0x10000000, %ebx
    int $0x80
    negl %eax
    shll $4, %eax
    addl %esi, %eax
    movl %eax, %ebx
    movl $1, %eax
    int $0x80
"#;

/// Assembles [`I386_PROBE`] into `dir`; `None` (and a note) where the
/// host has no 32-bit assembler or linker.
fn i386_probe(dir: &Path) -> Option<std::path::PathBuf> {
    let (src, obj, exe) = (dir.join("probe.s"), dir.join("probe.o"), dir.join("probe32"));
    std::fs::write(&src, I386_PROBE).unwrap();
    let ok = |c: &mut std::process::Command| c.status().is_ok_and(|s| s.success());
    if !ok(std::process::Command::new("as").arg("--32").arg("-o").arg(&obj).arg(&src))
        || !ok(std::process::Command::new("ld").args(["-m", "elf_i386", "-static", "-o"]).arg(&exe).arg(&obj))
    {
        return None;
    }
    Some(exe)
}

#[test]
fn a_32_bit_program_cannot_go_round_the_filter() {
    if !root_or_skip("seccomp i386") || !cfg!(target_arch = "x86_64") {
        return;
    }
    let _s = shared();
    let dir = tempdir("seccomp-i386");
    let Some(exe) = i386_probe(&dir) else {
        println!("SKIP seccomp i386: no 32-bit as/ld (Debian: binutils)");
        return;
    };
    let run_probe = |seccomp: Seccomp| {
        let fs = role_filesystem().bind_ro(&exe, "/probe32");
        let builder = Guest::builder("sec-seccomp-i386")
            .context(Context::new().seccomp(seccomp))
            .filesystem(fs)
            .command(
                vguest::Command::new("/probe32").stdout(vguest::Stdio::Piped).stderr(vguest::Stdio::Piped),
            );
        run(builder).0.code()
    };
    let eperm = libc::EPERM;
    assert_eq!(run_probe(Seccomp::default()), Some(eperm + 16 * eperm), "keyctl and unshare, both refused");
    // Unfiltered, the same program reaches both (keyctl answers an id,
    // unshare succeeds): the filter is what stops it.
    let open = run_probe(Seccomp::unconfined());
    assert_ne!(open, Some(eperm + 16 * eperm), "the i386 probe is refused even unfiltered");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_call_names_are_typed_errors_and_leave_nothing() {
    if !root_or_skip("seccomp unknown") {
        return;
    }
    let _x = exclusive();
    let before = warm_state();
    let err = Guest::builder("sec-seccomp-bad")
        .context(Context::new().seccomp(Seccomp::default().allow("no_such_call")))
        .filesystem(role_filesystem())
        .resources(vguest::Resources::new().pids_max(8))
        .command(vguest::Command::new("/bin/true"))
        .spawn()
        .unwrap_err();
    assert!(
        matches!(&err, vguest::Error::Context(vguest::ContextError::UnknownSyscall { name }) if name == "no_such_call"),
        "{err} ({err:?})"
    );
    before.assert_unchanged("seccomp unknown");
}

/// A directory of this test run under cargo's target directory.
fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
