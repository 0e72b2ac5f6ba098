//! "After clone, no allocation", checked at run time.
//!
//! Every process vguest clones runs, until its exec, in the caller's memory
//! or in a copy of it: the spawn child (`CLONE_VM`), the payload's first
//! process that the spawn child clones for the built-in init (`CLONE_VM`),
//! the maker of a fresh network namespace (`CLONE_VM | CLONE_FILES`), the
//! process entering a guest for [`Guest::exec`] and
//! [`AttachedGuest::exec`](vguest::AttachedGuest::exec) (`CLONE_VM`), and,
//! for a guest with its own time namespace, the forked copy that enters it
//! (a process sharing memory may not join a time namespace). The embedding
//! program may be multi-threaded, so at the moment of the clone another
//! thread may hold the allocator's lock: in a process that shares the
//! memory the lock is contended with the caller, in a copy it is never
//! released. A child that calls `malloc` or `free` may then deadlock, or
//! corrupt the caller's heap. The rule is: after clone, no allocation
//! (and no deallocation) until exec or exit.
//!
//! This binary installs a global allocator ([`Detector`]) around
//! [`System`] that enforces the rule for every process that runs this
//! binary's code. It records the test process's pid (the raw `getpid`
//! system call, which no libc caches) on the first allocation, which the
//! Rust runtime makes in the test process's main thread before `main`. On
//! every `alloc`, `alloc_zeroed`, `realloc` and `dealloc` it compares the
//! raw pid with the recorded one; threads of the test process share it,
//! and any cloned process has another one (a process in a new PID
//! namespace sees 1, 2, ...). In a process that is not the test process
//! the allocator never calls into [`System`] (that is what could
//! deadlock): it counts the offence in a `MAP_SHARED` anonymous page,
//! mapped by the test process on its first allocation (a forked copy
//! shares that page with the test process; a `CLONE_VM` child shares all
//! memory anyway), writes a fixed message to fd 2 with `write(2)` and
//! exits with status 99 (`_exit`, no atexit handlers, no unwinding).
//!
//! Each test then spawns guests along one of the paths above through the
//! public API only, checks that the guests did their work, and asserts
//! that no offence was counted meanwhile ([`assert_no_child_allocation`]).
//! A child that allocated would also usually make its guest fail (the
//! child exits 99 instead of exec'ing), but the page is what proves it.
//!
//! The tests of this binary run one at a time (they hold
//! [`common::exclusive`]): an offence is then attributed to exactly one
//! test, and each can check that it left the host as it found it (fds,
//! children, mounts, cgroups, links).
//!
//! A self-check ([`the_detector_catches_allocations_in_forked_and_clone_vm_children`])
//! proves the detector can fail: it makes children of its own that
//! allocate or free, and expects them to be caught. Those offences are
//! counted in a separate slot of the page, so they can never be mistaken
//! for an offence of vguest's (see [`SELFTEST_PID`]).
//!
//! Assumption: the test process's pid is not one that a process in a
//! guest's PID namespace has at the same time (those are small: 1, 2, a
//! few more; such a process would pass for the test process). Each test
//! asserts that the test process's pid is above 64.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU8, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::netns::TestNet;
use common::*;
use vguest::{
    CapSet, Capabilities, Command, Context, Error, Filesystem, Guest, GuestBuilder, IdMap, Init, Namespaces,
    Network, Resources, Rlimit, Stdio, Step, User, Veth,
};

// ---------------------------------------------------------------------------
// The detector.
// ---------------------------------------------------------------------------

/// What a cloned process did, as counted in the shared page.
const KIND_ALLOC: u32 = 1;
const KIND_ALLOC_ZEROED: u32 = 2;
const KIND_REALLOC: u32 = 3;
const KIND_DEALLOC: u32 = 4;

/// Exit status of a process the detector caught.
const CAUGHT: i32 = 99;

/// The page shared by the test process and every process cloned from it
/// (`MAP_SHARED | MAP_ANONYMOUS`, so a forked copy's writes reach the test
/// process too). Zeroed by the kernel; only atomics, so any process may
/// write it without a lock.
#[repr(C)]
struct SharedPage {
    /// Offences by processes other than the self-check's own children:
    /// the count that must stay unchanged.
    offences: AtomicU32,
    /// The raw pid (as the offender saw it, in its own PID namespace) and
    /// the kind of call of the latest offence, for the failure message.
    last_pid: AtomicI32,
    last_kind: AtomicU32,
    /// Offences by the self-check's children (see [`SELFTEST_PID`]).
    selftest: AtomicU32,
    selftest_kind: AtomicU32,
}

/// 0: nothing recorded yet; 1: the first allocation is recording; 2: ready.
static STATE: AtomicU8 = AtomicU8::new(0);
/// The test process's pid, from the raw system call.
static OWNER_PID: AtomicI32 = AtomicI32::new(0);
/// The shared page; null if mapping it failed (the assertions say so).
static PAGE: AtomicPtr<SharedPage> = AtomicPtr::new(std::ptr::null_mut());

/// The pid of the self-check's child while one runs, else 0. An offence
/// by a process whose raw pid equals it counts in the self-check's slot.
///
/// It is sound for both kinds of child the self-check makes:
/// - a forked child stores its own pid here after the fork, in its own
///   copy of the memory: the test process's copy stays 0, so no other
///   process ever sees the value;
/// - a `CLONE_VM` child stores it in the shared memory, so the test
///   process sees it too, until it resets it to 0 after reaping the child.
///   Until then no other process can have that pid in the test process's
///   PID namespace (the unreaped child holds it), and no guest runs
///   meanwhile (the tests of this binary run one at a time), so no process
///   in another PID namespace is cloned from this one either.
static SELFTEST_PID: AtomicI32 = AtomicI32::new(0);

/// `getpid(2)` as a raw system call: libc wrappers may cache the pid,
/// which a `CLONE_VM` child shares with its parent.
fn raw_getpid() -> i32 {
    // SAFETY: getpid takes no arguments, cannot fail and touches no memory.
    unsafe { libc::syscall(libc::SYS_getpid) as i32 }
}

/// A global allocator that refuses to serve any process but the test
/// process (see the module documentation).
struct Detector;

#[global_allocator]
static ALLOCATOR: Detector = Detector;

impl Detector {
    /// Returns if the caller is the test process; otherwise records the
    /// offence and exits the calling process, without allocating.
    #[inline]
    fn check(kind: u32) {
        let pid = raw_getpid();
        if STATE.load(Ordering::Acquire) != 2 {
            record_owner(pid);
        }
        if pid != OWNER_PID.load(Ordering::Relaxed) {
            caught(pid, kind);
        }
    }
}

/// Records the test process's pid and maps the shared page, once. The
/// first allocation of the program comes from the Rust runtime in the main
/// thread before `main` (and so before any test thread or clone); should
/// two threads still race here, the loser waits for the winner.
#[cold]
fn record_owner(pid: i32) {
    match STATE.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: an anonymous shared mapping of one page at an
            // address the kernel picks; nothing else is touched.
            let page = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if page != libc::MAP_FAILED {
                PAGE.store(page.cast(), Ordering::Release);
            }
            OWNER_PID.store(pid, Ordering::Relaxed);
            STATE.store(2, Ordering::Release);
        }
        Err(_) => {
            while STATE.load(Ordering::Acquire) != 2 {
                std::hint::spin_loop();
            }
        }
    }
}

/// The shared page, if it could be mapped.
fn page() -> Option<&'static SharedPage> {
    let page = PAGE.load(Ordering::Acquire);
    // SAFETY: a non-null pointer is the page mapped in `record_owner`,
    // never unmapped, zeroed by the kernel and aligned to a page, which
    // suits `SharedPage` (atomics only, any bit pattern valid).
    (!page.is_null()).then(|| unsafe { &*page })
}

/// An allocator call in a process other than the test process: count it,
/// say so on fd 2 and exit with [`CAUGHT`]. Only atomics and raw system
/// calls: no allocation, no lock, no formatting, no unwinding.
#[cold]
fn caught(pid: i32, kind: u32) -> ! {
    let selftest = pid == SELFTEST_PID.load(Ordering::Relaxed);
    if let Some(page) = page() {
        if selftest {
            page.selftest_kind.store(kind, Ordering::Relaxed);
            page.selftest.fetch_add(1, Ordering::Release);
        } else {
            page.last_pid.store(pid, Ordering::Relaxed);
            page.last_kind.store(kind, Ordering::Relaxed);
            page.offences.fetch_add(1, Ordering::Release);
        }
    }
    let message: &[u8] = match (selftest, kind) {
        (true, _) => b"child_alloc self-check: allocator call in a cloned child caught, as expected\n",
        (false, KIND_ALLOC) => b"child_alloc: ALLOCATION (alloc) IN A PROCESS CLONED FROM THE TEST PROCESS\n",
        (false, KIND_ALLOC_ZEROED) => {
            b"child_alloc: ALLOCATION (alloc_zeroed) IN A PROCESS CLONED FROM THE TEST PROCESS\n"
        }
        (false, KIND_REALLOC) => {
            b"child_alloc: ALLOCATION (realloc) IN A PROCESS CLONED FROM THE TEST PROCESS\n"
        }
        (false, _) => b"child_alloc: DEALLOCATION (dealloc) IN A PROCESS CLONED FROM THE TEST PROCESS\n",
    };
    // SAFETY: write(2) from a static buffer and _exit(2), both plain
    // system calls. (Should the write fail, libc sets errno, a word of the
    // cloning thread's TLS that a CLONE_VM child shares: harmless here,
    // where the run has failed anyway.)
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::_exit(CAUGHT)
    }
}

// SAFETY: every method forwards to `System` unchanged once `check` has
// returned, and `check` returns only in the test process; elsewhere it
// never returns (it exits the process), so no layout contract is broken.
unsafe impl GlobalAlloc for Detector {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Detector::check(KIND_ALLOC);
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Detector::check(KIND_ALLOC_ZEROED);
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Detector::check(KIND_REALLOC);
        // SAFETY: the caller's contract for `realloc`, passed on; `ptr`
        // came from `System` through this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Detector::check(KIND_DEALLOC);
        // SAFETY: the caller's contract for `dealloc`, passed on; `ptr`
        // came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        KIND_ALLOC => "alloc",
        KIND_ALLOC_ZEROED => "alloc_zeroed",
        KIND_REALLOC => "realloc",
        KIND_DEALLOC => "dealloc",
        _ => "?",
    }
}

/// Whether the running test has reported an offence already.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// The offence count when the running test started (the tests run one at
/// a time, so one baseline serves).
static BASELINE: AtomicU32 = AtomicU32::new(0);

/// One test's hold on the detector. Holds the binary's lock, so the tests
/// (and their guests) run one at a time and an offence belongs to the
/// test that saw it.
struct Watch {
    _serial: std::sync::RwLockWriteGuard<'static, ()>,
}

impl Watch {
    fn start() -> Watch {
        let serial = exclusive();
        let page = page().expect("the detector's shared page is not mapped: the check cannot run");
        let owner = OWNER_PID.load(Ordering::Relaxed);
        assert_eq!(owner, raw_getpid(), "the detector recorded another pid");
        // Processes in a guest's PID namespace have small pids; one equal
        // to ours would pass for the test process (module documentation).
        assert!(owner > 64, "the test process's pid {owner} is too small for the detector to tell it apart");
        BASELINE.store(page.offences.load(Ordering::Acquire), Ordering::Relaxed);
        REPORTED.store(false, Ordering::Relaxed);
        Watch { _serial: serial }
    }
}

impl Drop for Watch {
    /// Should the test fail in a way the helpers below did not put down to
    /// the detector, the detector's finding is still said.
    fn drop(&mut self) {
        if std::thread::panicking() && offences_since_start() != 0 && !REPORTED.load(Ordering::Relaxed) {
            eprintln!("{}", offence_report("(while failing)"));
        }
    }
}

/// Offences counted since the running test's [`Watch::start`].
fn offences_since_start() -> u32 {
    let page = page().expect("the detector's shared page");
    page.offences.load(Ordering::Acquire).wrapping_sub(BASELINE.load(Ordering::Relaxed))
}

fn offence_report(what: &str) -> String {
    let page = page().expect("the detector's shared page");
    format!(
        "{what}: {} allocator call(s) in processes cloned from the test process (the rule: after \
         clone, no allocation); the latest: {} by pid {} (its pid as it saw it)",
        offences_since_start(),
        kind_name(page.last_kind.load(Ordering::Relaxed)),
        page.last_pid.load(Ordering::Relaxed),
    )
}

/// Panics if a process cloned from the test process called the allocator
/// since the running test's [`Watch::start`]. Every helper that looks at
/// a guest's outcome calls it first: a caught child exits with [`CAUGHT`]
/// instead of exec'ing, which would otherwise show up as a puzzling
/// status or setup error.
fn assert_no_child_allocation(what: &str) {
    if offences_since_start() != 0 {
        REPORTED.store(true, Ordering::Relaxed);
        panic!("{}", offence_report(what));
    }
}

// ---------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------

/// No cgroup of guest `name` is left in any hierarchy.
fn assert_no_groups(name: &str) {
    let left = groups_named(&format!("{name}."));
    assert!(left.is_empty(), "groups of {name} left behind: {left:?}");
}

/// A link name unique to this test process: `vg<pid><tag>`.
fn link(tag: &str) -> String {
    let name = format!("vg{}{tag}", std::process::id() % 100_000);
    assert!(name.len() <= 15, "{name} is too long for a link name");
    name
}

/// Limits for a guest. In the test VM's occupied-leaf scenario the kernel
/// enables no controller below the caller's own group, so the guest goes
/// beneath the delegated group the VM prepared (as in tests/resources.rs).
fn limits() -> Resources {
    let r = match occupied_leaf() {
        true => match std::env::var_os("VGUEST_TEST_DELEGATED_PARENT").filter(|p| !p.is_empty()) {
            Some(parent) => Resources::new().parent(parent),
            None => Resources::new(),
        },
        false => Resources::new(),
    };
    r.pids_max(64).memory_max(256 << 20)
}

fn script(text: &str) -> Command {
    Command::new("/bin/sh").args(["-c", text]).stdout(Stdio::Piped).stderr(Stdio::Piped)
}

/// Runs `builder`'s piped command to its end; asserts it succeeded.
fn run_ok(builder: GuestBuilder) -> String {
    let (status, out, err) = finish(spawn(builder));
    assert_no_child_allocation("a guest's run");
    assert!(status.success(), "{status}: {out}\n{err}");
    out
}

/// Loads the built-in init into the memfd this process keeps for later
/// spawns, so that a [`HostState`] captured after it compares equal.
fn warm_up() {
    wait_ok(spawn(Guest::builder("ca-warm").command(Command::new("/bin/true"))), "warm-up");
}

/// Spawns a guest; a failure is first put down to the detector, if it
/// caught a child.
fn spawn(builder: GuestBuilder) -> Guest {
    let spawned = builder.spawn();
    assert_no_child_allocation("spawn");
    spawned.unwrap_or_else(|e| panic!("spawn failed: {e} ({e:?})"))
}

/// Waits for a guest, which must succeed.
fn wait_ok(mut guest: Guest, what: &str) {
    let status = guest.wait().unwrap();
    assert_no_child_allocation(what);
    assert!(status.success(), "{what}: {status}");
}

/// A long-running busybox guest with a payload's identity to take on.
fn sleeper(name: &str, ctx: Context, resources: Option<Resources>) -> Guest {
    let mut b = Guest::builder(name)
        .context(ctx)
        .filesystem(Filesystem::server(rootfs()))
        .command(Command::new("/bin/sleep").arg("1000"));
    if let Some(r) = resources {
        b = b.resources(r);
    }
    spawn(b)
}

/// Runs `text` in the guest through `exec` and returns its stdout,
/// asserting it succeeded.
fn exec_ok(exec: impl FnOnce(Command) -> Result<vguest::GuestProcess, Error>, text: &str) -> String {
    let process = exec(script(text));
    assert_no_child_allocation("exec");
    let out = process.unwrap().output().unwrap();
    assert_no_child_allocation("exec");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}: {stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The error of an exec that must fail; a success or a surprise is
/// first put down to the detector, if it caught a child.
fn exec_err(result: Result<vguest::GuestProcess, Error>) -> Error {
    assert_no_child_allocation("a failing exec");
    result.map(|_| ()).expect_err("the exec should fail")
}

/// The entering child's error path, through both handles: a program
/// that does not exist, and one not found in PATH.
fn failing_execs(guest: &Guest, attached: &vguest::AttachedGuest) {
    let err = exec_err(guest.exec(Command::new("/no/such/program")));
    assert_eq!((err.step(), err.raw_os_error()), (Some(Step::Exec), Some(libc::ENOENT)), "{err}");
    let err = exec_err(attached.exec(Command::new("no-such-program")));
    assert_eq!(err.step(), Some(Step::ResolveProgram), "{err}");
}

/// Kills a guest and waits for it.
fn stop(mut guest: Guest) {
    guest.kill().unwrap();
    guest.wait().unwrap();
}

fn uptime_secs(text: &str) -> f64 {
    text.split_whitespace().next().unwrap().parse().unwrap()
}

// ---------------------------------------------------------------------------
// The self-check.
// ---------------------------------------------------------------------------

/// Waits for child `pid` with a deadline (a caught child exits at once);
/// kills it if the deadline passes. Returns the raw wait status.
fn wait_child(pid: libc::pid_t) -> libc::c_int {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; `status` is a live local.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if got == pid {
            return status;
        }
        assert_eq!(got, 0, "waitpid({pid}): {}", std::io::Error::last_os_error());
        if Instant::now() > deadline {
            // SAFETY: signals and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("child {pid} did not exit within 10 s: the detector let it hang");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Asserts that `status` is an exit with [`CAUGHT`] and that the
/// self-check slot counted one more offence of `kind`.
fn assert_caught(what: &str, status: libc::c_int, before: u32, kind: u32) {
    let page = page().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == CAUGHT,
        "{what}: the child was not caught (wait status {status:#x}, want exit {CAUGHT})"
    );
    assert_eq!(page.selftest.load(Ordering::Acquire), before + 1, "{what}: not counted in the shared page");
    assert_eq!(kind_name(page.selftest_kind.load(Ordering::Relaxed)), kind_name(kind), "{what}");
}

/// Forks; the child marks itself as the self-check's child (in its own
/// copy of the memory) and runs `act`, which must end in the detector.
fn fork_and(act: fn()) -> libc::c_int {
    // SAFETY: the child below does no more than a store to an atomic, the
    // allocator call under test (which the detector turns into a write and
    // an _exit before any lock) and _exit: nothing that another thread of
    // this process could have left locked.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        SELFTEST_PID.store(raw_getpid(), Ordering::Relaxed);
        act();
        // SAFETY: leaves the child without running anything of the parent's.
        unsafe { libc::_exit(1) }
    }
    wait_child(pid)
}

/// Entry of the self-check's `CLONE_VM` child: runs on its own stack in
/// the test process's memory, exactly as vguest's children do.
extern "C" fn clone_vm_child(_arg: *mut libc::c_void) -> libc::c_int {
    SELFTEST_PID.store(raw_getpid(), Ordering::Relaxed);
    std::hint::black_box(Box::new(7u64));
    // Not reached if the detector works. `_exit` keeps the parent's memory
    // untouched (returning would too: glibc's clone exits with the value).
    // SAFETY: a plain exit_group of this process.
    unsafe { libc::_exit(1) }
}

#[test]
fn the_detector_catches_allocations_in_forked_and_clone_vm_children() {
    let _watch = Watch::start();
    let shared = page().unwrap();

    // A forked copy that allocates.
    let before = shared.selftest.load(Ordering::Acquire);
    let status = fork_and(|| {
        std::hint::black_box(Box::new(1u64));
    });
    assert_caught("fork + alloc", status, before, KIND_ALLOC);

    // A forked copy that frees memory the parent allocated.
    let before = shared.selftest.load(Ordering::Acquire);
    let status = {
        static LEAKED: AtomicPtr<Vec<u8>> = AtomicPtr::new(std::ptr::null_mut());
        LEAKED.store(Box::into_raw(Box::new(vec![1u8; 32])), Ordering::Relaxed);
        let status = fork_and(|| {
            let ptr = LEAKED.load(Ordering::Relaxed);
            // SAFETY: the Box leaked just before the fork; in this child's
            // copy of the memory it is still live and owned by nobody.
            drop(unsafe { Box::from_raw(ptr) });
        });
        // SAFETY: the parent's copy is still live and owned by nobody.
        drop(unsafe { Box::from_raw(LEAKED.swap(std::ptr::null_mut(), Ordering::Relaxed)) });
        status
    };
    assert_caught("fork + dealloc", status, before, KIND_DEALLOC);

    // A child sharing this process's memory (CLONE_VM), as vguest makes.
    let before = shared.selftest.load(Ordering::Acquire);
    let mut stack = vec![0u8; 64 * 1024];
    // SAFETY: the child runs `clone_vm_child` on the top of `stack`, which
    // stays alive until the child is reaped below; it shares our memory
    // and touches only atomics before the detector exits it.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(stack.len()).cast::<libc::c_void>();
        libc::clone(clone_vm_child, top, libc::CLONE_VM | libc::SIGCHLD, std::ptr::null_mut())
    };
    assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
    let status = wait_child(pid);
    // Reaped: its pid may be reused from here on.
    SELFTEST_PID.store(0, Ordering::Relaxed);
    drop(stack);
    assert_caught("clone(CLONE_VM) + alloc", status, before, KIND_ALLOC);

    // None of that counted as an offence of vguest's.
    assert_no_child_allocation("self-check");
}

// ---------------------------------------------------------------------------
// The paths that clone.
// ---------------------------------------------------------------------------

/// (a) The plainest guests: the host's `/bin/true` under the built-in
/// init (spawn child, then the payload's clone) and alone as PID 1 (the
/// spawn child execs the payload itself), without and with a pipe.
#[test]
fn bare_guests_spawn_without_allocating_after_clone() {
    if !root_or_skip("bare") {
        return;
    }
    let _watch = Watch::start();
    warm_up();
    let before = HostState::capture();
    assert_eq!(Init::default(), Init::Builtin, "the default init changed: adapt this test");
    for i in 0..3 {
        let g = spawn(Guest::builder("ca-bare").command(Command::new("/bin/true")));
        wait_ok(g, &format!("built-in init, round {i}"));
        let g = spawn(Guest::builder("ca-bare-pid1").init(Init::Payload).command(Command::new("/bin/true")));
        wait_ok(g, &format!("payload as PID 1, round {i}"));
    }
    // `echo` found in PATH (the child's own search), output through a pipe.
    let out = run_ok(
        Guest::builder("ca-bare-path")
            .command(Command::new("echo").arg("through PATH").stdout(Stdio::Piped).stderr(Stdio::Piped)),
    );
    assert_eq!(out, "through PATH\n");
    assert_no_child_allocation("bare guests");
    before.assert_unchanged("bare guests");
}

/// (b) A busybox root (mounts, pivot_root, masks), the built-in init,
/// hostname and domain name, rlimits, a working directory, another user
/// with two capabilities; then the same with a user namespace (the
/// handshake: the parent writes the id maps while the child waits).
#[test]
fn filesystem_context_and_credentials_without_allocating_after_clone() {
    if !root_or_skip("filesystem") {
        return;
    }
    let _watch = Watch::start();
    warm_up();
    let before = HostState::capture();
    let two: CapSet = "net_bind_service,kill".parse().unwrap();
    let ctx = Context::new()
        .hostname("ca-fs.inside")
        .domainname("example.test")
        .rlimit(Rlimit::RLIMIT_NOFILE, 128, 256)
        .rlimit(Rlimit::RLIMIT_CORE, 0, 0)
        .user(User::Id { uid: 33, gid: 33 })
        .groups([65534])
        .capabilities(Capabilities::only(two));
    let text = "hostname; cat /proc/sys/kernel/domainname; id -u; id -g; pwd; echo $$; \
                grep CapEff /proc/self/status; grep 'open files' /proc/self/limits";
    let out = run_ok(
        Guest::builder("ca-fs")
            .context(ctx)
            .init(Init::Builtin)
            .filesystem(Filesystem::server(rootfs()))
            .command(script(text).current_dir("/tmp").env("GREETING", "hi")),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..6], ["ca-fs.inside", "example.test", "33", "33", "/tmp", "2"], "{out}");
    assert_eq!(lines[6].split_whitespace().nth(1), Some(format!("{:016x}", two.bits()).as_str()), "{out}");
    assert_eq!(&lines[7].split_whitespace().collect::<Vec<_>>()[3..5], ["128", "256"], "{out}");

    // With a user namespace: root inside, an unprivileged id outside.
    let ctx = Context::new()
        .namespaces(Namespaces::default() | Namespaces::USER)
        .uid_map(IdMap::new(0, 500_000, 65_536))
        .gid_map(IdMap::new(0, 500_000, 65_536))
        .hostname("ca-userns");
    let out = run_ok(
        Guest::builder("ca-userns")
            .context(ctx)
            .filesystem(Filesystem::server(rootfs()))
            .command(script("hostname; id -u; cat /proc/self/uid_map")),
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["ca-userns", "0", "0", "500000", "65536"], "{out}");
    assert_no_child_allocation("filesystem guests");
    before.assert_unchanged("filesystem guests");
}

/// (c) Networks and cgroups: a busybox guest with a fresh network
/// namespace, made by the maker beside the spawn child (also with a user
/// namespace, where the maker joins it first), with pids and memory
/// limits (the child joins its groups, on v1 the late ones over the
/// socket); and a guest with a veth whose host side lives in a test
/// namespace (the parent makes the links during the handshake).
#[test]
fn network_maker_veth_and_cgroups_without_allocating_after_clone() {
    if !root_or_skip("network") {
        return;
    }
    let _watch = Watch::start();
    warm_up();
    let before = HostState::capture();

    // The maker, with limits.
    let fs = || Filesystem::new(rootfs()).proc().sysfs().dev();
    let out = run_ok(
        Guest::builder("ca-maker")
            .filesystem(fs())
            .network(Network::new())
            .resources(limits())
            .command(script("ls /sys/class/net; cat /sys/class/net/lo/operstate")),
    );
    assert_eq!(out, "lo\nunknown\n");
    assert_no_groups("ca-maker");

    // The maker joining the guest's user namespace first.
    let ctx = Context::new()
        .namespaces(Namespaces::default() | Namespaces::USER)
        .uid_map(IdMap::new(0, 510_000, 65_536))
        .gid_map(IdMap::new(0, 510_000, 65_536));
    let out = run_ok(
        Guest::builder("ca-maker-userns")
            .context(ctx)
            .filesystem(Filesystem::new(rootfs()).proc().dev())
            .network(Network::new())
            .command(script("ip -o link | cut -d: -f2 | tr -d ' '; id -u")),
    );
    assert_eq!(out, "lo\n0\n");

    // A veth, its host side in a test namespace, with limits.
    let switch = TestNet::new();
    let name = link("ca");
    let veth =
        Veth::new(&name).host_netns(switch.path()).address("198.18.60.2/24").host_address("198.18.60.1/24");
    let g = spawn(
        Guest::builder("ca-veth")
            .filesystem(fs())
            .network(Network::new().veth(veth))
            .resources(limits())
            .command(script(
                "ls /sys/class/net | tr '\\n' ' '; ping -c1 -W2 198.18.60.1 >/dev/null && echo answers",
            )),
    );
    assert_eq!(g.host_links(), [name.as_str()]);
    let (status, out, err) = finish(g);
    assert_no_child_allocation("veth guest");
    assert!(status.success(), "{status}: {out}\n{err}");
    assert_eq!(out, "eth0 lo answers\n");
    assert_no_groups("ca-veth");
    assert!(!switch.ip(&["-o", "link"]).contains(&name), "host side of the veth left behind");
    drop(switch);
    assert_no_child_allocation("network guests");
    before.assert_unchanged("network guests");
}

/// (d) Entering a running guest: `Guest::exec` and
/// `Guest::attach(..).exec` (the entering process shares our memory and
/// joins the guest's namespaces and cgroups), failing execs among them.
#[test]
fn exec_and_attach_without_allocating_after_clone() {
    if !root_or_skip("exec") {
        return;
    }
    let _watch = Watch::start();
    warm_up();
    let before = HostState::capture();
    let caps: CapSet = "chown,kill".parse().unwrap();
    let ctx = Context::new()
        .hostname("ca-entered")
        .user(User::Id { uid: 33, gid: 33 })
        .capabilities(Capabilities::only(caps))
        .rlimit(Rlimit::RLIMIT_NOFILE, 100, 200);
    let guest = sleeper("ca-exec", ctx, Some(limits()));
    let check = "hostname; id -u; cmp -s /proc/self/cgroup /proc/1/cgroup && echo same-cgroup";
    for _ in 0..3 {
        assert_eq!(exec_ok(|c| guest.exec(c), check), "ca-entered\n33\nsame-cgroup\n");
    }
    let attached = Guest::attach(guest.id()).unwrap();
    for _ in 0..3 {
        assert_eq!(exec_ok(|c| attached.exec(c), check), "ca-entered\n33\nsame-cgroup\n");
    }
    failing_execs(&guest, &attached);
    drop(attached);
    stop(guest);
    assert_no_groups("ca-exec");
    assert_no_child_allocation("exec and attach");
    before.assert_unchanged("exec and attach");
}

/// (e) A guest with its own time namespace: the spawn child unshares it
/// and writes the offsets; entering it takes a forked copy of this
/// process (one sharing memory may not join a time namespace), through
/// `Guest::exec` and `AttachedGuest::exec`, failing execs among them.
#[test]
fn time_namespace_spawn_and_exec_without_allocating_after_clone() {
    if !root_or_skip("time namespace") {
        return;
    }
    let _watch = Watch::start();
    warm_up();
    let before = HostState::capture();
    let started = Instant::now();
    let guest = sleeper("ca-time", Context::new().uptime_from_zero(), None);
    let host = uptime_secs(&std::fs::read_to_string("/proc/uptime").unwrap());
    for _ in 0..3 {
        let inside = uptime_secs(&exec_ok(|c| guest.exec(c), "cat /proc/uptime"));
        assert!(inside <= started.elapsed().as_secs_f64() + 0.05, "not in the guest's clock: {inside}");
        assert!(inside < host, "guest {inside} vs host {host}");
    }
    let attached = Guest::attach(guest.id()).unwrap();
    let inside = uptime_secs(&exec_ok(|c| attached.exec(c), "cat /proc/uptime"));
    assert!(inside < host, "guest {inside} vs host {host}");
    failing_execs(&guest, &attached);
    drop(attached);
    stop(guest);
    assert_no_child_allocation("time namespace");
    before.assert_unchanged("time namespace");
}

/// (f) Spawns that fail in the child: a program that does not exist in
/// the guest (the payload's clone reports it; alone as PID 1, the spawn
/// child; with a time namespace, the init's fork), one not found in
/// PATH, and a missing working directory.
#[test]
fn failing_spawns_without_allocating_after_clone() {
    if !root_or_skip("failing spawns") {
        return;
    }
    let _watch = Watch::start();
    warm_up();
    let before = HostState::capture();
    let busybox = || Guest::builder("ca-fail").filesystem(Filesystem::server(rootfs()));
    let expect = |b: GuestBuilder, step: Step, errno: i32| {
        let spawned = b.spawn().map(|_| ());
        assert_no_child_allocation("a failing spawn");
        let err = spawned.expect_err("spawn should fail");
        assert_eq!((err.step(), err.raw_os_error()), (Some(step), Some(errno)), "{err} ({err:?})");
    };
    expect(busybox().command(Command::new("/no/such/program")), Step::Exec, libc::ENOENT);
    expect(busybox().init(Init::Payload).command(Command::new("/no/such/program")), Step::Exec, libc::ENOENT);
    expect(
        busybox().context(Context::new().uptime_from_zero()).command(Command::new("/no/such/program")),
        Step::Exec,
        libc::ENOENT,
    );
    expect(busybox().command(Command::new("no-such-program")), Step::ResolveProgram, libc::ENOENT);
    expect(busybox().command(Command::new("/bin/true").current_dir("/no/dir")), Step::Chdir, libc::ENOENT);
    // With limits, and with the maker: their undo paths too.
    expect(busybox().resources(limits()).command(Command::new("/no/such/program")), Step::Exec, libc::ENOENT);
    expect(
        Guest::builder("ca-fail")
            .filesystem(Filesystem::new(rootfs()).proc().sysfs())
            .network(Network::new())
            .command(Command::new("/no/such/program")),
        Step::Exec,
        libc::ENOENT,
    );
    assert_no_groups("ca-fail");
    assert_no_child_allocation("failing spawns");
    before.assert_unchanged("failing spawns");
}
