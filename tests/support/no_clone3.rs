//! `no-clone3 PROGRAM ARGS...`: runs PROGRAM with `clone3(2)` refused.
//!
//! Installs a seccomp filter under which `clone3` fails with `ENOSYS`, as
//! on kernels before 5.3 and under container profiles such as Docker's,
//! then execs its arguments; the filter stays on every descendant. The
//! test suite runs a second time under it (`scripts/test.sh`), so that
//! vguest's `clone(2)` fallback is exercised on every path that clones.
//!
//! A standalone program without dependencies, built by the test script:
//!
//!     rustc -O --edition 2021 tests/support/no_clone3.rs -o target/no-clone3
//!
//! It runs as root and so needs no `no_new_privs` (which would change what
//! the tests observe in their guests): `CAP_SYS_ADMIN` lets it install the
//! filter (`seccomp(2)`).

use std::ffi::{c_char, c_int, c_ulong, CString};
use std::os::unix::ffi::OsStringExt;

extern "C" {
    fn prctl(option: c_int, arg2: c_ulong, arg3: c_ulong, arg4: c_ulong, arg5: c_ulong) -> c_int;
    fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int;
}

const PR_SET_SECCOMP: c_int = 22;
const SECCOMP_MODE_FILTER: c_ulong = 2;

#[repr(C)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

// Classic BPF opcodes (linux/filter.h) and seccomp return values.
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const ENOSYS: u32 = 38;
/// Offsets in `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;
/// The 32-bit architecture the kernel runs beside the native one (i386;
/// arm), whose programs the seccomp tests run.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_COMPAT: u32 = 0x4000_0003;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_COMPAT: u32 = 0x4000_0028;
/// `clone3` has the same number on x86_64, aarch64, i386 and arm.
const NR_CLONE3: u32 = 435;

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter { code, jt: 0, jf: 0, k }
}

fn jump(k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code: JEQ_K, jt, jf, k }
}

fn main() {
    let args: Vec<CString> = std::env::args_os()
        .skip(1)
        .map(|a| CString::new(a.into_vec()).expect("an argument holds a NUL byte"))
        .collect();
    if args.is_empty() {
        eprintln!("usage: no-clone3 PROGRAM [ARGS...]");
        std::process::exit(2);
    }
    // A call from another architecture than these two is killed rather
    // than let through unchecked; this machine's tests make none.
    let filter = [
        stmt(LD_W_ABS, OFFSET_ARCH),
        jump(AUDIT_ARCH, 2, 0),
        jump(AUDIT_ARCH_COMPAT, 1, 0),
        stmt(RET_K, SECCOMP_RET_KILL_PROCESS),
        stmt(LD_W_ABS, OFFSET_NR),
        jump(NR_CLONE3, 0, 1),
        stmt(RET_K, SECCOMP_RET_ERRNO | ENOSYS),
        stmt(RET_K, SECCOMP_RET_ALLOW),
    ];
    let prog = SockFprog { len: filter.len() as u16, filter: filter.as_ptr() };
    // SAFETY: `prog` points to a live, well-formed filter for the duration
    // of the call; the kernel copies it.
    if unsafe { prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog as *const SockFprog as c_ulong, 0, 0) } != 0
    {
        eprintln!("no-clone3: installing the filter failed: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: `argv` is a NULL-terminated array of live C strings.
    unsafe { execvp(argv[0], argv.as_ptr()) };
    eprintln!("no-clone3: executing {:?}: {}", args[0], std::io::Error::last_os_error());
    std::process::exit(127);
}
