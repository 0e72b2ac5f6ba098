//! Plain data the child side follows: every string, array, fd and flag
//! it needs, built by the parent before the clone so the child never
//! allocates.
//!
//! ```text
//!   builder ──> layers (context, fs, net, resources, command)
//!                  │ render
//!                  v
//!               plan (this module: data only) ──> child (runs it after the clone)
//!                  ^                                │ wire: step, errno, detail
//!   spawn, launch ─┘ (assemble it, own what it names) <─┘
//! ```
//!
//! Nothing here runs in the child or creates anything on the host: the
//! types are built by the layers and by `launch`, then only read by
//! `child` through a shared reference.

pub(crate) mod creds;
pub(crate) mod fs;
pub(crate) mod wire;

use std::cell::Cell;
use std::ffi::{CString, c_char};
use std::num::NonZeroU8;
use std::os::fd::RawFd;
use std::sync::Arc;

use crate::sys::stack::ChildStack;

pub(crate) use self::creds::{CapsPlan, CredsPlan};
pub(crate) use self::fs::FsPlan;

/// Executing the built-in init image beside the payload: the spawn
/// child clones the payload's process, then execs the init, which waits
/// for it.
#[derive(Debug)]
pub(crate) struct InitPlan {
    /// The sealed memfd holding the image.
    pub memfd: RawFd,
    /// `vguest-init OWNERFD PAYLOAD_PID ERRFD PROGRAM ARGV...`,
    /// NULL-terminated; PAYLOAD_PID points into
    /// [`pid_text`](Self::pid_text), and slot [`INIT_PROGRAM_SLOT`] is where
    /// the child puts the program path it resolved.
    pub argv: Box<[Cell<*const c_char>]>,
    /// The payload's pid in decimal, NUL-terminated: written by the spawn
    /// child once it has cloned the payload ("0": the init forks it).
    pub pid_text: Box<[Cell<u8>; PID_TEXT]>,
    /// The stack the payload's process starts on (until its exec): the
    /// parent owns it, the child only uses [`payload_stack_top`](Self::payload_stack_top).
    pub payload_stack: Option<ChildStack>,
    /// The top of [`payload_stack`](Self::payload_stack), or 0 without one.
    pub payload_stack_top: usize,
}

/// Index of the program path in [`InitPlan::argv`].
pub(crate) const INIT_PROGRAM_SLOT: usize = 4;

/// Room for a pid in decimal and its NUL.
pub(crate) const PID_TEXT: usize = 12;

/// The payload's program, argv and environment.
#[derive(Debug)]
pub(crate) struct ExecPlan {
    pub program: CString,
    /// `PATH` to search when `program` has no slash.
    pub search_path: Vec<u8>,
    /// NULL-terminated pointers into `strings`.
    pub argv: Vec<*const c_char>,
    /// NULL-terminated pointers into `strings`.
    pub envp: Vec<*const c_char>,
    pub init: Option<InitPlan>,
    /// Owns what the pointer arrays point to.
    pub _strings: Vec<CString>,
}

impl ExecPlan {
    /// Builds the pointer arrays over `argv` and `envp`, and the init's
    /// argv when `init` is given as (memfd, errfd, the owner's pipe if
    /// the init watches it).
    pub(crate) fn new(
        program: CString,
        search_path: Vec<u8>,
        argv: Vec<CString>,
        envp: Vec<CString>,
        init: Option<(RawFd, RawFd, Option<RawFd>)>,
    ) -> Self {
        fn pointers(strings: &[CString]) -> Vec<*const c_char> {
            strings.iter().map(|s| s.as_ptr()).chain([std::ptr::null()]).collect()
        }
        let argv_ptrs = pointers(&argv);
        let envp_ptrs = pointers(&envp);
        let mut strings = argv;
        strings.extend(envp);
        let init = init.map(|(memfd, errfd, owner)| {
            let owner = owner.map_or_else(|| CString::from(c"-"), c_decimal);
            let head = [CString::from(c"vguest-init"), owner, c_decimal(errfd)];
            let pid_text: Box<[Cell<u8>; PID_TEXT]> = Box::new(std::array::from_fn(|_| Cell::new(0)));
            let mut ptrs = vec![head[0].as_ptr(), head[1].as_ptr(), pid_text.as_ptr().cast::<c_char>()];
            ptrs.extend([head[2].as_ptr(), program.as_ptr()]);
            ptrs.extend(&argv_ptrs);
            strings.extend(head);
            InitPlan {
                memfd,
                argv: ptrs.into_iter().map(Cell::new).collect(),
                pid_text,
                payload_stack: None,
                payload_stack_top: 0,
            }
        });
        // Moving a CString moves only its heap pointer, so the pointers
        // taken above stay valid.
        ExecPlan { program, search_path, argv: argv_ptrs, envp: envp_ptrs, init, _strings: strings }
    }
}

/// `n` in decimal, as a C string (a mount option, an argument).
pub(crate) fn c_decimal(n: impl Into<i128>) -> CString {
    c_digits(n.into().to_string())
}

/// `n` in octal, as a C string (a mode for a mount option).
pub(crate) fn c_octal(n: u32) -> CString {
    c_digits(format!("{n:o}"))
}

/// The text of a number as a C string. Digits and `-` are never NUL, so
/// the filter drops nothing and, unlike `CString::new`, nothing can fail.
fn c_digits(text: String) -> CString {
    CString::from(text.into_bytes().into_iter().filter_map(NonZeroU8::new).collect::<Vec<_>>())
}

/// Everything the spawn child does, in the order it does it.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    /// Write end of the error pipe.
    pub err_fd: RawFd,
    /// Read end of the handshake pipe, or -1 when no handshake is needed.
    pub sync_fd: RawFd,
    /// Write end of the handshake pipe (the parent's), or -1: the child
    /// closes its inherited copy first thing, so that it sees end of file
    /// once the parent is gone.
    pub sync_peer: RawFd,
    /// A pidfd of the calling process, or -1: a child that waits for the
    /// parent gives up when it becomes readable (the caller died), however
    /// many copies of the pipes' other ends other children still hold.
    pub lifeline: RawFd,
    /// Read end of the owner's pipe for the built-in init to watch (see
    /// `launch::owner_pipe`), or -1.
    pub owner_fd: RawFd,
    /// Switch to uid and gid 0 of a new user namespace after the
    /// handshake (its maps map 0).
    pub become_root: bool,
    /// The parent-death signal the payload keeps, or 0. Until its exec
    /// the child has `SIGKILL` as its parent-death signal, so that a half
    /// made guest dies with the thread that is spawning it.
    pub pdeathsig: i32,
    /// cgroup directories to join by writing "0" (the writer) into them,
    /// each with whether it is a v2 group.
    pub cgroup_dirs: Vec<(RawFd, bool)>,
    /// Whether the kernel was asked to place the child with
    /// `CLONE_INTO_CGROUP` (into `cgroup_dirs[0]`).
    pub into_cgroup: bool,
    /// v1 groups the parent makes while the child builds its mounts,
    /// joined after them.
    pub late_cgroups: Option<LateCgroups>,
    /// Create a cgroup namespace after joining the cgroups.
    pub unshare_cgroup: bool,
    /// Contents for `/proc/self/timens_offsets`, if a time namespace is
    /// wanted (filled in just before the clone).
    pub time_offsets: Option<Vec<u8>>,
    /// A network namespace to join, or -1.
    pub netns_fd: RawFd,
    /// Bring up `lo` in a fresh network namespace.
    pub loopback_up: bool,
    /// A fresh network namespace made beside the child (`launch/maker.rs`).
    pub netns_maker: Option<NetnsJoin>,
    pub hostname: Option<Vec<u8>>,
    pub domainname: Option<Vec<u8>>,
    /// `mount(2)` propagation flags for `/` in a new mount namespace (0:
    /// none), so that nothing mounted in the guest reaches the host.
    pub mount_propagation: u64,
    /// The guest's root and mount table, if it has its own.
    pub fs: Option<FsPlan>,
    /// (resource, limit) pairs for `prlimit64`.
    pub rlimits: Vec<(u32, libc::rlimit64)>,
    pub cwd: Option<CString>,
    pub creds: CredsPlan,
    pub caps: CapsPlan,
    pub no_new_privs: bool,
    /// The system call filters to load before the exec, in order (the
    /// guest's own; an attached guest's as read from it) (with
    /// `no_new_privs`, after the capabilities; without, before them,
    /// while the child still holds `CAP_SYS_ADMIN`, which loading a
    /// filter then needs).
    pub seccomp: Arc<Filters>,
    /// Which filter gets a listener, handed to the caller.
    pub listener: ListenerPlan,
    /// Fds to place on 0, 1, 2 (-1: leave the inherited one).
    pub stdio: [RawFd; 3],
    /// Upper bound for the close-on-exec sweep when `close_range` is
    /// missing.
    pub max_fd: u32,
    pub exec: ExecPlan,
    /// Join a running guest's namespaces instead of creating any.
    pub join: Option<JoinPlan>,
    /// The file table the child starts with (see [`SharedFiles`]).
    pub files: SharedFiles,
}

impl ChildPlan {
    /// The highest fd the child uses or closes (-1 if none): every fd the
    /// plan names.
    pub fn highest_fd(&self) -> RawFd {
        let ends = |e: ChildEnds| [e.sock, e.peer];
        let init = self.exec.init.as_ref().map(|i| i.memfd);
        let join = self.join.map(|j| [j.pidfd, j.time_fd]);
        [
            self.err_fd,
            self.sync_fd,
            self.sync_peer,
            self.lifeline,
            self.owner_fd,
            self.netns_fd,
            self.listener.sock,
        ]
        .into_iter()
        .chain(self.stdio)
        .chain(self.cgroup_dirs.iter().map(|&(fd, _)| fd))
        .chain(self.netns_maker.into_iter().flat_map(|n| ends(n.ends)))
        .chain(self.late_cgroups.into_iter().flat_map(|l| ends(l.ends)))
        .chain(init)
        .chain(join.into_iter().flatten())
        .max()
        .unwrap_or(-1)
    }
}

/// One classic BPF instruction, laid out as the kernel's `struct
/// sock_filter`: a seccomp program is a slice of them.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A guest's system call filters, in the order they are loaded: its own
/// (one), or an attached guest's as read from its PID 1. Shared, not
/// copied, by every spawn or entry that loads them.
pub(crate) type Filters = Vec<Vec<BpfInsn>>;

/// The extended attribute of a guest's first group that holds its
/// system call filter ([`BpfInsn::encode`]), for `attach`.
pub(crate) const SECCOMP_NOTE: &std::ffi::CStr = c"trusted.vguest.seccomp";

impl BpfInsn {
    /// A program as bytes, 8 per instruction (little-endian fields), to
    /// keep it where a later attacher finds it.
    pub fn encode(program: &[BpfInsn]) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * program.len());
        for i in program {
            out.extend_from_slice(&i.code.to_le_bytes());
            out.extend_from_slice(&[i.jt, i.jf]);
            out.extend_from_slice(&i.k.to_le_bytes());
        }
        out
    }

    /// Whether `program` can answer a call with
    /// `SECCOMP_RET_USER_NOTIF` (a constant return of it: what this
    /// crate compiles).
    pub fn notifies(program: &[BpfInsn]) -> bool {
        const RET_K: u16 = 0x06;
        program
            .iter()
            .any(|i| i.code == RET_K && i.k & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_USER_NOTIF)
    }

    /// The program [`encode`](Self::encode) made, if `bytes` is one.
    pub fn decode(bytes: &[u8]) -> Option<Vec<BpfInsn>> {
        if bytes.is_empty() || bytes.len() % 8 != 0 {
            return None;
        }
        let insn = |c: &[u8]| BpfInsn {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        };
        Some(bytes.chunks_exact(8).map(insn).collect())
    }
}

/// A filter with [`SeccompAction::Notify`](crate::SeccompAction::Notify)
/// rules is loaded with `SECCOMP_FILTER_FLAG_NEW_LISTENER`; the child
/// sends the listener it gets on `sock` (`SCM_RIGHTS`) and closes its
/// copy, so the caller holds the only one (`seccomp_unotify(2)`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListenerPlan {
    /// Index in the plan's filters of the one to load with a listener,
    /// or -1 for none. A process may have one listener among its filters
    /// (`EBUSY`): the last that notifies.
    pub filter: i32,
    /// The child's end of a `SOCK_SEQPACKET` pair, or -1.
    pub sock: RawFd,
}

impl ListenerPlan {
    /// No listener.
    pub const NONE: ListenerPlan = ListenerPlan { filter: -1, sock: -1 };

    /// The filter among `filters` that gets a listener, if any does.
    pub fn wanted(filters: &Filters) -> Option<usize> {
        filters.iter().rposition(|p| BpfInsn::notifies(p))
    }
}

/// How the spawn child comes by its own file table.
///
/// Copying the caller's whole table at the clone costs time in
/// proportion to the caller's open fds (one per live guest, and whatever
/// the embedding program holds), twice: at the copy, and at the exec that
/// closes them. So a child that shares the caller's memory is cloned
/// sharing its file table too (`CLONE_FILES`), and its first act is
/// `close_range(keep_below, ~0, CLOSE_RANGE_UNSHARE)`, which copies only
/// the fds below `keep_below` (`close_range(2)`). The parent closes
/// nothing until the child has its copy (`unshared`) or has exited.
#[derive(Debug, Default)]
pub(crate) struct SharedFiles {
    /// 0: the child was cloned with a copy of the caller's table. Else it
    /// shares the table and copies the fds below this number.
    pub keep_below: u32,
    /// The child sets this to 1 (and wakes a futex waiter on it) once it
    /// has a table of its own.
    pub unshared: std::sync::atomic::AtomicU32,
}

/// The spawn child's view of an `FdChannel` (`launch/mod.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildEnds {
    /// The end the fds arrive on.
    pub sock: RawFd,
    /// The sending side's end, inherited by the clone: the child closes
    /// it first thing, so that it sees end of file if the sender goes
    /// away without a word.
    pub peer: RawFd,
}

/// Joining the network namespace the maker makes (`launch/maker.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetnsJoin {
    pub ends: ChildEnds,
    /// Join before the mounts (they include a sysfs, which shows the
    /// mounter's namespace) rather than after them.
    pub before_mounts: bool,
}

/// Groups that do not exist yet at the clone: the parent makes them (the
/// v1 hierarchies' groups and limits, see `Cgroups::create_pending`) while
/// the child builds its mount table, and sends their directory fds, one
/// per message, on a `SOCK_SEQPACKET` pair.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LateCgroups {
    pub ends: ChildEnds,
    /// How many fds arrive.
    pub count: u32,
    /// Index of the first of them among all the guest's groups (for the
    /// `JoinCgroup` error's subject).
    pub first_index: u32,
}

/// The namespaces of a running guest to enter with `setns(2)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JoinPlan {
    /// A pidfd of the guest's PID 1.
    pub pidfd: RawFd,
    /// `CLONE_NEW*` flags of the namespaces to join through `pidfd`.
    pub nstype: i32,
    /// The guest's time namespace to join separately, or -1.
    pub time_fd: RawFd,
}

/// What the network namespace's maker reads (`child/netns.rs`); it lives
/// on the parent's heap until the maker is reaped.
#[derive(Debug)]
pub(crate) struct MakerPlan {
    /// A pidfd of the spawn child whose user namespace to join first, or
    /// -1 to stay in the caller's (the maker was then cloned into a new
    /// network namespace).
    pub userns_of: RawFd,
    /// The maker's end of the socket pair (shared file table).
    pub sock: RawFd,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_c_strings() {
        assert_eq!(c_decimal(0), CString::from(c"0"));
        assert_eq!(c_decimal(-1), CString::from(c"-1"));
        assert_eq!(c_decimal(u64::MAX).to_str(), Ok("18446744073709551615"));
        assert_eq!(c_octal(0o1777), CString::from(c"1777"));
    }

    #[test]
    fn bpf_programs_round_trip_as_bytes() {
        let program =
            [BpfInsn { code: 0x15, jt: 1, jf: 2, k: 0xC000_003E }, BpfInsn { code: 6, jt: 0, jf: 0, k: 0 }];
        assert_eq!(BpfInsn::decode(&BpfInsn::encode(&program)).as_deref(), Some(&program[..]));
        assert_eq!(BpfInsn::decode(&[1, 2, 3]), None);
        assert_eq!(BpfInsn::decode(&[]), None);
    }

    #[test]
    fn exec_plan_pointers() {
        let plan = ExecPlan::new(
            CString::from(c"sh"),
            Vec::new(),
            vec![CString::from(c"sh"), CString::from(c"-c")],
            vec![CString::from(c"A=1")],
            Some((10, 11, Some(12))),
        );
        assert_eq!(plan.argv.len(), 3);
        assert!(plan.argv[2].is_null());
        let init = plan.init.as_ref().unwrap();
        let ptrs: Vec<_> = init.argv.iter().map(|c| c.get()).collect();
        assert_eq!(ptrs.len(), 8);
        let owned =
            |text: &std::ffi::CStr| plan._strings.iter().find(|s| s.as_c_str() == text).unwrap().as_ptr();
        assert_eq!(ptrs[0], owned(c"vguest-init"));
        assert_eq!(ptrs[1], owned(c"12"));
        assert_eq!(ptrs[2], init.pid_text.as_ptr().cast());
        assert_eq!(ptrs[3], owned(c"11"));
        assert_eq!(ptrs[INIT_PROGRAM_SLOT], plan.program.as_ptr());
        assert_eq!(&ptrs[5..7], &plan.argv[..2]);
        assert!(ptrs[7].is_null());
    }
}
